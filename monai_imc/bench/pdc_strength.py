"""PDC's strengths chosen on the model's own answers, on the validation split.

The prototype bank first picks each noise's calibration strength by how close the calibrated tokens come to
the clean ones (:func:`monai_imc.bank_build.build_bank`, pass 2). That criterion is blind to the language
model that reads the tokens: a model that reads finer detail can be hurt by a move that brings the tokens
nearer on average. This module keeps the bank's severity profile and scales each noise's row of strengths by
the factor that gives the best answers:

- every validation image under every noise and severity (and clean) is perceived, restored where the
  pipeline restores, and calibrated at each scale of the grid, as ``imc+restore`` runs it;
- a calibrated image is moved by the map of the noise the perceiver *reports*, so each question-condition's
  answer depends on the scale of that one noise only: the choice splits exactly by perceived noise;
- per perceived noise, the scale with the best pooled score (closed accuracy and open token recall, each
  question-condition counted once, as :mod:`bench.choose_restore` pools) is chosen; ties go to the smaller
  scale, and 0 (PDC off for that noise) is always a candidate.

Run it on the ``validate`` split only (``bench/choose_pdc_strength.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from monai_imc.answers import exact_match, token_recall
from monai_imc.bench.runner import BenchRunner
from monai_imc.calibrate import PDCCalibrator
from monai_imc.data import VQARow
from monai_imc.models.base import VisionFeatures
from monai_imc.prototypes import PrototypeBank, from_level_choice, strength_tensor

__all__ = ["DEFAULT_SCALES", "StrengthChoice", "base_strengths", "choose_strengths", "score_of", "with_scaled_strengths"]

#: The scales tried on each noise's row of the bank's strengths (0: PDC off for that noise).
DEFAULT_SCALES: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)


@dataclass
class StrengthChoice:
    """What :func:`choose_strengths` measured and chose.

    Attributes:
        scales: the scales tried.
        chosen: perceived noise -> the chosen scale of its strengths.
        scores: perceived noise -> scale -> pooled score (percent).
        counts: perceived noise -> question-conditions it pools.
        by_condition: ``"noise/severity"`` -> scale -> pooled score over every question of the condition, with
            the chosen scales of the other perceived noises (what the bench will see).
        questions: validation questions used.
        from_level: images perceived below this severity were not calibrated.
    """

    scales: list[float]
    chosen: dict[str, float]
    scores: dict[str, dict[str, float]]
    counts: dict[str, int]
    by_condition: dict[str, dict[str, float]] = field(default_factory=dict)
    questions: int = 0
    from_level: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {"scales": self.scales, "chosen": self.chosen, "scores": self.scores, "counts": self.counts,
                "by_condition": self.by_condition, "questions": self.questions,
                "from_level": self.from_level}


def score_of(row: VQARow, answer: str) -> float:
    """One question's score: a closed answer's accuracy, an open one's token recall (0-1)."""
    if row.closed:
        return float(exact_match(answer, row.answer))
    return float(token_recall(answer, row.answer))


def base_strengths(bank: PrototypeBank, variant: str = "ridge") -> torch.Tensor:
    """The strengths before any scaling by answers, noises x severities: those the bank chose by token
    distance (ridge, shift), or 1 for the answer-fitted maps (fitted at full strength)."""
    if variant == "answer":
        return torch.ones_like(bank.tensors[strength_tensor(variant)])
    stored = bank.manifest.get("choices", {}).get("strength_by_token_distance")
    if stored is not None:
        return torch.tensor(stored, dtype=bank.tensors["strength"].dtype)
    return bank.tensors["strength"].clone()


def with_scaled_strengths(
    bank: PrototypeBank, scales: dict[str, float], note: dict[str, Any], variant: str = "ridge",
    from_level: int = 1,
) -> PrototypeBank:
    """A copy of ``bank`` whose strength row (of ``variant``'s maps) of each noise in ``scales`` is its base row
    (:func:`base_strengths`) times its scale; the manifest's ``choices`` record the scales and ``note`` (how
    they were chosen).

    ``from_level``: images perceived below this severity are not calibrated (their strengths 0, for every
    noise). An unseen noise the perceiver mistakes for a known one is mostly read as a faint one, where the
    known noise costs little to win back and its map can only do harm (``docs/method.md``, "Calibrating from
    level 3"); the manifest records the level.
    """
    tensors = dict(bank.tensors)
    base = base_strengths(bank, variant)
    strength = base.clone()
    for noise, scale in scales.items():
        strength[bank.noises.index(noise)] *= float(scale)
    below = [i for i, level in enumerate(bank.severities) if level < from_level]
    strength[:, below] = 0.0
    tensors[strength_tensor(variant)] = strength
    manifest = json.loads(json.dumps(bank.manifest))
    key = strength_tensor(variant)  # "strength" (ridge, shift) or "answer_strength"
    manifest.setdefault("choices", {})[f"{key}_scales"] = {k: float(v) for k, v in sorted(scales.items())}
    manifest["choices"][f"{key}_scale_rule"] = note
    manifest["choices"][from_level_choice(variant)] = int(from_level)
    if variant != "answer":
        manifest["choices"]["strength_by_token_distance"] = base.tolist()
    return PrototypeBank(list(bank.noises), list(bank.severities), tensors, manifest)


