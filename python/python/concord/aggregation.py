"""Consensus models with crowd-kit 1.4.2's interface, run by concord's engine.

Each class takes crowd-kit's constructor arguments, offers ``fit``, ``fit_predict`` and (where
crowd-kit has it) ``fit_predict_proba``, and sets crowd-kit's fitted attributes: ``labels_``
(Series indexed by ``task``, named ``agg_label``), ``probas_`` (DataFrame task × label),
``skills_`` (Series indexed by ``worker``), ``errors_`` (DataFrame indexed by worker and observed
label, a column per true label), ``priors_``, ``loss_history_`` and the model's own.

Data is a DataFrame with ``task, worker, label`` columns or ``item, annotator, label``.
A constructor argument the engine cannot honour (a non-default learning-rate schedule,
custom priors) raises ``ValueError`` at ``fit`` rather than being silently ignored.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd

from . import _engine
from ._table import Prepared, column_names, prepare

__all__ = [
    "MajorityVote",
    "Wawa",
    "ZeroBasedSkill",
    "GoldMajorityVote",
    "DawidSkene",
    "OneCoinDawidSkene",
    "GLAD",
    "MACE",
    "KOS",
    "MMSR",
]


def _require_default(model: Any, **defaults: Any) -> None:
    for name, default in defaults.items():
        value = getattr(model, name)
        same = value is None if default is None else value == default
        if not same:
            raise ValueError(
                f"{type(model).__name__}({name}={value!r}): concord's engine runs this model "
                f"with {name}={default!r} only"
            )


def _known_answers(prepared: Prepared, true_labels: Optional[pd.Series], what: str) -> dict:
    """Gold labels as engine ids; tasks absent from the data are ignored (as crowd-kit does)."""
    if true_labels is None:
        return {}
    if not isinstance(true_labels, pd.Series):
        raise TypeError(f"{what} must be a pandas Series indexed by task")
    items = prepared.items.get_indexer(true_labels.index)
    present = items >= 0
    labels = true_labels[present]
    return {
        "known_items": items[present].astype(np.int64),
        "known_values": prepared.value_ids(labels, what),
    }


class _Model:
    """Runs one engine model and keeps its fitted state as pandas objects."""

    _method: str = ""
    #: Order of the task index: "sorted" where crowd-kit's result comes out of a groupby,
    #: "appearance" where it follows pd.factorize.
    _item_order: str = "sorted"
    _worker_order: str = "sorted"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def _params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def _engine_options(self) -> dict:
        return {}

    def _run(self, data: pd.DataFrame, **extra: Any) -> tuple[Prepared, dict]:
        options = {**self._engine_options(), **extra}  # refuses bad arguments before any work
        prepared = prepare(data)
        known = options.pop("true_labels", None)
        options.update(_known_answers(prepared, known, "true_labels"))
        return prepared, _engine.aggregate(prepared.table, self._method, **options)

    def _set_common(self, prepared: Prepared, raw: dict) -> None:
        self.labels_ = prepared.labels(raw["labels"], self._item_order)
        if "probas" in raw:
            self.probas_ = prepared.per_item_frame(raw["probas"], self._item_order)

    def fit(self, data: pd.DataFrame) -> "_Model":
        prepared, raw = self._run(data)
        self._set(prepared, raw)
        return self

    def _set(self, prepared: Prepared, raw: dict) -> None:
        self._set_common(prepared, raw)

    def fit_predict(self, data: pd.DataFrame, *args: Any, **kwargs: Any) -> pd.Series:
        self.fit(data, *args, **kwargs)
        return self.labels_


class _WithProbas(_Model):
    def fit_predict_proba(self, data: pd.DataFrame, *args: Any, **kwargs: Any) -> pd.DataFrame:
        self.fit(data, *args, **kwargs)
        return self.probas_


class _WithSkills(_WithProbas):
    def _set(self, prepared: Prepared, raw: dict) -> None:
        self._set_common(prepared, raw)
        self.skills_ = prepared.per_annotator(raw["skills"], "skill", self._worker_order)


class _PredictsWithSkills(_WithSkills):
    """Models whose fitted state is a skill per worker: ``predict`` is then the majority vote
    weighted by those skills on any data (as crowd-kit's Wawa, ZeroBasedSkill and
    GoldMajorityVote do)."""

    def _weighted_vote(self, data: pd.DataFrame) -> "MajorityVote":
        skills = getattr(self, "skills_", None)
        if skills is None:
            raise ValueError(f"{type(self).__name__} is not fitted: call fit first")
        return MajorityVote().fit(data, skills)

    def predict(self, data: pd.DataFrame) -> pd.Series:
        return self._weighted_vote(data).labels_

    def predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        return self._weighted_vote(data).probas_


class MajorityVote(_WithSkills):
    """Majority vote; optionally weighted by per-worker skills. Ties go to the first label
    in sorted order (crowd-kit's rule)."""

    _method = "mv"

    def __init__(self, default_skill: Optional[float] = None, on_missing_skill: str = "error"):
        self.default_skill = default_skill
        self.on_missing_skill = on_missing_skill

    def fit(self, data: pd.DataFrame, skills: Optional[pd.Series] = None) -> "MajorityVote":
        if skills is None:
            prepared, raw = self._run(data)
        else:
            data = self._rows_with_skill(data, skills)
            prepared = prepare(data)
            weights = skills.reindex(prepared.annotators)
            if self.default_skill is not None:
                weights = weights.fillna(self.default_skill)
            raw = _engine.aggregate(
                prepared.table, self._method, skills=weights.to_numpy(dtype=np.float64)
            )
        self._set(prepared, raw)
        return self

    def _rows_with_skill(self, data: pd.DataFrame, skills: pd.Series) -> pd.DataFrame:
        if self.on_missing_skill not in ("error", "ignore", "value"):
            raise ValueError(
                f"on_missing_skill must be error, ignore or value (got {self.on_missing_skill!r})"
            )
        worker = data[column_names(data)[1]]
        known = worker.isin(skills.index)
        if known.all():
            return data
        if self.on_missing_skill == "error":
            row = int(np.flatnonzero(~known.to_numpy())[0])
            raise ValueError(f"column '{worker.name}', row {row}: worker {worker.iloc[row]!r} has no skill")
        if self.on_missing_skill == "value":
            if self.default_skill is None:
                raise ValueError("on_missing_skill='value' needs default_skill")
            return data
        kept = data[known.to_numpy()]
        if kept.empty:
            raise ValueError("no annotation is by a worker with a known skill")
        return kept


class Wawa(_PredictsWithSkills):
    """Worker agreement with aggregate: majority vote weighted by each worker's agreement
    with the plain majority vote."""

    _method = "wawa"


class ZeroBasedSkill(_PredictsWithSkills):
    """Zero-based skill: weighted majority vote with skills learned by gradient steps."""

    _method = "zbs"

    def __init__(
        self,
        n_iter: int = 100,
        lr_init: float = 1.0,
        lr_steps_to_reduce: int = 20,
        lr_reduce_factor: float = 0.5,
        eps: float = 1e-5,
    ):
        self.n_iter = n_iter
        self.lr_init = lr_init
        self.lr_steps_to_reduce = lr_steps_to_reduce
        self.lr_reduce_factor = lr_reduce_factor
        self.eps = eps

    def _engine_options(self) -> dict:
        _require_default(self, lr_init=1.0, lr_steps_to_reduce=20, lr_reduce_factor=0.5, eps=1e-5)
        return {"iterations": self.n_iter}


class GoldMajorityVote(_PredictsWithSkills):
    """Majority vote weighted by each worker's accuracy on the tasks with known answers."""

    _method = "gold-mv"

    def fit(self, data: pd.DataFrame, true_labels: pd.Series) -> "GoldMajorityVote":  # type: ignore[override]
        prepared, raw = self._run(data, true_labels=true_labels)
        self._set(prepared, raw)
        return self


class DawidSkene(_WithProbas):
    """Dawid–Skene: EM over per-worker confusion matrices, initialised from majority vote.
    ``true_labels`` clamps the posteriors of tasks with known answers."""

    _method = "ds"
    _item_order = "appearance"
    _worker_order = "appearance"

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, initial_error_strategy: Optional[str] = None):
        self.n_iter = n_iter
        self.tol = tol
        self.initial_error_strategy = initial_error_strategy

    def _engine_options(self) -> dict:
        _require_default(self, initial_error_strategy=None)
        return {"iterations": self.n_iter, "tol": self.tol}

    def fit(  # type: ignore[override]
        self,
        data: pd.DataFrame,
        true_labels: Optional[pd.Series] = None,
        initial_error: Optional[pd.DataFrame] = None,
    ) -> "DawidSkene":
        if initial_error is not None:
            raise ValueError("DawidSkene.fit(initial_error=...): concord's engine starts from majority vote only")
        prepared, raw = self._run(data, true_labels=true_labels)
        self._set(prepared, raw)
        return self

    def _set(self, prepared: Prepared, raw: dict) -> None:
        self._set_common(prepared, raw)
        self.priors_ = prepared.per_label(raw["priors"], "prior")
        self.errors_ = prepared.errors(raw["confusion"])
        self.loss_history_ = list(raw["loss_history"])


