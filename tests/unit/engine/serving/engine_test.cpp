// Batched == unbatched: requests served together (continuous batching, with prefix caching on or
// off, chunked prefill, forced preemption, the int8 KV cache) produce exactly what each produces
// alone, for greedy and seeded sampling, on stories260K and a dummy model.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/kernels/weight_type.h"
#include "engine/model/dummy_model.h"
#include "engine_support.h"
#include "model_test_support.h"

namespace ondol::engine {
namespace {

using testing::Collector;
using testing::shared_path;
using testing::TempDir;
using testing::wait_idle;

struct Prompt {
  std::string text;
  SamplingParams sampling;
};

// Prompts sharing long prefixes (so that the cache has something to find), repeats of the same
// prompt, and short unrelated ones; greedy and seeded.
std::vector<Prompt> make_prompts() {
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park with her friends. One day, she saw a big red ball under a tree";
  std::vector<Prompt> out;
  auto add = [&](std::string text, float temperature, uint64_t seed, int max_tokens) {
    Prompt p{std::move(text), {}};
    p.sampling.temperature = temperature;
    if (temperature > 0) p.sampling.seed = seed;
    p.sampling.max_tokens = max_tokens;
    p.sampling.ignore_eos = true;
    out.push_back(std::move(p));
  };
  add(story, 0, 0, 24);
  add(story + " and she ran to get it.", 0, 0, 20);
  add(story, 0, 0, 24);  // the same prompt again: all but its last block from the cache
  add(story + ". Her mom said", 0.8f, 7, 20);
  add("Tom had a dog.", 0, 0, 28);
  add(story + " and she ran to get it. The ball was", 0.8f, 11, 16);
  add("The sun was hot", 0.9f, 3, 24);
  add(story + " and she ran to get it.", 0, 0, 12);
  return out;
}

struct Variant {
  const char* name;
  bool prefix_caching;
  int max_num_batched_tokens;  // small: prompts are split across steps
  bool tiny_kv;                // room for one sequence of max_model_len: preemptions
  int block_size = 16;
  const char* kv_cache_dtype = "auto";
};

std::vector<EngineOutput> run_all(const std::string& model, const Variant& v,
                                  const std::vector<Prompt>& prompts, EngineStats* stats_out) {
  EngineOptions o{.model_path = model};
  o.num_threads = 2;
  o.max_model_len = 128;
  o.max_num_seqs = 8;
  o.max_num_batched_tokens = v.max_num_batched_tokens;
  o.enable_prefix_caching = v.prefix_caching;
  o.block_size = v.block_size;
  o.kv_cache_dtype = v.kv_cache_dtype;
  o.check_invariants = true;
  if (v.tiny_kv) o.kv_cache_bytes = 1;  // the engine rounds up to one max_model_len sequence
  auto engine = Engine::start(o);
  EXPECT_TRUE(engine.ok()) << (engine.ok() ? "" : engine.error().message);
  if (!engine.ok()) return {};
  // The first request runs alone first, so that the others find its blocks in the cache; the
  // rest arrive together.
  std::vector<std::unique_ptr<Collector>> collectors;
  EngineOutput first;
  for (const Prompt& p : prompts) {
    EngineRequest r;
    r.chat = false;
    r.prompt = p.text;
    r.sampling = p.sampling;
    auto ch = (*engine)->submit(std::move(r));
    EXPECT_TRUE(ch.ok());
    if (!ch.ok()) return {};
    collectors.push_back(std::make_unique<Collector>(*ch));
    if (collectors.size() == 1) first = collectors.front()->wait();
  }
  std::vector<EngineOutput> outputs{first};
  for (size_t i = 1; i < collectors.size(); ++i) outputs.push_back(collectors[i]->wait());
  EXPECT_TRUE(wait_idle(**engine));
  EngineStats s = (*engine)->stats();
  EXPECT_EQ(s.invariant_violation, "");
  EXPECT_EQ(s.num_blocks_free, s.num_blocks) << "blocks leaked";
  if (stats_out) *stats_out = s;
  return outputs;
}

// Each prompt alone, one at a time, no prefix cache: the reference.
std::vector<EngineOutput> run_alone(const std::string& model, const std::vector<Prompt>& prompts,
                                    const std::string& kv_cache_dtype) {
  EngineOptions o{.model_path = model};
  o.num_threads = 2;
  o.max_model_len = 128;
  o.max_num_seqs = 1;
  o.enable_prefix_caching = false;
  o.kv_cache_dtype = kv_cache_dtype;
  auto engine = Engine::start(o);
  EXPECT_TRUE(engine.ok());
  std::vector<EngineOutput> outputs;
  if (!engine.ok()) return outputs;
  for (const Prompt& p : prompts) {
    EngineRequest r;
    r.chat = false;
    r.prompt = p.text;
    r.sampling = p.sampling;
    auto ch = (*engine)->submit(std::move(r));
    EXPECT_TRUE(ch.ok());
    if (!ch.ok()) return outputs;
    Collector c(*ch);
    outputs.push_back(c.wait());
  }
  return outputs;
}

class BatchedEqualsUnbatched : public ::testing::TestWithParam<std::string> {
 protected:
  static std::string model_path(const std::string& which, TempDir& dir) {
    if (which == "stories260K") return shared_path("models/stories260K.gguf");
    const std::string path = dir.file("tiny.gguf");
    EXPECT_TRUE(write_dummy_model("tiny", kernels::WeightType::kQ8_0, path, 5).ok());
    return path;
  }
};

TEST_P(BatchedEqualsUnbatched, InEveryVariant) {
  TempDir dir;
  const std::string model = model_path(GetParam(), dir);
  const std::vector<Prompt> prompts = make_prompts();
  std::map<std::string, std::vector<EngineOutput>> alone_by_dtype;
  for (const char* dtype : {"auto", "int8"}) {
    std::vector<EngineOutput>& alone = alone_by_dtype[dtype];
    alone = run_alone(model, prompts, dtype);
    ASSERT_EQ(alone.size(), prompts.size());
    for (const EngineOutput& a : alone) ASSERT_EQ(a.error, "");
  }

  const Variant variants[] = {
      {"no prefix caching", false, 512, false},
      {"prefix caching", true, 512, false},
      {"chunked prefill, prefix caching", true, 7, false},
      {"chunked prefill", false, 5, false},
      {"block size 4, prefix caching", true, 64, false, 4},
      {"preemption", false, 512, true},
      {"preemption, prefix caching, chunked prefill", true, 9, true},
      // This one drew another token for a seeded prompt before tokens named their role: a
      // prompt chunk under 4 tokens then attended on the per-row path, in other bits.
      {"int8 KV, prefix caching, chunked prefill", true, 7, false, 16, "int8"},
      {"int8 KV, preemption, chunked prefill", false, 9, true, 16, "int8"},
  };
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    const std::vector<EngineOutput>& alone = alone_by_dtype.at(v.kv_cache_dtype);
    EngineStats stats;
    const std::vector<EngineOutput> together = run_all(model, v, prompts, &stats);
    ASSERT_EQ(together.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      SCOPED_TRACE(fmt::format("prompt {}", i));
      EXPECT_EQ(together[i].error, "");
      EXPECT_EQ(together[i].text, alone[i].text);
      EXPECT_EQ(together[i].completion_tokens, alone[i].completion_tokens);
      EXPECT_EQ(together[i].prompt_tokens, alone[i].prompt_tokens);
    }
    if (v.tiny_kv) {
      EXPECT_GT(stats.num_preemptions, 0);
    }
    if (v.prefix_caching) {
      EXPECT_GT(stats.prefix_cache_hits, 0);
    } else {
      EXPECT_EQ(stats.prefix_cache_queries, 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, BatchedEqualsUnbatched,
                         ::testing::Values("stories260K", "dummy"));

}  // namespace
}  // namespace ondol::engine
