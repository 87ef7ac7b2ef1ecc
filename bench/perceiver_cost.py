"""What the perceiver's physics measures cost, as a ratio of the model's own encode time per image.

One run, one process, the same images: the model's ``encode_images`` (the one vision pass the answer
needs anyway) and :func:`monai_imc.quality.measures_and_vector` on the same views, each timed over all
images (process CPU time and wall time). The target (issue 15) is a ratio of at most 0.10 on 2 cores.

With ``--bank`` it also times what the product does, one view at a time as the app does: plain
``encode_images`` against :meth:`IMCPipeline.encode_and_perceive` (the measures on the perceiver's worker
thread while the model encodes, then the discriminant), interleaved view by view; ``ratio_overlapped`` is
the wall time perception adds over the encode's.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/perceiver_cost.py --model bundles/monai_imc_vqa/models/reference-vlm \\
        --bank bundles/monai_imc_vqa/models/prototype-bank --images 24 --size 256
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from monai_imc.data import dataset_images, load_view
from monai_imc.models import load_model
from monai_imc.quality import MEASURES, measures_and_vector


def main(argv: list[str] | None = None) -> int:
    """Time encode and measures on the same views; print the ratio (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=os.environ.get("MONAI_IMC_DATA", "../shared/data"))
    parser.add_argument("--images", type=int, default=24, help="SLAKE test images to time")
    parser.add_argument(
        "--size", type=int, default=256, help="the views' longest side, as the benchmark makes them"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bank", default=None, help="the model's prototype bank: also time encode_and_perceive")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    files = dataset_images(f"slake:{Path(args.data) / 'slake'}", ["test"])[: args.images]
    views = [load_view(f, args.size) for f in files]
    model = load_model(args.model, device="cpu")
    model.encode_images(views[:2])  # warm-up (lazy initialisation, allocator)
    pipeline = None
    if args.bank:
        from monai_imc.pipeline import IMCPipeline
        from monai_imc.prototypes import PrototypeBank

        pipeline = IMCPipeline(model, PrototypeBank.load(args.bank))
    names = pipeline.perceiver.measure_names if pipeline is not None else MEASURES  # the bank's own list
    measures_and_vector(views[0], names)

    def timed(fn) -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        return time.process_time() - cpu, time.perf_counter() - wall

    def encode() -> None:
        for start in range(0, len(views), args.batch_size):
            model.encode_images(views[start : start + args.batch_size])

    def measure() -> None:
        for view in views:
            measures_and_vector(view, names)

    encode_cpu, encode_wall = timed(encode)
    measure_cpu, measure_wall = timed(measure)
    n = len(views)
    result = {
        "model": args.model,
        "images": n,
        "view_size": args.size,
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "encode_ms_per_image": {"cpu": 1000 * encode_cpu / n, "wall": 1000 * encode_wall / n},
        "measures": len(names),
        "measures_ms_per_image": {"cpu": 1000 * measure_cpu / n, "wall": 1000 * measure_wall / n},
        "ratio_cpu": measure_cpu / encode_cpu,
        "ratio_wall": measure_wall / encode_wall,
    }
    if pipeline is not None:
        pipeline.encode_and_perceive(views[:1])  # warm-up (the measures' worker process)
        plain = perceived = 0.0
        for index, view in enumerate(views):  # interleaved, alternating which goes first
            for which in (("plain", "perceived") if index % 2 == 0 else ("perceived", "plain")):
                start = time.perf_counter()
                if which == "plain":
                    model.encode_images([view])
                    plain += time.perf_counter() - start
                else:
                    pipeline.encode_and_perceive([view])
                    perceived += time.perf_counter() - start
        result.update(
            encode_one_ms_per_image=1000 * plain / n,
            encode_and_perceive_ms_per_image=1000 * perceived / n,
            ratio_overlapped=(perceived - plain) / plain,
        )
    print(
        f"{n} views of {args.size} px: encode {result['encode_ms_per_image']['cpu']:.1f} ms CPU per image, "
        f"physics measures {result['measures_ms_per_image']['cpu']:.1f} ms; ratio {result['ratio_cpu']:.2f} "
        f"(CPU), {result['ratio_wall']:.2f} (wall); target <= 0.10"
    )
    if "ratio_overlapped" in result:
        print(
            f"one view at a time: encode {result['encode_one_ms_per_image']:.1f} ms, encode_and_perceive "
            f"{result['encode_and_perceive_ms_per_image']:.1f} ms: perception adds {result['ratio_overlapped']:.2f} "
            "of the encode's wall time"
        )
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
