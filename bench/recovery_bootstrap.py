"""Paired bootstrap (resampling questions) of the recovery of the mean loss the noises of a run cost (image or text noises), per dataset and method.

    python bench/recovery_bootstrap.py RESULTS_DIR METHODS correct|recall [SEVERITIES, e.g. 3,4,5]
"""
import json, sys, random
from collections import defaultdict
cache = sys.argv[1] + "/cache.jsonl"; methods = sys.argv[2].split(","); metric = sys.argv[3]  # correct | recall
closed_only = metric == "correct"
severities = {int(x) for x in sys.argv[4].split(",")} if len(sys.argv) > 4 else None
recs = [json.loads(l) for l in open(cache)]
by = defaultdict(dict)  # (dataset, item) -> {(noise, sev, method): value}
for r in recs:
    if closed_only != r["closed"]:
        continue
    by[(r["dataset"], r["item"])][(r["noise"], r["severity"], r["method"])] = float(r[metric])
for ds in sorted({d for d, _ in by}):
    items = [k for k in by if k[0] == ds]
    def stats(sample):
        clean = sum(by[i][("clean", 0, "none")] for i in sample)
        conds = [c for c in by[sample[0]] if c[0] != "clean" and c[2] == "none"
                 and (severities is None or c[1] in severities)]
        noisy = {m: sum(by[i].get((n, s, m), 0) for i in sample for (n, s, _) in conds) / len(conds) for m in ["none", *methods]}
        loss = clean - noisy["none"]
        return {m: (noisy[m] - noisy["none"]) / loss if loss > 0 else float("nan") for m in methods}, loss / len(sample)
    point, loss = stats(items)
    rng = random.Random(0); boots = defaultdict(list)
    for _ in range(2000):
        s = [rng.choice(items) for _ in items]
        b, _ = stats(s)
        for m, v in b.items():
            if v == v:
                boots[m].append(v)
    print(f"{ds} {metric} (n={len(items)}, mean loss {100*loss:.1f} points):")
    for m in methods:
        v = sorted(boots[m]); lo, hi = v[int(0.025 * len(v))], v[int(0.975 * len(v)) - 1]
        print(f"  {m:12s} recovery {100*point[m]:+.0f}%  95% CI [{100*lo:+.0f}%, {100*hi:+.0f}%]")
