"""The dense and policy passes of csa-eval JSONs (a dense pass and one policy run each), for the
GPU reports that time them (tiled_parts_report.py, tf32_split_report.py): per file the passes'
wall milliseconds and perplexities, and over a set of files their medians and the policy's speed
over dense."""
import statistics


def passes(d):
    """One csa-eval JSON (parsed) -> its passes' times, perplexities and the policy's label."""
    pol = d["runs"][0]
    return {
        "dense_ms": d["dense"]["wall_seconds"] * 1e3,
        "policy_ms": pol["wall_seconds"] * 1e3,
        "dense_ppl": d["dense"]["ppl"],
        "policy_ppl": pol["ppl"],
        "policy_label": pol["label"],
    }


def medians(runs):
    """passes() of several runs -> median times and the policy's speed over dense (of medians)."""
    dense = statistics.median(r["dense_ms"] for r in runs)
    policy = statistics.median(r["policy_ms"] for r in runs)
    return {"dense_ms_median": dense, "policy_ms_median": policy,
            "policy_over_dense_speed": dense / policy}
