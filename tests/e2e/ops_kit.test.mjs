// The operations kit in deploy/ against the real thing. One ondol serves a mock deployment (the
// gateway's litellm_* series) and a model in process (the engine's vllm:* series); a real
// Prometheus, configured from deploy/prometheus/prometheus.yml and loading deploy/prometheus/rules,
// scrapes it every second under a short load (the openai client, with errors, and `ondol bench`).
// Then every PromQL expression of every panel of deploy/grafana/dashboards/*.json and
// ../shared/dashboards/*.json, every dashboard variable, and every alert expression must parse and
// return data through the HTTP API.
//
// An alert expression that compares with a threshold (`ratio > 0.01`, `up == 0`) returns nothing
// while it does not fire, so each is evaluated without its comparison: the expression is split at
// its top-level `and`/`or`/`unless`, and each part is cut at its first top-level comparison
// operator, keeping the left side (`ratio`, `up`). Whether the thresholds fire is the promtool
// tests' job (deploy/prometheus/tests).
//
// A second test checks that the deploy files use only flags and configs that ondol accepts, and
// that the Kubernetes probes answer without a key when a master key is set.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import YAML from 'yaml';

import { closedPort, e2eTest, ondolBin, waitFor } from './lib/harness.mjs';
import { kPrometheusBin } from './lib/external.mjs';
import { dashboardExprs, substituteGrafanaVariables } from './lib/dashboard.mjs';

const run = promisify(execFile);
const kRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const kDeploy = path.join(kRepo, 'deploy');
const kShared = process.env.ONDOL_SHARED_DIR ?? path.resolve(kRepo, '../shared');

// Metrics of other exporters (node-exporter, dcgm-exporter) that the resource dashboard shows
// when they are scraped: their expressions must parse, but nothing here produces them.
const kOtherExporters = /\b(DCGM_FI_\w+|node_\w+)/;

// ---- PromQL helpers -----------------------------------------------------------------------------

