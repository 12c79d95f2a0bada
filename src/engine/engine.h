// The engine's public face: the only engine header the gateway includes. No HTTP, no JSON.
//
// Engine::submit queues a request and returns its RequestChannel; a step thread drives the
// model: every step schedules the running sequences first (one decode token each), then admits
// waiting ones while the token budget (max_num_batched_tokens) and max_num_seqs allow, splitting
// long prompts across steps (chunked prefill), runs one batched forward pass, samples, and
// pushes each sequence's new text into its channel. KV blocks are taken as sequences grow;
// when they run out, the newest running sequence is preempted (its blocks freed, recomputed
// when readmitted), so no request fails for lack of blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/metrics/registry.h"
#include "common/result.h"
#include "engine/chat/chat_message.h"
#include "engine/sampling/generation_output.h"
#include "engine/sampling/sampling_params.h"
#include "engine/tokenizer/token.h"

namespace ondol::engine {

struct EngineOptions {
  std::string model_path;
  int num_threads = 0;             // compute threads; 0: one per core
  int max_model_len = 0;           // prompt + output tokens; 0: min(context_length, 4096)
  int max_num_seqs = 16;           // sequences in one batch
  int max_num_batched_tokens = 512;  // tokens in one forward pass
  int max_num_queued_requests = 256;  // waiting requests beyond which submit refuses
  int64_t kv_cache_bytes = 0;      // 0: enough for max_num_seqs sequences of max_model_len
  double kv_cache_fraction = 0;    // > 0: this share of the memory available at start instead
  int block_size = 16;             // tokens per KV block (1..256)
  // KV value storage: "auto" or "float16" (the default), "float32", or "int8" (one scale per
  // token and head: half the memory of float16, slightly perturbed outputs).
  std::string kv_cache_dtype = "auto";
  bool enable_prefix_caching = true;  // share full blocks of common prefixes
  // Check the KV bookkeeping after every step (tests); a violation is kept in stats().
  bool check_invariants = false;
  metrics::Registry* registry = nullptr;  // vllm:* metrics go here when set
  std::string served_model_name;          // their model_name label
};

struct EngineRequest {
  // Chat: rendered with the model's chat template. Otherwise `prompt` is encoded as is.
  bool chat = true;
  std::vector<ChatMessage> messages;
  std::string prompt;
  SamplingParams sampling;
  // An embedding instead of a completion: `prompt` is encoded (with BOS), run through the model,
  // and the final hidden states are mean-pooled and L2-normalised. `sampling` is not used.
  bool embed = false;
};

// One sampled token's log-probability and the best alternatives (when the request asks).
struct TokenLogprobs {
  struct Alternative {
    std::string token;  // the token's text (decoded alone)
    float logprob = 0;
  };
  std::string token;
  float logprob = 0;
  std::vector<Alternative> top;  // best first; top_logprobs of them
};

// What a request has produced since the last drain.
struct EngineOutput {
  std::string text;                              // new text (valid UTF-8)
  bool finished = false;
  FinishReason finish_reason = FinishReason::None;
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t cached_tokens = 0;                     // prompt tokens served from the prefix cache
  std::string error;                             // set when the engine failed the request
  std::vector<TokenLogprobs> logprobs;           // tokens sampled since the last drain
  std::vector<float> embedding;                  // an embedding request's result (dim floats)
};

// The per-request channel: the step thread appends, the request's I/O thread drains. The
// notify callback runs on the step thread after new output is pending; it must be cheap (post
// a wake-up to the reader's loop).
class RequestChannel {
 public:
  void set_notify(std::function<void()> notify);
  // Moves pending output into `out` (text appended). Returns false when nothing was pending.
  bool drain(EngineOutput& out);
  // The reader gives up (client gone): the step thread frees the sequence at its next step.
  void abort();
  bool aborted() const;

  // Step-thread side.
  void push(std::string_view text, FinishReason finish, int32_t prompt_tokens,
            int32_t completion_tokens, int32_t cached_tokens = 0,
            TokenLogprobs* logprobs = nullptr);
  void fail(std::string error);
  void push_embedding(std::vector<float> embedding, int32_t prompt_tokens);

 private:
  void notify_locked(std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  std::function<void()> notify_;
  EngineOutput pending_;
  bool has_pending_ = false;
  bool aborted_ = false;
};

// A snapshot of the scheduler and the KV cache, published after every step.
struct EngineStats {
  int num_running = 0;
  int num_waiting = 0;      // admitted-to-queue requests not yet running (queued included)
  int num_blocks = 0;
  int num_blocks_free = 0;  // cached-but-free blocks included
  int num_blocks_cached = 0;
  int64_t num_steps = 0;
  int64_t num_preemptions = 0;
  int64_t prefix_cache_queries = 0;  // tokens
  int64_t prefix_cache_hits = 0;     // tokens
  std::string invariant_violation;   // the first one seen (check_invariants only)
};

struct EngineInfo {
  std::string architecture;
  int vocab_size = 0;
  int max_model_len = 0;
  int num_kv_blocks = 0;
  int max_concurrency = 0;   // sequences of max_model_len that fit in the KV cache
  int block_size = 0;
  std::string kv_cache_dtype;  // as stored: "float16", "float32" or "int8"
  bool enable_prefix_caching = false;
  std::string chat_template;  // family name; "plain" when the model has none ondol knows
  bool chat_template_fallback = false;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> start(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues. An Error is the request's fault (a 400): invalid sampling values, a
  // prompt plus max_tokens beyond max_model_len (the message says by how much), a chat the
  // template refuses; or the queue is full (the message starts with "queue full").
  Result<std::shared_ptr<RequestChannel>> submit(EngineRequest request);

  std::vector<TokenId> tokenize(std::string_view text, bool add_special) const;
  std::string detokenize(std::span<const TokenId> ids) const;
  const EngineInfo& info() const;
  EngineStats stats() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ondol::engine
