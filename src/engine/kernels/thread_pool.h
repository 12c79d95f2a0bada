// ThreadPool: a fixed set of compute threads for the forward pass. parallel_for cuts [0, n) into
// chunks that the caller and the workers claim from a shared counter, and returns when all are
// done. Between calls workers spin briefly (the next kernel usually follows within
// microseconds), then sleep on a futex. No allocation, no lock and no syscall on the fast path.
//
// Cores may be shared (the gateway's I/O threads run beside the engine): a worker that is
// descheduled or still asleep does not hold the call up. The caller claims the chunks it leaves,
// and never waits for a worker that has not joined the job yet.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "engine/kernels/function_ref.h"

namespace ondol::kernels {

class ThreadPool {
 public:
  // num_threads >= 1 counts the caller: num_threads - 1 workers are started.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  using RangeFn = FunctionRef<void(int64_t begin, int64_t end)>;

  // Calls fn(begin, end) on disjoint, non-empty chunks covering [0, n), each on some thread of
  // the pool (the caller included), about kChunksPerThread per thread. Returns after every chunk
  // finished. One caller at a time, and never from inside fn.
  void parallel_for(int64_t n, RangeFn fn);

  // More chunks than threads so that an unequal share of the cores evens out.
  static constexpr int64_t kChunksPerThread = 4;

 private:
  // Spins of a waiting thread before it sleeps: ~50 us, longer than the gap between the
  // kernels of one forward pass, far shorter than the gap between forward passes.
  static constexpr int kSpinIterations = 1 << 12;

  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;

  // The current job, written before generation_ is bumped (release) and read by a worker only
  // after it joined (active_) and saw the job still open.
  const RangeFn* job_ = nullptr;
  int64_t job_size_ = 0;
  int64_t chunk_size_ = 0;
  int64_t num_chunks_ = 0;
  bool stopping_ = false;

  std::atomic<uint32_t> generation_{0};       // bumped once per job (and at shutdown)
  std::atomic<uint32_t> open_generation_{0};  // the job workers may still join; 0 once closed
  std::atomic<int64_t> next_chunk_{0};        // next unclaimed chunk of the current job
  std::atomic<int32_t> active_{0};            // workers inside a job
};

}  // namespace ondol::kernels
