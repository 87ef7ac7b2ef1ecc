"""IMCPipeline is the method: its steps, and run() with refine returning every intermediate result."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from monai_imc.pipeline import IMCPipeline
from monai_imc.prototypes import PrototypeBank, corrupt
from monai_imc.refine import SMSRefiner


def test_run_is_the_steps_in_order_with_refine(bank: PrototypeBank, tiny_llava, views) -> None:
    forced = dataclasses.replace(
        bank, tensors={**bank.tensors, "strength": torch.ones_like(bank.tensors["strength"])}
    )
    refiner = SMSRefiner(tiny_llava, max_rounds=1)
    pipeline = IMCPipeline(tiny_llava, forced, refiner=refiner)
    pipeline.perceiver.gate_threshold = 0.0  # flag everything, so calibration runs
    noisy = corrupt(views[1], "rician", 5, 3)
    text = "What modalty is this?"
    result = pipeline.run(noisy, text, max_new_tokens=6)

    features = pipeline.encode([noisy])
    perception = pipeline.perceive(features, views=[noisy])[0]  # run() gives the perceiver the view too
    calibrated, records = pipeline.calibrate(features, [perception])
    refinement = refiner.refine(text)
    assert result.text == text and result.refinement == refinement and result.question == refinement.text
    assert result.perception == perception and result.calibration == records[0] and records[0].applied
    assert torch.equal(result.features.tokens[0], calibrated.tokens[0])
    assert result.answer == pipeline.generate(calibrated, refinement.text, max_new_tokens=6)
    # the batched answer step agrees with the single one
    ((batched, probability),) = pipeline.generate_many([calibrated], [refinement.text], max_new_tokens=6)
    assert batched == result.answer and 0.0 <= probability <= 1.0

    plain = pipeline.run(noisy, text, pdc=False, refine=False, max_new_tokens=6)
    assert plain.refinement is None and plain.question == text and plain.calibration.reason == "disabled"
    assert torch.equal(plain.features.tokens[0], features.tokens[0])
    legacy = pipeline.answer(noisy, text, pdc=False, max_new_tokens=6)
    assert (legacy.answer, legacy.calibration, legacy.pdc) == (plain.answer, plain.calibration, False)


def test_missing_parts_are_named(tiny_llava, views) -> None:
    pipeline = IMCPipeline(tiny_llava, None)
    features = pipeline.encode([views[0]])
    with pytest.raises(RuntimeError, match="prototype bank"):
        pipeline.perceive(features)
    with pytest.raises(RuntimeError, match="SMS refiner"):
        pipeline.refine("Is it normal?")
    out, records = pipeline.calibrate(features, [None], pdc=False)  # PDC off needs no bank
    assert out is features and records[0].reason == "disabled"


def test_run_refines_on_the_text_worker_while_the_image_is_encoded(bank: PrototypeBank, tiny_llava, views) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    refiner = SMSRefiner(tiny_llava, max_rounds=1)
    seen: list[str] = []
    real = refiner.refine

    def spy(text: str):  # the real refinement, recording the thread it ran on
        seen.append(threading.current_thread().name)
        return real(text)

    refiner.refine = spy  # type: ignore[method-assign]
    pipeline = IMCPipeline(tiny_llava, bank, refiner=refiner)
    result = pipeline.run(views[0], "Is the lung normal?", max_new_tokens=4)
    assert seen and seen[0].startswith("imc-text") and result.refinement == real("Is the lung normal?")
    # text-only calls do not wait for an image call: they score while another thread holds the image lock
    with tiny_llava._lock, ThreadPoolExecutor(1) as pool:
        scored = pool.submit(tiny_llava.prompt_logprobs, "USER: Is the lung normal?")
        assert len(scored.result(timeout=60)) > 3
