#include "engine/kernels/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace ondol::kernels {
namespace {

TEST(ThreadPoolTest, EveryIndexExactlyOnceInNonEmptyChunks) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 4, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(n);
      std::mutex mutex;
      std::vector<std::pair<int64_t, int64_t>> chunks;
      pool.parallel_for(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
        std::lock_guard lock(mutex);
        chunks.emplace_back(begin, end);
      });
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(hits[i].load(), 1) << threads << " threads, n=" << n << ", index " << i;
      }
      EXPECT_LE(static_cast<int64_t>(chunks.size()), threads * ThreadPool::kChunksPerThread);
      for (auto [begin, end] : chunks) EXPECT_LT(begin, end);  // no empty chunk is run
    }
  }
}

TEST(ThreadPoolTest, WorkersShareTheWork) {
  ThreadPool pool(3);
  std::mutex mutex;
  std::set<std::thread::id> ids;
  // Chunks long enough (5 ms each, 12 of them) that sleeping workers wake and join.
  pool.parallel_for(3 * ThreadPool::kChunksPerThread, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::lock_guard lock(mutex);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_GE(ids.size(), 2u);
}

TEST(ThreadPoolTest, SingleThreadPoolRunsOnTheCaller) {
  ThreadPool pool(1);
  std::thread::id id;
  pool.parallel_for(10, [&](int64_t begin, int64_t end) {
    EXPECT_EQ(begin, 0);
    EXPECT_EQ(end, 10);
    id = std::this_thread::get_id();
  });
  EXPECT_EQ(id, std::this_thread::get_id());
}

TEST(ThreadPoolTest, ManyBackToBackCalls) {
  // The forward-pass pattern: thousands of short jobs in a row, workers never sleeping.
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  for (int call = 0; call < 20000; ++call) {
    pool.parallel_for(64, [&](int64_t begin, int64_t end) { total.fetch_add(end - begin); });
  }
  EXPECT_EQ(total.load(), 20000 * 64);
}

TEST(ThreadPoolTest, WakesWorkersThatFellAsleep) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  for (int call = 0; call < 5; ++call) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // well past the spin phase
    pool.parallel_for(30, [&](int64_t begin, int64_t end) { total.fetch_add(end - begin); });
  }
  EXPECT_EQ(total.load(), 150);
}

TEST(ThreadPoolTest, WaitsForSlowChunks) {
  ThreadPool pool(2);
  std::atomic<bool> slow_done{false};
  pool.parallel_for(2, [&](int64_t begin, int64_t) {
    if (begin == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      slow_done = true;
    }
  });
  EXPECT_TRUE(slow_done.load());
}

TEST(ThreadPoolTest, DestroysWhileWorkersSleep) {
  auto pool = std::make_unique<ThreadPool>(4);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  pool.reset();  // joins; a hang here fails the test by timeout
  SUCCEED();
}

}  // namespace
}  // namespace ondol::kernels
