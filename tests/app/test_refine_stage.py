"""The app's refine stage refines the texts of all of a study's series together (refine_ahead: one batched
assessment of every distinct text), and each series then reads the same refinements it would make alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import read_dicom_folder_once, stage_refine
from monai_imc.deploy.report import RunReport
from monai_imc.deploy.sample import SampleStudy
from monai_imc.deploy.work import series_work


def test_the_studys_texts_are_refined_together_once(
    imc: IMCContext, sample_study: SampleStudy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = read_dicom_folder_once(sample_study.folder, imc.settings.sidecar_name)
    works = [series_work(study, series, datasets) for study, series, datasets in folder.series()]
    refiner = imc.refiner
    together: list[list[str]] = []
    alone: list[str] = []
    refine_many, refine = refiner.refine_many, refiner.refine
    monkeypatch.setattr(refiner, "refine_many", lambda texts: together.append(list(texts)) or refine_many(texts))
    monkeypatch.setattr(refiner, "refine", lambda text: alone.append(text) or refine(text))
    report = RunReport(str(sample_study.folder), str(tmp_path / "report"))
    works = stage_refine(works, imc, sample_study.folder, report, progress=False)
    assert len(together) == 1 and len(together[0]) == len(set(together[0])) >= 5, "one call, distinct texts"
    assert alone == [], "every series read the study's refinements"
    monkeypatch.undo()
    refined = {r.refinement.original: r.refinement for w in works for r in w.refined if r.refinement is not None}
    assert set(refined) == set(together[0])
    for text, refinement in refined.items():  # what refining the text alone gives
        single = refiner.refine(text)
        assert (refinement.text, refinement.edits, refinement.kind) == (single.text, single.edits, single.kind)
    assert any(r.changed for r in refined.values()), "the sample study's noisy texts are repaired"
