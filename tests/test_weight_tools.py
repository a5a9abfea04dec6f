"""The script that writes the shipped weights' measured figures into the docs: a stale figure
would tell users a quality they do not get, so its rules are tested here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the scripts import each other by name, as when run from benchmarks/
    spec.loader.exec_module(module)
    return module


weights_table = script("weights_table")


def test_weights_table_replaces_only_between_its_markers() -> None:
    markers = ("<!-- q:start -->", "<!-- q:end -->")
    text = "before (<!-- q:start -->old figures<!-- q:end --> today) after"
    assert weights_table.replace_between(text, markers, "x4 Set5 31.90 dB") == (
        "before (<!-- q:start -->x4 Set5 31.90 dB<!-- q:end --> today) after"
    )
    # Without both markers exactly once, writing would append a copy or swallow prose: refuse.
    for broken in ("no markers at all", text + " <!-- q:start -->", "<!-- q:end --> x <!-- q:start -->"):
        with pytest.raises(ValueError, match="expected one"):
            weights_table.replace_between(broken, markers, "x")


def test_weights_table_summary_names_set5_once_in_the_order_given() -> None:
    assert weights_table.summary({4: 31.8134, 3: 34.0978, 2: 37.7187}) == "x4 Set5 31.813 dB, x3 34.098, x2 37.719"
    with pytest.raises(ValueError):
        weights_table.summary({})


def test_weights_table_hours_range_spans_least_to_most() -> None:
    assert weights_table.hours_range([28.33, 0.40083, 40.5889, 0.92]) == "0.4–40.6"
    with pytest.raises(ValueError):
        weights_table.hours_range([])


def test_readme_figures_match_the_shipped_weights() -> None:
    """README's quality and hours are those stamped in the shipped files: rerun weights_table.py after shipping."""
    # No skip when nothing is found: the weights are committed, so an empty result is itself a
    # failure (summary() and hours_range() refuse it), not a checkout to excuse.
    readme = (BENCHMARKS.parent / "README.md").read_text()

    def written(markers: tuple[str, str]) -> str:
        start, end = markers
        return readme.partition(start)[2].partition(end)[0]

    assert written(weights_table.SUMMARY) == weights_table.summary(weights_table.shipped_set5())
    assert written(weights_table.HOURS) == weights_table.hours_range(weights_table.shipped_hours())
