#!/usr/bin/env bash
# End-to-end benchmark of the uploader as a client: `dicomwebserver stow` side by side with
# curl (the harness's client) sending the same files to the raw sink, in one run, so that the
# figure says how close the uploader gets to a plain HTTP client.
#
# Usage (from anywhere; the shared harness is found at ../shared/bench from the repo root):
#   benches/uploader.sh                                # 2000 x 512 KiB + one 1 GiB instance
#   N=400 HUGE_MIB=512 REPEAT=3 benches/uploader.sh    # smaller run
#
# Environment:
#   N          small CT instances in the corpus (default 2000)
#   HUGE_MIB   size of the multi-frame instance in MiB (default 1024)
#   REPEAT     repetitions of every pair (default 3)
#   MODES      sink modes, comma separated: discard (read and drop the body), fsync (write
#              it to a file and fsync) (default discard,fsync)
#   PARALLEL   concurrent requests, for both clients (default 2, the uploader's default)
#   WORK       where corpus, bodies and results go (default /tmp/dws-bench; the corpus and
#              bodies are shared with benches/ingest.sh)
#   SINK_PORT  first of the two sink ports (default 28180; discard there, fsync on +1)
#
# Per repetition, for each scenario (small: N files, 50 per request; huge: one instance) and
# sink mode, the two clients run back to back, their order alternating between repetitions:
#   curl      the prebuilt bodies of build_bodies.py, `curl -X POST -T BODY`, PARALLEL curl
#             processes at a time (xargs -P)
#   uploader  target/release/dicomwebserver stow --parallel PARALLEL --batch 50 --progress
#             none CORPUS_DIR (it walks the folder and probes each file: part of what a user
#             gets; the scan time is recorded separately from the stderr line it prints when
#             the scan is done)
# Each side runs under /usr/bin/time (wall, user, sys, peak RSS of the largest process).
# MB/s is 10^6 bytes of DICOM files per second (the same for both; framing not counted).
# Everything listens on 127.0.0.1 only. Compare the ratios, not absolute figures.
set -euo pipefail

N=${N:-2000}
HUGE_MIB=${HUGE_MIB:-1024}
REPEAT=${REPEAT:-3}
MODES=${MODES:-discard,fsync}
PARALLEL=${PARALLEL:-2}
WORK=${WORK:-/tmp/dws-bench}
SINK_PORT=${SINK_PORT:-28180}

cd "$(dirname "$0")/.."
B=../shared/bench
[ -f "$B/gen_corpus.py" ] || { echo "no harness at $B (expected ../shared/bench)" >&2; exit 1; }

SINK_DIR=/tmp/bench-sink-uploader
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$WORK/uploader-$STAMP.jsonl
SCRATCH=$WORK/uploader-$STAMP
mkdir -p "$WORK" "$SCRATCH"

# shellcheck source=benches/prepare.sh
source benches/prepare.sh

# One line per body for xargs: the body file and its boundary (hex, no spaces or quotes).
for scen in small-b50 huge-b1; do
    python3 - "$BODIES/$scen" >"$SCRATCH/$scen.list" <<'PY'
import json, os, sys
man = json.load(open(os.path.join(sys.argv[1], "manifest.json")))
for b in man["bodies"]:
    print(os.path.join(sys.argv[1], b["file"]), b["boundary"])
PY
done
manifest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$BODIES/$1/manifest.json" "$2"; }
corpus_dir() { case $1 in small-b50) echo "$CORPUS/small" ;; huge-b1) echo "$CORPUS/huge" ;; esac; }

step "reading corpus and bodies once (both clients then read from the page cache)"
cat "$CORPUS"/small/* "$CORPUS"/huge/* "$BODIES"/*/*.mpr >/dev/null

step "sinks: discard on 127.0.0.1:$SINK_PORT, file --fsync on 127.0.0.1:$((SINK_PORT + 1))"
declare -A SINK_PID PORT
PORT[discard]=$SINK_PORT
PORT[fsync]=$((SINK_PORT + 1))
cleanup() {
    for pid in "${SINK_PID[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$SINK_DIR"
}
trap cleanup EXIT
rm -rf "$SINK_DIR"
"$SINK_BIN" --addr "127.0.0.1:${PORT[discard]}" --mode discard >"$SCRATCH/sink-discard.log" 2>&1 &
SINK_PID[discard]=$!
"$SINK_BIN" --addr "127.0.0.1:${PORT[fsync]}" --mode file --fsync --dir "$SINK_DIR" \
    >"$SCRATCH/sink-fsync.log" 2>&1 &
SINK_PID[fsync]=$!
for mode in discard fsync; do
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:${PORT[$mode]}/stats" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:${PORT[$mode]}/stats" >/dev/null || { echo "sink $mode did not start" >&2; exit 1; }
done

