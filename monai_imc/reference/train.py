"""The reference model's training recipe (``monai-imc train-reference``).

One run, on CPU, seeded:

1. Data: SLAKE English train + validation and VQA-RAD train, minus a fixed 5% of the images
   (:func:`~monai_imc.reference.data.is_heldout_image`), whose questions are kept for the held-out
   evaluation of the agent roles. SLAKE test and VQA-RAD test are only read by the final evaluation.
2. Agent roles: judge (``clean`` or the noise kind) and rewrite (noisy -> clean question) pairs built
   from the training questions with the text noise library under training seeds, severities 1-5; one
   text noise (default ``ocr``) is held out of training entirely.
3. Tokenizer: byte-level BPE trained on the training text (questions, answers, role prompts).
4. Model: :func:`~monai_imc.reference.architecture.build_model`.
5. Vision warm-up: the ViT alone, with auxiliary heads predicting each training image's modality,
   body region, SLAKE location, organs present (``detection.json``) and their box centres, and (with
   ``answer_labels``) what the image's own training answers say (scan plane, normal or abnormal, organs
   present or absent). A tower to be frozen is taken from the warm-up step with the lowest auxiliary
   loss on the held-out images.
6. Joint training: answer loss on image questions (shift and intensity jitter), the same auxiliary
   vision loss, and the role loss on text-only batches; AdamW, warm-up then cosine decay. With
   ``freeze_vision`` the tower stays as the warm-up left it (no auxiliary loss then).
7. Save with ``save_pretrained`` (weights as safetensors, tokenizer, processor, chat template), a loss
   curve PNG, ``training_config.json`` and ``metrics.json`` from
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

from monai_imc.reference.architecture import ArchitectureConfig, build_model
from monai_imc.reference.data import (
    LOCATIONS,
    MODALITIES,
    ORGANS,
    PLANES,
    QUESTION_ORGANS,
    REGIONS,
    VQARow,
    agent_examples,
    image_labels,
    is_heldout_image,
    load_vqa,
    question_words,
)
from monai_imc.reference.prompts import vqa_prompt
from monai_imc.text_candidates import WORD_LIST

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "VisionAuxHeads", "train_reference", "training_rows"]

#: Where the recipe's bundled checkpoint lives in the repository.
BUNDLE_MODEL_DIR = "bundles/monai_imc_vqa/models/reference-vlm"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on (saved as ``training_config.json``).

    Attributes:
        data: the shared data folder (``slake/``, ``vqa_rad/``).
        out: output directory (the checkpoint, the PNG and the JSONs).
        blank_images: train (and evaluate) the no-image twin.
        seed: seed of initialisation, sampling, augmentation and role pairs.
        max_steps: joint training steps (the schedule's length).
        minutes: wall-time cap of the training loops; the run stops early (and says so) when it is hit.
        batch_size: image questions per step.
        agent_batch_size: role examples per step.
        lr: peak learning rate.
        warmup_steps: linear learning-rate warm-up of the joint phase.
        vision_warmup_steps: steps of the vision-only warm-up on the auxiliary labels.
        freeze_vision: keep the vision tower fixed after its warm-up, as LLaVA keeps its CLIP tower: the
            joint phase trains the projector and the language model only, so the answer loss cannot
            turn the tower's label-trained features into a memory of the few hundred training images.
            The frozen tower is the one of the warm-up step with the lowest auxiliary loss on the
            held-out images (measured every 50 steps).
        answer_labels: add the auxiliary labels read from each training image's own answers (scan
            plane, normal or abnormal, organs present or absent; :func:`~monai_imc.reference.data.answer_labels`).
        aux_weight: weight of the auxiliary vision loss in the joint phase (unused when frozen).
        agent_weight: weight of the role loss.
        heldout_noise: the text noise kept out of role training.
        noise_variants: noisy variants per training question and noise.
        limit: use only the first ``limit`` training rows (tests).
        eval_limit: evaluate on the first ``eval_limit`` rows of each test set (tests); ``None``: all.
        agent_eval_questions: held-out questions for the role evaluation.
        threads: torch CPU threads.
        arch: the model sizes.
    """

    data: str
    out: str
    blank_images: bool = False
    seed: int = 0
    max_steps: int = 1100
    minutes: float = 52.0
    batch_size: int = 32
    agent_batch_size: int = 8
    lr: float = 1e-3
    warmup_steps: int = 100
    vision_warmup_steps: int = 200
    freeze_vision: bool = False
    answer_labels: bool = False
    aux_weight: float = 0.5
    agent_weight: float = 1.0
    heldout_noise: str = "ocr"
    noise_variants: int = 2
    limit: int | None = None
    eval_limit: int | None = None
    agent_eval_questions: int = 150
    threads: int = 1
    arch: ArchitectureConfig = field(default_factory=ArchitectureConfig)


