// HTTPS upstreams: certificate verification against a throwaway CA (made with openssl at test
// time), nginx terminating TLS in front of an `ondol mock-upstream`.
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import { e2eTest } from './lib/harness.mjs';
import { httpDeployment } from './lib/config.mjs';
import { makeTestPki, startTlsProxy } from './lib/external.mjs';
import { chatContent, words } from './lib/sse.mjs';

const kMessages = [{ role: 'user', content: 'hello over tls' }];

async function chatWorks(client, model) {
  const res = await client.chat.completions.create({ model, messages: kMessages, max_tokens: 5 });
  assert.equal(words(res.choices[0].message.content).length, 5, `${model}: plain chat content`);
  assert.equal(res.choices[0].finish_reason, 'length', `${model}: max_tokens reached`);
  const chunks = [];
  for await (const c of await client.chat.completions.create({
    model, messages: kMessages, max_tokens: 4, stream: true,
  })) chunks.push(c);
  assert.equal(words(chatContent(chunks)).length, 4, `${model}: streamed chat content`);
}

e2eTest('HTTPS upstream: ssl_ca_file verifies, no CA fails with 502, ssl_verify false skips',
  { timeout: 45_000 }, async (h) => {
    const pki = await makeTestPki(h.dir);
    const up = await h.mockUpstream();
    const tls = await startTlsProxy(h, { upstreamPort: up.port, pki });
    const httpsBase = `https://127.0.0.1:${tls.port}/v1`;

    // Sanity: nginx really serves TLS with our CA (Node's fetch does not trust it, so a plain
    // https fetch must fail: the terminator is not accidentally trusted by the system store).
    await assert.rejects(fetch(`${httpsBase}/models`), 'the throwaway CA is not in the system store');

    const gw = await h.gateway({
      model_list: [
        httpDeployment('tls-ca', httpsBase, { ssl_ca_file: pki.caCert }),
        httpDeployment('tls-default', httpsBase),
        httpDeployment('tls-noverify', httpsBase, { ssl_verify: false }),
      ],
    });
    const client = gw.client();

    // (a) verified with the CA file: plain and streamed.
    const before = (await up.stats()).requests;
    await chatWorks(client, 'tls-ca');
    assert.equal((await up.stats()).requests, before + 2, 'both requests reached the upstream');

    // (b) the default (verify against the system store) refuses the unknown CA.
    const served = (await up.stats()).requests;
    for (const stream of [false, true]) {
      let err;
      try {
        const r = await client.chat.completions.create({
          model: 'tls-default', messages: kMessages, max_tokens: 3, stream,
        });
        if (stream) for await (const _ of r) { /* drain */ }
      } catch (e) {
        err = e;
      }
      assert.ok(err, `stream=${stream}: the request through an unverifiable upstream must fail`);
      assert.ok(err instanceof OpenAI.APIError, `stream=${stream}: ${err}`);
      assert.equal(err.status, 502, `stream=${stream}: 502, got ${err.status}: ${err.message}`);
      assert.match(err.message, /certificate|verif/i,
        `stream=${stream}: the message names the certificate failure: ${err.message}`);
    }
    assert.equal((await up.stats()).requests, served,
      'a request over an unverified TLS connection must never reach the upstream');

    // (c) ssl_verify: false accepts the certificate without the CA.
    const before2 = (await up.stats()).requests;
    await chatWorks(client, 'tls-noverify');
    assert.equal((await up.stats()).requests, before2 + 2);

    // The CA is trusted but the certificate does not name 127.0.0.2: the host name is checked.
    const gw3 = await h.gateway({
      model_list: [httpDeployment('tls-wrong-name', `https://127.0.0.2:${tls.port}/v1`,
        { ssl_ca_file: pki.caCert })],
    });
    const served3 = (await up.stats()).requests;
    const err3 = await gw3.client().chat.completions.create({
      model: 'tls-wrong-name', messages: kMessages, max_tokens: 3,
    }).then(() => null, (e) => e);
    assert.ok(err3, 'a certificate for 127.0.0.1/localhost must not be accepted for 127.0.0.2');
    assert.equal(err3.status, 502, `${err3}`);
    assert.match(err3.message, /certificate|verif|host|name/i, err3.message);
    assert.equal((await up.stats()).requests, served3, 'the wrong-name request was not served');

    // ssl_verify given a path works like ssl_ca_file (LiteLLM's form).
    const gw2 = await h.gateway({
      model_list: [httpDeployment('tls-path', httpsBase, { ssl_verify: pki.caCert })],
    });
    await chatWorks(gw2.client(), 'tls-path');
    assert.ok(tls.proc.running, 'nginx still running');
  });
