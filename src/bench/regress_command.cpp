#include "bench/commands.h"

#include <cstdio>

#include "bench/dataset.h"
#include "bench/load_runner.h"
#include "bench/regress.h"
#include "bench/report.h"

namespace ondol::bench {

namespace {

// Sends the entries non-streaming, `max_concurrency` at a time (1 by default: a batch's
// composition must not be a variable in the comparison), and returns their answers.
LoadResult send_entries(const std::vector<RegressEntry>& entries, const Endpoint& e,
                        const ServerFlags& f) {
  LoadPlan plan;
  for (const auto& entry : entries) {
    BodyParams body{.api = e.api,
                    .model = f.model,
                    .temperature = entry.temperature,
                    .seed = entry.seed,
                    .stream = false,
                    .ignore_eos = false};
    plan.bodies.push_back(request_body(body, entry.prompt, entry.max_tokens));
    plan.prompt_lens.push_back(estimate_tokens(entry.prompt));
  }
  plan.send_offsets_s.assign(entries.size(), 0.0);
  LoadOptions options{.target = e.target,
                      .path = e.path,
                      .api = e.api,
                      .io_threads = 1,
                      .max_concurrency = f.max_concurrency > 0 ? f.max_concurrency : 1,
                      .request_timeout = std::chrono::milliseconds(
                          static_cast<int64_t>(f.request_timeout_s * 1000))};
  return run_load(plan, options);
}

std::string prompt_excerpt(std::string_view prompt) {
  std::string s(prompt.substr(0, 60));
  for (char& c : s)
    if (c == '\n') c = ' ';
  return prompt.size() > 60 ? s + "..." : s;
}

int run_record(RegressFlags& f) {
  auto text = read_file(f.prompts);
  if (!text) {
    std::fprintf(stderr, "ondol bench regress: %s\n", text.error().message.c_str());
    return kExitUsage;
  }
  RegressEntry defaults{.prompt = {},
                        .max_tokens = f.max_tokens,
                        .temperature = f.temperature,
                        .seed = f.seed,
                        .expected = {}};
  auto entries = prompts_from_text(*text, f.prompts.ends_with(".json"), defaults);
  if (!entries) {
    std::fprintf(stderr, "ondol bench regress: %s: %s\n", f.prompts.c_str(),
                 entries.error().message.c_str());
    return kExitUsage;
  }
  auto endpoint = resolve_endpoint(f.server);
  if (!endpoint) {
    std::fprintf(stderr, "ondol bench regress: %s\n", endpoint.error().message.c_str());
    return kExitUsage;
  }
  if (auto st = resolve_model(f.server, *endpoint); !st) {
    std::fprintf(stderr, "ondol bench regress: %s\n", st.error().message.c_str());
    return kExitFailed;
  }
  LoadResult result = send_entries(*entries, *endpoint, f.server);
  int failed = 0;
  for (size_t i = 0; i < entries->size(); ++i) {
    const RequestOutput& o = result.outputs[i];
    if (!o.success) {
      std::fprintf(stderr, "entry %zu (%s): %s\n", i + 1,
                   prompt_excerpt((*entries)[i].prompt).c_str(), o.error.c_str());
      ++failed;
    }
    (*entries)[i].expected = o.generated_text;
  }
  if (failed > 0) {
    std::fprintf(stderr, "ondol bench regress: %d of %zu requests failed; nothing recorded\n",
                 failed, entries->size());
    return kExitFailed;
  }
  Baseline b{.model = f.server.model,
             .backend = endpoint->backend,
             .endpoint = endpoint->path,
             .created = current_date_string(),
             .entries = std::move(*entries)};
  if (auto st = write_file(f.record, baseline_to_json(b)); !st) {
    std::fprintf(stderr, "ondol bench regress: %s\n", st.error().message.c_str());
    return kExitFailed;
  }
  std::printf("recorded %zu answers of %s to %s\n", b.entries.size(), b.model.c_str(),
              f.record.c_str());
  return 0;
}

int run_replay(RegressFlags& f) {
  auto text = read_file(f.baseline);
  if (!text) {
    std::fprintf(stderr, "ondol bench regress: %s\n", text.error().message.c_str());
    return kExitUsage;
  }
  auto baseline = baseline_from_json(*text);
  if (!baseline) {
    std::fprintf(stderr, "ondol bench regress: %s: %s\n", f.baseline.c_str(),
                 baseline.error().message.c_str());
    return kExitUsage;
  }
  if (f.server.model.empty()) f.server.model = baseline->model;
  if (f.server.backend.empty() && f.server.endpoint.empty()) {
    f.server.backend = baseline->backend;
    f.server.endpoint = baseline->endpoint;
  }
  auto endpoint = resolve_endpoint(f.server);
  if (!endpoint) {
    std::fprintf(stderr, "ondol bench regress: %s\n", endpoint.error().message.c_str());
    return kExitUsage;
  }
  if (auto st = resolve_model(f.server, *endpoint); !st) {
    std::fprintf(stderr, "ondol bench regress: %s\n", st.error().message.c_str());
    return kExitFailed;
  }
  LoadResult result = send_entries(baseline->entries, *endpoint, f.server);
  size_t mismatches = 0;
  for (size_t i = 0; i < baseline->entries.size(); ++i) {
    const RegressEntry& entry = baseline->entries[i];
    const RequestOutput& o = result.outputs[i];
    std::string problem;
    if (!o.success) {
      problem = "request failed: " + o.error + "\n";
    } else {
      Comparison c = compare_answer(entry, o.generated_text, f.min_similarity);
      if (!c.match) problem = c.diff;
    }
    if (problem.empty()) continue;
    ++mismatches;
    std::printf("MISMATCH entry %zu of %zu, prompt \"%s\":\n  %s", i + 1, baseline->entries.size(),
                prompt_excerpt(entry.prompt).c_str(), problem.c_str());
  }
  std::printf("regress: %zu of %zu answers of %s match %s (recorded %s)%s\n",
              baseline->entries.size() - mismatches, baseline->entries.size(),
              f.server.model.c_str(), f.baseline.c_str(), baseline->created.c_str(),
              mismatches ? "" : ": OK");
  return mismatches ? kExitFailed : 0;
}

}  // namespace

int run_regress(RegressFlags& f) {
  raise_open_files_limit();
  if (f.baseline.empty() == f.record.empty()) {
    std::fprintf(stderr,
                 "ondol bench regress: give --baseline FILE (replay) or --record FILE "
                 "--prompts FILE (record)\n");
    return kExitUsage;
  }
  if (!f.record.empty()) {
    if (f.prompts.empty()) {
      std::fprintf(stderr, "ondol bench regress: --record needs --prompts FILE\n");
      return kExitUsage;
    }
    return run_record(f);
  }
  return run_replay(f);
}

}  // namespace ondol::bench
