#!/usr/bin/env bash
# End-to-end: the OHIF viewer browses and displays a study stored in dicomwebserver.
#
# Usage: tests/ohif/run.sh PATH/TO/dicomwebserver
#
# Needs node 20+ with npm, python3 with pydicom and numpy, and Chromium at /usr/bin/chromium
# (or $CHROMIUM); no browser is downloaded. Installs the test's npm packages (npm ci), fetches
# the OHIF build from the npm registry (@ohif/app, pinned in package.json with its integrity,
# unpacked once under tests/ohif/.viewer/), serves it on one loopback port and the DICOMweb
# server on another (so every DICOMweb call is cross-origin and needs --cors-allow-origin),
# writes a generated CT study as files and uploads the folder with `dicomwebserver stow`, then
# drives headless Chromium from the study list to the viewer. Prints one line per check and 'N passed, M failed'; exits non-zero on a
# failure. Screenshots and logs stay in the directory printed at the start.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH/TO/dicomwebserver" >&2
    exit 2
fi
BINARY=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHROMIUM
# Longest wait for a process's `listening on` line.
STARTUP_TIMEOUT_SECS=30

ARTIFACTS=$(mktemp -d "${TMPDIR:-/tmp}/ohif-e2e.XXXXXX")
STORAGE="$ARTIFACTS/storage"
CHECKS="$ARTIFACTS/checks.log"
: > "$CHECKS"
echo "artifacts (screenshots, logs): $ARTIFACTS"

# The processes this script started and has not yet waited for.
VIEWER_PID=""
SERVER_PID=""
cleanup() {
    local pid
    for pid in $VIEWER_PID $SERVER_PID; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$STORAGE" "$ARTIFACTS"/chromium-profile-*
}
trap cleanup EXIT

check() { # NAME CONDITION-EXIT-STATUS [DETAIL]
    if [[ $2 -eq 0 ]]; then
        echo "ok   $1" | tee -a "$CHECKS"
    else
        echo "FAIL $1${3:+: $3}" | tee -a "$CHECKS"
    fi
}

report() {
    local passed failed
    passed=$(grep -c '^ok   ' "$CHECKS" || true)
    failed=$(grep -c '^FAIL ' "$CHECKS" || true)
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 && $passed -gt 0 ]]
}

