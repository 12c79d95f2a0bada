// Logs: JSON lines with the documented fields, one access line per proxied request, and no
// secret (master key, upstream api_key) anywhere in ondol's output.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import OpenAI from 'openai';

import { e2eTest } from './lib/harness.mjs';
import { httpDeployment } from './lib/config.mjs';

const kMessages = [{ role: 'user', content: 'log this request' }];

function secret(prefix) { return `${prefix}-${randomBytes(12).toString('hex')}`; }

// stdout as parsed log lines; the `ONDOL_LISTENING port=N` marker for scripts is the one line
// that is not JSON.
function parseLogLines(stdout) {
  const records = [];
  const lines = stdout.split('\n').filter((l) => l !== '');
  for (const line of lines) {
    if (/^ONDOL_LISTENING port=\d+$/.test(line)) continue;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      assert.fail(`stdout line is not JSON: ${line}`);
    }
    assert.equal(typeof rec, 'object', line);
    assert.equal(typeof rec.ts, 'string', `ts in ${line}`);
    assert.ok(!Number.isNaN(Date.parse(rec.ts)), `ts is a timestamp in ${line}`);
    assert.ok(['trace', 'debug', 'info', 'warn', 'warning', 'error', 'critical'].includes(rec.level),
      `level in ${line}`);
    assert.equal(typeof rec.component, 'string', `component in ${line}`);
    assert.equal(typeof rec.msg, 'string', `msg in ${line}`);
    records.push(rec);
  }
  return records;
}

function accessLine(records, requestId) {
  const found = records.filter((r) => r.component === 'access' && r.request_id === requestId);
  assert.equal(found.length, 1,
    `one access line for request ${requestId}, got ${found.length}:\n` +
    records.filter((r) => r.component === 'access').map((r) => JSON.stringify(r)).join('\n'));
  const rec = found[0];
  for (const key of ['request_id', 'method', 'path', 'status', 'model', 'latency_ms']) {
    assert.ok(key in rec, `access line has ${key}: ${JSON.stringify(rec)}`);
  }
  assert.equal(typeof rec.status, 'number', JSON.stringify(rec));
  assert.equal(typeof rec.latency_ms, 'number', JSON.stringify(rec));
  assert.ok(rec.latency_ms >= 0, JSON.stringify(rec));
  return rec;
}

async function startLogged(h, extraArgs = []) {
  const masterKey = secret('sk-master');
  const upstreamKey = secret('sk-upstream');
  const up = await h.mockUpstream();
  const gw = await h.gateway({
    model_list: [httpDeployment('chat', up.apiBase, { api_key: upstreamKey })],
    general_settings: { master_key: masterKey },
  }, { extraArgs: ['--log-format', 'json', ...extraArgs] });
  return { gw, up, masterKey, upstreamKey, client: gw.client({ apiKey: masterKey }) };
}

e2eTest('no secret in the logs; stdout is JSON lines; access lines carry the request fields',
  async (h) => {
    const { gw, up, masterKey, upstreamKey, client } =
      await startLogged(h, ['--log-level', 'debug']);
    const ids = { plain: 'e2e-log-plain-1', stream: 'e2e-log-stream-1', emb: 'e2e-log-emb-1' };

    const res = await client.chat.completions.create(
      { model: 'chat', messages: kMessages, max_tokens: 3 },
      { headers: { 'X-Request-ID': ids.plain } });
    assert.equal(res.choices.length, 1);
    for await (const _ of await client.chat.completions.create(
      { model: 'chat', messages: kMessages, max_tokens: 3, stream: true },
      { headers: { 'X-Request-ID': ids.stream } })) { /* drain */ }
    await client.embeddings.create({ model: 'chat', input: 'embed me' },
      { headers: { 'X-Request-ID': ids.emb } });
    // A wrong key, the master key sent to other endpoints, and a reload: more places a key could
    // leak into a log line.
    await assert.rejects(gw.client({ apiKey: 'sk-wrong-key' }).models.list(),
      OpenAI.AuthenticationError);
    await client.models.list();
    const reload = await gw.fetch('/admin/reload', {
      method: 'POST', headers: { Authorization: `Bearer ${masterKey}` },
    });
    assert.equal(reload.status, 200, await reload.text());
    assert.equal((await up.stats()).requests, 3);

    await gw.proc.stop();  // flushes and completes the output
    const { stdout, stderr } = gw.proc;
    for (const [name, key] of [['master key', masterKey], ['upstream api_key', upstreamKey]]) {
      assert.ok(!stdout.includes(key), `the ${name} appears on stdout`);
      assert.ok(!stderr.includes(key), `the ${name} appears on stderr`);
      // Nor a recognisable part of it (a prefix or suffix cut to "sk-ab...cd" style hints).
      const body = key.slice(key.lastIndexOf('-') + 1);
      assert.ok(!gw.proc.output.includes(body.slice(0, 12)), `part of the ${name} appears`);
      assert.ok(!gw.proc.output.includes(body.slice(-12)), `part of the ${name} appears`);
    }

    const records = parseLogLines(stdout);
    assert.ok(records.some((r) => r.msg === 'listening'), 'a listening line');
    const plain = accessLine(records, ids.plain);
    assert.equal(plain.method, 'POST');
    assert.equal(plain.path, '/v1/chat/completions');
    assert.equal(plain.status, 200);
    assert.equal(plain.model, 'chat');
    const stream = accessLine(records, ids.stream);
    assert.equal(stream.status, 200);
    assert.equal(stream.model, 'chat');
    assert.equal(stream.path, '/v1/chat/completions');
    const emb = accessLine(records, ids.emb);
    assert.equal(emb.path, '/v1/embeddings');
    assert.equal(emb.status, 200);
    assert.equal(emb.model, 'chat');
  });

