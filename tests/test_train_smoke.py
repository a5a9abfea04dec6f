from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import pattern

from streamsr.cli import cli
from streamsr.config import TrainConfig, from_mapping, read_toml
from streamsr.errors import ConfigError
from streamsr.io.images import write_png
from streamsr.models import CATALOG, load_model
from streamsr.models.ensemble import SelfEnsemble
from streamsr.models.weights import weights_digest
from streamsr.train.data import PairBank, patch_detail
from streamsr.train.evaluate import evaluate_set, module_upscaler
from streamsr.train.losses import PixelFFTLoss
from streamsr.train.trainer import Trainer, learning_rate, training_summary

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def image_dir(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(3):
        write_png(torch.from_numpy(pattern(40 + 8 * i, 36, i)).permute(2, 0, 1), d / f"{i}.png")
    return d


def _train_cli(image_dir: Path, out: Path, *flags: str) -> None:
    """`streamsr train` for two tiny steps (the same recipe as `_cfg`), plus `flags`."""
    result = CliRunner().invoke(cli, ["train", "--model", "safdn-rt-x2", "--data", str(image_dir), "--val", str(image_dir),
                                      "--out", str(out), "--iterations", "2", "--batch", "2", "--patch", "16", *flags])
    assert result.exit_code == 0, result.output


def _cfg(image_dir: Path, tmp_path: Path, **kw: object) -> TrainConfig:
    base = {"model": "safdn-rt-x2", "data": (str(image_dir),), "val": str(image_dir), "out": str(tmp_path / "run"),
            "iterations": 2, "batch": 2, "patch": 16, "val_every": 2, "checkpoint_every": 1, "warmup": 1}
    return from_mapping(TrainConfig, {**base, **kw})


def test_two_steps_write_weights_with_record(image_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(_cfg(image_dir, tmp_path))
    best = trainer.fit()
    model = load_model(best)
    assert model.scale == 2 and model.trained
    record = training_summary(best)
    assert record["iterations"] == 2 and record["recipe"]["patch"] == 16


def _assert_final_file_holds_the_ema(trainer: Trainer, iterations: int) -> None:
    assert training_summary(trainer.final_path)["iterations"] == iterations
    final = load_model(trainer.final_path).module.state_dict()
    for name, tensor in trainer.ema.state_dict().items():
        assert torch.equal(final[name], tensor.cpu()), name


def test_the_final_ema_is_kept_beside_the_best(image_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(_cfg(image_dir, tmp_path, iterations=3, val_every=1))
    trainer.fit()
    _assert_final_file_holds_the_ema(trainer, iterations=3)


def test_resuming_a_finished_run_writes_its_missing_final_weights(image_dir: Path, tmp_path: Path) -> None:
    # Runs that finished before final.safetensors existed have only last.pt and best.safetensors.
    finished = Trainer(_cfg(image_dir, tmp_path, iterations=3))
    finished.fit()
    finished.final_path.unlink()
    resumed = Trainer(_cfg(image_dir, tmp_path, iterations=3))
    resumed.fit(resume=True)
    assert resumed.iteration == 3
    _assert_final_file_holds_the_ema(resumed, iterations=3)


def test_record_counts_the_iterations_behind_the_init_weights(image_dir: Path, tmp_path: Path) -> None:
    first = Trainer(_cfg(image_dir, tmp_path / "a")).fit()
    # Validate only at the end, so the best-weights file is the one written at iteration 3.
    second = Trainer(_cfg(image_dir, tmp_path / "b", iterations=3, val_every=100, init=str(first))).fit()
    record = training_summary(second)
    assert record["iterations"] == 3 and record["total_iterations"] == 2 + 3
    assert record["total_train_seconds"] >= record["train_seconds"]
    assert record["sources_sha256"] == {"init": weights_digest(first)}


def test_resume_keeps_the_lineage_read_at_the_start(image_dir: Path, tmp_path: Path) -> None:
    # Exporting a run's weights over its own init file must not make a resumed run count them twice.
    init = tmp_path / "init.safetensors"
    shutil.copy(Trainer(_cfg(image_dir, tmp_path / "a")).fit(), init)
    started_from = weights_digest(init)
    best = Trainer(_cfg(image_dir, tmp_path / "b", init=str(init))).fit()
    shutil.copy(best, init)
    resumed = Trainer(_cfg(image_dir, tmp_path / "b", iterations=4, init=str(init)))
    resumed.fit(resume=True)
    record = resumed.training_record(val_psnr=0.0)
    assert record["iterations"] == 4 and record["total_iterations"] == 2 + 4
    assert record["sources_sha256"]["init"] == started_from != weights_digest(init)


def test_loss_falls_on_a_fixed_batch(image_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(_cfg(image_dir, tmp_path, lr=2e-3, warmup=1, iterations=40))
    lr, hr = trainer.bank().sample(4)
    losses = [trainer.step(lr, hr) for _ in range(30)]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_pixel_losses_measure_what_their_names_say() -> None:
    hr = torch.rand(2, 3, 8, 8)
    sr = hr.clone()
    sr[:, :, :4] += 0.2  # half the pixels off by 0.2: L1 0.1, mean squared error 0.02
    assert PixelFFTLoss(pixel="l1")(sr, hr).item() == pytest.approx(0.1)
    assert PixelFFTLoss(pixel="l2")(sr, hr).item() == pytest.approx(0.02)
    assert PixelFFTLoss(0.05, pixel="l2")(sr, hr).item() > 0.02  # the spectral term adds on
    assert PixelFFTLoss(0.05, pixel="l2")(hr, hr).item() == 0.0
    with pytest.raises(ValueError, match="l1, l2"):
        PixelFFTLoss(pixel="huber")


def test_the_luma_term_scores_the_y_difference_alone() -> None:
    hr = torch.rand(1, 3, 8, 8)
    gray = hr + 0.1  # the same error in R, G and B: Y moves by 0.1 * (65.481 + 128.553 + 24.966) / 255
    assert PixelFFTLoss(luma_weight=2.0)(gray, hr).item() == pytest.approx(0.1 + 2.0 * 0.1 * 219 / 255)
    # An error that leaves Y unchanged (red up, green down to balance it) costs only its RGB part.
    chroma = hr.clone()
    chroma[:, 0] += 0.1
    chroma[:, 1] -= 0.1 * 65.481 / 128.553
    rgb_only = PixelFFTLoss()(chroma, hr).item()
    assert PixelFFTLoss(luma_weight=2.0)(chroma, hr).item() == pytest.approx(rgb_only)


def test_an_l2_fine_tune_trains_from_the_cli_and_is_recorded(image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "l2"
    _train_cli(image_dir, out, "--pixel-loss", "l2", "--fft-weight", "0", "--luma-weight", "1.5")
    recipe = training_summary(out / "final.safetensors")["recipe"]
    assert (recipe["pixel_loss"], recipe["luma_weight"]) == ("l2", 1.5)
    # The recipe reaches the loss: a step reports the mean squared error of the model's output.
    trainer = Trainer(_cfg(image_dir, tmp_path / "step", pixel_loss="l2"))
    lr, hr = trainer.bank().sample(2)
    with torch.no_grad():
        expected = (trainer.model(lr) - hr).square().mean().item()
    assert trainer.step(lr, hr) == pytest.approx(expected, rel=1e-4)
    # And the luma weight reaches it: the step adds 1.5 times the mean squared error of Y.
    trainer = Trainer(_cfg(image_dir, tmp_path / "luma", pixel_loss="l2", luma_weight=1.5))
    with torch.no_grad():
        diff = trainer.model(lr) - hr
    y_diff = (65.481 * diff[:, 0] + 128.553 * diff[:, 1] + 24.966 * diff[:, 2]) / 255
    expected = diff.square().mean().item() + 1.5 * y_diff.square().mean().item()
    assert trainer.step(lr, hr) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ConfigError, match="pixel_loss"):
        _cfg(image_dir, tmp_path, pixel_loss="huber")
    with pytest.raises(ConfigError, match="luma_weight"):
        _cfg(image_dir, tmp_path, luma_weight=-1.0)


def test_resume_restores_state_exactly(image_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(image_dir, tmp_path, iterations=4, val_every=100)
    straight = Trainer(cfg)
    straight.fit()
    first = Trainer(_cfg(image_dir, tmp_path / "b", iterations=2, val_every=100))
    first.fit()
    resumed = Trainer(_cfg(image_dir, tmp_path / "b", iterations=4, val_every=100))
    resumed.fit(resume=True)
    assert resumed.iteration == 4
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_x4_starts_from_x2_body(image_dir: Path, tmp_path: Path) -> None:
    x2 = Trainer(_cfg(image_dir, tmp_path, model="safdn-rt-x2"))
    best = x2.fit()
    x4 = Trainer(_cfg(image_dir, tmp_path / "x4", model="safdn-rt-x4", init=str(best), patch=8))
    torch.testing.assert_close(x4.model.head.weight, load_model(best).module.head.weight)
    assert x4.model.upsample[0].weight.shape[0] == 3 * 16


def test_more_blocks_grow_the_init_without_changing_its_output(image_dir: Path, tmp_path: Path) -> None:
    small = Trainer(_cfg(image_dir, tmp_path)).fit()  # safdn-rt-x2: 3 blocks
    source = load_model(small).module
    grown = Trainer(_cfg(image_dir, tmp_path / "grown", init=str(small), blocks=5)).model
    assert len(grown.body) == 5
    torch.testing.assert_close(grown.body[4].fuse.weight, source.body[2].fuse.weight)
    lr = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(grown(lr), source(lr), rtol=0, atol=1e-6)
    # The run trains and exports the grown network, and the recipe says so.
    out = tmp_path / "cli"
    _train_cli(image_dir, out, "--init", str(small), "--blocks", "5")
    assert len(load_model(out / "final.safetensors").module.body) == 5
    assert training_summary(out / "final.safetensors")["recipe"]["blocks"] == 5
    with pytest.raises(ValueError, match="shrink"):
        Trainer(_cfg(image_dir, tmp_path / "shrunk", init=str(small), blocks=2))


def test_seed_flag_picks_other_crops_and_is_recorded(image_dir: Path, tmp_path: Path) -> None:
    # Continuation cycles that share a seed replay the same crops; --seed is how a cycle draws new ones.
    first = Trainer(_cfg(image_dir, tmp_path / "a")).bank().sample(2)
    again = Trainer(_cfg(image_dir, tmp_path / "b")).bank().sample(2)
    other = Trainer(_cfg(image_dir, tmp_path / "c", seed=7)).bank().sample(2)
    assert torch.equal(first[1], again[1]) and not torch.equal(first[1], other[1])
    out = tmp_path / "cli"
    _train_cli(image_dir, out, "--seed", "7")
    assert training_summary(out / "final.safetensors")["recipe"]["seed"] == 7


def test_crop_draws_favour_detailed_crops_and_are_recorded(tmp_path: Path) -> None:
    # Left half flat grey, right half noise: a uniform 8-pixel LR crop misses the noise ~44% of the
    # time; the most detailed of 8 draws (almost) never does.
    hr = torch.full((3, 64, 128), 128, dtype=torch.uint8)
    hr[:, :, 64:] = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    (tmp_path / "img").mkdir()
    write_png(hr, tmp_path / "img" / "half.png")

    def flat_share(draws: int) -> float:
        lr, _ = PairBank([tmp_path / "img" / "half.png"], scale=2, patch=8, crop_draws=draws).sample(64)
        return sum(patch_detail(x * 255) < 1 for x in lr) / 64
    assert flat_share(1) > 0.25 and flat_share(8) < 0.05
    with pytest.raises(ConfigError, match="positive"):
        from_mapping(TrainConfig, {"crop_draws": 0})
    out = tmp_path / "cli"
    _train_cli(tmp_path / "img", out, "--crop-draws", "3")
    assert training_summary(out / "final.safetensors")["recipe"]["crop_draws"] == 3


def test_folder_sampling_gives_each_folder_an_equal_share(tmp_path: Path) -> None:
    # One large bright image in one folder, one small dark image in another (1/16 of the area):
    # drawn by area, the small one comes up ~6% of the time; with a share per folder, ~half.
    for name, side, value in (("large", 64, 200), ("small", 16, 50)):
        (tmp_path / "img" / name).mkdir(parents=True)
        write_png(torch.full((3, side, side), value, dtype=torch.uint8), tmp_path / "img" / name / "a.png")
    paths = sorted((tmp_path / "img").rglob("*.png"))

    def small_share(bank: PairBank) -> float:
        lr, _ = bank.sample(400)
        return float((lr.mean(dim=(1, 2, 3)) < 0.5).float().mean())
    assert small_share(PairBank(paths, scale=2, patch=8)) < 0.12
    assert 0.4 < small_share(PairBank(paths, scale=2, patch=8, sampling="folder")) < 0.6
    # The recipe reaches the trainer's bank, not only its record.
    trainer = Trainer(_cfg(tmp_path / "img", tmp_path / "t", patch=8, sampling="folder"))
    assert 0.4 < small_share(trainer.bank()) < 0.6
    with pytest.raises(ConfigError, match="sampling"):
        from_mapping(TrainConfig, {"sampling": "image"})
    out = tmp_path / "cli"
    _train_cli(tmp_path / "img", out, "--sampling", "folder", "--patch", "8")
    assert training_summary(out / "final.safetensors")["recipe"]["sampling"] == "folder"


def test_a_teacher_blends_its_self_ensemble_into_the_targets_once(image_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    teacher = Trainer(_cfg(image_dir, tmp_path / "teacher")).fit()
    module = load_model(teacher).module
    plain = Trainer(_cfg(image_dir, tmp_path / "plain")).bank()
    with torch.no_grad():
        ensembles = [SelfEnsemble(module)(lr[None].float() / 255)[0].clamp(0, 1) * 255 for lr, *_ in plain.lr]
    assert any((e - h.float()).abs().mean() > 1 for e, h in zip(ensembles, plain.hr, strict=True))

    quarter = Trainer(_cfg(image_dir, tmp_path, out=str(tmp_path / "runs" / "a"), teacher=str(teacher), teacher_weight=0.25)).bank()
    for hr, ensemble, target in zip(plain.hr, ensembles, quarter.hr, strict=True):
        assert (target.float() - (0.75 * hr.float() + 0.25 * ensemble)).abs().max() <= 1  # two roundings

    # A second run with the same teacher and images reads the cache instead of running the teacher.
    def no_teacher_runs(*_: object, **__: object) -> None:
        raise AssertionError("the teacher ran again")
    monkeypatch.setattr("streamsr.train.distill.ensemble_outputs", no_teacher_runs)
    whole = Trainer(_cfg(image_dir, tmp_path, out=str(tmp_path / "runs" / "b"), teacher=str(teacher), teacher_weight=1.0)).bank()
    for ensemble, target in zip(ensembles, whole.hr, strict=True):
        assert (target.float() - ensemble).abs().max() <= 1
    assert [lr.shape for lr, *_ in whole.lr] == [lr.shape for lr, *_ in plain.lr]

    with pytest.raises(ValueError, match="teacher .* is x2"):
        Trainer(_cfg(image_dir, tmp_path / "x4", model="safdn-rt-x4", patch=8, teacher=str(teacher))).bank()
    with pytest.raises(ConfigError, match="teacher_weight"):
        _cfg(image_dir, tmp_path, teacher=str(teacher), teacher_weight=0)
    out = tmp_path / "runs" / "cli"  # beside the runs above: it reads their cache too
    _train_cli(image_dir, out, "--teacher", str(teacher), "--teacher-weight", "0.5")
    record = training_summary(out / "final.safetensors")
    # The teacher is recorded by its hash, never by a path of the machine that trained.
    assert "teacher" not in record["recipe"] and record["recipe"]["teacher_weight"] == 0.5
    assert record["sources_sha256"] == {"teacher": weights_digest(teacher)}
    assert str(tmp_path) not in json.dumps(record)


def test_several_validation_sets_are_averaged_each_counted_once(image_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write_png(torch.from_numpy(pattern(64, 56, 5)).permute(2, 0, 1), other / "a.png")
    logs: list[str] = []
    trainer = Trainer(_cfg(image_dir, tmp_path, val=[str(image_dir), str(other)]), log=logs.append)
    trainer.fit()
    upscale = module_upscaler(trainer.ema)
    each = [evaluate_set(d, upscale, scale=2).psnr for d in (image_dir, other)]
    assert abs(each[0] - each[1]) > 0.01  # the sets differ, so the mean below needs both
    record = training_summary(trainer.final_path)
    assert record["val_set"] == "imgs+other" and record["val_psnr"] == round(sum(each) / 2, 3)
    assert any(f"val imgs+other {sum(each) / 2:.3f} dB" in line and f"[imgs {each[0]:.3f}, other {each[1]:.3f}]" in line
               for line in logs)
    with pytest.raises(ConfigError, match="at least one folder"):
        _cfg(image_dir, tmp_path, val=[])


def test_cosine_schedule() -> None:
    cfg = TrainConfig(iterations=1000, warmup=100, lr=1e-3, lr_min=1e-5)
    assert learning_rate(cfg, 0) == pytest.approx(1e-5)
    assert learning_rate(cfg, 99) == pytest.approx(1e-3)
    assert learning_rate(cfg, 1000) == pytest.approx(1e-5)
    assert learning_rate(cfg, 550) == pytest.approx((1e-3 + 1e-5) / 2)


def test_time_budget_drives_the_schedule() -> None:
    cfg = TrainConfig(iterations=1000, warmup=100, lr=1e-3, lr_min=1e-5, minutes=10)
    assert learning_rate(cfg, 200, seconds=300) == pytest.approx((1e-3 + 1e-5) / 2)  # half the time, a tenth of the steps
    assert learning_rate(cfg, 200, seconds=600) == pytest.approx(1e-5)
    assert learning_rate(cfg, 550, seconds=0) == pytest.approx((1e-3 + 1e-5) / 2)  # iterations still end it if sooner


def test_time_budget_ends_the_run_and_resume_extends_it(image_dir: Path, tmp_path: Path) -> None:
    short = Trainer(_cfg(image_dir, tmp_path, iterations=1000, minutes=1e-6, val_every=100))
    best = short.fit()
    assert short.iteration == 1 and best.exists() and (tmp_path / "run" / "last.pt").exists()
    longer = Trainer(_cfg(image_dir, tmp_path, iterations=3, minutes=60, val_every=100))
    longer.fit(resume=True)
    assert longer.iteration == 3


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "pipelines").glob("train-*.toml")))
def test_shipped_recipes_load(name: str) -> None:
    cfg = from_mapping(TrainConfig, read_toml(ROOT / "pipelines" / name), where=name)
    assert cfg.model in CATALOG


def test_recipe_typos_are_named() -> None:
    with pytest.raises(ConfigError, match="'iteratons'"):
        from_mapping(TrainConfig, {"iteratons": 5})
    with pytest.raises(ConfigError, match="batch: expected int"):
        from_mapping(TrainConfig, {"batch": "16"})
    with pytest.raises(ConfigError, match="positive"):
        from_mapping(TrainConfig, {"batch": 0})


def test_weights_metadata_roundtrip(tmp_path: Path) -> None:
    from streamsr.models import build_model, read_metadata, save_weights

    save_weights(build_model("safdn-rt-x2"), tmp_path / "w.safetensors", arch="safdn", extra={"quality": {"Set5": {"psnr": 30.0}}})
    meta = read_metadata(tmp_path / "w.safetensors")
    assert json.loads(meta["quality"]) == {"Set5": {"psnr": 30.0}} and json.loads(meta["hparams"])["feat"] == 24


def test_data_sources_are_named_as_below_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A weight file names its data as the recipe does (below $STREAMSR_DATA), never by a machine path."""
    import torch

    from streamsr.io.images import write_png
    from streamsr.train.trainer import data_sources

    for folder in (tmp_path / "train", tmp_path / "train-extra" / "photos", tmp_path / "elsewhere" / "set"):
        folder.mkdir(parents=True)
        write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), folder / "a.png")
    monkeypatch.setenv("STREAMSR_DATA", str(tmp_path / "."))
    names = [d["name"] for d in data_sources([tmp_path / "train", tmp_path / "train-extra" / "photos"])]
    assert names == ["train", "train-extra/photos"]
    monkeypatch.setenv("STREAMSR_DATA", str(tmp_path / "train"))
    assert data_sources([tmp_path / "elsewhere" / "set"])[0]["name"] == "elsewhere/set"
