"""``--skip-existing``: a rerun keeps the SRs that are current and redoes the rest (``process_folder``, the
app's chain without Holoscan)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import current_sr, process_folder
from monai_imc.deploy.sample import SampleStudy
from monai_imc.deploy.sr_step import sr_file_name
from monai_imc.deploy.work import series_work
from monai_imc.dicom.read import read_dicom_folder
from monai_imc.dicom.sr import AlgorithmInfo


def test_rerun_keeps_current_srs_and_redoes_changed_series(
    imc: IMCContext, sample_study: SampleStudy, tmp_path: Path
) -> None:
    series = {s.name: s for s in sample_study.series}
    study = tmp_path / "in"
    for name in ("ct", "mr"):
        shutil.copytree(series[name].path.parent, study / name)
    out = tmp_path / "out"
    first = process_folder(study, out, imc, progress=False)
    assert len(first.written) == 2 and first.state == "complete"
    made = {p.name: p.stat().st_mtime_ns for p in first.written}

    again = process_folder(study, out, imc, progress=False, skip_existing=True)
    assert not again.written and again.exit_code == 0
    assert {o.name for o in again.of("kept")} == {
        series["ct"].series_instance_uid,
        series["mr"].series_instance_uid,
    }
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("IMC_SR_*.dcm")} == made

    changed = next((study / "mr").iterdir())  # a newer source file: its SR is no longer current
    later = max(made.values()) + 10**9
    os.utime(changed, ns=(later, later))
    third = process_folder(study, out, imc, progress=False, skip_existing=True)
    assert [o.name for o in third.of("written")] == [series["mr"].series_instance_uid]
    assert [o.name for o in third.of("kept")] == [series["ct"].series_instance_uid]

    other = AlgorithmInfo(imc.algorithm.model_id, "sha256:another-bank")
    assert other.bank_hash != imc.algorithm.bank_hash
    ((study_uid, series_uid, datasets),) = read_dicom_folder(study / "ct").series()
    work = series_work(study_uid, series_uid, datasets)
    assert current_sr(work, out, imc.algorithm) == out / sr_file_name(series_uid)
    assert current_sr(work, out, other) is None  # another bank: not current
