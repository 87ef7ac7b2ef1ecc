"""Ray scale-out: a sweep answered by Ray workers gives exactly the single-process run's records.

Ray runs for real here (a local instance with 2 CPUs); the model is the bundled reference model, the
questions a few real SLAKE / VQA-RAD ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import ray
from helpers import REPO

from monai_imc.bench.benchmark import BenchSettings, run_benchmark
from monai_imc.bench.scale import image_blocks, start_ray
from monai_imc.data import load_dataset

BUNDLE = REPO / "bundles" / "monai_imc_vqa"


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs for the module."""
    start_ray(num_cpus=2)
    yield
    ray.shutdown()


def _plain(records) -> list[dict]:
    return [json.loads(json.dumps(asdict(r))) for r in records]


def test_image_blocks_keep_images_whole_and_in_order(data_dir: Path) -> None:
    rows = load_dataset(f"slake:{data_dir / 'slake'}", "test")[:40]
    blocks = image_blocks(rows, 3)
    assert 1 <= len(blocks) <= 3 and all(blocks)
    flat = [row for block in blocks for row in block]
    assert sorted(map(id, flat)) == sorted(map(id, rows))
    owners = {}
    for index, block in enumerate(blocks):
        for row in block:
            assert owners.setdefault(row.image_key, index) == index, "an image's questions are in one block"


def test_ray_sweep_equals_the_single_process_run(data_dir: Path, tmp_path: Path, local_ray) -> None:
    common = {
        "model": str(BUNDLE),
        "datasets": [f"slake:{data_dir / 'slake'}", f"vqa-rad:{data_dir / 'vqa_rad'}"],
        "limit": 2,
        "noises": ["blur", "typo"],
        "severities": [3],
        "methods": ["none", "imc", "no-image"],
        "threads": 1,
    }
    single = run_benchmark(BenchSettings(**common, out=tmp_path / "single"))
    spread = run_benchmark(BenchSettings(**common, out=tmp_path / "ray", ray=True, ray_workers=2))
    assert len(single.records) == 4 * 3 * 3
    assert _plain(spread.records) == _plain(single.records), "the same records in the same order"
    assert spread.stats.records_new == len(single.records) and spread.stats.records_cached == 0
    rows = [json.loads((tmp_path / d / "results.json").read_text())["rows"] for d in ("single", "ray")]
    assert rows[0] == rows[1]
    cached = [sorted((tmp_path / d / "cache.jsonl").read_text().splitlines()) for d in ("single", "ray")]
    assert cached[0] == cached[1]
    again = run_benchmark(BenchSettings(**common, out=tmp_path / "ray", ray=True, ray_workers=2))
    assert again.stats.records_new == 0 and _plain(again.records) == _plain(single.records), "it resumes"


def test_prototypes_build_with_ray_gives_the_same_bank(tmp_path: Path, local_ray) -> None:
    import torch
    from pydicom.data import get_testdata_file

    from monai_imc.bank_build import build_bank
    from monai_imc.bench.scale import ray_bank_encoder
    from monai_imc.data import model_view
    from monai_imc.imageio import read_image
    from monai_imc.models import load_model
    from monai_imc.models.tiny import build_tiny_checkpoint
    from monai_imc.noise.preview import shrink

    model_dir = build_tiny_checkpoint("llava", tmp_path / "model", seed=0)
    model = load_model(str(model_dir), device="cpu")
    views = []
    for name in ("CT_small.dcm", "MR_small.dcm", "693_UNCI.dcm", "MR2_UNCI.dcm"):
        image = read_image(get_testdata_file(name))
        views.append(
            model_view(type(image)(shrink(image.array, 64), image.source, image.modality, image.window))
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same reductions, bit for bit
    try:
        single = build_bank(model, views, ["blur", "jpeg"], [1, 5], seed=0)
        spread = build_bank(
            model,
            views,
            ["blur", "jpeg"],
            [1, 5],
            seed=0,
            encode_many=ray_bank_encoder(str(model_dir), "cpu", workers=2),
        )
    finally:
        torch.set_num_threads(threads)
    assert set(single.tensors) == set(spread.tensors)
    for name, tensor in single.tensors.items():
        assert torch.equal(tensor, spread.tensors[name]), name
    assert single.manifest["choices"] == spread.manifest["choices"]
    assert single.bank_hash == spread.bank_hash