class OneCoinDawidSkene(DawidSkene):
    """One-coin Dawid–Skene: one accuracy per worker instead of a confusion matrix."""

    _method = "one-coin-ds"

    def __init__(self, n_iter: int = 100, tol: float = 1e-5):
        super().__init__(n_iter=n_iter, tol=tol)

    def fit(self, data: pd.DataFrame) -> "OneCoinDawidSkene":  # type: ignore[override]
        return super().fit(data)  # type: ignore[return-value]

    def _set(self, prepared: Prepared, raw: dict) -> None:
        super()._set(prepared, raw)
        self.skills_ = prepared.per_annotator(raw["skills"], "skill", self._worker_order)


class GLAD(_WithProbas):
    """GLAD: worker ability (``alphas_``) and task difficulty (``betas_``, log inverse
    difficulty), fitted by EM with a conjugate-gradient M-step."""

    _method = "glad"

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        silent: bool = True,
        labels_priors: Optional[pd.Series] = None,
        alphas_priors_mean: Optional[pd.Series] = None,
        betas_priors_mean: Optional[pd.Series] = None,
        m_step_max_iter: int = 25,
        m_step_tol: float = 1e-2,
    ):
        self.n_iter = n_iter
        self.tol = tol
        self.silent = silent
        self.labels_priors = labels_priors
        self.alphas_priors_mean = alphas_priors_mean
        self.betas_priors_mean = betas_priors_mean
        self.m_step_max_iter = m_step_max_iter
        self.m_step_tol = m_step_tol

    def _engine_options(self) -> dict:
        _require_default(
            self,
            labels_priors=None,
            alphas_priors_mean=None,
            betas_priors_mean=None,
            m_step_max_iter=25,
            m_step_tol=1e-2,
        )
        return {"iterations": self.n_iter, "tol": self.tol}

    def _set(self, prepared: Prepared, raw: dict) -> None:
        self._set_common(prepared, raw)
        self.alphas_ = prepared.per_annotator(raw["alphas"], "alpha", "appearance")
        self.betas_ = prepared.per_item(raw["betas"], "beta", "appearance")
        # The model's fixed label prior: uniform (custom priors are refused above), over the
        # labels in order of first appearance, as crowd-kit holds it.
        appearance = prepared.labels_in_appearance_order()
        self.priors_ = pd.Series(1.0 / len(appearance), index=appearance)
        self.loss_history_ = list(raw["loss_history"])


