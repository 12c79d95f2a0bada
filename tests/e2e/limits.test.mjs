// Rate limits, admission control and the response cache through the gateway (docs/limits.md,
// docs/gateway.md): 429 + Retry-After + x-ratelimit-* from a deployment's rpm; three instances
// sharing a real redis-server admit exactly the limit; Redis outages in both fail modes; a full
// admission queue answers 503 at once; cached answers, streamed and across instances.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { e2eTest, sleep, waitFor } from './lib/harness.mjs';
import { httpDeployment, mockDeployment } from './lib/config.mjs';
import { makeTestPki } from './lib/external.mjs';
import { startRedis } from './lib/redis.mjs';

const run = promisify(execFile);
const kMessages = [{ role: 'user', content: 'hello there' }];

function chat(gw, body, headers = {}) {
  return gw.fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'm', messages: kMessages, max_tokens: 8, ...body }),
  });
}

// Minute windows start at whole minutes (Unix time): a burst that straddles one sees the
// previous window's count weighted by a fraction, which moves `remaining` by one. Tests that
// count exactly start at least 3 s before the next boundary.
async function awayFromMinuteEdge() {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 57_000) await sleep(60_000 - intoMinute + 100);
}

function redisSettings(redis, extra = {}) {
  return { redis_host: '127.0.0.1', redis_port: redis.port, ...extra };
}

e2eTest('a deployment with rpm 5 answers the 6th request in the minute with 429', async (h) => {
  const gw = await h.gateway({ model_list: [mockDeployment('m', { rpm: 5 })] });
  await awayFromMinuteEdge();
  for (let i = 0; i < 5; ++i) {
    const res = await chat(gw);
    assert.equal(res.status, 200, await res.text());
    assert.equal(res.headers.get('x-ratelimit-limit-requests'), '5');
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), String(4 - i));
  }
  const res = await chat(gw);
  assert.equal(res.status, 429);
  const retryAfter = Number(res.headers.get('retry-after'));
  // At most a window plus the time the sliding window needs to forget one request: 60 + 60/5.
  assert.ok(retryAfter >= 1 && retryAfter <= 72, `Retry-After ${res.headers.get('retry-after')}`);
  assert.equal(res.headers.get('x-ratelimit-limit-requests'), '5');
  assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '0');
  const body = await res.json();
  assert.equal(body.error.type, 'rate_limit_error');
  assert.ok(body.error.message.length > 0);

  // The openai client sees a RateLimitError.
  const client = gw.client();
  await assert.rejects(
    client.chat.completions.create({ model: 'm', messages: kMessages }),
    (err) => err.status === 429);
});

e2eTest('a deployment tpm counts the estimate: a request larger than tpm is refused', async (h) => {
  const gw = await h.gateway({ model_list: [mockDeployment('m', { tpm: 100 })] });
  const ok = await chat(gw, { max_tokens: 10 });
  assert.equal(ok.status, 200, await ok.text());
  assert.equal(ok.headers.get('x-ratelimit-limit-tokens'), '100');
  const big = await chat(gw, { max_tokens: 1000 });
  assert.equal(big.status, 429);
  assert.match((await big.json()).error.message, /too large/i);
});

e2eTest('three instances sharing redis admit exactly the limit in total', { timeout: 40_000 },
  async (h) => {
    const redis = await startRedis(h);
    const config = {
      model_list: [mockDeployment('m', { rpm: 12 })],
      router_settings: redisSettings(redis),
    };
    const gws = [];
    for (let i = 0; i < 3; ++i) gws.push(await h.gateway(config));
    await awayFromMinuteEdge();
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => chat(gws[i % 3]).then(async (r) => {
        await r.text();
        return r.status;
      })));
    const admitted = results.filter((s) => s === 200).length;
    const refused = results.filter((s) => s === 429).length;
    assert.equal(admitted, 12, `statuses: ${results.join(',')}`);
    assert.equal(refused, 18);
    const health = await (await gws[0].fetch('/health')).json();
    assert.equal(health.redis, 'connected');
  });

