// Third-party programs the e2e tests run next to ondol: openssl (a throwaway CA), nginx (a TLS
// terminator) and Prometheus (a real scraper). They are Debian packages; each runs from the
// test's temp dir on a free loopback port and is started through the Harness, so it is killed
// when the test ends like any ondol process.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import { closedPort, sleep } from './harness.mjs';

const run = promisify(execFile);
const kReadyTimeoutMs = 15_000;

export const kNginxBin = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
export const kPrometheusBin = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
export const kOpensslBin = process.env.OPENSSL_BIN ?? 'openssl';

function requireBin(bin, pkg) {
  if (bin.includes('/') && !existsSync(bin)) {
    throw new Error(`${bin} not found: install the Debian package ${pkg}`);
  }
}

async function openssl(args, cwd) {
  try {
    await run(kOpensslBin, args, { cwd, timeout: 10_000 });
  } catch (err) {
    throw new Error(`openssl ${args.join(' ')} failed: ${err.message}\n${err.stderr ?? ''}`);
  }
}

// A throwaway CA and a server certificate it signed for 127.0.0.1 / localhost, in dir/tls.
// Returns the paths {caCert, serverCert, serverKey}.
export async function makeTestPki(dir) {
  const tls = path.join(dir, 'tls');
  await mkdir(tls, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=ondol e2e throwaway CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], tls);
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr',
    '-subj', '/CN=127.0.0.1'], tls);
  await writeFile(path.join(tls, 'server.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '',
  ].join('\n'));
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], tls);
  return {
    caCert: path.join(tls, 'ca.pem'),
    serverCert: path.join(tls, 'server.pem'),
    serverKey: path.join(tls, 'server.key'),
  };
}

// Resolves once something accepts TCP connections on 127.0.0.1:port; throws if proc exits first.
export async function waitTcp(proc, port, timeoutMs = kReadyTimeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!proc.running) {
      throw new Error(`${proc.name} exited (${proc.describeExit()}) before listening:\n${proc.output}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${proc.name} did not listen on ${port} within ${timeoutMs} ms:\n${proc.output}`);
    }
    await sleep(50);
  }
}

// nginx in the foreground as a TLS terminator on a free port, proxying to http://127.0.0.1:
// upstreamPort (no buffering, so SSE streams pass through as they come). It listens on 127.0.0.1
// and, with the same certificate, on 127.0.0.2 (an address the certificate does not name).
// Returns {proc, port}.
export async function startTlsProxy(h, { upstreamPort, pki }) {
  requireBin(kNginxBin, 'nginx');
  const prefix = path.join(h.dir, 'nginx');
  await mkdir(path.join(prefix, 'logs'), { recursive: true });
  const port = await closedPort();
  const conf = path.join(prefix, 'nginx.conf');
  // master_process off: one process, running as the user that runs the tests (no worker that
  // switches to `nobody` and then cannot write the temp paths under the 0700 temp dir).
  await writeFile(conf, `
daemon off;
master_process off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log info;
events { worker_connections 256; }
http {
  access_log ${prefix}/logs/access.log;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    listen 127.0.0.2:${port} ssl;
    server_name localhost;
    ssl_certificate ${pki.serverCert};
    ssl_certificate_key ${pki.serverKey};
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`);
  const proc = h.spawn('nginx', ['-p', prefix, '-c', conf, '-e', `${prefix}/logs/error.log`],
    { bin: kNginxBin });
  await waitTcp(proc, port);
  return { proc, port };
}

// Prometheus scraping http://127.0.0.1:targetPort/metrics every second, as job "ondol".
// Returns {proc, url, query(expr)}: query resolves with the parsed /api/v1/query answer.
export async function startPrometheus(h, { targetPort }) {
  requireBin(kPrometheusBin, 'prometheus');
  const dir = path.join(h.dir, 'prometheus');
  await mkdir(path.join(dir, 'data'), { recursive: true });
  const port = await closedPort();
  const conf = path.join(dir, 'prometheus.yml');
  await writeFile(conf, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: ondol',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ["127.0.0.1:${targetPort}"]`,
    '',
  ].join('\n'));
  const proc = h.spawn('prometheus', [
    `--config.file=${conf}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--storage.tsdb.retention.time=1h',
    '--log.level=warn',
  ], { bin: kPrometheusBin, cwd: dir });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + kReadyTimeoutMs;
  for (;;) {
    const ready = await fetch(`${url}/-/ready`).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (!proc.running) {
      throw new Error(`prometheus exited (${proc.describeExit()}):\n${proc.output}`);
    }
    if (Date.now() > deadline) throw new Error(`prometheus not ready within ${kReadyTimeoutMs} ms`);
    await sleep(100);
  }
  const query = async (expr) => {
    const res = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: expr }).toString(),
    });
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`prometheus /api/v1/query (${res.status}) is not JSON: ${text}`);
    }
  };
  return { proc, url, query };
}
