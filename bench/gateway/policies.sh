#!/usr/bin/env bash
# What the request policies cost: the same wrk load as run.sh (non-streaming, 64 connections,
# 1 thread) against three ondol instances over one `ondol mock-upstream`:
#
#   off    no master key, no limits, no cache (the baseline)
#   local  master key + a virtual key with rpm/tpm limits too high to refuse, the response cache
#          on, counters in process
#   redis  the same with the counters (and the cache) in a redis-server started here
#
# Requests (--requests): `lookup` (default: auth, rate limits and a cache lookup per request)
# numbers every request's message, sends temperature 0 and `cache: {"no-store": true}`, so each
# one is cacheable, looked up and missed, and nothing is stored. `unique` is the same without
# no-store: a lookup and a store of the answer per request, the cache's worst case.
# `fixed` sends one body with temperature 1: never cacheable, so no lookup runs.
#
# Runs are interleaved (run 1 of each, then run 2, ...). Prints requests/s and p99 latency
# (min / median / max) per configuration and the ratios local/off and redis/off per run. See
# README.md ("Policies").
#
#   bench/gateway/policies.sh [--runs 3] [--duration 10] [--quick] [--pin split|none]
#                             [--requests unique|lookup|fixed]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ONDOL_BIN=${ONDOL_BIN:-$REPO/build/release/apps/ondol/ondol}

runs=3
duration_s=10
warmup_s=2
connections=64
pin=split
requests=lookup
configs="off,local,redis"
results_dir=""

usage() {
  cat <<'EOF'
usage: bench/gateway/policies.sh [options]
  --runs N         measurements per figure (default 3)
  --duration S     seconds per wrk measurement (default 10)
  --quick          one run of 3 s: a smoke test
  --connections N  wrk connections (default 64)
  --configs LIST   subset of off,local,redis (default: all)
  --pin split|none split (default): ondol on CPU 0; mock upstream, wrk and redis-server on CPU 1
  --requests unique|lookup|fixed
                   lookup (default): temperature 0, every message numbered, cache no-store, so
                   every request looks the cache up and misses; unique: the same, and every
                   answer is stored; fixed: one body, temperature 1 (no lookup)
  --results DIR    raw results (default /tmp/ondol-bench-policies-DATE)
environment: ONDOL_BIN (default <repo>/build/release/apps/ondol/ondol)
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --duration) duration_s=$2; shift 2 ;;
    --quick) runs=1; duration_s=3; warmup_s=1; shift ;;
    --connections) connections=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --pin) pin=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --results) results_dir=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "policies.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
done
IFS=, read -r -a config_list <<< "$configs"

die() { echo "policies.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
for c in "${config_list[@]}"; do [[ $c =~ ^(off|local|redis)$ ]] || die "unknown config '$c'"; done
store=-
case $requests in
  unique) wrk_script=$HERE/post_unique.lua; temperature=0 ;;
  lookup) wrk_script=$HERE/post_unique.lua; temperature=0; store=no-store ;;
  fixed) wrk_script=$HERE/post.lua; temperature=1 ;;
  *) die "--requests must be unique, lookup or fixed" ;;
esac
for tool in wrk curl node taskset redis-server; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x $ONDOL_BIN ]] || die "ondol binary not found at $ONDOL_BIN (build it, or set ONDOL_BIN)"

if [[ $pin == split && $(nproc) -ge 2 ]]; then
  proxy_cpus=0
  load_cpus=1
else
  proxy_cpus=0-$(($(nproc) - 1))
  load_cpus=$proxy_cpus
fi

