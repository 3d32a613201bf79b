#!/usr/bin/env python3
"""Generate concord's own conformance cases (tests/conformance/concord/<family>/<id>.json).

Run from the repository root with the pinned reference packages
(/work/shared/bench/requirements-peers.txt):

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install -r requirements-peers.txt
    /tmp/peers/bin/python tests/conformance/concord/generate.py

Every expected value is what the reference package returns on the case's triples; the script
asserts the package versions, cross-checks each value against a second computation where one
exists, and rewrites the JSON files deterministically (same bytes on every run). The data are
synthetic, written for this suite. Schema: ../README.md.
"""

import json
import math
import os
import sys
import warnings
from importlib.metadata import version

warnings.simplefilter("ignore")  # pandas FutureWarnings from crowd-kit internals

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import krippendorff  # noqa: E402
import irrCAC.raw  # noqa: E402
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa  # noqa: E402
from sklearn.metrics import cohen_kappa_score, confusion_matrix  # noqa: E402
from crowdkit.aggregation import MACE, DawidSkene, GoldMajorityVote  # noqa: E402
from crowdkit.aggregation.utils import get_accuracy  # noqa: E402
from crowdkit.metrics.data import uncertainty  # noqa: E402

PINNED = {
    "crowd-kit": "1.4.2",
    "krippendorff": "0.9.0",
    "statsmodels": "0.15.0",
    "scikit-learn": "1.5.2",
    "irrCAC": "0.4.4",
    "numpy": "1.26.4",
    "pandas": "2.3.3",
    "scipy": "1.12.0",
}
for _pkg, _ver in PINNED.items():
    if version(_pkg) != _ver:
        sys.exit(f"{_pkg} {version(_pkg)} installed, {_ver} pinned: use the pinned environment")

OUT = os.path.dirname(os.path.abspath(__file__))
SOURCE = ("synthetic data written for concord's own conformance cases "
          "(tests/conformance/concord/generate.py)")
CLOSED = {"abs": 1e-09, "note": "closed-form; expected is the package's float64 result"}
IRRCAC_DIGITS = 15  # irrCAC rounds its output to `digits`; 15 as in the shared irrcac cases

CASES = []


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def from_columns(items, columns, decode=None):
    """Triples from per-annotator columns: columns = {annotator: [label or None per item]}."""
    triples = []
    for i, item in enumerate(items):
        for annotator, labels in columns.items():
            label = labels[i]
            if label is None:
                continue
            triples.append([item, annotator, decode(label) if decode else label])
    return triples


def from_strings(items, rows, code):
    """Triples from one string per annotator, one character per item ('.' = no answer)."""
    triples = []
    for annotator, text in rows.items():
        assert len(text) == len(items), (annotator, len(text))
        for item, ch in zip(items, text):
            if ch != ".":
                triples.append([item, annotator, code[ch]])
    return triples


def input_block(triples, label_type, **extra):
    block = {
        "format": "triples",
        "columns": ["item", "annotator", "label"],
        "label_type": label_type,
        "n_items": len({t[0] for t in triples}),
        "n_annotators": len({t[1] for t in triples}),
        "n_annotations": len(triples),
        "triples": triples,
    }
    block.update(extra)
    return block


def add(case_id, family, metric, params, inp, expected, tolerance, verified_with, edge_cases,
        notes, published=None):
    CASES.append({
        "id": case_id,
        "family": family,
        "metric": metric,
        "params": params,
        "input": inp,
        "expected": expected,
        "tolerance": tolerance,
        "published": published,
        "source": SOURCE,
        "verified_with": verified_with,
        "edge_cases": edge_cases,
        "notes": notes,
    })


def order(seq):
    """Distinct values in first-appearance order."""
    seen = []
    for x in seq:
        if x not in seen:
            seen.append(x)
    return seen


def reliability(triples, decode=lambda v: v):
    """krippendorff's layout: annotators x items, np.nan where missing."""
    items = order(t[0] for t in triples)
    annotators = sorted({t[1] for t in triples})
    cell = {(t[1], t[0]): decode(t[2]) for t in triples}
    assert len(cell) == len(triples), "one rating per (item, annotator)"
    return [[cell.get((a, i), np.nan) for i in items] for a in annotators]


def raw_ratings(triples):
    """irrCAC's layout: items x annotators DataFrame, NaN where missing."""
    items = order(t[0] for t in triples)
    annotators = sorted({t[1] for t in triples})
    cell = {(t[0], t[1]): t[2] for t in triples}
    assert len(cell) == len(triples), "one rating per (item, annotator)"
    return pd.DataFrame(
        [[cell.get((i, a), np.nan) for a in annotators] for i in items],
        index=items, columns=annotators, dtype=object)


def frame(triples):
    return pd.DataFrame(triples, columns=["task", "worker", "label"])


def f(x):
    return float(x)


def fmap(series):
    return {str(k): float(v) for k, v in series.items()}


def rnd(x, digits=12):
    return float(round(float(x), digits))


def irrcac_expected(est, ci_key):
    ci = [float(c) for c in est["confidence_interval"]]
    return {
        "value": f(est["coefficient_value"]),
        "coefficient_name": est["coefficient_name"],
        "pa": f(est["pa"]),
        "pe": f(est["pe"]),
        "se": f(est["se"]),
        ci_key: ci,
        "p_value": f(est["p_value"]),
        "z": f(est["z"]),
    }


def irrcac_tolerance(ci_key):
    tol = {"abs": 1e-09, "fields": ["value", "pa", "pe"], "se_ci_p_abs": 1e-06}
    if ci_key != "ci95":
        tol["ci_abs"] = 1e-06
    tol["note"] = ("se/ci/p follow Gwet's analytic variance formulas; irrCAC's interval and "
                   "p-value use Student's t with n-1 degrees of freedom (n = rated items)")
    return tol


# ---------------------------------------------------------------------------
# 1. value_domain as a list: string labels in a declared, non-alphabetical order
# ---------------------------------------------------------------------------

SEVERITY = ["none", "mild", "moderate", "severe"]   # declared order
ALPHABETICAL = sorted(SEVERITY)                     # mild < moderate < none < severe
POS = {v: i + 1 for i, v in enumerate(SEVERITY)}    # position in the declared order, 1-based

