"""Measure perceive + PDC on the VQA test splits (issue 5's "Measure" section).

For every test image (never in the bank): the clean image and its copies under every bank noise at the
chosen severities, each encoded once. Per copy: the perceiver's verdict (type accuracy per severity,
clean false alarms), and the answers to the image's questions from the plain features, the
PDC-calibrated features and an oracle calibration told the true noise (to separate perceiver errors
from map quality). Closed-ended accuracy is exact match after normalisation. The time perceive +
calibrate adds is reported as a ratio to the plain model's encode + generate, measured in the same run.

    python bench/measure_pdc.py --model bundles/monai_imc_vqa/models/reference-vlm \\
        --bank bundles/monai_imc_vqa/models/prototype-bank --data ../shared/data --severities 3 --out results/pdc

Writes results.json, results.md, confusion.png and recovery.png under --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from monai_imc.atomic import atomic_output
from monai_imc.cli import parse_severities
from monai_imc.data import load_view
from monai_imc.models import load_model
from monai_imc.pipeline import IMCPipeline
from monai_imc.prototypes import PrototypeBank, corrupt, variant_seed


def load_rows(data: str, datasets: list[str], limit: int) -> list:
    """Test rows of the datasets, grouped so that each image's questions are consecutive."""
    from monai_imc.data import load_vqa

    rows = []
    for name in datasets:
        part = load_vqa(data, name, "test")
        rows.extend(sorted(part, key=lambda r: r.image_key))
    return rows[:limit] if limit else rows


