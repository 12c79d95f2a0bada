// Corpus replay: the GCC-buildable sibling of tests/fuzz/gguf_file_fuzz.cpp. Real GGUF files
// are truncated at many offsets and corrupted at header fields; the reader must answer each
// variant with a clean Error (or a valid parse whose views stay inside the buffer), never a
// crash. Each variant lives in a heap buffer of exactly its size, so under the asan preset any
// read past the end is reported.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/gguf/gguf_file.h"

namespace ondol::engine {
namespace {

const std::string kShared = ONDOL_SHARED_DIR;

constexpr size_t kDenseTruncations = 160;   // every cut in the first bytes (header fields)
constexpr size_t kSpreadTruncations = 40;   // cuts spread over the rest of the file
constexpr size_t kRandomCorruptions = 64;  // per file, fixed seed
constexpr uint32_t kSeed = 20240611;

std::vector<std::byte> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

std::vector<std::string> corpus_files() {
  std::vector<std::string> files = {kShared + "/models/stories260K.gguf"};
  for (const auto& entry : std::filesystem::directory_iterator(kShared + "/fixtures/tokenizer")) {
    if (entry.path().extension() == ".gguf") files.push_back(entry.path().string());
  }
  std::sort(files.begin() + 1, files.end());
  return files;
}

bool inside(const void* p, size_t n, const std::vector<std::byte>& buffer) {
  const auto* b = static_cast<const std::byte*>(p);
  return b >= buffer.data() && n <= buffer.size() &&
         static_cast<size_t>(b - buffer.data()) <= buffer.size() - n;
}

// Parses one variant; a successful parse must only hand out views inside the buffer.
void replay(const std::vector<std::byte>& variant, bool must_fail, const std::string& label) {
  Result<GgufFile> r = GgufFile::open_memory(variant);
  if (!r.ok()) {
    EXPECT_FALSE(r.error().message.empty()) << label;
    return;
  }
  ASSERT_FALSE(must_fail) << label << ": parsed although required bytes are missing";
  for (const GgufTensor& t : r->tensors()) {
    ASSERT_TRUE(inside(t.data, t.num_bytes, variant)) << label << " tensor " << t.name;
  }
  for (const GgufMetadataEntry& e : r->metadata()) {
    ASSERT_TRUE(inside(e.key.data(), e.key.size(), variant)) << label;
    if (e.value.type() == GgufType::String) {
      ASSERT_TRUE(inside(e.value.as_string().data(), e.value.as_string().size(), variant)) << label;
    }
  }
}

// The bytes a file cannot do without: the whole header and every tensor's data.
size_t required_size(const GgufFile& file) {
  if (file.tensors().empty()) return file.file_size();  // vocab files end with their last string
  uint64_t end = 0;
  for (const GgufTensor& t : file.tensors()) end = std::max(end, t.offset + t.num_bytes);
  return file.data_offset() + end;
}

class GgufCorpusReplayTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufCorpusReplayTest, TruncationsFailCleanly) {
  const std::vector<std::byte> original = read_all(GetParam());
  ASSERT_FALSE(original.empty());
  Result<GgufFile> whole = GgufFile::open_memory(original);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  const size_t required = required_size(*whole);
  ASSERT_LE(required, original.size());

  std::vector<size_t> cuts;
  for (size_t n = 0; n < std::min(original.size(), kDenseTruncations); ++n) cuts.push_back(n);
  for (size_t i = 0; i < kSpreadTruncations; ++i) {
    cuts.push_back(original.size() * i / kSpreadTruncations);
  }
  cuts.push_back(required - 1);
  cuts.push_back(original.size() - 1);
  for (size_t cut : cuts) {
    const std::vector<std::byte> variant(original.begin(), original.begin() + cut);
    replay(variant, cut < required, "cut at " + std::to_string(cut));
  }
}

TEST_P(GgufCorpusReplayTest, CorruptionsFailCleanly) {
  const std::vector<std::byte> original = read_all(GetParam());
  Result<GgufFile> whole = GgufFile::open_memory(original);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  // Corrupt the parsed structure (header, metadata, tensor table), where lengths live.
  const size_t header_end = std::min<size_t>(whole->data_offset(), original.size());

  const uint64_t kExtremes[] = {0,
                                1,
                                0xffffffffffffffffull,
                                0x8000000000000000ull,
                                original.size(),
                                original.size() + 1,
                                0xffffffffull};
  std::mt19937 rng(kSeed);
  auto corrupt_at = [&](size_t pos, uint64_t value, size_t width, const std::string& label) {
    std::vector<std::byte> variant = original;
    if (pos + width > variant.size()) return;
    std::memcpy(variant.data() + pos, &value, width);
    replay(variant, false, label);
  };
  // Header fields: version, tensor count, metadata count.
  for (uint64_t v : kExtremes) {
    corrupt_at(4, v, 4, "version");
    corrupt_at(8, v, 8, "tensor count");
    corrupt_at(16, v, 8, "metadata count");
    corrupt_at(24, v, 8, "first key length");
  }
  for (size_t i = 0; i < kRandomCorruptions; ++i) {
    const size_t pos = std::uniform_int_distribution<size_t>(0, header_end - 1)(rng);
    const size_t kind = i % 3;
    if (kind == 0) {
      corrupt_at(pos, std::uniform_int_distribution<uint32_t>(0, 255)(rng), 1,
                 "byte at " + std::to_string(pos));
    } else {
      const uint64_t v = kExtremes[std::uniform_int_distribution<size_t>(0, 6)(rng)];
      corrupt_at(pos, v, kind == 1 ? 8 : 4, "field at " + std::to_string(pos));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RealFiles, GgufCorpusReplayTest, ::testing::ValuesIn(corpus_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = std::filesystem::path(info.param).stem().string();
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace ondol::engine
