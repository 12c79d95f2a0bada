#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/kernels/kernel_table.h"

namespace ondol::engine {

namespace {

// top-k up to this k runs as one pass with a small heap; larger k uses nth_element.
constexpr size_t kTopKHeapMax = 256;
// top-p's selection sorts a range once it is this small.
constexpr size_t kTopPSortBelow = 32;

// Visits the candidate tokens: every id when `ids` is empty, else the listed ones.
template <typename F>
void for_each_candidate(size_t vocab_size, std::span<const int32_t> ids, F&& f) {
  if (ids.empty()) {
    for (size_t i = 0; i < vocab_size; ++i) f(static_cast<int32_t>(i));
  } else {
    for (int32_t id : ids) f(id);
  }
}

// Log-softmax facts about `chosen` and the best `num_top` tokens of the distribution given by
// `values` over the candidates. One pass for the normaliser, one for rank and the top list,
// which is kept sorted by insertion (num_top <= 20).
void fill_logprobs(std::span<const float> values, std::span<const int32_t> ids, TokenId chosen,
                   int32_t num_top, SampledToken& out) {
  float max_value = -std::numeric_limits<float>::infinity();
  for_each_candidate(values.size(), ids, [&](int32_t id) {
    max_value = std::max(max_value, values[static_cast<size_t>(id)]);
  });
  double sum = 0.0;
  for_each_candidate(values.size(), ids, [&](int32_t id) {
    sum += std::exp(static_cast<double>(values[static_cast<size_t>(id)] - max_value));
  });
  const float log_normaliser = max_value + static_cast<float>(std::log(sum));

  const float chosen_value = values[static_cast<size_t>(chosen)];
  int32_t num_better = 0;
  int32_t num_kept = 0;
  std::array<TokenLogprob, kMaxTopLogprobs>& top = out.top;
  for_each_candidate(values.size(), ids, [&](int32_t id) {
    const float v = values[static_cast<size_t>(id)];
    if (v > chosen_value) ++num_better;
    if (num_top == 0) return;
    if (num_kept == num_top && v <= top[static_cast<size_t>(num_kept - 1)].logprob) return;
    // Insert keeping descending order; ties keep the lower id first (it was seen first).
    int32_t pos = num_kept < num_top ? num_kept++ : num_kept - 1;
    while (pos > 0 && top[static_cast<size_t>(pos - 1)].logprob < v) {
      top[static_cast<size_t>(pos)] = top[static_cast<size_t>(pos - 1)];
      --pos;
    }
    top[static_cast<size_t>(pos)] = TokenLogprob{id, v};
  });
  for (int32_t i = 0; i < num_kept; ++i) top[static_cast<size_t>(i)].logprob -= log_normaliser;
  out.num_top = num_kept;
  out.logprob = chosen_value - log_normaliser;
  out.rank = num_better + 1;
}

TokenId argmax(std::span<const float> values) {
  // First maximum, as torch.argmax: ties go to the lower id. Vectorised: a step samples every
  // running sequence's row of the vocabulary on the step thread.
  return static_cast<TokenId>(
      kernels::active_kernels().argmax(values.data(), static_cast<int64_t>(values.size())));
}

}  // namespace

Sampler::Sampler(size_t vocab_size, uint64_t seed)
    : vocab_size_(vocab_size),
      seed_rng_(seed),
      logits_(vocab_size),
      weights_(vocab_size),
      candidates_(vocab_size),
      counts_(vocab_size, 0),
      penalised_(vocab_size, 0),
      probs_(vocab_size),
      top_k_heap_(kTopKHeapMax) {}

void Sampler::apply_penalties(const SequenceSamplingState& state) {
  const SamplingParams& p = state.params();
  auto in_vocab = [&](TokenId id) { return id >= 0 && static_cast<size_t>(id) < vocab_size_; };
  std::span<const TokenId> output = state.output_ids();
  for (TokenId id : output) {
    if (in_vocab(id)) ++counts_[static_cast<size_t>(id)];
  }
  if (p.repetition_penalty != 1.0f) {
    // HF/vLLM: once per distinct token of prompt + output; divide positive logits, multiply
    // negative ones, so the token always becomes less likely.
    auto penalise = [&](TokenId id) {
      if (!in_vocab(id) || penalised_[static_cast<size_t>(id)]) return;
      penalised_[static_cast<size_t>(id)] = 1;
      float& l = logits_[static_cast<size_t>(id)];
      l = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
    };
    for (TokenId id : state.prompt_unique_ids()) penalise(id);
    for (TokenId id : output) penalise(id);
    for (TokenId id : state.prompt_unique_ids()) {
      if (in_vocab(id)) penalised_[static_cast<size_t>(id)] = 0;
    }
  }
  // OpenAI: logit -= frequency * count + presence * (count > 0), over output tokens. Each
  // distinct token is handled when first met, and its count reset, which restores the
  // all-zero invariant of counts_ and penalised_.
  for (TokenId id : output) {
    if (!in_vocab(id)) continue;
    const size_t i = static_cast<size_t>(id);
    penalised_[i] = 0;
    if (counts_[i] == 0) continue;
    logits_[i] -= p.frequency_penalty * static_cast<float>(counts_[i]) + p.presence_penalty;
    counts_[i] = 0;
  }
}

void Sampler::fill_all_candidates() {
  if (!all_candidates_) return;
  std::iota(candidates_.begin(), candidates_.end(), 0);
  num_candidates_ = vocab_size_;
  all_candidates_ = false;
}

void Sampler::filter(const SamplingParams& p, float max_logit) {
  all_candidates_ = true;
  num_candidates_ = vocab_size_;
  const float* l = logits_.data();
  if (p.min_p > 0.0f) {
    // p_i >= min_p * p_max  <=>  l_i >= l_max + log(min_p); the max always survives.
    const float threshold = max_logit + std::log(p.min_p);
    size_t n = 0;
    for (size_t i = 0; i < vocab_size_; ++i) {
      if (l[i] >= threshold) candidates_[n++] = static_cast<int32_t>(i);
    }
    num_candidates_ = n;
    all_candidates_ = false;
  }
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < num_candidates_) {
    select_top_k(static_cast<size_t>(p.top_k));
  }
  if (p.top_p < 1.0f) {
    fill_all_candidates();
    select_top_p(p.top_p, max_logit);
  }
}