SEV_ITEMS = [str(i) for i in range(1, 14)]
SEV_COLUMNS = {
    #     1       2       3           4         5       6           7       8           9           10      11        12          13
    "A": ["none", "mild", "moderate", "severe", "none", "mild", "none", "moderate", "severe", "mild", None, "moderate", "none"],
    "B": ["none", "mild", "severe", "severe", "mild", "moderate", "none", "moderate", "moderate", "none", "severe", "mild", None],
    "C": ["mild", "mild", "moderate", "severe", "none", "mild", "none", None, "severe", "mild", "severe", "moderate", None],
}
SEV = from_columns(SEV_ITEMS, SEV_COLUMNS)

# the same kind of data where the declared category "moderate" is never used
GAP_ITEMS = [str(i) for i in range(1, 13)]
GAP_COLUMNS = {
    "A": ["none", "mild", "severe", "none", "mild", "severe", "none", "mild", "none", "severe", "mild", "none"],
    "B": ["none", "mild", "severe", "mild", "mild", "severe", "none", "none", "none", "mild", "mild", None],
    "C": ["mild", "mild", "severe", "none", "none", "severe", "none", "mild", None, "severe", "severe", "none"],
}
GAP = from_columns(GAP_ITEMS, GAP_COLUMNS)


def kripp_str_ordinal():
    data = reliability(SEV)
    value = krippendorff.alpha(data, value_domain=SEVERITY, level_of_measurement="ordinal")
    wrong = krippendorff.alpha(data, value_domain=ALPHABETICAL, level_of_measurement="ordinal")
    by_pos = krippendorff.alpha(reliability(SEV, POS.get), value_domain=[1, 2, 3, 4],
                                level_of_measurement="ordinal")
    assert abs(value - by_pos) < 1e-15
    assert abs(value - wrong) > 0.05
    add("kripp_ordinal_str_declared_order", "krippendorff_alpha", "krippendorff_alpha",
        {"level": "ordinal", "value_domain": SEVERITY, "categories": SEVERITY},
        input_block(SEV, "str"),
        {"value": f(value)}, CLOSED,
        {"package": "krippendorff", "version": "0.9.0",
         "call": ("krippendorff.alpha(reliability_data, value_domain=['none', 'mild', 'moderate', "
                  "'severe'], level_of_measurement='ordinal')  # reliability_data = annotators x "
                  "items of the string labels, np.nan where missing"),
         "result": f(value),
         "also": {"same call with value_domain in alphabetical order (wrong)": f(wrong),
                  "labels mapped to 1-based positions in value_domain, value_domain=[1, 2, 3, 4]":
                      f(by_pos)}},
        ["missing_values", "items_with_one_rating", "declared_order"],
        ("String labels on an ordinal scale whose declared order (params.value_domain, repeated "
         "in params.categories) is none < mild < moderate < severe; alphabetical order would be "
         "mild < moderate < none < severe. krippendorff 0.9.0 takes the strings directly: the "
         "value_domain list gives each label its rank, and the ordinal distance between ranks c < k "
         "is (sum of n_g for g = c..k - (n_c + n_k)/2)^2 over the pairable value frequencies n_g. "
         "Ordering the domain alphabetically gives %.6f instead. Item 13 has one rating "
         "(unpairable, dropped)." % wrong))


def kripp_str_interval():
    data = reliability(SEV, POS.get)
    value = krippendorff.alpha(data, value_domain=[1, 2, 3, 4], level_of_measurement="interval")
    zero_based = krippendorff.alpha(reliability(SEV, lambda v: POS[v] - 1),
                                    level_of_measurement="interval")
    wrong = krippendorff.alpha(
        reliability(SEV, lambda v: ALPHABETICAL.index(v) + 1), level_of_measurement="interval")
    assert abs(value - zero_based) < 1e-12
    try:
        krippendorff.alpha(reliability(SEV), value_domain=SEVERITY, level_of_measurement="interval")
        raise AssertionError("krippendorff accepted strings at the interval level")
    except TypeError as e:
        strings_error = "TypeError: " + str(e).splitlines()[0]
    add("kripp_interval_str_declared_order", "krippendorff_alpha", "krippendorff_alpha",
        {"level": "interval", "value_domain": SEVERITY, "categories": SEVERITY},
        input_block(SEV, "str"),
        {"value": f(value)}, CLOSED,
        {"package": "krippendorff", "version": "0.9.0",
         "call": ("krippendorff.alpha(reliability_data, value_domain=[1, 2, 3, 4], "
                  "level_of_measurement='interval')  # each label replaced by its 1-based "
                  "position in value_domain (none=1, mild=2, moderate=3, severe=4)"),
         "result": f(value),
         "also": {"the strings themselves with value_domain=[...strings]": strings_error,
                  "positions in alphabetical order (wrong)": f(wrong)}},
        ["missing_values", "items_with_one_rating", "declared_order"],
        ("Interval alpha on string labels: each label stands for its position in the declared "
         "order params.value_domain (none=1, mild=2, moderate=3, severe=4: equally spaced), "
         "distance (pos_c - pos_k)^2. krippendorff 0.9.0 cannot subtract strings (interval/ratio "
         "levels raise TypeError), so the reference call maps labels to positions first; alpha is "
         "invariant to the offset and scale of the positions (0-based gives the same value). "
         "Positions taken from the alphabetical order give %.6f instead." % wrong))


def kripp_str_interval_unused():
    data = reliability(GAP, POS.get)
    value = krippendorff.alpha(data, value_domain=[1, 2, 3, 4], level_of_measurement="interval")
    observed_only = krippendorff.alpha(
        reliability(GAP, lambda v: ["none", "mild", "severe"].index(v) + 1),
        level_of_measurement="interval")
    no_domain = krippendorff.alpha(data, level_of_measurement="interval")
    ordinal = krippendorff.alpha(reliability(GAP), value_domain=SEVERITY,
                                 level_of_measurement="ordinal")
    ordinal_observed = krippendorff.alpha(reliability(GAP), value_domain=["none", "mild", "severe"],
                                          level_of_measurement="ordinal")
    assert abs(value - no_domain) < 1e-15 and abs(ordinal - ordinal_observed) < 1e-15
    assert abs(value - observed_only) > 0.01
    add("kripp_interval_str_unused_declared_category", "krippendorff_alpha", "krippendorff_alpha",
        {"level": "interval", "value_domain": SEVERITY, "categories": SEVERITY},
        input_block(GAP, "str"),
        {"value": f(value)}, CLOSED,
        {"package": "krippendorff", "version": "0.9.0",
         "call": ("krippendorff.alpha(reliability_data, value_domain=[1, 2, 3, 4], "
                  "level_of_measurement='interval')  # labels replaced by their 1-based position "
                  "in value_domain: none=1, mild=2, severe=4 ('moderate'=3 never used)"),
         "result": f(value),
         "also": {"positions among the OBSERVED labels only (none=1, mild=2, severe=3; wrong)":
                      f(observed_only),
                  "ordinal level, value_domain=the 4 declared strings": f(ordinal),
                  "ordinal level, value_domain=the 3 observed strings": f(ordinal_observed)}},
        ["missing_values", "unused_category", "declared_order"],
        ("The declared category 'moderate' is never used. At the interval level it still holds "
         "position 3, so mild-severe is 2 steps apart and none-severe 3: alpha = %.6f. Positions "
         "among the observed labels (severe=3) give %.6f. (At the ordinal level an unused "
         "category has frequency 0 and changes nothing: %.6f either way.)"
         % (value, observed_only, ordinal)))


