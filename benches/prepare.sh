# Shared by benches/ingest.sh and benches/uploader.sh (sourced, from the repository root, with
# B, WORK, N and HUGE_MIB set): the corpus and its prebuilt request bodies under $WORK, the
# raw sink built from a copy of the shared harness, and the release binary. Sets CORPUS,
# BODIES, SINK_BIN and DWS_BIN, and defines step().

step() { printf '\n== %s\n' "$*" >&2; }

CORPUS=$WORK/corpus-n$N-h$HUGE_MIB
BODIES=$WORK/bodies-n$N-h$HUGE_MIB
mkdir -p "$WORK"

step "python dependencies"
python3 -c 'import pydicom, numpy' 2>/dev/null || pip install pydicom numpy

step "corpus: $N small instances, $HUGE_MIB MiB multi-frame instance in $CORPUS"
if [ ! -f "$CORPUS/.done" ]; then
    rm -rf "$CORPUS"
    python3 "$B/gen_corpus.py" "$CORPUS" --n "$N" --huge-mib "$HUGE_MIB" --only small,huge
    touch "$CORPUS/.done"
fi

step "request bodies in $BODIES"
if [ ! -f "$BODIES/small-b50/manifest.json" ] || [ ! -f "$BODIES/huge-b1/manifest.json" ]; then
    rm -rf "$BODIES"
    python3 "$B/build_bodies.py" "$CORPUS/small" "$BODIES/small-b50" --batch 50
    python3 "$B/build_bodies.py" "$CORPUS/huge" "$BODIES/huge-b1" --batch 1
fi

step "raw sink (built from a copy, ../shared is read-only)"
mkdir -p "$WORK/sink"
cp -r "$B/sink/Cargo.toml" "$B/sink/Cargo.lock" "$B/sink/src" "$WORK/sink/"
(cd "$WORK/sink" && cargo build --release --quiet)
SINK_BIN=$WORK/sink/target/release/stow-sink

step "dicomwebserver (release)"
cargo build --release --quiet --bin dicomwebserver
DWS_BIN=$PWD/target/release/dicomwebserver
