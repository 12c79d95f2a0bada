#include "bench/dataset.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "bench/prompt_tokenizer.h"

namespace ondol::bench {

namespace {

// vLLM's ShareGPT filter: too short to measure, or too long for common context windows.
constexpr int64_t kShareGptMinLen = 4;
constexpr int64_t kShareGptMaxPromptLen = 1024;
constexpr int64_t kShareGptMaxTotalLen = 2048;

std::string_view str(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

// [low, high] for a length with a range ratio, as vLLM computes it (truncating).
std::pair<int64_t, int64_t> length_range(int64_t len, double ratio, int64_t min_len) {
  auto low = static_cast<int64_t>(static_cast<double>(len) * (1 - ratio));
  auto high = static_cast<int64_t>(static_cast<double>(len) * (1 + ratio));
  low = std::max(low, min_len);
  high = std::max(high, low);
  return {low, high};
}

}  // namespace

int64_t estimate_tokens(std::string_view text) {
  return std::max<int64_t>(1, static_cast<int64_t>((text.size() + 3) / 4));
}

const std::vector<std::string_view>& prompt_words() {
  static const std::vector<std::string_view> words = {
      "the",    "of",    "and",   "to",    "in",    "is",    "was",   "for",    "on",     "that",
      "with",   "as",    "it",    "at",    "by",    "from",  "he",    "she",    "they",   "we",
      "you",    "this",  "have",  "had",   "not",   "are",   "but",   "or",     "an",     "be",
      "one",    "all",   "time",  "day",   "man",   "world", "life",  "hand",   "part",   "place",
      "case",   "week",  "work",  "home",  "water", "room",  "house", "city",   "school", "car",
      "book",   "game",  "food",  "tree",  "door",  "road",  "light", "name",   "year",   "way",
      "people", "good",  "new",   "first", "last",  "long",  "great", "little", "old",    "big",
      "high",   "small", "large", "next",  "early", "young", "black", "white",  "red",    "blue",
      "green",  "said",  "made",  "went",  "came",  "took",  "saw",   "knew",   "found",  "gave",
      "told",   "felt",  "left",  "kept",  "began", "heard", "ran",   "sat",    "put"};
  return words;
}

std::string random_words(std::mt19937_64& rng, int64_t num_words) {
  const auto& words = prompt_words();
  std::uniform_int_distribution<size_t> pick(0, words.size() - 1);
  std::string out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(0, num_words)) * 6);
  for (int64_t i = 0; i < num_words; ++i) {
    if (i) out.push_back(' ');
    out.append(words[pick(rng)]);
  }
  return out;
}

std::string random_prompt(std::mt19937_64& rng, int64_t num_tokens,
                          const PromptTokenizer* tokenizer) {
  std::string text = random_words(rng, num_tokens);
  if (!tokenizer || num_tokens <= 0) return text;
  // Words are at least one token each in any vocabulary; top up in case some merged.
  int64_t count = tokenizer->count(text);
  while (count < num_tokens) {
    text += ' ';
    text += random_words(rng, num_tokens - count);
    count = tokenizer->count(text);
  }
  return count == num_tokens ? text : tokenizer->first_tokens(text, num_tokens);
}

Result<std::vector<SampleRequest>> random_dataset(const RandomDatasetParams& p,
                                                  size_t num_requests) {
  if (p.range_ratio < 0 || p.range_ratio >= 1)
    return make_error("--random-range-ratio must be in [0, 1)");
  if (p.input_len < 1 || p.output_len < 1 || p.prefix_len < 0)
    return make_error("--random-input-len and --random-output-len must be at least 1");
  std::mt19937_64 rng(p.seed);
  auto [in_low, in_high] = length_range(p.input_len, p.range_ratio, 1);
  auto [out_low, out_high] = length_range(p.output_len, p.range_ratio, 1);
  std::uniform_int_distribution<int64_t> input_len(in_low, in_high);
  std::uniform_int_distribution<int64_t> output_len(out_low, out_high);
  std::string prefix = random_prompt(rng, p.prefix_len, p.tokenizer);
  std::vector<SampleRequest> out;
  out.reserve(num_requests);
  for (size_t i = 0; i < num_requests; ++i) {
    int64_t n_in = input_len(rng);
    int64_t n_out = output_len(rng);
    std::string prompt = prefix;
    if (!prompt.empty()) prompt.push_back(' ');
    prompt += random_prompt(rng, n_in, p.tokenizer);
    // With a tokenizer, the joined text is counted again (a merge across the join may differ).
    int64_t prompt_len = p.tokenizer ? p.tokenizer->count(prompt) : p.prefix_len + n_in;
    out.push_back({std::move(prompt), prompt_len, n_out});
  }
  return out;
}

