// Liveness, deep health, readiness and Prometheus metrics.
import assert from 'node:assert/strict';
import net from 'node:net';

import { closedPort, e2eTest } from './lib/harness.mjs';
import { deadApiBase, httpDeployment } from './lib/config.mjs';
import { chatContent, words } from './lib/sse.mjs';

async function getJson(gw, path) {
  const res = await gw.fetch(path);
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`${path}: not JSON (${res.status}): ${text}`);
  }
  return { status: res.status, body };
}

// The endpoints listed under a key of a /health/backends body, as one string to search.
function listed(body, key) {
  assert.ok(Array.isArray(body[key]), `${key} is a list: ${JSON.stringify(body)}`);
  return JSON.stringify(body[key]);
}

e2eTest('/health, /health/liveliness and /ready answer 200', async (h) => {
  const up = await h.mockUpstream();
  const gw = await h.gateway({ model_list: [httpDeployment('chat', up.apiBase)] });
  for (const path of ['/health', '/health/liveliness']) {
    const { status, body } = await getJson(gw, path);
    assert.equal(status, 200, path);
    assert.equal(body.status, 'healthy', path);
  }
  for (const path of ['/ready', '/health/readiness']) {
    const res = await gw.fetch(path);
    assert.equal(res.status, 200, path);
    await res.text();
  }
});

// HEAD gets the GET answer's header (Content-Length included) and no content: a keep-alive
// client would otherwise read the content as the start of the next response.
e2eTest('HEAD /health: the GET header, no content, and the connection goes on', async (h) => {
  const up = await h.mockUpstream();
  const gw = await h.gateway({ model_list: [httpDeployment('chat', up.apiBase)] });
  const getBody = await (await gw.fetch('/health')).text();
  const socket = net.connect({ host: '127.0.0.1', port: gw.proc.port });
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => { received += d; });
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  socket.write('HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
    + 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const deadline = Date.now() + 5_000;
  while (!received.endsWith(getBody) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  socket.destroy();
  const headEnd = received.indexOf('\r\n\r\n');
  assert.ok(headEnd > 0, received);
  const head = received.slice(0, headEnd + 2);  // every header line with its CRLF
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, new RegExp(`\r\nContent-Length: ${Buffer.byteLength(getBody)}\r\n`, 'i'));
  // Right after HEAD's blank line comes the GET's status line, then the same content.
  const rest = received.slice(headEnd + 4);
  assert.match(rest, /^HTTP\/1\.1 200/, received);
  assert.ok(rest.endsWith(getBody), received);
});

e2eTest('/health/backends and /health?deep=1: 503 listing the dead deployment', async (h) => {
  const up = await h.mockUpstream();
  const deadPort = await closedPort();
  const gw = await h.gateway({
    model_list: [
      httpDeployment('chat', up.apiBase),
      httpDeployment('chat', deadApiBase(deadPort)),
      httpDeployment('other', up.apiBase, { upstreamModel: 'other-upstream' }),
    ],
  });
  for (const path of ['/health/backends', '/health?deep=1']) {
    const { status, body } = await getJson(gw, path);
    assert.equal(status, 503, `${path}: ${JSON.stringify(body)}`);
    const unhealthy = listed(body, 'unhealthy_endpoints');
    const healthy = listed(body, 'healthy_endpoints');
    assert.ok(unhealthy.includes(`:${deadPort}`), `${path}: the dead deployment is unhealthy: ${unhealthy}`);
    assert.ok(!unhealthy.includes(`:${up.port}`), `${path}: the live one is not: ${unhealthy}`);
    assert.ok(healthy.includes(`:${up.port}`), `${path}: the live one is healthy: ${healthy}`);
    assert.equal(body.unhealthy_endpoints.length, 1, path);
    assert.equal(body.healthy_endpoints.length, 2, path);
  }
  assert.ok(gw.proc.running);
  assert.ok(up.proc.running, 'the probed mock-upstream survives GET /v1/models');
  await up.stats();

  // Liveness does not depend on the backends.
  const { status } = await getJson(gw, '/health');
  assert.equal(status, 200);
});

e2eTest('/health/backends is 200 when every deployment answers', async (h) => {
  const up1 = await h.mockUpstream();
  const up2 = await h.mockUpstream();
  const gw = await h.gateway({
    model_list: [httpDeployment('chat', up1.apiBase), httpDeployment('chat', up2.apiBase)],
  });
  const { status, body } = await getJson(gw, '/health/backends');
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.healthy_endpoints?.length, 2, JSON.stringify(body));
  assert.equal(body.unhealthy_endpoints?.length, 0);
});

// Sum of the samples of a metric (all label sets) in Prometheus text.
function metricSum(text, name) {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) {
      found = true;
      sum += Number(m[3]);
    }
  }
  return found ? sum : null;
}

e2eTest('/metrics counts requests in LiteLLM and HTTP names', async (h) => {
  const up = await h.mockUpstream();
  const gw = await h.gateway({ model_list: [httpDeployment('chat', up.apiBase)] });
  const client = gw.client();
  const kRequests = 3;
  for (let i = 0; i < kRequests; i += 1) {
    const chunks = [];
    for await (const c of await client.chat.completions.create({
      model: 'chat', max_tokens: 2, stream: true, messages: [{ role: 'user', content: 'count me' }],
    })) chunks.push(c);
    assert.equal(words(chatContent(chunks)).length, 2);
  }
  const res = await gw.fetch('/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  const litellm = metricSum(text, 'litellm_proxy_total_requests_metric_total');
  assert.ok(litellm !== null, 'litellm_proxy_total_requests_metric_total is exported');
  assert.ok(litellm >= kRequests, `litellm_proxy_total_requests_metric_total = ${litellm}`);
  const http = metricSum(text, 'http_requests_total');
  assert.ok(http !== null, 'http_requests_total is exported');
  assert.ok(http >= kRequests, `http_requests_total = ${http}`);
  assert.match(text, /^# TYPE http_requests_total counter$/m);
  assert.match(text, /^# TYPE litellm_proxy_total_requests_metric_total counter$/m);
});
