// ChatTemplateSpec: what ondol needs to know about a model's Jinja chat template to render it
// in C++ — the family, recognised by characteristic markers (the template is never run), and
// the few details in which the official templates of a family differ. See
// docs/engine-sampling-chat.md for the table of markers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ondol::engine {

enum class ChatTemplateFamily : uint8_t {
  Plain,    // no template, or one not recognised: "System: ...\nUser: ...\nAssistant:"
  ChatMl,   // <|im_start|>role\n...<|im_end|>\n (Qwen, Yi, OpenHermes, ...)
  Llama2,   // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>
  Llama3,   // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  Mistral,  // [INST] ... [/INST] without a <<SYS>> block; variants below
  Phi3,     // <|user|>\n...<|end|>\n<|assistant|>\n
  Zephyr,   // <|user|>\n...</s>\n<|assistant|>\n (Zephyr, TinyLlama)
  Gemma,    // <start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n
};

std::string_view family_name(ChatTemplateFamily family);

// Where a family that has no system turn puts the system prompt.
enum class SystemPlacement : uint8_t {
  Refused,    // the official template raises an error (Mistral v0.1/v0.2, Gemma 1/2)
  FirstUser,  // prepended to the first user turn (Mistral "v1", Gemma 3)
  LastUser,   // prepended to the last user turn (Mistral "v3", "v3-tekken")
  OwnTurn,    // a turn of its own ([SYSTEM_PROMPT] in Mistral "v7")
};

struct ChatTemplateSpec {
  ChatTemplateFamily family = ChatTemplateFamily::Plain;
  bool renders_bos = false;  // the template writes bos_token itself
  // Llama 3.1+: a system turn "Cutting Knowledge Date: ...\nToday Date: ..." always comes
  // first, the system message (trimmed) after it.
  bool llama3_date_preamble = false;
  std::string date_default;      // date_string's default in the template ("26 Jul 2024")
  bool date_from_clock = false;  // the template prefers strftime_now("%d %b %Y") (Llama 3.2)
  // ChatML: the system prompt the template inserts when the conversation has none (Qwen2).
  std::string default_system;
  // Mistral and Gemma.
  SystemPlacement system_placement = SystemPlacement::Refused;
  // Mistral: the exact text around the turns, which differs between template versions.
  std::string_view inst_open = "[INST] ";
  std::string_view inst_close = " [/INST]";
  bool assistant_leading_space = false;  // ' ' + message['content']
  bool assistant_trim = false;           // message['content']|trim
  bool alternation_checked = true;       // raise when roles do not alternate
};

// Recognises the family and variant of a tokenizer.chat_template source; Plain when empty or
// unknown.
ChatTemplateSpec detect_chat_template(std::string_view source);

}  // namespace ondol::engine