@dataclass(frozen=True)
class TrainResult:
    """What a run wrote and measured.

    Attributes:
        out: the checkpoint directory.
        steps: joint steps done.
        train_seconds: wall time of data preparation and training (evaluation excluded).
        total_seconds: wall time including the evaluation.
        metrics: the content of ``metrics.json``.
    """

    out: Path
    steps: int
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


class VisionAuxHeads(nn.Module):
    """Auxiliary heads on the mean of the projector's input tokens (dropped after training).

    Args:
        dim: width of the vision tokens.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.modality = nn.Linear(dim, len(MODALITIES))
        self.region = nn.Linear(dim, len(REGIONS))
        self.location = nn.Linear(dim, len(LOCATIONS))
        self.organs = nn.Linear(dim, len(ORGANS))
        self.centres = nn.Linear(dim, 2 * len(ORGANS))
        self.plane = nn.Linear(dim, len(PLANES))
        self.abnormal = nn.Linear(dim, 1)
        self.present = nn.Linear(dim, len(QUESTION_ORGANS))

    def loss(self, tokens: torch.Tensor, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        """The summed auxiliary loss of a batch.

        Args:
            tokens: ``(batch, tokens, dim)`` projector inputs.
            labels: ``modality``/``region``/``location``/``plane`` (class index or -1), ``organs``,
                ``abnormal`` and ``present`` (0/1, -1 where unknown), ``centres`` (``(batch, organs, 2)``,
                NaN where absent).

        Returns:
            The scalar loss.
        """
        pooled = tokens.mean(dim=1)
        total = tokens.new_zeros(())
        for name in ("modality", "region", "location", "plane"):
            target = labels[name]
            if (target >= 0).any():
                total = total + nn.functional.cross_entropy(getattr(self, name)(pooled), target, ignore_index=-1)
        for name in ("organs", "abnormal", "present"):
            target = labels[name]
            known = target >= 0
            if known.any():
                logits = getattr(self, name)(pooled)
                total = total + nn.functional.binary_cross_entropy_with_logits(logits[known], target[known].float())
        centres = labels["centres"]
        present = ~torch.isnan(centres)
        if present.any():
            pred = torch.sigmoid(self.centres(pooled)).view_as(centres)
            total = total + 4.0 * nn.functional.mse_loss(pred[present], centres[present])
        return total


class _Capture:
    """Forward pre-hook that keeps the projector's input (with its gradient)."""

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args: tuple) -> None:
        self.value = args[0]


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_pixels(paths: list[Path], processor: Any, blank: bool) -> torch.Tensor:
    """Pixel values of each image through the checkpoint's own image processor (black images if blank)."""
    from PIL import Image

    out = []
    for path in paths:
        if blank:
            image = Image.new("RGB", (256, 256))
        else:
            with Image.open(path) as im:
                image = im.convert("RGB")
        out.append(processor.image_processor(images=[image], return_tensors="pt")["pixel_values"][0])
    return torch.stack(out)


