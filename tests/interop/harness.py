"""What the interop scripts share: checks with a closing 'N passed, N failed' line, the
server binary on a free loopback port, and the bytes dicomweb-client sends for a dataset."""
import io
import subprocess
import tempfile

RESULTS = []


def check(name, condition, detail=""):
    RESULTS.append(bool(condition))
    print(("ok   " if condition else "FAIL ") + name + (f": {detail}" if detail and not condition else ""))


def as_sent(ds):
    """The bytes dicomweb-client puts in a part for `ds`: pydicom's encoding without the
    preamble and DICM (its `save_as(..., write_like_original=True)` omits them)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, write_like_original=True)
    return buffer.getvalue()


def start_server(binary, prefix):
    """Starts `binary` on 127.0.0.1:0 with a new storage root; returns (process, base URL, root)."""
    root = tempfile.mkdtemp(prefix=prefix)
    server = subprocess.Popen([binary, "--port", "0", "--dir", root],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    base = line.strip().split("listening on ")[-1]
    check("server prints its listening line", base.startswith("http://127.0.0.1:"), line)
    return server, base, root


def stop_and_report(server):
    """Stops the server with SIGTERM, checks it exits cleanly, prints the closing line and
    returns the exit code for the script."""
    server.terminate()
    server.wait(timeout=30)
    check("server exits cleanly on SIGTERM", server.returncode == 0, str(server.returncode))
    passed = sum(RESULTS)
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
