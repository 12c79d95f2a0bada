// Errors: the openai client must see the right error class and status, and every error body must
// have the OpenAI shape {"error":{"message","type","param","code"}}.
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import { e2eTest } from './lib/harness.mjs';
import { httpDeployment } from './lib/config.mjs';
import { chunkedBody, rawRequest } from './lib/rawhttp.mjs';

const kMessages = [{ role: 'user', content: 'hello there' }];

// Asserts that body is an OpenAI error body and returns its `error` object.
function assertErrorBody(body, what) {
  assert.equal(typeof body, 'object', `${what}: body is JSON`);
  assert.ok(body.error && typeof body.error === 'object', `${what}: has "error": ${JSON.stringify(body)}`);
  for (const key of ['message', 'type', 'param', 'code']) {
    assert.ok(key in body.error, `${what}: error.${key} present in ${JSON.stringify(body)}`);
  }
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0, `${what}: error.message is not empty`);
  assert.equal(typeof body.error.type, 'string');
  return body.error;
}

async function rejectsWith(promise, ErrorClass, status) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ErrorClass,
      `expected ${ErrorClass.name}, got ${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.status, status);
    assert.ok(err.error && typeof err.error.message === 'string', 'the body is an OpenAI error');
    return err;
  }
  assert.fail(`expected ${ErrorClass.name} (${status}), the request succeeded`);
}

async function startGateway(h, { masterKey, extraArgs } = {}) {
  const upstream = await h.mockUpstream();
  const config = { model_list: [httpDeployment('chat', upstream.apiBase)] };
  if (masterKey) config.general_settings = { master_key: masterKey };
  const gw = await h.gateway(config, { extraArgs });
  return { gw, upstream };
}

e2eTest('invalid parameters are BadRequestError (400), nothing forwarded', async (h) => {
  const { gw, upstream } = await startGateway(h);
  const client = gw.client();
  const cases = [
    ['messages missing', client.chat.completions.create({ model: 'chat' })],
    ['messages not an array', client.chat.completions.create({ model: 'chat', messages: 'hi' })],
    ['temperature 5', client.chat.completions.create({ model: 'chat', messages: kMessages, temperature: 5 })],
    ['max_tokens negative', client.chat.completions.create({ model: 'chat', messages: kMessages, max_tokens: -3 })],
    ['model missing', client.chat.completions.create({ messages: kMessages })],
    ['prompt missing', client.completions.create({ model: 'chat' })],
    ['embedding input missing', client.embeddings.create({ model: 'chat' })],
  ];
  for (const [what, promise] of cases) {
    const err = await rejectsWith(promise, OpenAI.BadRequestError, 400).catch((e) => {
      e.message = `${what}: ${e.message}`;
      throw e;
    });
    assert.equal(err.type, 'invalid_request_error', `${what}: type`);
  }
  const stats = await upstream.stats();
  assert.equal(stats.requests, 0, 'invalid requests must not reach the upstream');
});

e2eTest('unknown model is NotFoundError (404)', async (h) => {
  const { gw } = await startGateway(h);
  const client = gw.client();
  const err = await rejectsWith(
    client.chat.completions.create({ model: 'no-such-model', messages: kMessages }),
    OpenAI.NotFoundError, 404);
  assert.ok([err.code, err.type].includes('model_not_found'),
    `code or type is model_not_found: ${JSON.stringify(err.error)}`);
  assert.match(err.message, /no-such-model/);
  await rejectsWith(client.embeddings.create({ model: 'nope', input: 'x' }), OpenAI.NotFoundError, 404);
  await rejectsWith(
    client.chat.completions.create({ model: 'nope', messages: kMessages, stream: true }),
    OpenAI.NotFoundError, 404);
});

e2eTest('master key: wrong or missing key is AuthenticationError (401)', async (h) => {
  const key = 'sk-e2e-master-7c1d';
  const { gw, upstream } = await startGateway(h, { masterKey: key });

  await rejectsWith(
    gw.client({ apiKey: 'sk-wrong' }).chat.completions.create({ model: 'chat', messages: kMessages }),
    OpenAI.AuthenticationError, 401);
  const err = await rejectsWith(gw.client({ apiKey: 'sk-wrong' }).models.list(),
    OpenAI.AuthenticationError, 401);
  assert.equal(err.type, 'authentication_error');

  const noKey = await gw.fetch('/v1/chat/completions', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'chat', messages: kMessages }),
  });
  assert.equal(noKey.status, 401);
  assertErrorBody(await noKey.json(), 'no Authorization header');
  assert.equal((await upstream.stats()).requests, 0, 'unauthenticated requests are not forwarded');

  const good = gw.client({ apiKey: key });
  const ids = [];
  for await (const m of good.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['chat']);
  const chunks = [];
  for await (const c of await good.chat.completions.create({
    model: 'chat', messages: kMessages, max_tokens: 2, stream: true,
  })) chunks.push(c);
  assert.ok(chunks.length > 0, 'the right key is served');

  // The admin API wants the master key too.
  const reloadNoKey = await gw.fetch('/admin/reload', { method: 'POST' });
  assert.equal(reloadNoKey.status, 401);
  assertErrorBody(await reloadNoKey.json(), 'POST /admin/reload without the key');
  const reloadWithKey = await gw.fetch('/admin/reload', {
    method: 'POST', headers: { authorization: `Bearer ${key}` },
  });
  assert.equal(reloadWithKey.status, 200);
  assert.equal((await reloadWithKey.json()).status, 'reloaded');
});

e2eTest('master key with public_routes: listed paths need no key, others do', async (h) => {
  const key = 'sk-e2e-master-public';
  const upstream = await h.mockUpstream();
  const gw = await h.gateway({
    model_list: [httpDeployment('chat', upstream.apiBase)],
    general_settings: { master_key: key, public_routes: ['/health', '/metrics'] },
  });
  const health = await gw.fetch('/health');
  assert.equal(health.status, 200);
  await health.text();
  const metrics = await gw.fetch('/metrics');
  assert.equal(metrics.status, 200);
  await metrics.text();
  const models = await gw.fetch('/v1/models');
  assert.equal(models.status, 401);
  assertErrorBody(await models.json(), 'GET /v1/models without the key');
  const withKey = await gw.fetch('/v1/models', { headers: { authorization: `Bearer ${key}` } });
  assert.equal(withKey.status, 200);
  assert.deepEqual((await withKey.json()).data.map((m) => m.id), ['chat']);
});

e2eTest('raw HTTP errors: malformed JSON 400, body too large 413, unknown path 404, 405', async (h) => {
  const { gw, upstream } = await startGateway(h, { extraArgs: ['--max-body-bytes', '1024'] });
  const post = (path, body) => gw.fetch(path, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body,
  });

  const malformed = await post('/v1/chat/completions', '{"model": "chat", "messages": [');
  assert.equal(malformed.status, 400);
  assert.match(malformed.headers.get('content-type') ?? '', /application\/json/);
  const e400 = assertErrorBody(await malformed.json(), 'malformed JSON');
  assert.equal(e400.type, 'invalid_request_error');

  const notObject = await post('/v1/chat/completions', '[1, 2, 3]');
  assert.equal(notObject.status, 400);
  assertErrorBody(await notObject.json(), 'JSON array body');

  const big = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'x'.repeat(4096) }] });
  // Raw sockets: the server may answer 413 before it has read the body.
  const tooLarge = await rawRequest(gw.port, {
    method: 'POST', path: '/v1/chat/completions', headers: { 'Content-Type': 'application/json' },
    body: big,
  });
  assert.equal(tooLarge?.status, 413, `Content-Length over --max-body-bytes: ${tooLarge?.body}`);
  assertErrorBody(JSON.parse(tooLarge.body), 'body over --max-body-bytes');
  const tooLargeChunked = await rawRequest(gw.port, {
    method: 'POST', path: '/v1/chat/completions',
    headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
    body: chunkedBody(big),
  });
  assert.equal(tooLargeChunked?.status, 413, `chunked body over --max-body-bytes: ${tooLargeChunked?.body}`);
  assertErrorBody(JSON.parse(tooLargeChunked.body), 'chunked body over --max-body-bytes');

  // Just under the limit still works.
  const fits = await post('/v1/chat/completions', JSON.stringify({
    model: 'chat', max_tokens: 1, stream: true, messages: [{ role: 'user', content: 'x'.repeat(700) }],
  }));
  assert.equal(fits.status, 200);
  await fits.text();

  for (const path of ['/v1/no-such-endpoint', '/nothing/here']) {
    const unknown = await gw.fetch(path);
    assert.equal(unknown.status, 404, path);
    assertErrorBody(await unknown.json(), `unknown path ${path}`);
  }

  const wrongMethod = await gw.fetch('/v1/chat/completions');
  assert.equal(wrongMethod.status, 405);
  assertErrorBody(await wrongMethod.json(), 'GET on a POST route');

  assert.equal((await upstream.stats()).requests, 1, 'only the valid request reached the upstream');
  assert.ok(gw.proc.running);
});
