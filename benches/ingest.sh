#!/usr/bin/env bash
# End-to-end STOW-RS ingest benchmark: dicomwebserver side by side with the raw sink
# (read the body, write it, fsync: the physical limit on this machine), in one run.
#
# Usage (from anywhere; the shared harness is found at ../shared/bench from the repo root):
#   benches/ingest.sh                        # full size: 2000 x 512 KiB + one 1 GiB instance
#   N=200 HUGE_MIB=128 REPEAT=1 benches/ingest.sh   # quick run
#
# Environment:
#   N          small CT instances in the corpus (default 2000)
#   HUGE_MIB   size of the multi-frame instance in MiB (default 1024)
#   REPEAT     repetitions of every scenario (default 3)
#   SMALL_C    concurrency levels for the small-b50 scenario (default 1,4,8)
#   WORK       where corpus, bodies and results go (default /tmp/dws-bench)
#   DIAG       1 (default) also runs the server with every diagnostic enabled but idle
#              (STACK_DUMP_ENABLED=1, TRACKABLE_STREAM_LIVELOCK_DETECT_MS=15000, a debug
#              listener) to measure their overhead; 0 skips it
#
# Repetitions are interleaved (sink, dicomwebserver, sink, ...) so that load from other
# processes on a shared machine hits both alike; compare the ratios, not absolute figures.
# Everything listens on 127.0.0.1 only.
set -euo pipefail

N=${N:-2000}
HUGE_MIB=${HUGE_MIB:-1024}
REPEAT=${REPEAT:-3}
SMALL_C=${SMALL_C:-1,4,8}
WORK=${WORK:-/tmp/dws-bench}
DIAG=${DIAG:-1}

cd "$(dirname "$0")/.."
B=../shared/bench
[ -f "$B/stow_bench.py" ] || { echo "no harness at $B (expected ../shared/bench)" >&2; exit 1; }

SINK_PORT=28080
DWS_PORT=28090
SINK_DIR=/tmp/bench-sink
DWS_DIR=/tmp/bench-dws
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$WORK/results-$STAMP.jsonl
DETAILS=$WORK/details-$STAMP.jsonl
mkdir -p "$WORK"

# shellcheck source=benches/prepare.sh
source benches/prepare.sh

SCENARIOS=(--bodies "$BODIES/small-b50:$SMALL_C" --bodies "$BODIES/huge-b1:1")
run_sink() {
    python3 "$B/stow_bench.py" --label sink-fsync \
        --server-cmd "$SINK_BIN --addr 127.0.0.1:$SINK_PORT --mode file --fsync --dir $SINK_DIR" \
        --reset-cmd "rm -rf $SINK_DIR" \
        --ready-url "http://127.0.0.1:$SINK_PORT/stats" \
        --url "http://127.0.0.1:$SINK_PORT/studies" \
        "${SCENARIOS[@]}" --repeat 1 --out "$RESULTS" --details "$DETAILS"
}
run_dws() {
    python3 "$B/stow_bench.py" --label dicomwebserver \
        --server-cmd "$DWS_BIN --host 127.0.0.1 --port $DWS_PORT --dir $DWS_DIR" \
        --reset-cmd "rm -rf $DWS_DIR" \
        --ready-url "http://127.0.0.1:$DWS_PORT/dicomweb/status" \
        --url "http://127.0.0.1:$DWS_PORT/dicomweb/studies" \
        --count-cmd "find $DWS_DIR/studies -name '*.dcm' 2>/dev/null | wc -l" \
        "${SCENARIOS[@]}" --repeat 1 --out "$RESULTS" --details "$DETAILS"
}

run_dws_diag() {
    # `env` execs the server, so the PID the runner measures is the server's own.
    python3 "$B/stow_bench.py" --label dicomwebserver+diag \
        --server-cmd "env STACK_DUMP_ENABLED=1 TRACKABLE_STREAM_LIVELOCK_DETECT_MS=15000 $DWS_BIN --host 127.0.0.1 --port $DWS_PORT --dir $DWS_DIR --debug-listen 0" \
        --reset-cmd "rm -rf $DWS_DIR" \
        --ready-url "http://127.0.0.1:$DWS_PORT/dicomweb/status" \
        --url "http://127.0.0.1:$DWS_PORT/dicomweb/studies" \
        --count-cmd "find $DWS_DIR/studies -name '*.dcm' 2>/dev/null | wc -l" \
        "${SCENARIOS[@]}" --repeat 1 --out "$RESULTS" --details "$DETAILS"
}

