// The in-process engine behind the gateway: `ondol serve --model stories260K.gguf` (a real
// trained 260K-parameter Llama, read from ../shared), seen by the official openai client.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import OpenAI from 'openai';

import { Gateway, e2eTest, sleep, waitFor } from './lib/harness.mjs';

const kRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const kShared = process.env.ONDOL_SHARED_DIR ?? path.resolve(kRepo, '../shared');
const kModel = path.join(kShared, 'models/stories260K.gguf');
const kReference = path.join(kShared, 'fixtures/reference/stories260K.greedy.once-upon-a-time.txt');
const kPrompt = 'Once upon a time';

async function serveModel(h, extraArgs = []) {
  const p = h.spawn(`engine#${h.processes.length}`, [
    'serve', '--model', kModel, '--host', '127.0.0.1', '--port', '0', '--io-threads', '1',
    '--threads', '1', ...extraArgs,
  ]);
  await p.waitListening();
  return new Gateway(p, null);
}

e2eTest('greedy completion of stories260K equals the reference continuation', async (h) => {
  const gw = await serveModel(h);
  const client = gw.client();
  // The reference is the decoded prompt and its greedy continuation, BOS rendered as "<s> "; it
  // holds 120 generated tokens.
  const reference = await readFile(kReference, 'utf8');
  const expectedPrefix = `<s> ${kPrompt}`;
  assert.ok(reference.startsWith(expectedPrefix));
  const continuation = reference.slice(expectedPrefix.length).replace(/\n$/, '');
  const first100 = await client.completions.create({
    model: 'stories260K', prompt: kPrompt, max_tokens: 100, temperature: 0,
  });
  assert.equal(first100.usage.completion_tokens, 100);
  assert.equal(first100.choices[0].finish_reason, 'length');
  const text100 = first100.choices[0].text;
  assert.ok(text100.length > 200 && continuation.startsWith(text100),
            `the first 100 tokens are not the reference's start:\n${text100}`);
  const whole = await client.completions.create({
    model: 'stories260K', prompt: kPrompt, max_tokens: 120, temperature: 0,
  });
  assert.equal(whole.choices[0].text, continuation);
});

e2eTest('streamed chat completion from the in-process engine', async (h) => {
  const gw = await serveModel(h);
  const client = gw.client();
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['stories260K']);
  const stream = await client.chat.completions.create({
    model: 'stories260K', max_tokens: 12, temperature: 0.7, seed: 42, stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Tell me a story about a cat.' }],
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
  }
  assert.ok(chunks >= 3, `chunks: ${chunks}`);
  assert.ok(text.length > 0);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 12);
  assert.ok(usage.prompt_tokens > 5);

  // Same seed, same text; the stream and the whole response agree.
  const again = await client.chat.completions.create({
    model: 'stories260K', max_tokens: 12, temperature: 0.7, seed: 42,
    messages: [{ role: 'user', content: 'Tell me a story about a cat.' }],
  });
  assert.equal(again.choices[0].message.content, text);
});

e2eTest('a request beyond max_model_len is a 400 that says by how much', async (h) => {
  const gw = await serveModel(h, ['--max-model-len', '64']);
  const client = gw.client();
  await assert.rejects(
    client.completions.create({ model: 'stories260K', prompt: kPrompt, max_tokens: 100 }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `${err}`);
      assert.match(err.message, /maximum context length is 64 tokens/);
      assert.match(err.message, /by 41 tokens/);  // 5 prompt tokens + 100 - 64
      return true;
    });
});

e2eTest('a client that goes away frees its sequence; the engine keeps serving', async (h) => {
  // One sequence slot: if the aborted one were not freed, the next request would never run.
  const gw = await serveModel(h, ['--max-num-seqs', '1']);
  const client = gw.client();
  const controller = new AbortController();
  const stream = await client.completions.create(
    { model: 'stories260K', prompt: kPrompt, max_tokens: 1500, ignore_eos: true, stream: true },
    { signal: controller.signal });
  for await (const chunk of stream) {
    assert.ok(chunk.choices.length >= 0);
    controller.abort();
    break;
  }
  await sleep(50);
  const res = await client.completions.create({
    model: 'stories260K', prompt: kPrompt, max_tokens: 5, temperature: 0,
  }, { timeout: 5_000 });
  assert.equal(res.usage.completion_tokens, 5);
});

