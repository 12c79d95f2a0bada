// The command line around the server: `ondol check` and `ondol --version`.
import assert from 'node:assert/strict';

import { e2eTest } from './lib/harness.mjs';
import { httpDeployment } from './lib/config.mjs';

async function run(h, args) {
  const p = h.spawn(`ondol ${args[0]}`, args);
  const { code, signal } = await p.waitExit(10_000);
  return { code, signal, output: p.output };
}

e2eTest('ondol check: valid config prints the routing table without secrets, exit 0', async (h) => {
  const secret = 'sk-e2e-do-not-print-9f3a';
  const configPath = await h.writeConfig({
    model_list: [
      httpDeployment('chat-small', 'http://127.0.0.1:9/v1', { api_key: secret, weight: 9 }),
      httpDeployment('chat-small', 'http://127.0.0.1:10/v1', { weight: 1 }),
      httpDeployment('chat-backup', 'http://127.0.0.1:11/v1', { provider: 'hosted_vllm' }),
    ],
    router_settings: { num_retries: 2, fallbacks: [{ 'chat-small': ['chat-backup'] }] },
    general_settings: { master_key: 'sk-e2e-master-not-printed-either' },
  });
  const { code, output } = await run(h, ['check', '--config', configPath]);
  assert.equal(code, 0, output);
  for (const expected of ['chat-small', 'chat-backup', 'http://127.0.0.1:9/v1', 'http://127.0.0.1:11/v1']) {
    assert.ok(output.includes(expected), `'${expected}' in:\n${output}`);
  }
  assert.ok(!output.includes(secret), `the api_key is not printed:\n${output}`);
  assert.ok(!output.includes('sk-e2e-master-not-printed-either'), 'the master key is not printed');
});

e2eTest('ondol check: invalid config exits 1 naming the file and line', async (h) => {
  const configPath = await h.writeConfig(
    'model_list:\n  - model_name: chat\n    litellm_params:\n      model: openai/x\n      timeout: abc\n',
    'bad.yaml');
  const { code, output } = await run(h, ['check', '--config', configPath]);
  assert.equal(code, 1, output);
  assert.match(output, /bad\.yaml:\d+/, `the message names file:line:\n${output}`);

  const syntax = await h.writeConfig('model_list: [\n', 'syntax.yaml');
  const r = await run(h, ['check', '--config', syntax]);
  assert.equal(r.code, 1, r.output);
});

e2eTest('ondol --version', async (h) => {
  const { code, output } = await run(h, ['--version']);
  assert.equal(code, 0);
  assert.match(output, /^ondol \d+\.\d+\.\d+/m);
});
