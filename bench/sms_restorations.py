"""How often SMS gives the clean question back: a bundle's refiner on the noisy questions of a `monai-imc bench`
run (its cache), each compared with the clean question of the same item.

    python bench/sms_restorations.py results/scratch14/val --bundle bundles/monai_imc_vqa [--show vqa_rad:ocr]

Per dataset and text noise: the questions restored exactly (case and spaces aside) and the mean word edit
distance to the clean question before and after; and the clean questions the refiner edits (false edits).
Only text is refined (no answers), so a change to the specialists is measured in seconds. Use a run of the
``validate`` split to choose anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from monai_imc.bench.model_spec import load_bench_model
from monai_imc.noise.metrics import edit_distance
from monai_imc.refine import SMSPrompts


def _words(text: str) -> list[str]:
    return text.lower().split()


def word_distance(a: str, b: str) -> int:
    """Levenshtein distance of two texts in words (lower case)."""
    return edit_distance(_words(a), _words(b))


def cached_questions(run: Path) -> tuple[dict[str, tuple[str, str]], dict[tuple[str, str], str]]:
    """(item -> (clean question, dataset), (item, noise) -> noisy question) from a bench run's ``cache.jsonl``.

    Raises:
        FileNotFoundError: the run has no cache.
    """
    path = run / "cache.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no bench cache (run `monai-imc bench ... --out {run}` first)")
    clean: dict[str, tuple[str, str]] = {}
    noisy: dict[tuple[str, str], str] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["method"] != "none":
                continue
            if r["noise"] == "clean":
                clean[r["item"]] = (r["question"], r["dataset"])
            else:
                noisy[(r["item"], r["noise"])] = r["question"]
    return clean, {k: q for k, q in noisy.items() if k[0] in clean}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a monai-imc bench output folder (with cache.jsonl)")
    parser.add_argument("--bundle", default="bundles/monai_imc_vqa", help="whose refiner (its config's settings)")
    parser.add_argument("--show", default="", help="dataset:noise pairs whose misses are printed (comma list)")
    args = parser.parse_args(argv)
    clean, noisy = cached_questions(args.run)
    loaded = load_bench_model(args.bundle)
    refiner = loaded.refiner(loaded.model, SMSPrompts.reference())

    items = sorted(clean)
    edited: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item, out in zip(items, refiner.refine_many([clean[i][0] for i in items])):
        counts = edited[clean[item][1]]
        counts[0] += 1
        counts[1] += out.text != clean[item][0]
    keys = sorted(noisy)
    stats: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    misses: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for (item, noise), out in zip(keys, refiner.refine_many([noisy[k] for k in keys])):
        question, dataset = clean[item]
        s = stats[(dataset, noise)]
        s[0] += 1
        s[1] += _words(out.text) == _words(question)
        s[2] += word_distance(noisy[(item, noise)], question)
        s[3] += word_distance(out.text, question)
        if _words(out.text) != _words(question):
            misses[f"{dataset}:{noise}"].append((question, noisy[(item, noise)], out.text))

    print("| dataset | noise | questions | restored exactly | word distance: noisy -> refined |")
    print("|---|---|---:|---:|---|")
    for (dataset, noise), (n, exact, before, after) in sorted(stats.items()):
        print(f"| {dataset} | {noise} | {n} | {100 * exact / n:.1f}% | {before / n:.2f} -> {after / n:.2f} |")
    for dataset, (n, changed) in sorted(edited.items()):
        print(f"| {dataset} | clean (false edits) | {n} | edited {changed} | |")
    for key in filter(None, args.show.split(",")):
        print(f"\n{key}: misses (clean / noisy / refined)")
        for question, given, refined in misses.get(key, []):
            print(f"  {question}\n  {given}\n  {refined}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