e2eTest('/tokenize and /detokenize round-trip with the model tokenizer', async (h) => {
  const gw = await serveModel(h);
  const tok = await gw.fetch('/tokenize', {
    method: 'POST', body: JSON.stringify({ model: 'stories260K', prompt: kPrompt }),
  });
  assert.equal(tok.status, 200);
  const t = await tok.json();
  assert.equal(t.count, t.tokens.length);
  assert.equal(t.tokens[0], 1);  // BOS
  assert.ok(t.max_model_len > 0);
  const detok = await gw.fetch('/v1/detokenize', {
    method: 'POST', body: JSON.stringify({ model: 'stories260K', tokens: t.tokens.slice(1) }),
  });
  assert.equal(detok.status, 200);
  assert.equal((await detok.json()).prompt, kPrompt);
  const bad = await gw.fetch('/detokenize', {
    method: 'POST', body: JSON.stringify({ model: 'stories260K', tokens: [1e9] }),
  });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.param, 'tokens');
});

e2eTest('logprobs and top_logprobs, chat and completions shapes', async (h) => {
  const gw = await serveModel(h);
  const client = gw.client();
  const chat = await client.chat.completions.create({
    model: 'stories260K', max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3,
    messages: [{ role: 'user', content: 'Once upon a time' }],
  });
  const content = chat.choices[0].logprobs.content;
  assert.equal(content.length, chat.usage.completion_tokens);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    for (let i = 1; i < 3; i += 1) assert.ok(t.top_logprobs[i - 1].logprob >= t.top_logprobs[i].logprob);
    // Greedy: the chosen token is the most likely one.
    assert.equal(t.token, t.top_logprobs[0].token);
    assert.equal(t.logprob, t.top_logprobs[0].logprob);
    assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
  }
  assert.equal(content.map((t) => t.token).join(''), chat.choices[0].message.content);

  const comp = await client.completions.create({
    model: 'stories260K', prompt: kPrompt, max_tokens: 4, temperature: 0, logprobs: 2,
  });
  const lp = comp.choices[0].logprobs;
  assert.equal(lp.tokens.length, 4);
  assert.equal(lp.tokens.join(''), comp.choices[0].text);
  assert.equal(lp.token_logprobs.length, 4);
  assert.equal(Object.keys(lp.top_logprobs[0]).length, 2);
  assert.deepEqual(lp.text_offset.slice(0, 2), [0, lp.tokens[0].length]);

  await assert.rejects(client.chat.completions.create({
    model: 'stories260K', max_tokens: 2, top_logprobs: 3,
    messages: [{ role: 'user', content: 'x' }],
  }), (err) => err instanceof OpenAI.BadRequestError && /logprobs/.test(err.message));
});

e2eTest('embeddings by mean pooling: unit length, deterministic, independent of batching', async (h) => {
  const gw = await serveModel(h);
  const client = gw.client();  // the SDK asks for base64 and decodes it
  const texts = ['Once upon a time', 'The cat sat on the mat.', 'Lily liked the big red ball.'];
  const together = await client.embeddings.create({ model: 'stories260K', input: texts });
  assert.equal(together.data.length, 3);
  assert.ok(together.usage.prompt_tokens > 10);
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
  for (const e of together.data) {
    assert.equal(e.embedding.length, 64);  // stories260K's hidden size
    assert.ok(Math.abs(norm(e.embedding) - 1) < 1e-4);
  }
  // One at a time (float format): the same vectors as in the batch.
  for (let i = 0; i < texts.length; i += 1) {
    const alone = await client.embeddings.create(
      { model: 'stories260K', input: texts[i], encoding_format: 'float' });
    assert.ok(dot(alone.data[0].embedding, together.data[i].embedding) > 0.99999,
              `input ${i} differs when embedded alone`);
  }
  // Different texts give different vectors.
  assert.ok(dot(together.data[0].embedding, together.data[1].embedding) < 0.9999);
  await assert.rejects(client.embeddings.create({ model: 'stories260K', input: [[1, 2, 3]] }),
                       (err) => err instanceof OpenAI.BadRequestError);
});

