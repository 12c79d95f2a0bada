// Process lifecycle: config reload (SIGHUP and POST /admin/reload) under load without failing a
// request, a bad config refused on reload, and graceful drain on SIGTERM.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';

import { e2eTest, sleep, waitFor } from './lib/harness.mjs';
import { httpDeployment } from './lib/config.mjs';
import { RawConnection } from './lib/rawhttp.mjs';
import { chatContent, parseSse, words } from './lib/sse.mjs';
import { toYaml } from './lib/yaml.mjs';

const kMessages = [{ role: 'user', content: 'steady now' }];

async function modelIds(client) {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  return ids.sort();
}

e2eTest('reload under load: SIGHUP and POST /admin/reload fail no request', { timeout: 60_000 }, async (h) => {
  const a = await h.mockUpstream();
  const b = await h.mockUpstream();
  const base = [httpDeployment('chat', a.apiBase, { weight: 1 })];
  const gw = await h.gateway({ model_list: base });
  const client = gw.client();
  assert.deepEqual(await modelIds(client), ['chat']);

  // The load runs until at least kRequests are issued and kAfterReload more after the last
  // reload, so both reloads land in the middle of it however fast the machine is.
  const kRequests = 200;
  const kAfterReload = 40;
  const kWorkers = 8;
  let issued = 0;
  let completed = 0;
  let stopAt = Infinity;  // set after the last reload
  let aborted = false;
  const failures = [];
  const worker = async () => {
    while (!aborted && issued < Math.max(kRequests, stopAt)) {
      const i = issued;
      issued += 1;
      const params = {
        model: 'chat', max_tokens: 3, messages: kMessages, mock: { latency_ms: 5 },
      };
      try {
        let n;
        if (i % 2 === 0) {
          const res = await client.chat.completions.create(params);
          n = words(res.choices[0].message.content).length;
        } else {
          const chunks = [];
          for await (const c of await client.chat.completions.create({ ...params, stream: true })) {
            chunks.push(c);
          }
          n = words(chatContent(chunks)).length;
        }
        if (n !== 3) throw new Error(`request ${i}: ${n} words instead of 3`);
      } catch (err) {
        failures.push(`request ${i} (${i % 2 === 0 ? 'plain' : 'stream'}): ${err.message}`);
      }
      completed += 1;
    }
  };
  const load = Promise.all(Array.from({ length: kWorkers }, worker));
  try {
    // First reload by SIGHUP: a second group appears.
    await waitFor(() => completed >= 40, { timeoutMs: 20_000, what: '40 requests done' });
    await writeFile(gw.configPath, toYaml({
      model_list: [...base, httpDeployment('chat-two', b.apiBase)],
    }));
    gw.proc.signal('SIGHUP');
    await waitFor(async () => (await modelIds(client)).includes('chat-two'),
      { timeoutMs: 5_000, what: 'chat-two in /v1/models after SIGHUP' });
    const completedAtSighup = completed;

    // Second reload by the admin API: change weights (traffic now also goes to b), add a third group.
    await waitFor(() => completed >= completedAtSighup + 30, { timeoutMs: 20_000, what: 'more requests' });
    await writeFile(gw.configPath, toYaml({
      model_list: [
        httpDeployment('chat', a.apiBase, { weight: 1 }),
        httpDeployment('chat', b.apiBase, { weight: 3 }),
        httpDeployment('chat-two', b.apiBase),
        httpDeployment('chat-three', a.apiBase),
      ],
    }));
    const reload = await gw.fetch('/admin/reload', { method: 'POST' });
    const reloadBody = await reload.text();
    assert.equal(reload.status, 200, reloadBody);
    assert.equal(JSON.parse(reloadBody).status, 'reloaded');
    stopAt = issued + kAfterReload;
  } catch (err) {
    aborted = true;  // stops the workers
    throw err;
  }
  await load;
  assert.equal(failures.length, 0,
    `${failures.length} of ${completed} requests failed, e.g.:\n${failures.slice(0, 5).join('\n')}`);
  assert.ok(completed >= kRequests, `${completed} requests`);
  assert.deepEqual(await modelIds(client), ['chat', 'chat-three', 'chat-two']);
  const res = await client.chat.completions.create({ model: 'chat-three', max_tokens: 2, messages: kMessages });
  assert.equal(words(res.choices[0].message.content).length, 2);
  assert.ok((await b.stats()).requests > 0, 'the reweighted group sends traffic to the new deployment');
});

