#!/usr/bin/env bash
# End-to-end engine figures through the HTTP server: `ondol serve --model` on the llama-110m
# dummy shape, one streamed completion at a time with a 128-token prompt and 64 generated
# tokens (ignore_eos). Prompt tokens/s = prompt tokens / time to the first streamed byte (the
# first token); generation tokens/s = (64 - 1) / (total - first byte). Everything on 127.0.0.1.
#
#   bench/engine/serve_e2e.sh [--types "f16 q8_0 q4_k"] [--threads 2] [--runs 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
ONDOL_BIN=${ONDOL_BIN:-build/release/apps/ondol/ondol}
TYPES="f16 q8_0 q4_k"; THREADS=2; RUNS=3; PROMPT_TOKENS=128; GEN_TOKENS=64
while [ $# -gt 0 ]; do
  case "$1" in
    --types) TYPES=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/ondol-serve-e2e.XXXXXX)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

stats() {  # min / median / max of the numbers on stdin
  sort -g | awk '{v[NR]=$1} END {printf "%.0f / %.0f / %.0f", v[1], v[int((NR+1)/2)], v[NR]}'
}

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); ondol $($ONDOL_BIN --version)"
printf "%-6s %-28s %-28s %s\n" type "prompt tok/s (min/med/max)" "generation tok/s (min/med/max)" "prompt tokens"
for type in $TYPES; do
  model="$WORK/llama-110m-$type.gguf"
  "$ONDOL_BIN" model make-dummy --shape llama-110m --type "$type" "$model" >/dev/null
  "$ONDOL_BIN" serve --model "$model" --served-model-name m --host 127.0.0.1 --port 0 \
    --io-threads 1 --threads "$THREADS" --log-level warn > "$WORK/serve-$type.log" 2>&1 &
  SERVER_PID=$!
  port=""
  for _ in $(seq 1 200); do
    port=$(sed -n 's/^ONDOL_LISTENING port=\([0-9]*\)$/\1/p' "$WORK/serve-$type.log")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "ondol did not start:"; cat "$WORK/serve-$type.log"; exit 1; }
  url="http://127.0.0.1:$port"
  # A prompt of exactly PROMPT_TOKENS tokens (BOS included): tokenize a long text, cut, detokenize.
  words=$(for i in $(seq 1 400); do printf 'token%d word ' "$i"; done)
  ids=$(curl -sf "$url/tokenize" -d "{\"model\":\"m\",\"prompt\":\"$words\"}" |
        sed 's/.*"tokens":\[\([^]]*\)\].*/\1/' | cut -d, -f2-$PROMPT_TOKENS)
  prompt=$(curl -sf "$url/detokenize" -d "{\"model\":\"m\",\"tokens\":[$ids]}" |
           sed 's/^{"prompt":"\(.*\)"}$/\1/')
  body="{\"model\":\"m\",\"prompt\":\"$prompt\",\"max_tokens\":$GEN_TOKENS,\"ignore_eos\":true,\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
  curl -sf -o /dev/null "$url/v1/completions" -d "$body"  # warm-up
  : > "$WORK/pp" ; : > "$WORK/tg"
  used=""
  for _ in $(seq 1 "$RUNS"); do
    out=$(curl -sf -N -o "$WORK/stream" -w '%{time_starttransfer} %{time_total}' "$url/v1/completions" -d "$body")
    used=$(grep -o '"prompt_tokens":[0-9]*' "$WORK/stream" | tail -1 | cut -d: -f2)
    gen=$(grep -o '"completion_tokens":[0-9]*' "$WORK/stream" | tail -1 | cut -d: -f2)
    read -r first total <<< "$out"
    awk -v p="$used" -v t="$first" 'BEGIN {print p / t}' >> "$WORK/pp"
    awk -v g="$gen" -v a="$first" -v b="$total" 'BEGIN {print (g - 1) / (b - a)}' >> "$WORK/tg"
  done
  printf "%-6s %-28s %-28s %s\n" "$type" "$(stats < "$WORK/pp")" "$(stats < "$WORK/tg")" "$used"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
done
