// The OpenAI-compatible API through `ondol serve --config` to mock upstreams, seen by the
// official openai client: chat (plain and streamed), completions, embeddings, models, request ids;
// and the in-process mock provider.
import assert from 'node:assert/strict';

import { e2eTest, waitFor } from './lib/harness.mjs';
import { httpDeployment, mockDeployment } from './lib/config.mjs';
import { chatContent, postSse, words } from './lib/sse.mjs';

const kPrompt = 'tell me a story about four small cats';  // 8 whitespace-separated words

// One gateway with a chat group on a mock-upstream through each HTTP provider prefix.
async function startApiGateway(h) {
  const upstream = await h.mockUpstream();
  const gw = await h.gateway({
    model_list: [
      httpDeployment('chat-a', upstream.apiBase),
      httpDeployment('chat-b', upstream.apiBase, { provider: 'hosted_vllm' }),
      httpDeployment('embed-a', upstream.apiBase),
    ],
  });
  return { upstream, gw, client: gw.client() };
}

e2eTest('chat completion, non-streaming', async (h) => {
  const { client } = await startApiGateway(h);
  for (const model of ['chat-a', 'chat-b']) {
    const res = await client.chat.completions.create({
      model, max_tokens: 7, messages: [{ role: 'user', content: kPrompt }],
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices.length, 1);
    const choice = res.choices[0];
    assert.equal(choice.message.role, 'assistant');
    assert.equal(words(choice.message.content).length, 7, `content: ${choice.message.content}`);
    assert.equal(choice.finish_reason, 'length');
    assert.equal(res.usage.prompt_tokens, 8);
    assert.equal(res.usage.completion_tokens, 7);
    assert.equal(res.usage.total_tokens, 15);
  }
  // Without max_tokens the mock answers its default length and stops on its own.
  const res = await client.chat.completions.create({
    model: 'chat-a', messages: [{ role: 'user', content: kPrompt }],
  });
  assert.ok(res.choices[0].message.content.length > 0);
  assert.ok(['stop', 'length'].includes(res.choices[0].finish_reason));
});

e2eTest('chat completion, streaming, with and without include_usage', async (h) => {
  const { client } = await startApiGateway(h);

  const stream = await client.chat.completions.create({
    model: 'chat-a', max_tokens: 5, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: kPrompt }],
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);  // completes only if the stream ends well
  assert.ok(chunks.length >= 3, `got ${chunks.length} chunks`);
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
  assert.equal(words(chatContent(chunks)).length, 5, `content: ${chatContent(chunks)}`);
  const finishes = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter(Boolean);
  assert.deepEqual(finishes, ['length']);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
  assert.equal(last.usage.prompt_tokens, 8);
  assert.equal(last.usage.completion_tokens, 5);
  assert.equal(last.usage.total_tokens, 13);
  for (const c of chunks.slice(0, -1)) assert.ok(!c.usage, 'only the last chunk carries usage');

  const plain = [];
  for await (const chunk of await client.chat.completions.create({
    model: 'chat-b', max_tokens: 3, stream: true, messages: [{ role: 'user', content: kPrompt }],
  })) plain.push(chunk);
  assert.equal(words(chatContent(plain)).length, 3);
  for (const c of plain) assert.ok(!c.usage, 'no usage chunk without include_usage');
});

