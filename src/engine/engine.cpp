#include "engine/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <thread>

#include "common/log.h"
#include "common/memory_size.h"
#include "engine/chat/chat_template.h"
#include "engine/engine_metrics.h"
#include "engine/model/llama_model.h"
#include "engine/sampling/sampler.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"

namespace ondol::engine {
namespace {

constexpr std::string_view kComponent = "engine";
constexpr int kDefaultMaxModelLen = 4096;
constexpr int64_t kDefaultKvBudgetBytes = int64_t{512} << 20;

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// One request inside the engine. Not movable once built: output_ refers to state_'s params.
struct Sequence {
  Sequence(std::shared_ptr<RequestChannel> ch, std::vector<TokenId> prompt_ids,
           SequenceSamplingState st, const Tokenizer& tokenizer)
      : channel(std::move(ch)),
        prompt(std::move(prompt_ids)),
        state(std::move(st)),
        output(tokenizer, state.params()) {}

  std::shared_ptr<RequestChannel> channel;
  std::vector<TokenId> prompt;
  SequenceSamplingState state;
  GenerationOutput output;
  BlockTable blocks;
  int32_t num_prefilled = 0;     // positions whose K/V are in the cache (prefill and decode)
  std::vector<BlockHash> hashes;  // prefix-cache keys of the token stream's full blocks so far
  int32_t num_published = 0;     // blocks of `blocks` published to the prefix cache
  int32_t cached_tokens = 0;     // prompt tokens the first admission found in the cache
  TokenId last_token = kNoToken;  // the token to feed next while decoding
  std::string delta;             // scratch for the text a step releases
  bool embed = false;            // an embedding: prefill only, hidden states pooled
  bool done = false;             // an embedding delivered (or failed): leaves after the step
  std::vector<double> pooled;    // (dim) running sum of final hidden states

  // Timestamps for the request-level metrics (steady clock).
  Clock::time_point arrived = Clock::now();
  Clock::time_point admitted{};
  Clock::time_point first_token{};
  Clock::time_point last_token_time{};
  Clock::time_point last_token_at() const { return last_token_time; }

  // Positions whose K/V must be cached before the next decode: the prompt and, after a
  // preemption, the generated tokens but the last (the next decode step feeds that one).
  int32_t prefill_len() const {
    return static_cast<int32_t>(prompt.size()) + std::max(0, num_generated() - 1);
  }
  TokenId prefill_token(int32_t pos) const {
    const auto p = static_cast<int32_t>(prompt.size());
    return pos < p ? prompt[static_cast<size_t>(pos)]
                   : state.output_ids()[static_cast<size_t>(pos - p)];
  }
  bool prefilling() const { return num_prefilled < prefill_len(); }
  // The tokens of full block `i` of the token stream (prompt, then generated tokens).
  std::span<const TokenId> block_tokens(int32_t i, int32_t block_size,
                                        std::vector<TokenId>& scratch) const {
    scratch.resize(static_cast<size_t>(block_size));
    for (int32_t k = 0; k < block_size; ++k) scratch[static_cast<size_t>(k)] = prefill_token(i * block_size + k);
    return scratch;
  }
  int32_t num_generated() const { return output.num_tokens(); }
};

}  // namespace

void RequestChannel::set_notify(std::function<void()> notify) {
  std::unique_lock lock(mu_);
  notify_ = std::move(notify);
  if (has_pending_) notify_locked(lock);
}

bool RequestChannel::drain(EngineOutput& out) {
  std::lock_guard lock(mu_);
  if (!has_pending_) return false;
  out.text.append(pending_.text);
  for (auto& lp : pending_.logprobs) out.logprobs.push_back(std::move(lp));
  pending_.logprobs.clear();
  out.finished = pending_.finished;
  out.finish_reason = pending_.finish_reason;
  out.prompt_tokens = pending_.prompt_tokens;
  out.completion_tokens = pending_.completion_tokens;
  out.cached_tokens = pending_.cached_tokens;
  if (!pending_.error.empty()) out.error = pending_.error;
  if (!pending_.embedding.empty()) out.embedding = std::move(pending_.embedding);
  pending_.embedding.clear();
  pending_.text.clear();
  has_pending_ = false;
  return true;
}

void RequestChannel::abort() {
  std::lock_guard lock(mu_);
  aborted_ = true;
  notify_ = nullptr;  // the reader is gone; nobody to wake
}

bool RequestChannel::aborted() const {
  std::lock_guard lock(mu_);
  return aborted_;
}

void RequestChannel::push(std::string_view text, FinishReason finish, int32_t prompt_tokens,
                          int32_t completion_tokens, int32_t cached_tokens,
                          TokenLogprobs* logprobs) {
  std::unique_lock lock(mu_);
  pending_.cached_tokens = cached_tokens;
  pending_.text.append(text);
  if (logprobs) pending_.logprobs.push_back(std::move(*logprobs));
  pending_.finished = finish != FinishReason::None;
  pending_.finish_reason = finish;
  pending_.prompt_tokens = prompt_tokens;
  pending_.completion_tokens = completion_tokens;
  has_pending_ = true;
  notify_locked(lock);
}

void RequestChannel::fail(std::string error) {
  std::unique_lock lock(mu_);
  pending_.error = std::move(error);
  pending_.finished = true;
  has_pending_ = true;
  notify_locked(lock);
}

void RequestChannel::push_embedding(std::vector<float> embedding, int32_t prompt_tokens) {
  std::unique_lock lock(mu_);
  pending_.embedding = std::move(embedding);
  pending_.finished = true;
  pending_.finish_reason = FinishReason::Length;
  pending_.prompt_tokens = prompt_tokens;
  has_pending_ = true;
  notify_locked(lock);
}

void RequestChannel::notify_locked(std::unique_lock<std::mutex>& lock) {
  auto notify = notify_;
  lock.unlock();
  if (notify) notify();
}

struct Engine::Impl {
  EngineOptions options;
  std::unique_ptr<LlamaModel> model;
  Tokenizer tokenizer;
  ChatTemplate chat_template;
  std::unique_ptr<KvCache> kv;
  Sampler sampler;
  EngineInfo info;
  std::unique_ptr<EngineMetrics> metrics;  // null: no registry

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Sequence>> incoming;  // guarded by mu
  bool stop = false;                               // guarded by mu
  std::thread thread;

