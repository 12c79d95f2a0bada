// Structural checks of deploy/: every YAML and JSON file parses, and the compose file, the
// Kubernetes manifests, the Grafana files, the alert rules and their tests, Alertmanager's config
// and the systemd unit are consistent with each other and with ondol (its endpoints are read
// from src/gateway/gateway.cpp). Run by tests/deploy/check.sh; prints every problem, exits 1 if
// there is one.
//   node tests/deploy/check_files.mjs [DEPLOY_DIR]
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const kRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const kDeploy = path.resolve(process.argv[2] ?? path.join(kRepo, 'deploy'));
// The YAML parser is the e2e tests' pinned dev dependency (tests/e2e/package.json).
const YAML = createRequire(path.join(kRepo, 'tests/e2e/package.json'))('yaml');

const problems = [];
let checks = 0;
function check(ok, message) {
  checks += 1;
  if (!ok) problems.push(message);
  return ok;
}
const rel = (f) => path.relative(kDeploy, f);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
// a ⊆ b for label maps.
const subset = (a, b) => isObject(a) && isObject(b) && Object.keys(a).length > 0 &&
  Object.entries(a).every(([k, v]) => b[k] === v);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const f = path.join(dir, name);
    return statSync(f).isDirectory() ? walk(f) : [f];
  });
}

// Every document of a YAML file, as plain objects; parse errors and warnings are problems.
function parseYaml(text, where) {
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const out = [];
  for (const doc of docs) {
    for (const e of [...doc.errors, ...doc.warnings]) problems.push(`${where}: ${e.message}`);
    if (doc.errors.length === 0) out.push(doc.toJS({ maxAliasCount: 100 }));
  }
  checks += 1;
  return out;
}

// ---- ondol's own facts, from its source ---------------------------------------------------------

// The paths ondol answers (handler_label's kKnown) and those that never need a key (kAlwaysPublic).
function ondolEndpoints() {
  const src = readFileSync(path.join(kRepo, 'src/gateway/gateway.cpp'), 'utf8');
  const list = (name) => {
    const m = new RegExp(`${name}\\[\\]\\s*=\\s*\\{([^}]*)\\}`).exec(src);
    if (!m) throw new Error(`src/gateway/gateway.cpp: no ${name}[] = {...}; update ${rel(fileURLToPath(import.meta.url))}`);
    return [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]);
  };
  const known = list('kKnown');
  const alwaysPublic = list('kAlwaysPublic');
  if (!known.includes('/ready') || !known.includes('/metrics')) {
    throw new Error(`src/gateway/gateway.cpp: kKnown does not look like the endpoint list: ${known}`);
  }
  return { known, alwaysPublic };
}
const kEndpoints = ondolEndpoints();
const isEndpoint = (p) => kEndpoints.known.includes(p.startsWith('/v1/') ? p.slice(3) : p);

// ---- every file parses ---------------------------------------------------------------------------

const files = walk(kDeploy);
const yamlDocs = new Map();   // file -> [docs]
const jsonDocs = new Map();
for (const f of files) {
  const text = readFileSync(f, 'utf8');
  if (/\.ya?ml$/.test(f)) {
    yamlDocs.set(f, parseYaml(text, rel(f)));
  } else if (f.endsWith('.json')) {
    try {
      jsonDocs.set(f, JSON.parse(text));
    } catch (e) {
      problems.push(`${rel(f)}: invalid JSON: ${e.message}`);
    }
  }
}
const doc = (p) => {
  const f = path.join(kDeploy, p);
  if (!check(yamlDocs.has(f), `${p}: missing (or not parsed)`)) return {};
  return yamlDocs.get(f)[0] ?? {};
};

// ---- Prometheus: rules and their tests ---------------------------------------------------------

