#!/usr/bin/env python3
"""Crash consistency: kill -9 the server during a concurrent ingest, restart it, check.

Usage: crash_rounds.py PATH/TO/dicomwebserver [ROUNDS]   (scripts/crash_rounds.sh builds it)

Each round starts the binary on a fresh storage root, runs CLIENTS concurrent STOW-RS clients
sending generated instances (mostly small, some of 1-3 MiB, now and then a batch of more than
64 parts so that a request spans several group commits) in multipart batches, kills the server
with SIGKILL at a random moment, restarts it on the same root and checks:

- every instance acknowledged (in a received ReferencedSOPSequence) is stored byte-identical,
  found by QIDO-RS and retrieved byte-identical by WADO-RS;
- every visible instance is byte-identical to what a client sent, and belongs to a request
  whose response was never received (lost in the kill) unless it was acknowledged: an
  instance a received response did not acknowledge must not be visible;
- tmp/ is empty; the index and the files agree (every row's file exists, every file under
  studies/ has a row, no pending batch); QIDO-RS lists exactly the indexed instances;
- the restarted server stores a new upload.

Visible but unacknowledged instances of requests cut by the kill are allowed (their group
commit finished before the kill, the response did not): they are counted and printed.
Prints one line per round and a final 'N passed, N failed' line; exits 1 on any failure.
Standard library only.
"""
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

