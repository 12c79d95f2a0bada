// Golden prompts per template family for one conversation: system + user + assistant + user.
// Source of truth: the official Jinja templates in chat_templates_fixture.h, evaluated by hand
// the way transformers renders them (trim_blocks and lstrip_blocks on, `|trim` binding to the
// message content only, content.strip() on the whole content); llama.cpp's
// tests/test-chat-template.cpp ("expected_output_jinja") confirms the Mistral, Llama 3 and
// Gemma whitespace. The assistant message has surrounding spaces so that the templates that
// strip and those that do not give different, checked results.
#include "engine/chat/chat_template.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "chat_templates_fixture.h"

namespace ondol::engine {
namespace {

namespace t = test_templates;

const std::vector<ChatMessage> kConversation = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello!"},
    {"assistant", "  Hi there.  "},
    {"user", "Who are you?"},
};
const std::vector<ChatMessage> kNoSystem(kConversation.begin() + 1, kConversation.end());

const ChatTemplateTokens kSpm{.bos = "<s>", .eos = "</s>"};

std::string render(std::string_view source, ChatTemplateTokens tokens,
                   const std::vector<ChatMessage>& messages, bool gen = true) {
  Result<std::string> r = ChatTemplate::from_source(source, std::move(tokens)).apply(messages, gen);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : std::string();
}

std::string error_of(std::string_view source, const std::vector<ChatMessage>& messages) {
  Result<std::string> r = ChatTemplate::from_source(source, kSpm).apply(messages);
  return r.ok() ? std::string("(no error)") : r.error().message;
}

TEST(ChatTemplate, ChatMl) {
  EXPECT_EQ(render(t::kChatMl, {}, kConversation),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHello!<|im_end|>\n"
            "<|im_start|>assistant\n  Hi there.  <|im_end|>\n"
            "<|im_start|>user\nWho are you?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render(t::kChatMl, {}, kNoSystem, /*gen=*/false),
            "<|im_start|>user\nHello!<|im_end|>\n"
            "<|im_start|>assistant\n  Hi there.  <|im_end|>\n"
            "<|im_start|>user\nWho are you?<|im_end|>\n");
}

TEST(ChatTemplate, QwenAddsItsDefaultSystemOnlyWhenThereIsNone) {
  const ChatTemplateTokens qwen{.bos = "", .eos = "<|im_end|>"};
  EXPECT_EQ(render(t::kQwen2, qwen, kConversation), render(t::kChatMl, qwen, kConversation));
  EXPECT_EQ(render(t::kQwen25, qwen, kNoSystem),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n"
            "<|im_start|>user\nHello!<|im_end|>\n"
            "<|im_start|>assistant\n  Hi there.  <|im_end|>\n"
            "<|im_start|>user\nWho are you?<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama2) {
  // bos_token + '[INST] ' + content.strip() + ' [/INST]' per user turn, the <<SYS>> block
  // inside the first; ' ' + content.strip() + ' ' + eos_token per assistant turn.
  EXPECT_EQ(render(t::kLlama2, kSpm, kConversation),
            "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello! [/INST]"
            " Hi there. </s>"
            "<s>[INST] Who are you? [/INST]");
  EXPECT_EQ(error_of(t::kLlama2, {{"user", "a"}, {"user", "b"}}),
            "Conversation roles must alternate user/assistant/user/assistant/...");
}

TEST(ChatTemplate, Llama3) {
  const ChatTemplateTokens llama3{.bos = "<|begin_of_text|>", .eos = "<|eot_id|>"};
  EXPECT_EQ(render(t::kLlama3, llama3, kConversation),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama31And32DatePreamble) {
  const ChatTemplateTokens llama3{.bos = "<|begin_of_text|>", .eos = "<|eot_id|>"};
  EXPECT_EQ(render(t::kLlama31, llama3, kConversation),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
            "You are a helpful assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Without a system message the system turn is still there, empty after the dates; 3.2 takes
  // today's date (strftime_now), here fixed by the caller.
  const ChatTemplate llama32 = ChatTemplate::from_source(t::kLlama32, llama3);
  Result<std::string> r = llama32.apply(kNoSystem, {.today = "23 Nov 2026"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r,
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 23 Nov 2026\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // From the clock: "DD Mon YYYY".
  r = llama32.apply(kNoSystem);
  ASSERT_TRUE(r.ok());
  const size_t at = r->find("Today Date: ");
  ASSERT_NE(at, std::string::npos);
  const std::string date = r->substr(at + 12, 11);
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(date[0])) && date[2] == ' ' &&
              date[6] == ' ' && std::isdigit(static_cast<unsigned char>(date[10])))
      << date;
}

TEST(ChatTemplate, MistralV02RefusesSystem) {
  EXPECT_EQ(render(t::kMistralV02, kSpm, kNoSystem),
            "<s>[INST] Hello! [/INST]  Hi there.  </s>[INST] Who are you? [/INST]");
  EXPECT_EQ(error_of(t::kMistralV02, kConversation),
            "Conversation roles must alternate user/assistant/user/assistant/...");
}

TEST(ChatTemplate, MistralV1SystemOnFirstTurn) {
  EXPECT_EQ(render(t::kMistralV1, kSpm, kConversation),
            "<s> [INST] You are a helpful assistant.\n\nHello! [/INST]   Hi there.  </s>"
            " [INST] Who are you? [/INST]");
}

TEST(ChatTemplate, MistralV3SystemOnLastTurn) {
  EXPECT_EQ(render(t::kMistralV3, kSpm, kConversation),
            "<s>[INST] Hello![/INST] Hi there.</s>"
            "[INST] You are a helpful assistant.\n\nWho are you?[/INST]");
  EXPECT_EQ(render(t::kMistralTekken, kSpm, kConversation),
            "<s>[INST]Hello![/INST]  Hi there.  </s>"
            "[INST]You are a helpful assistant.\n\nWho are you?[/INST]");
  EXPECT_EQ(error_of(t::kMistralV3, {{"user", "a"}, {"user", "b"}}),
            "Conversation roles must alternate user/assistant/user/assistant/...");
  // Tool turns are outside what ondol renders; the template's own error for other roles.
  EXPECT_EQ(error_of(t::kMistralV3, {{"user", "a"}, {"tool", "b"}}),
            "Only user and assistant roles are supported, with the exception of an initial "
            "optional system message!");
}

TEST(ChatTemplate, MistralV7SystemPromptTurn) {
  EXPECT_EQ(render(t::kMistralV7, kSpm, kConversation),
            "<s>[SYSTEM_PROMPT] You are a helpful assistant.[/SYSTEM_PROMPT]"
            "[INST] Hello![/INST]   Hi there.  </s>[INST] Who are you?[/INST]");
}

TEST(ChatTemplate, Phi3DropsSystem) {
  const std::string phi3 =
      "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') "
      "%}{{'<|user|>' "
      "+ '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif "
      "(message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% "
      "endfor %}";
  EXPECT_EQ(render(phi3, kSpm, kConversation),
            "<s><|user|>\nHello!<|end|>\n<|assistant|>\n"
            "  Hi there.  <|end|>\n"
            "<|user|>\nWho are you?<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, ZephyrTinyLlama) {
  // transformers' trim_blocks removes the newline after {% %} tags but not after {{ }}.
  EXPECT_EQ(render(t::kZephyr, kSpm, kConversation),
            "<|system|>\nYou are a helpful assistant.</s>\n"
            "<|user|>\nHello!</s>\n"
            "<|assistant|>\n  Hi there.  </s>\n"
            "<|user|>\nWho are you?</s>\n"
            "<|assistant|>\n");
  EXPECT_FALSE(ChatTemplate::from_source(t::kZephyr, kSpm).renders_bos());
  EXPECT_TRUE(ChatTemplate::from_source(t::kZephyr, kSpm).encode_options().add_special);
}

TEST(ChatTemplate, Gemma) {
  const ChatTemplateTokens gemma{.bos = "<bos>", .eos = "<eos>"};
  EXPECT_EQ(render(t::kGemma, gemma, kNoSystem),
            "<bos><start_of_turn>user\nHello!<end_of_turn>\n"
            "<start_of_turn>model\nHi there.<end_of_turn>\n"
            "<start_of_turn>user\nWho are you?<end_of_turn>\n"
            "<start_of_turn>model\n");
  EXPECT_EQ(error_of(t::kGemma, kConversation), "System role not supported");
  EXPECT_EQ(render(t::kGemma3, gemma, kConversation),
            "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n"
            "<start_of_turn>model\nHi there.<end_of_turn>\n"
            "<start_of_turn>user\nWho are you?<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(ChatTemplate, PlainFallback) {
  const ChatTemplate plain = ChatTemplate::from_source("", kSpm);
  EXPECT_TRUE(plain.is_fallback());
  EXPECT_EQ(plain.fallback_reason(), "the model has no chat template");
  EXPECT_EQ(ChatTemplate::from_source(t::kVicuna, kSpm).fallback_reason(),
            "chat template not recognised");
  EXPECT_EQ(ChatTemplate::from_source(t::kChatMl, kSpm).fallback_reason(), "");
  EXPECT_EQ(render("", kSpm, kConversation),
            "System: You are a helpful assistant.\nUser: Hello!\nAssistant:   Hi there.  \n"
            "User: Who are you?\nAssistant:");
  EXPECT_TRUE(plain.encode_options().add_special);
  EXPECT_TRUE(plain.encode_options().parse_special);
}

TEST(ChatTemplate, RefusesEmptyConversation) {
  EXPECT_FALSE(ChatTemplate::from_source(t::kChatMl, {}).apply({}).ok());
}

}  // namespace
}  // namespace ondol::engine