  // Step-thread state.
  std::deque<std::unique_ptr<Sequence>> waiting;
  std::vector<std::unique_ptr<Sequence>> running;
  std::vector<BatchToken> batch_tokens;
  std::vector<Sequence*> logits_owner;  // the sequence of each logits row
  std::vector<const BlockTable*> tables;
  std::vector<float> logits;
  std::vector<float> hidden;                   // (max_num_batched_tokens, dim) for embeddings
  std::vector<std::pair<Sequence*, int32_t>> hidden_owner;  // (sequence, rows) in row order
  std::vector<BlockId> hits;                   // admission scratch: cached blocks found
  std::vector<TokenId> block_scratch;          // one block's tokens
  std::atomic<int> num_waiting{0};             // waiting.size(), for submit's queue bound

  mutable std::mutex stats_mu;
  EngineStats stats;  // guarded by stats_mu; the step thread's counters live here too

  Impl(std::unique_ptr<LlamaModel> m, Tokenizer t, ChatTemplate c)
      : model(std::move(m)),
        tokenizer(std::move(t)),
        chat_template(std::move(c)),
        sampler(static_cast<size_t>(model->vocab_size())) {}

  void run();
  void step();
  bool admit(Sequence& seq);
  void extend_hashes(Sequence& seq, int32_t num_blocks);
  void publish_blocks(Sequence& seq);
  void publish_stats();
  // Under mu: queued and waiting requests together reach --max-num-queued-requests.
  bool queue_full() const {
    return static_cast<int>(incoming.size()) + num_waiting.load(std::memory_order_relaxed) >=
           options.max_num_queued_requests;
  }
  void embed_step(int budget);
  void record_finish(const Sequence& seq, bool aborted);
  void preempt(size_t index);
  void record_step(int64_t batch_tokens);
  std::string token_text(TokenId id) const;
  void finish(Sequence& seq);
};

void Engine::Impl::run() {
  while (true) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stop || !incoming.empty() || !running.empty() || !waiting.empty(); });
      if (stop) break;
      while (!incoming.empty()) {
        waiting.push_back(std::move(incoming.front()));
        incoming.pop_front();
      }
      num_waiting.store(static_cast<int>(waiting.size()), std::memory_order_relaxed);
    }
    step();
    num_waiting.store(static_cast<int>(waiting.size()), std::memory_order_relaxed);
    publish_stats();
  }
  for (auto& seq : running) seq->channel->fail("the engine is shutting down");
  for (auto& seq : waiting) seq->channel->fail("the engine is shutting down");
}

