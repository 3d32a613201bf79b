"""concord.agreement against the krippendorff package (and scikit-learn's Cohen κ) on the
repository's datasets, plus the report table and the bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from concord import agreement

from .conftest import cases

krippendorff = pytest.importorskip("krippendorff")

#: The adult-content labels are an ordered scale: G(eneral) < P(arental guidance) < R < X.
SCALE = {"G": 0, "P": 1, "R": 2, "X": 3}


def reliability_matrix(data: pd.DataFrame) -> np.ndarray:
    """Annotators × items with NaN where an annotator did not rate an item."""
    return data.pivot_table(index="worker", columns="task", values="label", aggfunc="first").to_numpy(dtype=float)


@pytest.fixture(scope="module")
def adult_once(adult) -> pd.DataFrame:
    """One rating per (task, worker): the krippendorff package's matrix holds one, while
    concord counts repeated ratings as separate votes (conformance README, item 10)."""
    return adult.drop_duplicates(["task", "worker"], keep="first")


@pytest.fixture(scope="module")
def adult_scale(adult_once) -> pd.DataFrame:
    return adult_once.assign(label=adult_once["label"].map(SCALE))


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_matches_krippendorff_at_every_level(level, adult_scale):
    assert not adult_scale.duplicated(["task", "worker"]).any()
    expected = krippendorff.alpha(reliability_data=reliability_matrix(adult_scale), level_of_measurement=level)
    result = agreement.alpha(adult_scale, level=level)
    assert result.value == pytest.approx(expected, abs=1e-9)
    assert result.n_items == adult_scale["task"].nunique()
    assert result.interpretation


def test_alpha_on_text_and_boolean_labels_matches_krippendorff(adult_once, adult_scale, bluebirds):
    expected = krippendorff.alpha(reliability_data=reliability_matrix(adult_scale), level_of_measurement="nominal")
    assert agreement.alpha(adult_once).value == pytest.approx(expected, abs=1e-9)
    birds = bluebirds.assign(label=bluebirds["label"].astype(int))
    expected = krippendorff.alpha(reliability_data=reliability_matrix(birds), level_of_measurement="nominal")
    assert agreement.alpha(bluebirds).value == pytest.approx(expected, abs=1e-9)


def test_repeated_ratings_count_as_separate_votes(adult, adult_once):
    assert agreement.alpha(adult).value != pytest.approx(agreement.alpha(adult_once).value, abs=1e-6)


def test_ordered_levels_on_text_labels_need_declared_categories(adult):
    with pytest.raises(ValueError, match="needs the order of the labels"):
        agreement.alpha(adult, level="ordinal")
    declared = agreement.alpha(adult, level="ordinal", categories=["G", "P", "R", "X"])
    numeric = agreement.alpha(adult.assign(label=adult["label"].map(SCALE)), level="ordinal")
    assert declared.value == pytest.approx(numeric.value, abs=1e-12)


def test_an_ordered_categorical_declares_the_order_of_its_labels(adult):
    scale = pd.CategoricalDtype(["G", "P", "R", "X"], ordered=True)
    ordered = adult.assign(label=adult["label"].astype(scale))
    declared = agreement.alpha(adult, level="interval", categories=["G", "P", "R", "X"])
    assert agreement.alpha(ordered, level="interval").value == pytest.approx(declared.value, abs=1e-12)


@pytest.mark.parametrize(
    "case",
    [c for c in cases("krippendorff_alpha") if c["input"]["label_type"] != "set"],
    ids=lambda c: c["id"],
)
def test_alpha_conformance_cases(case):
    data = pd.DataFrame(case["input"]["triples"], columns=["item", "annotator", "label"])
    params = case["params"]
    result = agreement.alpha(
        data,
        level=params.get("level", "nominal"),
        categories=params.get("categories"),
        label_type={"str": "category", "int": "int", "float": "float", "bool": "bool"}[case["input"]["label_type"]],
    )
    if case["expected"].get("undefined"):
        assert result.value is None and result.undefined
        with pytest.raises(ValueError, match="undefined"):
            float(result)
    else:
        assert result.value == pytest.approx(case["expected"]["value"], abs=case["tolerance"].get("abs", 1e-9))


def test_cohen_matches_scikit_learn_for_two_annotators(bluebirds):
    metrics = pytest.importorskip("sklearn.metrics")
    first, second = bluebirds["worker"].unique()[:2]
    pair = bluebirds[bluebirds["worker"].isin([first, second])]
    wide = pair.pivot(index="task", columns="worker", values="label").dropna()
    expected = metrics.cohen_kappa_score(wide[first].astype(int), wide[second].astype(int))
    result = agreement.cohen(pair[pair["task"].isin(wide.index)])
    assert result.value == pytest.approx(expected, abs=1e-9)
    assert result.se > 0 and result.ci[0] < result.value < result.ci[1]
    assert 0 <= result.p_value <= 1


def test_fleiss_gwet_and_friends_are_numbers_with_intervals(adult):
    for function in (agreement.fleiss_generalized, agreement.gwet, agreement.brennan_prediger, agreement.percent_agreement, agreement.conger):
        result = function(adult)
        assert result.value is not None and math.isfinite(result.value), result
        assert result.ci is not None and result.ci[0] <= result.value <= result.ci[1], result
    weighted = agreement.gwet(adult.assign(label=adult["label"].map(SCALE)), weights="quadratic")
    assert weighted.name == "Gwet's AC2" and weighted.weighting == "quadratic"


def test_fleiss_kappa_is_undefined_when_items_have_different_numbers_of_ratings(adult):
    result = agreement.fleiss(adult)
    assert (result.value is None) == bool(result.undefined)


def test_bootstrap_gives_a_percentile_interval_reproducible_by_seed(adult):
    a = agreement.bootstrap(adult, "alpha", replicates=200, seed=7)
    b = agreement.bootstrap(adult, "alpha", replicates=200, seed=7)
    assert a.bootstrap == b.bootstrap
    low, high = a.bootstrap["ci"]
    assert low < a.value < high
    assert a.bootstrap["replicates"] == 200


def test_report_is_the_table_of_concord_agreement(adult, bluebirds):
    table = agreement.report(adult)
    assert list(table.index) == [
        "Percent agreement",
        "Krippendorff's α",
        "Fleiss' κ (generalised)",
        "Gwet's AC1",
        "Brennan–Prediger",
    ]
    assert list(table.columns) == ["metric", "value", "ci_low", "ci_high", "ci_method", "se", "p_value", "interpretation"]
    assert table.loc["Krippendorff's α", "value"] == pytest.approx(agreement.alpha(adult).value)
    two = bluebirds[bluebirds["worker"].isin(bluebirds["worker"].unique()[:2])]
    assert "Cohen's κ" in agreement.report(two).index
    boot = agreement.report(adult, ["alpha"], bootstrap=50)
    assert boot.loc["Krippendorff's α", "ci_method"] == "bootstrap, B = 50"


def test_pairs_give_cohen_for_every_pair_of_annotators(bluebirds):
    metrics = pytest.importorskip("sklearn.metrics")
    table = agreement.pairs(bluebirds)
    workers = bluebirds["worker"].nunique()
    assert len(table) == workers * (workers - 1) // 2  # every bluebird worker rated every item
    assert (table["annotator_a"] < table["annotator_b"]).all()
    row = table.iloc[0]
    wide = bluebirds.pivot(index="task", columns="worker", values="label")
    expected = metrics.cohen_kappa_score(wide[row.annotator_a].astype(int), wide[row.annotator_b].astype(int))
    assert row.kappa == pytest.approx(expected, abs=1e-9)
    assert row.shared_items == len(wide)
    assert row.ci_low < row.kappa < row.ci_high
    with pytest.raises(ValueError, match="identity, linear or quadratic"):
        agreement.pairs(bluebirds, weights="ordinal")
