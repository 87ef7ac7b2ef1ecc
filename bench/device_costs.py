"""The benchmark of costs on an accelerator, with a larger model (issue 20): prepared for a session that is lent
a GPU (the `device` tool), and checked on the CPU at a small size.

No download. It builds, under ``--out``:

1. ``bundle/models/reference-vlm``: a LLaVA of the reference model's family at a larger size: the bundle's
   pretrained EfficientNet-Lite0 tower, tokenizer and processor, a new projector and a Llama of ``--layers``
   x ``--hidden`` with random weights (what the costs measure does not depend on what the weights know);
2. ``bundle/models/prototype-bank``: its prototype bank (``monai-imc prototypes build`` on ``--bank-images``
   SLAKE training images, every image noise at severities 1, 3 and 5), on ``--device``;
3. ``bundle/configs``: the shipped bundle's configs;

then runs ``bench/costs.py`` on that bundle on ``--device`` (bf16 on a GPU: ``load_model``'s default there),
and writes its JSON to ``--out/costs.json``. Each step is skipped when its output is there (a stopped run
resumes).

On a GPU node (about 1.1B parameters at the defaults; a few minutes)::

    MONAI_IMC_DATA=../shared/data python bench/device_costs.py --device cuda --out results/device-costs

On the CPU, to check the script itself (the reference model's size; about 2 minutes)::

    MONAI_IMC_DATA=../shared/data python bench/device_costs.py --device cpu --layers 2 --hidden 256 \\
        --heads 4 --intermediate 768 --bank-images 4 --questions 4 --out results/device-costs-check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # measure this checkout

SHIPPED = REPO / "bundles" / "monai_imc_vqa"


def build_model(out: Path, layers: int, hidden: int, heads: int, intermediate: int) -> None:
    """The larger LLaVA: the shipped model's tower, tokenizer and processor, a random Llama of this size."""
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from monai_imc.models.efficientnet_lite import register
    from monai_imc.reference.architecture import ArchitectureConfig
    from monai_imc.reference.architecture import build_model as build_llava

    register()
    source = SHIPPED / "models" / "reference-vlm"
    processor = AutoProcessor.from_pretrained(source)
    shipped = LlavaForConditionalGeneration.from_pretrained(source)
    torch.manual_seed(0)
    arch = ArchitectureConfig(
        text_hidden=hidden, text_layers=layers, text_heads=heads, text_intermediate=intermediate
    )
    model = build_llava(arch, processor.tokenizer, shipped.model.vision_tower.state_dict())
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    print(f"model: {n / 1e6:.1f}M parameters ({layers} layers x {hidden}) -> {out}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("MONAI_IMC_DATA", "../shared/data"))
    parser.add_argument("--out", required=True, help="folder for the model, bank, bundle and results")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--bank-images", type=int, default=24, help="SLAKE training images of the bank")
    parser.add_argument("--questions", type=int, default=100, help="SLAKE test questions of costs.py")
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out).resolve()
    bundle = out / "bundle"
    model_dir, bank_dir = bundle / "models" / "reference-vlm", bundle / "models" / "prototype-bank"
    if not (model_dir / "config.json").is_file():
        build_model(model_dir, args.layers, args.hidden, args.heads, args.intermediate)
    if not (bank_dir / "manifest.json").is_file():
        cli = [sys.executable, "-m", "monai_imc.cli"]
        subprocess.run(
            [*cli, "prototypes", "build", "--model", str(model_dir), "--images", f"slake:{Path(args.data) / 'slake'}",
             "--splits", "train", "--limit", str(args.bank_images), "--severities", "1,3,5", "--size", "256",
             "--modalities", "CR,CT,DX,MR", "--device", args.device, "--out", str(bank_dir)],
            check=True,
        )  # fmt: skip
    if not (bundle / "configs" / "inference.json").is_file():
        shutil.copytree(SHIPPED / "configs", bundle / "configs")
    result = out / "costs.json"
    env = {**os.environ, "MONAI_IMC_DATA": str(args.data)}
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "costs.py"), "--bundle", str(bundle), "--device", args.device,
         "--questions", str(args.questions), "--seed", str(args.seed), "--skip", "ray", "--out", str(result)],
        check=True, env=env,
    )  # fmt: skip
    costs = json.loads(result.read_text())
    for part in ("clean_text", "noisy_text"):
        r = costs[part]
        print(f"{part}: IMC / plain {r['imc_over_plain']}, perceive + calibrate / plain {r['pdc_over_plain']}")
    app = costs.get("app", {})
    print(f"app overhead / model time: first study {app.get('first_run_overhead_over_model')}, "
          f"later {app.get('later_runs_median_overhead_over_model')}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
