"""The ``denoise`` baseline: a classic image filter in front of the model, chosen on a validation split.

The candidates (:data:`DENOISERS`) are textbook filters with fixed parameters, applied to the 8-bit view
the model is shown (``(H, W, C)`` uint8; a grey image is filtered once and its channels copied):

- ``median3`` / ``median5``: median over a 3 x 3 / 5 x 5 window (impulse and speckle-like noise);
- ``gaussian1``: Gaussian smoothing, sigma 1 pixel (Gaussian / Rician noise);
- ``diffusion``: Perona-Malik anisotropic diffusion (10 steps, kappa 20, step 0.2), which smooths flat
  regions and keeps edges.

How one is chosen (:func:`choose_denoiser`, run by :func:`choose_on_rows` on the validation split): every
candidate answers the validation questions clean and under every image noise of the run at the run's
severities; candidates whose clean closed accuracy falls more than :data:`CLEAN_TOLERANCE` points below the
unfiltered model's are dropped; of the rest the one with the best mean closed accuracy over the noisy
conditions wins (ties: the earlier one in :data:`DENOISERS`). If every candidate hurts clean images that
much, the one that hurts them least is taken. The scores of every candidate are kept in ``results.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from monai_imc.answers import exact_match
from monai_imc.bench.records import is_image_noise
from monai_imc.data import VQARow
from monai_imc.models.base import VisionFeatures
from monai_imc.prompts import vqa_prompt


class DenoiseRunner(Protocol):
    """What :func:`choose_on_rows` needs of a runner (:class:`monai_imc.bench.runner.BenchRunner` is one):
    the condition's image, a vision pass, the answer memo, and where the choice goes."""

    batch_size: int
    answer_suffix: str
    denoiser: str | None

    def image(self, row: VQARow, noise: str, severity: int) -> np.ndarray: ...

    def encode(self, image: np.ndarray) -> VisionFeatures: ...

    def generate_missing(self, wanted: dict[tuple[str, str], VisionFeatures]) -> None: ...

    def answer_of(self, key: tuple[str, str]) -> str | None: ...

__all__ = [
    "CLEAN_TOLERANCE",
    "DENOISERS",
    "DenoiseChoice",
    "DenoiseRunner",
    "apply_denoiser",
    "choose_denoiser",
    "choose_on_rows",
]

#: Points of clean closed accuracy a filter may cost and still be chosen.
CLEAN_TOLERANCE = 2.0