for rep in $(seq 1 "$REPEAT"); do
    step "repetition $rep of $REPEAT: sink"
    run_sink
    step "repetition $rep of $REPEAT: dicomwebserver"
    run_dws
    if [ "$DIAG" = 1 ]; then
        step "repetition $rep of $REPEAT: dicomwebserver with diagnostics enabled, idle"
        run_dws_diag
    fi
done
rm -rf "$SINK_DIR" "$DWS_DIR"

step "summary ($RESULTS)"
python3 "$B/summarize.py" "$RESULTS"

step "dicomwebserver against the sink, and the targets"
python3 - "$RESULTS" <<'PY'
import json, statistics, sys

runs = [r for r in map(json.loads, open(sys.argv[1])) if r.get("kind") == "run"]
by = {}
for r in runs:
    by.setdefault((r["scenario"], r["concurrency"]), {}).setdefault(r["label"], []).append(r)

def med(rs, key):
    xs = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(xs) if xs else None

print("| scenario | C | sink MB/s | dicomwebserver MB/s | ratio (median of per-rep ratios) "
      "| sink CPU-s/GiB | dws CPU-s/GiB | dws peak RSS MiB (max) | all 200, all stored |")
print("|---|---|---|---|---|---|---|---|---|")
verdicts = []
for (scen, c), labels in sorted(by.items()):
    sink, dws = labels.get("sink-fsync", []), labels.get("dicomwebserver", [])
    if not sink or not dws:
        continue
    # Each stow_bench invocation is one repetition: pair sink and server runs in order.
    ratios = [d["MB_per_s"] / s["MB_per_s"] for s, d in zip(sink, dws)]
    ratio = statistics.median(ratios)
    ok = all(r["http_status"].keys() == {"200"} and not r.get("stow_failed")
             and r.get("store_count_ok", True) for r in dws)
    rss = max(r["server_peak_rss_MiB"] or 0 for r in dws)
    print(f"| {scen} | {c} | {med(sink, 'MB_per_s'):.1f} | {med(dws, 'MB_per_s'):.1f} | "
          f"{ratio:.2f} [{min(ratios):.2f}-{max(ratios):.2f}] | "
          f"{med(sink, 'server_cpu_s_per_GiB'):.2f} | {med(dws, 'server_cpu_s_per_GiB'):.2f} | "
          f"{rss:.1f} | {'yes' if ok else 'NO'} |")
    verdicts.append(f"throughput {scen} C={c}: {ratio:.2f} of the sink, target >= 0.70: "
                    f"{'met' if ratio >= 0.70 and ok else 'MISSED'}")
    if scen.startswith("huge"):
        verdicts.append(f"peak RSS receiving the huge instance: {rss:.1f} MiB, target < 64: "
                        f"{'met' if rss < 64 else 'MISSED'}")
    if c == 8:
        verdicts.append(f"peak RSS with 8 concurrent uploads: {rss:.1f} MiB, target < 128: "
                        f"{'met' if rss < 128 else 'MISSED'}")
print()
print("\n".join(verdicts))

# Diagnostics overhead: the same server with every diagnostic enabled but idle, per repetition.
rows = []
for (scen, c), labels in sorted(by.items()):
    plain, diag = labels.get("dicomwebserver", []), labels.get("dicomwebserver+diag", [])
    if not plain or not diag:
        continue
    ratios = [d["MB_per_s"] / p["MB_per_s"] for p, d in zip(plain, diag)]
    cpu = [d["server_cpu_s_per_GiB"] / p["server_cpu_s_per_GiB"] for p, d in zip(plain, diag)]
    rows.append(f"| {scen} | {c} | {med(plain, 'MB_per_s'):.1f} | {med(diag, 'MB_per_s'):.1f} | "
                f"{statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}] | "
                f"{statistics.median(cpu):.3f} |")
if rows:
    print()
    print("| scenario | C | dws MB/s | dws+diag MB/s | throughput ratio diag/plain | CPU-s/GiB ratio diag/plain |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
PY
echo "results: $RESULTS; per-request details: $DETAILS" >&2
