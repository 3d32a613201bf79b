"""Agreement coefficients, computed by concord's engine (the same code as `concord agreement`).

Every function takes a DataFrame with ``item, annotator, label`` (or ``task, worker, label``)
columns, one row per rating, and returns an :class:`AgreementResult` with the value, its
standard error, confidence interval, p-value and interpretation. An undefined coefficient
(every rating in one category, …) has ``value = None`` and says why in ``undefined``.

Labels are read as numbers when the column holds numbers; text labels have no order, so the
ordinal / interval levels and weighted coefficients need ``categories=[...]`` in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from . import _engine
from ._table import prepare

__all__ = [
    "AgreementResult",
    "coefficient",
    "alpha",
    "fleiss",
    "fleiss_generalized",
    "randolph",
    "gwet",
    "cohen",
    "scott",
    "conger",
    "brennan_prediger",
    "percent_agreement",
    "bootstrap",
    "pairs",
    "report",
]


@dataclass(frozen=True)
class AgreementResult:
    """One coefficient with everything a reader needs next to it."""

    metric: str
    name: str
    value: Optional[float]
    se: Optional[float]
    ci: Optional[tuple[float, float]]
    p_value: Optional[float]
    interpretation: Optional[str]
    #: Why the value is undefined, when it is.
    undefined: Optional[str]
    #: Observed and chance agreement, where the coefficient has them.
    pa: Optional[float]
    pe: Optional[float]
    weighting: str
    n_items: int
    n_annotators: int
    #: How the analytic interval was obtained (the engine's words).
    ci_method: Optional[str] = None
    #: Percentile bootstrap over items: ``{"ci": (lo, hi), "se": ..., "replicates": ..., "undefined_replicates": ...}``.
    bootstrap: Optional[dict] = None
    warnings: list[str] = field(default_factory=list)

    def __float__(self) -> float:
        if self.value is None:
            raise ValueError(f"{self.name} is undefined: {self.undefined}")
        return float(self.value)

    @classmethod
    def _from_engine(cls, doc: dict) -> "AgreementResult":
        boot = doc.get("bootstrap")
        if boot is not None:
            boot = {**boot, "ci": tuple(boot["ci"])}
        return cls(
            metric=doc["metric"],
            name=doc["name"],
            value=doc.get("value"),
            se=doc.get("se"),
            ci=tuple(doc["ci"]) if doc.get("ci") is not None else None,
            p_value=doc.get("p_value"),
            interpretation=doc.get("interpretation"),
            undefined=doc.get("undefined"),
            pa=doc.get("pa"),
            pe=doc.get("pe"),
            weighting=doc["weighting"],
            n_items=doc["n_items"],
            n_annotators=doc["n_annotators"],
            ci_method=doc.get("ci_method"),
            bootstrap=boot,
            warnings=list(doc.get("warnings", [])),
        )


def _options(
    weights: str,
    weights_matrix: Optional[Sequence[Sequence[float]]],
    level: Optional[str],
    variance: str,
    confidence: float,
    population: Optional[float],
    replicates: int,
    seed: int,
) -> dict:
    if weights_matrix is not None and weights == "identity":
        weights = "custom"
    return {
        "level": level,
        "weights": weights,
        "weights_matrix": None if weights_matrix is None else [list(map(float, r)) for r in weights_matrix],
        "variance": variance,
        "confidence": confidence,
        "population": population,
        "bootstrap": replicates,
        "seed": seed,
    }


def coefficient(
    data: pd.DataFrame,
    metric: str,
    *,
    level: Optional[str] = None,
    weights: str = "identity",
    weights_matrix: Optional[Sequence[Sequence[float]]] = None,
    categories: Optional[Sequence[Any]] = None,
    label_type: Optional[str] = None,
    variance: str = "raw",
    confidence: float = 0.95,
    population: Optional[float] = None,
    bootstrap: int = 0,
    seed: int = 1,
) -> AgreementResult:
    """Any coefficient by name: percent, alpha, fleiss, fleiss-generalized, randolph, gwet,
    cohen, scott, conger, bp (the names of ``concord agreement --metric``)."""
    prepared = prepare(data, label_type=label_type, categories=categories)
    options = _options(weights, weights_matrix, level, variance, confidence, population, bootstrap, seed)
    return AgreementResult._from_engine(json.loads(_engine.agreement(prepared.table, metric, **options)))


def alpha(data: pd.DataFrame, level: str = "nominal", **options: Any) -> AgreementResult:
    """Krippendorff's α at the nominal, ordinal, interval or ratio level."""
    return coefficient(data, "alpha", level=level, **options)


def fleiss(data: pd.DataFrame, **options: Any) -> AgreementResult:
    """Fleiss' κ (fixed marginals; every item rated by the same number of annotators)."""
    return coefficient(data, "fleiss", **options)


def fleiss_generalized(data: pd.DataFrame, weights: str = "identity", **options: Any) -> AgreementResult:
    """Gwet's generalised Fleiss κ (missing ratings allowed, weights)."""
    return coefficient(data, "fleiss-generalized", weights=weights, **options)


def randolph(data: pd.DataFrame, **options: Any) -> AgreementResult:
    """Randolph's free-marginal κ."""
    return coefficient(data, "randolph", **options)


