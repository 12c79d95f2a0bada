// Streams that do not end normally: the upstream crashes mid-stream (the client must get an
// OpenAI error event, not a hang or a silent end), and the client goes away (the upstream stream
// must be cancelled promptly).
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import { e2eTest, waitFor } from './lib/harness.mjs';
import { httpDeployment } from './lib/config.mjs';
import { postSse, words } from './lib/sse.mjs';

const kMessages = [{ role: 'user', content: 'stream to me' }];

async function startStreamGateway(h) {
  const upstream = await h.mockUpstream();
  const gw = await h.gateway({ model_list: [httpDeployment('chat', upstream.apiBase)] });
  return { upstream, gw, client: gw.client() };
}

e2eTest('mid-stream upstream crash: some chunks, then the iterator throws an APIError', async (h) => {
  const { gw, client } = await startStreamGateway(h);
  // `mock` is not an OpenAI parameter; the SDK sends unknown keys of the params object as is.
  const stream = await client.chat.completions.create({
    model: 'chat', max_tokens: 10, stream: true, messages: kMessages,
    mock: { crash_after_chunks: 2 },
  });
  const chunks = [];
  let caught;
  try {
    for await (const c of stream) chunks.push(c);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught, `the iterator must throw, it completed after ${chunks.length} chunks`);
  assert.ok(caught instanceof OpenAI.APIError,
    `an APIError from an error event, got ${caught?.constructor?.name}: ${caught?.message}`);
  assert.ok(typeof caught.error?.message === 'string' && caught.error.message.length > 0,
    `the error event carries an OpenAI error: ${JSON.stringify(caught.error)}`);
  const content = chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
  assert.equal(words(content).length, 2, `the chunks before the crash arrived: '${content}'`);
  for (const c of chunks) assert.equal(c.choices?.[0]?.finish_reason ?? null, null, 'no finish');

  // On the wire: one `data: {"error":{...}}` event, then `data: [DONE]`.
  const r = await postSse(`${gw.baseURL}/chat/completions`, {
    model: 'chat', max_tokens: 10, stream: true, messages: kMessages,
    mock: { crash_after_chunks: 2 },
  });
  assert.equal(r.status, 200);
  assert.ok(r.done, `ends with data: [DONE]:\n${r.text}`);
  const errors = r.events.filter((e) => e.error);
  assert.equal(errors.length, 1, `one error event:\n${r.text}`);
  assert.equal(r.events.at(-1), errors[0], 'the error event is the last before [DONE]');
  for (const key of ['message', 'type', 'param', 'code']) {
    assert.ok(key in errors[0].error, `error.${key} in ${JSON.stringify(errors[0])}`);
  }
  assert.ok(gw.proc.running);
});

e2eTest('client abort cancels the upstream stream within 1 s', async (h) => {
  const { upstream, client } = await startStreamGateway(h);
  const controller = new AbortController();
  const stream = await client.chat.completions.create({
    model: 'chat', max_tokens: 50, stream: true, messages: kMessages,
    mock: { chunk_delay_ms: 200 },
  }, { signal: controller.signal });

  const iterator = stream[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.equal(first.done, false, 'a first chunk arrived');
  const before = await upstream.stats();
  assert.equal(before.active, 1, `the upstream stream is running: ${JSON.stringify(before)}`);
  assert.equal(before.streams_cancelled, 0);

  controller.abort();
  const abortedAt = Date.now();
  // The iterator ends (the SDK swallows its own abort) without waiting for the 50 tokens.
  await iterator.next().catch(() => {});

  const stats = await waitFor(async () => {
    const s = await upstream.stats();
    return s.streams_cancelled >= 1 ? s : null;
  }, { timeoutMs: 3_000, intervalMs: 20, what: 'streams_cancelled >= 1 on the upstream' });
  const elapsedMs = Date.now() - abortedAt;
  assert.ok(elapsedMs <= 1000, `upstream cancelled ${elapsedMs} ms after the abort (bound 1000)`);
  assert.equal(stats.streams_completed, 0, 'the upstream stream did not run to its end');
  assert.equal(stats.active, 0);

  // The gateway still serves.
  const again = await client.chat.completions.create({
    model: 'chat', max_tokens: 2, stream: true, messages: kMessages,
  });
  let n = 0;
  for await (const _ of again) n += 1;
  assert.ok(n > 0);
});