def _augment(pixels: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
    """Random +-``max_shift`` px translation (zero fill) and brightness/contrast jitter, no flips."""
    b, _, h, w = pixels.shape
    out = torch.zeros_like(pixels)
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=gen).tolist()
    for i, (dy, dx) in enumerate(shifts):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, :, yd, xd] = pixels[i, :, ys, xs]
    contrast = 1.0 + 0.2 * (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1)
    brightness = 0.2 * (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1)
    return out * contrast + brightness


def _label_tensors(labels: list[Any]) -> dict[str, torch.Tensor]:
    n = len(ORGANS)
    organs = torch.tensor([list(lb.organs) if lb.organs else [-1] * n for lb in labels], dtype=torch.long)
    centres = torch.full((len(labels), n, 2), float("nan"))
    for i, lb in enumerate(labels):
        for j, c in enumerate(lb.centres):
            if c is not None:
                centres[i, j] = torch.tensor(c)
    return {
        "modality": torch.tensor([lb.modality for lb in labels], dtype=torch.long),
        "region": torch.tensor([lb.region for lb in labels], dtype=torch.long),
        "location": torch.tensor([lb.location for lb in labels], dtype=torch.long),
        "organs": organs,
        "centres": centres,
        "plane": torch.tensor([lb.plane for lb in labels], dtype=torch.long),
        "abnormal": torch.tensor([[lb.abnormal] for lb in labels], dtype=torch.long),
        "present": torch.tensor(
            [list(lb.present) if lb.present else [-1] * len(QUESTION_ORGANS) for lb in labels], dtype=torch.long
        ),
    }


def _image_tensors(
    rows: list[VQARow], processor: Any, config: TrainConfig
) -> tuple[list[str], torch.Tensor, dict[str, torch.Tensor]]:
    """The distinct images of ``rows`` (sorted keys), their pixels and their auxiliary labels."""
    by_image: dict[str, list[VQARow]] = {}
    for r in rows:
        by_image.setdefault(r.image_key, []).append(r)
    keys = sorted(by_image)
    pixels = _load_pixels([by_image[k][0].image for k in keys], processor, config.blank_images)
    answers = {k: by_image[k] if config.answer_labels else [] for k in keys}
    labels = _label_tensors([image_labels(by_image[k][0], answers[k]) for k in keys])
    return keys, pixels, labels


def _chat_text(tokenizer: Any, template: str, content: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], chat_template=template, tokenize=False, add_generation_prompt=True
    )


