// The workloads `ondol bench` sends: ShareGPT-format conversations, random prompts, and a
// shared-prefix workload. Without the server's tokenizer, prompt lengths are estimates (see
// docs/bench.md); reported token counts always come from the responses' usage.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ondol::bench {

class PromptTokenizer;

struct SampleRequest {
  std::string prompt;
  int64_t prompt_len = 0;           // estimated tokens
  int64_t expected_output_len = 0;  // sent as max_tokens
};

// One token per 4 bytes of text, at least one: the usual rule of thumb for English.
int64_t estimate_tokens(std::string_view text);

// Words that are one token each, preceded by a space, in the common 32k-150k vocabularies.
const std::vector<std::string_view>& prompt_words();

// `num_words` random words joined by spaces.
std::string random_words(std::mt19937_64& rng, int64_t num_words);

// Random words of exactly `num_tokens` tokens by `tokenizer` (words added, then the text cut at
// a token boundary); `num_tokens` words when there is no tokenizer.
std::string random_prompt(std::mt19937_64& rng, int64_t num_tokens,
                          const PromptTokenizer* tokenizer);

struct RandomDatasetParams {
  int64_t input_len = 1024;
  int64_t output_len = 128;
  double range_ratio = 0.0;  // lengths uniform in [len * (1 - r), len * (1 + r)]
  int64_t prefix_len = 0;    // one random prefix shared by every prompt
  uint64_t seed = 0;
  const PromptTokenizer* tokenizer = nullptr;  // set: prompts of exactly these token counts
};
Result<std::vector<SampleRequest>> random_dataset(const RandomDatasetParams& params,
                                                  size_t num_requests);

struct PrefixRepetitionParams {
  int64_t prefix_len = 256;
  int64_t suffix_len = 256;
  int64_t num_prefixes = 10;
  int64_t output_len = 128;
  uint64_t seed = 0;
  const PromptTokenizer* tokenizer = nullptr;  // set: prefixes and suffixes of exact lengths
};
Result<std::vector<SampleRequest>> prefix_repetition_dataset(const PrefixRepetitionParams& params,
                                                             size_t num_requests);

struct ShareGptParams {
  int64_t fixed_output_len = 0;  // --sharegpt-output-len; 0: the gpt turn's estimated length
  uint64_t seed = 0;
  const PromptTokenizer* tokenizer = nullptr;  // set: lengths counted, not estimated
};
// Parses a ShareGPT JSON text: [{"conversations": [{"from": "human", "value": ...},
// {"from": "gpt", "value": ...}, ...]}, ...]. Conversations are shuffled with the seed and
// filtered as vLLM does; when fewer than num_requests remain they are reused in order.
Result<std::vector<SampleRequest>> sharegpt_dataset_from_json(std::string_view json,
                                                              const ShareGptParams& params,
                                                              size_t num_requests);
Result<std::vector<SampleRequest>> load_sharegpt_dataset(const std::string& path,
                                                         const ShareGptParams& params,
                                                         size_t num_requests);

}  // namespace ondol::bench
