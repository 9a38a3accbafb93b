#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 25) each and prints one summary line per
# target: executions and whether it crashed. Needs cargo-fuzz; the stable toolchain is enough
# with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only -Z flags). No sanitizer: the fuzzed
# code is safe Rust (unsafe_code is forbidden), so a crash is a panic, which libFuzzer catches.
# A crashing input is left in fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/
# once fixed so that `cargo test` replays it.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-25}"
targets=(json_request sigv4_headers policy blob)
cargo fuzz build -O -s none
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="$(mktemp)"
    if cargo fuzz run -O -s none "$t" "corpus/$t" "seeds/$t" "regressions/$t" -- \
        -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 >"$log" 2>&1; then
        outcome="no crash"
    else
        outcome="CRASH (see fuzz/artifacts/$t)"
        status=1
        tail -n 40 "$log" >&2
    fi
    runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n1)"
    echo "fuzz $t: ${runs:-?} executions in ${seconds}s, $outcome"
    rm -f "$log"
done
exit "$status"
