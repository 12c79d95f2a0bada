// Open-loop load at a fixed request rate over keep-alive connections; per-request latency
// percentiles. bench/gateway/run.sh uses it to measure what a proxy adds at a load it can carry
// (1,000 requests/s): added latency = p99 through the proxy - p99 straight to the upstream.
//
//   node fixed_rate.mjs --url http://127.0.0.1:PORT/v1/chat/completions [--rate 1000]
//        [--duration 10] [--warmup 1] [--mode nonstream|stream] [--max-tokens 16]
//        [--connections 16] [--max-connections 256] [--header 'name: value']...
//
// Why not wrk: wrk is closed-loop (a slow answer delays the next request, which hides latency),
// and wrk2 (wrk with a fixed rate) is not packaged for Debian 12.
//
// How it works. Request i is due at start + i / rate (uniform spacing, no bursts beyond timer
// granularity). When it is due it goes out on an idle connection; if none is idle a new one is
// opened (up to --max-connections) and the request waits for it (`queued` counts these); past that
// cap requests wait for a connection to come free and the run is marked `overloaded`: the server
// did not keep up with the rate. Latency is measured from the moment the request is written
// to the socket to the moment its response is complete (for a stream: the terminating chunk, after
// `data: [DONE]`); `ttfb` is the time to the first response byte. `lag` is how late the sends were
// against the schedule (timer granularity of the load generator itself, about 1 ms); latency
// `from_schedule` adds that lag back in, which matters only if the generator fell behind.
// Requests due during the first --warmup seconds are sent but not recorded.
//
// HTTP parsing is a minimal HTTP/1.1 response reader on raw sockets (Content-Length and chunked
// bodies, no trailers), so the tool's own overhead per request stays a few microseconds and the
// same for every target. Prints one line: `FIXED_RATE_JSON {...}` with times in microseconds.

import net from 'node:net';
import { performance } from 'node:perf_hooks';

const kEndTimeoutMs = 5000;  // how long to wait for outstanding answers after the last send

function parseArgs(argv) {
  const opts = {
    url: null, rate: 1000, duration: 10, warmup: 1, mode: 'nonstream', maxTokens: 16,
    connections: 16, maxConnections: 256, headers: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--url') opts.url = next();
    else if (a === '--rate') opts.rate = Number(next());
    else if (a === '--duration') opts.duration = Number(next());
    else if (a === '--warmup') opts.warmup = Number(next());
    else if (a === '--mode') opts.mode = next();
    else if (a === '--max-tokens') opts.maxTokens = Number(next());
    else if (a === '--connections') opts.connections = Number(next());
    else if (a === '--max-connections') opts.maxConnections = Number(next());
    else if (a === '--header') opts.headers.push(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.url) throw new Error('--url is required');
  if (!['nonstream', 'stream'].includes(opts.mode)) throw new Error('--mode: nonstream or stream');
  if (!(opts.rate > 0 && opts.duration > 0 && opts.warmup >= 0)) throw new Error('bad rate/duration');
  return opts;
}

function buildRequest(opts) {
  const u = new URL(opts.url);
  if (u.protocol !== 'http:') throw new Error('only http:// URLs');
  const stream = opts.mode === 'stream' ? ', "stream": true' : '';
  const body = '{"model": "bench", "messages": [{"role": "user", "content": '
    + `"Say hello to the benchmark, please."}], "max_tokens": ${opts.maxTokens}${stream}}`;
  const lines = [
    `POST ${u.pathname}${u.search} HTTP/1.1`,
    `Host: ${u.host}`,
    'Content-Type: application/json',
    'Authorization: Bearer bench',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...opts.headers,
  ];
  return {
    host: u.hostname, port: Number(u.port || 80),
    bytes: Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body),
  };
}

const kDoneMarker = Buffer.from('data: [DONE]');

// One keep-alive connection and the response parser for the request in flight on it.
class Connection {
  constructor(target, onFree, onDead) {
    this.target = target;
    this.onFree = onFree;
    this.onDead = onDead;
    this.busy = false;
    this.alive = false;
    this.inflight = null;  // {index, sentAt, dueAt, firstByteAt}
    this.socket = net.connect({ host: target.host, port: target.port });
    this.socket.setNoDelay(true);
    this.socket.on('connect', () => { this.alive = true; this.onFree(this); });
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', () => {});
    this.socket.on('close', () => this.onClose());
    this.resetParser();
  }

  resetParser() {
    this.buf = null;            // unconsumed bytes
    this.state = 'head';        // head | length | chunk-size | chunk-data | chunk-crlf | final-crlf
    this.remaining = 0;
    this.status = 0;
    this.closeAfter = false;
    this.sawDone = false;
    this.tail = Buffer.alloc(0);  // last bytes of body, to find `data: [DONE]` across reads
  }

