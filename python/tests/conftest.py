"""Shared fixtures: the repository's datasets (data/) and conformance cases (tests/conformance)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
CASES = REPO / "tests" / "conformance" / "cases"


def crowd_frame(dataset: str) -> pd.DataFrame:
    """A dataset's labels with crowd-kit's column names."""
    return pd.read_csv(DATA / dataset / "labels.csv").rename(columns={"item": "task", "annotator": "worker"})


def gold(dataset: str) -> pd.Series:
    frame = pd.read_csv(DATA / dataset / "gold.csv")
    return frame.set_index("item")["label"]


def cases(family: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((CASES / family).glob("*.json"))]


@pytest.fixture(scope="session")
def bluebirds() -> pd.DataFrame:
    return crowd_frame("welinder_bluebirds")


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    return crowd_frame("gal_adult_content2")