# Prints the URL of the first `listening on URL` line in FILE, waiting for it.
listening_url() {
    local file=$1 deadline=$((SECONDS + STARTUP_TIMEOUT_SECS)) line
    while ((SECONDS < deadline)); do
        line=$(grep -m1 -o 'listening on http://127\.0\.0\.1:[0-9]*' "$file" 2>/dev/null || true)
        if [[ -n $line ]]; then
            echo "${line#listening on }"
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# --- Prerequisites -------------------------------------------------------------------------
status=0; "$CHROMIUM" --version >/dev/null 2>&1 || status=$?
check "chromium runs ($CHROMIUM)" "$status" "install chromium (apt-get install -y chromium) or set CHROMIUM"
status=0; python3 -c 'import pydicom, numpy' 2>/dev/null || status=$?
check "python3 has pydicom and numpy" "$status" "pip install pydicom numpy"
if grep -q '^FAIL' "$CHECKS"; then report; exit 1; fi

# --- npm packages and the OHIF build ---------------------------------------------------------
status=0
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >"$ARTIFACTS/npm-ci.log" 2>&1 || status=$?
check "npm ci (playwright-core, pngjs)" "$status" "see $ARTIFACTS/npm-ci.log"
if [[ $status -ne 0 ]]; then report; exit 1; fi

read -r VIEWER_PACKAGE VIEWER_INTEGRITY < <(node -e '
    const { ohifViewer } = require(process.argv[1]);
    console.log(ohifViewer.package, ohifViewer.integrity);' "$HERE/package.json")
VIEWER_DIR="$HERE/.viewer/${VIEWER_PACKAGE//[@\/]/_}"
if [[ ! -f "$VIEWER_DIR/dist/index.html" ]]; then
    unpack_dir=$(mktemp -d "$HERE/.viewer.XXXXXX")
    status=0
    tarball=$(cd "$unpack_dir" && npm pack "$VIEWER_PACKAGE" --silent 2>"$ARTIFACTS/npm-pack.log" | tail -n1) \
        || status=$?
    if [[ $status -ne 0 || -z $tarball ]]; then
        rm -rf "$unpack_dir"
        check "npm pack $VIEWER_PACKAGE" 1 "see $ARTIFACTS/npm-pack.log"
        report; exit 1
    fi
    integrity=$(node -e '
        const data = require("fs").readFileSync(process.argv[1]);
        console.log("sha512-" + require("crypto").createHash("sha512").update(data).digest("base64"));
        ' "$unpack_dir/$tarball")
    if [[ $integrity != "$VIEWER_INTEGRITY" ]]; then
        rm -rf "$unpack_dir"
        check "$VIEWER_PACKAGE matches the integrity pinned in package.json" 1 "got $integrity"
        report; exit 1
    fi
    tar -xzf "$unpack_dir/$tarball" -C "$unpack_dir" package/dist
    mkdir -p "$(dirname "$VIEWER_DIR")"
    rm -rf "$VIEWER_DIR"
    mv "$unpack_dir/package" "$VIEWER_DIR"
    rm -rf "$unpack_dir"
fi
check "OHIF build from $VIEWER_PACKAGE" 0

# --- Servers ---------------------------------------------------------------------------------
APP_CONFIG="$ARTIFACTS/app-config.js"
: > "$APP_CONFIG"
node "$HERE/serve.mjs" "$VIEWER_DIR/dist" "$APP_CONFIG" >"$ARTIFACTS/viewer.log" 2>&1 &
VIEWER_PID=$!
status=0; OHIF_URL=$(listening_url "$ARTIFACTS/viewer.log") || status=$?
check "OHIF build served on loopback" "$status" "see $ARTIFACTS/viewer.log"
if [[ $status -ne 0 ]]; then report; exit 1; fi

mkdir -p "$STORAGE"
"$BINARY" --port 0 --dir "$STORAGE" --cors-allow-origin "$OHIF_URL" \
    >"$ARTIFACTS/server.log" 2>"$ARTIFACTS/server.err" &
SERVER_PID=$!
status=0; SERVER_URL=$(listening_url "$ARTIFACTS/server.log") || status=$?
check "dicomwebserver prints its listening line" "$status" "see $ARTIFACTS/server.err"
if [[ $status -ne 0 ]]; then report; exit 1; fi
DICOMWEB_ROOT="$SERVER_URL/dicomweb"
sed "s#__DICOMWEB_ROOT__#$DICOMWEB_ROOT#g" "$HERE/app-config.template.js" > "$APP_CONFIG"
echo "OHIF at $OHIF_URL, DICOMweb at $DICOMWEB_ROOT"

# --- The study, then the browser -----------------------------------------------------------
# Written as a folder of files and uploaded with the uploader, as the README's next steps do.
status=0
python3 "$HERE/make_study.py" "$ARTIFACTS/study" "$ARTIFACTS/study.json" || status=$?
check "study written as files" "$status"
if [[ $status -eq 0 ]]; then
    "$BINARY" stow --url "$DICOMWEB_ROOT" --progress plain "$ARTIFACTS/study" \
        >"$ARTIFACTS/stow.out" 2>"$ARTIFACTS/stow.err" || status=$?
    stored=$(awk '$1 == "stored" && $2 ~ /^[0-9]+$/ { print $2; exit }' "$ARTIFACTS/stow.out")
    [[ $status -eq 0 && $stored == 5 ]] || status=1
    check "dicomwebserver stow stores the 5 CT slices" "$status" \
        "exit $status, stored ${stored:-?}: $(cat "$ARTIFACTS/stow.out" "$ARTIFACTS/stow.err")"
fi
if [[ $status -eq 0 ]]; then
    timeout 300 node "$HERE/browse.mjs" "$OHIF_URL" "$DICOMWEB_ROOT" "$ARTIFACTS/study.json" \
        "$ARTIFACTS" 2>&1 | tee -a "$CHECKS" || true
fi

# --- Shutdown --------------------------------------------------------------------------------
kill -TERM "$SERVER_PID"
status=0; wait "$SERVER_PID" || status=$?
SERVER_PID=""
check "dicomwebserver exits cleanly on SIGTERM" "$status" "exit status $status"
report
