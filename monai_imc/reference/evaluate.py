"""Evaluation of the reference model through the same path as any checkpoint (:func:`load_model`).

- VQA (:func:`evaluate_vqa`): greedy answers; closed-ended accuracy, open-ended accuracy (exact match
  after :func:`~monai_imc.answers.normalize_answer`) and open-ended token recall (share of the
  reference answer's words found in the prediction).
- Agent roles (:func:`evaluate_roles`): judge accuracy (the exact label), noisy/clean detection accuracy
  and rewrite exact match, per noise, on held-out questions (images kept out of training) corrupted
  with evaluation seeds no training run uses.

Example:
    >>> from monai_imc.reference.evaluate import evaluate_checkpoint
    >>> metrics = evaluate_checkpoint("bundles/monai_imc_vqa/models/reference-vlm", "../shared/data", [])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from monai_imc.answers import exact_match, normalize_answer, token_recall
from monai_imc.data import VQARow, load_vqa, shuffled_images
from monai_imc.prompts import (
    CLEAN_LABEL,
    judge_messages,
    parse_judgement,
    rewrite_messages,
    vqa_prompt,
)
from monai_imc.reference.data import agent_examples

logger = logging.getLogger(__name__)

__all__ = [
    "EVAL_NOISE_SEED",
    "closed_majority_accuracy",
    "evaluate_checkpoint",
    "evaluate_roles",
    "evaluate_vqa",
    "predict_answers",
    "shuffled_images",
    "slake_content_types",
    "token_recall",
]

#: Seed of the evaluation's noisy questions (training runs use small seeds: 0, 1, ...).
EVAL_NOISE_SEED = 990_001


def closed_majority_accuracy(rows: Sequence[VQARow]) -> float:
    """Accuracy (%) of always giving the most common normalised answer of the closed rows themselves.

    Args:
        rows: rows (open ones are ignored).

    Returns:
        The accuracy in percent (0 for no closed rows).
    """
    answers = [normalize_answer(r.answer) for r in rows if r.closed]
    if not answers:
        return 0.0
    return 100.0 * Counter(answers).most_common(1)[0][1] / len(answers)


def predict_answers(
    model: Any,
    rows: Sequence[VQARow],
    blank_images: bool = False,
    max_new_tokens: int = 12,
    progress: bool = False,
    image_for: dict[str, Path] | None = None,
) -> list[str]:
    """Greedy answers of ``model`` to ``rows`` (one vision pass per distinct image).

    Args:
        model: a loaded :class:`~monai_imc.models.HFVisionLanguageModel`.
        rows: the questions.
        blank_images: show a black image instead of each image (the no-image twin's evaluation).
        max_new_tokens: longest answer.
        progress: show a tqdm bar.
        image_for: show ``image_for[row.image_key]`` instead of the row's image (the shuffled control).

    Returns:
        One answer per row.
    """
    from tqdm.auto import tqdm

    from monai_imc.reference.features import load_rgb

    cache: dict[str, Any] = {}
    out = []
    for row in tqdm(rows, desc="answers", disable=not progress, mininterval=5):
        key = "<blank>" if blank_images else row.image_key
        if key not in cache:
            path = None if blank_images else (image_for or {}).get(row.image_key, row.image)
            cache[key] = model.encode_images(load_rgb(path))
        out.append(model.generate(cache[key], vqa_prompt(row.question), max_new_tokens=max_new_tokens))
    return out


def slake_content_types(data: str | Path, split: str = "test") -> dict[tuple[str, str], str]:
    """SLAKE's question category (``Modality``, ``Organ``, ``Abnormality`` ...) per (image key, question)."""
    import json

    rows = json.loads((Path(data) / "slake" / f"{split}.json").read_text(encoding="utf-8"))
    return {
        (f"slake/{r['img_name']}", str(r["question"]).strip()): str(r.get("content_type", ""))
        for r in rows
        if r.get("q_lang", "en") == "en"
    }


def evaluate_vqa(
    model: Any,
    rows: Sequence[VQARow],
    blank_images: bool = False,
    progress: bool = False,
    image_for: dict[str, Path] | None = None,
    groups: dict[tuple[str, str], str] | None = None,
) -> dict[str, Any]:
    """VQA metrics of ``model`` on ``rows``.

    Args:
        model: a loaded model.
        rows: the questions.
        blank_images: evaluate with black images.
        progress: show a tqdm bar.
        image_for: replace images (see :func:`predict_answers`).
        groups: a category per (image key, question) (e.g. :func:`slake_content_types`) for ``by_group``.

    Returns:
        ``closed_acc``, ``open_acc``, ``open_recall`` (percent), ``closed_n``, ``open_n``,
        ``closed_majority`` (the majority-answer baseline on the same closed rows) and, with ``groups``,
        ``by_group``: exact-match accuracy and count per category (closed and open together).
    """
    answers = predict_answers(model, rows, blank_images=blank_images, progress=progress, image_for=image_for)
    closed = [(a, r) for a, r in zip(answers, rows) if r.closed]
    opened = [(a, r) for a, r in zip(answers, rows) if not r.closed]

    def pct(values: list[float]) -> float:
        return round(100.0 * sum(values) / len(values), 2) if values else 0.0

    out: dict[str, Any] = {
        "closed_acc": pct([float(exact_match(a, r.answer)) for a, r in closed]),
        "closed_n": len(closed),
        "open_acc": pct([float(exact_match(a, r.answer)) for a, r in opened]),
        "open_recall": pct([token_recall(a, r.answer) for a, r in opened]),
        "open_n": len(opened),
        "closed_majority": round(closed_majority_accuracy(rows), 2),
    }
    if groups is not None:
        hits: dict[str, list[float]] = {}
        for a, r in zip(answers, rows):
            name = groups.get((r.image_key, r.question), "")
            hits.setdefault(name, []).append(float(exact_match(a, r.answer)))
        out["by_group"] = {k: {"acc": pct(v), "n": len(v)} for k, v in sorted(hits.items())}
    return out


def evaluate_roles(
    model: Any,
    questions: Sequence[str],
    trained_noises: Sequence[str],
    heldout_noise: str,
    seed: int = EVAL_NOISE_SEED,
    progress: bool = False,
    known_questions: Collection[str] = (),
) -> dict[str, Any]:
    """Judge and rewrite metrics on held-out questions, per noise (and ``clean``).

    Args:
        model: a loaded model.
        questions: held-out clean questions.
        trained_noises: the noises of role training.
        heldout_noise: the noise kept out of role training.
        seed: seed of the evaluation's noisy versions and severities.
        progress: show a tqdm bar.
        known_questions: the training questions; the questions not among them (new wording, not only
            new images) are also summarised apart as ``novel``.

    Returns:
        ``by_noise``: per noise ``n``, ``judge_acc`` (exact label), ``detect_acc`` (clean vs noisy right),
        ``rewrite_em`` (rewrite equals the clean question, whitespace normalised) and
        ``rewrite_em_norm`` (equal after :func:`normalize_answer`); ``trained`` (pooled over the trained
        noises) and ``heldout`` (the held-out noise), the ``heldout_noise`` name, and ``novel`` (``questions``,
        ``clean``, ``trained``, ``heldout`` on the questions absent from ``known_questions``).
    """
    from tqdm.auto import tqdm

    examples = agent_examples(list(questions), [*trained_noises, heldout_noise], seed=seed, variants=1)
    judge = [e for e in examples if e.role == "judge"]
    known = set(known_questions)
    stats: dict[str, dict[str, list[float]]] = {}
    novel: dict[str, dict[str, list[float]]] = {}
    for e in tqdm(judge, desc="roles", disable=not progress, mininterval=5):
        label = parse_judgement(model.chat(judge_messages(e.noisy), max_new_tokens=4))
        rewrite = model.chat(rewrite_messages(e.noisy), max_new_tokens=96)
        targets = [stats] + ([novel] if known and e.clean not in known else [])
        for table in targets:
            s = table.setdefault(e.noise, {"judge": [], "detect": [], "em": [], "em_norm": []})
            s["judge"].append(float(label == e.noise))
            s["detect"].append(float((label == CLEAN_LABEL) == (e.noise == CLEAN_LABEL) and label is not None))
            s["em"].append(float(" ".join(rewrite.split()) == e.clean))
            s["em_norm"].append(float(exact_match(rewrite, e.clean)))

    def summary(groups: list[dict[str, list[float]]]) -> dict[str, float]:
        merged = {k: [v for g in groups for v in g[k]] for k in ("judge", "detect", "em", "em_norm")}
        n = len(merged["judge"])
        if n == 0:
            return {"n": 0}
        return {
            "n": n,
            "judge_acc": round(100 * sum(merged["judge"]) / n, 2),
            "detect_acc": round(100 * sum(merged["detect"]) / n, 2),
            "rewrite_em": round(100 * sum(merged["em"]) / n, 2),
            "rewrite_em_norm": round(100 * sum(merged["em_norm"]) / n, 2),
        }

    out: dict[str, Any] = {
        "questions": len(dict.fromkeys(questions)),
        "heldout_noise": heldout_noise,
        "by_noise": {k: summary([v]) for k, v in sorted(stats.items())},
        "trained": summary([stats[n] for n in trained_noises if n in stats]),
        "heldout": summary([stats[heldout_noise]] if heldout_noise in stats else []),
    }
    if known:
        out["novel"] = {
            "questions": len({q for q in dict.fromkeys(questions) if q not in known}),
            "clean": summary([novel[CLEAN_LABEL]] if CLEAN_LABEL in novel else []),
            "trained": summary([novel[n] for n in trained_noises if n in novel]),
            "heldout": summary([novel[heldout_noise]] if heldout_noise in novel else []),
        }
    return out


def evaluate_checkpoint(
    path: str | Path,
    data: str | Path,
    heldout_rows: Sequence[VQARow],
    blank_images: bool = False,
    trained_noises: Sequence[str] = ("abbreviation", "asr", "distractor", "typo"),
    heldout_noise: str = "ocr",
    limit: int | None = None,
    agent_questions: int = 150,
    progress: bool = True,
    train_questions: Collection[str] = (),
    controls: bool = True,
) -> dict[str, Any]:
    """Load ``path`` with :func:`~monai_imc.models.load_model` and evaluate it on both test sets and roles.

    Args:
        path: the checkpoint directory.
        data: the shared data folder.
        heldout_rows: the held-out training-style rows (:func:`~monai_imc.reference.train.training_rows`).
        blank_images: evaluate with black images (the no-image twin).
        trained_noises: the noises of role training.
        heldout_noise: the noise kept out of role training.
        limit: evaluate only the first ``limit`` rows of each test set.
        agent_questions: how many held-out questions the role evaluation uses (a fixed random sample).
        progress: show tqdm bars.
        train_questions: the training questions, to summarise the role results on new wordings apart.
        controls: also evaluate the image model with a black and with a shuffled image at test time.

    Returns:
        ``slake_test`` and ``vqa_rad_test`` (see :func:`evaluate_vqa`), ``roles`` (see
        :func:`evaluate_roles`) and ``eval_minutes``.
    """
    import time

    import torch

    from monai_imc.models import load_model

    start = time.monotonic()
    model = load_model(str(path), device="cpu", dtype=torch.float32)
    out: dict[str, Any] = {}
    for name, dataset in (("slake_test", "slake"), ("vqa_rad_test", "vqa_rad")):
        every = load_vqa(data, dataset, "test")
        rows = every[:limit] if limit is not None else every
        groups = slake_content_types(data) if dataset == "slake" else None
        out[name] = evaluate_vqa(model, rows, blank_images=blank_images, progress=progress, groups=groups)
        if controls and not blank_images and dataset == "slake":
            # Test-time controls (SURE-VQA): the same model shown a black image, or another test image
            # (drawn from the whole test split, as the benchmark's shuffled-image method does).
            out[f"{name}_blank_image"] = evaluate_vqa(model, rows, blank_images=True, progress=progress, groups=groups)
            out[f"{name}_shuffled_image"] = evaluate_vqa(
                model, rows, progress=progress, image_for=shuffled_images(every, EVAL_NOISE_SEED), groups=groups
            )
    unique = sorted(dict.fromkeys(r.question for r in heldout_rows))
    random.Random(EVAL_NOISE_SEED).shuffle(unique)
    if agent_questions and unique:
        out["roles"] = evaluate_roles(
            model,
            unique[:agent_questions],
            list(trained_noises),
            heldout_noise,
            progress=progress,
            known_questions=train_questions,
        )
    out["eval_minutes"] = round((time.monotonic() - start) / 60, 2)
    return out
