"""The options of one benchmark run (``monai-imc bench``'s flags), shared by the run and its Ray workers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BenchSettings"]


@dataclass
class BenchSettings:
    """The options of a run (the command line's flags).

    Attributes:
        model: bundle folder, checkpoint folder or hub id; ``bank``: its prototype bank folder.
        datasets: ``slake:PATH``, ``vqa-rad:PATH`` or ``jsonl:FILE`` specs; ``split``: the split to test.
        noises / severities / methods: what to run (``methods`` from :data:`~monai_imc.bench.runner.METHODS`).
        limit: at most this many questions per dataset (a seeded, stratified subset; 0: all).
        denoiser: the denoise filter; ``None``: chosen on the validation split.
        denoise_questions: closed validation questions per dataset for that choice (0: all).
        out: the results folder (its ``cache.jsonl`` makes a run resumable).
        text_server: an OpenAI-compatible server (vLLM) for the text agents (SMS and repass); ``None``:
            the local model.
        sms_prompts: ``reference`` (what the bundled reference model was trained on) or ``instructed``
            (kind-specific instructions for large chat models); ``None``: ``reference`` for a bundle,
            ``instructed`` otherwise.
        answer_suffix: appended to every question put to the model.
        threads: torch CPU threads (0: torch's default).
        leave_out: an image noise the prototype bank is used without (:meth:`PrototypeBank.without`): the
            leave-one-noise-out run; the noise's conditions still run.
        ray: answer with Ray workers (:mod:`monai_imc.bench.scale`), image by image; the records are those of
            the single-process run. ``ray_workers``: how many (0: one per CPU Ray offers).
    """

    model: str
    datasets: Sequence[str]
    out: str | Path
    bank: str | None = None
    split: str = "test"
    noises: Sequence[str] = ()
    severities: Sequence[int] = (3,)
    methods: Sequence[str] = ("none",)
    limit: int = 0
    seed: int = 0
    image_size: int = 256
    max_new_tokens: int = 12
    batch_size: int = 16
    denoiser: str | None = None
    denoise_questions: int = 48
    device: str | None = None
    dtype: str | None = None
    threads: int = 0
    text_server: str | None = None
    sms_prompts: str | None = None
    answer_suffix: str = ""
    command: str = ""
    leave_out: str | None = None
    ray: bool = False
    ray_workers: int = 0
    ray_address: str | None = None
