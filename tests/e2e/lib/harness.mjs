// Hermetic process harness for the e2e tests: every test gets a temp dir, starts `ondol serve` and
// `ondol mock-upstream` processes on port 0 and learns their ports from the line
// `ONDOL_LISTENING port=N` on stdout. Everything a test started is killed when it ends, whether it
// passed or failed, and a failing test's error message carries the tail of each process's log.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'node:test';
import OpenAI from 'openai';

import { toYaml } from './yaml.mjs';

const kRepoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const kStartupTimeoutMs = 10_000;   // from spawn to `ONDOL_LISTENING`
const kStopTimeoutMs = 5_000;       // SIGTERM, then SIGKILL
const kLogTailChars = 4_000;        // per process, appended to a failing test's message
const kDefaultTestTimeoutMs = 30_000;

// The binary under test: $ONDOL_BIN, else what `make test` builds.
export function ondolBin() {
  const bin = process.env.ONDOL_BIN ?? path.join(kRepoRoot, 'build/release/apps/ondol/ondol');
  if (!existsSync(bin)) {
    throw new Error(`ondol binary not found at ${bin}; build it or set ONDOL_BIN`);
  }
  return bin;
}

// Every child of this test process, so that even an unexpected exit leaves none behind.
const allChildren = new Set();
process.on('exit', () => {
  for (const child of allChildren) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// One spawned ondol process: its port once listening, its output, its exit. opts.bin runs another
// program instead (nginx, prometheus), with the same logging and cleanup; opts.cwd its directory.
export class OndolProcess {
  constructor(name, args, { env, bin, cwd } = {}) {
    this.name = name;
    this.args = args;
    this.output = '';   // stdout and stderr interleaved
    this.stdout = '';
    this.stderr = '';
    this.exitCode = undefined;   // set once exited: a number, or null when killed by a signal
    this.exitSignal = undefined;
    this.child = spawn(bin ?? ondolBin(), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      cwd,
    });
    allChildren.add(this.child);
    this.exited = new Promise((resolve) => {
      const onExit = (code, signal) => {
        if (this.exitCode !== undefined) return;
        this.exitCode = code;
        this.exitSignal = signal;
        allChildren.delete(this.child);
        resolve({ code, signal });
      };
      // 'close' comes after 'exit' once stdout and stderr are drained: the output is complete.
      this.child.on('close', onExit);
      // A binary that cannot be started (missing, not executable) emits only 'error'.
      this.child.on('error', (err) => {
        this.output += `\n[spawn error] ${err.message}\n`;
        if (this.child.pid === undefined) onExit(-1, null);
      });
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (s) => { this.output += s; this.stdout += s; });
    this.child.stderr.on('data', (s) => { this.output += s; this.stderr += s; });
  }

  get pid() { return this.child.pid; }
  get running() { return this.exitCode === undefined; }

  // Resolves with the port from `ONDOL_LISTENING port=N`; rejects if the process exits first or
  // does not print it in time.
  async waitListening(timeoutMs = kStartupTimeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /ONDOL_LISTENING port=(\d+)/.exec(this.output);
      if (m) {
        this.port = Number(m[1]);
        return this.port;
      }
      if (!this.running) {
        throw new Error(`${this.name} exited (code ${this.exitCode}, signal ${this.exitSignal}) ` +
          `before listening:\n${this.output}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.name} did not print ONDOL_LISTENING within ${timeoutMs} ms:\n` +
          this.output);
      }
      await sleep(10);
    }
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  signal(sig) { this.child.kill(sig); }

  // Resolves with {code, signal}, or rejects after timeoutMs.
  async waitExit(timeoutMs) {
    return withTimeout(this.exited, timeoutMs, `${this.name} did not exit within ${timeoutMs} ms`);
  }

  async stop() {
    if (!this.running) return;
    this.stoppedByHarness = true;
    this.child.kill('SIGTERM');
    try {
      await this.waitExit(kStopTimeoutMs);
    } catch {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  describeExit() {
    if (this.running) return 'still running';
    const how = this.exitSignal ? `signal ${this.exitSignal}` : `code ${this.exitCode}`;
    const ours = this.stoppedByHarness &&
      (this.exitCode === 0 || ['SIGTERM', 'SIGKILL'].includes(this.exitSignal));
    return ours ? `stopped by the harness (${how})` : `EXITED ON ITS OWN (${how})`;
  }

  logTail() {
    return this.output.length > kLogTailChars
      ? '...' + this.output.slice(-kLogTailChars) : this.output;
  }
}

// What one test owns: a temp dir and processes. Create it through e2eTest().
export class Harness {
  constructor(dir) {
    this.dir = dir;
    this.processes = [];
  }

  spawn(name, args, opts = {}) {
    // State files (the tenant store's SQLite file and spool) stay in this test's directory.
    const env = { ONDOL_STATE_DIR: this.dir, ...opts.env };
    const p = new OndolProcess(name, args, { ...opts, env });
    this.processes.push(p);
    return p;
  }

  // `ondol mock-upstream` on a free port. flags: {latencyMs, chunkDelayMs, tokensPerChunk,
  // outputTokens, failStatus}.
  async mockUpstream(flags = {}) {
    const args = ['mock-upstream', '--host', '127.0.0.1', '--port', '0', '--io-threads', '1'];
    const map = {
      latencyMs: '--latency-ms', chunkDelayMs: '--chunk-delay-ms',
      tokensPerChunk: '--tokens-per-chunk', outputTokens: '--output-tokens',
      failStatus: '--fail-status',
    };
    for (const [k, v] of Object.entries(flags)) {
      if (!(k in map)) throw new Error(`unknown mock-upstream flag ${k}`);
      args.push(map[k], String(v));
    }
    const name = `mock-upstream#${this.processes.length}`;
    const p = this.spawn(name, args);
    await p.waitListening();
    return new MockUpstream(p);
  }

  // Writes `config` (an object, serialized to YAML, or a YAML string) into the temp dir.
  async writeConfig(config, file = 'config.yaml') {
    const configPath = path.join(this.dir, file);
    await writeFile(configPath, typeof config === 'string' ? config : toYaml(config));
    return configPath;
  }

  // `ondol serve --config` on a free port. config: object or YAML text, or null for the embedded
  // default. extraArgs: more flags, e.g. ['--max-body-bytes', '1024'].
  async gateway(config, { extraArgs = [], env } = {}) {
    const args = ['serve', '--host', '127.0.0.1', '--port', '0', '--io-threads', '1'];
    let configPath = null;
    if (config !== null) {
      configPath = await this.writeConfig(config);
      args.push('--config', configPath);
    }
    args.push(...extraArgs);
    const p = this.spawn(`gateway#${this.processes.length}`, args, { env });
    await p.waitListening();
    return new Gateway(p, configPath);
  }

  async stopAll() {
    await Promise.all(this.processes.map((p) => p.stop()));
  }

  async close() {
    await this.stopAll();
    await rm(this.dir, { recursive: true, force: true });
  }

  logs() {
    return this.processes
      .map((p) => `----- ${p.name} (${p.args.join(' ')}) ${p.describeExit()} -----\n` +
        p.logTail())
      .join('\n');
  }
}

export class MockUpstream {
  constructor(proc) { this.proc = proc; }
  get port() { return this.proc.port; }
  // What a deployment's api_base is.
  get apiBase() { return `http://127.0.0.1:${this.proc.port}/v1`; }
  async stats() {
    const res = await fetch(`${this.proc.url}/mock/stats`);
    if (res.status !== 200) throw new Error(`GET /mock/stats: ${res.status}`);
    return res.json();
  }
}

export class Gateway {
  constructor(proc, configPath) {
    this.proc = proc;
    this.configPath = configPath;
  }
  get port() { return this.proc.port; }
  get url() { return this.proc.url; }
  get baseURL() { return `${this.proc.url}/v1`; }

  // An openai client for this gateway. SDK retries are off so that the gateway's own behaviour
  // is what the test sees.
  client({ apiKey = 'sk-e2e-unused', ...opts } = {}) {
    return new OpenAI({ baseURL: this.baseURL, apiKey, maxRetries: 0, timeout: 20_000, ...opts });
  }

  fetch(pathname, init) { return fetch(`${this.proc.url}${pathname}`, init); }
}

// A loopback port that nothing listens on: bound, then closed.
export async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

export async function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Polls fn() until it returns a truthy value; returns it, or throws after timeoutMs.
export async function waitFor(fn, { timeoutMs = 5_000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// test() with a Harness: fn(h, t). Processes and the temp dir are cleaned up however the test
// ends; a failure carries the processes' logs.
export function e2eTest(name, options, fn) {
  if (typeof options === 'function') {
    fn = options;
    options = {};
  }
  return test(name, { timeout: kDefaultTestTimeoutMs, ...options }, async (t) => {
    const h = new Harness(await mkdtemp(path.join(tmpdir(), 'ondol-e2e-')));
    t.after(() => h.close());
    try {
      await fn(h, t);
    } catch (err) {
      await h.stopAll();  // flushes the logs, and shows whether a process had died on its own
      if (err && typeof err === 'object') {
        try {
          err.message = `${err.message}\n\n${h.logs()}`;
        } catch { /* read-only message */ }
      }
      throw err;
    } finally {
      await h.close();
    }
  });
}
