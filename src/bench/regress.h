// `ondol bench regress`: the check before a model update or a canary promotion. A baseline is a
// saved set of prompts, sampling parameters and answers; replaying it against a model must give
// the same answers: exactly for greedy entries (temperature 0), and at least a normalised
// Levenshtein similarity for sampled ones.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ondol::bench {

struct RegressEntry {
  std::string prompt;
  int64_t max_tokens = 64;
  double temperature = 0;
  std::optional<int64_t> seed;
  std::string expected;  // the recorded answer
};

struct Baseline {
  std::string model;
  std::string backend;   // "openai" or "openai-chat"
  std::string endpoint;  // "/v1/completions"
  std::string created;   // date of recording
  std::vector<RegressEntry> entries;
};

inline constexpr int kBaselineFormatVersion = 1;

std::string baseline_to_json(const Baseline& b);
Result<Baseline> baseline_from_json(std::string_view json);

// Prompts to record: a text file (one prompt per line, empty lines skipped) or, for a ".json"
// path, a list of strings or of {"prompt", "max_tokens", "temperature", "seed"} objects. Missing
// fields take `defaults`.
Result<std::vector<RegressEntry>> prompts_from_text(std::string_view text, bool json,
                                                    const RegressEntry& defaults);

// 1 - Levenshtein distance / max(length), over Unicode code points; 1 for two empty texts.
double text_similarity(std::string_view a, std::string_view b);

struct Comparison {
  bool match = false;
  double similarity = 1.0;  // computed for sampled entries (and 1 or less for greedy ones)
  std::string diff;         // readable, multi-line; empty on a match
};

// Greedy entries (temperature 0) must match exactly; others reach `min_similarity`.
Comparison compare_answer(const RegressEntry& entry, std::string_view got, double min_similarity);

// The first differing position (code point offset, line and column) and the expected and received
// text around it, control characters escaped.
std::string describe_difference(std::string_view expected, std::string_view got);

}  // namespace ondol::bench