const kAlertsFile = 'prometheus/rules/ondol-alerts.yml';
const alerts = (doc(kAlertsFile).groups ?? []).flatMap((g) => g.rules ?? []).filter((r) => r.alert);
check(alerts.length >= 8, `${kAlertsFile}: ${alerts.length} alerts, expected at least 8`);
for (const a of alerts) {
  const where = `${kAlertsFile}: alert ${a.alert}`;
  check(typeof a.expr === 'string' && a.expr.trim(), `${where}: no expr`);
  check(/^\d+[smh]$/.test(a.for ?? ''), `${where}: no 'for' duration`);
  check(['critical', 'warning'].includes(a.labels?.severity), `${where}: severity must be critical or warning`);
  check(a.annotations?.summary && a.annotations?.description, `${where}: summary and description annotations`);
}
// Every alert has a promtool test where it fires and one where it must stay silent.
const fires = new Set();
const silent = new Set();
for (const [f, docs] of yamlDocs) {
  if (!f.startsWith(path.join(kDeploy, 'prometheus/tests') + path.sep)) continue;
  const t = docs[0] ?? {};
  check(Array.isArray(t.rule_files) && t.rule_files.every((r) => existsSync(path.resolve(path.dirname(f), r))),
    `${rel(f)}: rule_files must name existing files`);
  for (const c of (t.tests ?? []).flatMap((x) => x.alert_rule_test ?? [])) {
    (c.exp_alerts?.length ? fires : silent).add(c.alertname);
  }
}
for (const a of alerts) {
  check(fires.has(a.alert), `${a.alert}: no promtool test in prometheus/tests where it fires`);
  check(silent.has(a.alert), `${a.alert}: no promtool test in prometheus/tests where it must not fire`);
}

// ---- compose ------------------------------------------------------------------------------------

const kComposeFile = 'compose/compose.yaml';
const compose = doc(kComposeFile);
const services = compose.services ?? {};
const kComposeDir = path.join(kDeploy, 'compose');
for (const s of ['ondol', 'redis', 'postgres', 'prometheus', 'grafana', 'alertmanager']) {
  check(s in services, `${kComposeFile}: no service '${s}'`);
}
const containerPorts = (svc) => (svc.ports ?? []).map((p) => String(p).split(':').pop().split('/')[0]);
for (const [name, svc] of Object.entries(services)) {
  const where = `${kComposeFile}: services.${name}`;
  check(typeof svc.image === 'string' && svc.image.length > 0, `${where}: no image`);
  const hc = svc.healthcheck;
  check(hc && Array.isArray(hc.test) && ['CMD', 'CMD-SHELL'].includes(hc.test[0]) && hc.test.length > 1,
    `${where}: healthcheck.test must be ["CMD", ...] or ["CMD-SHELL", ...]`);
  for (const p of svc.ports ?? []) {
    check(/^(\d{1,3}(\.\d{1,3}){3}:)?\d{1,5}:\d{1,5}(\/(tcp|udp))?$/.test(String(p)), `${where}: bad port '${p}'`);
  }
  const deps = Array.isArray(svc.depends_on) ? Object.fromEntries(svc.depends_on.map((d) => [d, {}]))
    : (svc.depends_on ?? {});
  for (const [dep, how] of Object.entries(deps)) {
    if (!check(dep in services, `${where}: depends_on unknown service '${dep}'`)) continue;
    if (how.condition === 'service_healthy') {
      check(services[dep].healthcheck, `${where}: waits for '${dep}' to be healthy, which has no healthcheck`);
    }
  }
  for (const v of svc.volumes ?? []) {
    const [src, target] = String(v).split(':');
    check(target?.startsWith('/'), `${where}: volume '${v}' has no absolute target`);
    if (src.startsWith('.') || src.startsWith('/')) {
      check(existsSync(path.resolve(kComposeDir, src)), `${where}: bind mount source '${src}' does not exist`);
    } else {
      check(compose.volumes && src in compose.volumes, `${where}: named volume '${src}' not declared under volumes`);
    }
  }
  for (const s of svc.secrets ?? []) {
    check(compose.secrets && (s.source ?? s) in compose.secrets, `${where}: secret '${s.source ?? s}' not declared`);
  }
}
// What is mounted where: the files of deploy/ reach the containers that read them.
const mounts = (svc) => Object.fromEntries((services[svc]?.volumes ?? []).map((v) => {
  const [src, target] = String(v).split(':');
  return [target, path.resolve(kComposeDir, src)];
}));
check(mounts('prometheus')['/etc/prometheus'] === path.join(kDeploy, 'prometheus'),
  `${kComposeFile}: prometheus must mount deploy/prometheus at /etc/prometheus`);
