"""The costs of IMC, each a ratio measured in one run (issue 20's targets; docs/costs.md).

1. IMC / plain per question, clean and noisy text: the plain model (encode, answer) against the whole
   method (encode, perceive, calibrate, refine, answer) on the same images and questions, the two
   interleaved question by question so that a busy machine slows both alike; and SMS / plain: the SMS
   refinement in turn (not beside the encode), then the plain answer of the refined text.
2. perceive + calibrate / plain: the method without refine against the plain model, the two alone and
   interleaved (among the four methods, the one after SMS's in-turn repairs runs slower; that figure is
   kept as ``pdc_over_plain_among_four``).
3. app overhead / model time per study: the MONAI Deploy app (Holoscan graph: DICOM in, views, SR out) on the
   sample study, from the run report's per-stage timings (monai_imc.timing): (wall - model) / model; the app
   runs ``--app-runs`` times after one model load, the first run and the median of the others reported.
4. Ray / single process: the same small benchmark sweep, once in this process and once with Ray workers.

Every stage is timed by :mod:`monai_imc.timing` (the owner of timing); this script only chooses what to run.

Usage (the machine is shared: run it niced and say so beside the numbers)::

    MONAI_IMC_DATA=../shared/data OMP_NUM_THREADS=1 nice -n 10 python bench/costs.py \\
        --bundle bundles/monai_imc_vqa --questions 12 --seed 0 --out results/costs.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout

import torch

from monai_imc.bench.datasets import stratified_subset
from monai_imc.data import load_dataset, load_view
from monai_imc.deploy.context import IMCContext, load_context
from monai_imc.noise import get_noise
from monai_imc.timing import StageTimer, timed

METHODS = ("plain", "sms", "pdc", "imc")
ORDERS = ((0, 1, 3, 2), (1, 2, 0, 3), (2, 3, 1, 0), (3, 0, 2, 1))
"""The methods' order question by question: a Williams square, so that each method comes first, second, third
and last once in four questions and follows each other method once (a method run right after a heavy one,
SMS's repairs, starts with cold caches; alternating one order and its reverse let the plain model follow
itself at every turn and perceive + calibrate never)."""


def per_question(context: IMCContext, rows: list, noisy: bool, seed: int, max_new_tokens: int) -> dict:
    """Plain, SMS (in turn) + plain, PDC (perceive + calibrate) and IMC (+ refine) on each question,
    interleaved (:data:`ORDERS`); then plain and PDC alone, interleaved in turn (one order, then the other),
    for perceive + calibrate / plain: among the four, the method after SMS's in-turn repairs runs slower."""
    pipeline = context.pipeline
    changed = 0

    def ask(method: str, image: object, text: str) -> None:
        nonlocal changed
        if method in ("plain", "sms"):  # sms: the refinement first, in turn, then the plain answer
            asked = pipeline.refine(text).text if method == "sms" else text
            pipeline.generate(pipeline.encode([image]), asked, max_new_tokens=max_new_tokens)
        else:
            result = pipeline.run(image, text, refine=method == "imc", max_new_tokens=max_new_tokens)
            changed += int(method == "imc" and result.question != text)

    def interleaved(methods: tuple[str, ...], orders: tuple[tuple[int, ...], ...]) -> dict[str, StageTimer]:
        timers = {m: StageTimer() for m in methods}
        for index, row in enumerate(rows):
            image = load_view(row.image, 256)
            text = get_noise("typo").apply(row.question, severity=3, seed=seed + index) if noisy else row.question
            for method in (methods[k] for k in orders[index % len(orders)]):
                with timers[method].active(), timed("question"):
                    ask(method, image, text)
        return timers

    timers = interleaved(METHODS, ORDERS)
    walls = {m: sum(t.totals().values()) for m, t in timers.items()}
    texts_changed = changed
    pair = {m: sum(t.totals().values()) for m, t in interleaved(("plain", "pdc"), ((0, 1), (1, 0))).items()}
    return {
        "questions": len(rows),
        "seconds": {m: round(v, 3) for m, v in walls.items()},
        "seconds_plain_and_pdc_alone": {m: round(v, 3) for m, v in pair.items()},
        "stages_imc": timers["imc"].to_dict()["stages"],
        "imc_over_plain": round(walls["imc"] / walls["plain"], 3),
        "pdc_over_plain": round(pair["pdc"] / pair["plain"], 3),
        "pdc_over_plain_among_four": round(walls["pdc"] / walls["plain"], 3),
        "sms_over_plain": round(walls["sms"] / walls["plain"], 3),
        "texts_changed_by_sms": texts_changed,
    }


