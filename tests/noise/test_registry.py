"""The noise registry: names, modalities, causes, per-level parameters, errors."""

from __future__ import annotations

from typing import ClassVar

import pytest

from monai_imc.noise import get_noise, list_noises, parse_noise_list, register_noise
from monai_imc.noise.text import KeyboardTypos


def test_lists_image_and_text_noises() -> None:
    assert len(list_noises()) >= 11
    assert set(list_noises()) == set(list_noises("image")) | set(list_noises("text"))
    assert list_noises() == sorted(list_noises())


@pytest.mark.parametrize("name", list_noises())
def test_each_entry_describes_itself(name: str) -> None:
    spec = get_noise(name)
    assert spec.name == name and spec.modality in ("image", "text")
    assert spec.cause and "\n" not in spec.cause and len(spec.cause) < 140
    assert len(spec.levels) == 5
    assert all(set(level) == set(spec.levels[0]) for level in spec.levels), "every level has the same parameters"
    assert spec.parameters(3) == dict(spec.levels[2])
    assert type(spec.make(severity=2, seed=0)).__name__ == spec.transform.__name__


def test_unknown_noise_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown noise 'fog'.*motion"):
        get_noise("fog")
    with pytest.raises(ValueError, match="unknown noise 'fog'"):
        parse_noise_list("blur,fog")


def test_bad_modality_and_severity_are_named() -> None:
    with pytest.raises(ValueError, match="'video'"):
        list_noises("video")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="severity 0 is outside 1..5"):
        get_noise("blur").parameters(0)
    with pytest.raises(ValueError, match="'typo' is a text noise"):
        parse_noise_list("blur,typo", "image")


def test_parse_noise_list_all() -> None:
    assert parse_noise_list("all", "text") == list_noises("text")
    assert parse_noise_list(" blur , jpeg ") == ["blur", "jpeg"]


def test_a_new_noise_joins_without_changing_callers() -> None:
    @register_noise
    class ShoutingTypos(KeyboardTypos):
        name: ClassVar[str] = "test_shouting"

        def __call__(self, text: str, randomize: bool = True) -> str:
            return super().__call__(text, randomize).upper()

    try:
        assert "test_shouting" in list_noises("text")
        assert get_noise("test_shouting").apply("is there a mass?", severity=1).isupper()
        with pytest.raises(ValueError, match="already registered"):

            @register_noise
            class Clash(KeyboardTypos):
                name: ClassVar[str] = "test_shouting"

    finally:
        from monai_imc.noise import registry

        registry._REGISTRY.pop("test_shouting", None)
