#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "chat_templates_fixture.h"
#include "engine/chat/chat_template.h"
#include "engine/chat/chat_template_spec.h"

namespace ondol::engine {
namespace {

namespace t = test_templates;

TEST(ChatTemplateDetect, RecognisesEachFamilyByItsMarkers) {
  struct Case {
    std::string_view source;
    ChatTemplateFamily family;
    bool renders_bos;
  };
  const Case cases[] = {
      {t::kChatMl, ChatTemplateFamily::ChatMl, false},
      {t::kQwen2, ChatTemplateFamily::ChatMl, false},
      {t::kQwen25, ChatTemplateFamily::ChatMl, false},
      {t::kLlama2, ChatTemplateFamily::Llama2, true},
      {t::kLlama3, ChatTemplateFamily::Llama3, true},
      {t::kLlama31, ChatTemplateFamily::Llama3, true},
      {t::kLlama32, ChatTemplateFamily::Llama3, true},
      {t::kMistralV02, ChatTemplateFamily::Mistral, true},
      {t::kMistralV1, ChatTemplateFamily::Mistral, true},
      {t::kMistralV3, ChatTemplateFamily::Mistral, true},
      {t::kMistralTekken, ChatTemplateFamily::Mistral, true},
      {t::kMistralV7, ChatTemplateFamily::Mistral, true},
      {t::kZephyr, ChatTemplateFamily::Zephyr, false},
      {t::kGemma, ChatTemplateFamily::Gemma, true},
      {t::kGemma3, ChatTemplateFamily::Gemma, true},
      {t::kVicuna, ChatTemplateFamily::Plain, false},
      {t::kPhi4, ChatTemplateFamily::Plain, false},
      {"", ChatTemplateFamily::Plain, false},
  };
  for (const Case& c : cases) {
    const ChatTemplateSpec spec = detect_chat_template(c.source);
    EXPECT_EQ(spec.family, c.family) << c.source.substr(0, 80);
    EXPECT_EQ(spec.renders_bos, c.renders_bos) << c.source.substr(0, 80);
  }
}

TEST(ChatTemplateDetect, ReadsChatMlDefaultSystemPrompt) {
  EXPECT_EQ(detect_chat_template(t::kChatMl).default_system, "");
  EXPECT_EQ(detect_chat_template(t::kQwen2).default_system, "You are a helpful assistant.");
  // The first two "<|im_start|>system" in Qwen2.5 are followed by expressions, not literals.
  EXPECT_EQ(detect_chat_template(t::kQwen25).default_system,
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  // Templates stored with real newlines instead of "\n" escapes, and escaped quotes.
  EXPECT_EQ(
      detect_chat_template("{{ '<|im_start|>system\nIt\\'s me.<|im_end|>\n' }}").default_system,
      "It's me.");
}

TEST(ChatTemplateDetect, ReadsMistralVariants) {
  ChatTemplateSpec s = detect_chat_template(t::kMistralV02);
  EXPECT_EQ(s.inst_open, "[INST] ");
  EXPECT_EQ(s.inst_close, " [/INST]");
  EXPECT_FALSE(s.assistant_leading_space);
  EXPECT_EQ(s.system_placement, SystemPlacement::Refused);

  s = detect_chat_template(t::kMistralV1);
  EXPECT_EQ(s.inst_open, " [INST] ");
  EXPECT_EQ(s.inst_close, " [/INST]");
  EXPECT_TRUE(s.assistant_leading_space);
  EXPECT_FALSE(s.assistant_trim);
  EXPECT_EQ(s.system_placement, SystemPlacement::FirstUser);

  s = detect_chat_template(t::kMistralV3);
  EXPECT_EQ(s.inst_open, "[INST] ");
  EXPECT_EQ(s.inst_close, "[/INST]");
  EXPECT_TRUE(s.assistant_leading_space);
  EXPECT_TRUE(s.assistant_trim);
  EXPECT_EQ(s.system_placement, SystemPlacement::LastUser);

  s = detect_chat_template(t::kMistralTekken);
  EXPECT_EQ(s.inst_open, "[INST]");
  EXPECT_EQ(s.inst_close, "[/INST]");
  EXPECT_FALSE(s.assistant_leading_space);
  EXPECT_EQ(s.system_placement, SystemPlacement::LastUser);

  s = detect_chat_template(t::kMistralV7);
  EXPECT_EQ(s.system_placement, SystemPlacement::OwnTurn);
  EXPECT_FALSE(s.alternation_checked);
}

TEST(ChatTemplateDetect, ReadsLlama3DateVariant) {
  EXPECT_FALSE(detect_chat_template(t::kLlama3).llama3_date_preamble);
  ChatTemplateSpec s = detect_chat_template(t::kLlama31);
  EXPECT_TRUE(s.llama3_date_preamble);
  EXPECT_EQ(s.date_default, "26 Jul 2024");
  EXPECT_FALSE(s.date_from_clock);
  s = detect_chat_template(t::kLlama32);
  EXPECT_TRUE(s.llama3_date_preamble);
  EXPECT_TRUE(s.date_from_clock);
}

TEST(ChatTemplateDetect, GemmaSystemSupportByVersion) {
  EXPECT_EQ(detect_chat_template(t::kGemma).system_placement, SystemPlacement::Refused);
  EXPECT_EQ(detect_chat_template(t::kGemma3).system_placement, SystemPlacement::FirstUser);
}

// The Phi-3 vocabulary in ../shared carries its real tokenizer.chat_template.
TEST(ChatTemplateDetect, FromGgufWithAndWithoutTemplate) {
  const std::string dir = std::string(ONDOL_SHARED_DIR) + "/fixtures/tokenizer/";
  {
    Result<GgufFile> file = GgufFile::open(dir + "ggml-vocab-phi-3.gguf");
    ASSERT_TRUE(file.ok()) << file.error().message;
    Result<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().message;
    Result<ChatTemplate> tmpl = ChatTemplate::from_gguf(*file, *tokenizer);
    ASSERT_TRUE(tmpl.ok()) << tmpl.error().message;
    EXPECT_EQ(tmpl->family(), ChatTemplateFamily::Phi3);
    EXPECT_FALSE(tmpl->is_fallback());
    ASSERT_TRUE(tmpl->renders_bos());

    const std::vector<ChatMessage> messages = {{"user", "Hi"}};
    Result<std::string> prompt = tmpl->apply(messages);
    ASSERT_TRUE(prompt.ok());
    EXPECT_EQ(*prompt, "<s><|user|>\nHi<|end|>\n<|assistant|>\n");
    // Encoded as the engine will: exactly one BOS, first; the markers are single tokens.
    const std::vector<TokenId> ids = tokenizer->encode(*prompt, tmpl->encode_options());
    ASSERT_GE(ids.size(), 3u);
    EXPECT_EQ(ids[0], tokenizer->bos());
    EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer->bos()), 1);
    const TokenId user = tokenizer->vocab().find("<|user|>");
    ASSERT_NE(user, kNoToken);
    EXPECT_EQ(ids[1], user);
  }
  {
    Result<GgufFile> file = GgufFile::open(dir + "ggml-vocab-llama-spm.gguf");
    ASSERT_TRUE(file.ok());
    Result<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
    ASSERT_TRUE(tokenizer.ok());
    Result<ChatTemplate> tmpl = ChatTemplate::from_gguf(*file, *tokenizer);
    ASSERT_TRUE(tmpl.ok());
    EXPECT_TRUE(tmpl->is_fallback());
    EXPECT_FALSE(tmpl->renders_bos());
    // The fallback leaves BOS to the tokenizer, which adds it once.
    const std::vector<ChatMessage> messages = {{"user", "Hi"}};
    const std::vector<TokenId> ids =
        tokenizer->encode(*tmpl->apply(messages), tmpl->encode_options());
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], tokenizer->bos());
    EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer->bos()), 1);
  }
}

}  // namespace
}  // namespace ondol::engine
