// The load runner against a real in-process HTTP server that streams with known delays: the
// concurrency limit holds, arrival times are kept, and failures carry their reasons.
#include "bench/load_runner.h"

#include <utility>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include "http/server.h"
#include "http/url.h"

namespace ondol::bench {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto kFirstByteDelay = 20ms;
constexpr auto kChunkDelay = 5ms;

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

// Streams two one-token chunks kChunkDelay apart after kFirstByteDelay; a prompt containing
// "fail" gets a 500 with an OpenAI error body.
class StreamingServer {
 public:
  StreamingServer()
      : server_(
            {.host = "127.0.0.1", .port = 0, .io_threads = 1},
            [this](http::Exchange& ex) { return handle(ex); },
            [](int, std::string_view m) { return std::string(m); }) {
    EXPECT_TRUE(server_.listen());
    thread_ = std::thread([this] { server_.run(); });
  }
  ~StreamingServer() {
    server_.stop();
    thread_.join();
  }
  http::UpstreamTarget target() const {
    return {.url = *http::parse_url("http://127.0.0.1:" + std::to_string(server_.port())),
            .api_key = "sk-test"};
  }
  int max_active() const { return max_active_.load(); }
  std::string last_authorization() const {
    std::lock_guard lock(mu_);
    return last_authorization_;
  }

 private:
  asio::awaitable<void> handle(http::Exchange& ex) {
    int now = ++active_;
    int seen = max_active_.load();
    while (now > seen && !max_active_.compare_exchange_weak(seen, now)) {
    }
    {
      std::lock_guard lock(mu_);
      last_authorization_ = std::string(ex.header("authorization"));
    }
    std::chrono::milliseconds first =
        std::chrono::duration_cast<std::chrono::milliseconds>(kFirstByteDelay);
    co_await sleep_for(first);
    if (ex.body().find("fail") != std::string::npos) {
      std::string body = R"({"error":{"message":"injected failure","type":"server_error"}})";
      --active_;
      co_await ex.respond(500, "application/json", std::move(body));
      co_return;
    }
    bool ok = co_await ex.begin_stream(200, "text/event-stream");
    std::string first_chunk = "data: {\"choices\":[{\"index\":0,\"text\":\"a\"}]}\n\n";
    if (ok) {
      ok = co_await ex.write(first_chunk);
    }
    std::chrono::milliseconds gap =
        std::chrono::duration_cast<std::chrono::milliseconds>(kChunkDelay);
    co_await sleep_for(gap);
    std::string rest =
        "data: {\"choices\":[{\"index\":0,\"text\":\"b\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
        "data: [DONE]\n\n";
    if (ok) {
      ok = co_await ex.write(rest);
    }
    --active_;
    co_await ex.end_stream();
  }

  http::HttpServer server_;
  std::thread thread_;
  std::atomic<int> active_{0};
  std::atomic<int> max_active_{0};
  mutable std::mutex mu_;
  std::string last_authorization_;  // guarded by mu_
};

LoadPlan plan_of(const std::vector<std::string>& prompts) {
  LoadPlan plan;
  for (const auto& p : prompts) {
    plan.bodies.push_back(R"({"model":"m","prompt":")" + p + R"(","stream":true})");
    plan.prompt_lens.push_back(1);
    plan.send_offsets_s.push_back(0);
  }
  return plan;
}

TEST(LoadRunner, KeepsTheConcurrencyLimitAcrossThreadsAndMeasuresTheStream) {
  StreamingServer server;
  LoadPlan plan = plan_of(std::vector<std::string>(12, "hello"));
  LoadOptions options{.target = server.target(),
                      .path = "/v1/completions",
                      .api = ApiKind::Completions,
                      .io_threads = 2,
                      .max_concurrency = 3};
  LoadResult r = run_load(plan, options);
  EXPECT_EQ(server.max_active(), 3);
  EXPECT_EQ(server.last_authorization(), "Bearer sk-test");
  ASSERT_EQ(r.outputs.size(), 12u);
  for (const auto& o : r.outputs) {
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_GE(o.ttft_s, 0.020);
    ASSERT_EQ(o.itl_s.size(), 1u);
    // The client may see the first chunk late (its thread busy), never the second one early.
    EXPECT_GE(o.ttft_s + o.itl_s[0], 0.025);
    EXPECT_GE(o.latency_s, o.ttft_s + o.itl_s[0]);
    EXPECT_EQ(o.output_tokens, 2);
    EXPECT_EQ(o.prompt_tokens, 3);
    EXPECT_EQ(o.generated_text, "ab");
  }
  // 12 requests, 3 at a time, each at least 25 ms: at least 4 rounds.
  EXPECT_GE(r.duration_s, 4 * 0.025);
}

TEST(LoadRunner, SendsAtThePlannedTimes) {
  StreamingServer server;
  LoadPlan plan = plan_of({"a", "b", "c"});
  plan.send_offsets_s = {0.0, 0.05, 0.12};
  LoadOptions options{.target = server.target(), .path = "/v1/completions"};
  LoadResult r = run_load(plan, options);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(r.outputs[i].success) << r.outputs[i].error;
    EXPECT_GE(r.outputs[i].start_s, plan.send_offsets_s[i]);
    EXPECT_LT(r.outputs[i].start_s, plan.send_offsets_s[i] + 0.1);
  }
}

TEST(LoadRunner, FailuresCarryTheirReasons) {
  StreamingServer server;
  LoadPlan plan = plan_of({"ok", "please fail"});
  LoadOptions options{.target = server.target(), .path = "/v1/completions"};
  LoadResult r = run_load(plan, options);
  EXPECT_TRUE(r.outputs[0].success);
  EXPECT_FALSE(r.outputs[1].success);
  EXPECT_EQ(r.outputs[1].error, "HTTP 500: injected failure");

  // Nothing listens on the port of a server that has gone.
  http::UpstreamTarget gone;
  {
    StreamingServer short_lived;
    gone = short_lived.target();
  }
  LoadResult refused = run_load(plan_of({"x"}), {.target = gone, .path = "/v1/completions"});
  EXPECT_FALSE(refused.outputs[0].success);
  EXPECT_TRUE(refused.outputs[0].error.starts_with("connect: ")) << refused.outputs[0].error;
}

}  // namespace
}  // namespace ondol::bench
