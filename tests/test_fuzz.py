"""Damaged containers through the CLI: documented exit codes, one error line, no partial files."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz import judge, make_seeds, mutate

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
