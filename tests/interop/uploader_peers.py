#!/usr/bin/env python3
"""Interoperability: the `dicomwebserver stow` uploader against two STOW-RS servers, this one
and Orthanc with its DICOMweb plugin (Debian packages orthanc and orthanc-dicomweb).

Usage: uploader_peers.py PATH/TO/dicomwebserver

Writes a folder of pydicom files (two series, names without extensions, a subfolder, one file
without preamble, one text file), uploads it with the uploader to each server, checks the
summary and exit code, and asks each server what it now holds (Orthanc's statistics and
QIDO-RS; this server's QIDO-RS). A second upload of the same folder must succeed again
(both servers accept an identical instance twice). Prints one line per check and a closing
'N passed, N failed' line; exits non-zero on any failure.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from harness import check, make_instance, start_server, stop_and_report
from pydicom.uid import generate_uid

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_folder(folder):
    """The upload folder; returns the number of DICOM files and the study UIDs."""
    studies = [generate_uid(), generate_uid()]
    count = 0
    for s, study in enumerate(studies):
        series = generate_uid()
        for n in range(1, 4):
            ds = make_instance(study, series, rows=32, number=n, modality="CT")
            sub = os.path.join(folder, f"study{s}", "series")
            os.makedirs(sub, exist_ok=True)
            ds.save_as(os.path.join(sub, f"IM{n:04}"), enforce_file_format=True)
            count += 1
    # A file as dicomweb-client writes it: meta group, no preamble.
    ds = make_instance(studies[0], generate_uid(), rows=16, number=9)
    ds.save_as(os.path.join(folder, "no-preamble"), write_like_original=True)
    count += 1
    with open(os.path.join(folder, "README.txt"), "w") as f:
        f.write("not an image\n")
    return count, studies


def upload(binary, url, folder):
    run = subprocess.run([binary, "stow", "--url", url, "--progress", "plain", "--batch", "3",
                          folder], capture_output=True, text=True, timeout=300)
    return run


def summary_count(output, name):
    for line in output.splitlines():
        if line.startswith(name + "  "):
            return int(line[len(name):].split()[0])
    return None


def check_run(label, run, expected):
    detail = f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    check(f"{label}: exit code 0", run.returncode == 0, detail)
    check(f"{label}: summary says {expected} stored", summary_count(run.stdout, "stored") == expected,
          detail)
    check(f"{label}: summary says 1 not DICOM", summary_count(run.stdout, "not DICOM") == 1, detail)
    check(f"{label}: plain progress line", f"progress: {expected}/{expected} files" in run.stderr,
          detail)


def get_json(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
        return json.loads(body) if body else []


def start_orthanc(workdir):
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "UPLOADER", "StorageDirectory": os.path.join(workdir, "db"),
        "IndexDirectory": os.path.join(workdir, "db"), "HttpPort": http_port,
        "DicomPort": dicom_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    path = os.path.join(workdir, "orthanc.json")
    with open(path, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(workdir, "orthanc.log"), "w")
    process = subprocess.Popen([ORTHANC, path], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            get_json(base + "/system")
            return process, base
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.3)
    process.kill()
    with open(os.path.join(workdir, "orthanc.log")) as f:
        sys.exit("Orthanc did not start:\n" + f.read()[-2000:])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    if not os.path.exists(ORTHANC) or not os.path.exists(DICOMWEB_PLUGIN):
        sys.exit("Orthanc and its DICOMweb plugin are needed: apt-get install orthanc orthanc-dicomweb")
    with tempfile.TemporaryDirectory(prefix="uploader-peers-") as workdir:
        folder = os.path.join(workdir, "upload")
        os.makedirs(folder)
        expected, studies = write_folder(folder)

        orthanc, orthanc_base = start_orthanc(workdir)
        try:
            url = orthanc_base + "/dicom-web"
            check_run("Orthanc", upload(binary, url, folder), expected)
            stats = get_json(orthanc_base + "/statistics")
            check("Orthanc holds every instance", stats.get("CountInstances") == expected,
                  str(stats))
            found = get_json(url + "/studies?StudyInstanceUID=" + studies[0])
            check("Orthanc finds the first study with QIDO-RS", len(found) == 1, str(found))
            check_run("Orthanc, same folder again", upload(binary, url, folder), expected)
        finally:
            orthanc.terminate()
            orthanc.wait(timeout=30)

        server, base, root = start_server(binary, "uploader-peers-")
        try:
            check_run("dicomwebserver", upload(binary, base + "/dicomweb", folder), expected)
            instances = get_json(base + "/dicomweb/instances")
            check("dicomwebserver holds every instance", len(instances) == expected,
                  str(len(instances)))
            check_run("dicomwebserver, same folder again", upload(binary, base + "/dicomweb", folder),
                      expected)
        finally:
            code = stop_and_report(server)
            shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