def choose_strengths(
    runner: BenchRunner,
    rows: Sequence[VQARow],
    noises: Sequence[str],
    severities: Sequence[int],
    scales: Sequence[float] = DEFAULT_SCALES,
    progress: Callable[[str], None] | None = None,
    from_level: int = 1,
) -> StrengthChoice:
    """Choose a scale of each perceived noise's strengths on ``rows`` (validation questions).

    Args:
        runner: a runner over the model and its bank (its pipeline perceives, restores and calibrates).
        rows: the validation questions.
        noises: the image noises applied.
        severities: their severities (the clean image is always added).
        scales: the scales tried (0 is added when missing).
        progress: called with a line per condition done.
        from_level: images perceived below this severity are never calibrated, at any scale
            (:func:`with_scaled_strengths`).

    Returns:
        The choice (the runner's bank and pipeline are not changed).

    Raises:
        ValueError: the runner has no bank, or no rows.
    """
    pipeline = runner.pipeline
    bank = pipeline.bank
    if bank is None or pipeline.calibrator is None:
        raise ValueError("choosing PDC strengths needs the model's prototype bank")
    if not rows:
        raise ValueError("no validation questions to choose PDC strengths on")
    grid = sorted({0.0, *(float(s) for s in scales)})
    by_image: dict[str, list[VQARow]] = {}
    for r in rows:
        by_image.setdefault(r.image_key, []).append(r)
    conditions = [("clean", 0)] + [(n, s) for n in noises for s in severities]
    # one calibrator per scale, over a copy of the bank with every noise's strengths scaled: the runner's
    # own bank and pipeline are never changed
    calibrators = {
        scale: PDCCalibrator(with_scaled_strengths(bank, dict.fromkeys(bank.noises, scale), {}, pipeline.variant,
                                                   from_level), pipeline.variant)
        for scale in grid
    }
    # (condition, perceived noise, scale) -> [sum of scores, count]
    cells: dict[tuple[str, int, str, float], list[float]] = {}
    for noise, severity in conditions:
        wanted: dict[tuple[str, str], VisionFeatures] = {}
        plan: list[tuple[VQARow, str, dict[float, tuple[str, str]]]] = []
        for key, group in by_image.items():
            view = runner.image(group[0], noise, severity)
            raw = runner.encode(view)
            done = pipeline.restore_view(view, raw, pipeline.perceive(raw, views=[view])[0])
            tag = f"{key}|{noise}|{severity}" + ("|restore" if done.restoration.applied else "")
            perceived = done.perception.noise if done.perception.flagged and done.perception.noise else "clean"
            ident: dict[float, str] = {}
            for scale, calibrator in calibrators.items():
                features, records = calibrator.calibrate(done.features, [done.perception])
                ident[scale] = f"{tag}|pdc@{scale}" if records[0].applied else tag
                for r in group:
                    wanted.setdefault((ident[scale], r.question), features)
            for r in group:
                plan.append((r, perceived, {s: (ident[s], r.question) for s in grid}))
        runner.generate_missing(wanted)
        for r, perceived, keys in plan:
            for scale, answer_key in keys.items():
                cell = cells.setdefault((noise, severity, perceived, scale), [0.0, 0.0])
                cell[0] += score_of(r, runner.answer_of(answer_key) or "")
                cell[1] += 1
        if progress is not None:
            progress(f"{noise} {severity}: {len(by_image)} images, {len(wanted)} answers")

    perceived_noises = sorted({k[2] for k in cells if k[2] != "clean"})
    scores: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    chosen: dict[str, float] = {}
    for k in perceived_noises:
        pooled = {s: [0.0, 0.0] for s in grid}
        for (_, _, p, s), (total, n) in cells.items():
            if p == k:
                pooled[s][0] += total
                pooled[s][1] += n
        scores[k] = {str(s): round(100.0 * t / n, 2) for s, (t, n) in pooled.items() if n}
        counts[k] = int(pooled[0.0][1])
        best = max(grid, key=lambda s: (round(pooled[s][0], 6), -s))
        chosen[k] = best
    def pooled_score(noise: str, severity: int, scale_of: Callable[[str], float]) -> float:
        hits = [(t, m) for (c, v, p, s), (t, m) in cells.items() if (c, v) == (noise, severity) and s == scale_of(p)]
        n = sum(m for _, m in hits)
        return round(100.0 * sum(t for t, _ in hits) / n, 2) if n else float("nan")

    by_condition: dict[str, dict[str, float]] = {}
    for noise, severity in conditions:
        out = {str(s): pooled_score(noise, severity, lambda _p, s=s: s) for s in grid}
        out["chosen"] = pooled_score(noise, severity, lambda p: chosen.get(p, 0.0))
        by_condition[f"{noise}/{severity}"] = out
    return StrengthChoice(grid, chosen, scores, counts, by_condition, len(rows), from_level)

