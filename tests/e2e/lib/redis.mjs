// A real redis-server (Debian's package) for e2e tests: a free loopback port, a directory in the
// test's temp dir, no persistence. Started through the Harness, so it is killed when the test
// ends; stop() and start() again on the same port simulate an outage and a recovery. With `tls`
// ({serverCert, serverKey, caCert} from makeTestPki) it speaks TLS only, and url is rediss://.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { closedPort } from './harness.mjs';
import { waitTcp } from './external.mjs';

export const kRedisBin = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

export class RedisServer {
  constructor(h, port, dir, tls = null) {
    this.h = h;
    this.port = port;
    this.dir = dir;
    this.tls = tls;
    this.proc = null;
  }

  get url() {
    return this.tls
      ? `rediss://127.0.0.1:${this.port}/0?ssl_ca_certs=${encodeURIComponent(this.tls.caCert)}`
      : `redis://127.0.0.1:${this.port}/0`;
  }

  async start() {
    const listen = this.tls
      ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', this.tls.serverCert,
         '--tls-key-file', this.tls.serverKey, '--tls-ca-cert-file', this.tls.caCert,
         '--tls-auth-clients', 'no']
      : ['--port', String(this.port)];
    this.proc = this.h.spawn(`redis-server:${this.port}`, [
      ...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--protected-mode', 'no',
    ], { bin: kRedisBin });
    await waitTcp(this.proc, this.port);
  }

  // redis-cli arguments that reach this server.
  cliArgs() {
    return this.tls
      ? ['-p', String(this.port), '--tls', '--cacert', this.tls.caCert]
      : ['-p', String(this.port)];
  }

  async stop() {
    if (this.proc) await this.proc.stop();
    this.proc = null;
  }
}

export async function startRedis(h, { tls = null } = {}) {
  const port = await closedPort();
  const dir = path.join(h.dir, `redis-${port}`);
  await mkdir(dir, { recursive: true });
  const r = new RedisServer(h, port, dir, tls);
  await r.start();
  return r;
}
