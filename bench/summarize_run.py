"""Summary of a final bench run: clean / mean over image noises per method, and recovery of the mean loss."""
import json, sys
from collections import defaultdict
r = json.load(open(sys.argv[1] + "/results.json"))
rows = r["rows"]
methods = list(dict.fromkeys(x["method"] for x in rows))
for ds in dict.fromkeys(x["dataset"] for x in rows):
    print(f"\n{ds}")
    for metric in ("closed_acc", "open_acc", "open_recall", "ece"):
        clean = {x["method"]: x[metric] for x in rows if x["dataset"] == ds and x["noise"] == "clean"}
        noisy = defaultdict(list)
        for x in rows:
            if x["dataset"] == ds and x["noise"] != "clean" and x[metric] is not None:
                noisy[x["method"]].append(x[metric])
        mean = {m: sum(v) / len(v) for m, v in noisy.items()}
        base_c, base_n = clean.get("none"), mean.get("none")
        cells = []
        for m in methods:
            rec = ""
            if metric != "ece" and base_c is not None and base_c - base_n > 0 and m in mean:
                rec = f" ({100 * (mean[m] - base_n) / (base_c - base_n):+.0f}%)"
            c = clean.get(m); n = mean.get(m)
            cells.append(f"{m}: {c if c is not None else '-'} / {n:.1f}{rec}" if n is not None else f"{m}: -")
        print(f"  {metric:12s} clean / noisy mean (recovery of the mean loss): " + "; ".join(cells))
