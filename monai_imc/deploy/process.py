"""The app's stages over the series of a run, and the whole chain without Holoscan.

Each ``stage_*`` function is what one MONAI Deploy operator does in ``compute`` (the operators stay thin);
:func:`process_folder` runs them in order on a folder read by :func:`~monai_imc.dicom.read.read_dicom_files`
instead of the SDK's loader, for tests and notebooks.

Usage::

    from monai_imc.deploy.context import load_context
    from monai_imc.deploy.process import process_folder

    report = process_folder("study/", "out/", load_context("bundles/monai_imc_vqa"))
    report.exit_code, report.written
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path

import pydicom
import pydicom.errors
from pydicom.dataset import Dataset
from tqdm.auto import tqdm

from monai_imc.atomic import sweep_temporary
from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.report import Outcome, RunReport
from monai_imc.deploy.sr_step import draft_sr, sr_file_name, write_sr
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
    series_texts,
    series_work,
)
from monai_imc.dicom.read import DicomFolder, read_dicom_files
from monai_imc.dicom.sr import AlgorithmInfo
from monai_imc.refine import Refinement, SMSRefiner
from monai_imc.timing import timed

__all__ = [
    "SR_SERIES_NUMBER",
    "current_sr",
    "process_folder",
    "read_dicom_folder_once",
    "record_outcomes",
    "sr_series_numbers",
    "stage_answer",
    "stage_calibrate",
    "stage_perceive",
    "stage_refine",
    "stage_stow",
    "stage_views",
    "stage_write",
    "start_report",
]

logger = logging.getLogger(__name__)

SR_SERIES_NUMBER = 900
"""SeriesNumber of the first SR series; the next ones count up."""


def stage_views(
    works: Sequence[SeriesWork],
    context: IMCContext,
    progress: bool = True,
    keep_current_in: str | os.PathLike[str] | None = None,
) -> list[SeriesWork]:
    """SeriesToViews: key 2D views of every series (non-image series skipped, broken ones failed).

    Args:
        works: the series.
        context: the shared context (settings ``n_views``, ``ct_preset``, ``max_pixels``).
        progress: show a progress bar.
        keep_current_in: an output folder: a series whose SR there is current (:func:`current_sr`) is not
            processed again; it keeps that SR (``--skip-existing``).
    """
    settings = context.settings
    if keep_current_in is not None:
        works = [_keep_if_current(w, keep_current_in, context) for w in works]
    return run_step(
        works,
        "views",
        lambda w: make_views(w, settings.n_views, settings.ct_preset, settings.max_pixels),
        progress,
    )


def current_sr(work: SeriesWork, folder: str | os.PathLike[str], algorithm: AlgorithmInfo) -> Path | None:
    """The series' SR in ``folder`` when it is current: readable, newer than every file of the series,
    made by the same algorithm (model, prototype bank, monai-imc version) and referring only to instances
    the series still has; else ``None``."""
    path = Path(folder) / sr_file_name(work.series_uid)
    try:
        made = path.stat().st_mtime
        sr = pydicom.dcmread(path, stop_before_pixels=True)
        sources = [
            Path(str(ds.filename)) for ds in work.datasets if isinstance(getattr(ds, "filename", None), str)
        ]
        if not sources or any(src.stat().st_mtime > made for src in sources):
            return None
        referenced = {
            str(item.ReferencedSOPInstanceUID)
            for study in sr.get("CurrentRequestedProcedureEvidenceSequence", [])
            for series in study.get("ReferencedSeriesSequence", [])
            for item in series.get("ReferencedSOPSequence", [])
        }
        texts = set(_text_values(sr))
    except (OSError, ValueError, AttributeError, TypeError, pydicom.errors.InvalidDicomError):
        return None
    uids = {str(ds.get("SOPInstanceUID", "")) for ds in work.datasets}
    wanted = {
        f"model={algorithm.model_id}",
        f"prototype_bank={algorithm.bank_hash}",
        f"monai_imc={algorithm.version}",
    }
    if not referenced or not referenced <= uids or not wanted <= texts:
        return None
    return path


def _text_values(ds: Dataset) -> Iterator[str]:
    for item in ds.get("ContentSequence", []):
        if "TextValue" in item:
            yield str(item.TextValue)
        yield from _text_values(item)


def _keep_if_current(work: SeriesWork, folder: str | os.PathLike[str], context: IMCContext) -> SeriesWork:
    if not work.active:
        return work
    path = current_sr(work, folder, context.algorithm)
    if path is None:
        return work
    logger.info("series %s: its SR %s is current; kept", work.series_uid, path.name)
    return dataclasses.replace(work.skip(f"its SR {path.name} is already there and current"), sr_path=path)


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
    """SMSReportRefiner: collect each series' texts (standing, DICOM fields, sidecars) and refine them: every
    distinct text of the study at once first (batched assessments, :meth:`SMSRefiner.refine_many`), then each
    series reads the refinements (:func:`~monai_imc.deploy.work.refine_texts`).

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
    with timed("refine"):  # the study's texts assessed together, then each series reads the cache
        _refine_ahead(
            works, context.refiner, settings.standing_questions, settings.text_fields, sidecars, cache
        )
    return run_step(
        works,
        "refine",
        lambda w: refine_texts(
            w, context.refiner, settings.standing_questions, settings.text_fields, sidecars, cache
        ),
        progress,
    )


