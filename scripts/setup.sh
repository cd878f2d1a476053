#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: system packages, then the
# project-local tools (.tools/). Safe to run again; it only installs what is missing.
#
#   scripts/setup.sh            everything `make run` and `make test` need
#   scripts/setup.sh bench      also what `make bench` needs (nginx, wrk, thumbor)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
tools="$here/.tools"
mkdir -p "$tools/bin"

want_bench=0
[ "${1:-}" = "bench" ] && want_bench=1

# --- Debian packages -------------------------------------------------------
packages=(
  # build: pingora's zlib-ng needs cmake; bindgen (ffmpeg-sys) needs libclang
  cmake pkg-config clang libclang-dev
  # media: libvips 8.14 and FFmpeg 5.1 libraries
  libvips-dev libavcodec-dev libavformat-dev libavutil-dev libswresample-dev
  libswscale-dev libavfilter-dev libavdevice-dev
  # tests: real tools that make real fixtures, and a real browser
  ffmpeg libvips-tools espeak-ng libopencore-amrnb-dev chromium chromium-driver
  curl jq python3-venv procps
  # the benchmark's peers and load tool (make bench; its smoke runs in make test)
  nginx-light libnginx-mod-http-image-filter wrk
)
if [ "$want_bench" = 1 ]; then
  packages+=(valgrind linux-perf)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "setup: system packages ready"

# --- Project-local tools (.tools/) ----------------------------------------
# s3s-fs: a real S3-compatible server for the tests (verifies SigV4, presigned
# URLs and POST policies). 0.14.1 is the newest that builds with rustc 1.95.
if [ ! -x "$tools/bin/s3s-fs" ]; then
  echo "setup: building s3s-fs 0.14.1 into .tools/ (about 5 minutes, once)"
  cargo install --quiet --root "$tools" --locked --features binary s3s-fs@0.14.1
fi
# schemathesis: tests the server against docs/openapi.yaml (pinned, own venv).
if [ ! -x "$tools/venv-schemathesis/bin/schemathesis" ]; then
  echo "setup: installing schemathesis into .tools/venv-schemathesis"
  python3 -m venv "$tools/venv-schemathesis"
  "$tools/venv-schemathesis/bin/pip" install --quiet "schemathesis==4.32.5"
fi

# Python tools for the media tests, in a project-local venv: PyAV (its wheel bundles an
# FFmpeg with the libopencore_amrnb encoder that Debian's FFmpeg lacks: AMR fixtures)
# and thumbor (a real third-party image processor for thumbnail_strategy=1).
venv="$tools/venv"
# Wheels only: a source build of av needs FFmpeg 7, not Debian's 5.1.
py_pins=("av==15.1.0" "thumbor==7.8.0")
if [ ! -f "$venv/.pins" ] || [ "$(cat "$venv/.pins")" != "${py_pins[*]}" ]; then
  echo "setup: installing ${py_pins[*]} into .tools/venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=av "${py_pins[@]}"
  echo "${py_pins[*]}" > "$venv/.pins"
fi

# cargo-fuzz: builds and runs the libFuzzer targets in fuzz/ (`make fuzz`, and the
# short smoke in `make test`). The stable toolchain takes its -Z flags with
# RUSTC_BOOTSTRAP=1 (the Makefile sets it); no nightly toolchain is needed.
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  echo "setup: building cargo-fuzz 0.13.2 into .tools/ (about a minute, once)"
  cargo install --quiet --root "$tools" --locked cargo-fuzz@0.13.2
fi
echo "setup: project tools ready"
