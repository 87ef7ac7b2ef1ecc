"""The app's stages over the series of a run, and the whole chain without Holoscan.

Each ``stage_*`` function is what one MONAI Deploy operator does in ``compute`` (the operators stay thin);
:func:`process_folder` runs them in order on a folder read by :func:`~monai_imc.dicom.read.read_dicom_folder`
instead of the SDK's loader, for tests and notebooks.

Usage::

    from monai_imc.deploy.context import load_context
    from monai_imc.deploy.process import process_folder

    report = process_folder("study/", "out/", load_context("bundles/monai_imc_vqa"))
    report.exit_code, report.written
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping, Sequence
from pathlib import Path

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.report import Outcome, RunReport
from monai_imc.deploy.stow import StowResult, public_url, stow_files
from monai_imc.deploy.texts import Sidecar, load_sidecars
from monai_imc.deploy.work import (
    SeriesWork,
    answer,
    calibrate,
    make_views,
    perceive,
    refine_texts,
    run_step,
    series_work,
    write_sr,
)
from monai_imc.dicom.read import read_dicom_folder
from monai_imc.refine import Refinement

__all__ = [
    "SR_SERIES_NUMBER",
    "process_folder",
    "record_outcomes",
    "stage_answer",
    "stage_calibrate",
    "stage_perceive",
    "stage_refine",
    "stage_stow",
    "stage_views",
    "stage_write",
]

logger = logging.getLogger(__name__)

SR_SERIES_NUMBER = 900
"""SeriesNumber of the first SR series; the next ones count up."""


def stage_views(works: Sequence[SeriesWork], context: IMCContext, progress: bool = True) -> list[SeriesWork]:
    """SeriesToViews: key 2D views of every series (non-image series skipped, broken ones failed)."""
    settings = context.settings
    return run_step(works, "views", lambda w: make_views(w, settings.n_views, settings.ct_preset), progress)


def stage_perceive(
    works: Sequence[SeriesWork], context: IMCContext, progress: bool = True
) -> list[SeriesWork]:
    """ArtifactPerceiver: one vision pass per view, and the perceiver's verdict."""
    return run_step(works, "perceive", lambda w: perceive(w, context.pipeline), progress)


def stage_calibrate(
    works: Sequence[SeriesWork], context: IMCContext, progress: bool = True
) -> list[SeriesWork]:
    """PDCCalibrator: calibrated features of flagged views."""
    return run_step(works, "calibrate", lambda w: calibrate(w, context.pipeline), progress)


def stage_refine(
    works: Sequence[SeriesWork],
    context: IMCContext,
    input_folder: str | os.PathLike[str] | None,
    report: RunReport | None = None,
    progress: bool = True,
    cache: MutableMapping[str, Refinement] | None = None,
) -> list[SeriesWork]:
    """SMSReportRefiner: collect each series' texts (standing, DICOM fields, sidecars) and refine them.

    Sidecars that cannot be read are failures of the run (in ``report``); the series go on without them.
    """
    settings = context.settings
    sidecars: list[Sidecar] = []
    if input_folder is not None:
        sidecars, problems = load_sidecars(input_folder, settings.sidecar_name)
        for path, reason in problems:
            if report is not None:
                report.add(Outcome("failed", "file", str(path), reason))
    cache = {} if cache is None else cache
    return run_step(
        works,
        "refine",
        lambda w: refine_texts(
            w, context.refiner, settings.standing_questions, settings.text_fields, sidecars, cache
        ),
        progress,
    )


def stage_answer(works: Sequence[SeriesWork], context: IMCContext, progress: bool = True) -> list[SeriesWork]:
    """VLMReport: answer every asked text about every view from the calibrated features."""
    return run_step(
        works, "answer", lambda w: answer(w, context.pipeline, context.settings.max_new_tokens), progress
    )


def stage_write(
    works: Sequence[SeriesWork],
    context: IMCContext,
    output_folder: str | os.PathLike[str],
    report: RunReport,
    progress: bool = True,
) -> list[SeriesWork]:
    """IMCStructuredReportWriter: one SR per assessed series, then every outcome into ``report``, which is
    saved in the output folder."""
    numbers = {w.series_uid: SR_SERIES_NUMBER + i for i, w in enumerate(works)}
    done = run_step(
        works,
        "write SR",
        lambda w: write_sr(w, output_folder, context.algorithm, numbers[w.series_uid]),
        progress,
    )
    record_outcomes(done, report)
    path = report.save(output_folder)
    logger.info(
        "run report %s: %d written, %d skipped, %d failed",
        path,
        len(report.of("written")),
        len(report.of("skipped")),
        len(report.of("failed")),
    )
    return done


def stage_stow(paths: Sequence[str | os.PathLike[str]], url: str, report: RunReport) -> list[StowResult]:
    """STOW-RS: send the written SRs to a DICOMweb server; a file it did not store is a failure of the run.
    The report is saved again with these outcomes."""
    results = stow_files(url, paths) if paths else []
    for result in results:
        if result.stored:
            report.add(Outcome("stored", "stow", str(result.path), f"stored on {public_url(url)}"))
        else:
            report.add(Outcome("failed", "stow", str(result.path), result.reason))
    if results:
        logger.info(
            "STOW-RS to %s: %d of %d SR(s) stored",
            public_url(url),
            sum(r.stored for r in results),
            len(results),
        )
    report.save()
    return results


def record_outcomes(works: Sequence[SeriesWork], report: RunReport) -> None:
    """Add each series' outcome and its left-out files to ``report``; an input with no image series at
    all is a failure."""
    for work in works:
        for path, reason in work.file_problems:
            report.add(Outcome("failed", "file", path, reason, modality=work.modality))
        if work.status == "written":
            report.add(Outcome("written", "series", work.series_uid, "", str(work.sr_path), work.modality))
        elif work.status in ("failed", "skipped"):
            report.add(Outcome(work.status, "series", work.series_uid, work.reason, modality=work.modality))
        else:
            report.add(
                Outcome(
                    "failed", "series", work.series_uid, "not processed to the end", modality=work.modality
                )
            )
    if not any(w.status in ("written", "failed") for w in works):
        reason = "no image series found in the input"
        logger.warning("%s: %s", report.input, reason)
        report.add(Outcome("failed", "input", report.input, reason))


def process_folder(
    input_folder: str | os.PathLike[str],
    output_folder: str | os.PathLike[str],
    context: IMCContext,
    progress: bool = True,
) -> RunReport:
    """Run the app's chain on a folder without Holoscan; returns the run report (also saved in
    ``output_folder``).

    Raises:
        NotADirectoryError: ``input_folder`` is not a folder.
    """
    folder = read_dicom_folder(input_folder)
    report = RunReport(str(input_folder), str(output_folder))
    for path, reason in folder.errors:
        report.add(Outcome("failed", "file", str(path), reason))
    for path in folder.skipped:
        if Path(path).name != context.settings.sidecar_name:
            report.add(Outcome("skipped", "file", str(path), "not a DICOM file, or a DICOMDIR"))
    works = [series_work(study, series, datasets) for study, series, datasets in folder.series()]
    works = stage_views(works, context, progress)
    works = stage_perceive(works, context, progress)
    works = stage_calibrate(works, context, progress)
    works = stage_refine(works, context, input_folder, report, progress)
    works = stage_answer(works, context, progress)
    stage_write(works, context, output_folder, report, progress)
    return report