void Sampler::select_top_k(size_t k) {
  const float* l = logits_.data();
  auto better = [l](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
  if (k > kTopKHeapMax) {
    fill_all_candidates();
    const auto begin = candidates_.begin();
    std::nth_element(begin, begin + static_cast<ptrdiff_t>(k),
                     begin + static_cast<ptrdiff_t>(num_candidates_), better);
    num_candidates_ = k;
    return;
  }
  // Small k (the usual 20-100): one pass against the worst of the k best so far, kept at the
  // front of a heap; almost every token fails the first comparison.
  int32_t* heap = top_k_heap_.data();
  size_t size = 0;
  std::span<const int32_t> ids =
      all_candidates_ ? std::span<const int32_t>{}
                      : std::span<const int32_t>(candidates_.data(), num_candidates_);
  for_each_candidate(vocab_size_, ids, [&](int32_t id) {
    if (size < k) {
      heap[size++] = id;
      std::push_heap(heap, heap + size, better);
    } else if (better(id, heap[0])) {
      std::pop_heap(heap, heap + size, better);
      heap[size - 1] = id;
      std::push_heap(heap, heap + size, better);
    }
  });
  std::copy(heap, heap + size, candidates_.begin());
  num_candidates_ = size;
  all_candidates_ = false;
}

void Sampler::select_top_p(float top_p, float max_logit) {
  // Keep token i (in descending order) while the mass before it is < top_p, without sorting:
  // a quickselect that partitions around a pivot and recurses into the side where the mass
  // runs out (expected O(n)); only the last few elements are sorted.
  const float* l = logits_.data();
  auto better = [l](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
  int32_t* cand = candidates_.data();
  float* w = probs_.data();  // indexed by token id
  double total = 0.0;
  for (size_t i = 0; i < num_candidates_; ++i) {
    const float x = std::exp(l[cand[i]] - max_logit);
    w[cand[i]] = x;
    total += x;
  }
  double needed = static_cast<double>(top_p) * total;
  size_t lo = 0;
  size_t hi = num_candidates_;
  while (hi - lo > kTopPSortBelow) {
    // Median of three as the pivot, moved to the end of the range.
    size_t a = lo, b = lo + (hi - lo) / 2, c = hi - 1;
    if (better(cand[b], cand[a])) std::swap(a, b);
    if (better(cand[c], cand[b])) std::swap(b, c);
    if (better(cand[b], cand[a])) std::swap(a, b);
    std::swap(cand[b], cand[hi - 1]);
    const int32_t pivot = cand[hi - 1];
    int32_t* mid_ptr =
        std::partition(cand + lo, cand + hi - 1, [&](int32_t x) { return better(x, pivot); });
    const size_t mid = static_cast<size_t>(mid_ptr - cand);
    std::swap(cand[mid], cand[hi - 1]);
    double upper = 0.0;
    for (size_t i = lo; i < mid; ++i) upper += w[cand[i]];
    if (upper >= needed) {
      hi = mid;  // the cut lies among the better ones
    } else if (upper + w[pivot] >= needed) {
      num_candidates_ = mid + 1;  // the pivot is the last token kept
      return;
    } else {
      needed -= upper + w[pivot];  // keep all of them and the pivot; look further down
      lo = mid + 1;
    }
  }
  std::sort(cand + lo, cand + hi, better);
  double mass = 0.0;
  for (size_t i = lo; i < hi; ++i) {
    mass += w[cand[i]];
    if (mass >= needed) {
      num_candidates_ = i + 1;
      return;
    }
  }
  num_candidates_ = std::max<size_t>(hi, 1);  // rounding left the mass short: keep them all
}

SampledToken Sampler::sample(std::span<const float> logits, SequenceSamplingState& state) {
  assert(logits.size() == vocab_size_);
  const SamplingParams& p = state.params();
  SampledToken token;

  // The unmodified logits serve the greedy path without penalties; otherwise work on a copy.
  std::span<const float> work = logits;
  if (p.has_penalties() || !p.is_greedy()) {
    std::copy(logits.begin(), logits.end(), logits_.begin());
    if (p.has_penalties()) apply_penalties(state);  // O(distinct prompt + output tokens)
    work = logits_;
  }

  if (p.is_greedy()) {
    token.id = argmax(work);
    if (p.logprobs) {
      fill_logprobs(p.logprobs_mode == LogprobsMode::Raw ? logits : work, {}, token.id,
                    p.top_logprobs, token);
    }
    state.append_output(token.id);
    return token;
  }

  // The passes over the whole vocabulary run on the kernels: at 16 sequences a step, scalar
  // loops here cost the step thread about 0.1 ms a sequence.
  const kernels::KernelTable& k = kernels::active_kernels();
  const float inv_temperature = 1.0f / p.temperature;
  const float max_logit =
      k.scale_max(logits_.data(), inv_temperature, static_cast<int64_t>(vocab_size_));
  filter(p, max_logit);

  // Draw by inverse CDF over the surviving candidates (in whatever order they are).
  std::span<const int32_t> ids =
      all_candidates_ ? std::span<const int32_t>{}
                      : std::span<const int32_t>(candidates_.data(), num_candidates_);
  double total = 0.0;
  size_t n = 0;
  if (ids.empty()) {
    total =
        k.exp_sum(logits_.data(), max_logit, weights_.data(), static_cast<int64_t>(vocab_size_));
    n = vocab_size_;
  } else {
    for (int32_t id : ids) {
      const float w = std::exp(logits_[static_cast<size_t>(id)] - max_logit);
      weights_[n++] = w;
      total += w;
    }
  }
  const double target = state.next_uniform() * total;
  double acc = 0.0;
  size_t pick = n - 1;
  for (size_t i = 0; i < n; ++i) {
    acc += weights_[i];
    if (acc > target) {
      pick = i;
      break;
    }
  }
  // Rounding can leave acc just short of target: step back to a token that has weight.
  while (pick > 0 && weights_[pick] == 0.0f) --pick;
  token.id = ids.empty() ? static_cast<TokenId>(pick) : ids[pick];

  if (p.logprobs) {
    if (p.logprobs_mode == LogprobsMode::Raw) {
      fill_logprobs(logits, {}, token.id, p.top_logprobs, token);
    } else {
      fill_logprobs(logits_, ids, token.id, p.top_logprobs, token);
    }
  }
  state.append_output(token.id);
  return token;
}

}  // namespace ondol::engine
