"""Damaged containers through the CLI: documented exit codes, one error line, no partial files."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz import judge, make_seeds, mutate
from fuzz_surfaces import SURFACES, Lab, judge_surface

CASES_PER_SEED = 17  # 51 cases over the three containers


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_seeds(tmp_path_factory.mktemp("fuzz-seeds"))


@pytest.mark.parametrize("kind", ["mp4", "mkv", "webm"])
def test_mutated_containers_fail_cleanly_or_upscale(seeds: list[Path], kind: str, tmp_path: Path, tiny_weights: Path) -> None:
    seed = next(s for s in seeds if s.suffix == f".{kind}")
    problems, codes = [], []
    for case in range(CASES_PER_SEED):
        src = tmp_path / f"case{case}.{kind}"
        what = mutate(seed, case, src)
        damaged = src.read_bytes()
        out_dir = tmp_path / f"out{case}"
        out_dir.mkdir()
        verdict = judge(src, out_dir, tiny_weights, f"{kind} #{case} ({what})")
        codes.append(verdict.exit_code)
        if verdict.problem:
            problems.append(f"{verdict.case}: {verdict.problem}")
        assert src.read_bytes() == damaged  # the source is read, never written
    assert not problems, "\n".join(problems)
    assert set(codes) != {0}, "no mutation was caught: the cases are too mild to test anything"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> Lab:
    return Lab(tmp_path_factory.mktemp("surfaces"), tiny_weights)


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_surfaces_around_a_clean_source_never_lose_anything_silently(lab: Lab, surface: str, tmp_path: Path) -> None:
    problems = []
    for number in range(2 if surface == "pipe" else 4):  # a pipe case starts a process of its own
        case_dir = tmp_path / f"case{number}"
        case_dir.mkdir()
        verdict = judge_surface(lab, surface, number, case_dir)
        if verdict.problem:
            problems.append(f"{verdict.case}: exit {verdict.exit_code}: {verdict.problem}")
    assert not problems, "\n".join(problems)
