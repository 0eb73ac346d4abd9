#!/usr/bin/env python3
"""Generates the study the OHIF test browses, as a folder of Part 10 files.

Usage: make_study.py OUT_DIR STUDY_JSON

One study, one CT series of five 256x256 MONOCHROME2 slices in explicit VR little endian,
uncompressed, with a pattern a viewer cannot render as a flat image: a horizontal ramp inside
the display window, a bright ring and a dark checkerboard corner, shifted from slice to slice.
The files go to OUT_DIR/series1/CT0001... (run.sh uploads the folder with `dicomwebserver
stow`, as a user would). What the browser test needs to find the study (UIDs, patient name,
description) is written to STUDY_JSON.
"""
import io
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
N_SLICES = 5
SIZE = 256
PATIENT_NAME = "Ohif^Browse"
PATIENT_ID = "OHIF-E2E"
STUDY_DESCRIPTION = "OHIF end-to-end study"
SERIES_DESCRIPTION = "Ramp, ring and checkerboard"


def pixels(slice_idx):
    """Stored values (Hounsfield units + 1024) for one slice."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    # A ramp from -150 HU to 230 HU: every column a different grey inside the window below.
    hu = -150.0 + 380.0 * x / (SIZE - 1)
    # A bright ring whose radius grows with the slice index.
    radius = np.hypot(x - SIZE / 2, y - SIZE / 2)
    ring_radius = 50 + 10 * slice_idx
    hu = np.where(np.abs(radius - ring_radius) < 6, 1000.0, hu)
    # A dark 8x8-pixel checkerboard in the top-left corner.
    checker = ((x // 8 + y // 8) % 2 == 0) & (x < 64) & (y < 64)
    hu = np.where(checker, -1000.0, hu)
    return np.clip(hu + 1024, 0, 4095).astype(np.uint16)


def make_slice(study_uid, series_uid, frame_of_reference_uid, slice_idx):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "E2E0001"
    ds.StudyDescription = STUDY_DESCRIPTION
    ds.ReferringPhysicianName = ""
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.SeriesDescription = SERIES_DESCRIPTION
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.InstanceNumber = slice_idx + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [-127.5, -127.5, 5.0 * slice_idx]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.SliceThickness = 5
    ds.SliceLocation = 5.0 * slice_idx
    ds.Rows = SIZE
    ds.Columns = SIZE
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.PixelData = pixels(slice_idx).tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def main():
    out_dir, study_json = sys.argv[1], sys.argv[2]
    study_uid, series_uid, frame_of_reference_uid = generate_uid(), generate_uid(), generate_uid()
    instances = [make_slice(study_uid, series_uid, frame_of_reference_uid, slice_idx)
                 for slice_idx in range(N_SLICES)]
    os.makedirs(os.path.join(out_dir, "series1"), exist_ok=True)
    for slice_idx, instance in enumerate(instances):
        with open(os.path.join(out_dir, "series1", f"CT{slice_idx + 1:04}"), "wb") as f:
            f.write(instance)
    with open(study_json, "w") as out:
        json.dump({"studyInstanceUid": study_uid, "seriesInstanceUid": series_uid,
                   "patientName": PATIENT_NAME, "patientId": PATIENT_ID,
                   "studyDescription": STUDY_DESCRIPTION, "nInstances": N_SLICES}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