e2eTest('rediss://: limits and the cache over TLS, the certificate checked', { timeout: 40_000 },
  async (h) => {
    const pki = await makeTestPki(h.dir);
    const redis = await startRedis(h, { tls: pki });
    const gw = await h.gateway({
      model_list: [mockDeployment('m', { rpm: 3 })],
      router_settings: { redis_url: redis.url },
      litellm_settings: { cache: true, cache_params: { type: 'redis' } },
    });
    await awayFromMinuteEdge();
    const statuses = [];
    for (let i = 0; i < 4; ++i) {
      const r = await chat(gw, { temperature: 0, messages: [{ role: 'user', content: `tls ${i}` }] });
      await r.text();
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429], 'the rpm of 3 counted in Redis over TLS');
    assert.equal((await (await gw.fetch('/health')).json()).redis, 'connected');
    const { stdout } = await run('redis-cli', [...redis.cliArgs(), '--scan', '--pattern', 'ondol:*']);
    assert.match(stdout, /ondol:rl:deployment:/, 'counters in the TLS Redis');
    await waitFor(async () => {
      const keys = (await run('redis-cli', [...redis.cliArgs(), '--scan', '--pattern', 'ondol:cache:*'])).stdout;
      return keys.trim().split('\n').filter(Boolean).length === 3;
    }, { what: 'three cached answers in the TLS Redis' });

    // Without the CA the server's certificate is not trusted: fail-open, and /health says so.
    const untrusted = await h.gateway({
      model_list: [mockDeployment('m', { rpm: 3 })],
      router_settings: { redis_url: `rediss://127.0.0.1:${redis.port}/0`, redis_timeout: 0.5 },
    });
    const r = await chat(untrusted);
    assert.equal(r.status, 200, 'fail-open admits');
    await r.text();
    assert.equal((await (await untrusted.fetch('/health')).json()).redis, 'disconnected');
    await waitFor(() => /"redis unreachable".*certificate verify failed/.test(untrusted.proc.output),
      { what: 'the TLS failure in the log' });
  });

e2eTest('redis down: fail-open admits, fail-closed answers 503, both recover', { timeout: 40_000 },
  async (h) => {
    const redis = await startRedis(h);
    const open = await h.gateway({
      model_list: [mockDeployment('m', { rpm: 100 })],
      router_settings: redisSettings(redis, { rate_limit_fail_mode: 'open' }),
    });
    const closed = await h.gateway({
      model_list: [mockDeployment('m', { rpm: 100 })],
      router_settings: redisSettings(redis, { rate_limit_fail_mode: 'closed' }),
    });
    for (const gw of [open, closed]) assert.equal((await chat(gw)).status, 200);

    await redis.stop();
    // /health asks Redis itself: the outage shows before any request has failed.
    const early = await (await open.fetch('/health')).json();
    assert.equal(early.redis, 'disconnected', JSON.stringify(early));
    let t0 = Date.now();
    const admitted = await chat(open);
    assert.equal(admitted.status, 200, await admitted.text());
    assert.ok(Date.now() - t0 < 2000, `fail-open answered in ${Date.now() - t0} ms`);
    t0 = Date.now();
    const refused = await chat(closed);
    assert.equal(refused.status, 503, await refused.text());
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.ok(Date.now() - t0 < 2000, `fail-closed answered in ${Date.now() - t0} ms`);
    for (const gw of [open, closed]) {
      const health = await (await gw.fetch('/health')).json();
      assert.equal(health.redis, 'disconnected', JSON.stringify(health));
    }
    const metrics = await (await closed.fetch('/metrics')).text();
    assert.match(metrics, /^ondol_redis_up 0$/m);
    assert.match(metrics, /^ondol_rate_limit_degraded_total\{mode="closed"\} [1-9]/m);

    await redis.start();
    // The client's reconnect backoff is at most 5 s.
    await waitFor(async () => (await chat(closed)).status === 200,
      { timeoutMs: 10_000, intervalMs: 200, what: 'fail-closed recovery' });
    const health = await (await closed.fetch('/health')).json();
    assert.equal(health.redis, 'connected');
    assert.equal(health.rate_limit_fail_mode, 'closed');
  });