def irrcac_gwet_str_linear():
    ratings = raw_ratings(SEV)
    res = irrCAC.raw.CAC(ratings, weights="linear", categories=SEVERITY, digits=IRRCAC_DIGITS).gwet()
    numeric = raw_ratings([[i, a, POS[v]] for i, a, v in SEV])
    res_num = irrCAC.raw.CAC(numeric, weights="linear", categories=[1, 2, 3, 4],
                             digits=IRRCAC_DIGITS).gwet()
    alpha_order = irrCAC.raw.CAC(ratings, weights="linear", digits=IRRCAC_DIGITS).gwet()
    est = res["est"]
    assert abs(est["coefficient_value"] - res_num["est"]["coefficient_value"]) < 1e-12
    assert alpha_order["categories"] == ALPHABETICAL
    w = np.asarray(res["weights"], float)
    w_expected = 1 - np.abs(np.subtract.outer(np.arange(4), np.arange(4))) / 3
    assert np.allclose(w, w_expected)
    add("irrcac_raw_gwet_str_declared_order_linear_weights", "irrcac", "gwet_ac1_ac2",
        {"weights": "linear",
         "weights_matrix": [[rnd(x) for x in row] for row in w.tolist()],
         "categories": SEVERITY, "value_domain": SEVERITY,
         "confidence_level": 0.95, "population_size": "infinite", "variance": "raw"},
        input_block(SEV, "str"),
        irrcac_expected(est, "ci95"), irrcac_tolerance("ci95"),
        {"package": "irrCAC", "version": "0.4.4",
         "call": ("irrCAC.raw.CAC(ratings, weights='linear', categories=['none', 'mild', "
                  "'moderate', 'severe'], digits=15).gwet()  # ratings = items x annotators "
                  "DataFrame of the string labels, NaN where missing"),
         "result": f(est["coefficient_value"]),
         "also": {"categories mapped to 1..4 in declared order, categories=[1, 2, 3, 4]":
                      f(res_num["est"]["coefficient_value"]),
                  "categories=None (irrCAC sorts the observed strings alphabetically; wrong)":
                      f(alpha_order["est"]["coefficient_value"])}},
        ["missing_values", "items_with_one_rating", "declared_order"],
        ("irrCAC builds weights from category VALUES when every category is numeric; for string "
         "categories (irrCAC.weights.Weights) it uses the positions 1..q in the order of the "
         "categories list, so passing categories in the declared order none, mild, moderate, "
         "severe gives linear weights 1 - |k-l|/3 over those positions (identical to mapping the "
         "labels to 1..4). Without categories irrCAC sorts the labels alphabetically and gets "
         "AC2 = %.6f. Item 13 has one rating: it counts in the chance term (pi_k) but not in pa."
         % alpha_order["est"]["coefficient_value"]))


def cohen_str_declared(case_id, triples, weights, edge, extra_note):
    a = {t[0]: t[2] for t in triples if t[1] == "A"}
    b = {t[0]: t[2] for t in triples if t[1] == "B"}
    both = [i for i in order(t[0] for t in triples) if i in a and i in b]
    both_triples = [t for t in triples if t[0] in both and t[1] in ("A", "B")]
    y1 = [a[i] for i in both]
    y2 = [b[i] for i in both]
    value = cohen_kappa_score(y1, y2, labels=SEVERITY, weights=weights)
    wrong = cohen_kappa_score(y1, y2, weights=weights)
    table = confusion_matrix(y1, y2, labels=SEVERITY)
    res = cohens_kappa(table, wt=weights)  # weights = positions 0..K-1 of the table's order
    assert abs(res.kappa - value) < 1e-12
    expected = {"value": f(res.kappa), "ase": f(res.std_kappa), "ci95_low": f(res.kappa_low),
                "ci95_high": f(res.kappa_upp), "ase_h0": f(res.std_kappa0), "z": f(res.z_value),
                "p_two_sided": f(res.pvalue_two_sided)}
    add(case_id, "cohen_kappa", "cohen_kappa",
        {"weights": weights, "categories": SEVERITY, "value_domain": SEVERITY,
         "ci": "asymptotic (Fleiss-Cohen-Everitt ASE), 95%"},
        input_block(both_triples, "str"),
        expected, CLOSED,
        {"package": "statsmodels", "version": "0.15.0",
         "call": ("cohens_kappa(confusion_matrix(y_A, y_B, labels=['none', 'mild', 'moderate', "
                  "'severe']), wt='%s')" % weights),
         "result": f(res.kappa),
         "also": {"sklearn cohen_kappa_score(y_A, y_B, labels=[declared order], weights='%s')"
                  % weights: f(value),
                  "sklearn cohen_kappa_score(y_A, y_B, weights='%s') without labels (sorted "
                  "observed labels; wrong)" % weights: f(wrong)}},
        edge,
        ("Two annotators, string labels with the declared order none < mild < moderate < severe "
         "(params.categories). Weighted kappa with %s disagreement weights on the POSITIONS "
         "0..3 of the declared order (statsmodels: table rows/columns in that order, weights "
         "np.arange(4); scikit-learn: labels=[declared order]). Rows = annotator A. The "
         "asymptotic interval is kappa +- 1.96 ase, not clipped to [-1, 1]; z = kappa / ase_h0. %s"
         % (weights, extra_note)))


# ---------------------------------------------------------------------------
# 2. input.gold_pairs: several gold labels for an item
# ---------------------------------------------------------------------------

