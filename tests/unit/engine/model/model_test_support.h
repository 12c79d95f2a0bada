// Helpers shared by the model tests: temporary files, prefill + greedy decoding through the
// KV cache, and logit comparisons.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "engine/model/batch.h"
#include "engine/model/kv_cache.h"
#include "engine/model/llama_model.h"

namespace ondol::engine::testing {

inline std::string shared_path(const std::string& relative) {
  return std::string(ONDOL_SHARED_DIR) + "/" + relative;
}

// A directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("ondol-model-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" +
             info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline int argmax(std::span<const float> v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

inline double cosine_similarity(std::span<const float> a, std::span<const float> b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// One sequence in slot 0 of its own cache: prefill `prompt` in one forward, then decode.
class SingleSequence {
 public:
  SingleSequence(LlamaModel& model, KvDtype dtype) : model_(model) {
    const int blocks = (model.max_context() + kDefaultBlockSize - 1) / kDefaultBlockSize;
    cache_ = std::make_unique<KvCache>(
        std::move(KvCache::create(model.kv_cache_config(blocks, dtype)).value()));
    table_ptr_ = &table_;
  }

  // Runs tokens at the next positions; returns the logits after the last one.
  std::vector<float> feed(std::span<const TokenId> tokens,
                          TokenRole role = TokenRole::kUnspecified) {
    std::vector<BatchToken> batch;
    for (size_t i = 0; i < tokens.size(); ++i) {
      batch.push_back({.token = tokens[i],
                       .position = static_cast<int32_t>(length_ + i),
                       .seq_slot = 0,
                       .wants_logits = i + 1 == tokens.size(),
                       .role = role});
    }
    EXPECT_TRUE(cache_->reserve(table_, length_ + static_cast<int64_t>(tokens.size())));
    std::vector<float> logits(model_.vocab_size());
    const BlockTable* tables[] = {table_ptr_};
    Status s = model_.forward(Batch{batch}, KvView{cache_.get(), tables}, logits.data());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    length_ += static_cast<int64_t>(tokens.size());
    return logits;
  }

  // Greedy: prompt, then num_tokens argmax picks; returns the picks.
  std::vector<TokenId> greedy(std::span<const TokenId> prompt, int num_tokens) {
    std::vector<TokenId> out;
    std::vector<float> logits = feed(prompt);
    for (int i = 0; i < num_tokens; ++i) {
      const TokenId next = argmax(logits);
      out.push_back(next);
      if (i + 1 < num_tokens) logits = feed(std::span<const TokenId>(&out.back(), 1));
    }
    return out;
  }

 private:
  LlamaModel& model_;
  std::unique_ptr<KvCache> cache_;
  BlockTable table_;
  const BlockTable* table_ptr_ = nullptr;
  int64_t length_ = 0;
};

}  // namespace ondol::engine::testing