e2eTest('n > 1: one sequence per choice, streamed and whole', async (h) => {
  const gw = await serveModel(h);
  const client = gw.client();
  const whole = await client.completions.create({
    model: 'stories260K', prompt: kPrompt, max_tokens: 8, n: 3, temperature: 1.0, seed: 11,
  });
  assert.deepEqual(whole.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(whole.usage.completion_tokens, 24);
  assert.equal(whole.usage.prompt_tokens, 5);  // the prompt is counted once
  const texts = new Set(whole.choices.map((c) => c.text));
  assert.ok(texts.size > 1, 'choices with different seeds should differ');
  // The same request again gives the same choices (seed, seed + 1, seed + 2).
  const again = await client.completions.create({
    model: 'stories260K', prompt: kPrompt, max_tokens: 8, n: 3, temperature: 1.0, seed: 11,
  });
  assert.deepEqual(again.choices.map((c) => c.text), whole.choices.map((c) => c.text));

  const stream = await client.chat.completions.create({
    model: 'stories260K', max_tokens: 5, n: 2, temperature: 0, stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Once upon a time' }],
  });
  const content = ['', ''];
  const finish = [null, null];
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      content[c.index] += c.delta.content ?? '';
      finish[c.index] = c.finish_reason ?? finish[c.index];
    }
  }
  assert.deepEqual(finish, ['length', 'length']);
  assert.equal(content[0], content[1]);  // greedy: both choices agree
  assert.equal(usage.completion_tokens, 10);
});