class MACE(_WithProbas):
    """MACE (Hovy et al. 2013): each worker knows the answer or spams from a personal
    strategy; fitted by variational Bayes (``method="vb"``) or EM, with random restarts.

    ``spamming_`` is workers × 2 (P(spamming), P(knowing)) and ``thetas_`` workers × labels, both
    with workers in order of first appearance and labels in sorted order. Restarts after the
    first use seeds derived from ``random_state`` (crowd-kit reuses one seed, so its restarts
    are identical)."""

    _method = "mace"
    _item_order = "appearance"

    def __init__(
        self,
        n_restarts: int = 10,
        n_iter: int = 50,
        method: str = "vb",
        smoothing: float = 0.1,
        default_noise: float = 0.5,
        alpha: float = 0.5,
        beta: float = 0.5,
        random_state: int = 0,
        verbose: int = 0,
    ):
        self.n_restarts = n_restarts
        self.n_iter = n_iter
        self.method = method
        self.smoothing = smoothing
        self.default_noise = default_noise
        self.alpha = alpha
        self.beta = beta
        self.random_state = random_state
        self.verbose = verbose

    def _engine_options(self) -> dict:
        if self.method not in ("vb", "em"):
            raise ValueError(f"MACE(method={self.method!r}): method is vb or em")
        # crowd-kit replaces `smoothing` by 0.01 / n_labels at fit time and never reads
        # `default_noise`; the engine does the same.
        _require_default(self, alpha=0.5, beta=0.5)
        return {
            "iterations": self.n_iter,
            "mace_restarts": self.n_restarts,
            "mace_variational": self.method == "vb",
            "seed": int(self.random_state),
        }

    def _set(self, prepared: Prepared, raw: dict) -> None:
        self._set_common(prepared, raw)
        # crowd-kit's MACE keeps its labels in order of first appearance.
        self.probas_ = self.probas_.reindex(columns=pd.Index(prepared.labels_in_appearance_order(), name="label"))
        knowing = np.asarray(raw["skills"])
        self.spamming_ = np.column_stack([1.0 - knowing, knowing])
        self.thetas_ = raw["thetas"]
        self.smoothing_ = 0.01 / max(len(prepared.values), 1)