GOLD_ITEMS = ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"]
GOLD_ROWS = {  # c = cat, d = dog, f = fox
    "w1": "cfdcdfc.",
    "w2": "dfffc.dd",
    "w3": "fcdd.fcf",
    "w4": "cfcc.dd.",
}
CDF = {"c": "cat", "d": "dog", "f": "fox"}
GOLD_TRIPLES = from_strings(GOLD_ITEMS, GOLD_ROWS, CDF)
GOLD_PAIRS = [["t1", "cat"], ["t1", "dog"], ["t2", "fox"], ["t3", "dog"], ["t3", "fox"],
              ["t4", "cat"]]


def gold_series(pairs):
    return pd.Series([p[1] for p in pairs], index=[p[0] for p in pairs])


def worked_gold_example():
    gold = {}
    for item, label in GOLD_PAIRS:
        gold.setdefault(item, set()).add(label)
    parts = []
    for t in GOLD_TRIPLES:
        if t[1] == "w3" and t[0] in gold:
            ok = t[2] in gold[t[0]]
            parts.append("%s '%s' (gold {%s}) %s" % (t[0], t[2], ", ".join(sorted(gold[t[0]])),
                                                    "correct" if ok else "wrong"))
    n_ok = sum(1 for t in GOLD_TRIPLES if t[1] == "w3" and t[0] in gold and t[2] in gold[t[0]])
    n = sum(1 for t in GOLD_TRIPLES if t[1] == "w3" and t[0] in gold)
    return "w3: " + "; ".join(parts) + " -> %d/%d" % (n_ok, n)


GOLD_SEMANTICS = (
    "input.gold_pairs lists [item, gold label] pairs; an item may have several gold labels (t1: "
    "cat or dog, t3: dog or fox). crowd-kit 1.4.2 receives them as a true_labels Series with a "
    "repeated task index; get_accuracy joins the answers to it on task (one row per answer x gold "
    "label of the task), scores each row label == gold, then keeps ONE row per distinct (task, "
    "worker, label) with the highest score. So an answer counts as correct iff it equals ANY of "
    "its item's gold labels, and it counts once, not once per gold label. Worked example, %s. "
    "Only answers on items that have gold count. (Side effect of the same drop_duplicates: "
    "identical repeated answers (same item, annotator and label) count once; see "
    "ck_gold_accuracy_repeated_answers.)")


def gold_mv_gold_pairs():
    df = frame(GOLD_TRIPLES)
    gold = gold_series(GOLD_PAIRS)
    gmv = GoldMajorityVote().fit(df, gold)
    probas = gmv.predict_proba(df)
    labels = gmv.predict(df)
    skills = gmv.skills_
    # cross-check: any-of accuracy by hand, then skill-weighted vote
    gold_sets = {}
    for item, label in GOLD_PAIRS:
        gold_sets.setdefault(item, set()).add(label)
    for w in GOLD_ROWS:
        answers = {(t[0], t[2]) for t in GOLD_TRIPLES if t[1] == w and t[0] in gold_sets}
        acc = sum(lab in gold_sets[i] for i, lab in answers) / len(answers)
        assert abs(acc - skills[w]) < 1e-15, (w, acc, skills[w])
    add("ck_gold_majority_vote_gold_pairs", "crowdkit_aggregation", "gold_majority_vote",
        {"crowdkit_class": "GoldMajorityVote", "defaults": True},
        input_block(GOLD_TRIPLES, "str", gold_pairs=GOLD_PAIRS),
        {"labels": {k: v for k, v in labels.items()},
         "skills": fmap(skills),
         "probas": {str(t): {str(c): f(probas.loc[t, c]) for c in probas.columns}
                    for t in probas.index}},
        {"labels": "exact", "skills_abs": 1e-06, "probas_abs": 1e-06},
        {"package": "crowd-kit", "version": "1.4.2",
         "call": ("GoldMajorityVote().fit(df, true_labels).predict_proba(df)  # true_labels = "
                  "pd.Series([label for item, label in gold_pairs], index=[item for item, label "
                  "in gold_pairs])"),
         "result": {k: v for k, v in labels.items()}},
        ["gold_pairs"],
        ("Skill of an annotator = accuracy on the gold items, then a skill-weighted majority vote "
         "on ALL items: probas[item][label] = sum of the skills of the annotators who gave that "
         "label / sum over labels; gold items are labelled by this vote too (their gold labels "
         "are not copied to the output). " + GOLD_SEMANTICS % worked_gold_example() + " Ties in the weighted vote go "
         "to the first label in sorted order, as in crowd-kit's MajorityVote."))


def accuracy_on_gold_gold_pairs():
    df = frame(GOLD_TRIPLES)
    gold = gold_series(GOLD_PAIRS)
    value = get_accuracy(df, gold)
    per_worker = get_accuracy(df, gold, by="worker")
    gold_sets = {}
    for item, label in GOLD_PAIRS:
        gold_sets.setdefault(item, set()).add(label)
    answers = {(t[0], t[1], t[2]) for t in GOLD_TRIPLES if t[0] in gold_sets}
    assert abs(sum(lab in gold_sets[i] for i, _, lab in answers) / len(answers) - value) < 1e-15
    first_only = get_accuracy(df, gold.groupby(level=0).first())
    add("ck_gold_accuracy_gold_pairs", "crowdkit_metric", "accuracy_on_gold", {},
        input_block(GOLD_TRIPLES, "str", gold_pairs=GOLD_PAIRS),
        {"value": f(value), "per_worker": fmap(per_worker)}, CLOSED,
        {"package": "crowd-kit", "version": "1.4.2",
         "call": ("crowdkit.aggregation.utils.get_accuracy(df, true_labels[, by='worker'])  # "
                  "true_labels = pd.Series of the gold_pairs labels indexed by their items "
                  "(repeated index)"),
         "result": f(value),
         "also": {"only the first gold label of each item": f(first_only)}},
        ["gold_pairs"],
        ("Micro accuracy over the answers on items with gold (value) and per annotator "
         "(per_worker). " + GOLD_SEMANTICS % worked_gold_example()
         + " Here %d distinct answers fall on gold items." % len(answers)))


