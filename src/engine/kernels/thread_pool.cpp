#include "engine/kernels/thread_pool.h"

#include <cassert>

namespace ondol::kernels {

namespace {

// Spin on `value` while it equals `old`, then sleep until it changes; returns the new value.
template <typename T>
T await_change(const std::atomic<T>& value, T old, int spin_iterations) {
  for (int spin = 0;; ++spin) {
    const T now = value.load(std::memory_order_acquire);
    if (now != old) return now;
    if (spin < spin_iterations) {
      __builtin_ia32_pause();
    } else {
      value.wait(old, std::memory_order_acquire);
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  assert(num_threads >= 1);
  workers_.reserve(num_threads - 1);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  stopping_ = true;
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run_chunks() {
  for (;;) {
    const int64_t chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (chunk >= num_chunks_) return;
    const int64_t begin = chunk * chunk_size_;
    const int64_t end = begin + chunk_size_ < job_size_ ? begin + chunk_size_ : job_size_;
    (*job_)(begin, end);
  }
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;
  for (;;) {
    seen = await_change(generation_, seen, kSpinIterations);
    if (stopping_) return;
    // Join, then check the job is still open. The caller closes, then counts joined workers;
    // with both sides sequentially consistent, either it counts this worker and waits for it,
    // or this worker sees the job closed and touches nothing of it.
    active_.fetch_add(1, std::memory_order_seq_cst);
    if (open_generation_.load(std::memory_order_seq_cst) == seen) run_chunks();
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) active_.notify_one();
  }
}

void ThreadPool::parallel_for(int64_t n, RangeFn fn) {
  if (workers_.empty() || n <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  const int64_t wanted_chunks = num_threads() * kChunksPerThread;
  job_ = &fn;
  job_size_ = n;
  chunk_size_ = (n + wanted_chunks - 1) / wanted_chunks;
  num_chunks_ = (n + chunk_size_ - 1) / chunk_size_;
  next_chunk_.store(0, std::memory_order_relaxed);
  uint32_t generation = generation_.load(std::memory_order_relaxed) + 1;
  if (generation == 0) generation = 1;  // 0 means "closed"
  open_generation_.store(generation, std::memory_order_relaxed);
  generation_.store(generation, std::memory_order_release);
  generation_.notify_all();  // no syscall unless a worker is asleep
  run_chunks();
  // Every chunk is claimed; close the job and wait for the workers inside it.
  open_generation_.store(0, std::memory_order_seq_cst);
  for (int32_t inside = active_.load(std::memory_order_seq_cst); inside != 0;) {
    inside = await_change(active_, inside, kSpinIterations);
  }
  job_ = nullptr;
}

}  // namespace ondol::kernels
