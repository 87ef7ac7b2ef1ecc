"""The app graph on the sample study: one valid SR per image series, read back by dciodvfy, dsrdump and
highdicom, saying what the library itself computes on the same images."""

from __future__ import annotations

import json
import subprocess

import highdicom as hd
import pydicom
import pytest
from app_helpers import AppRun
from helpers import require_tool

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.report import REPORT_NAME
from monai_imc.deploy.sample import SampleStudy
from monai_imc.deploy.sr_step import sr_file_name
from monai_imc.deploy.summary import summarize_sr
from monai_imc.dicom import codes
from monai_imc.dicom.views import series_views
from monai_imc.reference.prompts import vqa_prompt


def test_one_sr_per_image_series_joins_the_study(sample_run: AppRun, sample_study: SampleStudy) -> None:
    report = sample_run.report
    assert report.exit_code == 0, report.to_dict()
    assert len(report.of("written")) == len(sample_study.series) and not report.of("failed")
    for series in sample_study.series:
        path = sample_run.output / sr_file_name(series.series_instance_uid)
        assert path.is_file(), series.name
        sr = pydicom.dcmread(path)
        source = pydicom.dcmread(series.path, stop_before_pixels=True)
        assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
        assert sr.StudyInstanceUID == sample_study.study_instance_uid
        assert (sr.PatientID, sr.PatientName, sr.AccessionNumber) == (
            source.PatientID,
            source.PatientName,
            source.AccessionNumber,
        )
        assert sr.VerificationFlag == "UNVERIFIED" and sr.CompletionFlag == "COMPLETE"
        assert sr.SeriesInstanceUID != source.SeriesInstanceUID
        refs = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        assert refs.SeriesInstanceUID == source.SeriesInstanceUID
        assert refs.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    saved = json.loads((sample_run.output / REPORT_NAME).read_text())
    assert saved["exit_code"] == 0 and saved["written"] == len(sample_study.series)
    assert not [p for p in sample_run.output.iterdir() if p.name.endswith(".tmp")]


def test_dciodvfy_finds_no_error_in_any_sr(sample_run: AppRun) -> None:
    dciodvfy = require_tool("dciodvfy", "dicom3tools")
    assert sample_run.report.written
    for path in sample_run.report.written:
        run = subprocess.run([dciodvfy, str(path)], check=False, capture_output=True, text=True, timeout=60)
        lines = (run.stdout + run.stderr).splitlines()
        assert [line for line in lines if line.startswith("Error")] == [], "\n".join(lines)
        assert any("Comprehensive3DSR" in line for line in lines)


def test_dsrdump_and_highdicom_read_every_sr(sample_run: AppRun, sample_study: SampleStudy) -> None:
    dsrdump = require_tool("dsrdump", "dcmtk")
    noisy_question = sample_study.texts["sidecar question 1"][1]
    reason = sample_study.texts["ReasonForTheRequestedProcedure"][1]
    for path in sample_run.report.written:
        run = subprocess.run([dsrdump, "+U8", "+Pl", str(path)], check=False, capture_output=True, timeout=60)
        assert run.returncode == 0, run.stderr.decode("utf-8", "replace")
        dump = run.stdout.decode("utf-8")
        assert "Imaging Measurement Report" in dump and "Verification Flag   : UNVERIFIED" in dump
        assert f'"{noisy_question}"' in dump and f'"{reason}"' in dump  # the text as received is kept
        sr = hd.sr.srread(path)
        assert isinstance(sr, hd.sr.Comprehensive3DSR)
        groups = sr.content.get_image_measurement_groups()
        assert len(groups) == 1
        assert groups[0].get_qualitative_evaluations(name=codes.IMAGE_ARTIFACTS)


@pytest.mark.parametrize("name", ["mr_motion4", "ct", "mr_multiframe", "mr_rician3"])
def test_sr_says_what_the_library_computes(
    name: str, sample_run: AppRun, sample_study: SampleStudy, imc: IMCContext
) -> None:
    """The graph's SR holds the perception and the answers of the library on the same view."""
    series = next(s for s in sample_study.series if s.name == name)
    ds = pydicom.dcmread(series.path)
    view = series_views([ds], n_views=imc.settings.n_views)[0]
    pipeline = imc.pipeline
    summary = summarize_sr(sample_run.output / sr_file_name(series.series_instance_uid))
    (group,) = summary.groups
    assert group.sop_instance_uid == str(ds.SOPInstanceUID)
    assert group.frame_numbers == ([view.frame_number] if view.frame_number else [])
    modality = str(ds.Modality)  # the app passes each series' Modality to the perceiver
    expected = pipeline.answer(
        view.pixels, imc.settings.standing_questions[0], modality=modality, max_new_tokens=imc.settings.max_new_tokens
    )
    perception = expected.perception
    assert group.verdict == perception.verdict
    if perception.assessable:
        assert group.artifact == codes.artifact_code(perception.noise).meaning
        assert group.probability == pytest.approx(perception.confidence, abs=1e-6)
    else:  # the reason is written, no artifact and no probability are claimed
        assert group.artifact == codes.NOT_ASSESSABLE.meaning and group.probability is None
        assert group.reason == perception.reason and group.summary == f"not assessable: {perception.reason}"
    assert group.level == perception.severity
    assert group.calibration_applied == expected.calibration.applied
    if perception.noise is not None and not expected.calibration.applied:  # a found artifact left alone says why
        assert group.calibration_note == expected.calibration.reason
    else:
        assert group.calibration_note is None
    asked = [t for t in group.texts if t.answer is not None]
    assert [t.original for t in asked[: len(imc.settings.standing_questions)]] == list(
        imc.settings.standing_questions
    )
    assert asked[0].answer == expected.answer
    for text in asked:  # every answer is the pipeline's answer to the refined question
        again = pipeline.answer(
            view.pixels, vqa_prompt(text.refined or ""), modality=modality, max_new_tokens=imc.settings.max_new_tokens
        )
        assert text.answer == again.answer, text


def test_every_text_is_kept_as_received(
    sample_run: AppRun, sample_study: SampleStudy, imc: IMCContext
) -> None:
    summary = summarize_sr(sample_run.report.written[0])
    originals = {t.original for g in summary.groups for t in g.texts}
    noisy = {noisy for _, noisy in sample_study.texts.values()}
    assert noisy <= originals
    assert set(imc.settings.standing_questions) <= originals
    for group in summary.groups:
        for text in group.texts:
            assert text.refined is not None  # every text went through SMS
            assert bool(text.edits) == text.refined_changed, text  # every change, and only changes, listed
            for edit in text.edits:  # in words: "'before' -> 'after' (agent)", the before part of the original
                before = edit.split(" -> ")[0][1:-1]
                assert before in (text.original or ""), (edit, text.original)
            if text.role in ("standing question", "sidecar question"):
                assert text.question is not None and text.answer is not None  # "": answered with empty text
            else:
                assert text.answer is None
