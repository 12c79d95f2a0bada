// Binding a non-loopback address needs a master key (gateway.md, "Command line").
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import { e2eTest } from './lib/harness.mjs';
import { httpDeployment } from './lib/config.mjs';

const kNoKeyEnv = { ONDOL_MASTER_KEY: undefined, LITELLM_MASTER_KEY: undefined };

function serveArgs(configPath, ...more) {
  return ['serve', '--host', '0.0.0.0', '--port', '0', '--io-threads', '1', '--config', configPath,
    ...more];
}

e2eTest('serve --host 0.0.0.0 without a master key exits non-zero naming master_key',
  async (h) => {
    const up = await h.mockUpstream();
    const configPath = await h.writeConfig({ model_list: [httpDeployment('chat', up.apiBase)] });
    const p = h.spawn('gateway-0.0.0.0', serveArgs(configPath), { env: kNoKeyEnv });
    const { code, signal } = await p.waitExit(10_000);
    assert.equal(signal, null, `exited by itself, not by ${signal}`);
    assert.notEqual(code, 0, 'a non-zero exit status');
    assert.match(p.output, /master_key/, 'the message names master_key');
    assert.match(p.output, /--master-key|ONDOL_MASTER_KEY/, 'and says how to set one');
    assert.doesNotMatch(p.output, /ONDOL_LISTENING/, 'it never listened');
  });

e2eTest('serve --host 0.0.0.0 starts with --master-key, general_settings.master_key or ONDOL_MASTER_KEY',
  async (h) => {
    const up = await h.mockUpstream();
    const plain = await h.writeConfig({ model_list: [httpDeployment('chat', up.apiBase)] });
    const withKey = await h.writeConfig({
      model_list: [httpDeployment('chat', up.apiBase)],
      general_settings: { master_key: 'sk-bind-config' },
    }, 'keyed.yaml');
    const cases = [
      ['--master-key', serveArgs(plain, '--master-key', 'sk-bind-flag'), kNoKeyEnv, 'sk-bind-flag'],
      ['general_settings.master_key', serveArgs(withKey), kNoKeyEnv, 'sk-bind-config'],
      ['ONDOL_MASTER_KEY', serveArgs(plain), { ...kNoKeyEnv, ONDOL_MASTER_KEY: 'sk-bind-env' }, 'sk-bind-env'],
    ];
    for (const [what, args, env, key] of cases) {
      const p = h.spawn(`gateway-0.0.0.0 (${what})`, args, { env });
      const port = await p.waitListening();
      const baseURL = `http://127.0.0.1:${port}/v1`;
      const client = new OpenAI({ baseURL, apiKey: key, maxRetries: 0, timeout: 10_000 });
      const res = await client.chat.completions.create({
        model: 'chat', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }],
      });
      assert.equal(res.choices.length, 1, what);
      // The key is enforced on the wildcard bind.
      const anon = new OpenAI({ baseURL, apiKey: 'sk-not-the-key', maxRetries: 0, timeout: 10_000 });
      await assert.rejects(anon.models.list(), OpenAI.AuthenticationError, what);
      await p.stop();
      assert.equal(p.exitCode, 0, `${what}: clean exit on SIGTERM`);
    }
  });