void Engine::Impl::finish(Sequence& seq) { kv->release(seq.blocks); }

// A token's text for logprobs. A token that is only part of a UTF-8 character is written as
// vLLM writes it, "bytes:\xe2\x80", so the JSON stays valid.
std::string Engine::Impl::token_text(TokenId id) const {
  std::string_view piece = tokenizer.piece(id);
  if (utf8::is_valid(piece)) return std::string(piece);
  std::string out = "bytes:";
  for (unsigned char c : piece) out += fmt::format("\\x{:02x}", c);
  return out;
}

void Engine::Impl::step() {
  // Aborted requests leave first, so their blocks serve this step's admissions.
  std::erase_if(running, [&](const std::unique_ptr<Sequence>& s) {
    if (!s->channel->aborted()) return false;
    record_finish(*s, true);
    finish(*s);
    return true;
  });
  std::erase_if(waiting, [&](const std::unique_ptr<Sequence>& s) {
    if (!s->channel->aborted()) return false;
    record_finish(*s, true);
    return true;
  });

  // Admit waiting sequences in arrival order while blocks and sequence slots allow.
  while (!waiting.empty() && static_cast<int>(running.size()) < options.max_num_seqs) {
    Sequence& seq = *waiting.front();
    if (!admit(seq)) break;
    const bool first_admission = seq.admitted == Clock::time_point{};
    if (first_admission) seq.admitted = Clock::now();
    if (metrics && first_admission) {
      metrics->request_queue_time->observe(seconds_between(seq.arrived, seq.admitted));
      metrics->prompt_tokens->inc(static_cast<double>(seq.prompt.size()));
    }
    running.push_back(std::move(waiting.front()));
    waiting.pop_front();
  }
  if (running.empty()) {
    // Nothing fits (cannot happen when one sequence of max_model_len fits, which start()
    // guarantees); avoid a busy loop all the same.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return;
  }

  // A decoding sequence needs room for one more position. When blocks run out, the newest
  // running sequence gives its blocks back and waits to be recomputed (preemption by
  // recompute, as vLLM does); no request fails for lack of blocks.
  for (size_t i = 0; i < running.size(); ++i) {
    Sequence& seq = *running[i];
    if (seq.embed || seq.prefilling()) continue;
    while (!kv->reserve(seq.blocks, seq.num_prefilled + 1)) {
      const size_t victim = running.size() - 1;
      preempt(victim);
      if (victim == i) break;  // it was the newest itself
    }
  }

  // Running decodes first (one token each), then prompt chunks under the token budget.
  batch_tokens.clear();
  logits_owner.clear();
  tables.clear();
  int budget = options.max_num_batched_tokens;
  for (size_t slot = 0; slot < running.size(); ++slot) {
    Sequence& seq = *running[slot];
    tables.push_back(&seq.blocks);
    if (seq.embed || seq.prefilling() || budget == 0) continue;
    int32_t position = static_cast<int32_t>(seq.prompt.size()) + seq.num_generated() - 1;
    batch_tokens.push_back({.token = seq.last_token,
                            .position = position,
                            .seq_slot = static_cast<int32_t>(slot),
                            .wants_logits = true,
                            .role = TokenRole::kGenerated});
    logits_owner.push_back(&seq);
    seq.num_prefilled = position + 1;  // this forward writes its K/V
    --budget;
  }
  for (size_t slot = 0; slot < running.size() && budget > 0; ++slot) {
    Sequence& seq = *running[slot];
    if (seq.embed || !seq.prefilling()) continue;
    int32_t total = seq.prefill_len();
    int32_t chunk = std::min(budget, total - seq.num_prefilled);
    // A recomputed sequence already has its next token: its prefill wants no logits.
    const bool fresh = seq.num_generated() == 0;
    for (int32_t i = 0; i < chunk; ++i) {
      int32_t pos = seq.num_prefilled + i;
      bool last = fresh && pos == total - 1;
      // Roles fix each token's attention path, so its bits do not depend on the chunking or
      // on a recompute: a recomputed generated token attends as it did when decoded.
      const bool prompt = pos < static_cast<int32_t>(seq.prompt.size());
      batch_tokens.push_back({.token = seq.prefill_token(pos),
                              .position = pos,
                              .seq_slot = static_cast<int32_t>(slot),
                              .wants_logits = last,
                              .role = prompt ? TokenRole::kPrompt : TokenRole::kGenerated});
      if (last) logits_owner.push_back(&seq);
    }
    seq.num_prefilled += chunk;
    budget -= chunk;
  }

  // Sequences leave only at the end of a step: slots index `running` until then.
  auto remove_finished = [&] {
    std::erase_if(running, [&](const std::unique_ptr<Sequence>& s) {
      if (!s->output.finished() && !s->done) return false;
      if (!s->embed) record_finish(*s, false);
      finish(*s);
      return true;
    });
    record_step(static_cast<int64_t>(batch_tokens.size()));
  };
  embed_step(budget);
  if (batch_tokens.empty()) {  // only embeddings ran this step
    remove_finished();
    return;
  }
  Batch batch{.tokens = batch_tokens};
  KvView view{.cache = kv.get(), .tables = tables};
  if (auto st = model->forward(batch, view, logits.data()); !st) {
    // A bug, not the request's fault: fail everything in the batch rather than loop on it.
    log::error(kComponent, "forward failed", {{"error", st.error().message}});
    for (auto& seq : running) {
      seq->channel->fail("engine error: " + st.error().message);
      finish(*seq);
    }
    running.clear();
    return;
  }

  const size_t vocab = static_cast<size_t>(model->vocab_size());
  for (size_t row = 0; row < logits_owner.size(); ++row) {
    Sequence& seq = *logits_owner[row];
    std::span<const float> row_logits(logits.data() + row * vocab, vocab);
    SampledToken sampled = sampler.sample(row_logits, seq.state);
    seq.last_token = sampled.id;
    const auto now = Clock::now();
    if (metrics) {
      metrics->generation_tokens->inc();
      if (seq.num_generated() == 0) metrics->time_to_first_token->observe(seconds_between(seq.arrived, now));
      else metrics->inter_token_latency->observe(seconds_between(seq.last_token_at(), now));
    }
    if (seq.num_generated() == 0) seq.first_token = now;
    seq.last_token_time = now;
    seq.delta.clear();
    FinishReason reason = seq.output.push(sampled.id, seq.delta);
    TokenLogprobs* lp = nullptr;
    TokenLogprobs logprobs;
    if (seq.state.params().logprobs) {
      logprobs.token = token_text(sampled.id);
      logprobs.logprob = sampled.logprob;
      for (const TokenLogprob& alt : sampled.top_logprobs())
        logprobs.top.push_back({token_text(alt.id), alt.logprob});
      lp = &logprobs;
    }
    seq.channel->push(seq.delta, reason, static_cast<int32_t>(seq.prompt.size()),
                      seq.num_generated(), seq.cached_tokens, lp);
  }
  for (auto& seq : running) publish_blocks(*seq);
  remove_finished();
}

