"""The repository's crowd-kit conformance cases (tests/conformance/cases/crowdkit_aggregation),
run through the Python classes: the same numbers the Rust conformance runner checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from concord import aggregation

from .conftest import cases

CLASSES = {
    "majority_vote": "MajorityVote",
    "wawa": "Wawa",
    "zero_based_skill": "ZeroBasedSkill",
    "gold_majority_vote": "GoldMajorityVote",
    "dawid_skene": "DawidSkene",
    "one_coin_dawid_skene": "OneCoinDawidSkene",
    "glad": "GLAD",
    "mace": "MACE",
    "kos": "KOS",
    "mmsr": "MMSR",
}
CONSTRUCTOR_PARAMS = {"n_iter", "tol", "n_restarts", "method", "random_state", "smoothing", "alpha", "beta"}

AGGREGATION_CASES = [c for c in cases("crowdkit_aggregation") if c["metric"] in CLASSES]


def frame(case: dict) -> pd.DataFrame:
    return pd.DataFrame(case["input"]["triples"], columns=["task", "worker", "label"])


def label_key(value) -> str:
    return str(value)


@pytest.mark.parametrize("case", AGGREGATION_CASES, ids=[c["id"] for c in AGGREGATION_CASES])
def test_conformance_case(case):
    params = {k: v for k, v in case["params"].items() if k in CONSTRUCTOR_PARAMS}
    if "tol" in params and params["tol"] is None:
        params["tol"] = float("-inf")
    model = getattr(aggregation, CLASSES[case["metric"]])(**params)
    data = frame(case)
    gold = case["input"].get("gold")
    if case["metric"] == "gold_majority_vote":
        model.fit(data, pd.Series(gold))
    elif gold is not None:
        model.fit(data, true_labels=pd.Series(gold))
    else:
        model.fit(data)
    expected = case["expected"]
    tolerance = case["tolerance"]
    labels = {str(k): v for k, v in model.labels_.items()}
    if case["metric"] == "mace":
        truth = case["input"]["ground_truth"]
        got = np.mean([labels[t] == v for t, v in truth.items()])
        assert got >= expected["accuracy_vs_ground_truth"] - 0.05
        return
    assert labels == {str(k): v for k, v in expected["labels"].items()}
    for field, attribute in (("probas", "probas_"), ("scores", "scores_")):
        if field in expected:
            rows = getattr(model, attribute)
            for task, row in expected[field].items():
                for label, p in row.items():
                    got = rows.loc[rows.index.astype(str) == task].T
                    got = got[got.index.astype(str) == label].to_numpy().item()
                    assert abs(got - p) <= tolerance[f"{field}_abs"], (case["id"], task, label)
    if "skills" in expected:
        skills = {str(k): v for k, v in model.skills_.items()}
        for worker, s in expected["skills"].items():
            assert abs(skills[worker] - s) <= tolerance["skills_abs"], (case["id"], worker)
    if "priors" in expected:
        priors = {label_key(k): v for k, v in model.priors_.items()}
        for label, p in expected["priors"].items():
            assert abs(priors[label] - p) <= tolerance["priors_abs"]
    if "errors" in expected:
        errors = model.errors_
        for key, row in expected["errors"].items():
            worker, observed = key.split("|")
            for truth, p in row.items():
                got = errors.loc[(worker, observed), truth]
                assert abs(got - p) <= tolerance["errors_abs"], (case["id"], key, truth)
    if "alphas" in expected:
        for worker, a in expected["alphas"].items():
            assert abs(model.alphas_[worker] - a) <= tolerance["alphas_abs"]
    if "iterations_run" in expected:
        assert len(model.loss_history_) == expected["iterations_run"]
