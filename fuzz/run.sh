#!/usr/bin/env bash
# Runs the fuzz targets for SECONDS each (default 30): CI's smoke run, and long runs by hand.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (every target when none is named)
#
# cargo-fuzz drives libFuzzer with AddressSanitizer. It passes nightly-only rustc flags
# (-Zsanitizer, sancov passes); RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them, so no
# nightly is needed. Each target reads its committed seeds in corpus/<target>/ and writes what
# it finds to work/<target>/ (ignored by git); crashes land in artifacts/<target>/ and make
# the script exit non-zero. Per-target logs: work/<target>.log (final stats at the end).
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-30}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(multipart_splitter tokenizer qido_params stow)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

mkdir -p work
cat dicts/dicom.dict dicts/multipart.dict > work/stow.dict

# libFuzzer options per target: input size, dictionary, limits.
options() {
    case "$1" in
        multipart_splitter) echo "-max_len=16384 -dict=dicts/multipart.dict" ;;
        # The tokenizer allocates nothing from lengths read off the input: a tiny malloc limit
        # turns any such allocation into a crash.
        tokenizer) echo "-max_len=65536 -malloc_limit_mb=16 -dict=dicts/dicom.dict" ;;
        qido_params) echo "-max_len=4096 -dict=dicts/qido.dict" ;;
        stow) echo "-max_len=65536 -timeout=60 -dict=work/stow.dict" ;;
        *) echo "unknown target $1" >&2; return 1 ;;
    esac
}

failed=()
for target in "${targets[@]}"; do
    opts="$(options "$target")"
    mkdir -p "work/$target" "artifacts/$target"
    # The STOW target's server stores under TMPDIR; start each run from an empty one.
    tmp="work/$target-tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    echo "== fuzzing $target for ${seconds}s"
    # shellcheck disable=SC2086 # $opts is a list of options
    if TMPDIR="$PWD/$tmp" cargo fuzz run "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 $opts >"work/$target.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
        tail -n 60 "work/$target.log"
    fi
    rm -rf "$tmp"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "work/$target.log" | grep -o '[0-9]*$' || true)
    speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "work/$target.log" | grep -o '[0-9]*$' || true)
    coverage=$(grep -oE '(DONE|pulse|NEW|REDUCE) +cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' "work/$target.log" | tail -n 1 | sed -E 's/^[A-Z]+ +//' || true)
    echo "   $target: $status, ${execs:-?} execs, ${speed:-?} exec/s, ${coverage:-no stats}"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