def accuracy_on_gold_repeated_answers():
    items = ["t1", "t2", "t3", "t4", "t5"]
    triples = [
        ["t1", "w1", "yes"], ["t1", "w1", "yes"], ["t1", "w1", "no"],
        ["t1", "w2", "no"], ["t1", "w2", "no"],
        ["t2", "w1", "no"], ["t2", "w2", "no"], ["t2", "w2", "yes"],
        ["t3", "w1", "yes"], ["t3", "w2", "yes"], ["t3", "w2", "yes"], ["t3", "w2", "yes"],
        ["t4", "w1", "no"], ["t4", "w2", "yes"],
        ["t5", "w1", "no"], ["t5", "w2", "no"], ["t5", "w2", "no"],
    ]
    assert order(t[0] for t in triples) == items
    gold = {"t1": "yes", "t2": "no", "t3": "yes", "t5": "no"}
    df = frame(triples)
    s = pd.Series(gold)
    value = get_accuracy(df, s)
    per_worker = get_accuracy(df, s, by="worker")
    per_row = sum(t[2] == gold[t[0]] for t in triples if t[0] in gold) / sum(
        1 for t in triples if t[0] in gold)
    distinct = {tuple(t) for t in triples if t[0] in gold}
    assert abs(sum(lab == gold[i] for i, _, lab in distinct) / len(distinct) - value) < 1e-15
    add("ck_gold_accuracy_repeated_answers", "crowdkit_metric", "accuracy_on_gold", {},
        input_block(triples, "str", gold=gold),
        {"value": f(value), "per_worker": fmap(per_worker)}, CLOSED,
        {"package": "crowd-kit", "version": "1.4.2",
         "call": "crowdkit.aggregation.utils.get_accuracy(df, gold[, by='worker'])",
         "result": f(value),
         "also": {"every annotation row counted (not crowd-kit)": f(per_row)}},
        ["repeated_annotations"],
        ("Repeated answers: w1 answers t1 'yes' twice and 'no' once; w2 answers t1 'no' twice, "
         "t3 'yes' three times and t5 'no' twice. crowd-kit's get_accuracy drops duplicate (task, worker, label) "
         "rows before averaging, so identical repeats count ONCE while different answers to the "
         "same item each count: w1 keeps t1 yes (correct), t1 no (wrong), t2 no (correct), t3 yes "
         "(correct), t5 no (correct) -> 4/5; w2 keeps t1 no (wrong), t2 no (correct), t2 yes "
         "(wrong), t3 yes (correct), t5 no (correct) -> 3/5; t4 has no gold. %d distinct answers on gold items, %d correct -> %s "
         "(counting every row would give %s). This departs from README rule 6 (repeats are "
         "separate votes) for accuracy on gold, and equally for the skills of GoldMajorityVote, "
         "MajorityVote, Wawa and ZeroBasedSkill, which call the same get_accuracy." % (len(distinct),
                                 sum(lab == gold[i] for i, _, lab in distinct),
                                 repr(f(value)), repr(per_row))))


# ---------------------------------------------------------------------------
# 3. uncertainty with workers_skills
# ---------------------------------------------------------------------------

UNC_ITEMS = ["X1", "X2", "X3", "X4", "X5", "X6"]
UNC_ROWS = {  # y = Yes, n = No, m = Maybe
    "A": "yynmy.",
    "B": "ynnyym",
    "C": "nymmyy",
    "D": "y.nmnm",
}
UNC = from_strings(UNC_ITEMS, UNC_ROWS, {"y": "Yes", "n": "No", "m": "Maybe"})
UNC_SKILLS = {"A": 0.9, "B": 0.6, "C": 0.75, "D": 0.5}


def uncertainty_by_hand(by):
    labels = order(t[2] for t in UNC)
    k = len(labels)
    key = 0 if by == "task" else 1
    sums = {}
    for t in UNC:
        s = UNC_SKILLS[t[1]]
        row = sums.setdefault(t[key], [0.0] * k)
        for j, lab in enumerate(labels):
            row[j] += s if t[2] == lab else (1 - s) / (k - 1)
    out = {}
    for g, row in sums.items():
        tot = sum(row)
        out[g] = -sum(x / tot * math.log(x / tot) for x in row if x > 0)
    return out


def uncertainty_case(case_id, by, aggregate):
    df = frame(UNC)
    skills = pd.Series(UNC_SKILLS)
    res = uncertainty(df, workers_skills=skills, compute_by=by, aggregate=aggregate)
    hand = uncertainty_by_hand(by)
    if aggregate:
        expected = {"value": f(res)}
        assert abs(res - sum(hand.values()) / len(hand)) < 1e-12
        result = f(res)
    else:
        expected = {"values": fmap(res)}
        assert all(abs(hand[k] - v) < 1e-12 for k, v in expected["values"].items())
        result = expected["values"]
    unweighted = uncertainty(df, compute_by=by, aggregate=aggregate)
    add(case_id, "crowdkit_metric", "uncertainty",
        {"compute_by": by, "aggregate": aggregate, "workers_skills": UNC_SKILLS},
        input_block(UNC, "str"),
        expected, CLOSED,
        {"package": "crowd-kit", "version": "1.4.2",
         "call": ("crowdkit.metrics.data.uncertainty(df, workers_skills=pd.Series(%s), "
                  "compute_by='%s', aggregate=%s)" % (UNC_SKILLS, by, aggregate)),
         "result": result,
         "also": {"without workers_skills (every skill 1)":
                      f(unweighted) if aggregate else fmap(unweighted)}},
        ["missing_values"],
        ("Skill-weighted label entropy (natural log). K = 3 = the labels used anywhere in the "
         "data (Yes, No, Maybe), even for a %s whose answers use fewer. Each answer of annotator "
         "w with skill s contributes s to its own label and (1 - s)/(K - 1) to every other "
         "label; the contributions are summed per %s, normalised to a distribution p, and "
         "H = -sum p log p. %s"
         % ("task" if by == "task" else "worker", "task (item)" if by == "task" else
            "worker (annotator)",
            "aggregate=true: the mean of the per-%s entropies, key 'value'." % by if aggregate else
            "aggregate=false: one entropy per %s, key 'values' (map keyed by %s id)."
            % (by, "item" if by == "task" else "annotator"))))


# ---------------------------------------------------------------------------
# 4. Fleiss' kappa with P_bar and Pe_bar
# ---------------------------------------------------------------------------

def fleiss_parts(table):
    """statsmodels.stats.inter_rater.fleiss_kappa's own intermediate quantities."""
    table = 1.0 * np.asarray(table)
    n_sub, n_cat = table.shape
    n_total = table.sum()
    n_rat = table.sum(1).max()
    assert n_total == n_sub * n_rat
    p_cat = table.sum(0) / n_total
    p_rat = ((table * table).sum(1) - n_rat) / (n_rat * (n_rat - 1.0))
    p_mean = p_rat.mean()
    p_mean_exp = (p_cat * p_cat).sum()
    return p_mean, p_mean_exp, (p_mean - p_mean_exp) / (1 - p_mean_exp), p_cat


