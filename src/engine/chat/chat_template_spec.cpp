#include "engine/chat/chat_template_spec.h"

#include <initializer_list>

namespace ondol::engine {

namespace {

bool contains(std::string_view source, std::string_view needle) {
  return source.find(needle) != std::string_view::npos;
}

bool contains_any(std::string_view source, std::initializer_list<std::string_view> needles) {
  for (std::string_view n : needles) {
    if (contains(source, n)) return true;
  }
  return false;
}

// Undoes the escapes of a Jinja string literal (\n, \t, \', \", \\).
std::string unescape_jinja(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out.push_back(text[i]);
      continue;
    }
    const char c = text[++i];
    switch (c) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      default:
        out.push_back(c);
        break;  // \' \" \\ and anything else: the character itself
    }
  }
  return out;
}

// Qwen2-style templates write a literal system turn when the conversation has none:
// '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n'. The text between the header
// and <|im_end|> is a default only when it is one literal (no quote closes the string, no
// expression is concatenated), which tells it apart from '<|im_start|>system\n' + content.
std::string find_chatml_default_system(std::string_view source) {
  constexpr std::string_view kHeader = "<|im_start|>system";
  constexpr std::string_view kEnd = "<|im_end|>";
  size_t at = 0;
  while ((at = source.find(kHeader, at)) != std::string_view::npos) {
    size_t body = at + kHeader.size();
    at = body;
    if (source.substr(body, 2) == "\\n") {
      body += 2;
    } else if (source.substr(body, 1) == "\n") {
      body += 1;
    } else {
      continue;
    }
    const size_t end = source.find(kEnd, body);
    if (end == std::string_view::npos) continue;
    const std::string_view text = source.substr(body, end - body);
    bool literal = !text.empty();
    for (size_t i = 0; i < text.size() && literal; ++i) {
      if (text[i] == '\\') {
        ++i;  // an escaped character, quotes included
      } else if (text[i] == '\'' || text[i] == '"' || text[i] == '{' || text[i] == '}') {
        literal = false;
      }
    }
    if (literal) return unescape_jinja(text);
  }
  return {};
}

// Llama 3.1+: `set date_string = "26 Jul 2024"` gives the default date.
void detect_llama3_variant(std::string_view s, ChatTemplateSpec& spec) {
  if (!contains(s, "Cutting Knowledge Date")) return;
  spec.llama3_date_preamble = true;
  spec.date_from_clock = contains(s, "strftime_now");
  constexpr std::string_view kDefault = "set date_string = \"";
  const size_t at = s.find(kDefault);
  if (at != std::string_view::npos) {
    const size_t begin = at + kDefault.size();
    const size_t end = s.find('"', begin);
    if (end != std::string_view::npos)
      spec.date_default = std::string(s.substr(begin, end - begin));
  }
}

void detect_mistral_variant(std::string_view s, ChatTemplateSpec& spec) {
  // Versions differ in spaces around the markers; read them from the string literals.
  if (contains_any(s, {"' [INST] '", "\" [INST] \""})) {
    spec.inst_open = " [INST] ";
  } else if (contains_any(s, {"'[INST]'", "\"[INST]\""})) {
    spec.inst_open = "[INST]";  // v3-tekken
  } else {
    spec.inst_open = "[INST] ";
  }
  spec.inst_close = contains_any(s, {"' [/INST]'", "\" [/INST]\""}) ? " [/INST]" : "[/INST]";
  spec.assistant_leading_space =
      contains_any(s, {"' ' + message['content']", "\" \" + message[\"content\"]",
                       "' ' + message[\"content\"]", "\" \" + message['content']"});
  spec.assistant_trim = contains_any(s, {"|trim + eos_token", "| trim + eos_token"});
  spec.alternation_checked = contains(s, "must alternate");
  if (contains(s, "[SYSTEM_PROMPT]")) {
    spec.system_placement = SystemPlacement::OwnTurn;  // v7
  } else if (contains(s, "loop.last and system_message")) {
    spec.system_placement = SystemPlacement::LastUser;  // v3, v3-tekken
  } else if (contains(s, "loop.first and system_message")) {
    spec.system_placement = SystemPlacement::FirstUser;  // v1
  } else {
    spec.system_placement = SystemPlacement::Refused;  // v0.1, v0.2
  }
}

}  // namespace

std::string_view family_name(ChatTemplateFamily family) {
  switch (family) {
    case ChatTemplateFamily::Plain:
      return "plain";
    case ChatTemplateFamily::ChatMl:
      return "chatml";
    case ChatTemplateFamily::Llama2:
      return "llama2";
    case ChatTemplateFamily::Llama3:
      return "llama3";
    case ChatTemplateFamily::Mistral:
      return "mistral";
    case ChatTemplateFamily::Phi3:
      return "phi3";
    case ChatTemplateFamily::Zephyr:
      return "zephyr";
    case ChatTemplateFamily::Gemma:
      return "gemma";
  }
  return "plain";
}

ChatTemplateSpec detect_chat_template(std::string_view s) {
  ChatTemplateSpec spec;
  if (s.empty()) return spec;
  spec.renders_bos = contains(s, "bos_token");

  // Most specific markers first: several families share [INST] or <|user|>.
  if (contains(s, "<|im_start|>") && !contains(s, "<|im_sep|>")) {  // phi-4 is not ChatML
    spec.family = ChatTemplateFamily::ChatMl;
    spec.default_system = find_chatml_default_system(s);
  } else if (contains(s, "<|start_header_id|>")) {
    spec.family = ChatTemplateFamily::Llama3;
    detect_llama3_variant(s, spec);
  } else if (contains(s, "<start_of_turn>")) {
    spec.family = ChatTemplateFamily::Gemma;
    spec.system_placement =
        contains(s, "first_user_prefix") ? SystemPlacement::FirstUser : SystemPlacement::Refused;
  } else if (contains(s, "[INST]")) {
    if (contains(s, "<<SYS>>")) {
      spec.family = ChatTemplateFamily::Llama2;
    } else {
      spec.family = ChatTemplateFamily::Mistral;
      detect_mistral_variant(s, spec);
    }
  } else if (contains(s, "<|user|>") && contains(s, "<|assistant|>")) {
    if (contains(s, "<|end|>")) {
      spec.family = ChatTemplateFamily::Phi3;
    } else if (contains(s, "eos_token")) {
      spec.family = ChatTemplateFamily::Zephyr;
    }
  }
  if (spec.family == ChatTemplateFamily::Plain) spec.renders_bos = false;
  return spec;
}

}  // namespace ondol::engine
