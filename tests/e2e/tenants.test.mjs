// Virtual keys, users, teams and the spend log (docs/tenants.md): SQLite by default, PostgreSQL
// (a real server started by tests/lib/postgres.sh) shared by two instances.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import OpenAI from 'openai';

import { closedPort, e2eTest, sleep, waitFor } from './lib/harness.mjs';
import { mockDeployment } from './lib/config.mjs';

const run = promisify(execFile);
const kPostgresScript = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
  '../lib/postgres.sh');
const kMaster = 'sk-master-e2e';
const kMessages = [{ role: 'user', content: 'one two three' }];  // 3 prompt tokens (mock)

function config({ settings = {}, outputTokens = 4 } = {}) {
  const priced = mockDeployment('priced', { mock_output_tokens: outputTokens });
  priced.model_info = { input_cost_per_token: 0.001, output_cost_per_token: 0.01 };
  return {
    model_list: [priced, mockDeployment('other')],
    general_settings: {
      master_key: kMaster,
      tiers: { free: { rpm: 10, tpm: 1000, tpd: 10000 } },
      ...settings,
    },
  };
}

async function admin(gw, method, pathname, body) {
  const res = await gw.fetch(pathname, {
    method,
    headers: { authorization: `Bearer ${kMaster}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function generate(gw, fields = {}) {
  const r = await admin(gw, 'POST', '/key/generate', fields);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.match(r.body.key, /^sk-[A-Za-z0-9_-]{43}$/);
  return r.body.key;
}

function client(gw, key) {
  return new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0, timeout: 20_000 });
}

async function chat(gw, key, model = 'priced') {
  return client(gw, key).chat.completions.create({ model, messages: kMessages });
}

async function status(promise) {
  try {
    await promise;
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err.status;
    throw err;
  }
}

e2eTest('a generated key calls the API; restrictions, block, update and expiry apply at once',
  async (h) => {
    // A long cache TTL: every change below must take effect through invalidation, not expiry.
    const gw = await h.gateway(config({ settings: { user_api_key_cache_ttl: 600 } }));
    const key = await generate(gw, { models: ['priced'], key_alias: 'e2e', tier: 'free',
                                     metadata: { owner: 'tests' } });
    const reply = await chat(gw, key);
    assert.equal(reply.usage.prompt_tokens, 3);

    assert.equal(await status(chat(gw, key, 'other')), 401, 'model restriction');
    assert.equal(await status(chat(gw, 'sk-not-a-key')), 401, 'unknown key');
    const denied = await gw.fetch('/key/generate', {
      method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{}' });
    assert.equal(denied.status, 403, 'a virtual key cannot manage keys');
    assert.equal((await denied.json()).error.type, 'permission_error');

    assert.equal((await admin(gw, 'POST', '/key/block', { key })).status, 200);
    const blocked = await gw.fetch('/v1/chat/completions', {
      method: 'POST', headers: { authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'priced', messages: kMessages }) });
    assert.equal(blocked.status, 403);
    assert.equal((await blocked.json()).error.code, 'key_blocked');
    assert.equal((await admin(gw, 'POST', '/key/unblock', { key })).status, 200);
    assert.equal(await status(chat(gw, key)), 200, 'unblocked');

    const updated = await admin(gw, 'POST', '/key/update', { key, models: ['other'] });
    assert.equal(updated.status, 200);
    assert.deepEqual(updated.body.info.models, ['other']);
    assert.equal(await status(chat(gw, key, 'other')), 200, 'update applies at once');
    assert.equal(await status(chat(gw, key, 'priced')), 401);

    const info = await admin(gw, 'GET', `/key/info?key=${encodeURIComponent(key)}`);
    assert.equal(info.status, 200);
    assert.equal(info.body.info.key_alias, 'e2e');
    assert.equal(info.body.info.tier, 'free');
    assert.deepEqual(info.body.info.metadata, { owner: 'tests' });
    assert.equal(info.body.info.key_name, `sk-...${key.slice(-4)}`);

    // A virtual key may read its own /key/info (as LiteLLM), with or without `key`, and no other.
    const asKey = (pathname) => gw.fetch(pathname, { headers: { authorization: `Bearer ${key}` } });
    for (const pathname of ['/key/info', `/key/info?key=${encodeURIComponent(key)}`,
                            `/key/info?key=${info.body.info.token}`]) {
      const own = await asKey(pathname);
      assert.equal(own.status, 200, pathname);
      assert.equal((await own.json()).info.key_alias, 'e2e', pathname);
    }
    const other = await generate(gw, { key_alias: 'other' });
    const foreign = await asKey(`/key/info?key=${encodeURIComponent(other)}`);
    assert.equal(foreign.status, 403, "another key's info");
    assert.equal((await foreign.json()).error.type, 'permission_error');
    assert.equal((await asKey('/key/list')).status, 403, 'listing keys needs the master key');

    const list = await admin(gw, 'GET', '/key/list');
    assert.ok(list.body.keys.includes(info.body.info.token), JSON.stringify(list.body));
    assert.ok(!JSON.stringify(list.body).includes(key), 'keys are never listed in clear');

    const short = await generate(gw, { duration: '1s' });
    assert.equal(await status(chat(gw, short)), 200);
    await sleep(1200);
    const expired = await gw.fetch('/v1/chat/completions', {
      method: 'POST', headers: { authorization: `Bearer ${short}` },
      body: JSON.stringify({ model: 'priced', messages: kMessages }) });
    assert.equal(expired.status, 401);
    assert.equal((await expired.json()).error.code, 'key_expired');

    const deleted = await admin(gw, 'POST', '/key/delete', { keys: [key] });
    assert.equal(deleted.status, 200);
    assert.equal(await status(chat(gw, key, 'other')), 401, 'deleted');
  });

e2eTest('spend from per-model prices appears in /key/info and /spend/logs', async (h) => {
  const gw = await h.gateway(config());
  const team = await admin(gw, 'POST', '/team/new', { team_id: 'team-a', models: ['priced'] });
  assert.equal(team.status, 200, JSON.stringify(team.body));
  const user = await admin(gw, 'POST', '/user/new', { user_id: 'ann', team_id: 'team-a',
                                                      tier: 'free', tpm_limit: 500 });
  assert.equal(user.status, 200, JSON.stringify(user.body));
  const key = user.body.key;
  assert.equal(await status(chat(gw, key, 'other')), 401, "the team's models apply");
  for (let i = 0; i < 3; ++i) await chat(gw, key);
  const expected = 3 * (3 * 0.001 + 4 * 0.01);
  await waitFor(async () => {
    const info = await admin(gw, 'GET', `/key/info?key=${key}`);
    return Math.abs(info.body.info.spend - expected) < 1e-9;
  }, { what: 'spend in /key/info' });
  const logs = await admin(gw, 'GET', '/spend/logs?user_id=ann');
  assert.equal(logs.status, 200);
  assert.equal(logs.body.length, 3);
  for (const r of logs.body) {
    assert.equal(r.model, 'priced');
    assert.equal(r.team_id, 'team-a');
    assert.equal(r.prompt_tokens, 3);
    assert.equal(r.completion_tokens, 4);
    assert.equal(r.status, 200);
    assert.ok(Math.abs(r.spend - 0.043) < 1e-9);
    assert.match(r.request_id, /^[0-9a-f]{32}$/);
  }
  const userInfo = await admin(gw, 'GET', '/user/info?user_id=ann');
  assert.ok(Math.abs(userInfo.body.user_info.spend - expected) < 1e-9);
  const teamInfo = await admin(gw, 'GET', '/team/info?team_id=team-a');
  assert.ok(Math.abs(teamInfo.body.team_info.spend - expected) < 1e-9);

  // The tenant store in /metrics: up, key lookups by cache result, spend records written.
  const text = await (await gw.fetch('/metrics')).text();
  const sample = (series) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    assert.ok(line, `${series} in /metrics`);
    return Number(line.split(' ')[1]);
  };
  assert.equal(sample('ondol_tenant_db_up'), 1);
  assert.ok(sample('ondol_key_cache_lookups_total{result="miss"}') >= 1, 'the first lookup');
  assert.ok(sample('ondol_key_cache_lookups_total{result="hit"}') >= 2, 'later ones from cache');
  assert.equal(sample('ondol_spend_log_records_total{outcome="written"}'), 3);
  assert.equal(sample('ondol_spend_log_records_total{outcome="dropped"}'), 0);
});

e2eTest('/user/update and /team/update, /team/block, /team/unblock apply to keys at once',
  async (h) => {
    const gw = await h.gateway(config({ settings: { user_api_key_cache_ttl: 600 } }));
    assert.equal((await admin(gw, 'POST', '/team/new', { team_id: 't-upd' })).status, 200);
    const user = await admin(gw, 'POST', '/user/new', { user_id: 'u-upd', team_id: 't-upd',
                                                        rpm_limit: 100 });
    assert.equal(user.status, 200, JSON.stringify(user.body));
    const key = user.body.key;
    assert.equal(await status(chat(gw, key)), 200);

    const tighter = await admin(gw, 'POST', '/user/update', { user_id: 'u-upd', rpm_limit: 1 });
    assert.equal(tighter.status, 200, JSON.stringify(tighter.body));
    assert.equal(tighter.body.user_info.rpm_limit, 1);
    assert.equal(await status(chat(gw, key)), 429, "the user's new rpm applies at once");
    assert.equal((await admin(gw, 'POST', '/user/update', { user_id: 'u-upd', rpm_limit: 1000 }))
      .status, 200);
    assert.equal(await status(chat(gw, key)), 200);

    assert.equal((await admin(gw, 'POST', '/team/block', { team_id: 't-upd' })).status, 200);
    assert.equal(await status(chat(gw, key)), 403, 'a blocked team blocks its keys');
    const unblocked = await admin(gw, 'POST', '/team/unblock', { team_id: 't-upd' });
    assert.equal(unblocked.status, 200);
    assert.equal(unblocked.body.blocked, false);
    assert.equal(await status(chat(gw, key)), 200);

    const models = await admin(gw, 'POST', '/team/update', { team_id: 't-upd', models: ['other'],
                                                            team_alias: 'renamed' });
    assert.equal(models.status, 200);
    assert.equal(models.body.team_alias, 'renamed');
    assert.equal(await status(chat(gw, key, 'priced')), 401, "the team's models apply");
    assert.equal(await status(chat(gw, key, 'other')), 200);

    assert.equal((await admin(gw, 'POST', '/user/update', { user_id: 'nobody' })).status, 404);
    assert.equal((await admin(gw, 'POST', '/user/update', { rpm_limit: 1 })).status, 400);
    assert.equal((await admin(gw, 'POST', '/user/update',
      { user_id: 'u-upd', team_id: 'no-such-team' })).status, 400);
    assert.equal((await admin(gw, 'POST', '/team/update', { team_id: 'nope' })).status, 404);
  });

async function startPostgres(h) {
  const dir = path.join(h.dir, 'pg');
  const port = await closedPort();
  const { stdout } = await run(kPostgresScript, ['start', dir, String(port)]);
  return {
    url: stdout.trim(),
    stop: () => run(kPostgresScript, ['stop', dir]),
    start: () => run(kPostgresScript, ['start', dir, String(port)]),
  };
}

e2eTest('a key over its max_budget is refused with 400 budget_exceeded; the master key is not',
  async (h) => {
    // One request costs 3 * 0.001 + 4 * 0.01 = 0.043: the first fits a 0.05 budget, and after it
    // the key has spent 0.043 of 0.05; the second brings it to 0.086, so the third is refused.
    const gw = await h.gateway(config({ settings: { user_api_key_cache_ttl: 0.1 } }));
    const key = await generate(gw, { max_budget: 0.05, budget_duration: '30d' });
    const spent = async (n) => waitFor(async () => {
      const info = await admin(gw, 'GET', `/key/info?key=${key}`);
      return Math.abs(info.body.info.spend - n * 0.043) < 1e-9;
    }, { what: `spend of ${n} requests` });
    assert.equal(await status(chat(gw, key)), 200);
    await spent(1);
    await sleep(150);  // past the key cache's TTL: the next lookup sees the spend
    assert.equal(await status(chat(gw, key)), 200);
    await spent(2);
    await sleep(150);
    const refused = await client(gw, key).chat.completions.create({ model: 'priced', messages: kMessages })
      .then(() => null, (err) => err);
    assert.ok(refused instanceof OpenAI.BadRequestError, String(refused));
    assert.equal(refused.error.type, 'budget_exceeded');
    assert.match(refused.message, /Budget has been exceeded! key current cost: 0\.086/);
    await spent(2);  // the refused request spent nothing
    assert.equal(await status(chat(gw, kMaster)), 200);
  });

e2eTest('PostgreSQL: two instances share keys at once; a restart mid-load loses no spend record',
  { timeout: 120_000 }, async (h) => {
    // Stopped here, not in an after hook: the harness removes its directory first.
    const pg = await startPostgres(h);
    try {
      await postgresScenario(h, pg);
    } finally {
      await h.stopAll();
      await pg.stop();
    }
  });

async function postgresScenario(h, pg) {
  {
    const settings = { database_url: pg.url, user_api_key_cache_ttl: 0.2 };
    const a = await h.gateway(config({ settings }));
    const b = await h.gateway(config({ settings }));
    const key = await generate(a, { models: ['priced'] });
    assert.equal(await status(chat(b, key)), 200, 'a key generated on one instance works on another');

    // A key blocked on one instance is refused by the other within about a second, however long
    // that one caches keys: it polls the store's change generation.
    {
      const settings = { database_url: pg.url, user_api_key_cache_ttl: 600 };
      const c = await h.gateway(config({ settings }));
      const d = await h.gateway(config({ settings }));
      const shared = await generate(c, { models: ['priced'] });
      assert.equal(await status(chat(d, shared)), 200);
      assert.equal((await admin(c, 'POST', '/key/block', { key: shared })).status, 200);
      const started = Date.now();
      await waitFor(async () => (await status(chat(d, shared))) === 403,
        { what: 'the other instance refuses the blocked key', timeoutMs: 5000 });
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    }

    // Load on both instances while PostgreSQL restarts.
    let sent = 1;
    let failed = 0;
    let stop = false;
    const load = async (gw) => {
      while (!stop) {
        const s = await status(chat(gw, key));
        sent += 1;
        if (s !== 200) failed += 1;
      }
    };
    const loops = [load(a), load(b), load(a), load(b)];
    await sleep(300);
    await pg.stop();
    const health = await admin(a, 'GET', '/health');
    assert.equal(health.status, 200);
    await sleep(1000);
    const during = await admin(b, 'GET', '/health');
    assert.equal(during.body.db, 'disconnected');
    const metrics = await (await b.fetch('/metrics')).text();
    assert.match(metrics, /^ondol_tenant_db_up 0$/m, 'the outage shows in /metrics');
    await pg.start();
    await sleep(500);
    stop = true;
    await Promise.all(loops);
    assert.equal(failed, 0, 'requests with a key already seen keep working during the outage');

    await waitFor(async () => {
      const logs = await admin(a, 'GET', `/spend/logs?api_key=${key}&limit=100000`);
      return logs.status === 200 && logs.body.length === sent;
    }, { timeoutMs: 20_000, intervalMs: 200, what: `${sent} spend records` });
    const info = await admin(b, 'GET', `/key/info?key=${key}`);
    assert.ok(Math.abs(info.body.info.spend - sent * 0.043) < 1e-6, JSON.stringify(info.body));
    // Back to connected once each part has talked to the new server again (the spend log may
    // still be waiting out its retry backoff, up to 5 s, when the last record lands).
    await waitFor(async () => (await admin(b, 'GET', '/health')).body.db === 'connected',
      { timeoutMs: 10_000, intervalMs: 200, what: '/health on b: db connected' });
  }
}