  send(req) {
    this.busy = true;
    this.inflight = req;
    req.sentAt = performance.now();
    this.socket.write(this.target.bytes);
  }

  onData(chunk) {
    const req = this.inflight;
    if (!req) { this.socket.destroy(); return; }  // bytes nobody asked for
    if (req.firstByteAt === undefined) req.firstByteAt = performance.now();
    this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const progressed = this.step();
      if (this.state === 'complete') { this.finish(true); return; }
      if (this.state === 'bad') { this.finish(false); this.socket.destroy(); return; }
      if (!progressed) return;
    }
  }

  // Advances the parser over this.buf; returns false when it needs more bytes.
  step() {
    const buf = this.buf;
    if (!buf || buf.length === 0) return false;
    switch (this.state) {
      case 'head': {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return false;
        const head = buf.toString('latin1', 0, end);
        this.buf = buf.subarray(end + 4);
        const lines = head.split('\r\n');
        this.status = Number(lines[0].split(' ')[1]);
        let length = -1;
        let chunked = false;
        for (let i = 1; i < lines.length; i++) {
          const colon = lines[i].indexOf(':');
          const name = lines[i].slice(0, colon).trim().toLowerCase();
          const value = lines[i].slice(colon + 1).trim().toLowerCase();
          if (name === 'content-length') length = Number(value);
          else if (name === 'transfer-encoding') chunked = value.includes('chunked');
          else if (name === 'connection') this.closeAfter = value.includes('close');
        }
        if (chunked) this.state = 'chunk-size';
        else if (length >= 0) { this.state = 'length'; this.remaining = length; }
        else this.state = 'bad';  // read-until-close bodies: not expected from any target
        if (this.state === 'length' && length === 0) this.state = 'complete';
        return true;
      }
      case 'length': {
        const n = Math.min(this.remaining, buf.length);
        this.remaining -= n;
        this.buf = buf.subarray(n);
        if (this.remaining === 0) this.state = 'complete';
        return true;
      }
      case 'chunk-size': {
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return false;
        const size = parseInt(buf.toString('latin1', 0, eol).split(';')[0], 16);
        this.buf = buf.subarray(eol + 2);
        if (Number.isNaN(size)) { this.state = 'bad'; return true; }
        if (size === 0) { this.state = 'final-crlf'; return true; }
        this.remaining = size;
        this.state = 'chunk-data';
        return true;
      }
      case 'chunk-data': {
        const n = Math.min(this.remaining, buf.length);
        this.noteBody(buf.subarray(0, n));
        this.remaining -= n;
        this.buf = buf.subarray(n);
        if (this.remaining === 0) this.state = 'chunk-crlf';
        return true;
      }
      case 'chunk-crlf':
      case 'final-crlf': {
        if (buf.length < 2) return false;
        this.buf = buf.subarray(2);
        this.state = this.state === 'chunk-crlf' ? 'chunk-size' : 'complete';
        return true;
      }
      default:
        return false;
    }
  }

  noteBody(piece) {
    if (this.sawDone) return;
    const joined = Buffer.concat([this.tail, piece]);
    if (joined.indexOf(kDoneMarker) >= 0) this.sawDone = true;
    this.tail = joined.subarray(Math.max(0, joined.length - kDoneMarker.length));
  }

  finish(parsed) {
    const req = this.inflight;
    req.doneAt = performance.now();
    req.ok = parsed && this.status >= 200 && this.status < 300
      && (this.target.mode !== 'stream' || this.sawDone);
    req.status = this.status;
    this.inflight = null;
    const reuse = parsed && !this.closeAfter && (!this.buf || this.buf.length === 0);
    this.resetParser();
    this.busy = false;
    this.target.onComplete(req);
    if (reuse) this.onFree(this);
    else this.socket.destroy();
  }

  onClose() {
    const wasAlive = this.alive;
    this.alive = false;
    if (this.inflight) {
      const req = this.inflight;
      this.inflight = null;
      req.doneAt = performance.now();
      req.ok = false;
      req.status = 0;
      this.target.onComplete(req);
    }
    this.onDead(this, wasAlive);
  }
}

