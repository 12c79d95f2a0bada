// A real redis-server (Debian's package) for e2e tests: a free loopback port, a directory in the
// test's temp dir, no persistence. Started through the Harness, so it is killed when the test
// ends; stop() and start() again on the same port simulate an outage and a recovery.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { closedPort } from './harness.mjs';
import { waitTcp } from './external.mjs';

export const kRedisBin = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

export class RedisServer {
  constructor(h, port, dir) {
    this.h = h;
    this.port = port;
    this.dir = dir;
    this.proc = null;
  }

  get url() { return `redis://127.0.0.1:${this.port}/0`; }

  async start() {
    this.proc = this.h.spawn(`redis-server:${this.port}`, [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--protected-mode', 'no',
    ], { bin: kRedisBin });
    await waitTcp(this.proc, this.port);
  }

  async stop() {
    if (this.proc) await this.proc.stop();
    this.proc = null;
  }
}

export async function startRedis(h) {
  const port = await closedPort();
  const dir = path.join(h.dir, `redis-${port}`);
  await mkdir(dir, { recursive: true });
  const r = new RedisServer(h, port, dir);
  await r.start();
  return r;
}
