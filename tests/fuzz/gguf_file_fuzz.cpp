// libFuzzer target: arbitrary bytes into the GGUF reader. Every input must end in a clean
// Error or a parse whose views lie inside the input; ASan/UBSan catch the rest.
// Seed corpus: the real files in ../shared (models/, fixtures/tokenizer/).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "engine/gguf/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ondol;
  using namespace ondol::engine;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  for (const bool allow_unsupported : {false, true}) {
    Result<GgufFile> file =
        GgufFile::open_memory(bytes, GgufOpenOptions{.allow_unsupported_types = allow_unsupported});
    if (!file.ok()) {
      if (file.error().message.empty()) std::abort();
      continue;
    }
    const std::byte* end = bytes.data() + bytes.size();
    for (const GgufTensor& t : file->tensors()) {
      if (t.data < bytes.data() || t.data > end ||
          t.num_bytes > static_cast<size_t>(end - t.data)) {
        std::abort();
      }
    }
    // Touch every metadata value through the typed accessors.
    for (const GgufMetadataEntry& e : file->metadata()) {
      (void)file->get_string(e.key);
      (void)file->get_u32(e.key);
      (void)file->get_f32(e.key);
      (void)file->get_i32_array(e.key);
      (void)file->get_f32_array(e.key);
      (void)file->get_string_array(e.key);
    }
  }
  return 0;
}
