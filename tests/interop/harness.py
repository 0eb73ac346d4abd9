"""What the interop scripts share: checks with a closing 'N passed, N failed' line, the
server binary on a free loopback port, test instances, and the bytes dicomweb-client sends for
a dataset."""
import io
import subprocess
import tempfile

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

RESULTS = []


def check(name, condition, detail=""):
    RESULTS.append(bool(condition))
    print(("ok   " if condition else "FAIL ") + name + (f": {detail}" if detail and not condition else ""))


def make_instance(study, series, rows=64, frames=1, syntax=ExplicitVRLittleEndian, number=1,
                  modality="OT", patient=None):
    """A MONOCHROME2 16-bit Secondary Capture instance with pixels that depend on `number`.
    `patient` (name, id, date, institution) adds study-level attributes in UTF-8."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    if patient is None:
        patient = {"name": "Interop^Test", "id": "INTEROP"}
    else:
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.StudyDate = patient["date"]
        ds.InstitutionName = patient["institution"]
    ds.Modality = modality
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientName = patient["name"]
    ds.PatientID = patient["id"]
    ds.SeriesNumber = 1 if modality == "CT" else 2
    ds.InstanceNumber = number
    ds.Rows = rows
    ds.Columns = rows
    ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    start = number * 1000
    pixels = (np.arange(rows * rows * frames, dtype=np.uint32) * 257 + start) % 65521
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    return ds


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