// Blocks for what must be prefilled, plus the first decode position (decoding grows the table a
// block at a time). With prefix caching the longest run of cached blocks matching the token
// stream comes first, and its tokens count as computed. False (nothing taken) when the blocks
// do not fit.
bool Engine::Impl::admit(Sequence& seq) {
  const int32_t bs = kv->block_size();
  const int64_t need = seq.prefill_len() + (seq.embed ? 0 : 1);
  const int64_t need_blocks = (need + bs - 1) / bs;
  hits.clear();
  const bool caching = options.enable_prefix_caching && !seq.embed;
  if (caching) {
    // A fresh sequence computes at least its last prompt token: its logits give the first output
    // token. A recomputed one already has it, so its whole prefill may come from the cache.
    const int32_t limit = seq.prefill_len() - (seq.num_generated() == 0 ? 1 : 0);
    const int32_t max_hits = limit / bs;
    extend_hashes(seq, max_hits);
    BlockHash parent = kRootBlockHash;
    for (int32_t i = 0; i < max_hits; ++i) {
      const BlockHash h = seq.hashes[static_cast<size_t>(i)];
      const BlockId b = kv->find_cached(h, parent, seq.block_tokens(i, bs, block_scratch));
      if (b == kNoBlock) break;
      hits.push_back(b);
      parent = h;
    }
  }
  // Cached blocks that are free leave the free queue when taken, like new ones.
  const auto free_hits = std::count_if(hits.begin(), hits.end(),
                                       [&](BlockId b) { return kv->ref_count(b) == 0; });
  const int64_t new_blocks = need_blocks - static_cast<int64_t>(hits.size());
  if (new_blocks + free_hits > kv->num_blocks_free()) return false;
  for (BlockId b : hits) {
    kv->acquire(b);
    seq.blocks.push_back(b);
  }
  const bool reserved = kv->reserve(seq.blocks, need);
  (void)reserved;  // cannot fail: counted above
  const auto hit_tokens = static_cast<int32_t>(hits.size()) * bs;
  seq.num_prefilled = hit_tokens;
  seq.num_published = static_cast<int32_t>(hits.size());
  if (seq.admitted == Clock::time_point{}) seq.cached_tokens = hit_tokens;
  if (caching) {
    std::lock_guard lock(stats_mu);
    stats.prefix_cache_queries += seq.prefill_len();
    stats.prefix_cache_hits += hit_tokens;
  }
  if (caching && metrics) {
    metrics->prefix_cache_queries->inc(static_cast<double>(seq.prefill_len()));
    metrics->prefix_cache_hits->inc(static_cast<double>(hit_tokens));
  }
  return true;
}

