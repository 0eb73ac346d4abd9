#!/usr/bin/env python3
"""Interoperability: the Python dicomweb-client package searching (QIDO-RS) and retrieving
(WADO-RS) against the real server binary.

Usage: query_clients.py PATH/TO/dicomwebserver

Starts the binary on a free loopback port with a temporary storage root, stores pydicom
instances with dicomweb-client (two studies; in one, a series of two single-frame instances,
one of them implicit VR, and a series with one multi-frame instance), then searches at every
level with filters and fields, retrieves instances, series metadata, frames and the pixel
data's BulkDataURI, and compares what comes back with what was stored. Prints one line per
check and a closing 'N passed, N failed' line; exits non-zero on any failure.
"""
import sys

import numpy as np
from dicomweb_client.api import DICOMwebClient
from harness import as_sent, check, make_instance, start_server, stop_and_report
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

def single_part(response):
    """The payload of a one-part multipart/related response, exactly."""
    response.raise_for_status()
    boundary = response.headers["Content-Type"].split("boundary=")[1].split(";")[0].strip('"')
    delimiter = b"--" + boundary.encode()
    part = response.content.split(delimiter)[1]
    return part[part.index(b"\r\n\r\n") + 4:-2]


def attempt(name, call):
    """Runs `call`; a raised error is a failed check (and None)."""
    try:
        return call()
    except Exception as error:  # the client raises on HTTP errors
        check(name, False, f"{type(error).__name__}: {error}")
        return None


def first(result, tag):
    values = result.get(tag, {}).get("Value", [])
    return values[0] if values else None


