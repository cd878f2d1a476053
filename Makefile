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
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Every test: unit tests, then end-to-end tests against the real binary, a real S3
# server (s3s-fs) and headless Chromium; then a short smoke of every fuzz target and a
# few seconds of each benchmark row, so neither harness can rot.
test: setup lint
	$(CARGO) test --all-targets
	bash scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)
	$(MAKE) bench-smoke

bench-smoke:
	python3 benches/load/bench.py --smoke --binary target/debug/filegate

# The load benchmark against nginx and thumbor (about 7 minutes), then the micro
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

# cargo-fuzz (docs/fuzzing.md): builds the targets in fuzz/ once, then runs each for
# FUZZ_SECONDS; FUZZ_TARGETS picks some ("jwt range"). Fails on any crash.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_TARGETS ?=
fuzz: setup
	bash scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	$(CARGO) clean
	rm -rf fuzz/target