def gwet(data: pd.DataFrame, weights: str = "identity", **options: Any) -> AgreementResult:
    """Gwet's AC1 (identity weights) or AC2 (any other weights)."""
    return coefficient(data, "gwet", weights=weights, **options)


def cohen(data: pd.DataFrame, weights: str = "identity", **options: Any) -> AgreementResult:
    """Cohen's κ for two annotators (identity, linear or quadratic weights)."""
    return coefficient(data, "cohen", weights=weights, **options)


def scott(data: pd.DataFrame, **options: Any) -> AgreementResult:
    """Scott's π for two annotators."""
    return coefficient(data, "scott", **options)


def conger(data: pd.DataFrame, **options: Any) -> AgreementResult:
    """Conger's κ (Cohen's κ generalised to several annotators)."""
    return coefficient(data, "conger", **options)


def brennan_prediger(data: pd.DataFrame, **options: Any) -> AgreementResult:
    """Brennan–Prediger's coefficient (uniform chance agreement)."""
    return coefficient(data, "bp", **options)


def percent_agreement(data: pd.DataFrame, **options: Any) -> AgreementResult:
    """Observed agreement, not chance-corrected."""
    return coefficient(data, "percent", **options)


def bootstrap(
    data: pd.DataFrame, metric: str = "alpha", replicates: int = 1000, seed: int = 1, **options: Any
) -> AgreementResult:
    """A coefficient with a percentile bootstrap interval over items (``result.bootstrap``)."""
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1 (got {replicates})")
    return coefficient(data, metric, bootstrap=replicates, seed=seed, **options)


def pairs(
    data: pd.DataFrame,
    weights: str = "identity",
    *,
    min_shared: int = 1,
    categories: Optional[Sequence[Any]] = None,
    label_type: Optional[str] = None,
    confidence: float = 0.95,
    population: Optional[float] = None,
) -> pd.DataFrame:
    """Cohen's κ for every pair of annotators sharing at least ``min_shared`` items
    (``concord agreement --pairs``): one row per pair, ``annotator_a`` < ``annotator_b``, with
    the shared items, κ, SE, CI and p-value (NaN where κ is undefined). Each annotator's last
    rating of an item counts, as for Cohen's κ on two annotators."""
    prepared = prepare(data, label_type=label_type, categories=categories)
    raw = _engine.cohen_pairs(
        prepared.table, weights=weights, min_shared=min_shared, confidence=confidence, population=population
    )
    first = prepared.annotators.take(raw["a"])
    second = prepared.annotators.take(raw["b"])
    frame = pd.DataFrame(
        {
            "annotator_a": first,
            "annotator_b": second,
            "shared_items": raw["shared_items"],
            "kappa": raw["value"],
            "se": raw["se"],
            "ci_low": raw["ci_low"],
            "ci_high": raw["ci_high"],
            "p_value": raw["p_value"],
        }
    )
    # The engine orders each pair by its own names for the annotators; give the caller's order.
    try:
        swap = np.asarray(first > second)
    except TypeError:
        swap = np.zeros(len(frame), dtype=bool)
    frame.loc[swap, ["annotator_a", "annotator_b"]] = frame.loc[swap, ["annotator_b", "annotator_a"]].to_numpy()
    try:
        return frame.sort_values(["annotator_a", "annotator_b"], ignore_index=True)
    except TypeError:
        return frame


def report(
    data: pd.DataFrame,
    metrics: Optional[Sequence[str]] = None,
    *,
    categories: Optional[Sequence[Any]] = None,
    label_type: Optional[str] = None,
    **options: Any,
) -> pd.DataFrame:
    """The table ``concord agreement`` prints: one row per coefficient (by default the
    chance-corrected coefficients that allow missing ratings, plus Cohen's κ for two
    annotators), with value, CI, CI method, SE, p-value and interpretation."""
    prepared = prepare(data, label_type=label_type, categories=categories)
    names = list(metrics) if metrics is not None else _engine.default_metrics(prepared.table.n_annotators)
    level = options.pop("level", None)
    weights = options.pop("weights", "identity")
    weights_matrix = options.pop("weights_matrix", None)
    variance = options.pop("variance", "raw")
    confidence = options.pop("confidence", 0.95)
    population = options.pop("population", None)
    replicates = options.pop("bootstrap", 0)
    seed = options.pop("seed", 1)
    if options:
        raise TypeError(f"report() got unexpected options: {', '.join(options)}")
    engine_options = _options(weights, weights_matrix, level, variance, confidence, population, replicates, seed)
    rows = []
    for name in names:
        result = AgreementResult._from_engine(
            json.loads(_engine.agreement(prepared.table, name, **engine_options))
        )
        ci = result.bootstrap["ci"] if result.bootstrap else result.ci
        rows.append(
            {
                "coefficient": result.name
                if result.weighting in ("identity", "nominal")
                else f"{result.name} ({result.weighting})",
                "metric": result.metric,
                "value": result.value,
                "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None,
                "ci_method": _ci_method(result),
                "se": result.bootstrap["se"] if result.bootstrap else result.se,
                "p_value": result.p_value,
                "interpretation": result.interpretation if result.value is not None else result.undefined,
            }
        )
    return pd.DataFrame(rows).set_index("coefficient")


def _ci_method(result: AgreementResult) -> Optional[str]:
    if result.bootstrap:
        return f"bootstrap, B = {result.bootstrap['replicates']}"
    return result.ci_method