results_dir=${results_dir:-/tmp/ondol-bench-policies-$(date +%Y%m%d-%H%M%S)}
work=$results_dir/work
mkdir -p "$work"
results=$results_dir/results.jsonl
: > "$results"

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
wait_listening() {  # log file, pid -> port
  local port=""
  for _ in $(seq 100); do
    port=$(grep -o 'ONDOL_LISTENING port=[0-9]*' "$1" 2>/dev/null | head -1 | cut -d= -f2 || true)
    [[ -n $port ]] && { echo "$port"; return 0; }
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

log "results: $results_dir; ondol on CPUs $proxy_cpus, upstream + wrk + redis-server on CPUs $load_cpus"
taskset -c "$load_cpus" "$ONDOL_BIN" mock-upstream --host 127.0.0.1 --port 0 --io-threads 1 \
  --tokens-per-chunk 1 --log-level warn > "$work/mock-upstream.log" 2>&1 &
pids+=($!)
upstream_port=$(wait_listening "$work/mock-upstream.log" $!) || die "mock upstream did not start"

redis_port=""
if [[ ",$configs," == *",redis,"* ]]; then
  redis_port=$(free_port)
  mkdir -p "$work/redis"
  taskset -c "$load_cpus" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
    --appendonly no --dir "$work/redis" --daemonize no --loglevel warning \
    --logfile "$work/redis/redis.log" &
  pids+=($!)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
    sleep 0.1
  done
  log "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on 127.0.0.1:$redis_port"
fi

master=sk-bench-master
vkey=sk-bench-virtual-key-0000000000000000000000000000
declare -A url auth
for c in "${config_list[@]}"; do
  dir=$work/$c
  mkdir -p "$dir"
  {
    cat <<EOF
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$upstream_port/v1
      api_key: x
EOF
    if [[ $c != off ]]; then
      cat <<EOF
general_settings:
  master_key: $master
  database_path: $dir/ondol.db
  disable_spend_logs: true
litellm_settings:
  cache: true
  cache_params:
    type: $([[ $c == redis ]] && echo redis || echo local)
    ttl: 30
EOF
    fi
    if [[ $c == redis ]]; then
      cat <<EOF
router_settings:
  redis_host: 127.0.0.1
  redis_port: $redis_port
EOF
    fi
  } > "$dir/ondol.yaml"
  ONDOL_STATE_DIR=$dir taskset -c "$proxy_cpus" "$ONDOL_BIN" serve --config "$dir/ondol.yaml" \
    --host 127.0.0.1 --port 0 --io-threads 1 --log-level warn --drain-timeout 1 \
    > "$dir/ondol.log" 2>&1 &
  pids+=($!)
  port=$(wait_listening "$dir/ondol.log" $!) || die "ondol ($c) did not start; see $dir/ondol.log"
  url[$c]=http://127.0.0.1:$port/v1/chat/completions
  auth[$c]=bench
  if [[ $c != off ]]; then
    curl -sf -o "$dir/key.json" -H "Authorization: Bearer $master" -H 'Content-Type: application/json' \
      --data "{\"key\": \"$vkey\", \"rpm_limit\": 1000000000, \"tpm_limit\": 10000000000}" \
      "http://127.0.0.1:$port/key/generate" || die "/key/generate failed on ondol ($c)"
    auth[$c]=$vkey
  fi
  # The pre-flight check: a 200 chat.completion, with x-ratelimit headers where limits apply.
  code=$(curl -s -D "$dir/check.headers" -o "$dir/check.json" -w '%{http_code}' \
    -H "Authorization: Bearer ${auth[$c]}" -H 'Content-Type: application/json' \
    --data "{\"model\": \"bench\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 16, \"temperature\": $temperature}" \
    "${url[$c]}")
  [[ $code == 200 ]] || die "ondol ($c) answered $code: $(head -c 300 "$dir/check.json")"
  if [[ $c != off ]] && grep -qi '^x-ondol-cache: hit' "$dir/check.headers"; then
    die "ondol ($c) answered the check from its cache"
  fi
  if [[ $c != off ]]; then
    grep -qi '^x-ratelimit-remaining-requests' "$dir/check.headers" \
      || die "ondol ($c) did not apply the key's limits (no x-ratelimit headers)"
  fi
  log "ondol ($c) on port $port: check ok"
done
if [[ -n $redis_port ]]; then
  n=$(redis-cli -p "$redis_port" --scan --pattern 'ondol:rl:*' | wc -l)
  [[ $n -gt 0 ]] || die "no rate-limit counters in Redis after the check request"
fi

run_wrk() {  # config seconds -> the WRK_JSON object
  local out
  out=$(timeout $(($2 + 30)) taskset -c "$load_cpus" wrk -t 1 -c "$connections" -d "${2}s" \
    --timeout 5s -s "$wrk_script" "${url[$1]}" -- nonstream 16 "$temperature" "${auth[$1]}" "$store" 2>&1) \
    || { echo "$out" >&2; return 1; }
  echo "$out" >> "$work/wrk-$1.txt"
  grep '^WRK_JSON ' <<< "$out" | sed 's/^WRK_JSON //'
}

for c in "${config_list[@]}"; do run_wrk "$c" "$warmup_s" > /dev/null || die "wrk failed ($c)"; done
for run in $(seq "$runs"); do
  for c in "${config_list[@]}"; do
    sleep 1
    load=$(cut -d' ' -f1 /proc/loadavg)
    json=$(run_wrk "$c" "$duration_s") || die "wrk failed ($c)"
    echo "{\"config\": \"$c\", \"run\": $run, \"loadavg_before\": $load, \"result\": $json}" >> "$results"
    log "run $run/$runs $c: $(node -p 'const j=JSON.parse(process.argv[1]); `${Math.round(j.requests/(j.duration_us/1e6))} req/s, p99 ${(j.latency_us.p99/1000).toFixed(2)} ms, non-2xx ${j.errors.status}`' "$json") (load $load)"
  done
done

# What the cache did: every measured request should have looked it up (unique) or none (fixed).
for c in "${config_list[@]}"; do
  [[ $c == off ]] && continue
  metrics_url=${url[$c]%/v1/chat/completions}/metrics
  counts=$(curl -sf -H "Authorization: Bearer $master" "$metrics_url" | awk '
    /^litellm_cache_hits_metric/ {h += $NF} /^litellm_cache_misses_metric/ {m += $NF}
    END {printf "%d %d", h, m}') || die "could not read $metrics_url"
  read -r hits misses <<< "$counts"
  log "ondol ($c) cache: $hits hits, $misses misses"
  if [[ $requests != fixed && ( $misses -eq 0 || $hits -gt 1 ) ]]; then
    die "ondol ($c): expected every request to miss the cache, saw $hits hits and $misses misses"
  fi
done

node - "$results" <<'EOF' | tee "$results_dir/report.txt"
const fs = require('fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map(JSON.parse);
const by = {};
for (const r of rows) {
  const j = r.result;
  const errors = Object.values(j.errors).reduce((a, b) => a + b, 0);
  (by[r.config] ??= []).push({run: r.run, rps: j.requests / (j.duration_us / 1e6),
                              p99: j.latency_us.p99 / 1000, errors, load: r.loadavg_before});
}
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const mmm = (xs, f) => `${f(Math.min(...xs))} / ${f(med(xs))} / ${f(Math.max(...xs))}`;
const int = (x) => Math.round(x).toString();
const ms = (x) => x.toFixed(2);
console.log('config | requests/s min / median / max | p99 ms min / median / max | errors | load avg before');
for (const [c, rs] of Object.entries(by)) {
  console.log(`${c} | ${mmm(rs.map((r) => r.rps), int)} | ${mmm(rs.map((r) => r.p99), ms)} | ` +
              `${rs.reduce((a, r) => a + r.errors, 0)} | ${rs.map((r) => r.load).join(', ')}`);
}
for (const c of ['local', 'redis']) {
  if (!by[c] || !by.off) continue;
  const ratios = by[c].map((r) => r.rps / by.off.find((o) => o.run === r.run).rps);
  console.log(`${c}/off requests/s (per run): ${mmm(ratios, (x) => x.toFixed(3))}; cost ` +
              `${((1 - med(ratios)) * 100).toFixed(1)} % of throughput (median)`);
}
EOF
log "raw results: $results_dir"