def _median(size: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda plane: ndimage.median_filter(plane, size=size, mode="reflect")


def _gaussian(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda plane: ndimage.gaussian_filter(plane, sigma=sigma, mode="reflect")


def _diffusion(plane: np.ndarray, steps: int = 10, kappa: float = 20.0, step: float = 0.2) -> np.ndarray:
    """Perona-Malik diffusion with the exponential edge-stopping function, on one float plane."""
    u = plane.astype(np.float32)
    for _ in range(steps):
        padded = np.pad(u, 1, mode="edge")
        grads = (padded[:-2, 1:-1] - u, padded[2:, 1:-1] - u, padded[1:-1, :-2] - u, padded[1:-1, 2:] - u)
        u = u + step * sum(g * np.exp(-((g / kappa) ** 2)) for g in grads)
    return u


#: name -> filter of one 2-D float plane (the candidates, mildest first).
DENOISERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "median3": _median(3),
    "gaussian1": _gaussian(1.0),
    "diffusion": _diffusion,
    "median5": _median(5),
}


def apply_denoiser(name: str, image: np.ndarray) -> np.ndarray:
    """Filter an ``(H, W, C)`` (or ``(H, W)``) uint8 view with the named denoiser; returns the same shape, uint8.

    Raises:
        ValueError: an unknown denoiser name.
    """
    if name not in DENOISERS:
        raise ValueError(f"unknown denoiser {name!r}; choose from {', '.join(DENOISERS)}")
    fn = DENOISERS[name]
    arr = np.asarray(image)
    planes = arr[..., None] if arr.ndim == 2 else arr
    grey = all(np.array_equal(planes[..., 0], planes[..., c]) for c in range(1, planes.shape[-1]))
    if grey:
        out = np.repeat(fn(planes[..., 0].astype(np.float32))[..., None], planes.shape[-1], axis=-1)
    else:
        out = np.stack([fn(planes[..., c].astype(np.float32)) for c in range(planes.shape[-1])], axis=-1)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out[..., 0] if arr.ndim == 2 else out


@dataclass(frozen=True)
class DenoiseChoice:
    """The denoiser the run uses and why.

    Attributes:
        name: the chosen filter (a key of :data:`DENOISERS`).
        rule: the rule, in words.
        scores: per candidate (and ``unfiltered``): ``clean`` and ``noisy`` (mean over noisy conditions)
            closed accuracy (%) on the validation questions.
        questions: validation questions used; ``splits``: where they came from.
    """

    name: str
    rule: str
    scores: Mapping[str, Mapping[str, float]]
    questions: int
    splits: tuple[str, ...] = field(default=())


RULE = (f"best mean closed accuracy over the run's image noises x severities on the validation split, among "
        f"filters that cost clean closed accuracy at most {CLEAN_TOLERANCE:g} points (else the one costing least)")


def choose_denoiser(scores: Mapping[str, Mapping[str, float]], clean_reference: float) -> str:
    """Apply the documented rule to per-candidate ``{"clean": acc, "noisy": acc}`` scores.

    Args:
        scores: for each candidate of :data:`DENOISERS` (in that order), its clean and mean noisy accuracy.
        clean_reference: the unfiltered model's clean accuracy on the same questions.

    Raises:
        ValueError: no candidate scores.
    """
    names = [n for n in DENOISERS if n in scores]
    if not names:
        raise ValueError("no denoiser was scored; nothing to choose from")
    allowed = [n for n in names if scores[n]["clean"] >= clean_reference - CLEAN_TOLERANCE]
    if not allowed:
        return max(names, key=lambda n: (scores[n]["clean"], -names.index(n)))
    return max(allowed, key=lambda n: (scores[n]["noisy"], -names.index(n)))


def choose_on_rows(runner: DenoiseRunner, rows: Sequence[VQARow], noises: Sequence[str], severities: Sequence[int],
                   progress: bool = False) -> DenoiseChoice:
    """Choose the filter on validation ``rows`` with ``runner``'s model, images and answer memo; the choice
    is stored in ``runner.denoiser``.

    Only closed questions and image noises count: every candidate (and the unfiltered image) answers each
    closed question clean and under every image noise at ``severities``; :func:`choose_denoiser` decides.

    Raises:
        ValueError: no closed question in ``rows``, or no image noise to choose for.
    """
    closed = [r for r in rows if r.closed]
    image_noises = [n for n in noises if is_image_noise(n)]
    if not closed:
        raise ValueError("no closed validation question to choose a denoiser on")
    if not image_noises:
        raise ValueError("no image noise in the run: nothing to choose a denoiser for")
    candidates = ["unfiltered", *DENOISERS]
    conds = [("clean", 0)] + [(n, s) for n in image_noises for s in severities]
    jobs: list[tuple[str, str, int, VQARow, tuple[str, str]]] = []
    wanted: dict[tuple[str, str], VisionFeatures] = {}
    bar = tqdm(total=len(closed) * len(conds), desc="denoise choice", disable=not progress, unit="view")
    for row in closed:
        for noise, severity in conds:
            array = runner.image(row, noise, severity)
            prompt = vqa_prompt(row.question + runner.answer_suffix)
            for name in candidates:
                key = (f"val|{row.image_key}|{noise}|{severity}|{name}", prompt)
                if runner.answer_of(key) is None and key not in wanted:
                    wanted[key] = runner.encode(array if name == "unfiltered" else apply_denoiser(name, array))
                jobs.append((name, noise, severity, row, key))
            bar.update()
        if len(wanted) >= 4 * runner.batch_size:  # keep memory flat: answer as we go
            runner.generate_missing(wanted)
            wanted = {}
    runner.generate_missing(wanted)
    bar.close()
    hits: dict[tuple[str, str, int], list[float]] = {}
    for name, noise, severity, row, key in jobs:
        correct = exact_match(runner.answer_of(key) or "", row.answer)
        hits.setdefault((name, noise, severity), []).append(float(correct))
    scores = {}
    for name in candidates:
        clean = 100.0 * float(np.mean(hits[(name, "clean", 0)]))
        noisy = float(np.mean([100.0 * np.mean(hits[(name, n, s)]) for n, s in conds[1:]]))
        scores[name] = {"clean": round(clean, 2), "noisy": round(noisy, 2)}
    runner.denoiser = choose_denoiser({n: scores[n] for n in DENOISERS}, scores["unfiltered"]["clean"])
    splits = tuple(sorted({f"{r.dataset}:{r.split}" for r in closed}))
    return DenoiseChoice(runner.denoiser, RULE, scores, len(closed), splits)
