"""The noise catalog read from source equals the imported classes' attributes."""

from __future__ import annotations

import importlib

from monai_imc.noise.catalog import BUILTIN_MODULES, read_catalog
from monai_imc.noise.registry import NoiseSpec, get_noise, list_noises


def test_catalog_equals_the_classes() -> None:
    for module_name in BUILTIN_MODULES:
        entries = read_catalog(module_name)
        assert entries, f"{module_name}: its source is read without importing it"
        module = importlib.import_module(module_name)
        for entry in entries:
            cls = getattr(module, entry.class_name)
            assert (entry.name, entry.modality, entry.cause, entry.levels) == (
                cls.name,
                cls.modality,
                cls.cause,
                tuple(cls.levels),
            )
            assert get_noise(entry.name).transform is cls


def test_every_registered_class_is_catalogued() -> None:
    catalogued = {e.name for m in BUILTIN_MODULES for e in read_catalog(m) or []}
    for module_name in BUILTIN_MODULES:
        importlib.import_module(module_name)
    assert set(list_noises()) >= catalogued
    builtin = {n for n in list_noises() if get_noise(n).transform.__module__ in BUILTIN_MODULES}
    assert builtin == catalogued


def test_a_source_that_is_not_literal_is_imported_instead(tmp_path, monkeypatch) -> None:
    package = tmp_path / "imc_probe_noises"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "computed.py").write_text(
        "from monai_imc.noise.registry import register_noise\n"
        "from monai_imc.noise.text import KeyboardTypos\n"
        "@register_noise\n"
        "class Computed(KeyboardTypos):\n"
        "    name = 'test_computed'\n"
        "    levels = tuple({'rate': r} for r in (0.1, 0.2, 0.3, 0.4, 0.5))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert read_catalog("imc_probe_noises.computed") is None
    assert read_catalog("imc_probe_noises.missing") is None
    spec = NoiseSpec("x", "text", "a cause", ({},) * 5, "monai_imc.noise.text:KeyboardTypos")
    assert spec.transform.__name__ == "KeyboardTypos"