def app_overhead(context: IMCContext, runs: int = 3) -> dict:
    """The app graph on the sample study ``runs`` times in this process, after one model load (as ``monai-imc
    serve`` runs study after study); each run's report timings, the first run and the median of the others."""
    os.environ.setdefault("HOLOSCAN_LOG_LEVEL", "ERROR")
    from monai_imc.deploy.sample import write_sample_study
    from monai_imc.operators.application import IMCApplication

    per_run = []
    with tempfile.TemporaryDirectory() as tmp:
        study = write_sample_study(Path(tmp) / "study")
        for i in range(runs):
            app = IMCApplication(
                [sys.executable, "costs"],
                imc=context,
                input_folder=study.folder,
                output_folder=Path(tmp) / f"out{i}",
            )
            app.run()
            assert app.report is not None
            timings = app.report.timer.to_dict()
            model, wall = timings["model_seconds"], timings["wall_seconds"]
            per_run.append(
                {
                    "series": len(timings["series"]),
                    "stages": timings["stages"],
                    "model_seconds": model,
                    "wall_seconds": wall,
                    "app_stages_over_model": timings["app_overhead_ratio"],
                    "app_overhead_over_model": round((wall - model) / model, 3),
                }
            )
    later = sorted(r["app_overhead_over_model"] for r in per_run[1:])
    return {
        **per_run[0],
        "runs": per_run,
        "first_run_overhead_over_model": per_run[0]["app_overhead_over_model"],
        "later_runs_median_overhead_over_model": later[len(later) // 2] if later else None,
    }


def ray_over_single(bundle: str, data: Path, seed: int) -> dict:
    """The same small sweep, single process and with 2 Ray workers (each loads the model)."""
    import ray

    from monai_imc.bench.benchmark import BenchSettings, run_benchmark
    from monai_imc.bench.scale import start_ray

    common = {
        "model": bundle,
        "datasets": [f"slake:{data / 'slake'}", f"vqa-rad:{data / 'vqa_rad'}"],
        "limit": 4,
        "noises": ["blur", "typo"],
        "severities": [3],
        "methods": ["none", "imc"],
        "seed": seed,
        "threads": 1,
    }
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        single = run_benchmark(BenchSettings(**common, out=Path(tmp) / "single"))
        single_s = time.perf_counter() - start
        start_ray(num_cpus=2)
        try:
            start = time.perf_counter()
            spread = run_benchmark(BenchSettings(**common, out=Path(tmp) / "ray", ray=True, ray_workers=2))
            ray_s = time.perf_counter() - start
        finally:
            ray.shutdown()
    same = [r.__dict__ for r in single.records] == [r.__dict__ for r in spread.records]
    return {
        "records": len(single.records),
        "single_seconds": round(single_s, 1),
        "ray_seconds": round(ray_s, 1),
        "ray_over_single": round(ray_s / single_s, 3),
        "same_records": same,
    }


def plot(results: dict, path: Path) -> None:
    """The run as a picture: seconds per question of each method on clean and noisy text (the ratios to the
    plain model written on the bars), and the app's stages per study (the first study and the others)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [p for p in ("clean_text", "noisy_text") if p in results]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    width = 0.8 / max(1, len(parts))
    for k, part in enumerate(parts):
        r = results[part]
        ms = [1000 * r["seconds"][m] / r["questions"] for m in METHODS]
        bars = ax.bar([i + k * width for i in range(len(METHODS))], ms, width, label=part.replace("_", " "))
        for bar, m in zip(bars, METHODS):
            ratio = r["seconds"][m] / r["seconds"]["plain"]
            label = f"{ratio:.2f}x" + (f"\n({r['pdc_over_plain']:.2f}x)" if m == "pdc" else "")
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                        va="bottom", fontsize=7)  # fmt: skip
    ax.set_xticks([i + width * (len(parts) - 1) / 2 for i in range(len(METHODS))])
    ax.set_xticklabels(["plain", "SMS in turn\n+ plain", "perceive + calibrate\n(in brackets: alone)", "IMC"])
    ax.set_ylabel("ms per question")
    ax.set_title(f"per question ({results[parts[0]]['questions']} SLAKE test questions)" if parts else "")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1]
    app = results.get("app")
    if app:
        runs = app["runs"]
        rows = [("first study", runs[0])] + [(f"study {i + 1}", r) for i, r in enumerate(runs[1:], 1)]
        stages = list(runs[0]["stages"])
        left = [0.0] * len(rows)
        cmap = plt.get_cmap("tab10")
        for j, stage in enumerate(stages):
            widths = [r["stages"].get(stage, 0.0) for _, r in rows]
            ax.barh(range(len(rows)), widths, left=left, color=cmap(j % 10), label=stage)
            left = [a + b for a, b in zip(left, widths)]
        for i, (_, r) in enumerate(rows):
            ax.annotate(f"overhead {r['app_overhead_over_model']:.2f}", (r["wall_seconds"], i), va="center",
                        xytext=(4, 0), textcoords="offset points", fontsize=8)  # fmt: skip
            ax.plot([r["wall_seconds"]], [i], "k|", markersize=14)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([name for name, _ in rows])
        ax.invert_yaxis()
        ax.set_xlabel("seconds (stages; | = wall time)")
        ax.set_title("the app on the sample study (one model load)")
        ax.set_xlim(0, 1.3 * max(r["wall_seconds"] for _, r in rows))
        ax.legend(fontsize=7, ncol=len(stages), loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    else:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", default="bundles/monai_imc_vqa")
    parser.add_argument("--data", default=os.environ.get("MONAI_IMC_DATA", "../shared/data"))
    parser.add_argument("--questions", type=int, default=12, help="SLAKE test questions (seeded subset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--device", default="cpu", help="the model's device (cuda: bf16; bench/device_costs.py)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: questions, app, ray")
    parser.add_argument(
        "--app-runs", type=int, default=3, help="app runs on the sample study, one model load"
    )
    parser.add_argument("--out", default=None, help="write the results as JSON here (and a PNG beside it)")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    data = Path(args.data)
    skip = set(filter(None, args.skip.split(",")))
    context = load_context(args.bundle, device=args.device)
    if context.pipeline.refine_process is not None:  # the SMS copy beside the encode: measured when ready
        context.pipeline.refine_process.start().result()
    rows = stratified_subset(load_dataset(f"slake:{data / 'slake'}", "test"), args.questions, args.seed)
    results: dict = {"command": " ".join(sys.argv), "load_average": os.getloadavg()}

    def save() -> None:  # after each part: a slow part does not lose the others
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    if "questions" not in skip:
        results["clean_text"] = per_question(context, rows, False, args.seed, args.max_new_tokens)
        results["noisy_text"] = per_question(context, rows, True, args.seed, args.max_new_tokens)
        save()
    if "app" not in skip:
        results["app"] = app_overhead(context, args.app_runs)
        save()
    if "ray" not in skip:
        results["ray"] = ray_over_single(args.bundle, data, args.seed)
    results["load_average_after"] = os.getloadavg()
    save()
    if args.out:
        plot(results, Path(args.out).with_suffix(".png"))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
