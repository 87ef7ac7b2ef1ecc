"""Leave-one-noise-out table: for each image noise left out of the bank (results/final-loo-<noise>, written by
bench/run_reference_tables.sh loo), pdc / imc against none on that noise. Run from the repository root."""
import json, glob
print("| left-out noise | dataset | closed none | closed pdc | closed imc | open recall none | open recall pdc | open recall imc | perceived as (pdc) |")
print("|---|---|---|---|---|---|---|---|---|")
worst = []
for d in sorted(glob.glob("results/final-loo-*")):
    noise = d.split("final-loo-")[1]
    rows = json.load(open(d + "/results.json"))["rows"]
    recs = [json.loads(l) for l in open(d + "/cache.jsonl")]
    for ds in ("slake", "vqa_rad"):
        m = {}
        for meth in ("none", "pdc", "imc"):
            sel = [r for r in rows if r["dataset"] == ds and r["noise"] == noise and r["method"] == meth]
            m[meth] = (sum(r["closed_acc"] for r in sel) / len(sel), sum(r["open_recall"] for r in sel) / len(sel))
        seen = {}
        for r in recs:
            if r["dataset"] == ds and r["noise"] == noise and r["method"] == "pdc" and r.get("perceived"):
                seen[r["perceived"]] = seen.get(r["perceived"], 0) + 1
        top = ", ".join(f"{k} {100*v/sum(seen.values()):.0f}%" for k, v in sorted(seen.items(), key=lambda kv: -kv[1])[:3])
        worst.append((m["none"][0] - m["pdc"][0], m["none"][1] - m["pdc"][1], noise, ds))
        print(f"| {noise} | {ds} | {m['none'][0]:.1f} | {m['pdc'][0]:.1f} | {m['imc'][0]:.1f} | {m['none'][1]:.1f} | {m['pdc'][1]:.1f} | {m['imc'][1]:.1f} | {top} |")
c = max(worst); o = max(worst, key=lambda w: w[1])
print(f"\nlargest closed cost of pdc against none: {c[0]:.1f} points ({c[2]}, {c[3]}); largest open-recall cost: {o[1]:.1f} ({o[2]}, {o[3]})")