check(mounts('alertmanager')['/etc/alertmanager'] === path.join(kDeploy, 'alertmanager'),
  `${kComposeFile}: alertmanager must mount deploy/alertmanager at /etc/alertmanager`);
check(mounts('grafana')['/etc/grafana/provisioning'] === path.join(kDeploy, 'grafana/provisioning'),
  `${kComposeFile}: grafana must mount deploy/grafana/provisioning at /etc/grafana/provisioning`);
const ondolCmd = services.ondol?.command ?? [];
const configArg = ondolCmd[ondolCmd.indexOf('--config') + 1];
check(ondolCmd.includes('--config') && mounts('ondol')[configArg] && existsSync(mounts('ondol')[configArg]),
  `${kComposeFile}: ondol's --config must be a file mounted from deploy/compose`);
check(services.ondol?.env_file, `${kComposeFile}: ondol takes its master key from an env_file`);
const ondolHealth = (services.ondol?.healthcheck?.test ?? []).join(' ');
const healthPath = /http:\/\/[^/\s]+(\/\S*)/.exec(ondolHealth)?.[1];
check(healthPath && isEndpoint(healthPath), `${kComposeFile}: ondol's healthcheck must GET an ondol endpoint, got '${ondolHealth}'`);
const composeConfig = configArg && mounts('ondol')[configArg] && existsSync(mounts('ondol')[configArg])
  ? parseYaml(readFileSync(mounts('ondol')[configArg], 'utf8'), `compose/${path.basename(configArg)}`)[0] ?? {} : {};
check(kEndpoints.alwaysPublic.includes(healthPath) ||
  (composeConfig.general_settings?.public_routes ?? []).includes(healthPath),
  `${kComposeFile}: ondol's healthcheck path ${healthPath} needs a key (not always public, not in public_routes)`);

// Service names and ports other files use: Prometheus's targets, Grafana's datasource.
function checkTarget(hostPort, where) {
  const [host, port] = hostPort.split(':');
  if (check(host in services, `${where}: '${hostPort}' is not a compose service`)) {
    check(containerPorts(services[host]).includes(port), `${where}: compose service '${host}' does not expose ${port}`);
  }
}
const prom = doc('prometheus/prometheus.yml');
const ondolJob = (prom.scrape_configs ?? []).find((j) => j.job_name === 'ondol');
check(ondolJob, 'prometheus/prometheus.yml: no scrape job "ondol" (the alert rules select job="ondol")');
check(ondolJob?.metrics_path === '/metrics' && isEndpoint(ondolJob.metrics_path),
  'prometheus/prometheus.yml: job ondol must scrape /metrics');
for (const t of (ondolJob?.static_configs ?? []).flatMap((c) => c.targets)) checkTarget(t, 'prometheus/prometheus.yml');
for (const t of (prom.alerting?.alertmanagers ?? []).flatMap((a) => a.static_configs ?? []).flatMap((c) => c.targets)) {
  checkTarget(t, 'prometheus/prometheus.yml alerting');
}

// ---- Grafana ------------------------------------------------------------------------------------

const datasources = doc('grafana/provisioning/datasources/prometheus.yml').datasources ?? [];
const promDs = datasources.find((d) => d.type === 'prometheus');
check(promDs?.uid, 'grafana/provisioning/datasources/prometheus.yml: no prometheus datasource with a uid');
if (promDs?.url) checkTarget(new URL(promDs.url).host, 'grafana/provisioning/datasources/prometheus.yml');
const providers = doc('grafana/provisioning/dashboards/ondol.yml').providers ?? [];
check(providers.length === 1 && providers[0].type === 'file', 'grafana/provisioning/dashboards/ondol.yml: one file provider');
check(mounts('grafana')[providers[0]?.options?.path] === path.join(kDeploy, 'grafana/dashboards'),
  `grafana/provisioning/dashboards/ondol.yml: options.path must be where compose mounts deploy/grafana/dashboards`);