# `requests bytes` the sink has received so far.
sink_stats() {
    curl -sf "http://127.0.0.1:$1/stats" |
        python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["requests"], s["bytes"])'
}
# CPU seconds (user+sys, all threads) of a process so far.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# Appends one JSON object from key=value pairs (numbers stay numbers).
record() {
    python3 - "$@" >>"$RESULTS" <<'PY'
import json, sys
rec = {}
for arg in sys.argv[1:]:
    key, _, value = arg.partition("=")
    try:
        rec[key] = int(value)
    except ValueError:
        try:
            rec[key] = float(value)
        except ValueError:
            rec[key] = value
print(json.dumps(rec))
PY
}
stamp_lines() { while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }

# run_one MODE SCENARIO REP CLIENT: one timed run of one client, checked and recorded.
run_one() {
    local mode=$1 scen=$2 rep=$3 client=$4
    local port=${PORT[$mode]} pid=${SINK_PID[$mode]}
    local url="http://127.0.0.1:$port/studies"
    local tf="$SCRATCH/time" out="$SCRATCH/$client.out" err="$SCRATCH/$client.err"
    local file_bytes nbodies instances s0 b0 s1 b1 cpu0 cpu1 rc=0 ok=yes detail scan_s=""
    file_bytes=$(manifest "$scen" dicom_bytes)
    nbodies=$(wc -l <"$SCRATCH/$scen.list")
    instances=$(manifest "$scen" instances)
    read -r s0 b0 < <(sink_stats "$port")
    cpu0=$(proc_cpu "$pid")
    if [ "$client" = curl ]; then
        # shellcheck disable=SC2016 # $0 and $1 are expanded by sh, once per body
        /usr/bin/time -f '%e %U %S %M' -o "$tf" xargs -P "$PARALLEL" -n 2 sh -c \
            'exec curl -sS -o /dev/null -w "%{http_code}\n" -H "Accept: application/dicom+json" -H "Expect:" -H "Content-Type: multipart/related; type=\"application/dicom\"; boundary=$1" -X POST -T "$0" "'"$url"'"' \
            <"$SCRATCH/$scen.list" >"$out" 2>"$err" || rc=$?
        local n200
        n200=$(grep -c '^200$' "$out" || true)
        detail="http_200=$n200/$nbodies"
        [ "$rc" = 0 ] && [ "$n200" = "$nbodies" ] && [ "$(wc -l <"$out")" = "$nbodies" ] || ok=no
    else
        local t0 stored failed
        t0=$EPOCHREALTIME
        /usr/bin/time -f '%e %U %S %M' -o "$tf" "$DWS_BIN" stow --url "$url" \
            --parallel "$PARALLEL" --batch 50 --progress none "$(corpus_dir "$scen")" \
            >"$out" 2> >(stamp_lines >"$err") || rc=$?
        wait $! 2>/dev/null || true  # the stderr stamper
        stored=$(awk '$1 == "stored" && $2 ~ /^[0-9]+$/ {print $2}' "$out")
        failed=$(awk '$1 == "failed" && $2 ~ /^[0-9]+$/ {print $2}' "$out")
        scan_s=$(awk -v t0="$t0" '$2 == "uploading" {printf "%.3f", $1 - t0; exit}' "$err")
        detail="exit=$rc,stored=$stored/$instances,failed=$failed"
        [ "$rc" = 0 ] && [ "$stored" = "$instances" ] && [ "$failed" = 0 ] || ok=no
    fi
    cpu1=$(proc_cpu "$pid")
    read -r s1 b1 < <(sink_stats "$port")
    [ "$b1" -gt "$b0" ] && [ $((b1 - b0)) -ge "$file_bytes" ] || ok=no
    local wall user sys rss
    read -r wall user sys rss < <(tail -n 1 "$tf")
    record label=uploader-bench client="$client" mode="$mode" scenario="$scen" rep="$rep" \
        parallel="$PARALLEL" instances="$instances" file_bytes="$file_bytes" \
        sink_requests=$((s1 - s0)) sink_body_bytes=$((b1 - b0)) \
        wall_s="$wall" user_s="$user" sys_s="$sys" peak_rss_kib="$rss" \
        sink_cpu_s="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}')" \
        ${scan_s:+scan_s=$scan_s} ok="$ok" detail="$detail"
    printf '%-8s %-7s %-9s rep %s: %6.2f s, user %5.2f s, sys %5.2f s, peak RSS %6d KiB, %s%s\n' \
        "$client" "$mode" "$scen" "$rep" "$wall" "$user" "$sys" "$rss" "$detail" \
        "${scan_s:+, scan $scan_s s}" >&2
    if [ "$ok" != yes ]; then
        echo "FAILED run; stdout and stderr:" >&2
        tail -n 20 "$out" "$err" >&2
    fi
}

