# Sourced by the scripts: where the project's tools live. Outside the clone, so a
# fresh clone on the same machine (as CI makes) reuses them. The same rule is in
# tests/e2e/harness.rs (tools_dir), benches/load/bench.py and tests/soak/soak.py.
#
#   $FILEGATE_TOOLS, else $XDG_CACHE_HOME/filegate/tools, else ~/.cache/filegate/tools
# shellcheck shell=bash
tools="${FILEGATE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/filegate/tools}"