e2eTest('a full admission queue answers 503 with Retry-After at once', async (h) => {
  const gw = await h.gateway({
    model_list: [mockDeployment('m', { mock_response_latency_ms: 1500 })],
    general_settings: { global_max_parallel_requests: 1, max_queue_size: 1, queue_timeout: 10 },
  });
  const running = chat(gw);
  await sleep(200);
  const queued = chat(gw);
  await sleep(200);
  const t0 = Date.now();
  const refused = await chat(gw);
  const elapsed = Date.now() - t0;
  assert.equal(refused.status, 503, await refused.text());
  assert.ok(elapsed < 500, `refused after ${elapsed} ms`);
  assert.equal(refused.headers.get('retry-after'), '10');
  assert.equal((await running).status, 200);
  assert.equal((await queued).status, 200);
});

e2eTest('per-deployment max_parallel_requests queues, then refuses when full', async (h) => {
  const gw = await h.gateway({
    model_list: [mockDeployment('m', { mock_response_latency_ms: 1000, max_parallel_requests: 1 })],
    general_settings: { max_queue_size: 0 },
  });
  const running = chat(gw);
  await sleep(200);
  const refused = await chat(gw);
  assert.equal(refused.status, 503, await refused.text());
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  assert.equal((await running).status, 200);
});

e2eTest('the response cache answers repeats, streams as streams, and obeys no-cache', async (h) => {
  const upstream = await h.mockUpstream();
  const gw = await h.gateway({
    model_list: [httpDeployment('m', upstream.apiBase)],
    litellm_settings: { cache: true, cache_params: { type: 'local', ttl: 60 } },
  });
  const first = await chat(gw, { temperature: 0 });
  assert.equal(first.status, 200);
  const firstBody = await first.json();
  const second = await chat(gw, { temperature: 0, user: 'someone-else' });
  assert.equal(second.status, 200);
  assert.equal(second.headers.get('x-ondol-cache'), 'hit');
  assert.deepEqual(await second.json(), firstBody);
  assert.equal((await upstream.stats()).requests, 1, 'the repeat did not reach the upstream');

  // Not deterministic (temperature defaults to 1): not cached.
  await (await chat(gw)).text();
  await (await chat(gw)).text();
  assert.equal((await upstream.stats()).requests, 3);

  // no-cache: read past the cache.
  const bypass = await chat(gw, { temperature: 0, cache: { 'no-cache': true } });
  assert.equal(bypass.status, 200);
  assert.equal(bypass.headers.get('x-ondol-cache'), null);
  await bypass.text();
  assert.equal((await upstream.stats()).requests, 4);

  // A streamed request, repeated: the repeat is a stream from the cache.
  const client = gw.client();
  const collect = async () => {
    const stream = await client.chat.completions.create({
      model: 'm', messages: kMessages, temperature: 0, seed: 7, max_tokens: 8, stream: true,
    });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    return { text, chunks };
  };
  const streamed = await collect();
  assert.ok(streamed.chunks > 1 && streamed.text.length > 0);
  assert.equal((await upstream.stats()).requests, 5);
  const replay = await collect();
  assert.deepEqual(replay, streamed);
  assert.equal((await upstream.stats()).requests, 5, 'the streamed repeat came from the cache');

  const metrics = await (await gw.fetch('/metrics')).text();
  assert.match(metrics, /^litellm_cache_hits_metric_total\{model="m"\} 2$/m);
  assert.match(metrics, /^litellm_cache_misses_metric_total\{model="m"\} 2$/m);
});

e2eTest('a response cached by one instance is a hit on another sharing redis', async (h) => {
  const redis = await startRedis(h);
  const upstream = await h.mockUpstream();
  const config = {
    model_list: [httpDeployment('m', upstream.apiBase)],
    router_settings: redisSettings(redis),
    litellm_settings: { cache: true, cache_params: { type: 'redis', ttl: 60 } },
  };
  const a = await h.gateway(config);
  const b = await h.gateway(config);
  const first = await chat(a, { temperature: 0 });
  assert.equal(first.status, 200);
  const body = await first.json();
  const second = await chat(b, { temperature: 0 });
  assert.equal(second.status, 200);
  assert.equal(second.headers.get('x-ondol-cache'), 'hit');
  assert.deepEqual(await second.json(), body);
  assert.equal((await upstream.stats()).requests, 1);
});

