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


def test_reference_documents_stay_reference_sized() -> None:
    """The weights' and the benchmarks' documents are reference pages, not logs."""
    assert len((ROOT / "weights" / "README.md").read_text().splitlines()) <= 80
    assert len((ROOT / "docs" / "benchmarks.md").read_text().splitlines()) <= 290


def test_nothing_in_the_repository_shadows_a_dependency() -> None:
    """A folder or script named like an installed package would be imported in its place from the
    folders that run it (benchmarks/, examples/, scripts/, tests/)."""
    import sys
    from importlib.metadata import packages_distributions

    taken = set(packages_distributions()) | set(sys.stdlib_module_names)
    taken.discard("streamsr")
    local = {p.stem for d in ("benchmarks", "examples", "scripts", "tests") for p in (ROOT / d).glob("*.py")}
    local |= {p.name for d in ("benchmarks", "examples", "scripts", "tests") for p in (ROOT / d).iterdir() if p.is_dir()}
    assert not local & taken, sorted(local & taken)


def test_shipped_weights_carry_structured_metadata_without_machine_paths() -> None:
    """Each weight file describes itself as data: architecture, hyperparameters, training record
    (data by name and content hash) and measured quality; no run folders or machine paths."""
    import json

    from safetensors import safe_open

    files = sorted((ROOT / "weights").glob("*.safetensors"))
    assert files
    for path in files:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        assert {"arch", "hparams", "scale", "training", "quality"} <= set(meta), path.name
        training = json.loads(meta["training"])
        assert training["data"] and all(set(d) >= {"name", "sha256"} for d in training["data"]), path.name
        assert json.loads(meta["quality"]).get("Set5", {}).get("psnr", 0) > 25, path.name
        text = " ".join(meta.values())
        assert not re.search(r"(^|[\s\"'])/|\.\./|\bruns/|[A-Za-z]:\\\\", text), path.name


def test_readme_is_a_front_page_and_every_document_it_names_is_here() -> None:
    """README stays a front page (the long reference is docs/usage.md), and no file of the
    repository cites a document that is not part of it."""
    import subprocess

    assert len((ROOT / "README.md").read_text().splitlines()) <= 160
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    names = {Path(p).name for p in tracked}
    cited: dict[str, str] = {}
    for path in tracked:
        file = ROOT / path
        if file.suffix in (".py", ".md", ".toml", ".txt", ".sh", "") and file.is_file():
            for name in re.findall(r"[A-Za-z0-9_-]+\.md\b", file.read_text(errors="ignore")):
                cited.setdefault(name, path)
    assert "usage.md" in cited and "README.md" in cited  # the walk reads the files
    assert {n: p for n, p in cited.items() if n not in names} == {}


def test_the_users_install_line_installs_nothing_for_development() -> None:
    """README's first command installs what running needs; the test command adds the rest."""
    install, test = _readme_commands()
    user_extras = set(re.findall(r'pip install -e "\.\[([^\]]*)\]"', install)[0].split(","))
    assert user_extras == {"openvino"}  # the CPU runtime `auto` picks; no pytest, ruff, DALI, Ray, spandrel
    assert "torchvision" not in install and "dev" not in user_extras
    assert 'pip install -e ".[dev]"' in test and "torchvision==0.29.1" in test