def _refine_ahead(
    works: Sequence[SeriesWork],
    refiner: SMSRefiner,
    standing_questions: Sequence[str],
    text_fields: Sequence[str],
    sidecars: Sequence[Sidecar],
    cache: MutableMapping[str, Refinement],
) -> None:
    """Refine the texts of all active series that ``cache`` lacks at once (:meth:`SMSRefiner.refine_many`: a
    study's texts assessed in batched calls) into ``cache``, for :func:`~monai_imc.deploy.work.refine_texts`. Whatever fails here is
    left to ``refine_texts``, series by series (a bad series never stops the others)."""
    try:
        wanted = {
            data: None
            for w in works
            if w.active
            for _text, data in series_texts(w, refiner, standing_questions, text_fields, sidecars)
            if data and data not in cache
        }
        cache.update(zip(wanted, refiner.refine_many(list(wanted))))
    except Exception as exc:  # noqa: BLE001 (each series refines its own texts again, and fails alone)
        logger.warning("the study's texts could not be refined together (%s); refining series by series", exc)


def stage_answer(works: Sequence[SeriesWork], context: IMCContext, progress: bool = True) -> list[SeriesWork]:
    """VLMReport: answer every asked text about every view from the calibrated features. As each series is
    answered, its SR starts encoding in a worker process (:func:`~monai_imc.deploy.sr_step.draft_sr`) beside the
    model's work on the next series; :func:`stage_write` saves it."""
    numbers = sr_series_numbers(works)

    def step(work: SeriesWork) -> SeriesWork:
        answered = answer(work, context.pipeline, context.settings.max_new_tokens)
        return draft_sr(answered, context.algorithm, numbers[work.series_uid])

    return run_step(works, "answer", step, progress)


def sr_series_numbers(works: Sequence[SeriesWork]) -> dict[str, int]:
    """The SeriesNumber of each series' SR: :data:`SR_SERIES_NUMBER` plus the series' place in the study."""
    return {w.series_uid: SR_SERIES_NUMBER + i for i, w in enumerate(works)}


def stage_write(
    works: Sequence[SeriesWork],
    context: IMCContext,
    output_folder: str | os.PathLike[str],
    report: RunReport,
    progress: bool = True,
) -> list[SeriesWork]:
    """IMCStructuredReportWriter: one SR per assessed series, then every outcome into ``report``, which is
    saved in the output folder."""
    numbers = sr_series_numbers(works)
    done = []
    for work in tqdm(works, desc="IMC write SR", unit="series", disable=not progress, leave=False):
        (finished,) = run_step(
            [work],
            "write SR",
            lambda w: write_sr(w, output_folder, context.algorithm, numbers[w.series_uid]),
            False,
            stage="sr",
        )
        record_outcomes([finished], report, check_input=False)  # saved as each series finishes
        done.append(finished)
    record_outcomes([], report, check_input=True, all_works=done)
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


