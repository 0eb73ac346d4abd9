#!/usr/bin/env bash
# Crash consistency rounds: build the release binary, then, ROUNDS times (default 5), kill -9
# it during a concurrent ingest, restart it and check what survived (scripts/crash_rounds.py
# says exactly what). Prints a line per round and 'N passed, N failed'; exits 1 on a failure.
# CRASH_SEED=N makes the kill moments and workloads repeatable.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
cargo build --release --locked --quiet --bin dicomwebserver
exec python3 scripts/crash_rounds.py target/release/dicomwebserver "$rounds"
