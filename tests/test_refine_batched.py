"""SMS over several texts at once (SMSRefiner.refine_many, the app's refine stage): the assessor reads all of
them in batched forward passes, and every text gets the refinement it gets alone. The shipped bundle's model."""

from __future__ import annotations

import pytest
from helpers import SMS_TEXTS as TEXTS


def test_a_studys_texts_are_assessed_together_as_each_alone(bundled, monkeypatch: pytest.MonkeyPatch) -> None:
    refiner, model = bundled.refiner, bundled.refiner.model
    alone = [refiner.refine(t) for t in TEXTS]
    rows = [model.prompt_logprobs(refiner._context + t) for t in TEXTS]
    together = model.prompt_logprobs_many([refiner._context + t for t in TEXTS])
    for one, batched in zip(rows, together):  # the same tokens and offsets, log-probabilities to rounding
        assert [r[0] for r in one] == [r[0] for r in batched] and [r[2:] for r in one] == [r[2:] for r in batched]
        assert max(abs((a[1] or 0.0) - (b[1] or 0.0)) for a, b in zip(one, batched)) < 1e-4
    batches = []
    real = model.prompt_logprobs_many
    monkeypatch.setattr(model, "prompt_logprobs_many", lambda prompts: batches.append(len(prompts)) or real(prompts))
    many = refiner.refine_many(TEXTS)
    assert batches[0] == len(TEXTS), "one batched assessment of every text"
    assert [(r.text, r.edits, r.kind, r.calls) for r in many] == [(r.text, r.edits, r.kind, r.calls) for r in alone]
