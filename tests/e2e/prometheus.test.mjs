// A real Prometheus scrapes ondol's /metrics, and every PromQL expression of LiteLLM's Grafana
// dashboard (read from the shared dashboards folder, not copied) must return data through
// Prometheus's HTTP API.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import OpenAI from 'openai';

import { e2eTest, waitFor } from './lib/harness.mjs';
import { httpDeployment } from './lib/config.mjs';
import { startPrometheus } from './lib/external.mjs';
import { dashboardExprs, substituteGrafanaVariables } from './lib/dashboard.mjs';

const kRepoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const kDashboard = process.env.ONDOL_LITELLM_DASHBOARD ??
  path.resolve(kRepoRoot, '../shared/dashboards/litellm-grafana-v2.json');

const kMessages = [{ role: 'user', content: 'scrape me please' }];

// Drives n requests of a mix: plain and streamed successes, unknown models (404), and a
// deployment that always fails (502). Returns the counts by kind.
async function drive(client, n) {
  const counts = { ok: 0, notFound: 0, upstreamFailed: 0 };
  for (let i = 0; i < n; i += 1) {
    const kind = i % 10;
    if (kind < 6) {
      const stream = kind % 2 === 1;
      const r = await client.chat.completions.create({
        model: 'chat', messages: kMessages, max_tokens: 3, stream,
        ...(stream ? { stream_options: { include_usage: true } } : {}),
      });
      if (stream) for await (const _ of r) { /* drain */ }
      counts.ok += 1;
    } else if (kind < 8) {
      await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: kMessages }),
        OpenAI.NotFoundError);
      counts.notFound += 1;
    } else {
      await assert.rejects(client.chat.completions.create({ model: 'broken', messages: kMessages }),
        (err) => err instanceof OpenAI.APIError && err.status >= 500);
      counts.upstreamFailed += 1;
    }
  }
  return counts;
}

e2eTest('Prometheus scrapes /metrics and every LiteLLM dashboard query returns data',
  { timeout: 60_000 }, async (h) => {
    const dashboard = JSON.parse(await readFile(kDashboard, 'utf8'));
    const exprs = dashboardExprs(dashboard);
    assert.ok(exprs.length > 0, `no expr in ${kDashboard}`);

    const up = await h.mockUpstream();
    const failing = await h.mockUpstream({ failStatus: 500 });
    const gw = await h.gateway({
      model_list: [
        httpDeployment('chat', up.apiBase),
        httpDeployment('broken', failing.apiBase),
      ],
      router_settings: { allowed_fails: 1000 },
      litellm_settings: { callbacks: ['prometheus'] },
    });
    const prom = await startPrometheus(h, { targetPort: gw.port });
    const client = gw.client();

    // The scraped total of the LiteLLM request counter (null before the first scrape).
    const scrapedTotal = async () => {
      const r = await prom.query('sum(litellm_proxy_total_requests_metric_total)');
      assert.equal(r.status, 'success', JSON.stringify(r));
      return r.data.result.length ? Number(r.data.result[0].value[1]) : null;
    };

    // Two batches, each seen by a scrape, so that every counter increases between two samples
    // within the [2m] windows (rate() needs two samples; histogram_quantile an increase).
    const first = await drive(client, 50);
    await waitFor(async () => (await scrapedTotal()) >= 50,
      { timeoutMs: 15_000, intervalMs: 200, what: 'a scrape with the first 50 requests' });
    const second = await drive(client, 50);
    await waitFor(async () => (await scrapedTotal()) >= 100,
      { timeoutMs: 15_000, intervalMs: 200, what: 'a scrape with all 100 requests' });
    assert.ok(first.notFound > 0 && second.upstreamFailed > 0, 'failures in both batches');

    const target = await fetch(`${prom.url}/api/v1/targets`).then((r) => r.json());
    const health = target.data.activeTargets.map((t) => `${t.scrapeUrl}: ${t.health} ${t.lastError}`);
    assert.ok(target.data.activeTargets.every((t) => t.health === 'up'), health.join('\n'));

    const problems = [];
    for (const { expr, where } of exprs) {
      const q = substituteGrafanaVariables(expr);
      if (q.includes('$')) {
        problems.push(`${where}: unsubstituted variable in ${JSON.stringify(expr)}`);
        continue;
      }
      const r = await prom.query(q);
      if (r.status !== 'success') {
        problems.push(`${where}: ${JSON.stringify(q)} -> ${r.status} ${r.errorType}: ${r.error}`);
        continue;
      }
      const { resultType, result } = r.data;
      if (resultType !== 'vector' || result.length === 0) {
        problems.push(`${where}: ${JSON.stringify(q)} returned no data (${resultType}, ` +
          `${JSON.stringify(result)})`);
        continue;
      }
      const bad = result.filter((s) => !Number.isFinite(Number(s.value[1])));
      if (bad.length) {
        problems.push(`${where}: ${JSON.stringify(q)} has non-finite values: ${JSON.stringify(bad)}`);
      }
    }
    assert.deepEqual(problems, [], `dashboard queries without data:\n${problems.join('\n')}`);

    // The failure panel splits by exception class: both failure kinds are there.
    const failed = await prom.query(
      'sum(rate(litellm_proxy_failed_requests_metric_total[2m])) by (exception_class)');
    const classes = failed.data.result.map((s) => s.metric.exception_class);
    assert.ok(classes.includes('NotFoundError'), `exception classes: ${classes}`);
    assert.ok(classes.length >= 2, `a class for the failing deployment too: ${classes}`);
  });
