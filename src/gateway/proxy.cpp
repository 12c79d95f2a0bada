#include "gateway/proxy.h"

#include <utility>

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "common/log.h"
#include "gateway/cache/cache_key.h"
#include "gateway/policies.h"
#include "http/sse.h"
#include "limits/limit_spec.h"
#include "openai/error.h"

namespace ondol::gateway {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kComponent = "proxy";
constexpr size_t kMaxWholeBodyBytes = 64 << 20;  // a non-streamed response larger than this fails
constexpr size_t kMaxCachedBodyBytes = 4 << 20;  // a larger answer is relayed but not cached

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
    if (capture_) {
      if (captured_.size() + piece.size() > kMaxCachedBodyBytes) capture_ = false;
      else captured_.append(piece);
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
    if (capture_ && body_.size() <= kMaxCachedBodyBytes) captured_ = body_;
    co_await ex_.respond(status, content_type_, std::move(body_));
  }

  // Keeps a copy of what reaches the client, for the response cache.
  void capture() { capture_ = true; }
  // The answer as the client received it, when it was captured whole; else nullopt.
  std::optional<cache::CachedResponse> captured() {
    if (!capture_ || captured_.empty()) return std::nullopt;
    // A stream is stored only when it ended properly.
    if (streaming_ && captured_.find("data: [DONE]") == std::string::npos) return std::nullopt;
    return cache::CachedResponse{.content_type = streaming_ ? "text/event-stream" : content_type_,
                                 .body = std::move(captured_),
                                 .created_ms = limits::system_now_ms(),
                                 .prompt_tokens = std::max<int64_t>(0, usage.prompt_tokens),
                                 .completion_tokens = std::max<int64_t>(0, usage.completion_tokens)};
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
    captured_.clear();
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
  bool capture_ = false;
  std::string captured_;
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

// A deployment's rpm / tpm (litellm_params): counted for every instance sharing the counters.
std::vector<limits::LimitSpec> deployment_specs(const DeploymentConfig& dc) {
  std::vector<limits::LimitSpec> specs;
  if (dc.rpm) specs.push_back(limits::requests_per_minute("deployment:" + dc.id, *dc.rpm));
  if (dc.tpm) specs.push_back(limits::tokens_per_minute("deployment:" + dc.id, *dc.tpm));
  return specs;
}

// One decision's statuses followed by another's, for the headers: the headers name the tightest
// request and token limit over both. A refusal in `second` decides the outcome.
limits::Decision merge_decisions(const limits::Decision& first, const limits::Decision* second) {
  limits::Decision m;
  m.outcome = first.outcome;
  m.retry_after_ms = first.retry_after_ms;
  m.too_large = first.too_large;
  m.limits = first.limits;
  if (second) {
    m.limits.insert(m.limits.end(), second->limits.begin(), second->limits.end());
    if (!second->admitted()) {
      m.outcome = second->outcome;
      m.retry_after_ms = std::max(m.retry_after_ms, second->retry_after_ms);
      m.too_large = m.too_large || second->too_large;
    }
  }
  return m;
}

void add_ratelimit_headers(http::Exchange& ex, const limits::Decision& d) {
  limits::for_each_ratelimit_header(d, [&ex](std::string_view name, std::string value) {
    ex.add_response_header(std::string(name), std::move(value));
  });
}

// The OpenAI error for a refused rate-limit decision: 429 (or "too large": waiting cannot help),
// 503 when the shared counters are unreachable and the mode is fail-closed.
// Answers a request refused before any attempt (rate limit, admission) and records it.
asio::awaitable<void> refuse(GatewayMetrics& metrics, http::Exchange& ex,
                             std::string_view request_id, const openai::ProxyRequest& req,
                             std::string_view group, openai::ApiError e) {
  metrics.request_done(group, e.status, ex.elapsed_seconds());
  int status = e.status;
  std::string body = e.to_json();
  co_await ex.respond(status, "application/json", std::move(body));
  log_access(ex, {.request_id = request_id, .status = status, .model = req.model,
                  .stream = req.stream});
}

openai::ApiError limit_error(const limits::Decision& d) {
  if (d.outcome == limits::Outcome::Unavailable)
    return openai::service_unavailable("Rate limits cannot be checked now; try again shortly.");
  if (d.too_large)
    return openai::rate_limited("Request too large: its estimated tokens exceed a tokens-per-"
                                "minute or tokens-per-day limit.");
  return openai::rate_limited(fmt::format("Rate limit exceeded; retry after {} s.",
                                          d.retry_after_seconds()));
}

}  // namespace

asio::awaitable<void> proxy_request(GatewayMetrics& metrics, Policies& policies,
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

  // Budgets: a key, user or team whose spend in its budget period has reached max_budget is
  // refused until the period resets, with LiteLLM's 400 budget_exceeded. The spend seen is the
  // one cached with the key (docs/tenants.md), so a burst can overshoot by what it costs.
  for (const ScopeLimits& l : principal.limits) {
    if (!l.max_budget || l.spend < *l.max_budget) continue;
    const std::string_view who = std::string_view(l.scope).substr(0, l.scope.find(':'));
    openai::ApiError err{400,
                         fmt::format("Budget has been exceeded! {} current cost: {}, max budget: {}",
                                     who, l.spend, *l.max_budget),
                         "budget_exceeded", {}, {}};
    co_await refuse(metrics, ex, request_id, req, group->name, std::move(err));
    co_return;
  }

  // The response cache: exact match on the canonical request (docs/gateway.md). Its key is known
  // before the rate limits so that, with both in one Redis, one call does the limits and lookup.
  cache::CacheControl cache_control;
  std::string cache_key;
  if (policies.cache_enabled()) {
    cache_control = cache::read_cache_control(req.body);
    bool wanted = cache_control.use_cache || (!policies.cache_config().default_off &&
                                              cache::is_deterministic(endpoint, req.body));
    if (wanted) cache_key = cache::cache_key(endpoint, req.model, req.body);
  }
  if (req.body.IsObject()) req.body.RemoveMember("cache");  // ondol's control, not upstream's
  const bool look_up = !cache_key.empty() && !cache_control.no_cache;
  const std::string no_lookup;
  Policies::CacheLookup lookup;

  // Rate limits of the caller (key, user, team, tier): charged with an estimate before any
  // work, settled with the real usage at the end (docs/limits.md).
  const int64_t zero_tokens = 0;
  const int64_t estimate =
      req.prompt_tokens_estimate +
      (endpoint == openai::Endpoint::Embeddings
           ? 0
           : req.max_tokens.value_or(policies.default_completion_tokens()));
  const std::vector<limits::LimitSpec>& caller_specs = principal.rate_limits;
  limits::Decision caller;
  if (!caller_specs.empty()) {
    const std::string& lookup_key = look_up ? cache_key : no_lookup;
    caller = co_await policies.acquire_and_lookup(caller_specs, estimate, lookup_key, &lookup);
    if (!caller.admitted()) {
      add_ratelimit_headers(ex, caller);
      openai::ApiError err = limit_error(caller);
      co_await refuse(metrics, ex, request_id, req, group->name, std::move(err));
      co_return;
    }
  }
  // max_parallel_requests of the key, user, team or tier: refused at once, as LiteLLM does;
  // counted across instances when they share Redis.
  Policies::ParallelResult parallel = co_await policies.acquire_parallel(principal.limits);
  if (!parallel.admitted) {
    policies.settle(caller.ticket, zero_tokens);
    ex.add_response_header("Retry-After", "1");
    const std::string& scope = parallel.refused_scope;
    openai::ApiError err =
        parallel.unavailable
            ? openai::service_unavailable("Rate limits cannot be checked now; try again shortly.")
            : openai::rate_limited(fmt::format("Max parallel request limit reached for {}.",
                                               scope.substr(0, scope.find(':'))));
    co_await refuse(metrics, ex, request_id, req, group->name, std::move(err));
    co_return;
  }

  if (look_up) {
    std::optional<cache::CachedResponse> hit;
    if (lookup.done) {
      hit = std::move(lookup.hit);
    } else {
      std::optional<cache::CachedResponse> fetched = co_await policies.cache_get(cache_key);
      hit = std::move(fetched);
    }
    if (hit && cache_control.s_maxage_s &&
        limits::system_now_ms() - hit->created_ms > *cache_control.s_maxage_s * 1000)
      hit.reset();
    policies.count_cache(hit.has_value(), group->name);
    if (hit) {
      if (!caller_specs.empty()) add_ratelimit_headers(ex, caller);
      ex.add_response_header("x-ondol-cache", "hit");
      if (hit->content_type.starts_with("text/event-stream")) {
        bool open = co_await ex.begin_stream(200, "text/event-stream");
        if (open) {
          bool written = co_await ex.write(hit->body);
          if (written) co_await ex.end_stream();
        }
      } else {
        std::string type = hit->content_type;
        std::string cached_body = std::move(hit->body);
        co_await ex.respond(200, type, std::move(cached_body));
      }
      int64_t tokens = hit->prompt_tokens + hit->completion_tokens;
      policies.settle(caller.ticket, tokens);
      metrics.request_done(group->name, 200, ex.elapsed_seconds());
      Usage served{.prompt_tokens = hit->prompt_tokens, .completion_tokens = hit->completion_tokens};
      log_access(ex, {.request_id = request_id, .status = 200, .model = req.model,
                      .deployment = "cache", .stream = req.stream, .usage = served});
      if (principal.usage_sink) {  // the spend log: served, at no cost
        principal.usage_sink->on_request_done(
            principal, {.request_id = request_id, .model = req.model, .deployment = "cache",
                        .prompt_tokens = hit->prompt_tokens,
                        .completion_tokens = hit->completion_tokens, .cost = 0,
                        .latency_seconds = ex.elapsed_seconds(), .status = 200});
      }
      co_return;
    }
  }

  // Admission: the global concurrency limit and its bounded queue (503 when full).
  limits::Permit global_permit;
  if (limits::Admission* g = policies.global_admission()) {
    limits::AdmissionResult r = co_await g->acquire();
    if (!r.admitted()) {
      policies.settle(caller.ticket, zero_tokens);
      ex.add_response_header("Retry-After", std::to_string(r.retry_after_seconds));
      openai::ApiError err = openai::service_unavailable(
          r.outcome == limits::AdmissionOutcome::QueueFull
              ? "The gateway is at global_max_parallel_requests and its queue is full."
              : "Timed out waiting for a slot under global_max_parallel_requests.");
      co_await refuse(metrics, ex, request_id, req, group->name, std::move(err));
      co_return;
    }
    global_permit = std::move(r.permit);
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
  if (!cache_key.empty() && !cache_control.no_store) sink.capture();
  limits::Ticket dep_ticket;  // the current attempt's deployment tpm charge
  std::optional<limits::Decision> deployment_refusal;
  int64_t admission_retry_after = 0;
  int attempts_made = 0;
  bool headers_added = false;

  while (!done && !cancel.cancelled()) {
    Deployment* d = planner.next(Clock::now(), thread_rng());
    if (!d) break;
    if (planner.attempts() > 1) metrics.retries->inc();
    if (planner.in_fallback()) metrics.fallbacks->inc();
    last_tried = d;
    sink.reset_attempt();
    const DeploymentConfig& dc = d->config;
    if (dep_ticket.source != limits::Ticket::Source::None) {
      policies.settle(dep_ticket, zero_tokens);  // the previous attempt failed
      dep_ticket = {};
    }
    // The deployment's rpm / tpm: when it has no room, the next deployment is tried.
    std::vector<limits::LimitSpec> dep_specs = deployment_specs(dc);
    limits::Decision dep_decision;
    if (!dep_specs.empty()) {
      dep_decision = co_await policies.acquire(dep_specs, estimate);
      if (!dep_decision.admitted()) {
        deployment_refusal = dep_decision;
        continue;
      }
      dep_ticket = std::move(dep_decision.ticket);
    }
    limits::Permit dep_permit;
    if (dc.max_parallel_requests) {
      limits::Admission* a = policies.admission("deployment:" + dc.id, *dc.max_parallel_requests);
      limits::AdmissionResult r = co_await a->acquire();
      if (!r.admitted()) {
        admission_retry_after = r.retry_after_seconds;
        continue;
      }
      dep_permit = std::move(r.permit);
    }
    if (!headers_added && (!caller_specs.empty() || !dep_specs.empty())) {
      limits::Decision merged = merge_decisions(caller, &dep_decision);
      add_ratelimit_headers(ex, merged);
      headers_added = true;
    }
    ++attempts_made;
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
    if (attempts_made == 0 && deployment_refusal) {
      // Every deployment was at its rpm / tpm: the caller waits for the soonest to have room.
      limits::Decision merged = merge_decisions(caller, &*deployment_refusal);
      add_ratelimit_headers(ex, merged);
      err = limit_error(merged);
    } else if (attempts_made == 0 && admission_retry_after > 0) {
      ex.add_response_header("Retry-After", std::to_string(admission_retry_after));
      err = openai::service_unavailable(fmt::format(
          "Every deployment of model '{}' is at max_parallel_requests and its queue is full.",
          req.model));
    } else if (err.status == 429 || err.status == 503) {
      ex.add_response_header("Retry-After", "1");
    }
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
  // Settle the token limits with what was used: the reported usage, else (a stream without
  // usage) the estimate stands; nothing when the request failed.
  int64_t actual_tokens = 0;
  if (final_status >= 200 && final_status < 300) {
    bool known = sink.usage.prompt_tokens >= 0 || sink.usage.completion_tokens >= 0;
    actual_tokens = known ? std::max<int64_t>(0, sink.usage.prompt_tokens) +
                                std::max<int64_t>(0, sink.usage.completion_tokens)
                          : estimate;
  }
  policies.settle(dep_ticket, actual_tokens);
  policies.settle(caller.ticket, actual_tokens);
  if (!cache_key.empty() && !cache_control.no_store && final_status == 200 &&
      !cancel.cancelled()) {
    std::optional<cache::CachedResponse> answer = sink.captured();
    if (answer) {
      double ttl_s = cache_control.ttl_s.value_or(policies.cache_config().ttl_s);
      auto executor = co_await asio::this_coro::executor;
      policies.cache_store(executor, std::move(cache_key), std::move(*answer), ttl_s);
    }
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
  if (principal.usage_sink) {  // the spend log (src/tenants)
    int64_t in = std::max<int64_t>(0, sink.usage.prompt_tokens);
    int64_t out = std::max<int64_t>(0, sink.usage.completion_tokens);
    double cost = named ? in * named->config.input_cost_per_token +
                              out * named->config.output_cost_per_token
                        : 0;
    principal.usage_sink->on_request_done(
        principal, {.request_id = request_id, .model = req.model,
                    .deployment = named ? std::string_view(named->config.id) : std::string_view(),
                    .prompt_tokens = in, .completion_tokens = out, .cost = cost,
                    .latency_seconds = total_s, .status = final_status});
  }
}

}  // namespace ondol::gateway