def fleiss_case(case_id, triples, label_type, categories, n_cat, edge, note):
    items = order(t[0] for t in triples)
    raters = sorted({t[1] for t in triples})
    cell = {(t[0], t[1]): t[2] for t in triples}
    data = [[cell[(i, r)] for r in raters] for i in items]
    table, cats = aggregate_raters(data, n_cat=n_cat)
    kappa = fleiss_kappa(table, method="fleiss")
    p_bar, pe_bar, kappa2, p_cat = fleiss_parts(table)
    assert kappa == kappa2, (kappa, kappa2)
    if categories is not None:
        assert [c for c in cats.tolist()] == categories
    params = {"method": "fleiss"}
    if categories is not None:
        params["categories"] = categories
    add(case_id, "fleiss_kappa", "fleiss_kappa", params,
        input_block(triples, label_type),
        {"value": f(kappa), "P_bar": f(p_bar), "Pe_bar": f(pe_bar)}, CLOSED,
        {"package": "statsmodels", "version": "0.15.0",
         "call": ("fleiss_kappa(aggregate_raters(data%s)[0], method='fleiss')  # data = items x "
                  "raters; P_bar, Pe_bar recomputed from the same table exactly as fleiss_kappa "
                  "does internally (p_mean, p_mean_exp)" % (", n_cat=%d" % n_cat if n_cat else "")),
         "result": f(kappa),
         "also": {"category proportions p_j": [f(x) for x in p_cat]}},
        edge,
        ("P_bar = mean over items of P_i = (sum_j n_ij^2 - n) / (n (n - 1)), n = raters per item "
         "(equal for every item); Pe_bar = sum_j p_j^2 with p_j = the share of all ratings in "
         "category j; kappa = (P_bar - Pe_bar) / (1 - Pe_bar). " + note))


# ---------------------------------------------------------------------------
# 5. other params with non-default values
# ---------------------------------------------------------------------------

NUM_ITEMS = [str(i) for i in range(1, 16)]
NUM_COLUMNS = {
    "R1": [1, 2, 3, 3, 5, 4, 1, 2, 4, 5, 3, None, 2, 1, 4],
    "R2": [1, 2, 3, 4, 5, 4, 2, 2, 4, 4, 3, 2, 2, None, 4],
    "R3": [2, 2, 3, 3, 4, 4, 1, 3, 4, 5, None, 2, 1, 1, 5],
    "R4": [1, 3, 3, 3, 5, 3, 1, 2, None, 5, 3, 2, 2, 1, 4],
}
NUM = from_columns(NUM_ITEMS, NUM_COLUMNS)


def irrcac_inference_case(case_id, method, metric, weights, conf, n_pop):
    ratings = raw_ratings(NUM)
    kwargs = {"weights": weights, "categories": [1, 2, 3, 4, 5], "confidence_level": conf,
              "digits": IRRCAC_DIGITS}
    if n_pop is not None:
        kwargs["N"] = n_pop
    cac = irrCAC.raw.CAC(ratings, **kwargs)
    res = getattr(cac, method)()
    default = getattr(irrCAC.raw.CAC(ratings, weights=weights, categories=[1, 2, 3, 4, 5],
                                     digits=IRRCAC_DIGITS), method)()
    est = res["est"]
    ci_key = "ci95" if conf == 0.95 else "ci"
    assert est["coefficient_value"] == default["est"]["coefficient_value"]
    n = len(ratings.dropna(how="all"))
    # the variance factor: (1 - n/N); the interval: t quantile with n - 1 df
    from scipy import stats
    se_inf = default["est"]["se"]
    assert abs(est["se"] - se_inf * math.sqrt(1 - (n / n_pop if n_pop else 0.0))) < 1e-12
    t = stats.t.ppf(0.5 + conf / 2, n - 1)
    lo = est["coefficient_value"] - t * est["se"]
    assert abs(est["confidence_interval"][0] - lo) < 1e-12
    w = np.asarray(res["weights"], float)
    call_args = ", ".join(
        ["weights='%s'" % weights, "categories=[1, 2, 3, 4, 5]", "confidence_level=%s" % conf]
        + (["N=%d" % n_pop] if n_pop else []) + ["digits=15"])
    parts = []
    if conf != 0.95:
        parts.append("confidence_level=%s: the interval is est +- t_{(1+%s)/2, n-1} * se with "
                     "n = %d rated items (t = %.6f), clipped above at 1; key '%s' (not 'ci95')."
                     % (conf, conf, n, t, ci_key))
    if n_pop:
        parts.append("population_size=%d: finite-population correction, variance x (1 - n/N) = "
                     "(1 - %d/%d), so se = se_infinite * sqrt(1 - %d/%d) (se_infinite = %.12f); "
                     "the coefficient itself does not change." % (n_pop, n, n_pop, n, n_pop, se_inf))
    parts.append("p_value is two-sided from Student's t with n - 1 df, z = est / se.")
    add(case_id, "irrcac", metric,
        {"weights": weights,
         "weights_matrix": [[rnd(x) for x in row] for row in w.tolist()],
         "categories": [1, 2, 3, 4, 5],
         "confidence_level": conf,
         "population_size": n_pop if n_pop else "infinite",
         "variance": "raw"},
        input_block(NUM, "int"),
        irrcac_expected(est, ci_key), irrcac_tolerance(ci_key),
        {"package": "irrCAC", "version": "0.4.4",
         "call": "irrCAC.raw.CAC(ratings, %s).%s()" % (call_args, method),
         "result": f(est["coefficient_value"]),
         "also": {"se with confidence_level=0.95, N=inf": f(se_inf),
                  "interval with confidence_level=0.95, N=inf":
                      [float(c) for c in default["est"]["confidence_interval"]]}},
        ["missing_values"],
        "raw ratings: rows = items, columns = annotators (NaN = missing). " + " ".join(parts))


