"""The IMC SR, written for real CT, MR and CR sources and read back by dciodvfy, dsrdump and highdicom."""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from helpers import dicom_path, require_tool

from monai_imc.dicom import codes
from monai_imc.dicom import sr_file as sr_module
from monai_imc.dicom.sr import AlgorithmInfo, ImageAssessment, TextRecord, build_imc_sr
from monai_imc.dicom.sr_file import write_imc_sr
from monai_imc.dicom.sr_text import EMPTY_ANSWER
from monai_imc.noise import list_noises

ALGORITHM = AlgorithmInfo(model_id="tiny-llava-med", bank_hash="sha256:0f3a9c")


@dataclass(frozen=True)
class Case:
    """One source image and what the SR should say about it."""

    source: str
    artifact: str | None
    severity: int | None
    probability: float | None
    frame_number: int | None = None
    not_assessable: str | None = None
    restoration: str | None = None  # what monai_imc.restore did (None: restoration was off)
    calibration_note: str | None = None  # why a found artifact was not calibrated

    @property
    def calibrated(self) -> bool:
        return self.artifact is not None and self.calibration_note is None

    def finding(self) -> codes.Code:
        return codes.NOT_ASSESSABLE if self.not_assessable else codes.artifact_code(self.artifact)


CASES = {
    "CT": Case(
        "CT_small.dcm",
        "low_dose",
        4,
        0.87,
        restoration="non-local means (h=0.0312, sigma=0.0312, patch_size=5)",
    ),
    "MR": Case(
        "emri_small.dcm", "ghosting", 2, 0.64, frame_number=6, restoration="none: no restoration for ghosting",
        calibration_note="level 2 is below the level PDC calibrates from (3)",
    ),
    "CR": Case("RG1_UNCI.dcm", None, None, 0.93),
    # says Patient Identity Removed YES without a De-identification Method: the SR must still be valid
    "CT-deidentified": Case("693_UNCR.dcm", "low_dose", 4, 0.87),
    "US": Case(
        "US1_UNCI.dcm", None, None, None, not_assessable="degenerate image: constant image (no contrast)"
    ),
}
SUMMARIES = {
    "CT": "low_dose artifact (Quantum noise (low dose) artifact), severity 4 of 5 (Severe), probability 0.87",
    "MR": "ghosting artifact (Ghost), severity 2 of 5 (Mild), probability 0.64",
    "CR": "no artifact detected (probability 0.93)",
    "CT-deidentified": "low_dose artifact (Quantum noise (low dose) artifact), severity 4 of 5 (Severe), probability 0.87",
    "US": "not assessable: degenerate image: constant image (no contrast)",
}

TEXTS = (
    TextRecord(
        role="ReasonForTheRequestedProcedure",
        original="r/o pnemothorax, pt c/o SOB",
        refined="Rule out pneumothorax; patient complains of shortness of breath.",
        question="Is there a pneumothorax?",
        answer="No pneumothorax is seen. Draft, unverified.",
        edits=(
            "'pnemothorax' -> 'pneumothorax' (specialist:spelling)",
            "'pt' -> 'patient' (specialist:terminology)",
        ),
    ),
    # text from DICOM fields is data: markup and control-looking content is stored verbatim
    TextRecord(role="question", original="Ist die Lunge frei? <b>é</b> 肺", question="Is the lung clear?"),
    # a question the model answered with empty text: the SR says so, the summary reads back ""
    TextRecord(role="question", original="Which organ?", refined="Which organ?", question="Which organ?", answer=""),
)


def _sources(case: Case) -> pydicom.Dataset:
    return pydicom.dcmread(dicom_path(case.source))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, pydicom.Dataset]]:
    """One SR per source modality, written once for the module."""
    out = tmp_path_factory.mktemp("sr")
    result = {}
    for name, case in CASES.items():
        source = _sources(case)
        assessment = ImageAssessment(
            source,
            artifact=case.artifact,
            severity=case.severity,
            probability=case.probability,
            calibration_applied=case.calibrated,
            frame_number=case.frame_number,
            not_assessable=case.not_assessable,
            restoration=case.restoration,
            calibration_note=case.calibration_note,
        )
        path = write_imc_sr(out / f"imc_{name}.dcm", [assessment], TEXTS, ALGORITHM)
        result[name] = (path, source)
    return result


