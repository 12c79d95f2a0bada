// Turns bench/gateway/run.sh's raw results into the tables it prints, and summary.json.
//
//   node report.mjs RESULTS_DIR     (reads meta.json and results.jsonl, writes summary.json)
//
// Every figure is min / median / max over the runs. A ratio is computed per run from the two
// targets measured in that run (side by side, minutes apart at most), then summarised the same way,
// so a slow moment of the machine moves numerator and denominator together.

import fs from 'node:fs';
import path from 'node:path';

const kTargets = ['direct', 'ondol', 'nginx', 'portkey'];
const kModeTitle = { nonstream: 'non-streaming', stream: 'streaming (SSE)' };
// The goals from the issue.
const kMinOndolOverPortkey = 10;
const kMinOndolOverNginx = 0.5;
const kMaxAddedP99Us = 1000;

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node report.mjs RESULTS_DIR');
  process.exit(64);
}
const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
const rows = fs.readFileSync(path.join(dir, 'results.jsonl'), 'utf8')
  .split('\n').filter(Boolean).map((l) => JSON.parse(l));

function mmm(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { min: v[0], median, max: v[v.length - 1], n: v.length };
}

const fmtInt = (x) => Math.round(x).toLocaleString('en-US');
const fmtMs = (us) => (us / 1000).toFixed(2);
const fmtRatio = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
const fmtUs = (x) => fmtInt(x);
const fmtCores = (x) => x.toFixed(2);
const fmt3 = (s, f) => (s ? `${f(s.min)} / ${f(s.median)} / ${f(s.max)}` : 'n/a');

function table(header, body) {
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i])
    : String(c).padStart(widths[i]))).join('   ');
  return [line(header), ...body.map(line)].join('\n');
}

const summary = { meta, throughput: {}, throughput_ratios: {}, fixed_rate: {}, added_latency: {}, goals: [] };
const out = [];
const p = (s = '') => out.push(s);

const loads = rows.map((r) => r.loadavg_before).filter(Number.isFinite);
p(`ondol gateway benchmark — ${meta.started}`);
p(`machine: ${meta.cpu}, ${meta.num_cpus} CPUs, Linux ${meta.kernel}; load average before the`
  + ` measurements ${loads.length ? `${Math.min(...loads)}..${Math.max(...loads)}` : 'n/a'}`
  + ` (at start ${meta.loadavg_start})`);
p(`pinning: ${meta.pin === 'split' ? `proxy under test on CPU ${meta.proxy_cpus}, upstream + load`
  + ` generator on CPU ${meta.load_cpus}` : 'none (the scheduler places everything)'}`);
p(`versions: ${meta.ondol_version} (${meta.ondol_bin}); ${meta.nginx_version} with`
  + ` ${meta.nginx_workers} worker; @portkey-ai/gateway ${meta.portkey_version} on node`
  + ` ${meta.node_version}; ${meta.wrk_version}`);
p(`upstream: ondol mock-upstream, 1 I/O thread, max_tokens ${meta.max_tokens}`
  + ' (stream: one token per chunk, no delays)');

const byRun = (kind, mode, target) => rows.filter((r) => r.kind === kind && r.mode === mode
  && r.target === target);
const rps = (r) => r.result.requests / (r.result.duration_us / 1e6);
const wrkErrors = (r) => Object.values(r.result.errors).reduce((a, b) => a + b, 0);

// Per-run ratio of a metric between two targets, summarised.
function ratio(kind, mode, num, den, metric) {
  const a = byRun(kind, mode, num);
  const b = byRun(kind, mode, den);
  const values = [];
  for (const ra of a) {
    const rb = b.find((x) => x.run === ra.run);
    if (rb) values.push(metric(ra, rb));
  }
  return mmm(values);
}

function goal(name, stat, ok, expected) {
  const verdict = !stat ? 'n/a' : ok(stat.median) ? 'PASS' : 'FAIL';
  summary.goals.push({ name, expected, median: stat?.median ?? null, min: stat?.min ?? null,
    max: stat?.max ?? null, verdict });
  return verdict;
}