def record_outcomes(
    works: Sequence[SeriesWork],
    report: RunReport,
    check_input: bool = True,
    all_works: Sequence[SeriesWork] | None = None,
) -> None:
    """Add each series' outcome and its left-out files to ``report``; with ``check_input``, an input with
    no image series at all (among ``all_works``, default ``works``) is a failure."""
    for work in works:
        for path, reason in work.file_problems:
            report.add(Outcome("failed", "file", path, reason, modality=work.modality))
        if work.status == "written":
            report.add(Outcome("written", "series", work.series_uid, "", str(work.sr_path), work.modality))
        elif work.status == "skipped" and work.sr_path is not None:
            report.add(
                Outcome("kept", "series", work.series_uid, work.reason, str(work.sr_path), work.modality)
            )
        elif work.status in ("failed", "skipped"):
            report.add(Outcome(work.status, "series", work.series_uid, work.reason, modality=work.modality))
        else:
            report.add(
                Outcome(
                    "failed", "series", work.series_uid, "not processed to the end", modality=work.modality
                )
            )
    every = works if all_works is None else all_works
    if check_input and not any(w.status in ("written", "failed") or w.sr_path is not None for w in every):
        reason = "no image series found in the input"
        logger.warning("%s: %s", report.input, reason)
        report.add(Outcome("failed", "input", report.input, reason))


def start_report(report: RunReport) -> RunReport:
    """Prepare the output folder of a run: note an interrupted earlier run, remove the temporary files it
    left (each an outcome ``removed``), and save the report (state ``running``); returns ``report``."""
    previous = report.previous_state()
    if previous in ("running", "interrupted"):
        report.notes.append(f"the previous run in this folder did not finish (its report said {previous!r})")
    for path in sweep_temporary(report.output):
        logger.warning("%s: removed, a temporary file left by an interrupted run", path)
        report.outcomes.append(
            Outcome("removed", "file", str(path), "a temporary file left by an interrupted run; removed")
        )
    report.autosave = True
    report.save()
    return report


def process_folder(
    input_folder: str | os.PathLike[str],
    output_folder: str | os.PathLike[str],
    context: IMCContext,
    progress: bool = True,
    skip_existing: bool = False,
) -> RunReport:
    """Run the app's chain on a folder without Holoscan; returns the run report (also saved in
    ``output_folder``, as the run goes).

    Args:
        input_folder: the DICOM input.
        output_folder: where the SRs and the report go.
        context: the shared context.
        progress: show progress bars.
        skip_existing: keep the SRs already in ``output_folder`` that are current (:func:`current_sr`).

    Raises:
        NotADirectoryError: ``input_folder`` is not a folder.
    """
    if not Path(input_folder).is_dir():
        raise NotADirectoryError(f"not a folder: {input_folder}")
    report = start_report(RunReport(str(input_folder), str(output_folder)))
    with report.timer.active():
        _process(input_folder, output_folder, context, report, progress, skip_existing)
    report.finish()
    return report


def _process(
    input_folder: str | os.PathLike[str],
    output_folder: str | os.PathLike[str],
    context: IMCContext,
    report: RunReport,
    progress: bool,
    skip_existing: bool,
) -> None:
    with timed("read"):
        folder = read_dicom_folder_once(input_folder, context.settings.sidecar_name)
    for path, reason in folder.errors:
        report.add(Outcome("failed", "file", str(path), reason))
    for path, reason in folder.skipped_files:
        report.add(Outcome("skipped", "file", str(path), reason))
    works = [series_work(study, series, datasets) for study, series, datasets in folder.series()]
    works = stage_views(works, context, progress, keep_current_in=output_folder if skip_existing else None)
    works = stage_perceive(works, context, progress)
    works = stage_calibrate(works, context, progress)
    works = stage_refine(works, context, input_folder, report, progress)
    works = stage_answer(works, context, progress)
    stage_write(works, context, output_folder, report, progress)


def read_dicom_folder_once(folder: str | os.PathLike[str], sidecar_name: str) -> DicomFolder:
    """Every file under ``folder`` read once (:func:`~monai_imc.dicom.read.read_dicom_files`), the
    sidecar left to :func:`~monai_imc.deploy.texts.load_sidecars`."""
    paths = [p for p in Path(folder).rglob("*") if p.is_file()]
    return read_dicom_files(paths, ignore_names=[sidecar_name])