void Engine::Impl::extend_hashes(Sequence& seq, int32_t num_blocks) {
  const int32_t bs = kv->block_size();
  while (static_cast<int32_t>(seq.hashes.size()) < num_blocks) {
    const auto i = static_cast<int32_t>(seq.hashes.size());
    const BlockHash parent = i == 0 ? kRootBlockHash : seq.hashes.back();
    seq.hashes.push_back(hash_block(parent, seq.block_tokens(i, bs, block_scratch)));
  }
}

// After a forward pass: the blocks a sequence has filled become findable by later admissions.
void Engine::Impl::publish_blocks(Sequence& seq) {
  if (!options.enable_prefix_caching || seq.embed) return;
  const int32_t bs = kv->block_size();
  const int32_t full = seq.num_prefilled / bs;
  if (full <= seq.num_published) return;
  extend_hashes(seq, full);
  for (int32_t i = seq.num_published; i < full; ++i) {
    const BlockHash parent = i == 0 ? kRootBlockHash : seq.hashes[static_cast<size_t>(i - 1)];
    kv->publish(seq.blocks[static_cast<size_t>(i)], seq.hashes[static_cast<size_t>(i)], parent,
                seq.block_tokens(i, bs, block_scratch));
  }
  seq.num_published = full;
}

void Engine::Impl::publish_stats() {
  std::lock_guard lock(stats_mu);
  stats.num_running = static_cast<int>(running.size());
  stats.num_waiting = static_cast<int>(waiting.size());
  stats.num_blocks = kv->num_blocks();
  stats.num_blocks_free = kv->num_blocks_free();
  stats.num_blocks_cached = kv->num_blocks_cached();
  ++stats.num_steps;
  if (options.check_invariants && stats.invariant_violation.empty()) {
    tables.clear();
    for (auto& seq : running) tables.push_back(&seq->blocks);
    for (auto& seq : waiting) tables.push_back(&seq->blocks);  // empty: waiting holds nothing
    if (Status st = kv->check_invariants(tables); !st.ok()) {
      stats.invariant_violation = st.error().message;
      log::error(kComponent, "KV invariant violated", {{"error", stats.invariant_violation}});
    }
  }
}

