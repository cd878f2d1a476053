# The README's two commands: `make run` and `make test`. Both install what is missing.
CARGO ?= cargo

.PHONY: setup build run test lint unit bench bench-smoke soak fuzz clean

setup:
	bash scripts/setup.sh

build: setup
	$(CARGO) build --release

# The embedded default: store in ./data, demo app, 127.0.0.1:8080 (admin :9180).
run: build
	./target/release/filegate serve

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Every test: unit tests, then end-to-end tests against the real binary, a real S3
# server (s3s-fs) and headless Chromium; then a few seconds of each benchmark row so
# the harness cannot rot (its figures mean nothing).
test: setup lint
	$(CARGO) test --all-targets
	$(MAKE) bench-smoke

bench-smoke:
	python3 benches/load/bench.py --smoke --binary target/debug/filegate

# The load benchmark against nginx and thumbor (about 6 minutes), then the micro
# benchmarks. Loopback only. BENCHMARKS.md holds a run.
bench: setup
	bash scripts/setup.sh bench
	$(CARGO) build --release
	python3 benches/load/bench.py
	$(CARGO) bench --bench micro

# Bounded mixed load while the store is stopped and restarted (default 10 minutes;
# SOAK_SECONDS=N to change). Passes when only the injected 502/504 appear and RSS
# stays flat after warm-up.
soak: setup
	$(CARGO) build --release
	python3 tests/soak/soak.py --seconds $${SOAK_SECONDS:-600}

clean:
	$(CARGO) clean
