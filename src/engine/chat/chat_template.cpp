#include "engine/chat/chat_template.h"

#include <ctime>
#include <optional>
#include <utility>

namespace ondol::engine {

namespace {

// The error texts are the official templates' raise_exception messages.
constexpr std::string_view kAlternateError =
    "Conversation roles must alternate user/assistant/user/assistant/...";

// Jinja's trim and Python's str.strip(), on ASCII whitespace (see Known limits in the doc).
std::string_view strip(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

// (message['role'] == 'user') != (loop.index0 % 2 == 0) → raise, as the templates check.
Status check_alternation(std::span<const ChatMessage> messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    if ((messages[i].role == "user") != (i % 2 == 0))
      return make_error(std::string(kAlternateError));
  }
  return Ok{};
}

// strftime("%d %b %Y") of the current UTC date, in the C locale: "05 Nov 2026".
std::string today_utc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof buf, "%d %b %Y", &tm);
  return std::string(buf, n);
}

template <typename... Parts>
void append(std::string& out, const Parts&... parts) {
  (out.append(parts), ...);
}

}  // namespace

ChatTemplate ChatTemplate::from_source(std::string_view source, ChatTemplateTokens tokens) {
  return ChatTemplate(detect_chat_template(source), std::move(tokens), !source.empty());
}

Result<ChatTemplate> ChatTemplate::from_gguf(const GgufFile& file, const Tokenizer& tokenizer) {
  Result<std::string_view> source = file.get_string_or(kChatTemplateKey, "");
  if (!source) return source.error();
  ChatTemplateTokens tokens;
  const Vocab& vocab = tokenizer.vocab();
  if (vocab.contains(tokenizer.bos())) tokens.bos = std::string(vocab.text(tokenizer.bos()));
  if (vocab.contains(tokenizer.eos())) tokens.eos = std::string(vocab.text(tokenizer.eos()));
  return from_source(*source, std::move(tokens));
}

Result<std::string> ChatTemplate::apply(std::span<const ChatMessage> messages,
                                        const ChatApplyOptions& options) const {
  if (messages.empty()) return make_error("messages must not be empty");
  const bool add_generation_prompt = options.add_generation_prompt;
  switch (spec_.family) {
    case ChatTemplateFamily::ChatMl:
      return apply_chatml(messages, add_generation_prompt);
    case ChatTemplateFamily::Llama2:
      return apply_llama2(messages);
    case ChatTemplateFamily::Llama3:
      return apply_llama3(messages, options);
    case ChatTemplateFamily::Mistral:
      return apply_mistral(messages);
    case ChatTemplateFamily::Phi3:
      return apply_phi3(messages);
    case ChatTemplateFamily::Zephyr:
      return apply_zephyr(messages, add_generation_prompt);
    case ChatTemplateFamily::Gemma:
      return apply_gemma(messages, add_generation_prompt);
    case ChatTemplateFamily::Plain:
      return apply_plain(messages, add_generation_prompt);
  }
  return apply_plain(messages, add_generation_prompt);
}

// {% if loop.first and messages[0]['role'] != 'system' %}<default system turn>{% endif %}
// {{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}
// {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
Result<std::string> ChatTemplate::apply_chatml(std::span<const ChatMessage> m, bool gen) const {
  std::string out;
  if (!spec_.default_system.empty() && m[0].role != "system") {
    append(out, "<|im_start|>system\n", spec_.default_system, "<|im_end|>\n");
  }
  for (const ChatMessage& msg : m) {
    append(out, "<|im_start|>", msg.role, "\n", msg.content, "<|im_end|>\n");
  }
  if (gen) out.append("<|im_start|>assistant\n");
  return out;
}

// meta-llama/Llama-2-7b-chat-hf: the system message becomes a <<SYS>> block inside the first
// user turn; every user turn is bos_token + '[INST] ' + content.strip() + ' [/INST]', every
// assistant turn ' ' + content.strip() + ' ' + eos_token. No generation prompt.
Result<std::string> ChatTemplate::apply_llama2(std::span<const ChatMessage> m) const {
  std::optional<std::string_view> system;
  if (m[0].role == "system") {
    system = m[0].content;
    m = m.subspan(1);
  }
  if (Status s = check_alternation(m); !s) return s.error();
  std::string out;
  std::string content;
  for (size_t i = 0; i < m.size(); ++i) {
    content.clear();
    if (i == 0 && system) append(content, "<<SYS>>\n", *system, "\n<</SYS>>\n\n");
    content.append(m[i].content);
    if (m[i].role == "user") {
      append(out, bos(), "[INST] ", strip(content), " [/INST]");
    } else if (m[i].role == "assistant") {
      append(out, " ", strip(content), " ", tokens_.eos);
    }
  }
  return out;
}