@pytest.mark.parametrize("name", list(CASES))
def test_sr_joins_the_source_study(name: str, written: dict[str, tuple[Path, pydicom.Dataset]]) -> None:
    path, source = written[name]
    sr = pydicom.dcmread(path)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.Modality == "SR"
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.PatientID == source.PatientID and sr.PatientName == source.PatientName
    assert sr.SeriesInstanceUID != source.SeriesInstanceUID
    assert sr.SOPInstanceUID != source.SOPInstanceUID
    assert sr.VerificationFlag == "UNVERIFIED" and sr.CompletionFlag == "COMPLETE"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == source.StudyInstanceUID
    assert evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
        source.SOPInstanceUID
    )
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []  # nothing half-written


@pytest.mark.parametrize("name", list(CASES))
def test_dciodvfy_reports_no_errors(name: str, written: dict[str, tuple[Path, pydicom.Dataset]]) -> None:
    dciodvfy = require_tool("dciodvfy", "dicom3tools")
    path, _ = written[name]
    run = subprocess.run([dciodvfy, str(path)], check=False, capture_output=True, text=True, timeout=60)
    lines = (run.stdout + run.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == [], "\n".join(lines)
    assert any("Comprehensive3DSR" in line for line in lines), "\n".join(lines)


@pytest.mark.parametrize("name", list(CASES))
def test_dsrdump_shows_texts_and_codes(name: str, written: dict[str, tuple[Path, pydicom.Dataset]]) -> None:
    dsrdump = require_tool("dsrdump", "dcmtk")
    path, _ = written[name]
    run = subprocess.run([dsrdump, "+U8", "+Pl", str(path)], check=False, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode("utf-8", "replace")
    dump = run.stdout.decode("utf-8")
    case = CASES[name]
    assert case.finding().meaning in dump
    assert f'"{SUMMARIES[name]}"' in dump
    if case.not_assessable:
        assert "Probability" not in dump and f'"{case.not_assessable}"' in dump
    if case.restoration:
        assert f'"Image restoration")="{case.restoration}"' in dump
    else:
        assert "Image restoration" not in dump
    if case.calibration_note:
        assert f'"Reason calibration not applied")="{case.calibration_note}"' in dump
    else:
        assert "Reason calibration not applied" not in dump
    assert "Verification Flag   : UNVERIFIED" in dump
    for record in TEXTS:
        for value in (record.original, record.refined, *record.edits, record.question, record.answer):
            if value:
                assert f'"{value}"' in dump, value
    assert f'"{EMPTY_ANSWER}"' in dump
    if case.severity is not None:
        assert codes.severity_code(case.severity).meaning in dump


def _records(group: hd.sr.MeasurementsAndQualitativeEvaluations) -> list[list[tuple[str, str]]]:
    """Each text record's container: its (code, text) items, in order."""
    return [
        [(t.ConceptNameCodeSequence[0].CodeValue, t.TextValue) for t in item.ContentSequence]
        for item in group[0].ContentSequence
        if item.ValueType == "CONTAINER"
        and item.ConceptNameCodeSequence[0].CodeValue == codes.TEXT_RECORD.value
    ]


def _text_items(group: hd.sr.MeasurementsAndQualitativeEvaluations) -> list[tuple[str, str]]:
    return [pair for record in _records(group) for pair in record]


def _group_texts(group: hd.sr.MeasurementsAndQualitativeEvaluations) -> dict[str, str]:
    return {
        item.ConceptNameCodeSequence[0].CodeValue: item.TextValue
        for item in group[0].ContentSequence
        if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodingSchemeDesignator == "99IMC"
    }


@pytest.mark.parametrize("name", list(CASES))
def test_highdicom_round_trip(name: str, written: dict[str, tuple[Path, pydicom.Dataset]]) -> None:
    path, source = written[name]
    case = CASES[name]
    sr = hd.sr.srread(path)
    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    assert isinstance(sr.content, hd.sr.MeasurementReport)
    (group,) = sr.content.get_image_measurement_groups()
    evaluations = {e.name.value: e.value for e in group.get_qualitative_evaluations()}
    assert evaluations[codes.IMAGE_ARTIFACTS.value] == case.finding()
    assert evaluations[codes.CALIBRATION_APPLIED.value] == (codes.YES if case.calibrated else codes.NO)
    measurements = {m.name.value: m for m in group.get_measurements()}
    plain = _group_texts(group)
    assert plain[codes.ASSESSMENT_SUMMARY.value] == SUMMARIES[name]
    assert plain.get(codes.RESTORATION.value) == case.restoration
    assert plain.get(codes.CALIBRATION_NOTE.value) == case.calibration_note
    if case.not_assessable:
        assert codes.PROBABILITY.value not in measurements
        assert plain[codes.NOT_ASSESSABLE_REASON.value] == case.not_assessable
    else:
        assert codes.NOT_ASSESSABLE_REASON.value not in plain
        assert measurements[codes.PROBABILITY.value].value == pytest.approx(case.probability)
        assert measurements[codes.PROBABILITY.value].unit == codes.PROBABILITY_UNIT
    if case.severity is None:
        assert codes.SEVERITY.value not in evaluations and codes.SEVERITY_LEVEL.value not in measurements
    else:
        assert evaluations[codes.SEVERITY.value] == codes.severity_code(case.severity)
        assert measurements[codes.SEVERITY_LEVEL.value].value == case.severity
    (image,) = group.source_images
    assert image.referenced_sop_instance_uid == source.SOPInstanceUID
    assert image.referenced_sop_class_uid == source.SOPClassUID
    expected_frames = None if case.frame_number is None else [case.frame_number]
    assert (image.referenced_frame_numbers or None) == expected_frames
    assert str(group.tracking_identifier) == "IMC image 1"
    # the texts, each record in its own container (question beside its answer), original always present,
    # verbatim (UTF-8)
    first, second, empty = TEXTS
    assert _records(group) == [
        [
            ("IMC020", first.role),
            ("IMC021", first.original),
            ("IMC022", first.refined),
            ("IMC026", first.edits[0]),  # every edit, in order, after the refined text
            ("IMC026", first.edits[1]),
            ("IMC023", first.question),
            ("IMC024", first.answer),
        ],
        [("IMC020", second.role), ("IMC021", second.original), ("IMC023", second.question)],  # none blank
        [("IMC020", empty.role), ("IMC021", empty.original), ("IMC022", empty.refined), ("IMC023", empty.question),
         ("IMC024", EMPTY_ANSWER)],  # answered with empty text: said so, not left out
    ]
    # TID 4019: model id, bank hash, monai-imc version
    params = [
        item.TextValue
        for item in group[0].ContentSequence
        if item.ConceptNameCodeSequence[0].CodeMeaning == "Algorithm Parameters"
    ]
    assert params == [
        "model=tiny-llava-med",
        "prototype_bank=sha256:0f3a9c",
        f"monai_imc={ALGORITHM.version}",
    ]


def test_two_images_two_groups_and_bound_texts(tmp_path: Path) -> None:
    ct = pydicom.dcmread(dicom_path("CT_small.dcm"))
    head = pydicom.dcmread(dicom_path("CT_small.dcm"))
    head.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["second image"])
    texts = [
        TextRecord("question", original="study level"),
        TextRecord("question", original="only the second", sop_instance_uid=head.SOPInstanceUID),
    ]
    path = write_imc_sr(
        tmp_path / "two.dcm",
        [ImageAssessment(ct, "motion", 1, 0.5), ImageAssessment(head, None, None, 0.8)],
        texts,
        ALGORITHM,
        series_number=901,
    )
    sr = hd.sr.srread(path)
    first, second = sr.content.get_image_measurement_groups()
    assert [v for _, v in _text_items(first)] == ["question", "study level"]
    assert [v for _, v in _text_items(second)] == ["question", "study level", "question", "only the second"]
    assert sr.SeriesNumber == 901
    assert (
        len(sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence)
        == 2
    )


def test_sr_uids_follow_the_source_series_and_the_algorithm() -> None:
    """A rerun replaces the SR (same UIDs); another series, version or bank gives another SR."""
    ct, mr = pydicom.dcmread(dicom_path("CT_small.dcm")), pydicom.dcmread(dicom_path("MR_small.dcm"))
    a = build_imc_sr([ImageAssessment(ct, None, None, 0.9)], [], ALGORITHM)
    b = build_imc_sr([ImageAssessment(ct, "motion", 2, 0.7)], [], ALGORITHM)
    assert (a.SeriesInstanceUID, a.SOPInstanceUID) == (b.SeriesInstanceUID, b.SOPInstanceUID)
    assert a.SeriesInstanceUID != a.SOPInstanceUID
    others = [
        build_imc_sr([ImageAssessment(mr, None, None, 0.9)], [], ALGORITHM),
        build_imc_sr([ImageAssessment(ct, None, None, 0.9)], [], replace(ALGORITHM, version="9.9")),
        build_imc_sr([ImageAssessment(ct, None, None, 0.9)], [], replace(ALGORITHM, bank_hash="sha256:00")),
    ]
    uids = {a.SOPInstanceUID} | {o.SOPInstanceUID for o in others}
    assert len(uids) == 4 and len({a.SeriesInstanceUID} | {o.SeriesInstanceUID for o in others}) == 4


def test_invalid_input_is_refused(tmp_path: Path) -> None:
    ct, mr = pydicom.dcmread(dicom_path("CT_small.dcm")), pydicom.dcmread(dicom_path("MR_small.dcm"))
    with pytest.raises(ValueError, match="no image assessment"):
        build_imc_sr([], [], ALGORITHM)
    with pytest.raises(ValueError, match="2 studies"):
        build_imc_sr(
            [ImageAssessment(ct, None, None, 0.9), ImageAssessment(mr, None, None, 0.9)], [], ALGORITHM
        )
    with pytest.raises(ValueError, match="no artifact code"):
        ImageAssessment(ct, "lens_flare", 2, 0.5)
    with pytest.raises(ValueError, match="needs a severity"):
        ImageAssessment(ct, "motion", None, 0.5)
    with pytest.raises(ValueError, match="clean image has no severity"):
        ImageAssessment(ct, None, 3, 0.5)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        ImageAssessment(ct, None, None, 1.5)
    with pytest.raises(ValueError, match="needs a probability"):
        ImageAssessment(ct, None, None, None)
    with pytest.raises(ValueError, match="claims no artifact"):
        ImageAssessment(ct, "motion", 3, None, not_assessable="constant image")
    with pytest.raises(ValueError, match="needs its reason"):
        ImageAssessment(ct, None, None, None, not_assessable=" ")
    for clean_or_calibrated in (ImageAssessment(ct, None, None, 0.9), ImageAssessment(ct, "motion", 3, 0.9, True)):
        with pytest.raises(ValueError, match="says why a found artifact was not calibrated"):
            replace(clean_or_calibrated, calibration_note="disabled")
    with pytest.raises(TypeError, match="TextRecord.edits must be a str"):
        TextRecord("q", "x", edits=(3,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not among the assessed images"):
        build_imc_sr(
            [ImageAssessment(ct, None, None, 0.9)],
            [TextRecord("q", "x", sop_instance_uid="1.2.3")],
            ALGORITHM,
        )
    target = tmp_path / "refused.dcm"
    with pytest.raises(ValueError):
        write_imc_sr(target, [], [], ALGORITHM)
    assert list(tmp_path.iterdir()) == []


def test_every_image_noise_has_a_code() -> None:
    for name in list_noises("image"):
        code = codes.artifact_code(name)
        assert code.meaning and code.scheme_designator in ("DCM", "SCT", "RADLEX", codes.IMC_SCHEME)
    assert {codes.severity_code(level).meaning for level in range(1, 6)} == {"Mild", "Moderate", "Severe"}
    with pytest.raises(ValueError):
        codes.severity_code(0)


def test_latin1_source_and_utf8_texts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = pydicom.dcmread(dicom_path("CT_small.dcm"))
    source.SpecificCharacterSet = "ISO_IR 100"
    source.PatientName = "Müller^Hans"
    source.save_as(tmp_path / "latin1.dcm")
    latin1 = pydicom.dcmread(tmp_path / "latin1.dcm")
    with caplog.at_level("DEBUG", logger="monai_imc"):
        path = write_imc_sr(
            tmp_path / "sr.dcm",
            [ImageAssessment(latin1, None, None, 0.9)],
            [TextRecord("q", "Größe? 大小")],
            ALGORITHM,
        )
    sr = pydicom.dcmread(path)
    assert sr.SpecificCharacterSet == "ISO_IR 192"
    assert str(sr.PatientName) == "Müller^Hans"
    (group,) = hd.sr.srread(path).content.get_image_measurement_groups()
    assert ("IMC021", "Größe? 大小") in _text_items(group)
    assert "Müller" not in caplog.text and str(source.PatientID) not in caplog.text
    assert sr.SOPInstanceUID in caplog.text


@pytest.mark.parametrize("name", list(CASES))
def test_summary_reads_back_what_was_written(
    name: str, written: dict[str, tuple[Path, pydicom.Dataset]]
) -> None:
    from monai_imc.deploy.summary import summarize_sr

    path, source = written[name]
    case = CASES[name]
    summary = summarize_sr(path)
    assert summary.source_series_uids == [str(source.SeriesInstanceUID)]
    assert summary.algorithm == f"monai-imc IMC ({ALGORITHM.model_id})"
    (group,) = summary.groups
    assert group.sop_instance_uid == str(source.SOPInstanceUID)
    assert group.summary == SUMMARIES[name]
    assert group.artifact == case.finding().meaning
    expected_verdict = "not assessable" if case.not_assessable else ("artifact" if case.artifact else "clean")
    assert group.verdict == expected_verdict and group.reason == case.not_assessable
    assert group.probability == (None if case.probability is None else pytest.approx(case.probability))
    assert group.level == case.severity and group.calibration_applied == case.calibrated
    assert group.restoration == case.restoration and group.calibration_note == case.calibration_note
    # each question sits with its own answer, whatever the order of the records
    assert [(t.role, t.original, t.question, t.answer) for t in group.texts] == [
        (r.role, r.original, r.question, r.answer) for r in TEXTS
    ]


def test_source_series_names_the_series_from_the_input_headers(tmp_path: Path) -> None:
    from monai_imc.deploy.summary import source_series

    ct = pydicom.dcmread(dicom_path("CT_small.dcm"))
    ct.SeriesNumber, ct.SeriesDescription = 7, "chest, low dose"
    (tmp_path / "study" / "ct").mkdir(parents=True)
    ct.save_as(tmp_path / "study" / "ct" / "1.dcm")
    (tmp_path / "study" / "notes.txt").write_text("not DICOM")
    found = source_series(tmp_path / "study")
    info = found[str(ct.SeriesInstanceUID)]
    assert (info.series_number, info.description, info.modality, info.folder) == (
        "7",
        "chest, low dose",
        "CT",
        "ct",
    )
    assert str(info) == "series 7 'chest, low dose' (CT, ct)"


def test_warm_up_builds_srs_in_memory_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = []
    real = sr_module.encode_imc_sr

    def spy(*args, **kwargs):  # the real encoder: its SR must be valid, not merely built
        result = real(*args, **kwargs)
        built.append(result)
        return result

    monkeypatch.setattr(sr_module, "encode_imc_sr", spy)
    monkeypatch.chdir(tmp_path)
    sr_module.warm_up_sr_writer()  # load_context runs it in the SR worker and logs errors: here none may occur
    assert len(built) == 2 and list(tmp_path.iterdir()) == []
    srs = [pydicom.dcmread(io.BytesIO(e.data)) for e in built]
    assert all(s.Modality == "SR" and s.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage for s in srs)


def test_run_summary_says_what_restoration_did(
    written: dict[str, tuple[Path, pydicom.Dataset]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed summary names a correction that changed the image, and stays quiet about "none: ..."."""
    from monai_imc.cli import print_run_summary
    from monai_imc.deploy.report import Outcome, RunReport

    report = RunReport(str(tmp_path / "in"), str(tmp_path))
    for name, (path, _source) in written.items():
        report.add(Outcome("written", "series", name, sr_path=str(path)))
    print_run_summary(report)
    printed = capsys.readouterr().out
    for case in CASES.values():
        if case.restoration and not case.restoration.startswith("none"):
            assert f"; restored: {case.restoration};" in printed
    assert "restored: none" not in printed
    assert sum(bool(c.restoration and not c.restoration.startswith("none")) for c in CASES.values()) >= 1

