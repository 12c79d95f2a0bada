# ondol — the two commands a new user runs:
#   make serve   install what is missing, build, start the server on its embedded default
#   make test    install what is missing, build, run every test (unit + end-to-end)
# Other targets: build, unit-test, e2e-test, asan-test (the same under ASan/UBSan),
# bench-gateway, bench-engine, format, clean.

PRESET      ?= release
BUILD_DIR   := build/$(PRESET)
ONDOL       := $(BUILD_DIR)/apps/ondol/ondol
SERVE_ARGS  ?=
JOBS        ?= $(shell nproc)

# Debian 12 packages the build, the tests and the benchmarks need.
DEBIAN_PACKAGES := g++ cmake ninja-build ccache pkg-config git curl ca-certificates \
  libboost-dev libssl-dev libyaml-cpp-dev libcli11-dev libfmt-dev rapidjson-dev \
  libsimdjson-dev libxxhash-dev libicu-dev libgtest-dev libgmock-dev libbenchmark-dev \
  nginx wrk openssl prometheus prometheus-alertmanager redis-server systemd \
  libsqlite3-dev libpq-dev postgresql

.PHONY: deps build serve test unit-test e2e-test asan-test bench-gateway bench-engine format clean

# Installs only what is missing, so a second run costs a few dpkg queries and no network.
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; \
	  done); \
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing="$$missing nodejs npm"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) -j $(JOBS)

serve: build
	$(ONDOL) serve $(SERVE_ARGS)

# The end-to-end suite's npm packages (the openai client; a YAML parser the deploy/ check uses),
# installed again only when the lockfile changes.
NODE_DEPS := tests/e2e/node_modules/.package-lock.json
$(NODE_DEPS): tests/e2e/package-lock.json | deps
	npm --prefix tests/e2e ci --no-audit --no-fund --loglevel=error

unit-test: build $(NODE_DEPS)
	ctest --preset $(PRESET) -j $(JOBS)

e2e-test: build $(NODE_DEPS)
	ONDOL_BIN=$(CURDIR)/$(ONDOL) npm --prefix tests/e2e test

test: unit-test e2e-test asan-test

# The sanitizer pass: unit tests and the whole end-to-end suite against an ASan/UBSan binary.
asan-test: deps $(NODE_DEPS)
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ctest --preset asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 ONDOL_BIN=$(CURDIR)/build/asan/apps/ondol/ondol \
	  npm --prefix tests/e2e test

bench-gateway: build
	ONDOL_BIN=$(CURDIR)/$(ONDOL) bench/gateway/run.sh

# The engine under concurrency, in process: generation tokens/s at 1/4/16/64 concurrent requests
# and TTFT with a cached 512-token prefix (llama-110m Q8_0 dummy, 2 threads; docs/engine-serving.md).
bench-engine: deps
	cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DONDOL_BUILD_BENCH=ON \
	  -DONDOL_BUILD_TESTS=OFF >/dev/null
	cmake --build build/bench -j $(JOBS) --target ondol_serving_bench
	build/bench/bench/engine/ondol_serving_bench --threads 2 --runs 3

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build
