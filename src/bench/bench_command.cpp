#include "bench/commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>

#include "bench/arrivals.h"
#include "bench/dataset.h"
#include "bench/load_runner.h"
#include "bench/metrics.h"
#include "bench/plot.h"
#include "bench/prompt_tokenizer.h"
#include "bench/report.h"

namespace ondol::bench {

namespace {

constexpr int kProgressBarWidth = 30;

void draw_progress(const LoadProgress& p) {
  double fraction =
      p.total > 0 ? static_cast<double>(p.completed) / static_cast<double>(p.total) : 1;
  int filled = static_cast<int>(fraction * kProgressBarWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kProgressBarWidth, '.');
  double rate = p.elapsed_s > 0 ? static_cast<double>(p.completed) / p.elapsed_s : 0;
  std::fprintf(stderr, "\r%3d%% [%s] %lld/%lld  %lld failed  %.1fs  %.1f req/s ",
               static_cast<int>(fraction * 100), bar.c_str(), static_cast<long long>(p.completed),
               static_cast<long long>(p.total), static_cast<long long>(p.failed), p.elapsed_s,
               rate);
  std::fflush(stderr);
}

Result<std::vector<SampleRequest>> load_samples(const BenchFlags& f, size_t count,
                                                const PromptTokenizer* tokenizer) {
  if (f.dataset_name == "random") {
    return random_dataset({.input_len = f.random_input_len,
                           .output_len = f.random_output_len,
                           .range_ratio = f.random_range_ratio,
                           .prefix_len = f.random_prefix_len,
                           .seed = f.seed,
                           .tokenizer = tokenizer},
                          count);
  }
  if (f.dataset_name == "prefix-repetition") {
    return prefix_repetition_dataset({.prefix_len = f.prefix_len,
                                      .suffix_len = f.suffix_len,
                                      .num_prefixes = f.num_prefixes,
                                      .output_len = f.prefix_output_len,
                                      .seed = f.seed,
                                      .tokenizer = tokenizer},
                                     count);
  }
  if (f.dataset_name == "sharegpt") {
    return load_sharegpt_dataset(
        f.dataset_path,
        {.fixed_output_len = f.sharegpt_output_len, .seed = f.seed, .tokenizer = tokenizer}, count);
  }
  return make_error("--dataset-name '" + f.dataset_name +
                    "': expected sharegpt, random or prefix-repetition");
}

LoadPlan make_plan(const std::vector<SampleRequest>& samples, size_t from, size_t count,
                   const BodyParams& body) {
  LoadPlan plan;
  for (size_t k = 0; k < count; ++k) {
    const SampleRequest& s = samples[(from + k) % samples.size()];
    plan.bodies.push_back(request_body(body, s.prompt, s.expected_output_len));
    plan.prompt_lens.push_back(s.prompt_len);
  }
  plan.send_offsets_s.assign(count, 0.0);
  return plan;
}

}  // namespace

int run_bench(BenchFlags& f) {
  raise_open_files_limit();
  double rate = 0;
  if (f.request_rate == "inf") {
    rate = std::numeric_limits<double>::infinity();
  } else {
    char* end = nullptr;
    rate = std::strtod(f.request_rate.c_str(), &end);
    if (end == f.request_rate.c_str() || *end != '\0' || !(rate > 0)) {
      std::fprintf(stderr, "ondol bench: --request-rate '%s': expected a positive number or inf\n",
                   f.request_rate.c_str());
      return kExitUsage;
    }
  }
  if (f.num_prompts < 1 || !(f.burstiness > 0) || f.io_threads < 1) {
    std::fprintf(stderr, "ondol bench: --num-prompts, --burstiness and --io-threads must be > 0\n");
    return kExitUsage;
  }
  auto slo = parse_goodput(f.goodput);
  auto percentiles = parse_percentiles(f.metric_percentiles);
  auto metric_names = parse_percentile_metrics(f.percentile_metrics);
  for (const Error* e : {slo ? nullptr : &slo.error(), percentiles ? nullptr : &percentiles.error(),
                         metric_names ? nullptr : &metric_names.error()}) {
    if (e) {
      std::fprintf(stderr, "ondol bench: %s\n", e->message.c_str());
      return kExitUsage;
    }
  }
  auto endpoint = resolve_endpoint(f.server);
  if (!endpoint) {
    std::fprintf(stderr, "ondol bench: %s\n", endpoint.error().message.c_str());
    return kExitUsage;
  }
  if (auto st = resolve_model(f.server, *endpoint); !st) {
    std::fprintf(stderr, "ondol bench: %s\n", st.error().message.c_str());
    return kExitFailed;
  }
  std::unique_ptr<PromptTokenizer> tokenizer;
  if (!f.tokenizer.empty()) {
    auto loaded = load_gguf_tokenizer(f.tokenizer);
    if (!loaded) {
      std::fprintf(stderr, "ondol bench: %s\n", loaded.error().message.c_str());
      return kExitUsage;
    }
    tokenizer = std::move(loaded).value();
  }
  auto samples = load_samples(f, static_cast<size_t>(f.num_prompts), tokenizer.get());
  if (!samples) {
    std::fprintf(stderr, "ondol bench: %s\n", samples.error().message.c_str());
    return kExitUsage;
  }
  BodyParams body{.api = endpoint->api,
                  .model = f.server.model,
                  .temperature = f.temperature,
                  .seed = std::nullopt,
                  .stream = !f.no_stream,
                  .ignore_eos = f.ignore_eos};
  LoadOptions options{.target = endpoint->target,
                      .path = endpoint->path,
                      .api = endpoint->api,
                      .io_threads = f.io_threads,
                      .max_concurrency = f.server.max_concurrency,
                      .request_timeout = std::chrono::milliseconds(
                          static_cast<int64_t>(f.server.request_timeout_s * 1000))};

  std::printf("Starting initial single prompt test run...\n");
  std::fflush(stdout);
  LoadResult probe = run_load(make_plan(*samples, 0, 1, body), options);
  if (!probe.outputs[0].success) {
    std::fprintf(stderr, "ondol bench: the initial test request to %s%s%s failed: %s\n",
                 endpoint->target.url.origin().c_str(), endpoint->target.url.path_prefix.c_str(),
                 endpoint->path.c_str(), probe.outputs[0].error.c_str());
    return kExitFailed;
  }
  std::printf("Initial test run completed. Starting main benchmark run...\n");
  if (f.num_warmups > 0) {
    std::printf("Warming up with %d requests...\n", f.num_warmups);
    std::fflush(stdout);
    // The first prompt each time, as vLLM warms up: the measured run's other prompts stay cold.
    std::vector<SampleRequest> first = {samples->front()};
    (void)run_load(make_plan(first, 0, static_cast<size_t>(f.num_warmups), body), options);
  }
  std::printf("Traffic request rate: %s\n", f.request_rate.c_str());
  std::printf("Burstiness factor: %s (%s)\n", python_float(f.burstiness).c_str(),
              f.burstiness == 1.0 ? "Poisson process" : "Gamma distribution");
  if (f.server.max_concurrency > 0)
    std::printf("Maximum request concurrency: %d\n", f.server.max_concurrency);
  else
    std::printf("Maximum request concurrency: None\n");
  std::fflush(stdout);

  LoadPlan plan = make_plan(*samples, 0, samples->size(), body);
  plan.send_offsets_s = arrival_offsets(
      {.request_rate = rate, .burstiness = f.burstiness, .seed = f.seed}, samples->size());
  bool progress = !f.disable_tqdm && isatty(STDERR_FILENO);
  std::function<void(const LoadProgress&)> tick;
  if (progress) tick = draw_progress;
  LoadResult result = run_load(plan, options, tick);
  if (progress) {
    LoadProgress last{.total = static_cast<int64_t>(result.outputs.size()),
                      .completed = static_cast<int64_t>(result.outputs.size()),
                      .failed = 0,
                      .elapsed_s = result.duration_s};
    for (const auto& o : result.outputs) last.failed += o.success ? 0 : 1;
    draw_progress(last);
    std::fputc('\n', stderr);
  }

  BenchmarkMetrics metrics = compute_metrics(result.outputs, result.duration_s, *slo, *percentiles);
  RunInfo info{.date = current_date_string(),
               .backend = endpoint->backend,
               .model_id = f.server.model,
               .tokenizer_id = f.tokenizer.empty() ? f.server.model : f.tokenizer,
               .num_prompts = f.num_prompts,
               .request_rate = rate,
               .burstiness = f.burstiness,
               .max_concurrency = f.server.max_concurrency > 0
                                      ? std::optional<int>(f.server.max_concurrency)
                                      : std::nullopt,
               .percentile_metrics = *metric_names,
               .goodput = slo->any()};
  std::fputs(format_result_table(info, metrics).c_str(), stdout);
  std::fflush(stdout);

  int rc = 0;
  if (f.save_result) {
    std::string name = !f.save_result_file.empty()  ? f.save_result_file
                       : !f.result_filename.empty() ? f.result_filename
                                                    : default_result_filename(info);
    std::filesystem::path path(name);
    if (!f.result_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(f.result_dir, ec);
      path = std::filesystem::path(f.result_dir) / path;
    }
    if (auto st = write_file(path.string(), result_json(info, metrics, result.outputs)); !st) {
      std::fprintf(stderr, "ondol bench: %s\n", st.error().message.c_str());
      rc = kExitFailed;
    } else {
      std::printf("Result saved to %s\n", path.c_str());
    }
  }
  if (!f.plot.empty()) {
    PlotInfo plot_info{
        .title = fmt::format("ondol bench: {} {}, {} prompts at {} req/s{}", endpoint->backend,
                             f.server.model, f.num_prompts, f.request_rate,
                             f.server.max_concurrency > 0
                                 ? fmt::format(", max concurrency {}", f.server.max_concurrency)
                                 : "")};
    if (auto st = write_file(f.plot, render_svg(plot_info, metrics, result.outputs)); !st) {
      std::fprintf(stderr, "ondol bench: %s\n", st.error().message.c_str());
      rc = kExitFailed;
    } else {
      std::printf("Plot saved to %s\n", f.plot.c_str());
    }
  }
  return rc;
}

}  // namespace ondol::bench
