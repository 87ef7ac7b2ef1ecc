"""The app's shared context: finding the bundle, its settings, one model for every part."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO

from monai_imc.deploy.context import AppSettings, IMCContext, find_bundle

BUNDLE = REPO / "bundles" / "monai_imc_vqa"


def test_find_bundle_takes_the_bundle_or_the_folder_holding_it(tmp_path: Path) -> None:
    assert find_bundle(BUNDLE) == BUNDLE
    assert find_bundle(REPO / "bundles") == BUNDLE  # a MAP's models folder holds the bundle
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        find_bundle(tmp_path)
    for name in ("a", "b"):
        (tmp_path / name / "configs").mkdir(parents=True)
        (tmp_path / name / "configs" / "inference.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="2 bundles"):
        find_bundle(tmp_path)


def test_the_bundle_settings_reach_the_app(imc: IMCContext) -> None:
    assert imc.pipeline.model is imc.refiner.model
    assert imc.bundle == BUNDLE.resolve()
    assert imc.settings.standing_questions and imc.settings.sidecar_name == "imc_questions.json"
    assert imc.algorithm.model_id == "monai_imc_vqa/reference-vlm"
    assert imc.algorithm.bank_hash == f"sha256:{imc.pipeline.bank.bank_hash}"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"n_views": 0}, "n_views"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"ct_preset": "liver"}, "ct_preset"),
        ({"standing_questions": ("",)}, "standing questions"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AppSettings(**kwargs)  # type: ignore[arg-type]
