"""An SR is encoded in the SR worker process beside the model (``draft_sr``, started as each series is
answered) and saved by the SR stage: the same SR as one encoded in turn, and an SR the standard would refuse
still fails its series alone."""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import pydicom
import pytest

from monai_imc import workers
from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import (
    read_dicom_folder_once,
    sr_series_numbers,
    stage_answer,
    stage_calibrate,
    stage_perceive,
    stage_refine,
    stage_views,
)
from monai_imc.deploy.report import RunReport
from monai_imc.deploy.sample import SampleStudy
from monai_imc.deploy.sr_step import SR_WORKER, draft_sr, write_sr
from monai_imc.deploy.work import SeriesWork, run_step, series_work

# made anew each time an SR is built: the only values two encodings of the same content may differ in
# (creation and content date/time, the contribution's date/time, each group's tracking UID)
MADE_ANEW = {0x00080012, 0x00080013, 0x00080023, 0x00080033, 0x0018A002, 0x0040A124}


@pytest.fixture(scope="module")
def answered(
    imc: IMCContext, sample_study: SampleStudy, tmp_path_factory: pytest.TempPathFactory
) -> list[SeriesWork]:
    """The sample study's first three series, through the app's stages up to the answers."""
    folder = read_dicom_folder_once(sample_study.folder, imc.settings.sidecar_name)
    works = [series_work(study, series, datasets) for study, series, datasets in folder.series()][:3]
    works = stage_views(works, imc, progress=False)
    works = stage_perceive(works, imc, progress=False)
    works = stage_calibrate(works, imc, progress=False)
    report = RunReport(str(sample_study.folder), str(tmp_path_factory.mktemp("report")))
    works = stage_refine(works, imc, sample_study.folder, report, progress=False)
    return stage_answer(works, imc, progress=False)


def _content(path: Path) -> list[str]:
    """The SR, element by element (nested ones too), with the values made anew blanked."""
    ds = pydicom.dcmread(path)

    def blank(dataset: pydicom.Dataset, element: pydicom.DataElement) -> None:
        if element.tag in MADE_ANEW:
            element.value = ""

    ds.walk(blank)
    return str(ds).splitlines()


def test_the_drafted_sr_is_the_sr_encoded_in_turn(
    answered: list[SeriesWork], imc: IMCContext, tmp_path: Path
) -> None:
    assert all(w.active and w.sr_draft is not None for w in answered), "answering starts every series' SR"
    assert workers.beside(SR_WORKER, os.getpid).result(timeout=60) != os.getpid(), "encoded in a process"
    numbers = sr_series_numbers(answered)
    for work in answered:
        drafted = write_sr(work, tmp_path / "drafted", imc.algorithm, numbers[work.series_uid])
        in_turn = write_sr(
            dataclasses.replace(work, sr_draft=None),
            tmp_path / "in_turn",
            imc.algorithm,
            numbers[work.series_uid],
        )
        assert drafted.status == in_turn.status == "written" and drafted.sr_draft is None
        assert drafted.sr_path is not None and in_turn.sr_path is not None
        assert drafted.sr_path.name == in_turn.sr_path.name
        assert _content(drafted.sr_path) == _content(in_turn.sr_path)
        assert pydicom.dcmread(drafted.sr_path).SeriesNumber == numbers[work.series_uid]
    assert not [p for p in (tmp_path / "drafted").iterdir() if p.name.startswith(".")], (
        "no temporary file left"
    )


def test_a_draft_the_standard_refuses_fails_its_series_only(
    answered: list[SeriesWork], imc: IMCContext, tmp_path: Path
) -> None:
    first, *others = answered
    item = first.assessed[0]
    bad_source = copy.deepcopy(item.source)
    bad_source.StudyInstanceUID = "1.2.3"  # another study than the other views': one SR belongs to one study
    broken = dataclasses.replace(
        first,
        assessed=(*first.assessed, dataclasses.replace(item, source=bad_source)),
        sr_draft=None,
    )
    numbers = sr_series_numbers(answered)
    drafted = run_step(
        [broken, *[dataclasses.replace(w, sr_draft=None) for w in others]],
        "draft",
        lambda w: draft_sr(w, imc.algorithm, numbers[w.series_uid]),
        progress=False,
    )
    written = run_step(
        drafted,
        "write SR",
        lambda w: write_sr(w, tmp_path, imc.algorithm, numbers[w.series_uid]),
        progress=False,
    )
    assert written[0].status == "failed" and "span 2 studies" in written[0].reason
    assert "write SR: ValueError" in written[0].reason
    assert [w.status for w in written[1:]] == ["written"] * len(others)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(w.sr_path.name for w in written[1:])
