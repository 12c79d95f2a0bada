#!/usr/bin/env bash
# The gateway benchmark: wrk at 64 connections against the mock upstream directly, ondol in front
# of it, nginx (plain reverse proxy) in front of it and the Portkey gateway in front of it,
# non-streaming and streaming, side by side in one run; then open-loop load at a fixed rate
# (1,000 requests/s) through each to measure the latency a proxy adds. See README.md.
#
#   bench/gateway/run.sh [--runs 3] [--duration 10] [--quick] [options]
#
# Everything binds to 127.0.0.1. Every process this script starts is stopped on exit. Raw results
# (JSON lines, wrk output, server logs, the generated configs) go to a directory under /tmp.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ONDOL_BIN=${ONDOL_BIN:-$REPO/build/release/apps/ondol/ondol}

runs=3
duration_s=10
fixed_duration_s=""
warmup_s=2
connections=64
wrk_threads=1
rate=1000
max_tokens=16
pin=split
targets="direct,ondol,nginx,portkey"
fixed_targets=""  # default: direct,ondol,nginx among --targets
modes="nonstream,stream"
do_throughput=1
do_fixed=1
results_dir=""

usage() {
  cat <<'EOF'
usage: bench/gateway/run.sh [options]
  --runs N              measurements per figure (default 3; min/median/max are reported)
  --duration S          seconds per wrk measurement (default 10)
  --fixed-duration S    seconds per fixed-rate measurement (default: --duration)
  --quick               one run of 3 s each: a smoke test, not a measurement
  --rate R              fixed-rate load in requests/s (default 1000)
  --connections N       wrk connections (default 64)
  --wrk-threads N       wrk threads (default 1)
  --pin split|none      split: proxy under test on CPU 0, upstream + load generator on CPU 1
                        (default); none: let the scheduler place everything
  --targets LIST        comma-separated subset of direct,ondol,nginx,portkey (default: all)
  --fixed-targets LIST  targets of the fixed-rate part (default: direct,ondol,nginx among
                        --targets; Portkey cannot carry 1,000 requests/s here, so its figure
                        would say only that)
  --modes LIST          comma-separated subset of nonstream,stream (default: both)
  --no-throughput       skip the wrk part      --no-fixed   skip the fixed-rate part
  --results DIR         where raw results go (default /tmp/ondol-bench-gateway-DATE)
environment: ONDOL_BIN (default <repo>/build/release/apps/ondol/ondol)
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --duration) duration_s=$2; shift 2 ;;
    --fixed-duration) fixed_duration_s=$2; shift 2 ;;
    --quick) runs=1; duration_s=3; fixed_duration_s=3; warmup_s=1; shift ;;
    --rate) rate=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --wrk-threads) wrk_threads=$2; shift 2 ;;
    --pin) pin=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --fixed-targets) fixed_targets=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --no-throughput) do_throughput=0; shift ;;
    --no-fixed) do_fixed=0; shift ;;
    --results) results_dir=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
done
fixed_duration_s=${fixed_duration_s:-$duration_s}
IFS=, read -r -a target_list <<< "$targets"
IFS=, read -r -a mode_list <<< "$modes"

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
has_target() { [[ ",$targets," == *",$1,"* ]]; }

for t in "${target_list[@]}"; do
  [[ $t =~ ^(direct|ondol|nginx|portkey)$ ]] || die "unknown target '$t'"
done
if [[ -z $fixed_targets ]]; then
  for t in direct ondol nginx; do
    has_target "$t" && fixed_targets+=${fixed_targets:+,}$t
  done
fi
IFS=, read -r -a fixed_target_list <<< "$fixed_targets"
for t in "${fixed_target_list[@]}"; do
  has_target "$t" || die "fixed-rate target '$t' is not among --targets ($targets)"
done
for m in "${mode_list[@]}"; do
  [[ $m =~ ^(nonstream|stream)$ ]] || die "unknown mode '$m'"
done
[[ $pin == split || $pin == none ]] || die "--pin must be split or none"
[[ $runs -ge 1 ]] || die "--runs must be at least 1"

# --- prerequisites -------------------------------------------------------------------------------
for tool in wrk curl node taskset; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk curl nodejs util-linux)"
done
[[ -x $ONDOL_BIN ]] || die "ondol binary not found at $ONDOL_BIN (build it, or set ONDOL_BIN)"
if has_target nginx; then
  command -v nginx >/dev/null || die "nginx not found (apt-get install nginx-light), or drop it with --targets"