// Splits `expr` at top-level occurrences of the words or operators in `seps` (outside (), {}, []
// and strings). Returns [{text, sep}] where sep is the separator that ends the part (or null).
function splitTopLevel(expr, seps) {
  const parts = [];
  let depth = 0;
  let quote = null;
  let start = 0;
  for (let i = 0; i < expr.length; i += 1) {
    const c = expr[i];
    if (quote) {
      if (c === '\\') i += 1;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') { quote = c; continue; }
    if ('({['.includes(c)) { depth += 1; continue; }
    if (')}]'.includes(c)) { depth -= 1; continue; }
    if (depth !== 0) continue;
    for (const sep of seps) {
      const word = /^\w+$/.test(sep);
      if (!expr.startsWith(sep, i)) continue;
      if (word && (/\w/.test(expr[i - 1] ?? '') || /\w/.test(expr[i + sep.length] ?? ''))) continue;
      parts.push({ text: expr.slice(start, i), sep });
      i += sep.length - 1;
      start = i + 1;
      break;
    }
  }
  parts.push({ text: expr.slice(start), sep: null });
  return parts;
}

// The parts of an alert expression that must return data: see the comment at the top. A
// comparison's right side counts too unless it is a number (`> 2 * process_resident_memory_bytes`).
function alertExprParts(expr) {
  return splitTopLevel(expr, ['and', 'or', 'unless']).flatMap(({ text }) => {
    const [left, right] = splitTopLevel(text, ['==', '!=', '>=', '<=', '>', '<']);
    const rhs = right?.text.replace(/^\s*bool\b/, '').trim();
    return rhs && !/^[-+]?[\d.e+]+$/i.test(rhs) ? [left.text.trim(), rhs] : [left.text.trim()];
  });
}

// ---- processes ----------------------------------------------------------------------------------

// Prometheus with deploy/prometheus/prometheus.yml, changed only where a test must: a 1 s scrape
// and rule interval, the ondol job's target on loopback, the rule files by absolute path, and no
// Alertmanager. Returns {proc, url, query(expr), get(pathAndQuery)}.
async function startDeployPrometheus(h, targetPort) {
  const dir = path.join(h.dir, 'prometheus');
  await mkdir(path.join(dir, 'data'), { recursive: true });
  const cfg = YAML.parse(await readFile(path.join(kDeploy, 'prometheus/prometheus.yml'), 'utf8'));
  Object.assign(cfg.global, { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' });
  cfg.rule_files = cfg.rule_files.map((f) => path.resolve(kDeploy, 'prometheus', f));
  delete cfg.alerting;
  const job = cfg.scrape_configs.find((j) => j.job_name === 'ondol');
  assert.ok(job, 'deploy/prometheus/prometheus.yml has a job "ondol"');
  job.static_configs = [{ targets: [`127.0.0.1:${targetPort}`] }];
  const conf = path.join(dir, 'prometheus.yml');
  await writeFile(conf, YAML.stringify(cfg));

  const port = await closedPort();
  const proc = h.spawn('prometheus', [
    `--config.file=${conf}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--storage.tsdb.retention.time=1h', '--log.level=warn',
  ], { bin: kPrometheusBin, cwd: dir });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (!proc.running) throw new Error(`prometheus exited (${proc.describeExit()}):\n${proc.output}`);
    return fetch(`${url}/-/ready`).then((r) => r.status === 200, () => false);
  }, { timeoutMs: 15_000, intervalMs: 100, what: 'prometheus /-/ready' });
  const get = async (pathAndQuery) => (await fetch(`${url}${pathAndQuery}`)).json();
  const query = async (expr) => {
    const res = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: expr }).toString(),
    });
    return res.json();
  };
  return { proc, url, query, get };
}

const kMessages = [{ role: 'user', content: 'operate me please' }];

// One batch of load: gateway successes (plain and streamed), engine requests beyond
// max_num_seqs (some wait), an unknown model (404), upstream failures (502) and upstream
// rate limits (429), through the mock's per-request steering field. Returns the request count.
async function drive(client) {
  const expectStatus = (status) => (err) => err?.status === status;
  const jobs = [];
  for (let i = 0; i < 6; i += 1) {
    const stream = i % 2 === 1;
    jobs.push((async () => {
      const r = await client.chat.completions.create({
        model: 'chat', messages: kMessages, max_tokens: 4, stream,
        ...(stream ? { stream_options: { include_usage: true } } : {}),
      });
      if (stream) for await (const _ of r) { /* drain */ }
    })());
  }
  for (let i = 0; i < 4; i += 1) {
    jobs.push((async () => {
      if (i % 2 === 0) {
        const s = await client.completions.create({
          model: 'tiny', prompt: 'Once upon a time', max_tokens: 8, stream: true,
          stream_options: { include_usage: true } });
        for await (const _ of s) { /* drain */ }
      } else {
        await client.chat.completions.create({ model: 'tiny', messages: kMessages, max_tokens: 6 });
      }
    })());
  }
  jobs.push(assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: kMessages }),
    expectStatus(404)));
  jobs.push(assert.rejects(client.chat.completions.create({ model: 'chat', messages: kMessages,
    mock: { fail_status: 500 } }), expectStatus(502)));
  for (let i = 0; i < 3; i += 1) {
    jobs.push(assert.rejects(client.chat.completions.create({ model: 'chat', messages: kMessages,
      mock: { fail_status: 429 } }), expectStatus(429)));
  }
  await Promise.all(jobs);
  return jobs.length;
}

// A short `ondol bench` run against each model (streamed chat on the mock, streamed completions
// on the engine). Returns the number of requests it sent.
async function benchLoad(baseUrl) {
  const runs = [
    ['--backend', 'openai-chat', '--model', 'chat', '--num-prompts', '8'],
    ['--backend', 'openai', '--model', 'tiny', '--num-prompts', '4'],
  ];
  let sent = 0;
  for (const args of runs) {
    const { stdout } = await run(ondolBin(), ['bench', '--base-url', baseUrl, ...args,
      '--max-concurrency', '4', '--random-input-len', '16', '--random-output-len', '8',
      '--seed', '1', '--disable-tqdm'], { timeout: 30_000 });
    const n = Number(args[args.indexOf('--num-prompts') + 1]);
    assert.match(stdout, new RegExp(`Successful requests:\\s+${n}\\b`), stdout);
    sent += n + 1;   // the initial test request counts too
  }
  return sent;
}

// Dashboards: [{name, dashboard}] from a folder.
async function loadDashboards(dir) {
  const names = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(names.map(async (name) => ({
    name: path.join(path.basename(path.dirname(dir)), path.basename(dir), name),
    dashboard: JSON.parse(await readFile(path.join(dir, name), 'utf8')),
  })));
}

// What a dashboard's query variables expand to, as Grafana would: the values of
// label_values(METRIC, LABEL) / label_values(LABEL) from Prometheus (which must not be empty),
// then allValue when the variable offers "All", else the first value.
async function variableValues(prom, dashboard, problems, where) {
  const values = {};
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query ?? v.definition;
    const m = /^label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)$/.exec(q ?? '');
    if (!m) {
      problems.push(`${where}: variable ${v.name}: cannot evaluate ${JSON.stringify(q)}`);
      continue;
    }
    const [, metric, label] = m;
    const match = metric ? `?match[]=${encodeURIComponent(metric)}` : '';
    const r = await prom.get(`/api/v1/label/${label}/values${match}`);
    const found = (r.data ?? []).filter((x) => x !== '');
    if (r.status !== 'success' || found.length === 0) {
      problems.push(`${where}: variable ${v.name} (${q}) has no values: ${JSON.stringify(r)}`);
      continue;
    }
    values[v.name] = v.includeAll && v.allValue ? v.allValue : found[0];
  }
  return values;
}

// Evaluates expr; returns a problem string, or null when it returned finite data. mustHaveData
// false: it must only parse.
async function evaluate(prom, expr, where, mustHaveData) {
  if (expr.includes('$')) return `${where}: unsubstituted variable in ${JSON.stringify(expr)}`;
  const r = await prom.query(expr);
  if (r.status !== 'success') return `${where}: ${JSON.stringify(expr)} -> ${r.errorType}: ${r.error}`;
  if (!mustHaveData) return null;
  const { resultType, result } = r.data;
  const samples = resultType === 'scalar' ? [result] : result.map((s) => s.value);
  if (samples.length === 0) return `${where}: ${JSON.stringify(expr)} returned no data`;
  if (!samples.some(([, v]) => Number.isFinite(Number(v)))) {
    return `${where}: ${JSON.stringify(expr)} returned only non-finite values: ${JSON.stringify(result)}`;
  }
  return null;
}

e2eTest('ops kit: every dashboard panel and alert expression returns data from a real Prometheus',
  { timeout: 90_000 }, async (h, t) => {
    const model = path.join(h.dir, 'tiny.gguf');
    await run(ondolBin(), ['model', 'make-dummy', '--shape', 'tiny', model], { timeout: 30_000 });
    const gw = await h.gateway({
      model_list: [
        { model_name: 'chat', litellm_params: { model: 'mock/chat' } },
        { model_name: 'tiny', litellm_params: { model: `local/${model}`, num_threads: 1, max_num_seqs: 2 } },
      ],
      router_settings: { allowed_fails: 1000 },
      litellm_settings: { callbacks: ['prometheus'] },
    });
    const prom = await startDeployPrometheus(h, gw.port);
    const client = gw.client();

    // Two batches, each seen by a scrape, so that rate() and increase() over the dashboards'
    // windows have two samples that differ.
    const scraped = async () => {
      const r = await prom.query('sum(litellm_proxy_total_requests_metric_total{job="ondol"})');
      return r.data?.result?.length ? Number(r.data.result[0].value[1]) : 0;
    };
    const first = await drive(client);
    await waitFor(async () => (await scraped()) >= first, { timeoutMs: 15_000, intervalMs: 200, what: 'a scrape of the first batch' });
    const [second, benched] = await Promise.all([drive(client), benchLoad(gw.url)]);
    const total = first + second + benched;
    await waitFor(async () => (await scraped()) >= total, { timeoutMs: 15_000, intervalMs: 200, what: 'a scrape of the second batch' });

    const problems = [];
    let withData = 0;
    let parseOnly = 0;
    const dashboards = [
      ...await loadDashboards(path.join(kDeploy, 'grafana/dashboards')),
      ...await loadDashboards(path.join(kShared, 'dashboards')),
    ];
    assert.ok(dashboards.length >= 5, `dashboards: ${dashboards.map((d) => d.name)}`);
    for (const { name, dashboard } of dashboards) {
      const vars = await variableValues(prom, dashboard, problems, name);
      const exprs = dashboardExprs(dashboard);
      assert.ok(exprs.length > 0, `${name} has no expr`);
      for (const { expr, where } of exprs) {
        const q = substituteGrafanaVariables(expr, vars);
        const mustHaveData = !kOtherExporters.test(q);
        if (mustHaveData) withData += 1;
        else parseOnly += 1;
        const problem = await evaluate(prom, q, `${name} ${where}`, mustHaveData);
        if (problem) problems.push(problem);
      }
    }

    // The alert rules: Prometheus loaded and evaluates every one without error.
    const rules = (await prom.get('/api/v1/rules?type=alert')).data.groups.flatMap((g) => g.rules);
    const ruleFile = YAML.parse(await readFile(path.join(kDeploy, 'prometheus/rules/ondol-alerts.yml'), 'utf8'));
    const alerts = ruleFile.groups.flatMap((g) => g.rules).filter((r) => r.alert);
    assert.deepEqual(rules.map((r) => r.name).sort(), alerts.map((a) => a.alert).sort());
    await waitFor(async () => {
      const now = (await prom.get('/api/v1/rules?type=alert')).data.groups.flatMap((g) => g.rules);
      return now.every((r) => r.health !== 'unknown');
    }, { timeoutMs: 5_000, intervalMs: 200, what: 'a first evaluation of every rule' });
    for (const r of (await prom.get('/api/v1/rules?type=alert')).data.groups.flatMap((g) => g.rules)) {
      if (r.health !== 'ok') problems.push(`alert ${r.name}: health ${r.health}: ${r.lastError}`);
    }
    // The load's 502s (2 of 42 requests) and 429s (6 of 42) are above the error-rate (1 %) and 429
    // (5 %) thresholds, so those two alerts are pending (their `for` is minutes); the instance is up.
    const states = await waitFor(async () => {
      const now = (await prom.get('/api/v1/rules?type=alert')).data.groups.flatMap((g) => g.rules);
      const s = Object.fromEntries(now.map((r) => [r.name, r.state]));
      return s.OndolHighErrorRate === 'pending' && s.OndolRateLimitSurge === 'pending' ? s : null;
    }, { timeoutMs: 5_000, intervalMs: 200, what: 'OndolHighErrorRate and OndolRateLimitSurge pending' });
    assert.equal(states.OndolInstanceDown, 'inactive');
    for (const a of alerts) {
      const parts = alertExprParts(a.expr);
      assert.ok(parts.length > 0 && parts.every((p) => p.length > 0), `${a.alert}: ${JSON.stringify(parts)}`);
      for (const part of parts) {
        withData += 1;
        const problem = await evaluate(prom, part, `alert ${a.alert}`, true);
        if (problem) problems.push(problem);
      }
    }
    t.diagnostic(`${withData} expressions returned data, ${parseOnly} only parsed (other exporters)`);
    assert.deepEqual(problems, [], `expressions without data:\n${problems.join('\n')}`);
    assert.ok(withData > 80, `only ${withData} expressions evaluated`);

    // The scrape job of deploy/prometheus/prometheus.yml is what the rules select.
    const up = await prom.query('up{job="ondol"}');
    assert.equal(up.data.result[0]?.value[1], '1', JSON.stringify(up));
  });

e2eTest('ops kit: deploy files use only flags and configs ondol accepts; probes need no key',
  { timeout: 30_000 }, async (h) => {
    const { stdout: help } = await run(ondolBin(), ['serve', '--help']);
    const flagsIn = (args, where) => args.filter((a) => a.startsWith('--')).map((f) => ({ f, where }));
    const unit = await readFile(path.join(kDeploy, 'systemd/ondol.service'), 'utf8');
    const execStart = /^ExecStart=(.*)$/m.exec(unit)[1].split(/\s+/);
    const compose = YAML.parse(await readFile(path.join(kDeploy, 'compose/compose.yaml'), 'utf8'));
    const k8s = YAML.parse(await readFile(path.join(kDeploy, 'k8s/deployment.yaml'), 'utf8'));
    const container = k8s.spec.template.spec.containers[0];
    const uses = [
      { args: execStart.slice(1), where: 'systemd ExecStart' },
      { args: compose.services.ondol.command.slice(1), where: 'compose command' },
      { args: container.args, where: 'k8s args' },
    ];
    for (const { args, where } of uses) {
      assert.equal(args[0], 'serve', `${where}: ${args}`);
      const flags = flagsIn(args, where);
      assert.ok(flags.length >= 3, `${where}: ${args}`);
      for (const { f } of flags) {
        assert.match(help, new RegExp(`(^|[\\s,])${f}(?=[\\s=]|$)`, 'm'), `${where}: ondol serve has no ${f}`);
      }
    }

    // Both shipped configs load (with the master key from the environment, as deployed).
    const env = { ...process.env, ONDOL_MASTER_KEY: 'sk-ops-kit-test' };
    const cm = YAML.parse(await readFile(path.join(kDeploy, 'k8s/configmap.yaml'), 'utf8'));
    const k8sConfig = await h.writeConfig(cm.data['config.yaml'], 'k8s-config.yaml');
    for (const config of [path.join(kDeploy, 'compose/config.yaml'), k8sConfig]) {
      const r = await run(ondolBin(), ['check', '--config', config], { env });
      assert.match(r.stdout, /config OK/, `${config}:\n${r.stdout}${r.stderr}`);
      assert.doesNotMatch(r.stdout + r.stderr, /warning/i, `${config}:\n${r.stdout}${r.stderr}`);
    }

    // The Kubernetes config with a master key: the probes and the scrape need no key, the API does.
    const p = h.spawn('k8s-config', ['serve', '--config', k8sConfig, '--host', '127.0.0.1', '--port', '0',
      '--io-threads', '1'], { env: { ONDOL_MASTER_KEY: 'sk-ops-kit-test' } });
    await p.waitListening();
    const paths = [
      container.livenessProbe.httpGet.path, container.readinessProbe.httpGet.path,
      container.startupProbe.httpGet.path, compose.services.ondol.healthcheck.test.at(-1).replace(/^https?:\/\/[^/]+/, ''),
      '/metrics',
    ];
    for (const pth of paths) {
      const res = await fetch(`${p.url}${pth}`);
      assert.equal(res.status, 200, `GET ${pth} without a key: ${res.status} ${await res.text()}`);
    }
    assert.equal((await fetch(`${p.url}/v1/models`)).status, 401);
    const ok = await fetch(`${p.url}/v1/models`, { headers: { Authorization: 'Bearer sk-ops-kit-test' } });
    assert.equal(ok.status, 200);

    // SIGHUP (the unit's ExecReload) reloads; SIGTERM (its KillSignal) drains and exits 0.
    p.signal('SIGHUP');
    await waitFor(async () => {
      const m = await fetch(`${p.url}/metrics`).then((r) => r.text());
      return /ondol_config_reloads_total\{result="success"\} 1/.test(m);
    }, { timeoutMs: 5_000, what: 'a reload counted after SIGHUP' });
    p.signal('SIGTERM');
    const { code } = await p.waitExit(10_000);
    assert.equal(code, 0);
  });