e2eTest('a virtual key with rpm_limit 2 gets 429 on its 3rd request; the master key does not',
  async (h) => {
    const gw = await h.gateway({
      model_list: [mockDeployment('m')],
      general_settings: { master_key: 'sk-master-e2e' },
    }, { env: { ONDOL_STATE_DIR: h.dir } });
    const master = { authorization: 'Bearer sk-master-e2e' };
    const gen = await gw.fetch('/key/generate', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...master },
      body: JSON.stringify({ rpm_limit: 2 }),
    });
    assert.equal(gen.status, 200, await gen.clone().text());
    const { key } = await gen.json();
    const auth = { authorization: `Bearer ${key}` };
    await awayFromMinuteEdge();
    for (let i = 0; i < 2; ++i) {
      const res = await chat(gw, {}, auth);
      assert.equal(res.status, 200, await res.text());
      assert.equal(res.headers.get('x-ratelimit-limit-requests'), '2');
      assert.equal(res.headers.get('x-ratelimit-remaining-requests'), String(1 - i));
    }
    const refused = await chat(gw, {}, auth);
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');
    for (let i = 0; i < 3; ++i) assert.equal((await chat(gw, {}, master)).status, 200);
  });

e2eTest('a virtual key with max_parallel_requests 1 gets 429 for a second concurrent request',
  async (h) => {
    const gw = await h.gateway({
      model_list: [mockDeployment('m', { mock_response_latency_ms: 800 })],
      general_settings: { master_key: 'sk-master-e2e' },
    }, { env: { ONDOL_STATE_DIR: h.dir } });
    const gen = await gw.fetch('/key/generate', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-master-e2e' },
      body: JSON.stringify({ max_parallel_requests: 1 }),
    });
    assert.equal(gen.status, 200, await gen.clone().text());
    const auth = { authorization: `Bearer ${(await gen.json()).key}` };
    const first = chat(gw, {}, auth);
    await sleep(200);
    const second = await chat(gw, {}, auth);
    assert.equal(second.status, 429, await second.text());
    assert.equal((await first).status, 200);
    assert.equal((await chat(gw, {}, auth)).status, 200, 'the slot is free again');
  });

e2eTest('max_parallel_requests of a key is shared by instances sharing Redis', { timeout: 30_000 },
  async (h) => {
    const redis = await startRedis(h);
    const dbDir = h.dir;
    const config = {
      model_list: [mockDeployment('m', { mock_response_latency_ms: 800 })],
      general_settings: { master_key: 'sk-master-e2e', database_path: `${dbDir}/shared.db` },
      router_settings: redisSettings(redis),
    };
    const a = await h.gateway(config, { env: { ONDOL_STATE_DIR: `${dbDir}` } });
    const b = await h.gateway(config, { env: { ONDOL_STATE_DIR: `${dbDir}` } });
    const gen = await a.fetch('/key/generate', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-master-e2e' },
      body: JSON.stringify({ max_parallel_requests: 2 }),
    });
    assert.equal(gen.status, 200, await gen.clone().text());
    const auth = { authorization: `Bearer ${(await gen.json()).key}` };
    const running = [chat(a, {}, auth), chat(b, {}, auth)];
    await sleep(250);
    const third = await chat(a, {}, auth);
    assert.equal(third.status, 429, 'two in flight, one on each instance: the limit of 2 is full');
    assert.match((await third.json()).error.message, /Max parallel request limit reached for key/);
    const fourth = await chat(b, {}, auth);
    assert.equal(fourth.status, 429);
    await fourth.text();
    for (const r of await Promise.all(running)) assert.equal(r.status, 200);
    await waitFor(async () => {
      const r = await chat(b, {}, auth);
      await r.text();
      return r.status === 200;
    }, { what: 'the leases given back' });
  });
