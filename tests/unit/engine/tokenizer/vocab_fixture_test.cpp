// Tokenizer test vectors: ../shared/fixtures/tokenizer/NAME.gguf.inp holds test strings, each
// followed by a line "__ggml_vocab_test__" (so a string may itself begin or end with newlines:
// only the "\n" just before the marker line is not part of it); NAME.gguf.out holds, per string,
// one line of the expected ids, encoded without BOS/EOS and without parsing control tokens.
// Only the vocabularies that pass in full are listed; see docs/engine-gguf-tokenizer.md.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"

namespace ondol::engine {
namespace {

const std::string kFixtures = std::string(ONDOL_SHARED_DIR) + "/fixtures/tokenizer/";
constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";

struct Case {
  std::string text;
  std::vector<TokenId> expected;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<Case> load_cases(const std::string& name) {
  const std::string inp = read_text(kFixtures + name + ".gguf.inp");
  const std::string out = read_text(kFixtures + name + ".gguf.out");
  std::vector<Case> cases;
  size_t pos = 0;
  for (size_t sep; (sep = inp.find(kSeparator, pos)) != std::string::npos;) {
    cases.push_back(Case{inp.substr(pos, sep - pos), {}});
    pos = sep + kSeparator.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    if (i >= cases.size()) {
      ADD_FAILURE() << name << ".out has more lines than .inp has strings";
      break;
    }
    std::istringstream ids(line);
    for (TokenId id; ids >> id;) cases[i].expected.push_back(id);
    ++i;
  }
  EXPECT_EQ(i, cases.size()) << name << ": .out lines vs .inp strings";
  return cases;
}

std::string show(const std::vector<TokenId>& ids) {
  std::string s;
  for (TokenId id : ids) s += " " + std::to_string(id);
  return s;
}

class VocabFixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabFixtureTest, EncodesEveryTestString) {
  const std::string name = GetParam();
  Result<GgufFile> file = GgufFile::open(kFixtures + name + ".gguf");
  ASSERT_TRUE(file.ok()) << file.error().message;
  Result<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().message;
  const std::vector<Case> cases = load_cases(name);
  ASSERT_GT(cases.size(), 40u);
  for (const Case& c : cases) {
    const std::vector<TokenId> ids =
        tokenizer->encode(c.text, EncodeOptions{.add_special = false, .parse_special = false});
    EXPECT_EQ(ids, c.expected) << name << " text '" << c.text << "'\n got:     " << show(ids)
                               << "\n expected:" << show(c.expected);
  }
}

// Every vocabulary with vectors and a GGUF here passes in full.
INSTANTIATE_TEST_SUITE_P(Fixtures, VocabFixtureTest,
                         ::testing::Values("ggml-vocab-llama-spm", "ggml-vocab-phi-3",
                                           "ggml-vocab-gpt-2", "ggml-vocab-mpt",
                                           "ggml-vocab-falcon", "ggml-vocab-starcoder",
                                           "ggml-vocab-refact", "ggml-vocab-deepseek-llm",
                                           "ggml-vocab-deepseek-coder", "ggml-vocab-bert-bge"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param.substr(std::string("ggml-vocab-").size());
                           for (char& ch : n) {
                             if (ch == '-') ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace ondol::engine
