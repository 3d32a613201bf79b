"""Bad input raises a clear Python exception naming the column and the row, and nothing runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from concord import agreement
from concord.aggregation import GLAD, MACE, DawidSkene, GoldMajorityVote, KOS, MajorityVote, ZeroBasedSkill


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


GOOD = frame([("t1", "w1", "a"), ("t1", "w2", "a"), ("t2", "w1", "b"), ("t2", "w2", "a")])


def test_a_missing_label_names_the_column_and_the_row():
    data = frame([("t1", "w1", "a"), ("t1", "w2", None), ("t2", "w1", "b")])
    with pytest.raises(ValueError, match=r"column 'label', row 1: missing value"):
        DawidSkene().fit(data)


def test_a_missing_task_names_the_column_and_the_row():
    data = frame([("t1", "w1", "a"), ("t1", "w2", "b"), (np.nan, "w1", "b")])
    with pytest.raises(ValueError, match=r"column 'task', row 2: missing value"):
        agreement.alpha(data)


def test_a_label_that_is_not_of_the_requested_type_names_the_column_and_the_row():
    data = frame([("t1", "w1", "1"), ("t1", "w2", "2"), ("t2", "w1", "two")])
    with pytest.raises(ValueError, match=r"column 'label', row 2: label 'two': not a valid integer"):
        agreement.alpha(data, label_type="int")


def test_a_label_outside_the_declared_categories_is_named():
    with pytest.raises(ValueError, match=r"column 'label', row 2: label 'b': not one of the declared categories"):
        agreement.alpha(GOOD, categories=["a", "c"])


def test_two_labels_written_alike_are_refused():
    data = pd.DataFrame({"task": ["t1", "t2"], "worker": ["w1", "w2"], "label": [1, "1"]})
    with pytest.raises(ValueError, match=r"column 'label': two different values are both written '1'"):
        MajorityVote().fit(data)


def test_tasks_are_told_apart_as_pandas_tells_them_apart():
    data = pd.DataFrame({"task": [1, "1"], "worker": ["w1", "w1"], "label": ["a", "b"]})
    labels = MajorityVote().fit_predict(data)
    assert len(labels) == 2 and set(labels) == {"a", "b"}


def test_missing_columns_are_listed():
    with pytest.raises(ValueError, match=r"needs columns task, worker, label \(or item, annotator, label\); it has a, b"):
        MajorityVote().fit(pd.DataFrame({"a": [1], "b": [2]}))


def test_something_other_than_a_dataframe_is_a_type_error():
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        MajorityVote().fit([("t1", "w1", "a")])


def test_options_the_engine_cannot_honour_are_refused_not_ignored():
    with pytest.raises(ValueError, match=r"ZeroBasedSkill\(lr_init=0.5\).*lr_init=1.0 only"):
        ZeroBasedSkill(lr_init=0.5).fit(GOOD)
    with pytest.raises(ValueError, match=r"GLAD\(m_step_max_iter=5\)"):
        GLAD(m_step_max_iter=5).fit(GOOD)
    with pytest.raises(ValueError, match="method is vb or em"):
        MACE(method="gibbs").fit(GOOD)
    with pytest.raises(ValueError, match="initial_error"):
        DawidSkene().fit(GOOD, initial_error=pd.DataFrame())


def test_kos_needs_binary_labels():
    data = frame([("t1", "w1", "a"), ("t1", "w2", "b"), ("t2", "w1", "c")])
    with pytest.raises(ValueError, match="exactly 2"):
        KOS().fit(data)


def test_a_gold_label_that_never_occurs_is_named():
    with pytest.raises(ValueError, match=r"true_labels: label 'z' \(for 't1'\) does not occur in the data"):
        GoldMajorityVote().fit(GOOD, pd.Series({"t1": "z"}))


def test_unknown_coefficients_levels_and_weights_are_named():
    with pytest.raises(ValueError, match="unknown metric 'kappa2'"):
        agreement.coefficient(GOOD, "kappa2")
    with pytest.raises(ValueError, match="unknown level 'nominl'"):
        agreement.alpha(GOOD, level="nominl")
    with pytest.raises(ValueError, match="unknown weights 'cubic'"):
        agreement.gwet(GOOD, weights="cubic")
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        agreement.alpha(GOOD, confidence=95)


def test_missing_skills_follow_on_missing_skill():
    skills = pd.Series({"w1": 0.9})
    with pytest.raises(ValueError, match=r"column 'worker', row 1: worker 'w2' has no skill"):
        MajorityVote().fit(GOOD, skills)
    ignored = MajorityVote(on_missing_skill="ignore").fit_predict(GOOD, skills)
    assert ignored.to_dict() == {"t1": "a", "t2": "b"}
    valued = MajorityVote(on_missing_skill="value", default_skill=0.1).fit_predict(GOOD, skills)
    assert valued.to_dict() == {"t1": "a", "t2": "b"}


def test_the_gil_is_released_while_the_engine_runs(adult):
    import threading
    import time

    from concord.aggregation import GLAD as Glad

    finished = threading.Event()
    spans = {}

    def fit():
        start = time.perf_counter()
        Glad(n_iter=20, tol=0.0).fit(adult)
        spans["fit"] = time.perf_counter() - start
        finished.set()

    worker = threading.Thread(target=fit)
    ticks = 0
    worker.start()
    while not finished.is_set():
        ticks += 1
        time.sleep(0.002)
    worker.join()
    # Holding the GIL for the engine's part of the fit would freeze this loop for most of it.
    assert spans["fit"] > 0.1
    assert ticks > spans["fit"] / 0.002 * 0.3, (ticks, spans["fit"])
