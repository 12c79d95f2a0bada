#include "gateway/proxy.h"

#include <utility>

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "common/log.h"
#include "http/sse.h"
#include "openai/error.h"

namespace ondol::gateway {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kComponent = "proxy";
constexpr size_t kMaxWholeBodyBytes = 64 << 20;  // a non-streamed response larger than this fails

using Seconds = std::chrono::duration<double>;

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

std::mt19937_64& thread_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

struct Usage {
  int64_t prompt_tokens = -1;
  int64_t completion_tokens = -1;
};

// Reads "usage":{...} out of a response or chunk without parsing the rest of it.
void extract_usage(std::string_view json, Usage& usage) {
  auto pos = json.find("\"usage\"");
  if (pos == std::string_view::npos) return;
  auto open = json.find('{', pos);
  auto colon = json.find(':', pos);
  if (open == std::string_view::npos || colon == std::string_view::npos || open < colon) return;
  for (size_t i = colon + 1; i < open; ++i)
    if (json[i] != ' ') return;  // "usage": null
  auto close = json.find('}', open);
  if (close == std::string_view::npos) return;
  rapidjson::Document doc;
  doc.Parse(json.data() + open, close - open + 1);
  if (doc.HasParseError() || !doc.IsObject()) return;
  if (auto it = doc.FindMember("prompt_tokens"); it != doc.MemberEnd() && it->value.IsInt64())
    usage.prompt_tokens = it->value.GetInt64();
  if (auto it = doc.FindMember("completion_tokens"); it != doc.MemberEnd() && it->value.IsInt64())
    usage.completion_tokens = it->value.GetInt64();
}

// Receives one attempt's 2xx response and passes it to the client: a stream piece by piece
// (opening the client's stream on the first piece, so that a failure before it can still be
// retried), a whole body at the end.
class RelaySink final : public http::BodySink {
 public:
  RelaySink(http::Exchange& ex, bool client_wants_stream)
      : ex_(ex), client_wants_stream_(client_wants_stream) {}

  asio::awaitable<bool> on_headers(const http::ClientResponse& r) override {
    streaming_ = client_wants_stream_ && r.content_type.starts_with("text/event-stream");
    content_type_ = r.content_type.empty() ? "application/json" : r.content_type;
    co_return !ex_.client_gone();
  }

  asio::awaitable<bool> on_body(std::string_view piece) override {
    if (first_piece_seconds_ < 0) first_piece_seconds_ = ex_.elapsed_seconds();
    if (!streaming_) {
      if (body_.size() + piece.size() > kMaxWholeBodyBytes) co_return false;
      body_.append(piece);
      co_return true;
    }
    if (!ex_.responded()) {
      bool open = co_await ex_.begin_stream(200, "text/event-stream");
      if (!open) co_return false;
    }
    if (piece.find("usage") != std::string_view::npos || sse_.pending_bytes() > 0) {
      sse_.feed(piece, events_);
      for (const auto& e : events_) extract_usage(e, usage);
    }
    bool written = co_await ex_.write(piece);
    co_return written;
  }

  // Sends what was buffered (non-streamed responses).
  asio::awaitable<void> finish(int status) {
    if (streaming_) {
      co_await ex_.end_stream();
      co_return;
    }
    extract_usage(body_, usage);
    co_await ex_.respond(status, content_type_, std::move(body_));
  }

  bool client_stream_open() const { return streaming_ && ex_.responded(); }

  // Forgets what a failed attempt delivered, so that a retry starts clean. Only valid while
  // nothing has reached the client (the proxy retries only then).
  void reset_attempt() {
    streaming_ = false;
    body_.clear();
    sse_ = http::SseParser();
    usage = Usage{};
    first_piece_seconds_ = -1;
  }
  double first_piece_seconds() const { return first_piece_seconds_; }

  Usage usage;

 private:
  http::Exchange& ex_;
  bool client_wants_stream_;
  bool streaming_ = false;
  std::string content_type_;
  std::string body_;
  http::SseParser sse_;
  std::vector<std::string> events_;
  double first_piece_seconds_ = -1;
};

struct AccessRecord {
  std::string_view request_id;
  int status = 0;
  std::string_view model;
  std::string_view deployment;
  int attempts = 0;
  bool stream = false;
  double ttft_seconds = -1;
  Usage usage;
};

// One access-log line per API request, whatever its outcome.
void log_access(const http::Exchange& ex, const AccessRecord& r) {
  if (!log::enabled(log::Level::Info)) return;
  log::info("access", "request",
            {{"request_id", r.request_id},
             {"method", ex.method()},
             {"path", ex.path()},
             {"status", r.status},
             {"model", r.model},
             {"deployment", r.deployment},
             {"attempts", r.attempts},
             {"stream", r.stream},
             {"latency_ms", ex.elapsed_seconds() * 1000},
             {"ttft_ms", r.ttft_seconds >= 0 ? r.ttft_seconds * 1000 : -1.0},
             {"prompt_tokens", r.usage.prompt_tokens},
             {"completion_tokens", r.usage.completion_tokens}});
}

bool retryable_status(int status) { return status == 408 || status == 429 || status >= 500; }

// The client-facing error once every attempt has failed.
openai::ApiError final_error(const http::ClientResponse& last, std::string_view model,
                             int attempts) {
  std::string where = fmt::format("after {} attempt{} for model '{}'", attempts,
                                  attempts == 1 ? "" : "s", model);
  if (last.failure == http::ClientFailure::Timeout)
    return openai::upstream_timeout(fmt::format("Upstream timed out {}: {}", where,
                                                last.failure_message));
  if (last.failure != http::ClientFailure::None)
    return openai::bad_gateway(fmt::format("Upstream failed {}: {}", where, last.failure_message));
  if (last.status == 429)
    return openai::rate_limited(fmt::format("Upstream rate limit {}.", where));
  if (last.status == 503)  // overloaded (an engine's full queue): the client should come back
    return openai::service_unavailable(fmt::format("Upstream overloaded {}.", where));
  return openai::bad_gateway(
      fmt::format("Upstream answered {} {}.", last.status, where));
}

}  // namespace

