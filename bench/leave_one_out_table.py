"""Leave-one-noise-out table: for each image noise left out of the bank (results/final-loo-<noise>, written by
bench/run_reference_tables.sh loo), pdc / imc against none on that noise. Run from the repository root.
A method a run did not include (imc: pdc + SMS, the same as pdc on clean questions) is shown as "-".

    python bench/leave_one_out_table.py [PREFIX]     # default PREFIX: results/final-loo-
"""
import glob
import json
import os
import sys

PREFIX = sys.argv[1] if len(sys.argv) > 1 else "results/final-loo-"


def cell(value: tuple[float, float] | None, k: int) -> str:
    return "-" if value is None else f"{value[k]:.1f}"


print("| left-out noise | dataset | closed none | closed pdc | closed imc | open recall none | open recall pdc | open recall imc | perceived as (pdc) |")
print("|---|---|---|---|---|---|---|---|---|")
worst = []
for d in sorted(p for p in glob.glob(PREFIX + "*") if os.path.isdir(p)):
    noise = d[len(PREFIX):]
    rows = json.load(open(d + "/results.json"))["rows"]
    recs = [json.loads(l) for l in open(d + "/cache.jsonl")]
    for ds in ("slake", "vqa_rad"):
        m = {}
        for meth in ("none", "pdc", "imc"):
            sel = [r for r in rows if r["dataset"] == ds and r["noise"] == noise and r["method"] == meth]
            m[meth] = (sum(r["closed_acc"] for r in sel) / len(sel), sum(r["open_recall"] for r in sel) / len(sel)) if sel else None
        seen = {}
        for r in recs:
            if r["dataset"] == ds and r["noise"] == noise and r["method"] == "pdc" and r.get("perceived"):
                seen[r["perceived"]] = seen.get(r["perceived"], 0) + 1
        top = ", ".join(f"{k} {100*v/sum(seen.values()):.0f}%" for k, v in sorted(seen.items(), key=lambda kv: -kv[1])[:3])
        worst.append((m["none"][0] - m["pdc"][0], m["none"][1] - m["pdc"][1], noise, ds))
        cells = [cell(m[meth], k) for k in (0, 1) for meth in ("none", "pdc", "imc")]
        print(f"| {noise} | {ds} | " + " | ".join(cells) + f" | {top} |")
c = max(worst); o = max(worst, key=lambda w: w[1])
print(f"\nlargest closed cost of pdc against none: {c[0]:.1f} points ({c[2]}, {c[3]}); largest open-recall cost: {o[1]:.1f} ({o[2]}, {o[3]})")
