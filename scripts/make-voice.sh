#!/usr/bin/env bash
# A voice fixture: SECONDS of espeak-ng speech (looped by ffmpeg, 8 kHz mono) encoded as
# AMR-NB by scripts/amr-encode.py (PyAV in the tools' venv, from scripts/setup.sh test).
#   scripts/make-voice.sh 60 voice.amr
set -euo pipefail
seconds=$1
out=$2
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools-dir.sh
. "$here/scripts/tools-dir.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -w "$tmp/speech.wav" \
  "Hello, this is a voice message sent through filegate. The quick brown fox jumps over the lazy dog."
ffmpeg -v error -y -stream_loop -1 -i "$tmp/speech.wav" -t "$seconds" -ar 8000 -ac 1 "$tmp/looped.wav"
"$tools/venv/bin/python" "$here/scripts/amr-encode.py" "$tmp/looped.wav" "$out"
