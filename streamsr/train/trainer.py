"""The training loop: L1 or L2 (+FFT) loss, Adam, warm-up + cosine schedule, EMA, resumable checkpoints."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import DATA_ENV, TrainConfig, data_path
from ..models import CATALOG, build_model, load_weights, read_metadata, save_weights
from ..models.archs.safdn import SAFDN
from ..models.weights import weights_digest
from .data import PairBank, find_images
from .degrade import Compression
from .distill import cached_ensemble_outputs
from .evaluate import evaluate_set, module_upscaler
from .grow import grown_state
from .losses import PixelFFTLoss

Log = Callable[[str], None]

_LOCAL_KEYS = frozenset({"out", "init", "teacher", "threads", "device"})
"""Recipe fields that name places or resources of the machine that trained, not the recipe
(the starting weights are recorded by hash instead)."""


def _quiet(_: str) -> None:
    pass


def progress(cfg: TrainConfig, it: int, seconds: float = 0.0) -> float:
    """How far through its schedule a run is, in [0, 1]: by iterations after warm-up, or by the
    time budget (`minutes`) when that is nearer its end."""
    t = (it - cfg.warmup) / max(1, cfg.iterations - cfg.warmup)
    if cfg.minutes:
        t = max(t, seconds / (60 * cfg.minutes))
    return min(1.0, max(0.0, t))


def learning_rate(cfg: TrainConfig, it: int, seconds: float = 0.0) -> float:
    """Linear warm-up, then cosine decay from `lr` to `lr_min` at the end of the run."""
    if it < cfg.warmup:
        return cfg.lr * (it + 1) / cfg.warmup
    t = progress(cfg, it, seconds)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))


def load_matching(model: nn.Module, path: str | Path) -> list[str]:
    """Copy every tensor of `path` whose name and shape match `model`; returns the skipped names.

    This is how x3/x4 start from the x2 body: everything but the upsampler carries over. A SAFDN
    with more blocks than `path` starts as its function-preserving growth (`grown_state`).
    """
    source, _ = load_weights(path)
    weights = source.state_dict()
    if isinstance(model, SAFDN) and isinstance(source, SAFDN) and model.hparams["blocks"] != source.hparams["blocks"]:
        weights = grown_state(weights, int(model.hparams["blocks"]))
    own = model.state_dict()
    taken = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(taken, strict=False)
    return sorted(set(own) - set(taken))


class Trainer:
    """Trains one catalog model per `TrainConfig`; `fit()` can be interrupted and resumed."""

    def __init__(self, cfg: TrainConfig, *, log: Log = _quiet) -> None:
        if cfg.model not in CATALOG:
            raise ValueError(f"unknown model {cfg.model!r}; choose from {', '.join(CATALOG)}")
        self.cfg, self.log = cfg, log
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.compression = Compression.parse(cfg.degradation) if cfg.degradation else None
        self.val_compression = Compression.parse(cfg.val_degradation) if cfg.val_degradation else None
        self.data_folders = [data_path(d) for d in cfg.data]
        self.val_folders = [data_path(v) for v in cfg.val_folders]
        self.entry = CATALOG[cfg.model]
        self.scale = self.entry.scale
        self.device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                                   ("cpu" if cfg.device == "auto" else cfg.device))
        self.model = build_model(cfg.model, **({"blocks": cfg.blocks} if cfg.blocks else {}))
        # Iterations and seconds already behind the starting weights, so records count the whole lineage.
        self.prior_iterations, self.prior_seconds = 0, 0.0
        # The sha256 (16 digits) of each file the run starts from: its path may hold a newer file later.
        self.sources = {key: weights_digest(path) for key, path in (("init", cfg.init), ("teacher", cfg.teacher)) if path}
        if cfg.init:
            self.prior_iterations, self.prior_seconds = lineage_totals(training_summary(cfg.init))
            skipped = load_matching(self.model, cfg.init)
            log(f"initialised from {cfg.init}; {len(skipped)} tensors left at random: {skipped}")
        self.model = self.model.to(self.device, memory_format=torch.channels_last)
        if isinstance(self.model, SAFDN):
            self.model.use_sliced_sums(self.device.type == "cuda")
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # training shapes never change: let cuDNN time its algorithms once
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.loss_fn = PixelFFTLoss(cfg.fft_weight, cfg.pixel_loss, cfg.luma_weight)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.iteration = 0
        self.best_psnr = -math.inf
        self.train_seconds = 0.0
        self._bank: PairBank | None = None

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out / "best.safetensors"

    @property
    def final_path(self) -> Path:
        """The EMA weights at the end of the run. Late in a cosine cycle they can beat the file
        a small validation set picked (Set5 has 5 images), so both are worth evaluating."""
        return self.out / "final.safetensors"

    def bank(self) -> PairBank:
        if self._bank is None:
            per_folder = [find_images([folder]) for folder in self.data_folders]
            paths = [p for found in per_folder for p in found]
            groups = [i for i, found in enumerate(per_folder) for _ in found] if self.cfg.data_weights else None
            self._bank = PairBank(paths, scale=self.scale, patch=self.cfg.patch, seed=self.cfg.seed,
                                  crop_draws=self.cfg.crop_draws, sampling=self.cfg.sampling, groups=groups,
                                  group_weights=self.cfg.data_weights or None, compression=self.compression,
                                  variants=self.cfg.variants)
            if self.cfg.teacher:
                # Beside the run folders, so every run with this teacher and these images reuses it.
                cache_dir = self.out.parent / "teacher-cache"
                outputs = cached_ensemble_outputs(self.cfg.teacher, [v[0] for v in self._bank.lr], scale=self.scale, cache_dir=cache_dir,
                                                  device=self.device, log=self.log)
                self._bank.blend_targets(outputs, self.cfg.teacher_weight)
        return self._bank

    # -- checkpoints -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "iteration": self.iteration,
            "best_psnr": self.best_psnr,
            "train_seconds": self.train_seconds,
            "prior": (self.prior_iterations, self.prior_seconds),
            "sources": self.sources,
            "data_rng": self.bank().get_state(),
            "torch_rng": torch.get_rng_state(),
            "config": dataclasses.asdict(self.cfg),
        }

    def save_checkpoint(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(".pt.part")
        torch.save(self.state(), tmp)
        tmp.replace(self.checkpoint_path)  # a crash mid-write never corrupts the last checkpoint

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        state = torch.load(path or self.checkpoint_path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.iteration = state["iteration"]
        self.best_psnr = state["best_psnr"]
        self.train_seconds = state["train_seconds"]
        # The init file may have been replaced by this run's own export since; keep the first reading.
        self.prior_iterations, self.prior_seconds = state.get("prior", (self.prior_iterations, self.prior_seconds))
        self.sources = state.get("sources", self.sources)
        self.bank().set_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"].cpu())

    # -- the loop ----------------------------------------------------------------------------

    def step(self, lr: torch.Tensor, hr: torch.Tensor) -> float:
        self.model.train()
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(self.cfg, self.iteration, self.train_seconds)
        lr = lr.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        loss = self.loss_fn(self.model(lr), hr.to(self.device, non_blocking=True))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        # Warm the EMA up (as timm does) so early validations are not dominated by random init.
        decay = min(self.cfg.ema, (1 + self.iteration) / (10 + self.iteration))
        with torch.no_grad():
            ema_p = list(self.ema.parameters())
            torch._foreach_lerp_(ema_p, list(self.model.parameters()), 1 - decay)
        self.iteration += 1
        return loss.item()

    def validate_sets(self) -> list[tuple[str, float]]:
        """(folder name, PSNR of the EMA) for each validation folder."""
        upscale = module_upscaler(self.ema, device=self.device)
        return [(folder.name, evaluate_set(folder, upscale, scale=self.scale, compression=self.val_compression).psnr)
                for folder in self.val_folders]

    def validate(self) -> float:
        """The EMA's validation PSNR: the mean over the validation sets, each counted once."""
        return _mean_psnr(self.validate_sets())

    def training_record(self, val_psnr: float) -> dict[str, Any]:
        return {
            "iterations": self.iteration,
            "train_seconds": round(self.train_seconds),
            "total_iterations": self.prior_iterations + self.iteration,
            "total_train_seconds": round(self.prior_seconds + self.train_seconds),
            "data": self.data_record,
            "val_set": self.cfg.val_name + (f" ({self.cfg.val_degradation})" if self.cfg.val_degradation else ""),
            "val_psnr": round(val_psnr, 3),
            "recipe": self.recipe_record,
            "sources_sha256": self.sources,
        }

    @functools.cached_property
    def recipe_record(self) -> dict[str, Any]:
        """The recipe as data: the machine's places left out, folders named by their last two parts."""
        recipe = {k: v for k, v in dataclasses.asdict(self.cfg).items() if k not in _LOCAL_KEYS}
        recipe["data"] = [_short_name(p) for p in self.data_folders]
        recipe["val"] = [_short_name(p) for p in self.val_folders]
        return recipe

    @functools.cached_property
    def data_record(self) -> list[dict[str, Any]]:
        return data_sources(self.data_folders, self.cfg.data_weights)

    @property
    def finished(self) -> bool:
        """The run has done its iterations, or spent its time budget."""
        return self.iteration >= self.cfg.iterations or (
            self.cfg.minutes > 0 and self.train_seconds >= 60 * self.cfg.minutes)

    def fit(self, *, resume: bool = False) -> Path:
        """Train to `cfg.iterations`; returns the best EMA weights file (by validation PSNR)."""
        cfg = self.cfg
        if resume and self.checkpoint_path.exists():
            self.load_checkpoint()
            self.log(f"resumed at iteration {self.iteration} (best {self.best_psnr:.3f} dB)")
        bank = self.bank()
        draws = f", most detailed of {cfg.crop_draws} crops" if cfg.crop_draws > 1 else ""
        draws += ", an equal share per folder" if cfg.sampling == "folder" else ""
        target = f", target {1 - cfg.teacher_weight:g} HR + {cfg.teacher_weight:g} teacher ensemble" if cfg.teacher else ""
        self.log(f"{len(bank)} training images, x{self.scale}, LR patch {cfg.patch}, batch {cfg.batch}{draws}{target}")
        window_start, window_its, window_loss = time.perf_counter(), 0, 0.0
        final_val: float | None = None
        while not self.finished:
            t0 = time.perf_counter()
            lr, hr = bank.sample(cfg.batch)
            window_loss += self.step(lr, hr)
            window_its += 1
            self.train_seconds += time.perf_counter() - t0
            it = self.iteration
            if it % 50 == 0:
                rate = window_its / (time.perf_counter() - window_start)
                lr_now = learning_rate(cfg, it, self.train_seconds)
                budget = f", {self.train_seconds / 60:.0f} of {cfg.minutes:g} min" if cfg.minutes else ""
                self.log(f"it {it} loss {window_loss / window_its:.5f} lr {lr_now:.2e} {rate:.2f} it/s{budget}")
                window_start, window_its, window_loss = time.perf_counter(), 0, 0.0
            last = self.finished
            if it % cfg.val_every == 0 or last:
                per_set = self.validate_sets()
                val = _mean_psnr(per_set)
                if val > self.best_psnr:
                    self.best_psnr = val
                    save_weights(self.ema, self.best_path, arch=self.entry.arch,
                                 extra={"training": self.training_record(val)})
                if last:
                    final_val = val
                each = " [" + ", ".join(f"{name} {psnr:.3f}" for name, psnr in per_set) + "]" if len(per_set) > 1 else ""
                self.log(f"it {it} val {cfg.val_name} {val:.3f} dB (best {self.best_psnr:.3f}){each}")
            if it % cfg.checkpoint_every == 0 or last:
                self.save_checkpoint()
        if final_val is None and not self.final_path.exists():
            # Resuming a run that finished before final weights were kept: its checkpoint holds the EMA.
            final_val = self.validate()
        if final_val is not None:
            save_weights(self.ema, self.final_path, arch=self.entry.arch,
                         extra={"training": self.training_record(final_val)})
        return self.best_path


