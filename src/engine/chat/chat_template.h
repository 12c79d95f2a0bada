// ChatTemplate: renders a chat conversation into the prompt text a model was trained on,
// for the template families ChatTemplateSpec recognises, exactly as the official Jinja
// template would (it is never run). Immutable; safe to share between threads.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "engine/chat/chat_message.h"
#include "engine/chat/chat_template_spec.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"

namespace ondol::engine {

inline constexpr std::string_view kChatTemplateKey = "tokenizer.chat_template";

// The texts the template substitutes for bos_token and eos_token.
struct ChatTemplateTokens {
  std::string bos;
  std::string eos;
};

struct ChatApplyOptions {
  bool add_generation_prompt = true;
  // The date for templates that print today's date (Llama 3.2: strftime_now("%d %b %Y"),
  // e.g. "23 Nov 2026"); empty: the system clock, in UTC.
  std::string_view today;
};

class ChatTemplate {
 public:
  // Recognises `source` (a Jinja chat template; empty for none).
  static ChatTemplate from_source(std::string_view source, ChatTemplateTokens tokens);
  // Reads tokenizer.chat_template (absent: the plain fallback) and the BOS/EOS texts.
  static Result<ChatTemplate> from_gguf(const GgufFile& file, const Tokenizer& tokenizer);

  const ChatTemplateSpec& spec() const { return spec_; }
  ChatTemplateFamily family() const { return spec_.family; }
  // The plain fallback is in use: the model has no template ondol recognises (log it).
  bool is_fallback() const { return spec_.family == ChatTemplateFamily::Plain; }
  // For the log line: why the fallback is in use; empty when it is not.
  std::string_view fallback_reason() const {
    if (!is_fallback()) return {};
    return has_source_ ? "chat template not recognised" : "the model has no chat template";
  }
  // The rendered text contains the BOS token's text where the template writes bos_token.
  bool renders_bos() const { return spec_.renders_bos; }
  // How to encode the rendered prompt: control tokens parsed (the markers are tokens), and the
  // tokenizer's own BOS only when the template did not write one (never a double BOS).
  EncodeOptions encode_options() const {
    return EncodeOptions{.add_special = !renders_bos(), .parse_special = true};
  }

  // The prompt; an Error (the request's fault: 400) where the official template raises one
  // (roles that do not alternate, a system role the family refuses) or `messages` is empty.
  Result<std::string> apply(std::span<const ChatMessage> messages,
                            const ChatApplyOptions& options) const;
  Result<std::string> apply(std::span<const ChatMessage> messages,
                            bool add_generation_prompt = true) const {
    return apply(messages, ChatApplyOptions{.add_generation_prompt = add_generation_prompt});
  }

 private:
  ChatTemplate(ChatTemplateSpec spec, ChatTemplateTokens tokens, bool has_source)
      : spec_(std::move(spec)), tokens_(std::move(tokens)), has_source_(has_source) {}

  Result<std::string> apply_chatml(std::span<const ChatMessage> m, bool gen) const;
  Result<std::string> apply_llama2(std::span<const ChatMessage> m) const;
  Result<std::string> apply_llama3(std::span<const ChatMessage> m,
                                   const ChatApplyOptions& options) const;
  Result<std::string> apply_mistral(std::span<const ChatMessage> m) const;
  Result<std::string> apply_phi3(std::span<const ChatMessage> m) const;
  Result<std::string> apply_zephyr(std::span<const ChatMessage> m, bool gen) const;
  Result<std::string> apply_gemma(std::span<const ChatMessage> m, bool gen) const;
  Result<std::string> apply_plain(std::span<const ChatMessage> m, bool gen) const;
  std::string_view bos() const { return spec_.renders_bos ? tokens_.bos : std::string_view{}; }

  ChatTemplateSpec spec_;
  ChatTemplateTokens tokens_;
  bool has_source_ = false;
};

}  // namespace ondol::engine
