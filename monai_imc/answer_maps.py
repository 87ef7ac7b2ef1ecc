"""PDC maps fitted on the model's own answers: the ``"answer"`` calibration variant.

The bank's ridge maps (:mod:`monai_imc.bank_build`) regress the clean token on the noisy one. The best guess
in token distance is the conditional mean, a token pulled toward the average of its class, and the language
model reads such tokens badly: on the reference model's held-out validation images, ridge maps in the
projector's reading space at full strength lost more answers than they won (``docs/method.md``, "Maps fitted
on the answers"). These maps are fitted on what matters instead: the model's answer loss on its training
questions, asked about the noisy copies of the bank's training images, the whole model frozen.

**Where the map acts.** A LLaVA projector reads a token ``x`` only through its first linear layer,
``z = x W^T`` (the *reading space*, as wide as the projector's output). Per noise ``n`` and severity ``k`` the
map moves ``z`` by ``z A_{n,k} + c_{n,k}`` and the token by the smallest change the projector reads as that
move: ``x' = x + s (x W^T A + c) L`` with ``L = (W W^T)^{-1} W``, so ``x' W^T = z + s (z A + c)``. ``A`` and
``c`` start at zero (no change) and are fitted by Adam on the cross-entropy of the reference answers
(:func:`monai_imc.models.answer_loss.answer_forward`), each batch a random draw of questions and
severities, one noise at a time. The strength ``s`` of each noise and severity is 1 when fitted; the
model's validation answers scale it (``bench/choose_pdc_strength.py``), as they do the ridge strengths.

**Which levels, and when to stop.** Only the levels the bank calibrates are fitted (from
:meth:`~monai_imc.prototypes.PrototypeBank.calibrates_from`: a level the strengths switch off would only take
steps from the others); the maps of the other levels stay zero. Where held-out questions are given, their
answer loss is measured every ``eval_every`` steps and each noise keeps the maps of its lowest held-out loss,
the zero maps (no calibration) included: maps of about 66,000 numbers a level fitted on a few hundred images
overfit, and a noise whose maps never beat no map is left uncalibrated rather than harmed.

The bank keeps ``answer_maps`` ``(N, S, r + 1, r)`` (the bias as the last row), ``answer_basis`` ``(D, r)``
(``W^T``), ``answer_lift`` ``(r, D)`` (``L``) and ``answer_strength`` ``(N, S)``; the manifest's
``choices.answer_maps`` records how they were fitted and the answer loss before and after, on the bank's
validation images where questions about them were given.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from monai_imc.atomic import atomic_output
from monai_imc.bank_build import encode_variants
from monai_imc.models.answer_loss import answer_forward
from monai_imc.models.base import VisionLanguageModel
from monai_imc.prompts import vqa_prompt
from monai_imc.prototypes import PrototypeBank, model_fingerprint, reader_fingerprint

__all__ = ["AnswerQuestion", "bank_questions", "fit_answer_maps", "reading_space"]


@dataclass(frozen=True)
class AnswerQuestion:
    """One training question about one of the fitting images.

    Attributes:
        image: index of the image in the views given to :func:`fit_answer_maps`.
        question: the question as the model is asked it.
        answer: the reference answer.
    """

    image: int
    question: str
    answer: str


def bank_questions(
    bank: PrototypeBank, specs: Sequence[str], size: int = 256
) -> tuple[tuple[list[np.ndarray], list[AnswerQuestion]], tuple[list[np.ndarray], list[AnswerQuestion]]]:
    """The views of the bank's training and validation images and the training questions about them.

    Args:
        bank: a bank whose manifest lists its images (``images.train``, ``images.validation``: file paths).
        specs: datasets whose ``train`` split holds the questions (``slake:PATH``, ``vqa-rad:PATH``, ``jsonl:FILE``).
        size: the views' longest side, as the bank was built.

    Returns:
        ``((views, questions), (validation views, validation questions))``; an image without a question (e.g.
        a site's own reference image) is left out.
    """
    from monai_imc.data import load_dataset, load_view

    by_file: dict[str, list[Any]] = {}
    for spec in specs:
        for row in load_dataset(spec, "train"):
            by_file.setdefault(str(Path(row.image).resolve()), []).append(row)

    def asked(files: Sequence[str]) -> tuple[list[np.ndarray], list[AnswerQuestion]]:
        views: list[np.ndarray] = []
        questions: list[AnswerQuestion] = []
        for f in files:
            about = by_file.get(str(Path(f).resolve()), [])
            if about:
                views.append(load_view(f, size))
                questions += [AnswerQuestion(len(views) - 1, r.question, r.answer) for r in about]
        return views, questions

    images = bank.manifest.get("images", {})
    return asked(images.get("train", [])), asked(images.get("validation", []))


def reading_space(model: VisionLanguageModel) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """The projector's reading space: ``(basis (D, r), lift (r, D), project)``.

    ``project`` turns reading-space tokens ``z`` into the language model's image tokens exactly as the
    projector turns ``x`` with ``z = x @ basis``. A first layer at least as wide as the tokens reads all of
    them: the reading space is then the tokens themselves (``basis`` and ``lift`` the identity).

    Raises:
        ValueError: the model has no two-layer LLaVA projector (``linear_1``, ``act``, ``linear_2``).
    """
    projector = getattr(model, "projector", None)
    if projector is None or not all(hasattr(projector, n) for n in ("linear_1", "act", "linear_2")):
        raise ValueError(
            f"answer-fitted PDC maps need a two-layer LLaVA projector; {type(model).__name__} has none "
            "(use the bank's ridge maps)"
        )
    weight = projector.linear_1.weight.detach().float().cpu()  # (r, D)
    if weight.shape[0] >= weight.shape[1]:  # the projector reads every direction of a token: move the token
        eye = torch.eye(weight.shape[1])
        return eye, eye.clone(), projector
    basis = weight.T.contiguous()
    lift = torch.linalg.solve((weight @ weight.T).double(), weight.double()).float()
    bias = projector.linear_1.bias

    def project(z: torch.Tensor) -> torch.Tensor:
        shifted = z if bias is None else z + bias.to(z.dtype)
        return projector.linear_2(projector.act(shifted))

    return basis, lift, project


def _examples(model: VisionLanguageModel, questions: Sequence[AnswerQuestion], placeholder: str) -> list[tuple[int, list[int], list[int]]]:
    """``(image, prompt ids, answer ids)`` of each question, the prompt exactly as the model is asked it."""
    tokenizer = model.tokenizer  # type: ignore[attr-defined]
    out = []
    for q in questions:
        text = model.build_prompt(vqa_prompt(q.question), 1)  # type: ignore[attr-defined]
        prompt = model.text_inputs(text, [placeholder])["input_ids"][0].tolist()  # type: ignore[attr-defined]
        answer = tokenizer(" " + q.answer.lower(), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        out.append((q.image, prompt, answer))
    return out


def _reading_tokens(
    model: VisionLanguageModel, bank: PrototypeBank, views: Sequence[np.ndarray], basis: torch.Tensor, seed: int,
    levels: Sequence[int], bar: Any,
) -> tuple[torch.Tensor, str]:
    """``(images, 1 + N x L, T, r)`` reading-space tokens (float16) of every view clean and under every noise
    of the bank at the ``levels`` fitted, and the placeholder text of one image."""
    chunks, placeholder = [], ""
    for index, view in enumerate(views):
        triples = encode_variants(model, view, index, bank.noises, levels, seed, physics=False)
        chunks.append(torch.stack([(t.float() @ basis).half() for _, t, _ in triples]))
        if not placeholder:
            placeholder = model.encode_images([view]).placeholders[0]
        bar.update(1)
    return torch.stack(chunks), placeholder


def _cached_reading_tokens(
    cache: Path | None, identity: dict[str, Any], encode: Callable[[], tuple[torch.Tensor, torch.Tensor | None, str]],
) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """The fitting and held-out reading tokens from ``cache`` when it was written for ``identity``, else
    encoded (and written there, whole or not at all)."""
    if cache is not None and cache.is_file():
        stored = torch.load(cache, map_location="cpu", weights_only=True)
        if stored.get("identity") == json.dumps(identity, sort_keys=True):
            return stored["train"], stored.get("held"), stored["placeholder"]
    tokens, held, placeholder = encode()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(cache) as tmp:
            torch.save({"identity": json.dumps(identity, sort_keys=True), "train": tokens, "held": held,
                        "placeholder": placeholder}, tmp)
    return tokens, held, placeholder


def fit_answer_maps(
    model: VisionLanguageModel,
    bank: PrototypeBank,
    views: Sequence[np.ndarray],
    questions: Sequence[AnswerQuestion],
    validation_views: Sequence[np.ndarray] = (),
    validation_questions: Sequence[AnswerQuestion] = (),
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = False,
    levels: Sequence[int] | None = None,
    eval_every: int = 50,
    token_cache: str | Path | None = None,
) -> PrototypeBank:
    """A copy of ``bank`` with PDC maps fitted on the model's answers (see the module docstring).

    Args:
        model: the model the bank belongs to (a LLaVA-family adapter).
        bank: its prototype bank (its noises and severities are fitted).
        views: the fitting images (the bank's training images), as the model's views.
        questions: training questions about them (``AnswerQuestion.image`` indexes ``views``).
        validation_views, validation_questions: held-out images and their questions, only to record the
            answer loss before and after the fit (nothing is chosen on them here).
        steps: Adam steps per noise.
        batch_size: questions per step, each at a random severity.
        lr: Adam's learning rate.
        seed: seeds the noisy copies and the draws.
        progress: show a progress bar.
        levels: the severities fitted (default: those the bank calibrates,
            :meth:`~monai_imc.prototypes.PrototypeBank.calibrates_from` of the ``answer`` variant); the maps of
            the others stay zero.
        eval_every: with held-out questions, measure their answer loss every so many steps and keep, per
            noise, the maps of the lowest (the zero maps included); 0 keeps the last step's maps.
        token_cache: a file for the views' reading-space tokens (every noisy copy encoded once), reused by a
            later fit of the same model, bank, images, levels and seed.

    Raises:
        ValueError: no questions, a question about an image not given, a level the bank does not have, or a
            model without a LLaVA projector.
    """
    if not questions:
        raise ValueError("fitting PDC maps on answers needs training questions about the bank's images")
    for asked, pool in ((questions, views), (validation_questions, validation_views)):
        for q in asked:
            if not 0 <= q.image < len(pool):
                raise ValueError(f"question {q.question!r} names image {q.image}, but {len(pool)} images were given")
    basis, lift, project = reading_space(model)
    rank, n_sev = basis.shape[1], len(bank.severities)
    if levels is None:
        levels = [s for s in bank.severities if s >= bank.calibrates_from("answer")]
    missing = sorted(set(levels) - set(bank.severities))
    if missing or not levels:
        raise ValueError(f"levels {list(levels)} to fit: the bank has severities {list(bank.severities)}")
    fitted_levels = sorted(set(levels))
    slots = [list(bank.severities).index(s) for s in fitted_levels]  # where each fitted level's maps go
    hf = model.model  # type: ignore[attr-defined]
    first = next(hf.parameters())
    device, dtype = first.device, first.dtype  # the fit runs where the model is (a GPU in bfloat16 too)
    pad = int(model.tokenizer.pad_token_id)  # type: ignore[attr-defined]
    bar = tqdm(total=len(views) + len(validation_views) + steps * len(bank.noises), desc="answer-fitted maps (views, then steps)",
               disable=not progress, unit="item")

    def encode() -> tuple[torch.Tensor, torch.Tensor | None, str]:
        tokens, placeholder = _reading_tokens(model, bank, views, basis, seed, fitted_levels, bar)
        held = (_reading_tokens(model, bank, validation_views, basis, seed + 1, fitted_levels, bar)[0]
                if validation_questions else None)
        return tokens, held, placeholder

    identity = {"reader": reader_fingerprint(model), "tower": model_fingerprint(model), "noises": list(bank.noises),
                "levels": fitted_levels, "seed": seed, "views": _views_digest(views),
                "validation_views": _views_digest(validation_views) if validation_questions else None}
    tokens, held, placeholder = _cached_reading_tokens(Path(token_cache) if token_cache else None, identity, encode)
    bar.update(len(views) + len(validation_views) - bar.n)
    n_fit = len(fitted_levels)
    train = _examples(model, questions, placeholder)
    check = _examples(model, validation_questions, placeholder)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    maps = torch.zeros(len(bank.noises), n_sev, rank + 1, rank)
    curves: dict[str, list[list[float]]] = {}
    frozen = [(p, p.requires_grad) for p in hf.parameters()]
    was_training = hf.training
    for p, _ in frozen:
        p.requires_grad_(False)
    hf.eval()

    def loss_of(items: list[tuple[int, list[int], list[int], int]], noise: int, a: torch.Tensor, c: torch.Tensor,
                source: torch.Tensor) -> torch.Tensor:
        z = torch.stack([source[i, 1 + noise * n_fit + k].float() for i, _, _, k in items]).to(device)
        k = torch.tensor([k for *_, k in items], device=device)
        moved = (z + torch.bmm(z, a[k]) + c[k][:, None, :]).to(dtype)  # the maps in float32, the model's dtype
        loss, _ = answer_forward(hf, [(j, p, t) for j, (_, p, t, _) in enumerate(items)], moved, pad, project=project)
        return loss

    record: dict[str, Any] = {}
    try:
        for noise_index, noise in enumerate(bank.noises):
            a = torch.zeros(n_fit, rank, rank, device=device, requires_grad=True)
            c = torch.zeros(n_fit, rank, device=device, requires_grad=True)
            optimiser = torch.optim.Adam([a, c], lr=lr)
            # each held-out question once, at a level that cycles through the fitted ones
            held_items = [(i, p, t, j % n_fit) for j, (i, p, t) in enumerate(check)]
            held_loss = partial(loss_of, noise=noise_index, a=a, c=c, source=held)
            before = _mean_loss(held_items, held_loss, batch_size) if held is not None else None
            best = (before, 0, a.detach().clone(), c.detach().clone())
            curve = [[0, round(before, 4)]] if before is not None else []
            for step in range(1, steps + 1):
                batch = [(*rng.choice(train), rng.randrange(n_fit)) for _ in range(batch_size)]
                loss = loss_of(batch, noise_index, a, c, tokens)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                bar.update(1)
                if held is not None and eval_every > 0 and (step % eval_every == 0 or step == steps):
                    now = _mean_loss(held_items, held_loss, batch_size)
                    curve.append([step, round(now, 4)])
                    if now < best[0]:
                        best = (now, step, a.detach().clone(), c.detach().clone())
            if held is None or eval_every <= 0:
                best = (None, steps, a.detach(), c.detach())
            kept_a, kept_c = best[2].cpu(), best[3].cpu()
            maps[noise_index, slots, :rank] = kept_a
            maps[noise_index, slots, rank] = kept_c
            if held is not None:
                after = best[0] if best[0] is not None else _mean_loss(held_items, held_loss, batch_size)
                record[noise] = {"validation_loss_before": round(before, 4), "validation_loss_after": round(after, 4),
                                 "kept_step": best[1]}
                curves[noise] = curve
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
        hf.train(was_training)
        bar.close()
    tensors = dict(bank.tensors)
    tensors.update({"answer_maps": maps, "answer_basis": basis, "answer_lift": lift,
                    "answer_strength": torch.ones(len(bank.noises), n_sev)})
    manifest = {**bank.manifest, "choices": {**bank.manifest.get("choices", {}), "answer_maps": {
        "objective": "cross-entropy of the reference answers of training questions about the noisy copies",
        "space": "the projector's reading space (its first linear layer)", "rank": rank,
        "steps_per_noise": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "levels": fitted_levels,
        "eval_every": eval_every, "validation_curve": curves,
        "images": len(views), "questions": len(questions), "validation_images": len(validation_views),
        "validation_questions": len(validation_questions), "validation_loss": record,
        "reader_sha256": reader_fingerprint(model)}}}
    return PrototypeBank(list(bank.noises), list(bank.severities), tensors, manifest)


def _views_digest(views: Sequence[np.ndarray]) -> str:
    """SHA-256 of the views' pixels and shapes (what a token cache was encoded from)."""
    digest = hashlib.sha256()
    for view in views:
        digest.update(str(view.shape).encode())
        digest.update(np.ascontiguousarray(view).tobytes())
    return digest.hexdigest()


def _mean_loss(items: list[Any], loss: Callable[[list[Any]], torch.Tensor], batch_size: int) -> float:
    """The mean of ``loss`` over ``items`` in batches, weighted by batch size (no gradients)."""
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            total += float(loss(chunk)) * len(chunk)
    return total / max(1, len(items))
