"""concord vs crowd-kit and krippendorff in the same Python process, on peer_bench.py data.

    python /work/shared/bench/peer_bench.py gen --workdir /tmp/concord-bench \\
        --scenarios n100k_k5_r3to5,n1m_k5_r3to5
    python python/bench/bench.py --workdir /tmp/concord-bench \\
        --scenarios n100k_k5_r3to5,n1m_k5_r3to5 --peers mv,ds,mace,alpha

Times are wall seconds of the library call on a DataFrame already in memory (for concord that
includes building the engine's table from the columns); accuracy is against the scenario's
gold labels; "same labels" is the share of tasks where both give the same label. Peers not
named in --peers are not run (crowd-kit's GLAD takes about half an hour at 100k items).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from concord import agreement
from concord import aggregation as concord_models

MODELS = {"mv": "MajorityVote", "ds": "DawidSkene", "glad": "GLAD", "mace": "MACE"}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(call):
    """Result, wall seconds and CPU seconds of the process (all threads) for one call: on a
    shared machine the CPU seconds are the steadier measure."""
    start, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - start, time.process_time() - cpu


def accuracy(labels: pd.Series, gold: pd.Series) -> float:
    common = gold.index.intersection(labels.index)
    return float((labels.loc[common].to_numpy() == gold.loc[common].to_numpy()).mean())


def krippendorff_alpha(data: pd.DataFrame) -> float:
    import krippendorff

    # The value-counts form (items × labels) is the package's fast path; building it with
    # bincount over factorized codes is part of the timed call.
    tasks, task_names = pd.factorize(data["task"])
    labels, label_names = pd.factorize(data["label"], sort=True)
    k = len(label_names)
    counts = np.bincount(tasks * k + labels, minlength=len(task_names) * k).reshape(-1, k)
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))


def peer_model(crowdkit, key: str, cls: str, shares: dict, fitted_ours):
    """The crowd-kit model to time, the factor that scales its time to a whole fit, and what
    the scaling was. A share runs part of the work: GLAD's iterations cost the same each, and
    MACE's restarts are independent fits of a fixed number of iterations."""
    if key == "glad" and "glad" in shares:
        n = shares["glad"]
        whole = len(fitted_ours.loss_history_)
        return crowdkit.GLAD(n_iter=n), whole / n, f"{n} of the {whole} iterations concord's GLAD ran, scaled"
    if key == "mace" and "mace" in shares:
        n = shares["mace"]
        return crowdkit.MACE(n_restarts=n), 10 / n, f"{n} of 10 restarts, scaled"
    return getattr(crowdkit, cls)(), 1.0, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/concord-bench")
    parser.add_argument("--scenarios", default="n100k_k5_r3to5")
    parser.add_argument("--models", default="mv,ds,glad,mace")
    parser.add_argument("--peers", default="mv,ds,alpha", help="crowd-kit models (and alpha) to run as well")
    parser.add_argument(
        "--peer-share",
        default="",
        help="run part of a slow crowd-kit model and scale its time: glad=N runs N EM iterations "
        "(scaled to the iterations concord's GLAD needed), mace=N runs N of the 10 restarts",
    )
    args = parser.parse_args()
    shares = {k: int(v) for k, v in (pair.split("=") for pair in filter(None, args.peer_share.split(",")))}
    peers = set(filter(None, args.peers.split(",")))
    print(f"CPU: {cpu_model()} · {os.cpu_count()} logical CPUs · Python {platform.python_version()}")
    print()
    print("| data | what | concord s (CPU s) | peer s (CPU s) | speed-up (CPU) | concord accuracy | peer accuracy | same labels |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for scenario in filter(None, args.scenarios.split(",")):
        folder = os.path.join(args.workdir, scenario)
        data = pd.read_csv(os.path.join(folder, "labels.csv")).rename(columns={"item": "task"})
        gold = pd.read_csv(os.path.join(folder, "gold.csv")).set_index("item")["label"]
        name = f"{scenario} ({len(data):,} labels)"
        for key in filter(None, args.models.split(",")):
            cls = MODELS[key]
            fitted_ours = getattr(concord_models, cls)()
            ours, ours_s, ours_cpu = timed(lambda: fitted_ours.fit_predict(data))
            row = [name, cls, f"{ours_s:.2f} ({ours_cpu:.2f})", "", "", f"{accuracy(ours, gold):.4f}", "", ""]
            if key in peers:
                import crowdkit.aggregation as crowdkit

                model, scale, note = peer_model(crowdkit, key, cls, shares, fitted_ours)
                theirs, theirs_s, theirs_cpu = timed(lambda: model.fit_predict(data))
                if scale != 1.0:
                    measured = f"{theirs_s:.2f} ({theirs_cpu:.2f})"
                    theirs_s, theirs_cpu = theirs_s * scale, theirs_cpu * scale
                    row[3] = f"≈ {theirs_s:.0f} ({theirs_cpu:.0f}): {note}, measured {measured}"
                else:
                    row[3] = f"{theirs_s:.2f} ({theirs_cpu:.2f})"
                row[4] = f"{theirs_s / ours_s:.0f}× ({theirs_cpu / ours_cpu:.0f}×)"
                if scale != 1.0:
                    # A part of a fit does not give the whole fit's labels.
                    row[6] = row[7] = "(part of a fit)"
                else:
                    row[6] = f"{accuracy(theirs, gold):.4f}"
                    row[7] = f"{float((ours == theirs.reindex(ours.index)).mean()):.4f}"
            print("| " + " | ".join(row) + " |", flush=True)
        alpha, alpha_s, alpha_cpu = timed(lambda: agreement.alpha(data))
        row = [name, "Krippendorff's α (nominal)", f"{alpha_s:.2f} ({alpha_cpu:.2f})", "", "", f"α = {alpha.value:.6f}", "", ""]
        if "alpha" in peers:
            theirs, theirs_s, theirs_cpu = timed(lambda: krippendorff_alpha(data))
            row[3] = f"{theirs_s:.2f} ({theirs_cpu:.2f})"
            row[4] = f"{theirs_s / alpha_s:.0f}× ({theirs_cpu / alpha_cpu:.0f}×)"
            row[6] = f"α = {theirs:.6f}"
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
