// A real Prometheus scrapes `ondol serve --model stories260K.gguf` under a short load, and every
// PromQL expression of vLLM's example Grafana dashboard (read from ../shared, not copied) must
// return data: the engine's metrics carry vLLM's names, labels and bucket boundaries.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Gateway, e2eTest, waitFor } from './lib/harness.mjs';
import { startPrometheus } from './lib/external.mjs';
import { dashboardExprs, substituteGrafanaVariables } from './lib/dashboard.mjs';

const kRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const kShared = process.env.ONDOL_SHARED_DIR ?? path.resolve(kRepo, '../shared');
const kModel = path.join(kShared, 'models/stories260K.gguf');
const kDashboard = path.join(kShared, 'dashboards/vllm-example-grafana.json');

// A batch of concurrent requests, more than --max-num-seqs so that some wait: streamed and
// whole, chat and completions.
async function drive(client, n) {
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    if (i % 2 === 0) {
      const s = await client.completions.create({
        model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, stream: true });
      for await (const _chunk of s) { /* drain */ }
    } else {
      await client.chat.completions.create({
        model: 'stories260K', max_tokens: 16, messages: [{ role: 'user', content: 'A story' }] });
    }
  }));
}

e2eTest('Prometheus scrapes the engine and every vLLM dashboard query returns data',
  { timeout: 60_000 }, async (h) => {
    const exprs = dashboardExprs(JSON.parse(await readFile(kDashboard, 'utf8')));
    assert.ok(exprs.length > 20);
    const p = h.spawn('engine', ['serve', '--model', kModel, '--host', '127.0.0.1', '--port', '0',
      '--io-threads', '1', '--threads', '1', '--max-num-seqs', '2']);
    await p.waitListening();
    const gw = new Gateway(p, null);
    const prom = await startPrometheus(h, { targetPort: gw.port });
    const client = gw.client();
    const scraped = async () => {
      const r = await prom.query('sum(vllm:request_success_total)');
      return r.data?.result?.length ? Number(r.data.result[0].value[1]) : null;
    };
    // Two batches, each seen by a scrape, so that rate() has two samples that differ.
    await drive(client, 8);
    await waitFor(async () => (await scraped()) >= 8,
      { timeoutMs: 15_000, intervalMs: 200, what: 'a scrape with the first batch' });
    await drive(client, 8);
    await waitFor(async () => (await scraped()) >= 16,
      { timeoutMs: 15_000, intervalMs: 200, what: 'a scrape with the second batch' });

    const problems = [];
    for (const { expr, where } of exprs) {
      const q = substituteGrafanaVariables(expr, { model_name: 'stories260K' });
      if (q.includes('$')) {
        problems.push(`${where}: unsubstituted variable in ${JSON.stringify(expr)}`);
        continue;
      }
      const r = await prom.query(q);
      if (r.status !== 'success') {
        problems.push(`${where}: ${JSON.stringify(q)} -> ${r.status}: ${r.error}`);
      } else if (r.data.result.length === 0) {
        problems.push(`${where}: ${JSON.stringify(q)} returned no data`);
      }
    }
    assert.deepEqual(problems, [], `vLLM dashboard queries without data:\n${problems.join('\n')}`);

    // The label values dashboards filter on, and the buckets they select by `le`.
    const ttft = await prom.query('vllm:time_to_first_token_seconds_bucket{le="0.001"}');
    assert.equal(ttft.data.result[0].metric.model_name, 'stories260K');
    assert.equal(ttft.data.result[0].metric.engine, '0');
  });
