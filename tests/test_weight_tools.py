"""The helper scripts that decide which trained weights ship (the shipping rule, weight averaging)
and write their figures into the docs.

They live in benchmarks/ (run by hand after training, not part of the package), but a wrong verdict
would put worse weights in weights/, and a stale figure would tell users a quality they do not get,
so their rules are tested here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from streamsr.models import save_weights
from streamsr.models.archs.safdn import SAFDN
from streamsr.models.weights import load_weights, read_metadata

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the scripts import each other by name, as when run from benchmarks/
    spec.loader.exec_module(module)
    return module


compare_weights = script("compare_weights")
average_weights = script("average_weights")
weights_table = script("weights_table")
greedy_soup = script("greedy_soup")  # after average_weights, which it imports


def weights_file(path: Path, *, quality: dict | None = None, iterations: int = 100, feat: int = 8) -> Path:
    """A tiny SAFDN x2 file carrying a training record and, optionally, measured quality."""
    extra: dict[str, object] = {"training": {"iterations": iterations, "val_psnr": 30.0}}
    if quality is not None:
        extra["quality"] = quality
    save_weights(SAFDN(feat=feat, blocks=1, esa=4, scale=2), path, arch="safdn", extra=extra)
    return path


OLD = {"Set5": {"psnr": 31.80, "ssim": 0.8884}, "Set14": {"psnr": 28.27, "ssim": 0.7731}}


def test_compare_replaces_only_when_better_on_every_set(tmp_path: Path) -> None:
    old = weights_file(tmp_path / "old.safetensors", quality=OLD)
    better = {k: {"psnr": v["psnr"] + 0.01, "ssim": v["ssim"]} for k, v in OLD.items()}
    assert compare_weights.main(str(old), str(weights_file(tmp_path / "a.safetensors", quality=better))) == 0

    # Higher Set5 cannot buy a lower Set14: the rule exists because Set5's five images mislead.
    mixed = {"Set5": {"psnr": 32.0, "ssim": 0.89}, "Set14": {"psnr": 28.26, "ssim": 0.78}}
    assert compare_weights.main(str(old), str(weights_file(tmp_path / "b.safetensors", quality=mixed))) == 1

    # Higher PSNR with lower SSIM on one set is not better there.
    lower_ssim = {"Set5": {"psnr": 31.9, "ssim": 0.8883}, "Set14": {"psnr": 28.3, "ssim": 0.78}}
    assert compare_weights.main(str(old), str(weights_file(tmp_path / "c.safetensors", quality=lower_ssim))) == 1

    # Equal PSNR is not higher.
    assert compare_weights.main(str(old), str(weights_file(tmp_path / "d.safetensors", quality=OLD))) == 1


def test_compare_keeps_the_old_file_when_a_set_was_not_measured(tmp_path: Path, capsys) -> None:
    old = weights_file(tmp_path / "old.safetensors", quality=OLD)
    only_set5 = {"Set5": {"psnr": 33.0, "ssim": 0.95}}
    assert compare_weights.main(str(old), str(weights_file(tmp_path / "new.safetensors", quality=only_set5))) == 1
    assert "Set14  not measured" in capsys.readouterr().out
    # A candidate with no quality at all (not yet through `streamsr eval --export`) is never shipped.
    assert compare_weights.main(str(old), str(weights_file(tmp_path / "bare.safetensors"))) == 1


def test_compare_refuses_an_unmeasured_old_file(tmp_path: Path) -> None:
    old = weights_file(tmp_path / "old.safetensors")
    new = weights_file(tmp_path / "new.safetensors", quality=OLD)
    with pytest.raises(SystemExit, match="carries no measured quality"):
        compare_weights.main(str(old), str(new))


def test_average_is_the_mean_of_every_tensor_and_records_its_sources(tmp_path: Path) -> None:
    torch.manual_seed(1)
    a = weights_file(tmp_path / "a.safetensors", iterations=2400)
    torch.manual_seed(2)
    b = weights_file(tmp_path / "b.safetensors", quality=OLD, iterations=5928)
    out = tmp_path / "mean.safetensors"
    average_weights.main(str(out), str(a), str(b))

    mean, meta = load_weights(out)
    states = [load_weights(p)[0].state_dict() for p in (a, b)]
    for key, tensor in mean.state_dict().items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (states[0][key] + states[1][key]) / 2)
    assert any(not torch.equal(states[0][k], states[1][k]) for k in states[0])  # the mean was not trivial

    # What described the last file alone is dropped: the mean has not been measured yet.
    assert "quality" not in meta
    training = json.loads(read_metadata(out)["training"])
    assert "val_psnr" not in training
    sha = {p: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in (a, b)}
    assert training["weight_average"]["files"] == [
        f"{a} (iteration 2400, sha256 {sha[a]})",
        f"{b} (iteration 5928, sha256 {sha[b]})",
    ]


def test_average_weights_a_file_given_twice_and_records_its_weight(tmp_path: Path) -> None:
    torch.manual_seed(1)
    a = weights_file(tmp_path / "a.safetensors", iterations=2400)
    torch.manual_seed(2)
    b = weights_file(tmp_path / "b.safetensors", iterations=5928)
    out = tmp_path / "mean.safetensors"
    average_weights.main(str(out), str(a), str(a), str(b))

    mean = load_weights(out)[0].state_dict()
    states = [load_weights(p)[0].state_dict() for p in (a, b)]
    for key, tensor in mean.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (2 * states[0][key] + states[1][key]) / 3)
    record = json.loads(read_metadata(out)["training"])["weight_average"]
    sha = {p: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in (a, b)}
    assert record == {
        "files": [f"{a} (iteration 2400, sha256 {sha[a]}, weight 2/3)", f"{b} (iteration 5928, sha256 {sha[b]}, weight 1/3)"],
        "how": "weighted mean of every tensor",
    }


def test_average_counts_each_run_it_averages_once(tmp_path: Path) -> None:
    """A soup of a file and two fine-tunes of it (one with its best and final) is backed by the file's
    lineage plus both runs, each counted at its longer snapshot."""

    def run_file(name: str, out: str, its: int, start: int) -> Path:
        path = tmp_path / f"{name}.safetensors"
        record = {"iterations": its, "train_seconds": its / 10, "total_iterations": start + its,
                  "total_train_seconds": (start + its) / 10, "recipe": {"out": out}}
        save_weights(SAFDN(feat=8, blocks=1, esa=4, scale=2), path, arch="safdn", extra={"training": record})
        return path

    files = [run_file("base", "runs/base", 100, 900), run_file("a-best", "runs/a", 30, 1000),
             run_file("a-final", "runs/a", 50, 1000), run_file("b-final", "runs/b", 40, 1000)]
    out = tmp_path / "soup.safetensors"
    average_weights.main(str(out), *map(str, files))
    training = json.loads(read_metadata(out)["training"])
    assert (training["iterations"], training["train_seconds"]) == (190, 19)
    assert (training["total_iterations"], training["total_train_seconds"]) == (1090, 109)


def test_greedy_soup_adds_a_file_only_when_the_mean_scores_higher() -> None:
    def one_weight(value: float) -> torch.nn.Module:
        model = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.constant_(model.weight, value)
        return model

    def score(model: torch.nn.Module) -> float:  # best at weight 1.8
        return -abs(model.weight.item() - 1.8)

    models = {"a": one_weight(1.0), "b": one_weight(3.0), "c": one_weight(10.0), "d": one_weight(0.4)}
    # Alone: a -0.8, b -1.2, d -1.4, c -8.2. a+b (mean 2.0) scores -0.2 and joins; a+b+d (1.47) and
    # a+b+c (4.67) would both score lower than -0.2, so they are left out.
    soup, best = greedy_soup.greedy_soup(models, score)
    assert soup == ["a", "b"]
    assert best == pytest.approx(-0.2)
    # The trial means are written into a copy: every input keeps its own weights.
    assert [m.weight.item() for m in models.values()] == pytest.approx([1.0, 3.0, 10.0, 0.4])


def test_average_refuses_files_of_different_models(tmp_path: Path) -> None:
    a = weights_file(tmp_path / "a.safetensors", feat=8)
    b = weights_file(tmp_path / "b.safetensors", feat=12)
    out = tmp_path / "mean.safetensors"
    with pytest.raises(SystemExit, match="different models"):
        average_weights.main(str(out), str(a), str(b))
    assert not out.exists()


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