e2eTest('chat stream ends with data: [DONE] on the wire', async (h) => {
  const { gw } = await startApiGateway(h);
  const r = await postSse(`${gw.baseURL}/chat/completions`, {
    model: 'chat-a', max_tokens: 4, stream: true, messages: [{ role: 'user', content: kPrompt }],
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  assert.ok(r.done, `stream must end with data: [DONE]:\n${r.text}`);
  assert.equal(words(chatContent(r.events)).length, 4);
});

e2eTest('text completions, non-streaming and streaming', async (h) => {
  const { client } = await startApiGateway(h);
  const res = await client.completions.create({ model: 'chat-a', prompt: kPrompt, max_tokens: 6 });
  assert.equal(res.object, 'text_completion');
  assert.equal(words(res.choices[0].text).length, 6, `text: ${res.choices[0].text}`);
  assert.equal(res.choices[0].finish_reason, 'length');
  assert.equal(res.usage.prompt_tokens, 8);
  assert.equal(res.usage.completion_tokens, 6);

  const chunks = [];
  for await (const c of await client.completions.create({
    model: 'chat-b', prompt: kPrompt, max_tokens: 4, stream: true,
    stream_options: { include_usage: true },
  })) chunks.push(c);
  const text = chunks.map((c) => c.choices?.[0]?.text ?? '').join('');
  assert.equal(words(text).length, 4, `text: ${text}`);
  assert.ok(chunks.some((c) => c.choices?.[0]?.finish_reason === 'length'));
  assert.equal(chunks.at(-1).usage?.completion_tokens, 4, 'usage in the last chunk');
});

e2eTest('embeddings', async (h) => {
  const { client } = await startApiGateway(h);
  const inputs = ['first input here', 'second', 'and the third one'];
  const res = await client.embeddings.create({ model: 'embed-a', input: inputs });
  assert.equal(res.object, 'list');
  assert.equal(res.data.length, inputs.length);
  const dims = res.data[0].embedding.length;
  assert.ok(dims > 0);
  res.data.forEach((d, i) => {
    assert.equal(d.object, 'embedding');
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, dims);
    for (const x of d.embedding) assert.equal(typeof x, 'number');
  });
  assert.equal(res.usage.prompt_tokens, 8);  // 3 + 1 + 4 words

  const single = await client.embeddings.create({ model: 'embed-a', input: 'just one' });
  assert.equal(single.data.length, 1);
});

e2eTest('models.list returns exactly the configured model names', async (h) => {
  const { client } = await startApiGateway(h);
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.deepEqual(ids.sort(), ['chat-a', 'chat-b', 'embed-a']);
});

e2eTest('X-Request-ID is generated, and echoed when sent', async (h) => {
  const { gw, client } = await startApiGateway(h);
  const params = { model: 'chat-a', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] };

  const generated = await client.chat.completions.create(params).withResponse();
  const id = generated.response.headers.get('x-request-id');
  assert.ok(id && id.length >= 8, `generated X-Request-ID: ${id}`);
  const other = await client.chat.completions.create(params).withResponse();
  assert.notEqual(other.response.headers.get('x-request-id'), id, 'ids are per request');

  const mine = 'e2e-request-4f1c2b';
  const echoed = await client.chat.completions
    .create(params, { headers: { 'X-Request-ID': mine } }).withResponse();
  assert.equal(echoed.response.headers.get('x-request-id'), mine);

  const stream = await client.chat.completions
    .create({ ...params, stream: true }, { headers: { 'X-Request-ID': `${mine}-s` } })
    .withResponse();
  assert.equal(stream.response.headers.get('x-request-id'), `${mine}-s`);
  for await (const _ of stream.data) { /* drain */ }

  // On every response, errors and plain GETs included.
  const notFound = await gw.fetch('/v1/no-such-path', { headers: { 'X-Request-ID': 'e2e-404' } });
  assert.equal(notFound.headers.get('x-request-id'), 'e2e-404');
  const health = await gw.fetch('/health');
  assert.ok(health.headers.get('x-request-id'));
});

e2eTest('in-process mock provider: chat, stream and completions', async (h) => {
  const gw = await h.gateway({ model_list: [mockDeployment('inproc')] });
  const client = gw.client();
  const res = await client.chat.completions.create({
    model: 'inproc', max_tokens: 4, messages: [{ role: 'user', content: kPrompt }],
  });
  assert.equal(words(res.choices[0].message.content).length, 4);
  assert.equal(res.choices[0].finish_reason, 'length');
  assert.equal(res.usage.prompt_tokens, 8);

  const chunks = [];
  for await (const c of await client.chat.completions.create({
    model: 'inproc', max_tokens: 3, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: kPrompt }],
  })) chunks.push(c);
  assert.equal(words(chatContent(chunks)).length, 3);
  assert.equal(chunks.at(-1).usage?.completion_tokens, 3);

  const r = await postSse(`${gw.baseURL}/chat/completions`, {
    model: 'inproc', max_tokens: 2, stream: true, messages: [{ role: 'user', content: 'x' }],
  });
  assert.ok(r.done, `stream must end with data: [DONE]:\n${r.text}`);

  const comp = await client.completions.create({ model: 'inproc', prompt: 'a b', max_tokens: 2 });
  assert.equal(words(comp.choices[0].text).length, 2);
  assert.ok(gw.proc.running, 'the gateway is still running');
});

e2eTest('embedded default (no --config, no --model) serves a dummy model with the engine', async (h) => {
  // The dummy model is written to the cache directory: keep it inside this test's temp dir.
  const gw = await h.gateway(null, { env: { ...process.env, XDG_CACHE_HOME: h.dir } });
  const client = gw.client();
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['ondol-dummy']);
  const res = await client.chat.completions.create({
    model: 'ondol-dummy', max_tokens: 3, messages: [{ role: 'user', content: 'hello' }],
  });
  assert.equal(res.usage.completion_tokens, 3);
  // Log lines are flushed every few milliseconds: wait for the startup line rather than race it.
  await waitFor(() => /embedded default, 'ondol-dummy'/.test(gw.proc.logTail()),
                { what: 'the startup line naming the embedded default' });
  assert.ok(gw.proc.running, 'the gateway is still running');
});