e2eTest('bad config on reload: 400 from /admin/reload, the old config keeps serving', async (h) => {
  const a = await h.mockUpstream();
  const gw = await h.gateway({ model_list: [httpDeployment('chat', a.apiBase)] });
  const client = gw.client();

  await writeFile(gw.configPath, 'model_list:\n  - model_name: chat\n    litellm_params: {model: [unclosed\n');
  const reload = await gw.fetch('/admin/reload', { method: 'POST' });
  assert.equal(reload.status, 400);
  const body = await reload.json();
  assert.ok(body.error && typeof body.error.message === 'string' && body.error.message.length > 0,
    `an OpenAI error body with the validation error: ${JSON.stringify(body)}`);

  // A config that parses but is invalid (no model_list) is refused the same way.
  await writeFile(gw.configPath, 'router_settings:\n  num_retries: 1\n');
  const invalid = await gw.fetch('/admin/reload', { method: 'POST' });
  assert.equal(invalid.status, 400);
  await invalid.text();

  // SIGHUP with the bad file: the process survives and keeps the old config.
  gw.proc.signal('SIGHUP');
  await sleep(300);
  assert.ok(gw.proc.running, 'a bad config on SIGHUP does not stop the gateway');

  assert.deepEqual(await modelIds(client), ['chat']);
  const chunks = [];
  for await (const c of await client.chat.completions.create({
    model: 'chat', max_tokens: 2, stream: true, messages: kMessages,
  })) chunks.push(c);
  assert.equal(words(chatContent(chunks)).length, 2);
});

// Resolves with the connect error code, or 'connected' if a connection was accepted.
function tryConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (err) => resolve(err.code));
  });
}

e2eTest('graceful drain: SIGTERM lets a running stream finish, refuses new work, exits 0', async (h) => {
  const a = await h.mockUpstream();
  const gw = await h.gateway({ model_list: [httpDeployment('chat', a.apiBase)] });
  const kTokens = 20;
  const kChunkDelayMs = 100;

  // A keep-alive connection opened before the signal, to ask /ready during the drain.
  const early = await RawConnection.open(gw.port);
  const readyBefore = await early.request({ path: '/ready' });
  assert.equal(readyBefore?.status, 200);

  let firstChunkAt = 0;
  const streamDone = (async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'chat', max_tokens: kTokens, stream: true, messages: kMessages,
        mock: { chunk_delay_ms: kChunkDelayMs },
      }),
    });
    let text = '';
    const decoder = new TextDecoder();
    for await (const part of res.body) {
      if (!firstChunkAt) firstChunkAt = Date.now();
      text += decoder.decode(part, { stream: true });
    }
    return { status: res.status, text, endedAt: Date.now() };
  })();

  await waitFor(() => firstChunkAt, { timeoutMs: 5_000, what: 'the first chunk' });
  await sleep(150);
  gw.proc.signal('SIGTERM');
  const termAt = Date.now();
  await sleep(150);

  assert.ok(gw.proc.running, 'still running while the stream drains');
  const connect = await tryConnect(gw.port);
  assert.equal(connect, 'ECONNREFUSED', 'new connections are refused after SIGTERM');
  const readyDuring = await early.request({ path: '/ready' });
  // The server may close idle keep-alive connections when it drains; if it answers, it says 503.
  if (readyDuring !== null) assert.equal(readyDuring.status, 503, '/ready while draining');
  early.close();

  const stream = await streamDone;
  assert.equal(stream.status, 200);
  const parsed = parseSse(stream.text);
  assert.ok(parsed.done, `the stream ended with data: [DONE]:\n${stream.text}`);
  assert.equal(words(chatContent(parsed.events)).length, kTokens, 'every token arrived');
  assert.ok(stream.endedAt - termAt > 500, 'the stream was still running when SIGTERM came');

  const { code, signal } = await gw.proc.waitExit(10_000);
  assert.equal(signal, null);
  assert.equal(code, 0, 'exit code after a drain');
  const stats = await a.stats();
  assert.equal(stats.streams_completed, 1);
  assert.equal(stats.streams_cancelled, 0);
});
