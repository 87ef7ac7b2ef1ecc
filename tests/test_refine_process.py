"""SMS in the worker process beside the encode (monai_imc.refine.process): a copy of the bundle's refiner there
refines as the refiner here does, takes the settings of every call, and the refiner here answers until the copy
is ready or where it fails. The bundle is the shipped one (its real model and vocabularies)."""

from __future__ import annotations

import dataclasses

import logging
from pathlib import Path

import pytest
from helpers import SMS_TEXTS as TEXTS

from monai_imc.bundle import bundle_parser
from monai_imc.pipeline import IMCPipeline
from monai_imc.refine.process import RefinerProcess, settings_of

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "monai_imc_vqa"


@pytest.fixture(scope="module")
def copied(bundled):
    process = bundled.pipeline.refine_process
    assert isinstance(process, RefinerProcess), "the bundle refines beside the encode in a process on the CPU"
    process.start().result(timeout=300)
    return process


def test_the_copy_refines_as_the_refiner_here(bundled, copied, monkeypatch: pytest.MonkeyPatch) -> None:
    here = [bundled.refiner.refine(t) for t in TEXTS]

    def not_here(text: str):
        raise AssertionError("refined in the caller's process")

    monkeypatch.setattr(bundled.refiner, "refine", not_here)
    there = [copied.refine(t) for t in TEXTS]
    assert copied.ready
    # the same refinements; the likelihoods to float precision (the two processes may sum in another order)
    assert [dataclasses.replace(r, scores={}) for r in there] == [dataclasses.replace(r, scores={}) for r in here]
    assert [r.scores for r in there] == [pytest.approx(r.scores, rel=1e-6) for r in here]
    assert [r.text for r in there][1:3] == [
        "Is there a pneumothorax in the lft lung?",
        "Does the picture contain any abnormality?",
    ], "the noisy texts are repaired there as here"


def test_every_call_takes_the_refiners_settings(bundled, copied, monkeypatch: pytest.MonkeyPatch) -> None:
    noisy = TEXTS[2]
    assert copied.refine(noisy).changed
    monkeypatch.setattr(bundled.refiner, "accept_margin", float("inf"))  # no repair is ever accepted
    assert settings_of(bundled.refiner)["accept_margin"] == float("inf")
    assert not copied.refine(noisy).changed and not bundled.refiner.refine(noisy).changed
    monkeypatch.undo()
    assert copied.refine(noisy).changed, "and the copy follows the setting back"


def test_the_refiner_here_answers_until_the_copy_is_ready(bundled) -> None:
    process = RefinerProcess(bundled.refiner, BUNDLE)
    assert not process.ready
    assert process.refine(TEXTS[1]) == bundled.refiner.refine(TEXTS[1]), "no wait for a second model"
    process.start().result(timeout=300)  # the first refine started the copy (shared with the bundle's)
    assert process.ready


def test_a_copy_that_cannot_be_built_leaves_the_work_here(
    bundled, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    process = RefinerProcess(bundled.refiner, tmp_path)  # no bundle there
    with pytest.raises(FileNotFoundError):
        process.start().result(timeout=300)
    with caplog.at_level(logging.WARNING, logger="monai_imc.refine.process"):
        assert process.refine(TEXTS[1]) == bundled.refiner.refine(TEXTS[1])
    assert "refines in this process from now on" in caplog.text and not process.ready


def test_the_copys_own_errors_reach_the_caller_and_the_copy_refines_on(bundled, copied) -> None:
    with pytest.raises(ValueError, match="empty"):
        copied.refine("   ")
    assert copied.ready and copied.refine(TEXTS[1]) == bundled.refiner.refine(TEXTS[1])


def test_a_pipeline_refuses_a_copy_of_another_refiner(bundled) -> None:
    other = RefinerProcess(bundled.refiner, BUNDLE)
    with pytest.raises(ValueError, match="own refiner"):
        IMCPipeline(bundled.pipeline.model, None, refiner=None, refine_process=other)


def test_the_bundle_refines_in_a_process_on_the_cpu_only() -> None:
    for device, expected in (("cpu", True), ("cuda", False)):
        parser = bundle_parser(BUNDLE, {"device": device})
        parser["refiner"] = "$None"  # the copy's own construction is not what is tested here
        assert isinstance(parser.get_parsed_content("refine_process"), RefinerProcess) is expected
