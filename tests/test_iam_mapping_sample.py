"""The sample benchmarks/iam_mapping.py measures the event -> IAM action mapping on is
well-formed: big and broad enough for the figure issue 33 asks for (at least 500 event
names across 50 services), every pair traceable to where it was seen, none counted twice.

A malformed sample would not fail the benchmark, only skew its figure: a duplicate
weighs a pair twice, a pair without a source cannot be checked against a real record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SAMPLE = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "cloudtrail_pairs.json"


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


def test_sample_is_big_and_broad_enough(sample: dict[str, Any]) -> None:
    pairs = {(p["eventSource"], p["eventName"]) for p in sample["pairs"]}
    assert len(pairs) >= 500
    assert len({source for source, _name in pairs}) >= 50


def test_every_pair_is_an_aws_event_with_a_source(sample: dict[str, Any]) -> None:
    for pair in sample["pairs"]:
        assert isinstance(pair["eventSource"], str)
        assert pair["eventSource"].endswith(".amazonaws.com"), pair
        assert isinstance(pair["eventName"], str)
        assert pair["eventName"].strip(), pair
        assert isinstance(pair["source"], str)
        assert pair["source"].strip(), pair


def test_no_pair_is_counted_twice(sample: dict[str, Any]) -> None:
    keys = [(p["eventSource"], p["eventName"]) for p in sample["pairs"]]
    assert len(keys) == len(set(keys))


def test_sources_account_for_every_pair(sample: dict[str, Any]) -> None:
    """The summary's counts add up to the pairs, so a reader can weigh each source."""
    assert sum(source["pairs"] for source in sample["sources"]) == len(sample["pairs"])
    for source in sample["sources"]:
        assert source["repo"]
        assert source["commit"]
