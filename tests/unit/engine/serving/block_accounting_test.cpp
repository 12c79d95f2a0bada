// Block accounting under random load: arrivals at random moments, random prompt and output
// lengths, random aborts (waiting, prefilling or decoding), a cache small enough to preempt, with
// prefix caching on and off. The engine checks its invariants after every step; when it is idle
// again every block is free (cached or not) and every request that was not aborted finished.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>
#include <thread>

#include "engine/kernels/weight_type.h"
#include "engine/model/dummy_model.h"
#include "engine_support.h"
#include "model_test_support.h"

namespace ondol::engine {
namespace {

using testing::Collector;
using testing::TempDir;
using testing::wait_idle;

struct Case {
  bool prefix_caching;
  int block_size;
  int max_num_batched_tokens;
  uint32_t seed;
};

void run_case(const std::string& model, const Case& c) {
  EngineOptions o{.model_path = model};
  o.num_threads = 1;
  o.max_model_len = 96;
  o.max_num_seqs = 6;
  o.max_num_batched_tokens = c.max_num_batched_tokens;
  o.max_num_queued_requests = 1000;
  o.kv_cache_bytes = 1;  // one max_model_len sequence: preemption is frequent
  o.block_size = c.block_size;
  o.enable_prefix_caching = c.prefix_caching;
  o.check_invariants = true;
  auto engine = Engine::start(o);
  ASSERT_TRUE(engine.ok()) << engine.error().message;

  std::mt19937 rng(c.seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  // Words from a small set, so that prompts often share prefixes.
  const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"};
  const std::string shared = "the cat sat on the mat and the dog ran on the mat";
  struct Live {
    std::unique_ptr<Collector> collector;
    bool abort_it;
    EngineRequest request;  // a copy, to run it alone afterwards
    EngineOutput output;
  };
  std::vector<Live> live;
  const int num_requests = 40;
  for (int i = 0; i < num_requests; ++i) {
    std::string prompt = uniform(0, 1) ? shared : std::string(words[uniform(0, 8)]);
    const int extra = uniform(0, 20);
    for (int w = 0; w < extra; ++w) prompt += std::string(" ") + words[uniform(0, 8)];
    EngineRequest r;
    r.chat = false;
    r.prompt = prompt;
    r.sampling.temperature = uniform(0, 1) ? 0.0f : 0.7f;
    r.sampling.seed = static_cast<uint64_t>(i);
    r.sampling.ignore_eos = true;
    r.sampling.max_tokens = uniform(1, 24);
    EngineRequest copy = r;
    auto ch = (*engine)->submit(std::move(r));
    ASSERT_TRUE(ch.ok()) << ch.error().message;
    live.push_back({std::make_unique<Collector>(*ch), uniform(0, 3) == 0, std::move(copy), {}});
    if (uniform(0, 2) == 0) std::this_thread::sleep_for(std::chrono::microseconds(uniform(0, 3000)));
    // Abort some of the earlier requests at random moments: waiting, prefilling or decoding.
    if (uniform(0, 3) == 0) {
      Live& victim = live[static_cast<size_t>(uniform(0, static_cast<int>(live.size()) - 1))];
      if (victim.abort_it) victim.collector->channel().abort();
    }
  }
  for (Live& l : live) {
    if (l.abort_it) {
      l.collector->channel().abort();
      continue;
    }
    l.output = l.collector->wait();
    EXPECT_EQ(l.output.error, "");
    EXPECT_TRUE(l.output.finished);
  }
  ASSERT_TRUE(wait_idle(**engine));
  const EngineStats s = (*engine)->stats();
  EXPECT_EQ(s.invariant_violation, "");
  EXPECT_EQ(s.num_blocks_free, s.num_blocks) << "blocks leaked";
  EXPECT_GT(s.num_preemptions, 0) << "the cache was meant to be too small";
  if (c.prefix_caching) {
    EXPECT_GT(s.prefix_cache_hits, 0);
    EXPECT_LE(s.num_blocks_cached, s.num_blocks);
  } else {
    EXPECT_EQ(s.num_blocks_cached, 0);
  }

  // Whatever the interleaving, each finished request produced what it produces alone.
  EngineOptions alone = o;
  alone.max_num_seqs = 1;
  alone.kv_cache_bytes = 0;
  alone.enable_prefix_caching = false;
  alone.block_size = kDefaultBlockSize;
  auto reference = Engine::start(alone);
  ASSERT_TRUE(reference.ok());
  for (size_t i = 0; i < live.size(); ++i) {
    if (live[i].abort_it) continue;
    auto ch = (*reference)->submit(live[i].request);
    ASSERT_TRUE(ch.ok());
    Collector one(*ch);
    EXPECT_EQ(one.wait().text, live[i].output.text) << "request " << i;
  }
}

TEST(BlockAccounting, RandomArrivalsAbortsAndLengthsLeakNothing) {
  TempDir dir;
  const std::string model = dir.file("tiny.gguf");
  ASSERT_TRUE(write_dummy_model("tiny", kernels::WeightType::kQ8_0, model, 3).ok());
  const Case cases[] = {
      {true, 16, 64, 1}, {false, 16, 64, 2}, {true, 4, 9, 3}, {true, 1, 5, 4}, {false, 8, 13, 5},
      {true, 16, 512, 6},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("prefix caching {}, block size {}, budget {}, seed {}",
                             c.prefix_caching, c.block_size, c.max_num_batched_tokens, c.seed));
    run_case(model, c);
  }
}

}  // namespace
}  // namespace ondol::engine