CLIENTS = 6
PREFIX = "/dicomweb"
BOUNDARY = "crash-rounds-5f0c2a9e7b1d4c3a"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
LONG_VRS = {b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OF", b"OD", b"OL"}
AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def element(group, elem, vr, value):
    if len(value) % 2:
        value += b"\0" if vr == b"UI" else b" "
    if vr in LONG_VRS:
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def instance(study, series, pixel_bytes):
    """A Part 10 file (explicit VR LE) and its SOP Instance UID."""
    sop = "2.25." + str(uuid.uuid4().int)
    meta = (element(2, 1, b"OB", b"\0\1") + element(2, 2, b"UI", SECONDARY_CAPTURE.encode())
            + element(2, 3, b"UI", sop.encode()) + element(2, 0x10, b"UI", EXPLICIT_LE.encode()))
    meta = element(2, 0, b"UL", struct.pack("<I", len(meta))) + meta
    data = (element(8, 0x16, b"UI", SECONDARY_CAPTURE.encode()) + element(8, 0x18, b"UI", sop.encode())
            + element(8, 0x60, b"CS", b"OT") + element(0x10, 0x10, b"PN", b"Crash^Round")
            + element(0x20, 0xD, b"UI", study.encode()) + element(0x20, 0xE, b"UI", series.encode())
            + element(0x7FE0, 0x10, b"OB", os.urandom(pixel_bytes)))
    return sop, b"\0" * 128 + b"DICM" + meta + data


def multipart(files):
    out = []
    for data in files:
        out.append(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        out.append(data)
        out.append(b"\r\n")
    out.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(out)


class Ledger:
    """What the clients sent and what they were told, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}          # sop -> sha256 of the bytes sent
        self.path = {}          # sop -> (study, series)
        self.acked = set()      # sops in a received ReferencedSOPSequence
        self.refused = set()    # sops of requests whose response was received, not acked
        self.unanswered = set() # sops of requests without a received response
        self.requests = 0


def client(addr, ledger, stop, rng):
    host, port = addr
    while not stop.is_set():
        study, series = "2.25." + str(uuid.uuid4().int), "2.25." + str(uuid.uuid4().int)
        roll = rng.random()
        if roll < 0.05:
            count, sizes = 70, (256, 2048)          # more than one group commit
        elif roll < 0.25:
            count, sizes = rng.randint(1, 2), (1 << 20, 3 << 20)
        else:
            count, sizes = rng.randint(1, 8), (512, 32 << 10)
        batch = [instance(study, series, rng.randint(*sizes) & ~1) for _ in range(count)]
        sops = [sop for sop, _ in batch]
        with ledger.lock:
            for sop, data in batch:
                ledger.sent[sop] = hashlib.sha256(data).hexdigest()
                ledger.path[sop] = (study, series)
            ledger.unanswered.update(sops)
            ledger.requests += 1
        body = multipart([data for _, data in batch])
        try:
            connection = http.client.HTTPConnection(host, port, timeout=60)
            connection.request("POST", PREFIX + "/studies", body=body, headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
                "Accept": "application/dicom+json"})
            response = connection.getresponse()
            status, text = response.status, response.read()
            connection.close()
        except (OSError, http.client.HTTPException):
            return  # the server is gone: this request stays unanswered
        acked = set()
        if status in (200, 202):
            reply = json.loads(text)
            for item in reply.get("00081199", {}).get("Value", []):
                acked.add(item["00081155"]["Value"][0])
        with ledger.lock:
            ledger.unanswered.difference_update(sops)
            ledger.acked.update(acked)
            ledger.refused.update(set(sops) - acked)


def start(binary, root, log):
    process = subprocess.Popen([binary, "--port", "0", "--dir", root], stdout=subprocess.PIPE,
                               stderr=log, stdin=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if "listening on http://" in line:
            host, port = line.split("http://", 1)[1].strip().rsplit(":", 1)
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, (host, int(port))
    raise RuntimeError("the server exited before listening")


def get(addr, path, accept=None):
    connection = http.client.HTTPConnection(*addr, timeout=60)
    connection.request("GET", path, headers={"Accept": accept} if accept else {})
    response = connection.getresponse()
    headers = {name.lower(): value for name, value in response.getheaders()}
    result = response.status, headers, response.read()
    connection.close()
    return result


def qido_all(addr):
    found, offset = {}, 0
    while True:
        status, _, body = get(addr, f"{PREFIX}/instances?limit=1000&offset={offset}")
        if status == 204:
            return found
        assert status == 200, (status, body[:200])
        results = json.loads(body)
        for r in results:
            found[r["00080018"]["Value"][0]] = (r["0020000D"]["Value"][0], r["0020000E"]["Value"][0])
        offset += len(results)
        if len(results) < 1000:
            return found


def retrieve(addr, sop, study, series):
    status, headers, body = get(addr, f"{PREFIX}/studies/{study}/series/{series}/instances/{sop}", AS_STORED)
    if status != 200:
        return None
    boundary = headers["content-type"].split("boundary=")[1].split(";")[0].strip('"')
    start = body.index(b"\r\n\r\n") + 4
    end = body.index(f"\r\n--{boundary}".encode(), start)
    return body[start:end]


def files_under(root):
    out = set()
    for dirpath, _, names in os.walk(os.path.join(root, "studies")):
        for name in names:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def sha_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def one_round(binary, number, rng):
    root = tempfile.mkdtemp(prefix="crash-round-")
    problems = []
    log = open(root + ".log", "w")
    try:
        server, addr = start(binary, root, log)
        ledger, stop = Ledger(), threading.Event()
        threads = [threading.Thread(target=client, args=(addr, ledger, stop, random.Random(rng.random())))
                   for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        delay = rng.uniform(0.3, 3.0)
        time.sleep(delay)
        server.send_signal(signal.SIGKILL)
        server.wait()
        stop.set()
        for t in threads:
            t.join(120)
        server, addr = start(binary, root, log)

        leftovers = os.listdir(os.path.join(root, "tmp"))
        if leftovers:
            problems.append(f"tmp/ holds {leftovers}")
        db = sqlite3.connect(os.path.join(root, "index.sqlite"))
        rows = {path for (path,) in db.execute("SELECT path FROM instances")}
        indexed = {sop for (sop,) in db.execute("SELECT sop_uid FROM instances")}
        pending = db.execute("SELECT count(*) FROM pending").fetchone()[0]
        db.close()
        files = files_under(root)
        if files - rows:
            problems.append(f"{len(files - rows)} files without an index row, e.g. {sorted(files - rows)[:2]}")
        if rows - files:
            problems.append(f"{len(rows - files)} index rows without a file, e.g. {sorted(rows - files)[:2]}")
        if pending:
            problems.append(f"{pending} pending index rows after restart")
        visible = qido_all(addr)
        if set(visible) != indexed:
            problems.append(f"QIDO lists {len(visible)} instances, the index holds {len(indexed)}")
        for sop in ledger.acked:
            study, series = ledger.path[sop]
            path = os.path.join(root, "studies", study, "series", series, "instances", sop + ".dcm")
            if sop not in visible:
                problems.append(f"acknowledged {sop} is not found by QIDO")
            elif not os.path.exists(path) or sha_file(path) != ledger.sent[sop]:
                problems.append(f"acknowledged {sop} is not stored byte-identical")
            else:
                data = retrieve(addr, sop, study, series)
                if data is None or hashlib.sha256(data).hexdigest() != ledger.sent[sop]:
                    problems.append(f"acknowledged {sop} is not retrieved byte-identical")
        unacked_visible = 0
        for sop, (study, series) in visible.items():
            if sop not in ledger.sent:
                problems.append(f"visible {sop} was never sent")
                continue
            path = os.path.join(root, "studies", study, "series", series, "instances", sop + ".dcm")
            if not os.path.exists(path) or sha_file(path) != ledger.sent[sop]:
                problems.append(f"visible {sop} differs from the bytes sent")
            if sop in ledger.refused:
                problems.append(f"visible {sop} was answered as not stored")
            elif sop not in ledger.acked:
                unacked_visible += 1
        # The restarted server takes new uploads.
        sop, data = instance("2.25." + str(uuid.uuid4().int), "2.25." + str(uuid.uuid4().int), 4096)
        connection = http.client.HTTPConnection(*addr, timeout=60)
        connection.request("POST", PREFIX + "/studies", body=multipart([data]), headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'})
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            problems.append(f"an upload after the restart got {response.status}")
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        summary = (f"killed after {delay:.2f} s, {ledger.requests} requests, {len(ledger.sent)} instances sent, "
                   f"{len(ledger.acked)} acknowledged, {len(visible)} visible "
                   f"({unacked_visible} unacknowledged from requests cut by the kill)")
        return not problems, summary, problems
    finally:
        log.close()
        if not problems:
            shutil.rmtree(root, ignore_errors=True)
            os.remove(log.name)


def main():
    binary = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rng = random.Random(int(os.environ.get("CRASH_SEED", time.time_ns())))
    passed = failed = 0
    for number in range(1, rounds + 1):
        ok, summary, problems = one_round(binary, number, rng)
        print(f"round {number}: {'ok  ' if ok else 'FAIL'} {summary}", flush=True)
        for problem in problems[:10]:
            print(f"    {problem}", flush=True)
        passed, failed = passed + ok, failed + (not ok)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