// Embedding sequences run in a batch of their own (the model outputs hidden states rather than
// logits), with what the step's token budget has left.
void Engine::Impl::embed_step(int budget) {
  std::vector<BatchToken> tokens;
  hidden_owner.clear();
  for (size_t slot = 0; slot < running.size() && budget > 0; ++slot) {
    Sequence& seq = *running[slot];
    if (!seq.embed || !seq.prefilling()) continue;
    int32_t chunk = std::min(budget, static_cast<int32_t>(seq.prompt.size()) - seq.num_prefilled);
    for (int32_t i = 0; i < chunk; ++i) {
      int32_t pos = seq.num_prefilled + i;
      tokens.push_back({.token = seq.prompt[static_cast<size_t>(pos)],
                        .position = pos,
                        .seq_slot = static_cast<int32_t>(slot),
                        .wants_logits = true,
                        .role = TokenRole::kPrompt});
    }
    hidden_owner.emplace_back(&seq, chunk);
    seq.num_prefilled += chunk;
    budget -= chunk;
  }
  if (tokens.empty()) return;
  Batch batch{.tokens = tokens};
  KvView view{.cache = kv.get(), .tables = tables};
  if (auto st = model->forward_hidden(batch, view, hidden.data()); !st) {
    log::error(kComponent, "embedding forward failed", {{"error", st.error().message}});
    for (auto& [seq, rows] : hidden_owner) {
      seq->channel->fail("engine error: " + st.error().message);
      seq->done = true;
    }
    return;
  }
  const size_t dim = static_cast<size_t>(model->config().dim);
  const float* row = hidden.data();
  for (auto& [seq, rows] : hidden_owner) {
    if (seq->pooled.empty()) seq->pooled.assign(dim, 0.0);
    for (int32_t r = 0; r < rows; ++r, row += dim)
      for (size_t k = 0; k < dim; ++k) seq->pooled[k] += row[k];
    if (seq->prefilling()) continue;
    // Mean, then unit length (the mean's scale cancels out, but keep it for clarity).
    double norm = 0;
    const double count = static_cast<double>(seq->prompt.size());
    for (double& v : seq->pooled) {
      v /= count;
      norm += v * v;
    }
    norm = std::sqrt(norm);
    std::vector<float> embedding(dim);
    for (size_t k = 0; k < dim; ++k)
      embedding[k] = static_cast<float>(norm > 0 ? seq->pooled[k] / norm : 0.0);
    seq->channel->push_embedding(std::move(embedding), static_cast<int32_t>(seq->prompt.size()));
    seq->done = true;
  }
}

void Engine::Impl::record_finish(const Sequence& seq, bool aborted) {
  if (!metrics || seq.embed) return;
  const auto now = Clock::now();
  FinishReason r = seq.output.finish_reason();
  (aborted ? metrics->success_abort
           : r == FinishReason::Length ? metrics->success_length : metrics->success_stop)
      ->inc();
  metrics->e2e_request_latency->observe(seconds_between(seq.arrived, now));
  metrics->request_prompt_tokens->observe(static_cast<double>(seq.prompt.size()));
  metrics->request_generation_tokens->observe(seq.num_generated());
  metrics->request_max_num_generation_tokens->observe(seq.state.params().max_tokens);
  metrics->request_params_max_tokens->observe(seq.state.params().max_tokens);
  if (seq.admitted == Clock::time_point{}) return;  // aborted while waiting
  metrics->request_inference_time->observe(seconds_between(seq.admitted, now));
  if (seq.num_generated() == 0) return;
  metrics->request_prefill_time->observe(seconds_between(seq.admitted, seq.first_token));
  const double decode = seconds_between(seq.first_token, now);
  metrics->request_decode_time->observe(decode);
  if (seq.num_generated() > 1)
    metrics->request_time_per_output_token->observe(decode / (seq.num_generated() - 1));
}

void Engine::Impl::preempt(size_t index) {
  std::unique_ptr<Sequence> seq = std::move(running[index]);
  running.erase(running.begin() + static_cast<std::ptrdiff_t>(index));
  kv->release(seq->blocks);
  seq->num_prefilled = 0;
  seq->num_published = 0;
  seq->pooled.clear();  // an embedding starts its sum again
  if (metrics) metrics->num_preemptions->inc();
  {
    std::lock_guard lock(stats_mu);
    ++stats.num_preemptions;
  }
  waiting.push_front(std::move(seq));
}

