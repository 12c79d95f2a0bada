#!/usr/bin/env bash
# Rejects co_await shapes that GCC 12 compiles into broken coroutine frames (see
# docs/architecture.md, "Coroutines and GCC 12"): awaits inside conditions or operators,
# `co_return co_await`, and awaited calls given temporaries such as `x.to_json()` or a string
# concatenation.
set -euo pipefail
cd "$(dirname "$0")/../.."
bad=$(grep -rnE --include='*.cpp' --include='*.h' \
  -e 'co_return co_await' \
  -e '(if|while) *\( *!? *\(? *co_await' \
  -e '(&&|\|\||\?).*co_await|co_await.*(&&|\|\|| \? )' \
  -e 'co_await [^;]*\((.*, *)?[^,()]*(to_json\(\)|render\(\)|std::string\(|\.message\(\)|fmt::format\()' \
  src apps | grep -v '^\s*//' || true)
if [ -n "$bad" ]; then
  echo "co_await shapes that GCC 12 miscompiles (docs/architecture.md):"
  echo "$bad"
  exit 1
fi
echo "coroutine lint: 0 problems"
