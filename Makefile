# The README's two commands: `make run` and `make test`. Both install what is missing:
# `run` only what building and running needs, `test` also the test tools. The
# project's tools live outside the clone, in $FILEGATE_TOOLS (default
# ~/.cache/filegate/tools; scripts/tools-dir.sh), shared by every clone.
CARGO ?= cargo

.PHONY: setup setup-run setup-test setup-bench build run cluster test lint unit bench bench-smoke soak soak-smoke fuzz clean

setup-run:
	bash scripts/setup.sh run

setup-test:
	bash scripts/setup.sh test

setup-bench:
	bash scripts/setup.sh bench

setup: setup-test

build: setup-run
	$(CARGO) build --release

# The embedded default: store in ./data, demo app, 127.0.0.1:8080 (admin :9180).
run: setup-run build
	./target/release/filegate serve

# Three nodes over a SeaweedFS cluster on loopback (docs/cluster.md); Ctrl-C stops it.
cluster: setup-test build
	python3 scripts/cluster.py

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Every test: unit tests, then end-to-end tests against the real binary, real S3
# servers (s3s-fs; a SeaweedFS cluster) and headless Chromium; then a short smoke of
# every fuzz target, a few seconds of each benchmark row and a minute of the soak, so
# none of those harnesses can rot.
test: setup-test lint
	$(CARGO) test --all-targets
	bash scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)
	$(MAKE) bench-smoke
	$(MAKE) soak-smoke

bench-smoke:
	$(CARGO) build --example thumbnail_cost --example decode_floor
	python3 benches/load/bench.py --smoke --binary target/debug/filegate

# The load benchmark against nginx, Varnish and thumbor (about 40 minutes), then the micro
# benchmarks. Loopback only. BENCHMARKS.md holds a run.
bench: setup-bench
	# One build for both: an example unifies dev-dependency features, so apart they
	# would compile the library twice.
	$(CARGO) build --release --bin filegate --example thumbnail_cost --example decode_floor
	python3 benches/load/bench.py
	$(CARGO) bench --bench micro

# Bounded mixed load while the store is stopped and restarted (default 10 minutes;
# SOAK_SECONDS=N to change). Passes when only the injected 502/504 appear and RSS
# stays flat after warm-up.
soak: setup-test
	$(CARGO) build --release
	python3 tests/soak/soak.py --seconds $${SOAK_SECONDS:-600}

# A minute of the soak on the debug binary `cargo test` built (part of `make test`).
soak-smoke:
	$(CARGO) build --bin filegate
	python3 tests/soak/soak.py --seconds 60 --smoke --binary target/debug/filegate

# cargo-fuzz (docs/fuzzing.md): builds the targets in fuzz/ once, then runs each for
# FUZZ_SECONDS; FUZZ_TARGETS picks some ("jwt range"). Fails on any crash.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_TARGETS ?=
fuzz: setup-test
	bash scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The shared tools dir is a cache outside the clone: not removed here.
clean:
	$(CARGO) clean
	rm -rf fuzz/target