void Engine::Impl::record_step(int64_t num_batch_tokens) {
  if (!metrics) return;
  if (num_batch_tokens > 0) metrics->iteration_tokens->observe(static_cast<double>(num_batch_tokens));
  metrics->num_requests_running->set(static_cast<double>(running.size()));
  size_t queued;
  {
    std::lock_guard lock(mu);
    queued = incoming.size();
  }
  metrics->num_requests_waiting->set(static_cast<double>(waiting.size() + queued));
  // Cached blocks no one holds count as free: they are evicted on demand.
  metrics->kv_cache_usage_perc->set(static_cast<double>(kv->num_blocks_used()) /
                                    static_cast<double>(std::max(1, kv->num_blocks())));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<Engine>> Engine::start(const EngineOptions& options) {
  EngineOptions o = options;
  if (o.num_threads <= 0) o.num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.max_num_seqs = std::max(1, o.max_num_seqs);
  o.max_num_batched_tokens = std::max(o.max_num_batched_tokens, o.max_num_seqs);

  auto file = GgufFile::open(o.model_path);
  if (!file) return make_error(fmt::format("cannot load model '{}': {}", o.model_path, file.error().message));
  auto config = read_model_config(*file);
  if (!config) return make_error(fmt::format("model '{}': {}", o.model_path, config.error().message));
  if (o.max_model_len <= 0) o.max_model_len = std::min(config->context_length, kDefaultMaxModelLen);
  if (o.max_model_len > config->context_length) {
    return make_error(fmt::format("--max-model-len {} exceeds the model's context length {}",
                                  o.max_model_len, config->context_length));
  }
  auto tokenizer = Tokenizer::from_gguf(*file);
  if (!tokenizer) return make_error(fmt::format("model '{}': tokenizer: {}", o.model_path, tokenizer.error().message));
  auto chat = ChatTemplate::from_gguf(*file, *tokenizer);
  if (!chat) return make_error(fmt::format("model '{}': chat template: {}", o.model_path, chat.error().message));

  if (o.block_size < 1 || o.block_size > kMaxBlockSize) {
    return make_error(fmt::format("--block-size {} is outside [1, {}]", o.block_size, kMaxBlockSize));
  }
  auto kv_dtype = parse_kv_dtype(o.kv_cache_dtype);
  if (!kv_dtype) return make_error("--kv-cache-dtype: " + kv_dtype.error().message);
  ModelOptions mo{.num_threads = o.num_threads,
                  .max_batch_tokens = o.max_num_batched_tokens,
                  .max_context = o.max_model_len,
                  .block_size = o.block_size};
  auto model = LlamaModel::load(std::move(*file), mo);
  if (!model) return make_error(fmt::format("model '{}': {}", o.model_path, model.error().message));

  auto impl = std::make_unique<Impl>(std::move(*model), std::move(*tokenizer), std::move(*chat));
  impl->options = o;
  // KV blocks: room for max_num_seqs full-length sequences, within the budget, and always at
  // least one full-length sequence so that every valid request can run.
  int blocks_per_seq = (o.max_model_len + o.block_size - 1) / o.block_size;
  KvCacheConfig probe = impl->model->kv_cache_config(1, *kv_dtype);
  auto kv_probe = KvCache::create(probe);
  if (!kv_probe) return kv_probe.error();
  const int64_t bytes_per_block = kv_probe->bytes_per_block();
  int64_t budget = o.kv_cache_bytes > 0 ? o.kv_cache_bytes
                                        : std::min<int64_t>(kDefaultKvBudgetBytes,
                                                            bytes_per_block * blocks_per_seq * o.max_num_seqs);
  if (o.kv_cache_fraction > 0) {
    budget = static_cast<int64_t>(o.kv_cache_fraction * static_cast<double>(available_memory_bytes()));
  }
  constexpr int64_t kMaxBlocks = int64_t{1} << 30;  // block ids are int32
  int num_blocks = static_cast<int>(
      std::clamp<int64_t>(budget / bytes_per_block, blocks_per_seq, std::max<int64_t>(blocks_per_seq, kMaxBlocks)));
  auto kv = KvCache::create(impl->model->kv_cache_config(num_blocks, *kv_dtype));
  if (!kv) return kv.error();
  impl->kv = std::make_unique<KvCache>(std::move(*kv));
  impl->logits.resize(static_cast<size_t>(o.max_num_seqs) * static_cast<size_t>(impl->model->vocab_size()));
  impl->hidden.resize(static_cast<size_t>(o.max_num_batched_tokens) *
                      static_cast<size_t>(impl->model->config().dim));

  EngineInfo& info = impl->info;
  info.architecture = impl->model->config().arch == Architecture::kQwen2 ? "qwen2" : "llama";
  info.vocab_size = impl->model->vocab_size();
  info.max_model_len = o.max_model_len;
  info.num_kv_blocks = num_blocks;
  info.max_concurrency = num_blocks / blocks_per_seq;
  info.block_size = o.block_size;
  info.kv_cache_dtype = std::string(kv_dtype_name(*kv_dtype));
  info.enable_prefix_caching = o.enable_prefix_caching;
  info.chat_template = std::string(family_name(impl->chat_template.family()));
  info.chat_template_fallback = impl->chat_template.is_fallback();

  if (o.registry) {
    impl->metrics = std::make_unique<EngineMetrics>(*o.registry, o.served_model_name,
                                                    o.max_model_len, num_blocks, o.block_size,
                                                    o.enable_prefix_caching, info.kv_cache_dtype);
  }
  impl->publish_stats();
  Impl* raw = impl.get();
  raw->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Result<std::shared_ptr<RequestChannel>> Engine::submit(EngineRequest request) {
  Impl& m = *impl_;
  std::vector<TokenId> prompt;
  if (request.embed) {
    prompt = m.tokenizer.encode(request.prompt, EncodeOptions{.add_special = true});
    if (prompt.empty()) return make_error("The input is empty.");
    if (static_cast<int64_t>(prompt.size()) > m.options.max_model_len) {
      return make_error(fmt::format(
          "This model's maximum context length is {} tokens. However, the input has {} tokens. "
          "Please reduce it by {} tokens.",
          m.options.max_model_len, prompt.size(), prompt.size() - m.options.max_model_len));
    }
    auto channel = std::make_shared<RequestChannel>();
    std::lock_guard lock(m.mu);
    if (m.queue_full())
      return make_error("queue full: too many requests are waiting for the engine");
    SamplingParams sp;
    sp.max_tokens = 1;
    SequenceSamplingState state = m.sampler.make_state(sp, prompt);
    auto seq = std::make_unique<Sequence>(channel, std::move(prompt), std::move(state), m.tokenizer);
    seq->embed = true;
    m.incoming.push_back(std::move(seq));
    m.cv.notify_one();
    return channel;
  }
  if (request.chat) {
    auto text = m.chat_template.apply(request.messages, true);
    if (!text) return text.error();
    prompt = m.tokenizer.encode(*text, m.chat_template.encode_options());
  } else {
    prompt = m.tokenizer.encode(request.prompt, EncodeOptions{.add_special = true});
  }
  if (prompt.empty()) return make_error("The prompt is empty.");
  const int64_t max_len = m.options.max_model_len;
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  SamplingParams& sp = request.sampling;
  if (sp.max_tokens <= 0) sp.max_tokens = static_cast<int32_t>(std::max<int64_t>(0, max_len - prompt_len));
  if (prompt_len + sp.max_tokens > max_len) {
    return make_error(fmt::format(
        "This model's maximum context length is {} tokens. However, you requested {} tokens "
        "({} in the prompt, {} for the completion). Please reduce the prompt or max_tokens by "
        "{} tokens.",
        max_len, prompt_len + sp.max_tokens, prompt_len, sp.max_tokens,
        prompt_len + sp.max_tokens - max_len));
  }
  if (sp.max_tokens <= 0) return make_error("The prompt leaves no room for a completion.");
  if (auto st = sp.validate(); !st) return st.error();

  auto channel = std::make_shared<RequestChannel>();
  {
    std::lock_guard lock(m.mu);  // also guards the sampler's seed generator
    if (m.queue_full())
      return make_error("queue full: too many requests are waiting for the engine");
    SequenceSamplingState state = m.sampler.make_state(sp, prompt);
    m.incoming.push_back(
        std::make_unique<Sequence>(channel, std::move(prompt), std::move(state), m.tokenizer));
  }
  m.cv.notify_one();
  return channel;
}

std::vector<TokenId> Engine::tokenize(std::string_view text, bool add_special) const {
  return impl_->tokenizer.encode(text, EncodeOptions{.add_special = add_special});
}

std::string Engine::detokenize(std::span<const TokenId> ids) const {
  return impl_->tokenizer.decode(ids);
}

const EngineInfo& Engine::info() const { return impl_->info; }

EngineStats Engine::stats() const {
  std::lock_guard lock(impl_->stats_mu);
  return impl_->stats;
}

}  // namespace ondol::engine