const uids = new Map();
const kDashboards = ['ondol-overview.json', 'ondol-engine.json', 'ondol-resources.json'];
for (const name of kDashboards) check(jsonDocs.has(path.join(kDeploy, 'grafana/dashboards', name)), `grafana/dashboards/${name} missing`);
for (const [f, d] of jsonDocs) {
  if (!f.startsWith(path.join(kDeploy, 'grafana/dashboards') + path.sep)) continue;
  const where = rel(f);
  check(typeof d.uid === 'string' && d.uid && typeof d.title === 'string' && d.title, `${where}: uid and title`);
  check(!uids.has(d.uid), `${where}: uid '${d.uid}' also in ${uids.get(d.uid)}`);
  uids.set(d.uid, where);
  const vars = new Set((d.templating?.list ?? []).map((v) => v.name));
  const panels = (d.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
  check(panels.length > 0, `${where}: no panels`);
  const ids = new Set();
  for (const p of panels) {
    check(!ids.has(p.id), `${where}: panel id ${p.id} twice`);
    ids.add(p.id);
    if (p.type === 'row') continue;
    const pw = `${where}: panel "${p.title}"`;
    check(p.title && p.gridPos, `${pw}: title and gridPos`);
    check(p.datasource?.uid === promDs?.uid, `${pw}: datasource uid must be the provisioned '${promDs?.uid}'`);
    if (!check(Array.isArray(p.targets) && p.targets.length > 0, `${pw}: no targets`)) continue;
    const refIds = new Set();
    for (const t of p.targets) {
      check(typeof t.expr === 'string' && t.expr.trim(), `${pw}: target ${t.refId} has no expr`);
      check(t.refId && !refIds.has(t.refId), `${pw}: refId missing or repeated`);
      refIds.add(t.refId);
      for (const [, v] of (t.expr ?? '').matchAll(/\$\{?(\w+)/g)) {
        check(v.startsWith('__') || vars.has(v), `${pw}: variable $${v} is not defined in templating`);
      }
    }
  }
}

// ---- Alertmanager -------------------------------------------------------------------------------

const am = doc('alertmanager/alertmanager.yml');
const receivers = new Set((am.receivers ?? []).map((r) => r.name));
const routeReceivers = (r) => [r.receiver, ...(r.routes ?? []).flatMap(routeReceivers)].filter(Boolean);
check(am.route?.receiver, 'alertmanager/alertmanager.yml: route.receiver');
for (const r of routeReceivers(am.route ?? {})) check(receivers.has(r), `alertmanager/alertmanager.yml: unknown receiver '${r}'`);
for (const r of am.receivers ?? []) {
  for (const w of r.webhook_configs ?? []) check(/^https?:\/\//.test(w.url), `alertmanager/alertmanager.yml: webhook url '${w.url}'`);
}

// ---- Kubernetes ---------------------------------------------------------------------------------

const kKinds = {
  Deployment: 'apps/v1', Service: 'v1', ConfigMap: 'v1', Secret: 'v1',
  HorizontalPodAutoscaler: 'autoscaling/v2', PodDisruptionBudget: 'policy/v1',
  ServiceMonitor: 'monitoring.coreos.com/v1',
};
const k8s = [];
for (const [f, docs] of yamlDocs) {
  if (!f.startsWith(path.join(kDeploy, 'k8s') + path.sep)) continue;
  for (const d of docs.filter(Boolean)) {
    const where = `${rel(f)}: ${d.kind}/${d.metadata?.name}`;
    if (!check(d.apiVersion && d.kind && d.metadata?.name, `${rel(f)}: apiVersion, kind and metadata.name are required`)) continue;
    check(kKinds[d.kind] === d.apiVersion, `${where}: apiVersion ${d.apiVersion}, expected ${kKinds[d.kind] ?? '(unknown kind)'}`);
    check(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(d.metadata.name), `${where}: name is not a DNS label`);
    k8s.push({ ...d, where });
  }
}
const byKind = (kind) => k8s.filter((d) => d.kind === kind);
for (const kind of Object.keys(kKinds)) check(byKind(kind).length >= 1, `k8s: no ${kind}`);
const named = (kind, name) => byKind(kind).find((d) => d.metadata.name === name);

for (const dep of byKind('Deployment')) {
  const tpl = dep.spec?.template ?? {};
  const podLabels = tpl.metadata?.labels;
  check(subset(dep.spec?.selector?.matchLabels, podLabels), `${dep.where}: selector does not match the pod labels`);
  const configMaps = new Set();
  for (const v of tpl.spec?.volumes ?? []) {
    if (v.configMap) {
      check(named('ConfigMap', v.configMap.name), `${dep.where}: volume '${v.name}' names missing ConfigMap '${v.configMap.name}'`);
      configMaps.add(v.configMap.name);
    }
  }
  const containers = tpl.spec?.containers ?? [];
  check(containers.length > 0, `${dep.where}: no containers`);
  for (const c of containers) {
    const cw = `${dep.where}: container ${c.name}`;
    const portNames = new Set((c.ports ?? []).map((p) => p.name));
    for (const m of c.volumeMounts ?? []) {
      check((tpl.spec?.volumes ?? []).some((v) => v.name === m.name), `${cw}: mounts unknown volume '${m.name}'`);
    }
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
      if (!ref) continue;
      const kind = e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap';
      const target = named(kind, ref.name);
      if (check(target, `${cw}: env ${e.name} names missing ${kind} '${ref.name}'`)) {
        const keys = Object.keys({ ...target.data, ...target.stringData });
        check(keys.includes(ref.key), `${cw}: env ${e.name}: ${kind} '${ref.name}' has no key '${ref.key}'`);
      }
    }
    const masterKey = (c.env ?? []).find((e) => e.name === 'ONDOL_MASTER_KEY');
    check(masterKey?.valueFrom?.secretKeyRef, `${cw}: ONDOL_MASTER_KEY must come from a Secret`);
    // The config the container reads, from its ConfigMap: probes must work without a key.
    const args = c.args ?? [];
    const configPath = args[args.indexOf('--config') + 1];
    const mount = (c.volumeMounts ?? []).find((m) => configPath?.startsWith(m.mountPath + '/'));
    const volume = (tpl.spec?.volumes ?? []).find((v) => v.name === mount?.name);
    const cm = volume?.configMap && named('ConfigMap', volume.configMap.name);
    const configText = cm?.data?.[path.basename(configPath ?? '')];
    let publicRoutes = [];
    if (check(args.includes('--config') && configText, `${cw}: --config must be a file of a mounted ConfigMap`)) {
      const cfg = parseYaml(configText, `${cm.where}: data.config.yaml`)[0] ?? {};
      check(cfg.model_list?.length > 0, `${cm.where}: config.yaml has no model_list`);
      publicRoutes = cfg.general_settings?.public_routes ?? [];
    }
    const probes = { livenessProbe: '/health', readinessProbe: '/ready', startupProbe: null };
    for (const [probe, expected] of Object.entries(probes)) {
      const p = c[probe];
      if (!p) {
        check(expected === null, `${cw}: no ${probe}`);
        continue;
      }
      const get = p.httpGet;
      if (!check(get?.path, `${cw}: ${probe} must be an httpGet`)) continue;
      if (expected) check(get.path === expected, `${cw}: ${probe} path ${get.path}, expected ${expected}`);
      check(isEndpoint(get.path), `${cw}: ${probe} path ${get.path} is not an ondol endpoint`);
      check(kEndpoints.alwaysPublic.includes(get.path) || publicRoutes.includes(get.path),
        `${cw}: ${probe} path ${get.path} needs a key (not always public, not in public_routes)`);
      check(typeof get.port === 'number' || portNames.has(get.port), `${cw}: ${probe} port '${get.port}' is not a container port`);
    }
  }
}
for (const svc of byKind('Service')) {
  const target = byKind('Deployment').find((d) => subset(svc.spec?.selector, d.spec?.template?.metadata?.labels));
  if (!check(target, `${svc.where}: selector matches no Deployment's pod labels`)) continue;
  const ports = new Set(target.spec.template.spec.containers.flatMap((c) => (c.ports ?? []).flatMap((p) => [p.name, p.containerPort])));
  for (const p of svc.spec.ports ?? []) check(ports.has(p.targetPort), `${svc.where}: targetPort '${p.targetPort}' is no container port`);
}
for (const hpa of byKind('HorizontalPodAutoscaler')) {
  const ref = hpa.spec?.scaleTargetRef ?? {};
  check(named(ref.kind, ref.name) && kKinds[ref.kind] === ref.apiVersion, `${hpa.where}: scaleTargetRef names no ${ref.kind} here`);
  check(hpa.spec.minReplicas >= 1 && hpa.spec.maxReplicas >= hpa.spec.minReplicas, `${hpa.where}: min/max replicas`);
  check((hpa.spec.metrics ?? []).length > 0, `${hpa.where}: no metrics`);
}
for (const pdb of byKind('PodDisruptionBudget')) {
  check(byKind('Deployment').some((d) => subset(pdb.spec?.selector?.matchLabels, d.spec?.template?.metadata?.labels)),
    `${pdb.where}: selector matches no Deployment's pods`);
  check((pdb.spec.minAvailable !== undefined) !== (pdb.spec.maxUnavailable !== undefined), `${pdb.where}: one of minAvailable/maxUnavailable`);
}
for (const sm of byKind('ServiceMonitor')) {
  const svc = byKind('Service').find((s) => subset(sm.spec?.selector?.matchLabels, s.metadata.labels));
  if (!check(svc, `${sm.where}: selector matches no Service's labels`)) continue;
  for (const e of sm.spec.endpoints ?? []) {
    check(svc.spec.ports.some((p) => p.name === e.port), `${sm.where}: endpoint port '${e.port}' is not a port name of Service ${svc.metadata.name}`);
    check(isEndpoint(e.path ?? '/metrics'), `${sm.where}: path ${e.path} is not an ondol endpoint`);
  }
  check(svc.metadata.name === 'ondol', `${sm.where}: the scrape job is named after the Service, and the alerts select job="ondol"`);
}

// ---- systemd ------------------------------------------------------------------------------------

const unitFile = path.join(kDeploy, 'systemd/ondol.service');
const unit = {};
let section = null;
for (const line of readFileSync(unitFile, 'utf8').split('\n')) {
  const s = /^\[(\w+)\]$/.exec(line.trim());
  if (s) { section = s[1]; unit[section] = {}; continue; }
  const kv = /^(\w+)=(.*)$/.exec(line);
  if (kv && section) (unit[section][kv[1]] ??= []).push(kv[2]);
}
const svc = unit.Service ?? {};
const one = (k) => svc[k]?.at(-1);
check(/^\/\S+\/ondol serve /.test(one('ExecStart') ?? ''), 'systemd/ondol.service: ExecStart must run ondol serve by absolute path');
check(one('Restart') === 'on-failure' && one('RestartSec'), 'systemd/ondol.service: Restart=on-failure and RestartSec');
check(/kill -HUP \$MAINPID/.test(one('ExecReload') ?? ''), 'systemd/ondol.service: ExecReload must send SIGHUP');
check(one('EnvironmentFile'), 'systemd/ondol.service: EnvironmentFile (the master key)');
check(one('StandardOutput') === 'journal', 'systemd/ondol.service: logs to the journal');
check(one('KillSignal') === 'SIGTERM' && one('TimeoutStopSec'), 'systemd/ondol.service: SIGTERM and a stop timeout (drain)');
check(one('NoNewPrivileges') === 'yes' && one('ProtectSystem') === 'strict', 'systemd/ondol.service: hardening');
check(unit.Install?.WantedBy, 'systemd/ondol.service: [Install] WantedBy');
const drain = Number(/--drain-timeout (\d+)/.exec(one('ExecStart') ?? '')?.[1] ?? 30);
check(parseFloat(one('TimeoutStopSec') ?? '0') > drain, 'systemd/ondol.service: TimeoutStopSec must exceed --drain-timeout');

// -------------------------------------------------------------------------------------------------

if (problems.length) {
  console.error(`deploy/ check: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`deploy/ check: ${files.length} files, ${checks} checks passed`);