asio::awaitable<void> proxy_request(GatewayMetrics& metrics,
                                    std::shared_ptr<const RouteTable> table,
                                    openai::Endpoint endpoint, http::Exchange& ex,
                                    std::string_view request_id, const Principal& principal) {
  const GatewayConfig& config = table->config();
  auto parsed = openai::parse_request(endpoint, ex.body());
  if (auto* err = std::get_if<openai::ApiError>(&parsed)) {
    metrics.request_done("", err->status, ex.elapsed_seconds());
    int status = err->status;
    std::string body = err->to_json();
    co_await ex.respond(status, "application/json", std::move(body));
    log_access(ex, {.request_id = request_id, .status = status});
    co_return;
  }
  auto& req = std::get<openai::ProxyRequest>(parsed);
  if (!principal.may_use(req.model)) {
    // As LiteLLM answers a key restricted to other models: 401.
    auto err = openai::authentication_error(
        fmt::format("This key is not allowed to access model '{}'.", req.model));
    metrics.request_done("", err.status, ex.elapsed_seconds());
    std::string body = err.to_json();
    co_await ex.respond(err.status, "application/json", std::move(body));
    log_access(ex, {.request_id = request_id, .status = err.status, .model = req.model,
                    .stream = req.stream});
    co_return;
  }
  const ModelGroup* group = table->find(req.model);
  if (!group) {
    auto err = openai::model_not_found(req.model);
    metrics.request_done("", err.status, ex.elapsed_seconds());
    std::string body = err.to_json();
    co_await ex.respond(err.status, "application/json", std::move(body));
    log_access(ex, {.request_id = request_id, .status = err.status, .model = req.model,
                    .stream = req.stream});
    co_return;
  }

  http::Cancellation cancel;
  ex.on_client_gone([&cancel] { cancel.cancel(); });
  metrics.in_flight->inc();

  AttemptPlanner planner(*group, config.router);
  http::ClientResponse last;
  Deployment* served_by = nullptr;
  Deployment* last_tried = nullptr;
  RelaySink sink(ex, req.stream);
  std::string body_cache_model;
  std::string body;
  bool done = false;
  int final_status = 0;

  while (!done && !cancel.cancelled()) {
    Deployment* d = planner.next(Clock::now(), thread_rng());
    if (!d) break;
    if (planner.attempts() > 1) metrics.retries->inc();
    if (planner.in_fallback()) metrics.fallbacks->inc();
    last_tried = d;
    sink.reset_attempt();
    const DeploymentConfig& dc = d->config;
    if (body_cache_model != dc.upstream_model) {
      body = openai::upstream_body(req, dc.upstream_model, config.drop_params);
      body_cache_model = dc.upstream_model;
    }
    double timeout_s = dc.timeout_s > 0 ? dc.timeout_s : config.request_timeout_s;
    double first_byte_s = req.stream && dc.stream_timeout_s > 0 ? dc.stream_timeout_s : timeout_s;
    http::ClientRequest call{.method = "POST",
                             .path = openai::upstream_path(endpoint),
                             .body = body,
                             .request_id = request_id,
                             .first_byte_timeout = to_ms(first_byte_s),
                             .read_timeout = to_ms(timeout_s)};
    double attempt_start = ex.elapsed_seconds();
    d->series->total->inc();
    d->state->in_flight.fetch_add(1, std::memory_order_relaxed);
    last = co_await d->backend->call(call, sink, cancel);
    d->state->in_flight.fetch_sub(1, std::memory_order_relaxed);
    double attempt_seconds = ex.elapsed_seconds() - attempt_start;

    if (!last.ratelimit_remaining_requests.empty())
      d->series->remaining_requests->set(std::atof(last.ratelimit_remaining_requests.c_str()));
    if (!last.ratelimit_remaining_tokens.empty())
      d->series->remaining_tokens->set(std::atof(last.ratelimit_remaining_tokens.c_str()));

    if (last.failure == http::ClientFailure::Cancelled || cancel.cancelled()) {
      break;  // the client went away: nothing to answer
    }
    bool ok = last.failure == http::ClientFailure::None && last.status >= 200 && last.status < 300;
    if (ok) {
      served_by = d;
      d->state->observe_latency(sink.first_piece_seconds() >= 0
                                    ? sink.first_piece_seconds() - attempt_start
                                    : attempt_seconds);
      d->series->success->inc();
      d->series->state->set(0);
      d->series->api_latency->observe(attempt_seconds);
      if (req.stream && sink.first_piece_seconds() >= 0)
        d->series->ttft->observe(sink.first_piece_seconds() - attempt_start);
      co_await sink.finish(last.status);
      final_status = last.status;
      done = true;
      break;
    }
    // A failure. It counts against the deployment unless it was the client's fault (4xx).
    int status = last.failure != http::ClientFailure::None
                     ? (last.failure == http::ClientFailure::Timeout ? 504 : 502)
                     : last.status;
    bool deployment_fault = last.failure != http::ClientFailure::None || retryable_status(status);
    if (deployment_fault) {
      metrics.deployment_failure(dc, status);
      bool cooled = d->state->record_failure(Clock::now(), config.router.allowed_fails,
                                             config.router.cooldown_time_s);
      d->series->state->set(cooled ? 2 : 1);
      if (cooled) {
        d->series->cooled_down->inc();
        log::warn(kComponent, "deployment cooling down",
                  {{"request_id", request_id}, {"model", dc.model_name},
                   {"deployment", dc.id}, {"cooldown_s", config.router.cooldown_time_s}});
      }
    }
    log::debug(kComponent, "attempt failed",
               {{"request_id", request_id}, {"deployment", dc.id}, {"status", status},
                {"failure", http::to_string(last.failure)}, {"error", last.failure_message}});
    if (sink.client_stream_open()) {
      // Bytes already reached the client: no retry. One error event, then the stream ends.
      auto err = openai::bad_gateway("The upstream stream failed mid-response: " +
                                     (last.failure_message.empty() ? std::string("upstream error")
                                                                   : last.failure_message));
      std::string event;
      http::append_sse_data(event, err.to_json());
      event.append(http::kSseDone);
      co_await ex.write(event);
      co_await ex.end_stream();
      final_status = 502;
      done = true;
      served_by = d;
      break;
    }
    if (last.failure == http::ClientFailure::None && !deployment_fault) {
      // The upstream rejected the request itself (400, 401, 404, ...): pass it on as is.
      std::string error_body = last.error_body.empty()
                                   ? openai::ApiError{status, "Upstream rejected the request.",
                                                      "invalid_request_error", {}, {}}
                                         .to_json()
                                   : std::move(last.error_body);
      co_await ex.respond(status, "application/json", std::move(error_body));
      final_status = status;
      done = true;
      served_by = d;
      break;
    }
  }

  if (!done && !cancel.cancelled() && !ex.responded()) {
    openai::ApiError err =
        planner.attempts() == 0
            ? openai::service_unavailable(
                  fmt::format("No deployment of model '{}' is available.", req.model))
            : final_error(last, req.model, planner.attempts());
    if (err.status == 429 || err.status == 503) ex.add_response_header("Retry-After", "1");
    std::string error_json = err.to_json();
    co_await ex.respond(err.status, "application/json", std::move(error_json));
    final_status = err.status;
  }
  metrics.in_flight->dec();
  if (cancel.cancelled()) {
    metrics.client_disconnects->inc();
    final_status = 499;  // the nginx convention for "client closed request"
  }
  double total_s = ex.elapsed_seconds();
  metrics.request_done(group->name, final_status, total_s);
  if (served_by && final_status < 300) {
    auto* s = served_by->series;
    if (sink.usage.prompt_tokens >= 0) s->input_tokens->inc(static_cast<double>(sink.usage.prompt_tokens));
    if (sink.usage.completion_tokens >= 0) {
      s->output_tokens->inc(static_cast<double>(sink.usage.completion_tokens));
      if (sink.usage.completion_tokens > 0)
        s->latency_per_output_token->observe(total_s / static_cast<double>(sink.usage.completion_tokens));
    }
    if (sink.usage.prompt_tokens >= 0 || sink.usage.completion_tokens >= 0)
      s->total_tokens->inc(static_cast<double>(std::max<int64_t>(0, sink.usage.prompt_tokens) +
                                               std::max<int64_t>(0, sink.usage.completion_tokens)));
  }
  Deployment* named = served_by ? served_by : last_tried;
  log_access(ex, {.request_id = request_id,
                  .status = final_status,
                  .model = req.model,
                  .deployment = named ? std::string_view(named->config.id) : std::string_view(),
                  .attempts = planner.attempts(),
                  .stream = req.stream,
                  .ttft_seconds = sink.first_piece_seconds(),
                  .usage = sink.usage});
}

}  // namespace ondol::gateway