def kripp_ratio():
    items = [str(i) for i in range(1, 11)]
    columns = {
        "A": [0, 2, 5, 10, 3, 0, 8, 1, 4, 6],
        "B": [0, 3, 5, 12, 2, 1, 8, None, 4, 7],
        "C": [1, 2, 6, 10, 3, 0, None, 1, 5, 6],
    }
    triples = from_columns(items, columns)
    data = reliability(triples)
    value = krippendorff.alpha(data, level_of_measurement="ratio")
    interval = krippendorff.alpha(data, level_of_measurement="interval")
    add("kripp_ratio_with_zeros", "krippendorff_alpha", "krippendorff_alpha",
        {"level": "ratio"},
        input_block(triples, "int"),
        {"value": f(value)}, CLOSED,
        {"package": "krippendorff", "version": "0.9.0",
         "call": "krippendorff.alpha(reliability_data, level_of_measurement='ratio')",
         "result": f(value),
         "also": {"level_of_measurement='interval'": f(interval)}},
        ["missing_values", "zero_values"],
        ("Ratio distance ((c - k) / (c + k))^2 on the label values; the pair (0, 0) has distance "
         "0 (krippendorff defines 0/0 as 0) and (0, k > 0) has distance 1. Value domain = the "
         "observed values."))


MACE_ITEMS = ["q%02d" % i for i in range(1, 21)]
MACE_TRUTH = "pnppnnpnpnppnpnnpnpp"
MACE_ROWS = {  # p = pos, n = neg
    "u1": "pnppnnpnpnppnpnnpnnp",   # 19/20
    "u2": "pnpnnnpnp.ppnpnpp.pp",   # 16/18
    "u3": "pnppnpp.pnnpnpnnpppp",   # 16/19
    "u4": "pppppppppppppppppppp",   # spammer: always pos
    "u5": "npnp.npnppnp.nppnpnn",   # near-random
}
PN = {"p": "pos", "n": "neg"}
MACE_TRIPLES = from_strings(MACE_ITEMS, MACE_ROWS, PN)
# the same annotators, but u4 is a random spammer instead of a constant one
MACE_ROWS_RANDOM = dict(MACE_ROWS, u4="ppnpnpnnppnppnpnnnpp")
MACE_TRIPLES_RANDOM = from_strings(MACE_ITEMS, MACE_ROWS_RANDOM, PN)
MACE_GT = {i: PN[c] for i, c in zip(MACE_ITEMS, MACE_TRUTH)}


def mace_case(case_id, triples, spammer, method, n_iter, smoothing, alpha, beta, note):
    df = frame(triples)
    m = MACE(n_restarts=1, n_iter=n_iter, method=method, smoothing=smoothing, alpha=alpha,
             beta=beta, random_state=0).fit(df)
    labels = {str(k): v for k, v in m.labels_.items()}
    acc = sum(labels[i] == MACE_GT[i] for i in labels) / len(labels)
    default = MACE(n_restarts=1, n_iter=n_iter, method=method, random_state=0).fit(df)
    default_labels = {str(k): v for k, v in default.labels_.items()}
    same_as_default = bool(np.array_equal(m.thetas_, default.thetas_)
                           and np.array_equal(m.spamming_, default.spamming_))
    add(case_id, "crowdkit_aggregation", "mace",
        {"n_restarts": 1, "n_iter": n_iter, "method": method, "random_state": 0,
         "smoothing": smoothing, "alpha": alpha, "beta": beta},
        input_block(triples, "str", ground_truth=MACE_GT),
        {"labels": labels, "accuracy_vs_ground_truth": f(acc),
         "thetas": [[f(x) for x in row] for row in m.thetas_.tolist()]},
        {"labels": "exact for this seed; contract is accuracy_vs_ground_truth",
         "thetas_abs": 1e-06},
        {"package": "crowd-kit", "version": "1.4.2",
         "call": ("MACE(n_restarts=1, n_iter=%d, method='%s', smoothing=%s, alpha=%s, beta=%s, "
                  "random_state=0).fit(df)" % (n_iter, method, smoothing, alpha, beta)),
         "result": {"accuracy_vs_ground_truth": f(acc)},
         "also": {"same call with default smoothing/alpha/beta: identical parameters":
                      same_as_default,
                  "accuracy with defaults": f(sum(default_labels[i] == MACE_GT[i]
                                                  for i in default_labels) / len(default_labels))}},
        ["spammer"],
        ("MACE (Hovy et al. 2013); u4 is a spammer (%s), u5 is near random. "
         "thetas rows follow crowd-kit's worker order (first appearance: u1..u5), columns its "
         "label order (first appearance: pos, neg); labels and thetas are RNG-specific, the "
         "contract is accuracy_vs_ground_truth (ground_truth is never an input). " % spammer
         + note))


def ds_tol_null():
    df = frame(MACE_TRIPLES)
    n_iter = 30
    ds = DawidSkene(n_iter=n_iter, tol=-np.inf).fit(df)
    ds0 = DawidSkene(n_iter=n_iter, tol=0).fit(df)
    stop0 = len(ds0.loss_history_)
    assert len(ds.loss_history_) == n_iter and stop0 < n_iter
    probas = ds.probas_
    errors = {}
    for (w, obs), row in ds.errors_.iterrows():
        errors["%s|%s" % (w, obs)] = {str(c): f(row[c]) for c in ds.errors_.columns}
    labels = {str(k): v for k, v in ds.labels_.items()}
    acc = sum(labels[i] == MACE_GT[i] for i in labels) / len(labels)
    max_diff = float(np.abs(ds.probas_.values - ds0.probas_.values).max())
    add("ck_dawid_skene_tol_null", "crowdkit_aggregation", "dawid_skene",
        {"n_iter": n_iter, "tol": None, "init": "majority-vote probabilities",
         "stop_rule": "tol null: never stop early, run exactly n_iter EM iterations"},
        input_block(MACE_TRIPLES, "str", ground_truth=MACE_GT),
        {"labels": labels,
         "probas": {str(t): {str(c): f(probas.loc[t, c]) for c in probas.columns}
                    for t in probas.index},
         "priors": fmap(ds.priors_),
         "iterations_run": len(ds.loss_history_),
         "errors": errors},
        {"labels": "exact", "probas_abs": 1e-06, "priors_abs": 1e-06, "errors_abs": 1e-06},
        {"package": "crowd-kit", "version": "1.4.2",
         "call": "DawidSkene(n_iter=30, tol=-np.inf).fit(df)  # tol=-inf: the stop test "
                 "new_loss - loss < tol never holds",
         "result": {"iterations_run": len(ds.loss_history_), "accuracy_vs_ground_truth": f(acc)},
         "also": {"iterations_run with tol=0": stop0,
                  "ELBO per annotation, iterations 1-6": [f(x) for x in ds.loss_history_[:6]],
                  "max |probas(tol=null) - probas(tol=0)|": max_diff}},
        [],
        ("tol null = never stop early: crowd-kit checks new_loss - loss < tol after every "
         "iteration (loss = ELBO per annotation), so tol=-inf runs all n_iter = %d iterations; "
         "with tol=0 the same data stop after %d: crowd-kit's ELBO per annotation rises for "
         "%d iterations, then falls a little at every later iteration (it is not monotone "
         "here), and the run stops at the first fall, with the probas of that iteration "
         "(they then still move by up to %.3f). iterations_run and the probas tell tol null "
         "from tol 0. errors[w|observed][true] = P(w answers observed | "
         "true); cells clipped at 1e-12 before normalising." % (n_iter, stop0, stop0 - 1,
                                                                 max_diff)))


