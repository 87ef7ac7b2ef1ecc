"""Measure SMS on the VQA test questions (issue 6's "Measure" section).

For every closed-ended test question: the answer to the clean question, to its noisy copy (each text
noise at the chosen severities), to the SMS-refined noisy copy, and to a one-call re-pass baseline (the
same model asked once to fix the question, its reply used as is). Also: how often SMS edits a clean
question (false edits), guard violations of the final texts, and model calls per question (median,
clean and noisy; the answer itself not counted).

    python bench/measure_sms.py --bundle bundles/monai_imc_vqa --data ../shared/data --severities 3 --out results/sms

The refiner takes its settings (assessor threshold, reviewer margin, rounds) from the bundle's
``configs/inference.json``; ``--model`` alone runs a checkpoint with the library defaults.

Writes results.json and results.md under --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from monai_imc.atomic import atomic_output
from monai_imc.bench.model_spec import bundle_settings
from monai_imc.cli import parse_severities
from monai_imc.guards import check_repair
from monai_imc.models import load_model
from monai_imc.noise import get_noise, list_noises
from monai_imc.refine import SMSRefiner


def main(argv: list[str] | None = None) -> int:
    from monai_imc.reference.data import load_vqa, normalize_answer
    from monai_imc.reference.prompts import rewrite_messages, vqa_prompt

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", help="a MONAI bundle: its model and its refiner settings")
    p.add_argument("--model", help="a checkpoint folder (without --bundle)")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--datasets", default="slake,vqa_rad")
    p.add_argument("--noises", default="all")
    p.add_argument("--severities", default="3")
    p.add_argument("--limit", type=int, default=0, help="at most this many closed questions per dataset")
    p.add_argument("--seed", type=int, default=4321)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if bool(args.bundle) == bool(args.model):
        p.error("give --bundle or --model")

    options: dict = {}
    if args.bundle:
        args.model, _bank, options = bundle_settings(args.bundle)
    model = load_model(args.model, device="cpu")
    refiner = SMSRefiner(model, **options)
    noises = list_noises("text") if args.noises == "all" else args.noises.split(",")
    severities = parse_severities(args.severities)
    heldout = None
    metrics_file = Path(args.model) / "metrics.json"
    if metrics_file.is_file():
        heldout = json.loads(metrics_file.read_text()).get("heldout_noise")

    rows = []
    for name in args.datasets.split(","):
        closed = [r for r in load_vqa(args.data, name, "test") if r.closed]
        rows.extend(closed[: args.limit] if args.limit else closed)

    hits: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    calls: dict[str, list[int]] = defaultdict(list)
    false_edits, violations = [], 0
    features_cache: dict[str, object] = {}
    replies: dict[tuple[str, str], str] = {}  # the same question about the same image is answered once

    def answer(row: object, question: str) -> float:
        key = row.image_key  # type: ignore[attr-defined]
        if key not in features_cache:
            with Image.open(row.image) as im:  # type: ignore[attr-defined]
                features_cache[key] = model.encode_images(im.convert("RGB"))
        if (key, question) not in replies:
            replies[(key, question)] = model.generate(features_cache[key], vqa_prompt(question), max_new_tokens=12)
        return float(normalize_answer(replies[(key, question)]) == normalize_answer(row.answer))  # type: ignore[attr-defined]

    for i, row in enumerate(tqdm(rows, desc="questions")):
        clean_hit = answer(row, row.question)
        hits[("clean", 0, "none")].append(clean_hit)
        refined = refiner.refine(row.question)
        calls["clean"].append(refined.calls)
        false_edits.append(float(refined.changed))
        hits[("clean", 0, "sms")].append(answer(row, refined.text))
        for n_i, noise in enumerate(noises):
            for s in severities:
                noisy = get_noise(noise).apply(row.question, severity=s, seed=args.seed + 1000 * i + n_i)
                result = refiner.refine(noisy)
                calls["noisy"].append(result.calls)
                violations += int(bool(check_repair(noisy, result.text)))
                repass = " ".join(model.chat(rewrite_messages(noisy), max_new_tokens=48).split()) or noisy
                hits[(noise, s, "none")].append(answer(row, noisy))
                hits[(noise, s, "sms")].append(answer(row, result.text))
                hits[(noise, s, "repass")].append(answer(row, repass))

    def acc(key: tuple[str, int, str]) -> float:
        values = hits.get(key, [])
        return round(100.0 * sum(values) / len(values), 2) if values else float("nan")

    clean = acc(("clean", 0, "none"))
    table = []
    for noise in noises:
        for s in severities:
            noisy, sms, repass = acc((noise, s, "none")), acc((noise, s, "sms")), acc((noise, s, "repass"))
            lost = clean - noisy
            table.append({
                "noise": noise + (" (held out of training)" if noise == heldout else ""), "severity": s,
                "clean": clean, "noisy": noisy, "sms": sms, "repass": repass,
                "recovery_sms": round((sms - noisy) / lost, 3) if abs(lost) > 1e-9 else None,
                "recovery_repass": round((repass - noisy) / lost, 3) if abs(lost) > 1e-9 else None,
            })
    results = {
        "command": " ".join(sys.argv),
        "closed_questions": len(rows),
        "clean_closed_acc": clean,
        "clean_closed_acc_sms": acc(("clean", 0, "sms")),
        "false_edit_pct": round(100.0 * statistics.mean(false_edits), 2) if false_edits else None,
        "guard_violations": violations,
        "median_calls_clean": statistics.median(calls["clean"]) if calls["clean"] else None,
        "median_calls_noisy": statistics.median(calls["noisy"]) if calls["noisy"] else None,
        "heldout_noise": heldout,
        "refiner": repr(refiner),
        "rows": table,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    lines = [
        (f"{len(rows)} closed questions; clean acc {clean} (SMS on clean: {results['clean_closed_acc_sms']}); "
        f"false edits {results['false_edit_pct']}%; guard violations {violations}; median calls clean "
        f"{results['median_calls_clean']}, noisy {results['median_calls_noisy']}"),
        "",
        "| noise | severity | noisy | SMS | re-pass | recovery SMS | recovery re-pass |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['noise']} | {r['severity']} | {r['noisy']} | {r['sms']} | {r['repass']} | {r['recovery_sms']} | "
              f"{r['recovery_repass']} |" for r in table]
    with atomic_output(out / "results.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
