"""SeriesWork: what one series carries through the app, and the steps that fill it in.

Each step takes a :class:`SeriesWork` and returns a new one (the records are frozen); a series that was
skipped or failed passes the later steps untouched. :func:`run_step` applies a step to every series of a
study, with a progress bar, and turns an exception in one series into that series' failure (logged with
the series UID and the reason), so the other series go on.

The steps, in graph order (each MONAI Deploy operator calls one)::

    make_views  ->  perceive  ->  calibrate  ->  refine_texts  ->  answer (+ draft_sr)  ->  write_sr

(``draft_sr`` and ``write_sr``, the series' SR, are in :mod:`monai_imc.deploy.sr_step`.)

``calibrate`` restores flagged views first where the pipeline's restorer is enabled (the bundle config's
``restore`` section): :meth:`~monai_imc.pipeline.IMCPipeline.restore_view`, then PDC on what the perceiver
sees in the restored view.

Usage::

    works = [series_work(study, series, datasets) for study, series, datasets in folder.series()]
    works = run_step(works, "views", lambda w: make_views(w, context.settings))
    ...
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from tqdm.auto import tqdm

from monai_imc.calibrate import Calibration
from monai_imc.deploy.texts import ClinicalText, Sidecar, collect_texts
from monai_imc.dicom.frames import DEFAULT_MAX_PIXELS
from monai_imc.dicom.read import check_complete
from monai_imc.dicom.sr_file import EncodedSR
from monai_imc.dicom.views import (
    SeriesView,
    UnsupportedSeriesError,
    is_image_object,
    series_views,
    sop_class_kind,
)
from monai_imc.models.base import VisionFeatures, image_token_of
from monai_imc.perceive import Perception
from monai_imc.pipeline import IMCPipeline
from monai_imc.prompts import vqa_prompt
from monai_imc.refine import Refinement, SMSRefiner
from monai_imc.restore import Restoration
from monai_imc.timing import timed

__all__ = [
    "Answer",
    "AssessedView",
    "RefinedText",
    "SeriesWork",
    "answer",
    "as_data",
    "as_question",
    "calibrate",
    "make_views",
    "perceive",
    "refine_texts",
    "run_step",
    "series_texts",
    "series_work",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssessedView:
    """One key view with the model's features of it, what the perceiver saw and what PDC did.

    Attributes:
        view: the windowed 2D view.
        source: the dataset the view came from.
        features: the vision features (calibrated ones once PDC ran).
        perception: the perceiver's verdict on the view as received (what the SR reports).
        calibration: PDC's record (``None`` before calibration).
        restoration: what restoration did before calibration (``None`` when it was off); when it changed the
            view, ``features`` are the restored view's.
    """

    view: SeriesView
    source: Dataset
    features: VisionFeatures
    perception: Perception
    calibration: Calibration | None = None
    restoration: Restoration | None = None


@dataclass(frozen=True)
class RefinedText:
    """A clinical text and its SMS refinement.

    Attributes:
        source: the text as received, with its role.
        text: the refined text (the original when nothing was changed).
        refinement: the refiner's full record (agents, edits, scores); ``None`` when the text was not
            refined (nothing left of it once the model's image token was removed).
    """

    source: ClinicalText
    text: str
    refinement: Refinement | None

    @property
    def changed(self) -> bool:
        """Whether SMS changed the text."""
        return self.text != self.source.text

    @property
    def edits(self) -> tuple[str, ...]:
        """Each change SMS made, in words (``'Iocoted' -> 'Located' (specialist:spelling)``), for the SR."""
        if self.refinement is None or not self.changed:
            return ()
        return tuple(f"'{e.before}' -> '{e.after}' ({e.agent})" for e in self.refinement.edits)


@dataclass(frozen=True)
class Answer:
    """The model's answer to one question about one view.

    Attributes:
        sop_instance_uid: the view's instance.
        frame_number: the view's frame (``None`` for a single-frame instance).
        text_index: which of :attr:`SeriesWork.refined` was asked.
        question: the prompt put to the model.
        answer: the model's answer.
    """

    sop_instance_uid: str
    frame_number: int | None
    text_index: int
    question: str
    answer: str


@dataclass(frozen=True)
class SeriesWork:
    """One series on its way through the app.

    Attributes:
        study_uid: its StudyInstanceUID.
        series_uid: its SeriesInstanceUID.
        modality: its Modality.
        datasets: its instances.
        status: ``"pending"``, ``"skipped"``, ``"failed"`` or ``"written"``.
        reason: why skipped or failed.
        file_problems: ``(path, reason)`` of instances left out (truncated files); each is a failure.
        views: key 2D views.
        assessed: the views with features, perception and calibration.
        refined: the series' clinical texts, refined.
        answers: the answers, per view and question.
        sr_path: the SR written.
        sr_draft: the SR being encoded beside the model (:func:`~monai_imc.deploy.sr_step.draft_sr`), until
            :func:`~monai_imc.deploy.sr_step.write_sr` saves it.
    """

    study_uid: str
    series_uid: str
    modality: str
    datasets: tuple[Dataset, ...] = dataclasses.field(repr=False)
    status: str = "pending"
    reason: str = ""
    file_problems: tuple[tuple[str, str], ...] = ()
    views: tuple[SeriesView, ...] = dataclasses.field(default=(), repr=False)
    assessed: tuple[AssessedView, ...] = dataclasses.field(default=(), repr=False)
    refined: tuple[RefinedText, ...] = dataclasses.field(default=(), repr=False)
    answers: tuple[Answer, ...] = dataclasses.field(default=(), repr=False)
    sr_path: Path | None = None
    sr_draft: Future[EncodedSR] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def active(self) -> bool:
        """Whether later steps still work on this series."""
        return self.status == "pending"

    def fail(self, reason: str) -> SeriesWork:
        """This series, failed for ``reason``."""
        return dataclasses.replace(self, status="failed", reason=reason)

    def skip(self, reason: str) -> SeriesWork:
        """This series, skipped for ``reason``."""
        return dataclasses.replace(self, status="skipped", reason=reason)


def series_work(study_uid: str, series_uid: str, datasets: Iterable[Dataset]) -> SeriesWork:
    """A new :class:`SeriesWork` for the instances of one series."""
    items = tuple(datasets)
    modality = str(items[0].get("Modality", "")) if items else ""
    return SeriesWork(str(study_uid), str(series_uid), modality, items)


def run_step(
    works: Sequence[SeriesWork],
    name: str,
    step: Callable[[SeriesWork], SeriesWork],
    progress: bool = True,
    stage: str | None = None,
) -> list[SeriesWork]:
    """Apply ``step`` to every pending series; an exception fails that series only.

    Args:
        works: the series of a study (or of several).
        name: the step's name, for the progress bar and the failure reasons.
        step: the step.
        progress: show a tqdm progress bar (on stderr).
        stage: the stage each step is timed as (:func:`monai_imc.timing.timed`, per series; default ``name``).

    Returns:
        The series after the step, in the same order.
    """
    out: list[SeriesWork] = []
    pending = sum(w.active for w in works)
    with tqdm(
        total=pending, desc=f"IMC {name}", unit="series", disable=not progress or not pending, leave=False
    ) as bar:
        for work in works:
            if not work.active:
                out.append(work)
                continue
            try:
                with timed(stage or name, key=work.series_uid):
                    done = step(work)
            except Exception as exc:  # noqa: BLE001  (one series' failure must not stop the others)
                done = work.fail(f"{name}: {type(exc).__name__}: {exc}")
            if done.status == "failed":
                logger.warning("series %s (%s): failed: %s", done.series_uid, done.modality, done.reason)
            elif done.status == "skipped":
                logger.warning("series %s (%s): skipped: %s", done.series_uid, done.modality, done.reason)
            out.append(done)
            bar.update(1)
    return out


def make_views(
    work: SeriesWork, n_views: int = 1, ct_preset: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> SeriesWork:
    """Key 2D views of the series; non-image series are skipped, truncated files left out and reported."""
    if not work.datasets:
        return work.fail("the series has no instances")
    images = [ds for ds in work.datasets if is_image_object(ds)]
    if not images:
        ds = work.datasets[0]
        _, name = sop_class_kind(ds)
        return work.skip(f"not an image object ({name}, Modality {ds.get('Modality', '?')})")
    kept, problems = [], list(work.file_problems)
    for ds in images:
        path = getattr(ds, "filename", None)
        if isinstance(path, (str, os.PathLike)) and Path(path).is_file():
            try:
                check_complete(ds, path)
            except ValueError as exc:
                logger.warning("%s: %s (left out of series %s)", path, exc, work.series_uid)
                problems.append((str(path), str(exc)))
                continue
        kept.append(ds)
    work = dataclasses.replace(work, file_problems=tuple(problems))
    if not kept:
        detail = f"{problems[-1][0]}: {problems[-1][1]}" if problems else "none"
        return work.fail(f"no readable instance ({detail})")
    try:
        views = series_views(kept, n_views=n_views, ct_preset=ct_preset, max_pixels=max_pixels)
    except UnsupportedSeriesError as exc:
        return work.fail(str(exc))
    return dataclasses.replace(work, views=tuple(views))


def perceive(work: SeriesWork, pipeline: IMCPipeline) -> SeriesWork:
    """Encode each view once and let the perceiver judge it (artifact, severity, probability)."""
    sources = {str(ds.SOPInstanceUID): ds for ds in work.datasets}
    assessed = []
    for view in work.views:
        features, perceptions = pipeline.encode_and_perceive([view.pixels], modalities=[work.modality])
        perception = perceptions[0]
        assessed.append(AssessedView(view, sources[view.sop_instance_uid], features, perception))
        logger.debug(
            "series %s view %s: %s (p_clean %.3f)",
            work.series_uid,
            view.sop_instance_uid,
            perception.noise or "clean",
            perception.p_clean,
        )
    return dataclasses.replace(work, assessed=tuple(assessed))


def calibrate(work: SeriesWork, pipeline: IMCPipeline) -> SeriesWork:
    """Restore flagged views (when the pipeline's restorer is enabled), then calibrate the features of
    flagged views with PDC (when the pipeline has PDC on)."""
    out = []
    for item in work.assessed:
        features, seen, restoration = item.features, item.perception, None
        if pipeline.restorer.enabled:
            restored = pipeline.restore_view(item.view.pixels, item.features, item.perception, work.modality)
            features, seen, restoration = restored.features, restored.perception, restored.restoration
        features, records = pipeline.calibrate(features, [seen])
        out.append(
            dataclasses.replace(item, features=features, calibration=records[0], restoration=restoration)
        )
    return dataclasses.replace(work, assessed=tuple(out))


def refine_texts(
    work: SeriesWork,
    refiner: SMSRefiner,
    standing_questions: Sequence[str],
    text_fields: Sequence[str],
    sidecars: Sequence[Sidecar] = (),
    cache: MutableMapping[str, Refinement] | None = None,
) -> SeriesWork:
    """Collect the series' texts (standing questions, DICOM fields, sidecars) and refine each with SMS.

    Args:
        work: the series.
        refiner: the SMS refiner.
        standing_questions: the bundle's standing questions.
        text_fields: DICOM keywords to read.
        sidecars: the input's sidecars.
        cache: refinements by text, shared across the series of a run (a study's texts repeat).
    """
    cache = {} if cache is None else cache
    refined = []
    for text, data in series_texts(work, refiner, standing_questions, text_fields, sidecars):
        if not data:
            logger.warning(
                "series %s: the %s text is empty once the model's image token is removed; kept "
                "as received, neither refined nor asked",
                work.series_uid,
                text.role,
            )
            refined.append(RefinedText(dataclasses.replace(text, ask=False), text.text, None))
            continue
        if data not in cache:
            cache[data] = refiner.refine(data)
        refinement = cache[data]
        refined.append(RefinedText(text, refinement.text, refinement))
    return dataclasses.replace(work, refined=tuple(refined))


def series_texts(
    work: SeriesWork,
    refiner: SMSRefiner,
    standing_questions: Sequence[str],
    text_fields: Sequence[str],
    sidecars: Sequence[Sidecar] = (),
) -> list[tuple[ClinicalText, str]]:
    """The series' texts (:func:`~monai_imc.deploy.texts.collect_texts`), each with the data SMS refines
    (:func:`as_data`: empty when nothing is left once the model's image token is removed)."""
    image_token = image_token_of(refiner.model)
    texts = collect_texts(work.datasets[0], standing_questions, text_fields, sidecars)
    return [(text, as_data(text.text, image_token)) for text in texts]


def as_data(text: str, image_token: str | None) -> str:
    """``text`` with the model's image token removed and whitespace normalised: text from a DICOM field or
    a sidecar is data, and must not open an image slot in a prompt (the SR keeps the text as received)."""
    if image_token:
        while image_token in text:
            text = text.replace(image_token, " ")
    return " ".join(text.split())


def as_question(text: str, image_token: str | None) -> str:
    """The answering prompt for a (refined) text (see :func:`as_data`)."""
    return vqa_prompt(as_data(text, image_token))


def answer(work: SeriesWork, pipeline: IMCPipeline, max_new_tokens: int = 24) -> SeriesWork:
    """Answer every asked text about every view, from the (calibrated) features."""
    image_token = image_token_of(pipeline.model)
    answers = []
    for item in work.assessed:
        for index, text in enumerate(work.refined):
            if not text.source.ask:
                continue
            question = as_question(text.text, image_token)
            reply = pipeline.generate(item.features, question, max_new_tokens=max_new_tokens, do_sample=False)
            answers.append(Answer(item.view.sop_instance_uid, item.view.frame_number, index, question, reply))
    return dataclasses.replace(work, answers=tuple(answers))
