// Slow and idle clients: --read-timeout, --idle-timeout and --max-header-bytes, over raw sockets.
import assert from 'node:assert/strict';
import net from 'node:net';

import { e2eTest, sleep } from './lib/harness.mjs';
import { httpDeployment } from './lib/config.mjs';
import { rawRequest } from './lib/rawhttp.mjs';

const kReadTimeoutS = 1;
const kIdleTimeoutS = 2;
const kSlackMs = 1_000;   // how late past a timeout the server may act

// A socket that records what arrives and when it closes (ms since open).
async function openWatched(port) {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const w = { socket, t0: Date.now(), data: '', closedAt: null, firstDataAt: null };
  socket.setEncoding('latin1');
  socket.on('data', (d) => {
    if (w.firstDataAt === null) w.firstDataAt = Date.now() - w.t0;
    w.data += d;
  });
  w.closed = new Promise((resolve) => {
    const onClose = () => {
      if (w.closedAt === null) w.closedAt = Date.now() - w.t0;
      resolve();
    };
    socket.on('close', onClose);
    socket.on('end', onClose);
    socket.on('error', onClose);
  });
  return w;
}

async function waitClosed(w, timeoutMs, what) {
  const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs, 'timeout'));
  const r = await Promise.race([w.closed.then(() => 'closed'), timer]);
  assert.equal(r, 'closed', `${what}: the server did not close the connection within ${timeoutMs} ms`);
}

function parseHead(raw) {
  const headEnd = raw.indexOf('\r\n\r\n');
  assert.ok(headEnd > 0, `an HTTP response: ${JSON.stringify(raw)}`);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1]);
  return { status, body: raw.slice(headEnd + 4) };
}

function assertOpenAiError(body, what) {
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    assert.fail(`${what}: body is not JSON: ${JSON.stringify(body)}`);
  }
  for (const key of ['message', 'type', 'param', 'code']) {
    assert.ok(parsed.error && key in parsed.error, `${what}: error.${key} in ${body}`);
  }
  return parsed.error;
}

async function startGateway(h) {
  const up = await h.mockUpstream();
  return h.gateway({ model_list: [httpDeployment('chat', up.apiBase)] }, {
    extraArgs: ['--read-timeout', String(kReadTimeoutS), '--idle-timeout', String(kIdleTimeoutS),
      '--max-header-bytes', '2048'],
  });
}

e2eTest('a body dribbled slower than --read-timeout gets 408 with an OpenAI error', async (h) => {
  const gw = await startGateway(h);
  const body = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'slow' }] });
  const w = await openWatched(gw.port);
  w.socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
  const headersSentAt = Date.now() - w.t0;
  // One byte every 200 ms: steady traffic, but the whole body would take ~body.length/5 s.
  let i = 0;
  const dribble = setInterval(() => {
    if (w.closedAt === null && w.data === '' && i < body.length) w.socket.write(body[i++]);
  }, 200);
  try {
    await waitClosed(w, kReadTimeoutS * 1000 + kSlackMs + 1_000, 'slow body');
  } finally {
    clearInterval(dribble);
  }
  assert.ok(i < body.length, 'the body was not complete when the server gave up');
  assert.notEqual(w.data, '', `a response before the close (closed after ${w.closedAt} ms with ` +
    'nothing sent: expected 408)');
  const { status, body: errBody } = parseHead(w.data);
  assert.equal(status, 408, w.data);
  assertOpenAiError(errBody, '408');
  const answeredAfter = w.firstDataAt - headersSentAt;
  assert.ok(answeredAfter >= kReadTimeoutS * 1000 - 100 && answeredAfter <= kReadTimeoutS * 1000 + kSlackMs,
    `408 came ${answeredAfter} ms after the headers (read timeout ${kReadTimeoutS} s)`);
  // The gateway still serves.
  const health = await rawRequest(gw.port, { path: '/health' });
  assert.equal(health.status, 200);
});

e2eTest('an idle keep-alive connection is closed after --idle-timeout', async (h) => {
  const gw = await startGateway(h);
  const w = await openWatched(gw.port);
  w.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  // The response arrives at once, and the connection stays open (keep-alive) ...
  await sleep(300);
  assert.match(w.data, /^HTTP\/1\.1 200/);
  assert.equal(w.closedAt, null, 'keep-alive: still open right after the response');
  const answeredAt = w.firstDataAt;
  // ... then closes once idle for ~2 s.
  await waitClosed(w, kIdleTimeoutS * 1000 + kSlackMs + 500, 'idle keep-alive');
  const idleFor = w.closedAt - answeredAt;
  assert.ok(idleFor >= kIdleTimeoutS * 1000 - 150, `closed too early: after ${idleFor} ms idle`);
  assert.ok(idleFor <= kIdleTimeoutS * 1000 + kSlackMs, `closed late: after ${idleFor} ms idle`);
});

e2eTest('a partial request line that stalls is disconnected by --idle-timeout', async (h) => {
  const gw = await startGateway(h);
  const w = await openWatched(gw.port);
  w.socket.write('GET /hea');
  await waitClosed(w, kIdleTimeoutS * 1000 + kSlackMs + 500, 'stalled partial header');
  assert.ok(w.closedAt >= kIdleTimeoutS * 1000 - 150, `closed too early: ${w.closedAt} ms`);
  assert.ok(w.closedAt <= kIdleTimeoutS * 1000 + kSlackMs, `closed late: ${w.closedAt} ms`);
  // A response is optional (408 is allowed); if there is one it is an error, not a 200.
  if (w.data !== '') {
    const { status, body } = parseHead(w.data);
    assert.equal(status, 408, w.data);
    assertOpenAiError(body, 'partial header 408');
  }
  // Headers dribbled slowly are bounded the same way: no slowloris.
  const w2 = await openWatched(gw.port);
  w2.socket.write('POST /v1/chat/completions HTTP/1.1\r\n');
  let n = 0;
  const drip = setInterval(() => { if (w2.closedAt === null) w2.socket.write(`X-Drip-${n++}: 1\r\n`); }, 200);
  try {
    await waitClosed(w2, kIdleTimeoutS * 1000 + kSlackMs + 500, 'slowloris headers');
  } finally {
    clearInterval(drip);
  }
  assert.ok(w2.closedAt <= kIdleTimeoutS * 1000 + kSlackMs, `slowloris closed late: ${w2.closedAt} ms`);
});

e2eTest('headers over --max-header-bytes get 431 with an OpenAI error', async (h) => {
  const gw = await startGateway(h);
  const res = await rawRequest(gw.port, {
    path: '/health', headers: { 'X-Big': 'a'.repeat(4096) },
  });
  assert.ok(res, 'a response');
  assert.equal(res.status, 431, res.body);
  assertOpenAiError(res.body, '431');
  // Just under the limit is fine.
  const ok = await rawRequest(gw.port, { path: '/health', headers: { 'X-Big': 'a'.repeat(1500) } });
  assert.equal(ok.status, 200);
});
