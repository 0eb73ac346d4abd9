#!/usr/bin/env python3
"""Interoperability: real third-party STOW-RS clients against the real server binary.

Usage: stow_clients.py PATH/TO/dicomwebserver

Starts the binary on a free loopback port with a temporary storage root, then stores
instances with the Python dicomweb-client package (multipart, and chunked above 1 MB) and
with curl (multipart with Expect: 100-continue, and a single-part application/dicom body),
and checks every stored file byte for byte against what was sent. Prints one line per check
and a closing 'N passed, N failed' line; exits non-zero on any failure.
"""
import io
import os
import subprocess
import sys
import tempfile

import pydicom
from dicomweb_client.api import DICOMwebClient
from harness import as_sent, check, make_instance, start_server, stop_and_report
from pydicom.uid import ImplicitVRLittleEndian, generate_uid


def encoded(ds):
    """A Part 10 file of `ds`: preamble, DICM, meta group, data set."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def stored_path(root, ds):
    return os.path.join(root, "studies", ds.StudyInstanceUID, "series", ds.SeriesInstanceUID,
                        "instances", ds.SOPInstanceUID + ".dcm")


def same_file(path, data):
    try:
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def main():
    server, base, root = start_server(sys.argv[1], "dws-interop-")
    try:
        url = base + "/dicomweb"
        client = DICOMwebClient(url=url)
        study, series = generate_uid(), generate_uid()

        small = [make_instance(study, series) for _ in range(5)]
        small.append(make_instance(study, series, syntax=ImplicitVRLittleEndian))
        response = client.store_instances(small)
        stored = len(getattr(response, "ReferencedSOPSequence", []))
        check("dicomweb-client stores 6 instances in one request", stored == 6, f"stored {stored}")
        check("dicomweb-client: response names the study",
              getattr(response, "RetrieveURL", "").endswith("/studies/" + study))
        for ds in small:
            check(f"dicomweb-client: {ds.SOPInstanceUID} stored byte for byte",
                  same_file(stored_path(root, ds), as_sent(ds)))

        big = make_instance(study, series, rows=512, frames=8)  # ~4 MiB: sent chunked
        response = client.store_instances([big], study_instance_uid=study)
        check("dicomweb-client stores a chunked 4 MiB instance to /studies/{study}",
              len(getattr(response, "ReferencedSOPSequence", [])) == 1)
        check("dicomweb-client: large instance stored byte for byte",
              same_file(stored_path(root, big), as_sent(big)))

        other = make_instance(generate_uid(), generate_uid())
        try:
            client.store_instances([other], study_instance_uid=study)
            check("dicomweb-client: study mismatch is refused", False, "no error raised")
        except Exception as error:  # dicomweb-client raises on 409
            check("dicomweb-client: study mismatch is refused with 409", "409" in str(error), str(error))

        with tempfile.TemporaryDirectory() as work:
            curl_ds = make_instance(study, series)
            part = os.path.join(work, "one.dcm")
            with open(part, "wb") as f:
                f.write(encoded(curl_ds))
            body = os.path.join(work, "body.mpr")
            with open(body, "wb") as f:
                f.write(b"--XYZ\r\nContent-Type: application/dicom\r\n\r\n")
                f.write(encoded(curl_ds))
                f.write(b"\r\n--XYZ--")
            out = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect: 100-continue",
                 "-H", "Content-Type: multipart/related; type=application/dicom; boundary=XYZ",
                 "--data-binary", "@" + body, url + "/studies"],
                capture_output=True, text=True)
            check("curl multipart with Expect: 100-continue answers 200", out.stdout == "200", out.stdout + out.stderr)
            check("curl multipart: stored byte for byte", same_file(stored_path(root, curl_ds), encoded(curl_ds)))

            single = make_instance(study, series)
            with open(part, "wb") as f:
                f.write(encoded(single))
            out = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/dicom",
                 "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + part, url + "/studies"],
                capture_output=True, text=True)
            check("curl single-part chunked application/dicom answers 200", out.stdout == "200", out.stdout + out.stderr)
            check("curl single-part: stored byte for byte", same_file(stored_path(root, single), encoded(single)))
        leftovers = os.listdir(os.path.join(root, "tmp"))
        check("no temp files left", leftovers == [], str(leftovers))
    finally:
        code = stop_and_report(server)
    return code


if __name__ == "__main__":
    sys.exit(main())
