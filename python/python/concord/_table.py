"""Annotations in a DataFrame → the engine's table, and engine arrays → pandas objects.

Columns are factorized by pandas (a C hash pass per column); the engine reads the integer
codes in place and copies them once into its own columns. Items, annotators and labels are
numbered in order of first appearance, as concord's file readers number them, so a model
sees the same table here as on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from . import _engine

#: Accepted column layouts: crowd-kit's and concord's.
COLUMN_SETS = (("task", "worker", "label"), ("item", "annotator", "label"))

_KIND_BY_INFERRED = {
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "float",
    "boolean": "bool",
}


def column_names(data: Any) -> tuple[str, str, str]:
    """The (item, annotator, label) column names of a DataFrame of annotations."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"expected a pandas DataFrame with task, worker and label columns, got {type(data).__name__}"
        )
    for columns in COLUMN_SETS:
        if all(c in data.columns for c in columns):
            return columns
    raise ValueError(
        "the DataFrame needs columns task, worker, label (or item, annotator, label); "
        f"it has {', '.join(map(str, data.columns))}"
    )


def _factorize(column: pd.Series) -> tuple[np.ndarray, Any]:
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return np.ascontiguousarray(codes, dtype=np.int64), uniques


def _names(uniques: Any) -> list[str]:
    """Each unique value as text (what the engine interns)."""
    array = np.asarray(uniques)
    if array.dtype.kind in "iufb":
        return array.astype(str).tolist()
    if array.dtype == object and pd.api.types.infer_dtype(array, skipna=False) == "string":
        return array.tolist()
    return array.astype(object).astype(str).tolist()


def _label_kind(uniques: Any) -> str:
    if len(uniques) == 0:
        return "category"
    return _KIND_BY_INFERRED.get(pd.api.types.infer_dtype(uniques, skipna=True), "category")


@dataclass
class Prepared:
    """An engine table with what is needed to give results back in the caller's terms."""

    table: Any
    columns: tuple[str, str, str]
    items: pd.Index
    annotators: pd.Index
    #: Python label object of each engine value id (declared-but-unused categories as text).
    values: pd.Index
    #: Per row: the annotator's and the label's codes; the engine value id of each label code.
    annotator_codes: np.ndarray
    label_codes: np.ndarray
    label_values: np.ndarray

    # --- conversions -------------------------------------------------------------------
    def item_index(self) -> pd.Index:
        return self.items.rename("task")

    def annotator_index(self) -> pd.Index:
        return self.annotators.rename("worker")

    def label_index(self) -> pd.Index:
        return self.values.rename("label")

    def labels_in_appearance_order(self) -> list:
        """The label values in order of first appearance in the data."""
        return list(self.values.take(pd.unique(self.label_values)))

    def value_ids(self, labels: pd.Series, what: str) -> np.ndarray:
        """Engine value ids of label objects (ValueError naming the first unknown one)."""
        ids = self.values.get_indexer(labels)
        unknown = np.flatnonzero(ids < 0)
        if unknown.size:
            raise ValueError(
                f"{what}: label {labels.iloc[unknown[0]]!r} (for {labels.index[unknown[0]]!r}) "
                "does not occur in the data"
            )
        return ids.astype(np.int64)

    def labels(self, value_ids: np.ndarray, order: str = "sorted") -> pd.Series:
        decided = value_ids >= 0
        if decided.all():
            values = self.values.take(value_ids)
        else:
            values = pd.Series(self.values.take(np.where(decided, value_ids, 0)), dtype=object)
            values[~decided] = None
        return _ordered(pd.Series(np.asarray(values), index=self.item_index(), name="agg_label"), order)

    def per_item_frame(self, matrix: np.ndarray, order: str = "sorted") -> pd.DataFrame:
        return _ordered(pd.DataFrame(matrix, index=self.item_index(), columns=self.label_index()), order)

    def per_item(self, values: np.ndarray, name: str, order: str = "sorted") -> pd.Series:
        return _ordered(pd.Series(values, index=self.item_index(), name=name), order)

    def per_annotator(self, values: np.ndarray, name: str, order: str = "sorted") -> pd.Series:
        return _ordered(pd.Series(values, index=self.annotator_index(), name=name), order)

    def per_label(self, values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(values, index=self.label_index(), name=name)

    def errors(self, confusion: np.ndarray) -> pd.DataFrame:
        """crowd-kit's `errors_`: a row per (worker, observed label) pair of the data, in order
        of first appearance, a column per true label, cells P(observed | true)."""
        n_values = len(self.values)
        pairs = self.annotator_codes * n_values + self.label_values[self.label_codes]
        first = pd.unique(pairs)
        annotator, label = np.divmod(first, n_values)
        rows = confusion[annotator, :, label]
        index = pd.MultiIndex.from_arrays(
            [self.annotators.take(annotator), self.values.take(label)], names=["worker", "label"]
        )
        return pd.DataFrame(rows, index=index, columns=pd.Index(self.values))


def _ordered(frame: Any, order: str) -> Any:
    """crowd-kit's results come out of groupby / unstack (sorted by index) or follow
    ``pd.factorize`` (order of first appearance, the engine's order), depending on the model."""
    if order == "appearance":
        return frame
    try:
        return frame.sort_index()
    except TypeError:  # values of mixed types have no order; keep first appearance
        return frame


def prepare(
    data: pd.DataFrame,
    *,
    label_type: Optional[str] = None,
    categories: Optional[Sequence[Any]] = None,
) -> Prepared:
    """Build the engine table from a DataFrame of annotations.

    `label_type` (category, int, float, bool) defaults to what the label column holds;
    `categories` declares the labels and their order (unused ones then count); an ordered
    pandas Categorical declares its own.
    """
    columns = column_names(data)
    codes = []
    uniques = []
    for name in columns:
        column_codes, column_uniques = _factorize(data[name])
        if column_codes.size and column_codes.min() < 0:
            row = int(np.flatnonzero(column_codes < 0)[0])
            raise ValueError(f"column '{name}', row {row}: missing value")
        codes.append(column_codes)
        uniques.append(column_uniques)
    label_dtype = data[columns[2]].dtype
    if categories is None and isinstance(label_dtype, pd.CategoricalDtype) and label_dtype.ordered:
        # An ordered categorical declares its labels and their order.
        categories = list(label_dtype.categories)
    kind = label_type or _label_kind(uniques[2])
    declared = None if categories is None else _names(pd.Index(categories))
    table = _engine.Table(
        list(columns),
        codes[0],
        len(uniques[0]),
        codes[1],
        len(uniques[1]),
        codes[2],
        _names(uniques[2]),
        kind,
        declared,
    )
    values: list[Any] = list(table.values)
    filled = [False] * len(values)
    label_values = table.label_values()
    for label, value in zip(uniques[2], label_values):
        if not filled[value]:
            values[value] = label.item() if isinstance(label, np.generic) else label
            filled[value] = True
    return Prepared(
        table=table,
        columns=columns,
        items=pd.Index(uniques[0]),
        annotators=pd.Index(uniques[1]),
        values=pd.Index(values),
        annotator_codes=codes[1],
        label_codes=codes[2],
        label_values=label_values,
    )
