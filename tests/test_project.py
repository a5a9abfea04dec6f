"""README's two set-up commands are what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks[:2]]


def test_ci_runs_readme_commands() -> None:
    install, test = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "streamsr upscale" in install and "pytest" in test
    assert install in ci and test in ci