def main(argv: list[str] | None = None) -> int:
    from monai_imc.answers import normalize_answer
    from monai_imc.prompts import vqa_prompt

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--bank", required=True)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--datasets", default="slake,vqa_rad")
    p.add_argument("--severities", default="3")
    p.add_argument("--size", type=int, default=256, help="longest side of the images before noise")
    p.add_argument("--limit", type=int, default=0, help="at most this many questions")
    p.add_argument("--seed", type=int, default=1234, help="noise seed (not the bank's)")
    p.add_argument("--max-new-tokens", type=int, default=12)
    p.add_argument("--variants", default="ridge,shift", help="calibration variants to compare (first is the default)")
    p.add_argument("--extra-noises", default="", help="image noises to test that the bank was built without")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    model = load_model(args.model, device="cpu")
    bank = PrototypeBank.load(args.bank, model=model)
    variants_ = args.variants.split(",")
    # the method's steps are IMCPipeline's: one pipeline per calibration variant (the first is the default)
    pipelines = {v: IMCPipeline(model, bank, variant=v, check_bank=False) for v in variants_}
    pipeline = pipelines[variants_[0]]
    extra = [n for n in args.extra_noises.split(",") if n]
    noises = list(bank.noises) + [n for n in extra if n not in bank.noises]
    severities = parse_severities(args.severities)
    rows = load_rows(args.data, args.datasets.split(","), args.limit)
    by_image: dict[str, list] = defaultdict(list)
    for r in rows:
        by_image[r.image_key].append(r)

    correct: dict[tuple[str, int, str], list[float]] = defaultdict(list)  # (noise, severity, method)
    perceived: dict[tuple[str, int], list[str]] = defaultdict(list)
    flagged: dict[tuple[str, int], list[bool]] = defaultdict(list)
    t_plain = t_extra = 0.0
    for i, (key, questions) in enumerate(tqdm(by_image.items(), desc="images")):
        clean = load_view(questions[0].image, args.size)
        variants = [("clean", 0, clean)]
        for n_i, noise in enumerate(noises):
            for s in severities:
                variants.append((noise, s, corrupt(clean, noise, s, variant_seed(args.seed, i, n_i))))
        for noise, severity, image in variants:
            t0 = time.perf_counter()
            features = pipeline.encode([image])
            t1 = time.perf_counter()
            perception = pipeline.perceive(features)[0]
            calibrated, _ = pipeline.calibrate(features, [perception])
            t2 = time.perf_counter()
            perceived[(noise, severity)].append(perception.noise or "clean")
            flagged[(noise, severity)].append(perception.flagged)
            methods = {"none": features, "pdc": calibrated}
            for v in variants_[1:]:
                methods[f"pdc:{v}"], _ = pipelines[v].calibrate(features, [perception])
            if noise in bank.noises:
                forced = dataclasses.replace(perception, noise=noise, severity=severity, confidence=1.0, flagged=True)
                methods["oracle"], _ = pipeline.calibrate(features, [forced])
                for v in variants_[1:]:
                    methods[f"oracle:{v}"], _ = pipelines[v].calibrate(features, [forced])
            for row in questions:
                if not row.closed:
                    continue
                answers: dict[int, str] = {}  # features left unchanged give the plain answer: not asked twice
                for method, feats in methods.items():
                    t3 = time.perf_counter()
                    if id(feats) not in answers:
                        answers[id(feats)] = pipeline.generate(feats, vqa_prompt(row.question),
                                                               max_new_tokens=args.max_new_tokens)
                    answer = answers[id(feats)]
                    if method == "none":
                        t_plain += time.perf_counter() - t3
                    hit = float(normalize_answer(answer) == normalize_answer(row.answer))
                    correct[(noise, severity, method)].append(hit)
                    correct[(f"{row.dataset}/{noise}", severity, method)].append(hit)
            t_plain += t1 - t0
            t_extra += t2 - t1

    def acc(noise: str, severity: int, method: str) -> float:
        values = correct.get((noise, severity, method), [])
        return round(100.0 * sum(values) / len(values), 2) if values else float("nan")

    clean_acc, clean_pdc = acc("clean", 0, "none"), acc("clean", 0, "pdc")
    table = []
    for noise in noises:
        for s in severities:
            noisy, pdc, orc = acc(noise, s, "none"), acc(noise, s, "pdc"), acc(noise, s, "oracle")
            lost = clean_acc - noisy
            row_ = {
                "noise": noise, "severity": s, "in_bank": noise in bank.noises, "clean": clean_acc, "noisy": noisy,
                "pdc": pdc, "oracle": orc,
                "recovery_pdc": round((pdc - noisy) / lost, 3) if abs(lost) > 1e-9 else None,
                "recovery_oracle": round((orc - noisy) / lost, 3) if abs(lost) > 1e-9 else None,
                "type_accuracy": round(100.0 * np.mean([p == noise for p in perceived[(noise, s)]]), 2),
                "flagged_pct": round(100.0 * np.mean(flagged[(noise, s)]), 2),
                "by_dataset": {d: {m: acc(f"{d}/{noise}", s, m) for m in ("none", "pdc", "oracle")}
                               for d in sorted({r.dataset for r in rows})},
            }
            for v in variants_[1:]:
                row_[f"pdc:{v}"], row_[f"oracle:{v}"] = acc(noise, s, f"pdc:{v}"), acc(noise, s, f"oracle:{v}")
            table.append(row_)
    false_alarm = round(100.0 * np.mean(flagged[("clean", 0)]), 2)  # clean images the gate sends to PDC
    misperceived = round(100.0 * np.mean([p != "clean" for p in perceived[("clean", 0)]]), 2)
    results = {
        "command": " ".join(sys.argv),
        "images": len(by_image),
        "closed_questions": sum(len([r for r in q if r.closed]) for q in by_image.values()),
        "variants": variants_,
        "clean_closed_acc": clean_acc,
        "clean_by_dataset": {d: acc(f"{d}/clean", 0, "none") for d in sorted({r.dataset for r in rows})},
        "clean_closed_acc_pdc": clean_pdc,
        "clean_false_alarm_pct": false_alarm,
        "clean_misperceived_pct": misperceived,
        "added_time_ratio": round(t_extra / t_plain, 4) if t_plain else None,
        "rows": table,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    lines = [
        (
            f"clean closed acc {clean_acc} (PDC on: {clean_pdc}); clean false alarm (gate) {false_alarm}%, "
            f"clean perceived as noisy {misperceived}%; "
            f"added time {results['added_time_ratio']} x plain"
        ),
        "",
        f"| noise | severity | type acc | flagged | noisy | PDC ({variants_[0]}) | oracle PDC ({variants_[0]}) | "
        + "".join(f"PDC ({v}) | oracle ({v}) | " for v in variants_[1:])
        + "recovery PDC | recovery oracle |",
        "|---|---|---|---|---|---|---|" + "---|---|" * len(variants_[1:]) + "---|---|",
    ]
    lines += [
        f"| {r['noise']}{'' if r['in_bank'] else ' (not in bank)'} | {r['severity']} | {r['type_accuracy']} | "
        f"{r['flagged_pct']} | {r['noisy']} | {r['pdc']} | {r['oracle']} | "
        + "".join(f"{r[f'pdc:{v}']} | {r[f'oracle:{v}']} | " for v in variants_[1:])
        + f"{r['recovery_pdc']} | {r['recovery_oracle']} |"
        for r in table
    ]
    with atomic_output(out / "results.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    _plots(out, noises, severities, perceived, table)
    print("\n".join(lines))
    return 0


def _plots(out: Path, noises: list[str], severities: list[int], perceived: dict, table: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["clean", *noises]
    truth = [("clean", 0)] + [(n, s) for n in noises for s in severities]
    matrix = np.zeros((len(labels), len(labels)))
    for n, s in truth:
        for p in perceived[(n, s)]:
            matrix[labels.index(n), labels.index(p)] += 1
    matrix /= np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for a in range(len(labels)):
        for b in range(len(labels)):
            ax.text(b, a, f"{matrix[a, b]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xlabel("perceived")
    ax.set_ylabel(f"true (severities {severities})")
    fig.tight_layout()
    with atomic_output(out / "confusion.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(table))
    for offset, key in ((-0.25, "noisy"), (0.0, "pdc"), (0.25, "oracle")):
        ax.bar(x + offset, [r[key] for r in table], width=0.25, label=key)
    ax.axhline(table[0]["clean"] if table else 0, color="k", linestyle="--", label="clean")
    ax.set_xticks(x, [f"{r['noise']} {r['severity']}" for r in table], rotation=45, ha="right")
    ax.set_ylabel("closed-ended accuracy (%)")
    ax.legend()
    fig.tight_layout()
    with atomic_output(out / "recovery.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
