"""Leave-one-noise-out table: for each image noise left out of the bank (one ``monai-imc bench --leave-out N``
results folder per noise, ``<PREFIX><noise>``), the defences against none on that noise, and the largest
cost of each. A method a run did not include is shown as "-". Run from the repository root.

    python bench/leave_one_out_table.py [PREFIX] [--methods pdc,imc]     # default PREFIX: results/final-loo-
"""

import argparse
import glob
import json
import os

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("prefix", nargs="?", default="results/final-loo-")
parser.add_argument("--methods", default="pdc,imc", help="the defences to compare with none (comma-separated)")
args = parser.parse_args()
PREFIX, METHODS = args.prefix, ["none", *[m for m in args.methods.split(",") if m and m != "none"]]


def cell(value: tuple[float, float] | None, k: int) -> str:
    return "-" if value is None else f"{value[k]:.1f}"


perceiving = next((m for m in METHODS[1:] if m != "pdc-oracle"), "pdc")
header = [f"closed {m}" for m in METHODS] + [f"open recall {m}" for m in METHODS]
print("| left-out noise | dataset | " + " | ".join(header) + f" | perceived as ({perceiving}) |")
print("|---|---|" + "---|" * len(header) + "---|")
worst: dict[str, list[tuple[float, float, str, str]]] = {m: [] for m in METHODS[1:]}
for d in sorted(p for p in glob.glob(PREFIX + "*") if os.path.isdir(p)):
    noise = d[len(PREFIX):]
    rows = json.load(open(d + "/results.json"))["rows"]
    recs = [json.loads(line) for line in open(d + "/cache.jsonl")]
    for ds in ("slake", "vqa_rad"):
        m = {}
        for meth in METHODS:
            sel = [r for r in rows if r["dataset"] == ds and r["noise"] == noise and r["method"] == meth]
            m[meth] = (sum(r["closed_acc"] for r in sel) / len(sel), sum(r["open_recall"] for r in sel) / len(sel)) if sel else None
        seen: dict[str, int] = {}
        for r in recs:
            if r["dataset"] == ds and r["noise"] == noise and r["method"] == perceiving and r.get("perceived"):
                seen[r["perceived"]] = seen.get(r["perceived"], 0) + 1
        top = ", ".join(f"{k} {100*v/sum(seen.values()):.0f}%" for k, v in sorted(seen.items(), key=lambda kv: -kv[1])[:3])
        for meth in METHODS[1:]:
            if m[meth] is not None and m["none"] is not None:
                worst[meth].append((m["none"][0] - m[meth][0], m["none"][1] - m[meth][1], noise, ds))
        cells = [cell(m[meth], k) for k in (0, 1) for meth in METHODS]
        print(f"| {noise} | {ds} | " + " | ".join(cells) + f" | {top} |")
print()
for meth, costs in worst.items():
    if costs:
        c = max(costs, key=lambda w: w[0])
        o = max(costs, key=lambda w: w[1])
        print(f"largest closed cost of {meth} against none: {c[0]:.1f} points ({c[2]}, {c[3]}); "
              f"largest open-recall cost: {o[1]:.1f} ({o[2]}, {o[3]})")
