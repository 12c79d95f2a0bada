// Sends a planned set of requests on a few I/O threads and records what each measured.
//
// Each I/O thread owns an io_context, its share of the requests (round robin) and its share of
// --max-concurrency, and sends on its own pooled keep-alive connections (src/http/client.h), so
// the threads share nothing while the run lasts but the progress counters.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/metrics.h"
#include "bench/request.h"
#include "http/client.h"

namespace ondol::bench {

struct LoadPlan {
  std::vector<std::string> bodies;     // one JSON body per request
  std::vector<int64_t> prompt_lens;    // estimates, used when a response has no usage
  std::vector<double> send_offsets_s;  // when to send each, since the start (ascending)
};

struct LoadOptions {
  http::UpstreamTarget target;
  std::string path;  // "/v1/completions", appended to the target's path prefix
  ApiKind api = ApiKind::Completions;
  int io_threads = 1;
  int max_concurrency = 0;  // requests in flight at most; 0: no limit
  std::chrono::milliseconds request_timeout{600'000};
};

struct LoadProgress {
  int64_t total = 0;
  int64_t completed = 0;  // ended, successful or not
  int64_t failed = 0;
  double elapsed_s = 0;
};

struct LoadResult {
  std::vector<RequestOutput> outputs;  // in plan order
  double duration_s = 0;               // start to the end of the last response
};

// Runs the plan to completion. `on_tick`, when set, is called about every `tick` from the calling
// thread while requests are in flight (for a progress bar).
LoadResult run_load(const LoadPlan& plan, const LoadOptions& options,
                    const std::function<void(const LoadProgress&)>& on_tick = {},
                    std::chrono::milliseconds tick = std::chrono::milliseconds(100));

}  // namespace ondol::bench
