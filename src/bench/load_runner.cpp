#include "bench/load_runner.h"

#include <utility>

#include <fmt/format.h>
#include <boost/asio.hpp>

#include <algorithm>
#include <memory>
#include <thread>

namespace ondol::bench {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Shared {
  const LoadPlan& plan;
  const LoadOptions& options;
  Clock::time_point start;
  std::vector<RequestOutput>& outputs;
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> failed{0};
};

// One I/O thread's share of the run. Only its own thread touches it while the run lasts.
struct Worker {
  explicit Worker(int concurrency_limit)
      : limit(concurrency_limit), send_timer(ctx), slot_freed(ctx) {}
  asio::io_context ctx{1};
  std::vector<size_t> indices;
  int limit = 0;  // 0: none
  int in_flight = 0;
  asio::steady_timer send_timer;
  asio::steady_timer slot_freed;  // cancelled when a request ends: wakes the dispatcher
};

// Feeds the response body to the reader with each piece's arrival time.
class TimingSink final : public http::BodySink {
 public:
  TimingSink(ResponseReader& reader, Clock::time_point sent) : reader_(reader), sent_(sent) {}
  asio::awaitable<bool> on_headers(const http::ClientResponse& response) override {
    reader_.set_streaming(response.content_type.starts_with("text/event-stream"));
    co_return true;
  }
  asio::awaitable<bool> on_body(std::string_view piece) override {
    bool ok = reader_.feed(piece, seconds(Clock::now() - sent_));
    co_return ok;
  }

 private:
  ResponseReader& reader_;
  Clock::time_point sent_;
};

asio::awaitable<void> send_one(Shared& s, Worker& w, size_t i) {
  RequestOutput& out = s.outputs[i];
  Clock::time_point sent = Clock::now();
  out.start_s = seconds(sent - s.start);
  ResponseReader reader(s.options.api);
  TimingSink sink(reader, sent);
  http::Cancellation cancel;
  http::ClientRequest request{.method = "POST",
                              .path = s.options.path,
                              .body = s.plan.bodies[i],
                              .request_id = {},
                              .first_byte_timeout = s.options.request_timeout,
                              .read_timeout = s.options.request_timeout};
  http::ClientResponse response =
      co_await http::send_request(s.options.target, request, sink, cancel);
  double ended_s = seconds(Clock::now() - sent);
  if (response.failure != http::ClientFailure::None) {
    out.success = false;
    out.error = fmt::format("{}: {}", http::to_string(response.failure), response.failure_message);
    out.latency_s = ended_s;
  } else if (response.status < 200 || response.status >= 300) {
    out.success = false;
    out.error = describe_http_error(response.status, response.error_body);
    out.latency_s = ended_s;
  } else {
    reader.finish(ended_s, s.plan.prompt_lens[i], out);
  }
  if (!out.success) {
    out.prompt_tokens = s.plan.prompt_lens[i];  // what was sent, as vLLM's input_lens keeps it
    s.failed.fetch_add(1, std::memory_order_relaxed);
  }
  s.completed.fetch_add(1, std::memory_order_relaxed);
  --w.in_flight;
  w.slot_freed.cancel();
}

asio::awaitable<void> dispatch(Shared& s, Worker& w) {
  boost::system::error_code ec;
  for (size_t i : w.indices) {
    Clock::time_point when = s.start + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(s.plan.send_offsets_s[i]));
    if (when > Clock::now()) {
      w.send_timer.expires_at(when);
      co_await w.send_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    while (w.limit > 0 && w.in_flight >= w.limit) {
      w.slot_freed.expires_at(Clock::time_point::max());
      co_await w.slot_freed.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    ++w.in_flight;
    asio::co_spawn(w.ctx, send_one(s, w, i), asio::detached);
  }
}

}  // namespace

LoadResult run_load(const LoadPlan& plan, const LoadOptions& options,
                    const std::function<void(const LoadProgress&)>& on_tick,
                    std::chrono::milliseconds tick) {
  LoadResult result;
  const size_t n = plan.bodies.size();
  result.outputs.resize(n);
  if (n == 0) return result;
  int num_threads = std::max(1, options.io_threads);
  num_threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(num_threads), n));
  if (options.max_concurrency > 0) num_threads = std::min(num_threads, options.max_concurrency);

  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < num_threads; ++t) {
    int limit = 0;
    if (options.max_concurrency > 0)
      limit = options.max_concurrency / num_threads + (t < options.max_concurrency % num_threads);
    workers.push_back(std::make_unique<Worker>(limit));
  }
  for (size_t i = 0; i < n; ++i) workers[i % workers.size()]->indices.push_back(i);

  Shared shared{plan, options, Clock::now(), result.outputs};
  for (auto& w : workers) asio::co_spawn(w->ctx, dispatch(shared, *w), asio::detached);
  std::atomic<int> threads_running{num_threads};
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&threads_running, worker = w.get()] {
      worker->ctx.run();
      http::close_idle_connections_on_this_thread();
      threads_running.fetch_sub(1);
    });
  }
  auto report = [&] {
    LoadProgress p{.total = static_cast<int64_t>(n),
                   .completed = shared.completed.load(std::memory_order_relaxed),
                   .failed = shared.failed.load(std::memory_order_relaxed),
                   .elapsed_s = seconds(Clock::now() - shared.start)};
    on_tick(p);
  };
  if (on_tick) {
    while (threads_running.load() > 0) {
      std::this_thread::sleep_for(tick);
      report();
    }
  }
  for (auto& t : threads) t.join();
  for (const auto& o : result.outputs)
    result.duration_s = std::max(result.duration_s, o.start_s + o.latency_s);
  return result;
}

}  // namespace ondol::bench
