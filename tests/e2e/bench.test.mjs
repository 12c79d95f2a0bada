// `ondol bench` against a mock upstream with known latency, and `ondol bench regress` against the
// in-process engine serving stories260K (a real trained model, read from ../shared).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { e2eTest } from './lib/harness.mjs';

const kRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const kShared = process.env.ONDOL_SHARED_DIR ?? path.resolve(kRepo, '../shared');
const kModel = path.join(kShared, 'models/stories260K.gguf');

// The mock waits kLatencyMs before its first byte and kChunkDelayMs between chunks. The bench
// must report them: medians within the tolerances below (timer slack and scheduling on a busy
// 2-core machine only ever add time, so the window is wider above than below).
const kLatencyMs = 50;
const kChunkDelayMs = 10;
const kBelowMs = 1.5;
const kTtftAboveMs = 15;
const kItlAboveMs = 5;

async function runOndol(h, args, timeoutMs = 20_000) {
  const p = h.spawn(`ondol ${args.slice(0, 2).join(' ')}`, args);
  const { code } = await p.waitExit(timeoutMs);
  return { code, output: p.output, stdout: p.stdout };
}

function assertWithin(value, expected, below, above, what) {
  assert.ok(value >= expected - below && value <= expected + above,
            `${what} = ${value} ms, expected ${expected} ms (-${below}/+${above})`);
}

e2eTest('ondol bench measures the mock upstream\'s latency as TTFT and its chunk delay as ITL',
  async (h) => {
    const mock = await h.mockUpstream({ latencyMs: kLatencyMs, chunkDelayMs: kChunkDelayMs });
    const resultPath = path.join(h.dir, 'result.json');
    const plotPath = path.join(h.dir, 'plot.svg');
    const numPrompts = 40;
    const outputLen = 8;
    const { code, stdout, output } = await runOndol(h, [
      'bench', '--base-url', `http://127.0.0.1:${mock.port}`, '--model', 'mock',
      '--dataset-name', 'random', '--random-input-len', '16', '--random-output-len',
      String(outputLen), '--num-prompts', String(numPrompts), '--max-concurrency', '8',
      '--percentile-metrics', 'ttft,tpot,itl,e2el', '--metric-percentiles', '50,90,99',
      '--goodput', 'ttft:5000', '--num-warmups', '3', '--save-result', resultPath, '--plot',
      plotPath, '--disable-tqdm',
    ]);
    assert.equal(code, 0, output);
    assert.match(stdout, /============ Serving Benchmark Result ============/);
    assert.match(stdout, /Successful requests:\s+40\s/);
    assert.match(stdout, /P99 ITL \(ms\):/);

    const r = JSON.parse(await readFile(resultPath, 'utf8'));
    assert.equal(r.completed, numPrompts);
    assert.equal(r.failed, 0);
    assert.equal(r.max_concurrency, 8);
    assert.equal(r.request_rate, 'inf');
    // Token counts come from the responses' usage: the mock counts one token per prompt word and
    // honours max_tokens.
    assert.equal(r.total_output_tokens, numPrompts * outputLen);
    assert.equal(r.total_input_tokens, numPrompts * 16);
    assert.deepEqual(r.output_lens, Array(numPrompts).fill(outputLen));
    assert.equal(r.request_goodput, r.request_throughput);
    assertWithin(r.median_ttft_ms, kLatencyMs, kBelowMs, kTtftAboveMs, 'median TTFT');
    assertWithin(r.median_itl_ms, kChunkDelayMs, kBelowMs, kItlAboveMs, 'median ITL');
    assertWithin(r.median_tpot_ms, kChunkDelayMs, kBelowMs, kItlAboveMs, 'median TPOT');
    assertWithin(r.median_e2el_ms, kLatencyMs + (outputLen - 1) * kChunkDelayMs, kBelowMs,
                 kTtftAboveMs + (outputLen - 1) * kItlAboveMs, 'median E2EL');
    assert.equal(r.itls.length, numPrompts);
    assert.equal(r.itls[0].length, outputLen - 1);
    assert.match(r.generated_texts[0], /^(\w+ ){8}$/);
    assert.ok(Array.isArray(r.throughput_over_time) && r.throughput_over_time.length >= 1);

    // The initial test request, the warm-ups, then the measured ones; nothing more.
    assert.equal((await mock.stats()).requests, 1 + 3 + numPrompts);

    const svg = await readFile(plotPath, 'utf8');
    assert.match(svg, /^<\?xml[^>]*\?>\s*<svg /);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    assert.equal((svg.match(/<polyline /g) ?? []).length, 5);
    assert.match(svg, /p99 [\d.]+ ms/);
  });