def _pad(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad (prompt, target) id lists into input_ids / attention_mask / labels (prompt masked)."""
    length = max(len(p) + len(t) for p, t in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    labels = torch.full((len(sequences), length), -100, dtype=torch.long)
    for i, (p, t) in enumerate(sequences):
        n = len(p) + len(t)
        ids[i, :n] = torch.tensor(p + t)
        mask[i, :n] = 1
        labels[i, len(p) : n] = torch.tensor(t)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def _plot_losses(history: dict[str, list[tuple[int, float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in history.items():
        if not points:
            continue
        steps, values = zip(*points)
        window = max(1, len(values) // 50)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, label=name)
    ax.set_xlabel("step (vision warm-up steps negative)")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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

    from monai_imc.models.tiny import LLAVA_CHAT_TEMPLATE, llava_processor, train_tokenizer
    from monai_imc.noise import list_noises
    from monai_imc.reference.evaluate import evaluate_checkpoint

    start = time.monotonic()
    text_noises = list_noises("text")
    if config.heldout_noise not in text_noises:
        raise ValueError(f"heldout_noise {config.heldout_noise!r} is not a text noise; choose from {text_noises}.")
    trained_noises = [n for n in text_noises if n != config.heldout_noise]
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
        rows = rows[: config.limit]
    if not rows:
        raise ValueError(f"No training rows found under {config.data!r}.")
    questions = [r.question for r in rows]
    agents = agent_examples(questions, trained_noises, seed=config.seed, variants=config.noise_variants)
    logger.info("%d training questions, %d role examples (noises %s)", len(rows), len(agents), trained_noises)

    corpus = [r.question for r in rows] + [r.answer.lower() for r in rows] + [a.prompt for a in agents]
    tokenizer = train_tokenizer("llava", corpus, vocab_size=arch.vocab_size, seed=config.seed)
    processor = llava_processor(tokenizer, image_size=arch.image_size, patch_size=arch.patch_size)
    model = build_model(arch, tokenizer)
    model.train()
    heads = VisionAuxHeads(arch.vision_hidden)

    # ---------------------------------------------------------------- tensors
    keys, pixels, labels = _image_tensors(rows, processor, config)
    key_index = {k: i for i, k in enumerate(keys)}
    placeholder = "<image>" * arch.image_tokens
    prompt_ids: dict[str, list[int]] = {}
    vqa: list[tuple[int, list[int], list[int]]] = []
    eos = [tokenizer.eos_token_id]
    for r in rows:
        if r.question not in prompt_ids:
            text = _chat_text(
                tokenizer, LLAVA_CHAT_TEMPLATE, [{"type": "image"}, {"type": "text", "text": vqa_prompt(r.question)}]
            )
            prompt_ids[r.question] = tokenizer(text.replace("<image>", placeholder))["input_ids"]
        answer = tokenizer(" " + r.answer.lower(), add_special_tokens=False)["input_ids"] + eos
        vqa.append((key_index[r.image_key], prompt_ids[r.question], answer))
    role: list[tuple[list[int], list[int]]] = []
    for a in agents:
        text = _chat_text(tokenizer, LLAVA_CHAT_TEMPLATE, [{"type": "text", "text": a.prompt}])
        role.append(
            (tokenizer(text)["input_ids"], tokenizer(" " + a.target, add_special_tokens=False)["input_ids"] + eos)
        )
    pad_id = int(tokenizer.pad_token_id)
    gen = torch.Generator().manual_seed(config.seed)
    max_shift = max(1, arch.image_size // 16)
    capture = _Capture()
    hook = model.model.multi_modal_projector.register_forward_pre_hook(capture)
    history: dict[str, list[tuple[int, float]]] = {
        "vision warm-up (aux)": [],
        "vision warm-up (aux, held-out images)": [],
        "answer": [],
        "aux": [],
        "roles": [],
    }
    heldout_keys, heldout_pixels, heldout_labels = _image_tensors(heldout, processor, config)
    deadline = start + 60.0 * config.minutes
    stopped_early = False

    # ---------------------------------------------------------------- vision warm-up
    vision = model.model.vision_tower
    warm_params = list(vision.parameters()) + list(heads.parameters())
    warm_opt = torch.optim.AdamW(warm_params, lr=config.lr, weight_decay=0.01)
    layer = model.config.vision_feature_layer
    best_heldout, best_vision = float("inf"), None
    for step in tqdm(range(config.vision_warmup_steps), desc="vision warm-up", mininterval=5):
        if time.monotonic() > deadline:
            stopped_early = True
            break
        idx = torch.randint(0, len(keys), (min(64, len(keys)),), generator=gen)
        px = _augment(pixels[idx], gen, max_shift)
        hidden = vision(px, output_hidden_states=True).hidden_states[layer][:, 1:]
        loss = heads.loss(hidden, {k: v[idx] for k, v in labels.items()})
        for g in warm_opt.param_groups:
            g["lr"] = config.lr * _lr_factor(step, config.vision_warmup_steps, 20)
        warm_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(warm_params, 1.0)
        warm_opt.step()
        history["vision warm-up (aux)"].append((step - config.vision_warmup_steps, float(loss.detach())))
        if heldout_keys and (step % 50 == 49 or step == config.vision_warmup_steps - 1):
            with torch.no_grad():
                hidden = vision(heldout_pixels, output_hidden_states=True).hidden_states[layer][:, 1:]
                held = float(heads.loss(hidden, heldout_labels))
            history["vision warm-up (aux, held-out images)"].append((step - config.vision_warmup_steps, held))
            if held < best_heldout:
                best_heldout = held
                best_vision = {k: v.detach().clone() for k, v in vision.state_dict().items()}
    if config.freeze_vision and best_vision is not None:
        # The tower from the warm-up step with the lowest auxiliary loss on the held-out images: the
        # aux labels of a few hundred images are easy to memorise, and the joint phase should start
        # from features that generalise.
        vision.load_state_dict(best_vision)

    # ---------------------------------------------------------------- joint training
    if config.freeze_vision:
        vision.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    if not config.freeze_vision:
        params += list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.01)
    steps_done = 0
    bar = tqdm(range(config.max_steps), desc="train-reference", mininterval=5)
    for step in bar:
        if stopped_early or time.monotonic() > deadline:
            stopped_early = True
            break
        for g in opt.param_groups:
            g["lr"] = config.lr * _lr_factor(step, config.max_steps, config.warmup_steps)
        pick = torch.randint(0, len(vqa), (min(config.batch_size, len(vqa)),), generator=gen).tolist()
        batch = _pad([(vqa[i][1], vqa[i][2]) for i in pick], pad_id)
        img = torch.tensor([vqa[i][0] for i in pick])
        px = _augment(pixels[img], gen, max_shift)
        answer_loss = model(**batch, pixel_values=px).loss
        total = answer_loss
        aux_loss = torch.zeros(())
        if not config.freeze_vision:
            aux_loss = heads.loss(capture.value, {k: v[img] for k, v in labels.items()})
            total = total + config.aux_weight * aux_loss
        role_loss = torch.zeros(())
        if role and config.agent_batch_size > 0:
            rpick = torch.randint(0, len(role), (config.agent_batch_size,), generator=gen).tolist()
            role_loss = model(**_pad([role[i] for i in rpick], pad_id)).loss
            total = total + config.agent_weight * role_loss
        opt.zero_grad()
        total.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        steps_done = step + 1
        history["answer"].append((step, float(answer_loss.detach())))
        if not config.freeze_vision:
            history["aux"].append((step, float(aux_loss.detach())))
        history["roles"].append((step, float(role_loss.detach())))
        if step % 20 == 0:
            bar.set_postfix({name: f"{history[name][-1][1]:.3f}" for name in ("answer", "aux", "roles") if history[name]})
    bar.close()
    hook.remove()
    train_seconds = time.monotonic() - start

    # ---------------------------------------------------------------- save
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (Path(out) / WORD_LIST).write_text("\n".join(question_words(rows + heldout)) + "\n", encoding="utf-8")
    arm = "no-image twin (blank images)" if config.blank_images else "real images"
    _plot_losses(history, out / "loss_curve.png", f"reference-vlm, {arm}, seed {config.seed}")
    record = asdict(config)
    record.update(
        trained_noises=trained_noises,
        heldout_images_percent=5,
        train_rows=len(rows),
        train_images=len(keys),
        role_examples=len(agents),
        heldout_rows=len(heldout),
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
        max_steps=config.max_steps,
        vision_warmup_steps=config.vision_warmup_steps,
        freeze_vision=config.freeze_vision,
        answer_labels=config.answer_labels,
        vision_heldout_aux_loss=(
            history["vision warm-up (aux, held-out images)"][-1][1]
            if history["vision warm-up (aux, held-out images)"]
            else None
        ),
        stopped_early=stopped_early,
        train_minutes=round(train_seconds / 60, 2),
        total_minutes=round(total_seconds / 60, 2),
        heldout_noise=config.heldout_noise,
        trained_noises=trained_noises,
        parameters=sum(p.numel() for p in model.parameters()),
        final_losses={k: float(np.mean([v for _, v in pts[-50:]])) for k, pts in history.items() if pts},
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    logger.info("Trained %d steps in %.1f min; wrote %s", steps_done, train_seconds / 60, out)
    return TrainResult(out, steps_done, train_seconds, total_seconds, metrics)