class KOS(_Model):
    """KOS (Karger, Oh & Shah 2011): message passing for binary labels."""

    _method = "kos"

    def __init__(self, n_iter: int = 100, random_state: int = 0):
        self.n_iter = n_iter
        self.random_state = random_state

    def _engine_options(self) -> dict:
        return {"iterations": self.n_iter, "seed": int(self.random_state)}


class MMSR(_Model):
    """M-MSR: worker skills from the matrix of pairwise agreements (robust low-rank
    recovery), then a skill-weighted vote. ``scores_`` holds the weighted vote per task."""

    _method = "mmsr"
    _worker_order = "appearance"

    def __init__(self, n_iter: int = 10000, tol: float = 1e-10, random_state: Optional[int] = 0):
        self.n_iter = n_iter
        self.tol = tol
        self.random_state = random_state

    def _engine_options(self) -> dict:
        seed = self.random_state
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
        return {"iterations": self.n_iter, "tol": self.tol, "seed": int(seed)}

    def _set(self, prepared: Prepared, raw: dict) -> None:
        self.labels_ = prepared.labels(raw["labels"], self._item_order)
        self.skills_ = prepared.per_annotator(raw["skills"], "skill", self._worker_order)
        if "probas" in raw:
            self.scores_ = prepared.per_item_frame(raw["probas"], self._item_order)
        self.loss_history_ = list(raw["loss_history"])

    def fit_predict_score(self, data: pd.DataFrame) -> pd.DataFrame:
        self.fit(data)
        return self.scores_