const wrkRows = rows.filter((r) => r.kind === 'wrk');
for (const mode of meta.modes) {
  if (!wrkRows.some((r) => r.mode === mode)) continue;
  const body = [];
  summary.throughput[mode] = {};
  for (const t of kTargets) {
    const rs = byRun('wrk', mode, t);
    if (rs.length === 0) continue;
    const proxied = t !== 'direct';
    const s = {
      requests_per_s: mmm(rs.map(rps)),
      p50_us: mmm(rs.map((r) => r.result.latency_us.p50)),
      p99_us: mmm(rs.map((r) => r.result.latency_us.p99)),
      errors: rs.reduce((a, r) => a + wrkErrors(r), 0),
      // CPU the proxy used: in cores (1.0 = one core fully busy: the proxy is the bottleneck) and
      // per request (independent of where the bottleneck is).
      proxy_cpu_cores: proxied ? mmm(rs.map((r) => r.cpu_s.proxy / (r.result.duration_us / 1e6)))
        : null,
      proxy_cpu_us_per_request: proxied ? mmm(rs.map((r) => (r.cpu_s.proxy * 1e6)
        / r.result.requests)) : null,
      upstream_cpu_cores: mmm(rs.map((r) => r.cpu_s.upstream / (r.result.duration_us / 1e6))),
    };
    summary.throughput[mode][t] = s;
    body.push([t, fmt3(s.requests_per_s, fmtInt), fmt3(s.p50_us, fmtMs), fmt3(s.p99_us, fmtMs),
      s.errors, proxied ? fmt3(s.proxy_cpu_cores, fmtCores) : '-',
      proxied ? fmt3(s.proxy_cpu_us_per_request, fmtInt) : '-',
      fmt3(s.upstream_cpu_cores, fmtCores)]);
  }
  p();
  p(`== ${kModeTitle[mode]}: throughput — wrk, ${meta.connections} connections, ${meta.wrk_threads}`
    + ` thread, ${meta.runs} x ${meta.duration_s} s; min / median / max ==`);
  p(table(['target', 'requests/s', 'p50 ms', 'p99 ms', 'errors', 'proxy CPU cores',
    'proxy CPU us/req', 'upstream CPU cores'], body));

  const ratios = [];
  const pairs = [['ondol', 'portkey'], ['ondol', 'nginx'], ['ondol', 'direct'], ['nginx', 'direct'],
    ['portkey', 'direct']];
  summary.throughput_ratios[mode] = {};
  for (const [a, b] of pairs) {
    const s = ratio('wrk', mode, a, b, (x, y) => rps(x) / rps(y));
    if (!s) continue;
    summary.throughput_ratios[mode][`${a}/${b}`] = s;
    let verdict = '';
    if (a === 'ondol' && b === 'portkey') {
      verdict = `goal >= ${kMinOndolOverPortkey}x: ${goal(`${mode} ondol/portkey requests/s`, s,
        (m) => m >= kMinOndolOverPortkey, `>= ${kMinOndolOverPortkey}`)}`;
    } else if (a === 'ondol' && b === 'nginx') {
      verdict = `goal >= ${kMinOndolOverNginx}: ${goal(`${mode} ondol/nginx requests/s`, s,
        (m) => m >= kMinOndolOverNginx, `>= ${kMinOndolOverNginx}`)}`;
    }
    ratios.push([`${a} / ${b}`, fmt3(s, fmtRatio), verdict]);
  }
  if (ratios.length) {
    p();
    p(table(['requests/s ratio (per run)', 'min / median / max', ''], ratios));
  }
}