fi
portkey_entry=$HERE/node_modules/@portkey-ai/gateway/build/start-server.js
if has_target portkey && [[ ! -f $portkey_entry ]]; then
  log "installing the Portkey gateway from package-lock.json (npm ci in bench/gateway)"
  (cd "$HERE" && npm ci --no-audit --no-fund >&2) || die "npm ci failed in $HERE"
fi

num_cpus=$(nproc)
if [[ $pin == split && $num_cpus -lt 2 ]]; then
  log "only $num_cpus CPU: no pinning"
  pin=none
fi
if [[ $pin == split ]]; then
  proxy_cpus=0
  load_cpus=1
else
  proxy_cpus=0-$((num_cpus - 1))
  load_cpus=$proxy_cpus
fi

results_dir=${results_dir:-/tmp/ondol-bench-gateway-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$results_dir"
work=$results_dir/work
mkdir -p "$work"
results=$results_dir/results.jsonl
: > "$results"

# --- process management --------------------------------------------------------------------------
pids=()
declare -A pid_of  # upstream, ondol, nginx, portkey -> the process this script started
is_running() {  # a zombie (exited, not yet reaped) does not count
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z ]]
}
cleanup() {
  local pid name status
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 30); do is_running "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # A clean shutdown on SIGTERM exits 0 (nginx, node: 0 or 143); say so when one crashed instead.
  for name in "${!pid_of[@]}"; do
    wait "${pid_of[$name]}" 2>/dev/null && status=0 || status=$?
    if ((status > 128 && status != 143)); then
      echo "run.sh: warning: $name did not shut down cleanly on SIGTERM: signal $((status - 128))" \
        "($(kill -l $((status - 128)) 2>/dev/null || echo '?')); log: $work/${name/upstream/mock-upstream}.log" >&2
    fi
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Waits for `ONDOL_LISTENING port=N` in a log file and prints N.
wait_listening() {
  local file=$1 pid=$2 port=""
  for _ in $(seq 100); do
    port=$(grep -o 'ONDOL_LISTENING port=[0-9]*' "$file" 2>/dev/null | head -1 | cut -d= -f2 || true)
    [[ -n $port ]] && { echo "$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# Waits until something answers HTTP on the port.
wait_http() {
  local port=$1 pid=$2
  for _ in $(seq 150); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- start the upstream and the proxies ----------------------------------------------------------
log "results: $results_dir"
log "pinning: $pin (proxy under test on CPUs $proxy_cpus; upstream and load generator on CPUs $load_cpus)"

taskset -c "$load_cpus" "$ONDOL_BIN" mock-upstream --host 127.0.0.1 --port 0 --io-threads 1 \
  --tokens-per-chunk 1 --log-level warn > "$work/mock-upstream.log" 2>&1 &
pids+=($!)
pid_of[upstream]=$!
upstream_port=$(wait_listening "$work/mock-upstream.log" $!) \
  || die "mock upstream did not start; see $work/mock-upstream.log"
log "mock upstream on 127.0.0.1:$upstream_port"

declare -A url
declare -A hdrs  # extra request headers per target, as `name: value` lines
path=/v1/chat/completions
url[direct]=http://127.0.0.1:$upstream_port$path
hdrs[direct]=""

if has_target ondol; then
  cat > "$work/ondol.yaml" <<EOF
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$upstream_port/v1
      api_key: x
EOF
  taskset -c "$proxy_cpus" "$ONDOL_BIN" serve --config "$work/ondol.yaml" --host 127.0.0.1 \
    --port 0 --io-threads 1 --log-level warn --drain-timeout 1 > "$work/ondol.log" 2>&1 &
  pids+=($!)
  pid_of[ondol]=$!
  ondol_port=$(wait_listening "$work/ondol.log" $!) || die "ondol did not start; see $work/ondol.log"
  url[ondol]=http://127.0.0.1:$ondol_port$path
  hdrs[ondol]=""
  log "ondol on 127.0.0.1:$ondol_port"
fi

nginx_workers=1
if has_target nginx; then
  nginx_port=$(free_port)
  sed -e "s|@PREFIX@|$work|g" -e "s|@WORKERS@|$nginx_workers|g" \
      -e "s|@LISTEN_PORT@|$nginx_port|g" -e "s|@UPSTREAM_PORT@|$upstream_port|g" \
      "$HERE/nginx.conf.template" > "$work/nginx.conf"
  taskset -c "$proxy_cpus" nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" \
    > "$work/nginx.log" 2>&1 &
  pids+=($!)
  pid_of[nginx]=$!
  wait_http "$nginx_port" $! || die "nginx did not start; see $work/nginx.log and $work/nginx-error.log"
  url[nginx]=http://127.0.0.1:$nginx_port$path
  hdrs[nginx]=""
  log "nginx on 127.0.0.1:$nginx_port ($nginx_workers worker)"
fi

if has_target portkey; then
  portkey_port=$(free_port)
  # The Portkey server listens on all interfaces and has no option to change that; this preload
  # makes every listen() in that process bind to 127.0.0.1.
  cat > "$work/loopback.mjs" <<'EOF'
import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || typeof args[0] === 'string') args.splice(1, 0, '127.0.0.1');
  else if (args[0] && typeof args[0] === 'object' && !args[0].path) args[0] = { ...args[0], host: '127.0.0.1' };
  return listen.apply(this, args);
};
EOF
  taskset -c "$proxy_cpus" env NODE_ENV=production node --import "$work/loopback.mjs" \
    "$portkey_entry" --port="$portkey_port" --headless > "$work/portkey.log" 2>&1 &
  pids+=($!)
  pid_of[portkey]=$!
  wait_http "$portkey_port" $! || die "the Portkey gateway did not start; see $work/portkey.log"
  url[portkey]=http://127.0.0.1:$portkey_port$path
  hdrs[portkey]=$'x-portkey-provider: openai\nx-portkey-custom-host: http://127.0.0.1:'$upstream_port/v1
  log "Portkey gateway on 127.0.0.1:$portkey_port"
fi

# Header flags for curl/wrk (-H) and fixed_rate.mjs (--header) from a target's header lines.
header_args() {
  local flag=$1 target=$2 line
  [[ -z ${hdrs[$target]} ]] && return 0
  while IFS= read -r line; do printf '%s\0%s\0' "$flag" "$line"; done <<< "${hdrs[$target]}"
}

# --- check every target answers correctly before measuring ---------------------------------------
request_body() {
  local stream=""
  [[ $1 == stream ]] && stream=', "stream": true'
  echo "{\"model\": \"bench\", \"messages\": [{\"role\": \"user\", \"content\": \"Say hello to the benchmark, please.\"}], \"max_tokens\": $max_tokens$stream}"
}

# Validates a saved response: `chat.completion` JSON with content, or an SSE stream of
# `chat.completion.chunk` events with content that ends with `data: [DONE]`.
validate() {
  node - "$@" <<'EOF'
const fs = require('fs');
const [mode, headersFile, bodyFile] = process.argv.slice(2);
const head = fs.readFileSync(headersFile, 'utf8');
const body = fs.readFileSync(bodyFile, 'utf8');
const fail = (why) => { console.log(why); process.exit(1); };
const status = Number((head.match(/^HTTP\/[\d.]+ (\d+)/m) || [])[1]);
if (status !== 200) fail(`HTTP ${status}: ${body.slice(0, 300)}`);
if (mode === 'nonstream') {
  let j;
  try { j = JSON.parse(body); } catch (e) { fail(`not JSON: ${body.slice(0, 300)}`); }
  if (j.object !== 'chat.completion') fail(`object is ${j.object}, not chat.completion`);
  const content = j.choices?.[0]?.message?.content;
  if (!content) fail('no choices[0].message.content');
  if (!j.usage?.completion_tokens) fail('no usage.completion_tokens');
  console.log(`ok: ${j.usage.completion_tokens} tokens`);
} else {
  if (!/^content-type:\s*text\/event-stream/im.test(head)) fail('content-type is not text/event-stream');
  const events = body.split(/\r?\n\r?\n/).map((e) => e.trim()).filter(Boolean);
  if (events.at(-1) !== 'data: [DONE]') fail(`last event is not data: [DONE]: ${events.at(-1)}`);
  let text = '';
  for (const e of events.slice(0, -1)) {
    if (!e.startsWith('data: ')) fail(`not an SSE data event: ${e.slice(0, 200)}`);
    const j = JSON.parse(e.slice(6));
    if (j.error) fail(`error event: ${JSON.stringify(j.error)}`);
    if (j.object !== 'chat.completion.chunk') fail(`chunk object is ${j.object}`);
    text += j.choices?.[0]?.delta?.content ?? '';
  }
  if (!text) fail('no content in the stream');
  console.log(`ok: ${events.length - 1} chunks`);
}
EOF
}

verify_failed=0
for target in "${target_list[@]}"; do
  for mode in "${mode_list[@]}"; do
    h=$work/check-$target-$mode.headers
    b=$work/check-$target-$mode.body
    extra=()
    while IFS= read -r -d '' a; do extra+=("$a"); done < <(header_args -H "$target")
    if ! curl -sS --max-time 10 -N -D "$h" -o "$b" -H 'Content-Type: application/json' \
         -H 'Authorization: Bearer bench' "${extra[@]}" --data-binary "$(request_body "$mode")" \
         "${url[$target]}"; then
      log "CHECK FAILED: $target $mode: no answer from ${url[$target]}"
      verify_failed=1
      continue
    fi
    if verdict=$(validate "$mode" "$h" "$b"); then
      log "check $target $mode: $verdict"
    else
      log "CHECK FAILED: $target $mode: $verdict"
      verify_failed=1
    fi
  done
done
[[ $verify_failed == 0 ]] || die "a target does not answer correctly (details above, responses in $work); not measuring"

# --- environment record --------------------------------------------------------------------------
ondol_version=$("$ONDOL_BIN" --version 2>&1 | head -1)
nginx_version=$(nginx -v 2>&1 | head -1 || true)
portkey_version=$(node -p 'require(process.argv[1]).version' "$HERE/node_modules/@portkey-ai/gateway/package.json" 2>/dev/null || echo none)
node -e '
const [dir, ...kv] = process.argv.slice(1);
const meta = {};
for (let i = 0; i < kv.length; i += 2) meta[kv[i]] = kv[i + 1];
for (const k of ["runs", "duration_s", "fixed_duration_s", "connections", "wrk_threads", "rate", "max_tokens", "nginx_workers", "num_cpus"]) meta[k] = Number(meta[k]);
for (const k of ["targets", "fixed_targets", "modes"]) meta[k] = meta[k] ? meta[k].split(",") : [];
require("fs").writeFileSync(dir + "/meta.json", JSON.stringify(meta, null, 2) + "\n");
' "$results_dir" started "$(date -Is)" host "$(hostname)" \
  cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  num_cpus "$num_cpus" kernel "$(uname -r)" pin "$pin" proxy_cpus "$proxy_cpus" \
  load_cpus "$load_cpus" runs "$runs" duration_s "$duration_s" \
  fixed_duration_s "$fixed_duration_s" connections "$connections" wrk_threads "$wrk_threads" \
  rate "$rate" max_tokens "$max_tokens" targets "$targets" fixed_targets "$fixed_targets" modes "$modes" \
  ondol_bin "$ONDOL_BIN" ondol_version "$ondol_version" nginx_version "$nginx_version" \
  nginx_workers "$nginx_workers" portkey_version "$portkey_version" node_version "$(node --version)" \
  wrk_version "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)" loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"

# Appends one JSON line to results.jsonl: the fields given plus the tool's JSON.
record() {
  local kind=$1 target=$2 mode=$3 run=$4 load=$5 cpu=$6 json=$7
  echo "{\"kind\": \"$kind\", \"target\": \"$target\", \"mode\": \"$mode\", \"run\": $run, \"loadavg_before\": $load, \"cpu_s\": $cpu, \"result\": $json}" >> "$results"
}

# CPU time (user + system, in clock ticks) used so far by a process and its direct children
# (nginx: the master and its worker).
clk_tck=$(getconf CLK_TCK)
cpu_ticks() {
  local pid=$1 total=0 p f
  [[ -z $pid ]] && { echo 0; return; }
  for p in "$pid" $(pgrep -P "$pid" || true); do
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    set -- $f
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# Snapshot of the CPU time of the proxy under test and of the upstream, for a measurement.
cpu_snapshot() { echo "$(cpu_ticks "${pid_of[$1]:-}") $(cpu_ticks "${pid_of[upstream]}")"; }
cpu_json() {  # target "before" -> {"proxy": s, "upstream": s} used since the snapshot
  local before=($2) after=($(cpu_snapshot "$1"))
  local proxy=0
  [[ $1 != direct ]] && proxy=$((after[0] - before[0]))
  echo "{\"proxy\": $(awk -v t="$proxy" -v h="$clk_tck" 'BEGIN{printf "%.2f", t/h}'), \"upstream\": $(awk -v t="$((after[1] - before[1]))" -v h="$clk_tck" 'BEGIN{printf "%.2f", t/h}')}"
}

# Stops the benchmark if a server this script started has exited (crashed) during a measurement.
check_alive() {
  local name status
  for name in "${!pid_of[@]}"; do
    if ! is_running "${pid_of[$name]}"; then
      wait "${pid_of[$name]}" 2>/dev/null && status=0 || status=$?
      local why="exit status $status"
      ((status > 128)) && why="killed by signal $((status - 128)) ($(kill -l $((status - 128)) 2>/dev/null || echo '?'))"
      die "$name (pid ${pid_of[$name]}) died during: $* — $why; its log: $work/${name/upstream/mock-upstream}.log"
    fi
  done
}

loadavg1() { cut -d' ' -f1 /proc/loadavg; }

run_wrk() {  # target mode seconds -> prints the WRK_JSON object
  local target=$1 mode=$2 seconds=$3 out extra=()
  while IFS= read -r -d '' a; do extra+=("$a"); done < <(header_args -H "$target")
  out=$(timeout $((seconds + 30)) taskset -c "$load_cpus" wrk -t "$wrk_threads" -c "$connections" \
        -d "${seconds}s" --timeout 5s "${extra[@]}" -s "$HERE/post.lua" "${url[$target]}" \
        -- "$mode" "$max_tokens" 2>&1) || { echo "$out" >&2; return 1; }
  echo "$out" >> "$work/wrk-$target-$mode.txt"
  grep '^WRK_JSON ' <<< "$out" | sed 's/^WRK_JSON //'
}

# --- throughput: wrk, closed loop, $connections connections -------------------------------------
if [[ $do_throughput == 1 ]]; then
  for mode in "${mode_list[@]}"; do
    for target in "${target_list[@]}"; do
      log "warm-up $target $mode (${warmup_s}s)"
      run_wrk "$target" "$mode" "$warmup_s" > /dev/null || die "wrk failed against $target"
      check_alive "warm-up $target $mode"
    done
  done
  for run in $(seq "$runs"); do
    for mode in "${mode_list[@]}"; do
      for target in "${target_list[@]}"; do
        sleep 1
        load=$(loadavg1)
        before=$(cpu_snapshot "$target")
        json=$(run_wrk "$target" "$mode" "$duration_s") || die "wrk failed against $target"
        cpu=$(cpu_json "$target" "$before")
        check_alive "wrk run $run $mode $target"
        record wrk "$target" "$mode" "$run" "$load" "$cpu" "$json"
        log "wrk run $run/$runs $mode $target: $(node -p 'const j=JSON.parse(process.argv[1]); `${Math.round(j.requests/(j.duration_us/1e6))} req/s, p50 ${(j.latency_us.p50/1000).toFixed(2)} ms, p99 ${(j.latency_us.p99/1000).toFixed(2)} ms, errors ${Object.values(j.errors).reduce((a,b)=>a+b,0)}`' "$json")"
      done
    done
  done
fi

# --- added latency: open loop at a fixed rate ----------------------------------------------------
if [[ $do_fixed == 1 ]]; then
  for run in $(seq "$runs"); do
    for mode in "${mode_list[@]}"; do
      for target in "${fixed_target_list[@]}"; do
        sleep 1
        load=$(loadavg1)
        before=$(cpu_snapshot "$target")
        extra=()
        while IFS= read -r -d '' a; do extra+=("$a"); done < <(header_args --header "$target")
        out=$(timeout $((fixed_duration_s + 30)) taskset -c "$load_cpus" node \
              "$HERE/fixed_rate.mjs" --url "${url[$target]}" --rate "$rate" \
              --duration "$fixed_duration_s" --warmup 1 --mode "$mode" --max-tokens "$max_tokens" \
              "${extra[@]}" 2>&1) || true
        cpu=$(cpu_json "$target" "$before")
        echo "$out" >> "$work/fixed-$target-$mode.txt"
        check_alive "fixed-rate run $run $mode $target"
        json=$(grep '^FIXED_RATE_JSON ' <<< "$out" | sed 's/^FIXED_RATE_JSON //') \
          || die "fixed_rate.mjs failed against $target: $out"
        record fixed "$target" "$mode" "$run" "$load" "$cpu" "$json"
        log "fixed-rate run $run/$runs $mode $target: $(node -p 'const j=JSON.parse(process.argv[1]); const l=j.latency_us||{}; `${j.achieved_rate} req/s, p50 ${l.p50} us, p99 ${l.p99} us, errors ${j.errors + j.timed_out}${j.overloaded ? ", OVERLOADED" : ""}`' "$json")"
      done
    done
  done
fi

# --- report ----------------------------------------------------------------------------------------
node "$HERE/report.mjs" "$results_dir"
log "raw results: $results_dir (results.jsonl, summary.json, meta.json, work/)"