def data_sources(folders: list[Path], weights: tuple[float, ...] = ()) -> list[dict[str, Any]]:
    """Each training folder by name, image count and content hash (sha256 over its images' bytes
    in sorted order), so a record names its data without a machine path."""
    sources = []
    for i, folder in enumerate(folders):
        digest = hashlib.sha256()
        images = find_images([folder])
        for path in images:
            digest.update(path.read_bytes())
        entry: dict[str, Any] = {"name": _short_name(folder), "images": len(images),
                                 "sha256": digest.hexdigest()[:16]}
        if weights:
            entry["weight"] = weights[i]
        sources.append(entry)
    return sources


def _short_name(folder: Path) -> str:
    """A data folder named without the machine's path to it: as below $STREAMSR_DATA
    (``train-extra/photos``), else by its last two parts (``train/T91``)."""
    root = os.environ.get(DATA_ENV)
    if root:
        with contextlib.suppress(ValueError):
            return folder.absolute().relative_to(Path(root).absolute()).as_posix()
    return "/".join(folder.parts[-2:])


def _mean_psnr(per_set: list[tuple[str, float]]) -> float:
    return sum(psnr for _, psnr in per_set) / len(per_set)


def training_summary(path: str | Path) -> dict[str, Any]:
    """The training record stored in a weight file's metadata (the tensors are not loaded)."""
    return json.loads(read_metadata(path).get("training", "{}"))


def lineage_totals(record: dict[str, Any]) -> tuple[int, float]:
    """Iterations and training seconds behind a weight file, counting the weights it started from;
    a record written before totals were kept counts its own run only."""
    return (int(record.get("total_iterations", record.get("iterations", 0))),
            float(record.get("total_train_seconds", record.get("train_seconds", 0.0))))
