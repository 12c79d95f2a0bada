// Failures before the first byte: fallbacks to another group, retries on another deployment,
// cooldown of a failing deployment.
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import { closedPort, e2eTest, sleep } from './lib/harness.mjs';
import { deadApiBase, httpDeployment } from './lib/config.mjs';
import { chatContent, words } from './lib/sse.mjs';

const kMessages = [{ role: 'user', content: 'are you there' }];

async function streamWords(client, params) {
  const chunks = [];
  for await (const c of await client.chat.completions.create({ ...params, stream: true })) {
    chunks.push(c);
  }
  return words(chatContent(chunks)).length;
}

async function startFallbackGateway(h) {
  const live = await h.mockUpstream();
  const gw = await h.gateway({
    model_list: [
      httpDeployment('primary', deadApiBase(await closedPort())),
      httpDeployment('backup', live.apiBase),
    ],
    router_settings: { fallbacks: [{ primary: ['backup'] }] },
  });
  return { gw, live, client: gw.client() };
}

e2eTest('fallback group takes over when the only deployment is down (stream)', async (h) => {
  const { live, client } = await startFallbackGateway(h);
  for (let i = 0; i < 3; i += 1) {
    assert.equal(await streamWords(client, { model: 'primary', max_tokens: 4, messages: kMessages }), 4);
  }
  const stats = await live.stats();
  assert.equal(stats.requests, 3, 'each request reached the backup group once');
  assert.equal(stats.streams_completed, 3);
});

e2eTest('fallback group takes over when the only deployment is down (non-stream)', async (h) => {
  const { live, client } = await startFallbackGateway(h);
  for (let i = 0; i < 3; i += 1) {
    const res = await client.chat.completions.create({ model: 'primary', max_tokens: 4, messages: kMessages });
    assert.equal(words(res.choices[0].message.content).length, 4);
  }
  assert.equal((await live.stats()).requests, 3);
});

e2eTest('without retries or fallbacks a dead deployment is a 502', async (h) => {
  const gw = await h.gateway({ model_list: [httpDeployment('only', deadApiBase(await closedPort()))] });
  const client = gw.client();
  for (const stream of [false, true]) {
    await assert.rejects(
      client.chat.completions.create({ model: 'only', messages: kMessages, stream }),
      (err) => {
        assert.ok(err instanceof OpenAI.APIError, `got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, 502, `stream=${stream}`);
        return true;
      });
  }
});

// One dead and one live deployment in a group; num_retries 1 must hide the dead one from clients
// whichever the router picks first.
async function startRetryGateway(h) {
  const live = await h.mockUpstream();
  const gw = await h.gateway({
    model_list: [
      httpDeployment('pair', deadApiBase(await closedPort())),
      httpDeployment('pair', live.apiBase),
    ],
    // A long cooldown threshold keeps the dead deployment in rotation: the retry is what is tested.
    router_settings: { num_retries: 1, allowed_fails: 1000, cooldown_time: 1 },
  });
  return { gw, live, client: gw.client() };
}

e2eTest('retries: a group with one dead and one live deployment always answers (stream)', async (h) => {
  const { live, client } = await startRetryGateway(h);
  const kRequests = 20;
  for (let i = 0; i < kRequests; i += 1) {
    assert.equal(await streamWords(client, { model: 'pair', max_tokens: 2, messages: kMessages }), 2);
  }
  assert.equal((await live.stats()).streams_completed, kRequests);
});

e2eTest('retries: a group with one dead and one live deployment always answers (non-stream)', async (h) => {
  const { live, client } = await startRetryGateway(h);
  const kRequests = 20;
  for (let i = 0; i < kRequests; i += 1) {
    const res = await client.chat.completions.create({ model: 'pair', max_tokens: 2, messages: kMessages });
    assert.equal(words(res.choices[0].message.content).length, 2);
  }
  assert.equal((await live.stats()).requests, kRequests);
});

e2eTest('cooldown: a deployment answering 500 stops receiving requests for cooldown_time', async (h) => {
  const kAllowedFails = 2;
  const kCooldownSeconds = 5;
  const healthy = await h.mockUpstream();
  const failing = await h.mockUpstream({ failStatus: 500 });
  const gw = await h.gateway({
    model_list: [
      httpDeployment('group', healthy.apiBase),
      httpDeployment('group', failing.apiBase),
    ],
    router_settings: {
      num_retries: 1, allowed_fails: kAllowedFails, cooldown_time: kCooldownSeconds,
    },
  });
  const client = gw.client();
  const ask = () => streamWords(client, { model: 'group', max_tokens: 2, messages: kMessages });

  // Sequential requests: the failing deployment is picked about half the time until it cools down.
  const started = Date.now();
  for (let i = 0; i < 20; i += 1) assert.equal(await ask(), 2, 'every request succeeds (retry)');
  const failedBefore = (await failing.stats()).requests;
  assert.ok(failedBefore >= kAllowedFails,
    `the failing deployment was tried at least allowed_fails times (${failedBefore})`);
  assert.ok(failedBefore <= kAllowedFails + 1,
    `it cooled down after allowed_fails failures, not later (${failedBefore} requests)`);

  // Within the cooldown it receives nothing.
  for (let i = 0; i < 20; i += 1) assert.equal(await ask(), 2);
  assert.ok(Date.now() - started < kCooldownSeconds * 1000 - 500,
    'the check ran inside the cooldown window (machine too slow?)');
  assert.equal((await failing.stats()).requests, failedBefore, 'no request during the cooldown');

  // After it (it began at the last failure, some time after `started`), the deployment is
  // tried again.
  await sleep(Math.max(0, kCooldownSeconds * 1000 - (Date.now() - started)));
  const deadline = started + kCooldownSeconds * 1000 + 3000;
  while ((await failing.stats()).requests === failedBefore && Date.now() < deadline) {
    assert.equal(await ask(), 2);
    await sleep(50);
  }
  assert.ok((await failing.stats()).requests > failedBefore, 'tried again after cooldown_time');
});