// meta-llama/Meta-Llama-3-8B-Instruct: bos_token before the first turn; each turn
// '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content|trim + '<|eot_id|>'.
// Llama 3.1/3.2/3.3 always open with a system turn carrying the knowledge cutoff and today's
// date, the system message (trimmed) after them (tool preambles are not rendered).
Result<std::string> ChatTemplate::apply_llama3(std::span<const ChatMessage> m,
                                               const ChatApplyOptions& options) const {
  std::string out(bos());
  if (spec_.llama3_date_preamble) {
    std::string_view system;
    if (m[0].role == "system") {
      system = strip(m[0].content);
      m = m.subspan(1);
    }
    std::string today;
    if (!options.today.empty()) {
      today = options.today;
    } else if (spec_.date_from_clock || spec_.date_default.empty()) {
      today = today_utc();
    } else {
      today = spec_.date_default;
    }
    append(out, "<|start_header_id|>system<|end_header_id|>\n\n",
           "Cutting Knowledge Date: December 2023\n", "Today Date: ", today, "\n\n", system,
           "<|eot_id|>");
  }
  for (const ChatMessage& msg : m) {
    append(out, "<|start_header_id|>", msg.role, "<|end_header_id|>\n\n", strip(msg.content),
           "<|eot_id|>");
  }
  if (options.add_generation_prompt)
    out.append("<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out;
}

// mistralai templates, v0.1 to v7 (spec_ holds the variant). No generation prompt: the last
// user turn's [/INST] is where the assistant starts.
Result<std::string> ChatTemplate::apply_mistral(std::span<const ChatMessage> m) const {
  std::optional<std::string_view> system;
  const bool hoists_system = spec_.system_placement == SystemPlacement::FirstUser ||
                             spec_.system_placement == SystemPlacement::LastUser;
  if (hoists_system && m[0].role == "system") {
    system = m[0].content;
    m = m.subspan(1);
  }
  if (spec_.alternation_checked) {
    if (Status s = check_alternation(m); !s) return s.error();
  }
  std::string out(bos());
  for (size_t i = 0; i < m.size(); ++i) {
    const ChatMessage& msg = m[i];
    if (msg.role == "user") {
      const bool with_system =
          system && ((spec_.system_placement == SystemPlacement::FirstUser && i == 0) ||
                     (spec_.system_placement == SystemPlacement::LastUser && i + 1 == m.size()));
      out.append(spec_.inst_open);
      if (with_system) append(out, *system, "\n\n");
      append(out, msg.content, spec_.inst_close);
    } else if (msg.role == "assistant") {
      if (spec_.assistant_leading_space) out.push_back(' ');
      append(out, spec_.assistant_trim ? strip(msg.content) : std::string_view(msg.content),
             tokens_.eos);
    } else if (msg.role == "system" && spec_.system_placement == SystemPlacement::OwnTurn) {
      append(out, "[SYSTEM_PROMPT] ", msg.content, "[/SYSTEM_PROMPT]");
    } else {
      return make_error(
          "Only user and assistant roles are supported, with the exception of an "
          "initial optional system message!");
    }
  }
  return out;
}

// microsoft/Phi-3-mini-4k-instruct: system messages are not rendered (the template has no
// branch for them) and the assistant header follows every user turn.
Result<std::string> ChatTemplate::apply_phi3(std::span<const ChatMessage> m) const {
  std::string out(bos());
  for (const ChatMessage& msg : m) {
    if (msg.role == "user") {
      append(out, "<|user|>\n", msg.content, "<|end|>\n<|assistant|>\n");
    } else if (msg.role == "assistant") {
      append(out, msg.content, "<|end|>\n");
    }
  }
  return out;
}

// HuggingFaceH4/zephyr-7b-beta and TinyLlama-1.1B-Chat-v1.0. Rendered by transformers with
// trim_blocks, so the newline after each {{ ... }} line stays: '<|user|>\n' + content +
// eos_token + '\n'; the generation prompt is '<|assistant|>' + '\n'. Other roles: nothing.
Result<std::string> ChatTemplate::apply_zephyr(std::span<const ChatMessage> m, bool gen) const {
  std::string out;
  for (const ChatMessage& msg : m) {
    if (msg.role == "user" || msg.role == "system" || msg.role == "assistant") {
      append(out, "<|", msg.role, "|>\n", msg.content, tokens_.eos, "\n");
    }
  }
  if (gen) out.append("<|assistant|>\n");
  return out;
}

// google/gemma-7b-it (and Gemma 2): a system message is refused; Gemma 3 prepends it, plus a
// blank line, to the first turn. 'assistant' is spelled 'model'; content is trimmed.
Result<std::string> ChatTemplate::apply_gemma(std::span<const ChatMessage> m, bool gen) const {
  std::string_view prefix_text;
  bool has_prefix = false;
  if (m[0].role == "system") {
    if (spec_.system_placement == SystemPlacement::Refused) {
      return make_error("System role not supported");
    }
    prefix_text = m[0].content;
    has_prefix = true;
    m = m.subspan(1);
  }
  if (Status s = check_alternation(m); !s) return s.error();
  std::string out(bos());
  for (size_t i = 0; i < m.size(); ++i) {
    const std::string_view role = m[i].role == "assistant" ? "model" : std::string_view(m[i].role);
    append(out, "<start_of_turn>", role, "\n");
    if (i == 0 && has_prefix) append(out, prefix_text, "\n\n");
    append(out, strip(m[i].content), "<end_of_turn>\n");
  }
  if (gen) out.append("<start_of_turn>model\n");
  return out;
}

// No template: "Role: content" lines, the role's first letter upper-cased, then "Assistant:".
Result<std::string> ChatTemplate::apply_plain(std::span<const ChatMessage> m, bool gen) const {
  std::string out;
  for (const ChatMessage& msg : m) {
    std::string role = msg.role;
    if (!role.empty() && role[0] >= 'a' && role[0] <= 'z')
      role[0] = static_cast<char>(role[0] - 'a' + 'A');
    append(out, role, ": ", msg.content, "\n");
  }
  if (gen) out.append("Assistant:");
  return out;
}

}  // namespace ondol::engine