const fixedRows = rows.filter((r) => r.kind === 'fixed');
for (const mode of meta.modes) {
  if (!fixedRows.some((r) => r.mode === mode)) continue;
  const body = [];
  summary.fixed_rate[mode] = {};
  for (const t of kTargets) {
    const rs = byRun('fixed', mode, t);
    if (rs.length === 0) continue;
    const lat = (k) => mmm(rs.map((r) => r.result.latency_us?.[k]));
    const s = {
      achieved_rate: mmm(rs.map((r) => r.result.achieved_rate)),
      p50_us: lat('p50'), p90_us: lat('p90'), p99_us: lat('p99'), max_us: lat('max'),
      ttfb_p99_us: mmm(rs.map((r) => r.result.ttfb_us?.p99)),
      lag_p99_us: mmm(rs.map((r) => r.result.lag_us?.p99)),
      errors: rs.reduce((a, r) => a + r.result.errors + r.result.timed_out, 0),
      overloaded_runs: rs.filter((r) => r.result.overloaded).length,
      proxy_cpu_cores: t === 'direct' ? null
        : mmm(rs.map((r) => r.cpu_s.proxy / (r.result.duration_s + r.result.warmup_s))),
    };
    summary.fixed_rate[mode][t] = s;
    body.push([t, fmt3(s.achieved_rate, fmtInt), fmt3(s.p50_us, fmtUs), fmt3(s.p90_us, fmtUs),
      fmt3(s.p99_us, fmtUs), fmt3(s.max_us, fmtUs), s.errors,
      s.overloaded_runs ? `${s.overloaded_runs} of ${rs.length}` : 'no',
      s.proxy_cpu_cores ? fmt3(s.proxy_cpu_cores, fmtCores) : '-']);
  }
  p();
  p(`== ${kModeTitle[mode]}: latency at a fixed ${meta.rate} requests/s — open loop,`
    + ` ${meta.runs} x ${meta.fixed_duration_s} s; microseconds, min / median / max ==`);
  p(table(['target', 'achieved req/s', 'p50', 'p90', 'p99', 'max', 'errors', 'overloaded',
    'proxy CPU cores'], body));

  const added = [];
  summary.added_latency[mode] = {};
  for (const t of ['ondol', 'nginx', 'portkey']) {
    const get = (k) => ratio('fixed', mode, t, 'direct',
      (x, y) => (x.result.latency_us?.[k] ?? NaN) - (y.result.latency_us?.[k] ?? NaN));
    const s = { p50_us: get('p50'), p90_us: get('p90'), p99_us: get('p99') };
    if (!s.p99_us) continue;
    summary.added_latency[mode][t] = s;
    let verdict = '';
    if (t === 'ondol') {
      verdict = `goal p99 < ${kMaxAddedP99Us} us: ${goal(`${mode} ondol added p99 latency at`
        + ` ${meta.rate} req/s (us)`, s.p99_us, (m) => m < kMaxAddedP99Us, `< ${kMaxAddedP99Us}`)}`;
    }
    const numOverloaded = byRun('fixed', mode, t).filter((r) => r.result.overloaded).length;
    if (numOverloaded) verdict += `${verdict ? '; ' : ''}overloaded in ${numOverloaded} run(s)`;
    added.push([t, fmt3(s.p50_us, fmtUs), fmt3(s.p90_us, fmtUs), fmt3(s.p99_us, fmtUs), verdict]);
  }
  if (added.length) {
    p();
    p(table(['added latency vs direct (per run), us', 'p50', 'p90', 'p99', ''], added));
  }
  const lag = mmm(fixedRows.filter((r) => r.mode === mode && !r.result.overloaded)
    .map((r) => r.result.lag_us?.p99));
  if (lag) {
    p(`(load generator send lag p99, runs not overloaded: ${fmt3(lag, fmtUs)} us — its timer`
      + ' granularity; latency is measured from the actual send, so it does not count)');
  }
}

if (summary.goals.length) {
  p();
  p('== goals (verdict on the median) ==');
  for (const g of summary.goals) {
    const f = g.expected.startsWith('<') ? fmtInt : fmtRatio;
    p(`${g.verdict.padEnd(4)}  ${g.name}: median ${f(g.median)} (min ${f(g.min)},`
      + ` max ${f(g.max)}), expected ${g.expected}`);
  }
}
if (fixedRows.some((r) => r.result.overloaded)) {
  p();
  p(`OVERLOADED: a target could not keep up with ${meta.rate} requests/s in some runs (requests`
    + ' waited in the load generator); its latency there is a lower bound (results.jsonl has'
    + ' latency_from_schedule_us).');
}
const anyErrors = rows.some((r) => (r.kind === 'wrk' ? wrkErrors(r) : r.result.errors
  + r.result.timed_out) > 0);
if (anyErrors) {
  p();
  p('WARNING: some measurements had errors (see the errors columns and results.jsonl); their'
    + ' figures are not comparable.');
}

console.log(out.join('\n'));
fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
fs.writeFileSync(path.join(dir, 'report.txt'), out.join('\n') + '\n');