IFS=, read -r -a mode_list <<<"$MODES"
for rep in $(seq 1 "$REPEAT"); do
    step "repetition $rep of $REPEAT"
    for scen in small-b50 huge-b1; do
        for mode in "${mode_list[@]}"; do
            # Alternate which client goes first, so neither always follows the other.
            if [ $((rep % 2)) = 1 ]; then order="curl uploader"; else order="uploader curl"; fi
            for client in $order; do
                run_one "$mode" "$scen" "$rep" "$client"
            done
        done
    done
done

step "summary ($RESULTS)"
python3 - "$RESULTS" <<'PY'
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1])]
GiB = 2**30

for r in runs:
    # /usr/bin/time counts in 10 ms steps: tiny runs are floored at one step.
    r["MB_per_s"] = r["file_bytes"] / 1e6 / max(r["wall_s"], 0.01)
    r["cpu_s"] = r["user_s"] + r["sys_s"]
    r["cpu_s_per_GiB"] = max(r["cpu_s"], 0.01) / (r["file_bytes"] / GiB)
    r["peak_rss_MiB"] = r["peak_rss_kib"] / 1024
    if "scan_s" in r:
        r["MB_per_s_scan_free"] = r["file_bytes"] / 1e6 / max(r["wall_s"] - r["scan_s"], 0.01)

def fmt(xs, digits):
    return (f"{statistics.median(xs):.{digits}f} [{min(xs):.{digits}f}-{max(xs):.{digits}f}]"
            if xs else "-")

ORDER = {"small-b50": 0, "huge-b1": 1, "discard": 0, "fsync": 1}
groups = {}
for r in runs:
    groups.setdefault((r["scenario"], r["mode"]), {}).setdefault(r["client"], []).append(r)

print("| scenario | sink | client | MB/s | CPU-s per GiB | user / sys s | peak RSS MiB "
      "| sink CPU-s per GiB | runs ok |")
print("|---|---|---|---|---|---|---|---|---|")
for (scen, mode), clients in sorted(groups.items(), key=lambda g: (ORDER[g[0][0]], ORDER[g[0][1]])):
    for client in ("curl", "uploader"):
        rs = clients.get(client, [])
        if not rs:
            continue
        ok = sum(r["ok"] == "yes" for r in rs)
        print(f"| {scen} | {mode} | {client} | {fmt([r['MB_per_s'] for r in rs], 0)} | "
              f"{fmt([r['cpu_s_per_GiB'] for r in rs], 2)} | "
              f"{statistics.median(r['user_s'] for r in rs):.2f} / "
              f"{statistics.median(r['sys_s'] for r in rs):.2f} | "
              f"{fmt([r['peak_rss_MiB'] for r in rs], 1)} | "
              f"{fmt([r['sink_cpu_s'] / (r['file_bytes'] / GiB) for r in rs], 2)} | {ok}/{len(rs)} |")

print()
print("| scenario | sink | MB/s uploader/curl | same, uploader without its scan | "
      "CPU per GiB uploader/curl | uploader scan s |")
print("|---|---|---|---|---|---|")
for (scen, mode), clients in sorted(groups.items(), key=lambda g: (ORDER[g[0][0]], ORDER[g[0][1]])):
    curl = {r["rep"]: r for r in clients.get("curl", [])}
    upl = {r["rep"]: r for r in clients.get("uploader", [])}
    reps = sorted(curl.keys() & upl.keys())
    if not reps:
        continue
    # Ratios within a repetition (the two runs were back to back), then their median.
    speed = [upl[k]["MB_per_s"] / curl[k]["MB_per_s"] for k in reps]
    speed_nf = [upl[k]["MB_per_s_scan_free"] / curl[k]["MB_per_s"] for k in reps
                if "MB_per_s_scan_free" in upl[k]]
    cpu = [upl[k]["cpu_s_per_GiB"] / curl[k]["cpu_s_per_GiB"] for k in reps]
    scan = [upl[k]["scan_s"] for k in reps if "scan_s" in upl[k]]
    print(f"| {scen} | {mode} | {fmt(speed, 2)} | {fmt(speed_nf, 2)} | {fmt(cpu, 2)} | "
          f"{fmt(scan, 3)} |")

bad = [r for r in runs if r["ok"] != "yes"]
print()
print(f"{len(runs) - len(bad)} of {len(runs)} runs succeeded "
      "(curl: every body answered 200; uploader: exit 0, every instance stored; "
      "sink: received at least the file bytes)")
for r in bad:
    print(f"FAILED: {r['client']} {r['mode']} {r['scenario']} rep {r['rep']}: {r['detail']}")
sys.exit(1 if bad else 0)
PY
echo "results: $RESULTS" >&2