e2eTest('failed proxied requests get an access line too (404 unknown model, 502 upstream)',
  async (h) => {
    const masterKey = secret('sk-master');
    const failing = await h.mockUpstream({ failStatus: 500 });
    const gw = await h.gateway({
      model_list: [httpDeployment('broken', failing.apiBase)],
      general_settings: { master_key: masterKey },
    });
    const client = gw.client({ apiKey: masterKey });
    await assert.rejects(client.chat.completions.create(
      { model: 'no-such-model', messages: kMessages }, { headers: { 'X-Request-ID': 'e2e-log-404' } }),
    OpenAI.NotFoundError);
    await assert.rejects(client.chat.completions.create(
      { model: 'broken', messages: kMessages }, { headers: { 'X-Request-ID': 'e2e-log-502' } }),
    (err) => err instanceof OpenAI.APIError && err.status === 502);
    await gw.proc.stop();
    const records = parseLogLines(gw.proc.stdout);
    const nf = accessLine(records, 'e2e-log-404');
    assert.equal(nf.status, 404);
    assert.equal(nf.method, 'POST');
    assert.equal(nf.path, '/v1/chat/completions');
    assert.equal(nf.model, 'no-such-model');
    const bad = accessLine(records, 'e2e-log-502');
    assert.equal(bad.status, 502);
    assert.equal(bad.model, 'broken');
    assert.ok(!gw.proc.output.includes(masterKey), 'the master key appears in the output');
  });

e2eTest('body logging: off by default; sampled, with credentials and optionally content redacted',
  async (h) => {
    const leaked = secret('sk-pasted');  // a key a user pasted into a prompt
    const prompt = `please keep ${leaked} safe`;
    const run = async (extraArgs, id) => {
      const { gw, masterKey, client } = await startLogged(h, extraArgs);
      await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: prompt }],
        max_tokens: 3 }, { headers: { 'X-Request-ID': `${id}-plain` } });
      for await (const _ of await client.chat.completions.create({ model: 'chat',
        messages: [{ role: 'user', content: prompt }], max_tokens: 3, stream: true },
      { headers: { 'X-Request-ID': `${id}-stream` } })) { /* drain */ }
      await gw.proc.stop();
      const out = gw.proc.output;
      assert.ok(!out.includes(leaked.slice(3)), 'a key-shaped string reached the log');
      assert.ok(!out.includes(masterKey.slice(3)), 'the master key reached the log');
      return parseLogLines(gw.proc.stdout).filter((r) => r.component === 'body');
    };

    assert.deepEqual(await run([], 'e2e-body-off'), []);

    const logged = await run(['--log-sample-rate', '1'], 'e2e-body-on');
    assert.equal(logged.length, 2, JSON.stringify(logged));
    const plain = logged.find((r) => r.request_id === 'e2e-body-on-plain');
    assert.match(plain.request_body, /please keep sk-\[REDACTED\] safe/);
    assert.equal(JSON.parse(plain.response_body).object, 'chat.completion');
    assert.equal(plain.status, 200);
    const stream = logged.find((r) => r.request_id === 'e2e-body-on-stream');
    assert.match(stream.response_body, /^data: \{.*chat\.completion\.chunk/);
    assert.match(stream.response_body, /data: \[DONE\]/);

    const blank = await run(['--log-sample-rate', '1', '--log-redact-content'], 'e2e-body-blank');
    assert.equal(blank.length, 2);
    for (const r of blank) {
      assert.ok(!r.request_body.includes('please keep'), r.request_body);
      assert.match(r.request_body, /\[REDACTED \d+ chars\]/);
    }
    const reply = JSON.parse(blank.find((r) => r.request_id === 'e2e-body-blank-plain').response_body);
    assert.match(reply.choices[0].message.content, /^\[REDACTED \d+ chars\]$/);
  });