Result<std::vector<SampleRequest>> prefix_repetition_dataset(const PrefixRepetitionParams& p,
                                                             size_t num_requests) {
  if (p.num_prefixes < 1 || p.prefix_len < 0 || p.suffix_len < 0 || p.output_len < 1)
    return make_error(
        "--prefix-repetition-num-prefixes and -output-len must be at least 1, the lengths >= 0");
  std::mt19937_64 rng(p.seed);
  std::vector<std::string> prefixes;
  for (int64_t i = 0; i < p.num_prefixes; ++i)
    prefixes.push_back(random_prompt(rng, p.prefix_len, p.tokenizer));
  std::vector<SampleRequest> out;
  out.reserve(num_requests);
  for (size_t i = 0; i < num_requests; ++i) {
    std::string prompt = prefixes[i % prefixes.size()];
    if (!prompt.empty() && p.suffix_len > 0) prompt.push_back(' ');
    prompt += random_prompt(rng, p.suffix_len, p.tokenizer);
    int64_t prompt_len = p.tokenizer ? p.tokenizer->count(prompt) : p.prefix_len + p.suffix_len;
    out.push_back({std::move(prompt), prompt_len, p.output_len});
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

Result<std::vector<SampleRequest>> sharegpt_dataset_from_json(std::string_view json,
                                                              const ShareGptParams& p,
                                                              size_t num_requests) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsArray())
    return make_error("not a ShareGPT file: expected a JSON list of {\"conversations\": [...]}");
  std::vector<std::pair<std::string_view, std::string_view>> pairs;  // prompt, answer
  for (const auto& entry : doc.GetArray()) {
    if (!entry.IsObject()) continue;
    auto conv = entry.FindMember("conversations");
    if (conv == entry.MemberEnd() || !conv->value.IsArray()) continue;
    const auto& turns = conv->value;
    std::string_view prompt, answer;
    bool have_prompt = false;
    for (const auto& turn : turns.GetArray()) {
      if (!turn.IsObject() || !turn.HasMember("from") || !turn.HasMember("value") ||
          !turn["from"].IsString() || !turn["value"].IsString())
        continue;
      std::string_view from = str(turn["from"]);
      if (!have_prompt && (from == "human" || from == "user")) {
        prompt = str(turn["value"]);
        have_prompt = true;
      } else if (have_prompt && (from == "gpt" || from == "assistant" || from == "chatgpt")) {
        answer = str(turn["value"]);
        break;
      }
    }
    if (have_prompt && answer.data() != nullptr) pairs.emplace_back(prompt, answer);
  }
  std::mt19937_64 rng(p.seed);
  std::shuffle(pairs.begin(), pairs.end(), rng);
  std::vector<SampleRequest> valid;
  for (const auto& [prompt, answer] : pairs) {
    if (valid.size() == num_requests) break;
    auto length = [&](std::string_view text) {
      return p.tokenizer ? p.tokenizer->count(text) : estimate_tokens(text);
    };
    int64_t prompt_len = length(prompt);
    int64_t output_len = p.fixed_output_len > 0 ? p.fixed_output_len : length(answer);
    bool too_short =
        prompt_len < kShareGptMinLen || (p.fixed_output_len <= 0 && output_len < kShareGptMinLen);
    bool too_long =
        prompt_len > kShareGptMaxPromptLen || prompt_len + output_len > kShareGptMaxTotalLen;
    if (too_short || too_long) continue;
    valid.push_back({std::string(prompt), prompt_len, output_len});
  }
  if (valid.empty())
    return make_error(fmt::format(
        "no usable conversation among {} (a human turn of >= {} tokens followed by a gpt turn; "
        "prompt <= {}, prompt + output <= {} tokens)",
        pairs.size(), kShareGptMinLen, kShareGptMaxPromptLen, kShareGptMaxTotalLen));
  for (size_t i = 0; valid.size() < num_requests; ++i) valid.push_back(valid[i]);
  return valid;
}

Result<std::vector<SampleRequest>> load_sharegpt_dataset(const std::string& path,
                                                         const ShareGptParams& params,
                                                         size_t num_requests) {
  if (path.empty()) return make_error("--dataset-name sharegpt needs --dataset-path FILE.json");
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read --dataset-path " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto samples = sharegpt_dataset_from_json(text.str(), params, num_requests);
  if (!samples) return make_error(path + ": " + samples.error().message);
  return samples;
}

}  // namespace ondol::bench