def main():
    server, base, root = start_server(sys.argv[1], "dws-query-interop-")
    try:
        client = DICOMwebClient(url=base + "/dicomweb")

        muller = {"name": "Müller^José", "id": "QC-1", "date": "20240102", "institution": "Interop Clinic"}
        other = {"name": "Other^Patient", "id": "QC-2", "date": "20190707", "institution": "Elsewhere"}
        study, ct_series, mr_series = generate_uid(), generate_uid(), generate_uid()
        ct = [make_instance(study, ct_series, rows=8, number=2, modality="CT", patient=muller),
              make_instance(study, ct_series, rows=8, number=1, modality="CT", patient=muller,
                            syntax=ImplicitVRLittleEndian)]
        multi = make_instance(study, mr_series, rows=16, frames=4, modality="MR", patient=muller)
        lone = make_instance(generate_uid(), generate_uid(), rows=8, modality="CT", patient=other)
        response = client.store_instances(ct + [multi])
        check("dicomweb-client stores 3 instances of one study",
              len(getattr(response, "ReferencedSOPSequence", [])) == 3)
        client.store_instances([lone])

        studies = attempt("search_for_studies", client.search_for_studies) or []
        uids = sorted(first(s, "0020000D") for s in studies)
        check("search_for_studies finds both studies", uids == sorted([study, lone.StudyInstanceUID]), uids)

        found = attempt("search_for_studies with filters and fields", lambda: client.search_for_studies(
            search_filters={"PatientID": "QC-1"}, fields=["InstitutionName"])) or [{}]
        check("search_for_studies by PatientID finds one study",
              len(found) == 1 and first(found[0], "0020000D") == study, found)
        check("  with NumberOfStudyRelatedInstances 3", first(found[0], "00201208") == 3, found[0].get("00201208"))
        check("  with NumberOfStudyRelatedSeries 2", first(found[0], "00201206") == 2, found[0].get("00201206"))
        check("  with ModalitiesInStudy CT, MR",
              found[0].get("00080061", {}).get("Value") == ["CT", "MR"], found[0].get("00080061"))
        check("  with the included InstitutionName", first(found[0], "00080080") == "Interop Clinic",
              found[0].get("00080080"))
        check("  with the accented PatientName",
              first(found[0], "00100010") == {"Alphabetic": "Müller^José"}, found[0].get("00100010"))

        fuzzy = attempt("search_for_studies fuzzy", lambda: client.search_for_studies(
            fuzzymatching=True, search_filters={"PatientName": "muller"})) or []
        check("fuzzymatching finds 'muller' in Müller^José", [first(s, "0020000D") for s in fuzzy] == [study], fuzzy)
        strict = attempt("search_for_studies strict", lambda: client.search_for_studies(
            search_filters={"PatientName": "muller"}))
        check("without fuzzymatching 'muller' matches nothing", strict == [], strict)
        ranged = attempt("search_for_studies date range", lambda: client.search_for_studies(
            search_filters={"StudyDate": "20200101-"})) or []
        check("StudyDate range 20200101- finds one study", [first(s, "0020000D") for s in ranged] == [study])

        series = attempt("search_for_series", lambda: client.search_for_series(study_instance_uid=study)) or []
        check("search_for_series in the study finds 2 series in SeriesNumber order",
              [first(s, "0020000E") for s in series] == [ct_series, mr_series], series)
        mr = attempt("search_for_series by Modality", lambda: client.search_for_series(
            search_filters={"Modality": "MR"}, fields=["InstitutionName"])) or [{}]
        check("search_for_series Modality=MR finds the multi-frame series",
              [first(s, "0020000E") for s in mr] == [mr_series], mr)
        check("  with NumberOfSeriesRelatedInstances 1", first(mr[0], "00201209") == 1)

        instances = attempt("search_for_instances", lambda: client.search_for_instances(
            study_instance_uid=study, series_instance_uid=ct_series)) or []
        check("search_for_instances in a series is ordered by InstanceNumber",
              [first(i, "00080018") for i in instances] == [ct[1].SOPInstanceUID, ct[0].SOPInstanceUID], instances)
        expected_url = f"{base}/dicomweb/studies/{study}/series/{ct_series}/instances/{ct[1].SOPInstanceUID}"
        check("  with RetrieveURL", instances and first(instances[0], "00081190") == expected_url,
              instances and instances[0].get("00081190"))
        frames = attempt("search_for_instances with filters", lambda: client.search_for_instances(
            search_filters={"SOPInstanceUID": multi.SOPInstanceUID}, fields=["InstitutionName"])) or [{}]
        check("search_for_instances by SOPInstanceUID gives NumberOfFrames 4",
              len(frames) == 1 and first(frames[0], "00280008") == 4, frames)

        for ds in ct + [multi]:
            got = attempt(f"retrieve_instance {ds.SOPInstanceUID} (transfer-syntax=*) reads as PS3.10",
                          lambda: client.retrieve_instance(study, ds.SeriesInstanceUID, ds.SOPInstanceUID))
            if got is None:
                continue
            check(f"retrieve_instance {ds.SOPInstanceUID}: UIDs as stored",
                  (got.SOPInstanceUID, got.SeriesInstanceUID, got.StudyInstanceUID)
                  == (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID))
            check("  pixel data as stored", bytes(got.PixelData) == bytes(ds.PixelData))
            check("  patient name as stored", str(got.PatientName) == "Müller^José", str(got.PatientName))
            url = f"{base}/dicomweb/studies/{study}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
            raw = attempt("  raw retrieve with transfer-syntax=*", lambda: single_part(client._session.get(
                url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})))
            # Stored as sent; served with the preamble and DICM the client left out.
            check("  retrieved bytes identical to those sent (after the added preamble)",
                  raw == b"\0" * 128 + b"DICM" + as_sent(ds))

        metadata = attempt("retrieve_series_metadata", lambda: client.retrieve_series_metadata(study, mr_series)) or [{}]
        check("retrieve_series_metadata gives one instance", len(metadata) == 1, len(metadata))
        check("  with NumberOfFrames 4", first(metadata[0], "00280008") == 4, metadata[0].get("00280008"))
        check("  with Rows 16", first(metadata[0], "00280010") == 16, metadata[0].get("00280010"))
        uri = metadata[0].get("7FE00010", {}).get("BulkDataURI", "")
        check("  pixel data as an absolute BulkDataURI",
              uri == f"{base}/dicomweb/studies/{study}/series/{mr_series}/instances/{multi.SOPInstanceUID}/bulk/7FE00010",
              uri)

        frame_bytes = 16 * 16 * 2
        pixels = bytes(multi.PixelData)
        got = attempt("retrieve_instance_frames", lambda: client.retrieve_instance_frames(
            study, mr_series, multi.SOPInstanceUID, frame_numbers=[2, 4])) or []
        check("retrieve_instance_frames [2, 4] gives 2 frames", len(got) == 2, len(got))
        check("  frame bytes as stored, in request order",
              list(got) == [pixels[frame_bytes:2 * frame_bytes], pixels[3 * frame_bytes:]])

        if uri:
            bulk = attempt("retrieve_bulkdata", lambda: client.retrieve_bulkdata(uri)) or []
            check("retrieve_bulkdata of the pixel data gives the stored bytes",
                  len(bulk) == 1 and bytes(bulk[0]) == pixels, [len(b) for b in bulk])
    finally:
        code = stop_and_report(server)
    return code


if __name__ == "__main__":
    sys.exit(main())