e2eTest('preemption by recompute: a tiny KV cache, concurrent greedy requests, same outputs',
  { timeout: 60_000 }, async (h) => {
    // 32 KV blocks of 16 tokens: one sequence of max_model_len 512. Four 400-token completions
    // at once need ~104 blocks, so running sequences are preempted and recomputed.
    const gw = await serveModel(h, ['--max-model-len', '512', '--kv-cache-memory', '1',
      '--max-num-seqs', '8']);
    const client = gw.client();
    const prompts = ['Once upon a time', 'The cat', 'Lily and Tom', 'A big dog'];
    const ask = (prompt) => client.completions.create({
      model: 'stories260K', prompt, max_tokens: 400, temperature: 0, ignore_eos: true,
    }, { timeout: 50_000 }).then((r) => r.choices[0].text);
    const alone = [];
    for (const p of prompts) alone.push(await ask(p));
    const together = await Promise.all(prompts.map(ask));
    assert.deepEqual(together, alone);

    // The gauges are set at the end of the step that finished the last requests, a moment after
    // their responses went out.
    let metrics = '';
    const value = (name) => Number(metrics.match(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm'))[1]);
    await waitFor(async () => {
      metrics = await (await gw.fetch('/metrics')).text();
      return value('vllm:num_requests_running') === 0;
    }, { what: 'the engine to go idle' });
    assert.ok(value('vllm:num_preemptions_total') > 0, 'the run should have preempted');
    assert.equal(value('vllm:kv_cache_usage_perc'), 0);  // every block came back
  });

e2eTest('a full engine queue answers 503 with Retry-After at once', { timeout: 30_000 }, async (h) => {
  const gw = await serveModel(h, ['--max-num-seqs', '1', '--max-num-queued-requests', '1']);
  const body = JSON.stringify({ model: 'stories260K', prompt: kPrompt, max_tokens: 1500,
    ignore_eos: true, temperature: 0 });
  const started = Date.now();
  const responses = await Promise.all(Array.from({ length: 6 }, () =>
    gw.fetch('/v1/completions', { method: 'POST', body }).then(async (r) => ({
      status: r.status, retryAfter: r.headers.get('retry-after'), at: Date.now() - started,
      body: await r.json(),
    }))));
  const refused = responses.filter((r) => r.status === 503);
  assert.ok(refused.length > 0, `statuses: ${responses.map((r) => r.status)}`);
  for (const r of refused) {
    assert.equal(r.retryAfter, '1');
    assert.equal(r.body.error.type, 'service_unavailable_error');
    assert.match(r.body.error.message, /overloaded/);
  }
  assert.ok(responses.some((r) => r.status === 200));
  // Refusals do not wait for the running request: they come back long before it finishes.
  const finished = Math.max(...responses.filter((r) => r.status === 200).map((r) => r.at));
  assert.ok(Math.min(...refused.map((r) => r.at)) < finished / 2, JSON.stringify(responses.map((r) => [r.status, r.at])));
});

e2eTest('prefix caching: a repeated prompt reports cached tokens; the flag turns it off',
  { timeout: 30_000 }, async (h) => {
    const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play '
      + 'outside in the park with her friends. One day, she saw a big red ball under a tree.';
    const metricValue = (text, name) =>
      Number(text.match(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm'))[1]);
    for (const enabled of [true, false]) {
      const gw = await serveModel(h, enabled ? [] : ['--no-enable-prefix-caching']);
      const client = gw.client();
      const ask = () => client.completions.create({
        model: 'stories260K', prompt, max_tokens: 8, temperature: 0,
      });
      const first = await ask();
      const second = await ask();
      assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0);
      assert.equal(second.choices[0].text, first.choices[0].text);
      const metrics = await (await gw.fetch('/metrics')).text();
      const info = metrics.match(/^vllm:cache_config_info\{([^}]*)\}/m)[1];
      if (enabled) {
        // Every full block but the one holding the last prompt token comes from the cache.
        const promptTokens = second.usage.prompt_tokens;
        assert.equal(second.usage.prompt_tokens_details.cached_tokens,
          Math.floor((promptTokens - 1) / 16) * 16);
        assert.ok(second.usage.prompt_tokens_details.cached_tokens >= 32);
        assert.equal(metricValue(metrics, 'vllm:prefix_cache_queries_total'), 2 * promptTokens);
        assert.equal(metricValue(metrics, 'vllm:prefix_cache_hits_total'),
          second.usage.prompt_tokens_details.cached_tokens);
        assert.match(info, /enable_prefix_caching="True"/);
      } else {
        assert.equal(second.usage.prompt_tokens_details.cached_tokens, 0);
        assert.equal(metricValue(metrics, 'vllm:prefix_cache_hits_total'), 0);
        assert.match(info, /enable_prefix_caching="False"/);
      }
      assert.match(info, /block_size="16"/);
      await gw.proc.stop();
    }
  });

e2eTest('--kv-cache-dtype int8: more blocks than float16 in the same memory, and it serves',
  { timeout: 30_000 }, async (h) => {
    const blocks = {};
    for (const dtype of ['float16', 'int8']) {
      const gw = await serveModel(h, ['--kv-cache-dtype', dtype, '--kv-cache-memory', '8MiB']);
      // The log line goes to stderr, the listening line to stdout: either may come first.
      const loaded = await waitFor(
        () => gw.proc.output.split('\n').find((l) => l.includes('"model loaded"')),
        { what: 'the model loaded line' });
      assert.match(loaded, new RegExp(`"kv_cache_dtype":"${dtype}"`));
      blocks[dtype] = Number(/"kv_blocks":(\d+)/.exec(loaded)[1]);
      const metrics = await (await gw.fetch('/metrics')).text();
      assert.match(metrics.match(/^vllm:cache_config_info\{([^}]*)\}/m)[1],
        new RegExp(`cache_dtype="${dtype}"`));
      const done = await gw.client().completions.create({
        model: 'stories260K', prompt: kPrompt, max_tokens: 24, temperature: 0,
      });
      assert.equal(done.usage.completion_tokens, 24);
      assert.ok(done.choices[0].text.length > 40, done.choices[0].text);
      await gw.proc.stop();
    }
    // stories260K: head_dim 8, so a row is 8 int8 values and a 4-byte scale against 16 bytes.
    assert.ok(blocks.int8 > 1.3 * blocks.float16, JSON.stringify(blocks));

    const bad = h.spawn('engine#bad-dtype', [
      'serve', '--model', kModel, '--host', '127.0.0.1', '--port', '0', '--kv-cache-dtype', 'fp8',
    ]);
    const { code } = await bad.waitExit(10_000);
    assert.notEqual(code, 0);
    assert.match(bad.output, /kv_cache_dtype: 'fp8' is not one of auto, float16, float32, int8/);
  });