function percentiles(values) {
  if (values.length === 0) return null;
  const a = Float64Array.from(values).sort();
  const at = (q) => a[Math.min(a.length - 1, Math.ceil((q / 100) * a.length) - 1)];
  let sum = 0;
  for (const v of a) sum += v;
  const us = (ms) => Math.round(ms * 1000);
  return {
    count: a.length, min: us(a[0]), mean: us(sum / a.length), p50: us(at(50)), p90: us(at(90)),
    p99: us(at(99)), p99_9: us(at(99.9)), max: us(a[a.length - 1]),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const req = buildRequest(opts);
  const total = Math.round(opts.rate * (opts.warmup + opts.duration));
  const numWarmup = Math.round(opts.rate * opts.warmup);
  const intervalMs = 1000 / opts.rate;

  const idle = [];
  const all = new Set();
  const waiting = [];  // requests due while every connection was busy and the cap was reached
  let numCompleted = 0;
  let numErrors = 0;
  let numQueued = 0;
  let lastDoneAt = 0;
  let numOutstanding = 0;
  let maxOutstanding = 0;
  let numConnectFailures = 0;
  const errorStatuses = {};
  const latency = [];
  const fromSchedule = [];
  const ttfb = [];
  const lag = [];
  let finishedResolve;
  const finished = new Promise((resolve) => { finishedResolve = resolve; });

  const target = {
    host: req.host, port: req.port, bytes: req.bytes, mode: opts.mode,
    onComplete(r) {
      numCompleted++;
      numOutstanding--;
      if (r.index >= numWarmup && r.doneAt > lastDoneAt) lastDoneAt = r.doneAt;
      if (!r.ok) {
        numErrors++;
        errorStatuses[r.status] = (errorStatuses[r.status] || 0) + 1;
      } else if (r.index >= numWarmup) {
        latency.push(r.doneAt - r.sentAt);
        fromSchedule.push(r.doneAt - r.dueAt);
        ttfb.push(r.firstByteAt - r.sentAt);
        lag.push(r.sentAt - r.dueAt);
      }
      if (numCompleted === total) finishedResolve();
    },
  };

  const onFree = (conn) => {
    const next = waiting.shift();
    if (next) conn.send(next);
    else idle.push(conn);
  };
  const onDead = (conn, wasAlive) => {
    all.delete(conn);
    const i = idle.indexOf(conn);
    if (i >= 0) idle.splice(i, 1);
    if (!wasAlive) numConnectFailures++;
  };
  const open = () => {
    all.add(new Connection(target, onFree, onDead));
  };

  for (let i = 0; i < opts.connections; i++) open();
  const readyBy = performance.now() + 2000;
  while (idle.length < opts.connections && performance.now() < readyBy) {
    await new Promise((r) => setTimeout(r, 5));
  }
  if (idle.length === 0) throw new Error(`could not connect to ${opts.url}`);

  const dispatch = (r) => {
    numOutstanding++;
    if (numOutstanding > maxOutstanding) maxOutstanding = numOutstanding;
    const conn = idle.pop();
    if (conn) { conn.send(r); return; }
    if (all.size < opts.maxConnections) open();
    numQueued++;
    waiting.push(r);
  };

  const start = performance.now() + 1;
  let i = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < total && start + i * intervalMs <= now) {
        dispatch({ index: i, dueAt: start + i * intervalMs });
        i++;
      }
      if (i < total) setTimeout(tick, Math.max(0, start + i * intervalMs - performance.now()));
      else resolve();
    };
    tick();
  });
  const timeout = new Promise((r) => setTimeout(r, kEndTimeoutMs));
  await Promise.race([finished, timeout]);
  const numTimedOut = total - numCompleted;
  for (const c of all) c.socket.destroy();

  // Achieved rate: answers completed after the warm-up over the time from the first of them being
  // due to the last one finishing; below the target rate when the server cannot keep up.
  const measuredSeconds = (lastDoneAt - (start + numWarmup * intervalMs)) / 1000;
  const result = {
    url: opts.url, mode: opts.mode, rate_target: opts.rate, duration_s: opts.duration,
    warmup_s: opts.warmup, sent: total, recorded: latency.length,
    achieved_rate: measuredSeconds > 0 ? Math.round(latency.length / measuredSeconds) : 0,
    // More requests in flight than connections allowed: requests waited in the generator, so the
    // server did not keep up with the rate and `latency_us` understates what clients would see
    // (`latency_from_schedule_us` does not).
    overloaded: maxOutstanding > opts.maxConnections,
    max_outstanding: maxOutstanding,
    errors: numErrors, error_statuses: errorStatuses, timed_out: numTimedOut,
    queued: numQueued, connect_failures: numConnectFailures, connections_max: opts.maxConnections,
    latency_us: percentiles(latency), latency_from_schedule_us: percentiles(fromSchedule),
    ttfb_us: percentiles(ttfb), lag_us: percentiles(lag),
  };
  process.stdout.write(`FIXED_RATE_JSON ${JSON.stringify(result)}\n`);
  process.exit(numErrors + numTimedOut > 0 ? 2 : 0);
}

main().catch((e) => {
  process.stderr.write(`fixed_rate: ${e.message}\n`);
  process.exit(1);
});
