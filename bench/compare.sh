#!/usr/bin/env bash
# Runs ferrokms (SQLite), a bare hyper server (the HTTP ceiling) and moto_server side by side on
# this machine with the same load generator, and prints a Markdown report (also written to
# bench/results/compare-<date>.md) to paste into docs/benchmarks.md.
#
#   bench/compare.sh                  # everything: 6 operations x 3 servers x 3 rounds of
#                                     # (2 s warm-up + 4 s), the 1,024-connection run and the
#                                     # 100,000-key run (about 8 minutes after the release build)
#   bench/compare.sh --rounds 1 --duration 3 --large-keyring 0      # quicker
#
# Any further arguments go to `ferrokms-bench compare` (see `ferrokms-bench compare --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

# moto_server from PyPI: the mock most users run today.
if ! command -v moto_server >/dev/null 2>&1; then
    python3 -m pip install --quiet 'moto[server]'
fi

# 1,024 client connections and as many server sockets in one shell: raise the open-file limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --locked -p ferrokms -p kms-bench
target_dir="${CARGO_TARGET_DIR:-target}"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD 2>/dev/null; then commit="$commit (with local changes)"; fi
mkdir -p bench/results
out="bench/results/compare-$(date -u +%Y%m%dT%H%M%SZ).md"
# Three rounds of 4 s per operation unless told otherwise: the servers take turns, so that the
# machine's drift (the ceiling alone has moved by a third within minutes here) falls on all alike.
shape=()
case " $* " in *" --duration "* | *" --duration="* | *" -d "* | *" -d"[0-9]*) ;; *) shape+=(--duration 4) ;; esac
"$target_dir/release/ferrokms-bench" compare \
    --ferrokms "$target_dir/release/ferrokms" \
    --commit "$commit" \
    --markdown "$out" \
    "${shape[@]}" \
    "$@"
echo "report written to $out" >&2