# ---------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------

def build():
    kripp_str_ordinal()
    kripp_str_interval()
    kripp_str_interval_unused()
    kripp_ratio()
    irrcac_gwet_str_linear()
    cohen_str_declared("cohen_str_declared_order_linear", SEV, "linear", ["declared_order"],
                       "Items where A or B is missing are left out (annotator C is not part of "
                       "this case).")
    cohen_str_declared("cohen_str_unused_declared_category_quadratic", GAP, "quadratic",
                       ["declared_order", "unused_category"],
                       "'moderate' is declared but never used: it keeps position 2, so "
                       "mild-severe is 2 steps apart and none-severe 3.")
    gold_mv_gold_pairs()
    accuracy_on_gold_gold_pairs()
    accuracy_on_gold_repeated_answers()
    for by in ("task", "worker"):
        for agg in (True, False):
            uncertainty_case("ck_uncertainty_skills_%s_%s" % (by, "mean" if agg else "values"),
                             by, agg)
    animals = {"c": "cat", "d": "dog", "f": "fox"}
    fleiss_rows = {  # 10 items x 4 raters, string labels
        "r1": "ccdfdcffdc",
        "r2": "cddfdcfcdc",
        "r3": "ccdfdffcdd",
        "r4": "ddcfdcffcc",
    }
    fleiss_items = [str(i) for i in range(1, 11)]
    fleiss_case("fleiss_str_p_bar_pe_bar", from_strings(fleiss_items, fleiss_rows, animals),
                "str", None, None, [],
                "String labels; statsmodels' aggregate_raters codes them as their sorted unique "
                "values (cat, dog, fox).")
    int_rows = {  # 12 items x 5 raters, categories 0..3, 2 never used
        "r1": "000113301033",
        "r2": "010113301033",
        "r3": "001133101003",
        "r4": "000111301333",
        "r5": "011113300133",
    }
    int_items = [str(i) for i in range(1, 13)]
    fleiss_case("fleiss_unused_category_p_bar_pe_bar",
                from_strings(int_items, int_rows, {c: int(c) for c in "0123"}),
                "int", [0, 1, 2, 3], 4, ["unused_category"],
                "Declared categories 0..3 (params.categories); category 2 is never used: "
                "aggregate_raters(data, n_cat=4) keeps it as an all-zero column, p_2 = 0, and "
                "Fleiss' kappa, P_bar and Pe_bar are the same as without it (unlike Randolph's "
                "kappa, whose chance term 1/K would change).")
    irrcac_inference_case("irrcac_raw_gwet_confidence_090", "gwet", "gwet_ac1_ac2",
                          "identity", 0.90, None)
    irrcac_inference_case("irrcac_raw_fleiss_confidence_099_population_40", "fleiss",
                          "fleiss_kappa_generalized", "quadratic", 0.99, 40)
    irrcac_inference_case("irrcac_raw_krippendorff_population_60", "krippendorff",
                          "krippendorff_alpha", "identity", 0.95, 60)
    ds_tol_null()
    mace_case("ck_mace_vb_alpha_beta", MACE_TRIPLES, "always answers 'pos'",
              "vb", 10, 0.1, 2.0, 1.0,
              "Non-default Beta(alpha, beta) prior on the spamming parameter (VB only: crowd-kit "
              "uses alpha/beta only when method='vb'; the Dirichlet prior on the strategies is "
              "fixed at 10).")
    mace_case("ck_mace_em_smoothing", MACE_TRIPLES_RANDOM, "answers at random",
              "em", 10, 0.5, 0.5, 0.5,
              "Non-default smoothing=0.5. crowd-kit 1.4.2 IGNORES the smoothing argument: its EM "
              "M-step always adds smoothing_ = 0.01 / K (K = number of labels) to the expected "
              "counts, so the result equals the default run (verified_with.also). Hovy et al.'s "
              "MACE adds `smoothing` itself; an engine that honours 0.5 may get other thetas, "
              "which is why only accuracy_vs_ground_truth is compared. (On the data of "
              "ck_mace_vb_alpha_beta, where u4 always answers 'pos', crowd-kit's EM labels every "
              "item 'pos': accuracy 0.55, while VB reaches 0.9-0.95.)")


# ---------------------------------------------------------------------------
# JSON in the shared cases' layout (indent 1, lists of scalars on one line)
# ---------------------------------------------------------------------------

def scalar(v):
    return not isinstance(v, (dict, list))


def dump(v, level=0):
    pad = " " * (level + 1)
    end = " " * level
    if isinstance(v, dict):
        if not v:
            return "{}"
        body = ",\n".join("%s%s: %s" % (pad, json.dumps(k, ensure_ascii=False),
                                        dump(x, level + 1)) for k, x in v.items())
        return "{\n%s\n%s}" % (body, end)
    if isinstance(v, list):
        if all(scalar(x) for x in v):
            return json.dumps(v, ensure_ascii=False)
        body = ",\n".join(pad + dump(x, level + 1) for x in v)
        return "[\n%s\n%s]" % (body, end)
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("non-finite number in a case")
    return json.dumps(v, ensure_ascii=False)


def write():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for case in CASES:
        folder = os.path.join(OUT, case["family"])
        os.makedirs(folder, exist_ok=True)
        text = dump(case) + "\n"
        assert json.loads(text) == json.loads(json.dumps(case))
        with open(os.path.join(folder, case["id"] + ".json"), "w", encoding="utf-8") as fh:
            fh.write(text)
    # drop stale cases left from an earlier run
    for family in sorted({c["family"] for c in CASES}):
        folder = os.path.join(OUT, family)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json") and name[:-5] not in ids:
                os.remove(os.path.join(folder, name))
    print("%d cases written under %s" % (len(CASES), OUT))


if __name__ == "__main__":
    build()
    write()