e2eTest('ondol bench with the chat backend and a Poisson request rate', async (h) => {
  const mock = await h.mockUpstream({ latencyMs: kLatencyMs, chunkDelayMs: kChunkDelayMs });
  const resultPath = path.join(h.dir, 'chat.json');
  const { code, output } = await runOndol(h, [
    'bench', '--backend', 'openai-chat', '--host', '127.0.0.1', '--port', String(mock.port),
    '--model', 'mock', '--random-input-len', '8', '--random-output-len', '4', '--num-prompts',
    '16', '--request-rate', '200', '--seed', '3', '--save-result', resultPath, '--disable-tqdm',
  ]);
  assert.equal(code, 0, output);
  assert.match(output, /Request rate configured \(RPS\):\s+200\.00/);
  const r = JSON.parse(await readFile(resultPath, 'utf8'));
  assert.equal(r.backend, 'openai-chat');
  assert.equal(r.completed, 16);
  assert.equal(r.total_output_tokens, 16 * 4);
  assertWithin(r.median_ttft_ms, kLatencyMs, kBelowMs, kTtftAboveMs, 'median chat TTFT');
  assertWithin(r.median_itl_ms, kChunkDelayMs, kBelowMs, kItlAboveMs, 'median chat ITL');
});

e2eTest('ondol bench stops at once when the initial test request fails', async (h) => {
  const mock = await h.mockUpstream({ failStatus: 503 });
  const { code, output } = await runOndol(h, [
    'bench', '--base-url', `http://127.0.0.1:${mock.port}`, '--model', 'mock',
    '--num-prompts', '1000', '--disable-tqdm',
  ]);
  assert.equal(code, 1, output);
  assert.match(output, /initial test request .* failed: HTTP 503: mock-upstream configured to fail/);
  const stats = await mock.stats();
  assert.equal(stats.requests, 1, 'one request, not a thousand failing ones');
});

e2eTest('ondol bench regress: record stories260K answers, replay them, and catch a change',
  { timeout: 60_000 }, async (h) => {
    const engine = h.spawn('engine', [
      'serve', '--model', kModel, '--host', '127.0.0.1', '--port', '0', '--io-threads', '1',
      '--threads', '1',
    ]);
    await engine.waitListening();
    const baseUrl = `http://127.0.0.1:${engine.port}`;
    const promptsPath = path.join(h.dir, 'prompts.txt');
    await writeFile(promptsPath, 'Once upon a time\nLily and Ben went to the park\nThe little dog\n');
    const baselinePath = path.join(h.dir, 'baseline.json');
    // No --model: the first model of GET /v1/models.
    const rec = await runOndol(h, ['bench', 'regress', '--record', baselinePath, '--prompts',
      promptsPath, '--base-url', baseUrl, '--max-tokens', '24']);
    assert.equal(rec.code, 0, rec.output);
    const baseline = JSON.parse(await readFile(baselinePath, 'utf8'));
    assert.equal(baseline.model, 'stories260K');
    assert.equal(baseline.entries.length, 3);
    for (const e of baseline.entries) assert.ok(e.expected.length > 20, JSON.stringify(e));

    const replay = await runOndol(h, ['bench', 'regress', '--baseline', baselinePath,
      '--base-url', baseUrl]);
    assert.equal(replay.code, 0, replay.output);
    assert.match(replay.output, /3 of 3 answers of stories260K match .*: OK/);

    // --tokenizer: prompts of exactly --random-input-len tokens of the served model; usage
    // reports them with the BOS the server adds.
    const resultPath = path.join(h.dir, 'tokenizer.json');
    const exact = await runOndol(h, ['bench', '--base-url', baseUrl, '--tokenizer', kModel,
      '--random-input-len', '32', '--random-output-len', '4', '--num-prompts', '4',
      '--save-result', resultPath, '--disable-tqdm']);
    assert.equal(exact.code, 0, exact.output);
    const r = JSON.parse(await readFile(resultPath, 'utf8'));
    assert.deepEqual(r.input_lens, [33, 33, 33, 33]);
    assert.equal(r.tokenizer_id, kModel);

    const tampered = structuredClone(baseline);
    const e = tampered.entries[1];
    const at = 12;
    e.expected = e.expected.slice(0, at) + (e.expected[at] === 'X' ? 'Y' : 'X') +
      e.expected.slice(at + 1);
    const tamperedPath = path.join(h.dir, 'tampered.json');
    await writeFile(tamperedPath, JSON.stringify(tampered));
    const bad = await runOndol(h, ['bench', 'regress', '--baseline', tamperedPath,
      '--base-url', baseUrl]);
    assert.equal(bad.code, 1, bad.output);
    assert.match(bad.output, /MISMATCH entry 2 of 3, prompt "Lily and Ben went to the park"/);
    assert.match(bad.output, new RegExp(`first difference at character ${at} \\(line 1, column ${at + 1}\\)`));
    assert.match(bad.output, /expected: "[^\n]*X|expected: "[^\n]*Y/);
    assert.match(bad.output, /got: {6}"/);
    assert.match(bad.output, /2 of 3 answers of stories260K match/);
  });
