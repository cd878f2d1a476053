# The README's two commands: `make run` and `make test`. Both install what is missing.
CARGO ?= cargo

.PHONY: setup build run test lint unit bench soak fuzz clean

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
# server (s3s-fs) and headless Chromium.
test: setup lint
	$(CARGO) test --all-targets

clean:
	$(CARGO) clean
