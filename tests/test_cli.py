"""CLI: every command has help; every bad input ends in one line, a non-zero code, no output file."""

from __future__ import annotations

import os
from pathlib import Path

import av
import click
import pytest
from click.testing import CliRunner
from conftest import make_clip

from streamsr import __version__
from streamsr.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("command", cli.commands.values(), ids=lambda c: c.name)
def test_commands_have_help_with_working_examples(command: click.Command) -> None:
    assert command.help, f"{command.name} is missing its help"
    code, out = run(command.name, "--help")
    assert code == 0 and "Usage" in out and "Example:" in out
    section = out.split("Example:")[1].split("Options:")[0]
    lines = [line.split("#")[0].split() for line in section.splitlines()]
    examples = [words[words.index("streamsr"):] for words in lines if "streamsr" in words]
    assert examples, f"{command.name} --help shows no command line"
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for words in examples:
        assert words[1] in cli.commands, f"example runs an unknown command: {' '.join(words)}"
        if words[1] == command.name:
            # A bare "-" is stdin/stdout, not an option.
            unknown = [w.split("=")[0] for w in words[2:] if w.startswith("-") and w != "-" and w.split("=")[0] not in known]
            assert not unknown, f"example uses options {command.name} does not have: {unknown}"


def test_version() -> None:
    code, out = run("--version")
    assert code == 0 and __version__ in out


def test_upscale_keeps_audio(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "out.mp4"
    code, text = run("upscale", str(clip_mp4), "-o", str(out), "--scale", "2", "-m", str(tiny_weights), "--quiet")
    assert code == 0, text
    with av.open(str(out)) as c:
        assert c.streams.video[0].width == 128 and len(c.streams.audio) == 1
        assert sum(1 for _ in c.decode(video=0)) == 12


def test_probe_lists_streams(clip_mkv_subs: Path) -> None:
    code, out = run("probe", str(clip_mkv_subs))
    assert code == 0
    assert "64x48" in out and "audio: aac" in out and "subtitle" in out and "[eng]" in out


def test_models_lists_catalog() -> None:
    code, out = run("models")
    assert code == 0 and "safdn-x4" in out and "safdn-rt-x2" in out


def _no_partial(folder: Path) -> None:
    assert not [p for p in folder.iterdir() if "partial" in p.name]


@pytest.fixture()
def bad_inputs(tmp_path: Path, clip_mp4: Path) -> dict[str, Path]:
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    audio_only = make_clip(tmp_path / "audio_only.mkv", audio=True)
    with av.open(str(audio_only)) as src, av.open(str(tmp_path / "sound.mka"), "w") as out:
        a = out.add_stream_from_template(src.streams.audio[0])
        for p in src.demux(src.streams.audio[0]):
            if p.size:
                p.stream = a
                out.mux(p)
    corrupt = tmp_path / "corrupt.mp4"
    data = bytearray(clip_mp4.read_bytes())
    corrupt.write_bytes(bytes(data[: len(data) // 3]))  # MP4 index at the end: unreadable
    huge = tmp_path / "huge.y4m"  # a header declaring a picture no decoder allocates
    huge.write_bytes(b"YUV4MPEG2 W20000 H20000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(1000))
    return {"text": text, "empty": empty, "no_video": tmp_path / "sound.mka", "corrupt": corrupt,
            "dir": tmp_path, "missing": tmp_path / "nope.mp4", "huge": huge}


@pytest.mark.parametrize(
    ("case", "message"),
    [("missing", "no such file"), ("dir", "is a directory"), ("empty", "empty"), ("text", "not a media file"),
     ("no_video", "no video stream"), ("corrupt", "not a media file|corrupt|does not decode"),
     ("huge", "declares a 20000x20000 picture")],
)
def test_bad_input_is_one_clear_line(bad_inputs: dict[str, Path], tmp_path: Path, tiny_weights: Path, case: str, message: str) -> None:
    out = tmp_path / "out" / "x.mp4"
    out.parent.mkdir()
    code, text = run("upscale", str(bad_inputs[case]), "-o", str(out), "-s", "2", "-m", str(tiny_weights), "-q")
    assert code == 2, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), text
    import re

    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in text and not out.exists()


def test_unsupported_scale(clip_mp4: Path) -> None:
    # No shipped model upscales x5: a model problem (exit 4) that names the scales there are.
    code, text = run("upscale", str(clip_mp4), "--scale", "5")
    assert code == 4 and "scale 5" in text and "[2, 3, 4]" in text and "Traceback" not in text


def test_output_equal_to_input_is_refused(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    src = tmp_path / "same.mp4"
    src.write_bytes(clip_mp4.read_bytes())
    before = src.read_bytes()
    code, text = run("upscale", str(src), "-o", str(src), "-s", "2", "-m", str(tiny_weights), "--overwrite", "-q")
    assert code == 3 and "overwrite the input" in text
    assert src.read_bytes() == before


def test_existing_output_needs_overwrite(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "there.mp4"
    out.write_bytes(b"keep me")
    code, text = run("upscale", str(clip_mp4), "-o", str(out), "-s", "2", "-m", str(tiny_weights), "-q")
    assert code == 3 and "--overwrite" in text and out.read_bytes() == b"keep me"


def test_unwritable_output_directory(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    import subprocess

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # Root writes through permission bits; a read-only mount refuses everyone.
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(locked)],
                                            capture_output=True).returncode != 0:
        pytest.skip("running as root, and cannot mount a read-only tmpfs to make an unwritable folder")
    try:
        code, text = run("upscale", str(clip_mp4), "-o", str(locked / "x.mp4"), "-s", "2", "-m", str(tiny_weights), "-q")
        assert code == 3 and "not writable" in text and "Traceback" not in text
        assert list(locked.iterdir()) == []
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(locked)], check=False)


def test_missing_output_directory(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    code, text = run("upscale", str(clip_mp4), "-o", str(tmp_path / "no" / "x.mp4"), "-s", "2", "-m", str(tiny_weights))
    assert code == 3 and "does not exist" in text
    assert "frame" not in text  # no progress bar drawn before the error


def test_missing_weights_say_so(clip_mp4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamsr.models as models

    monkeypatch.setattr(models, "weights_dirs", lambda: [tmp_path / "empty"])
    code, text = run("upscale", str(clip_mp4), "-o", str(tmp_path / "x.mp4"), "-s", "3", "-q")
    assert code == 4 and "not installed" in text and "safdn-x3" in text


def test_model_scale_mismatch(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    code, text = run("upscale", str(clip_mp4), "-o", str(tmp_path / "x.mp4"), "-s", "4", "-m", str(tiny_weights), "-q")
    assert code != 0 and "x2" in text and "Traceback" not in text
    _no_partial(tmp_path)


def test_damaged_source_exits_non_zero_with_count(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    full = make_clip(media_dir / "long2.mkv", frames=48, audio=False)
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    out = tmp_path / "damaged_x2.mkv"
    code, text = run("upscale", str(damaged), "-o", str(out), "-s", "2", "-m", str(tiny_weights), "-q")
    assert code == 2 and "frames lost" in text and out.exists()


def test_bench_runs_tiny(tiny_weights: Path, tmp_path: Path) -> None:
    import json

    report = tmp_path / "bench.json"
    code, text = run("bench", "-s", "2", "-m", str(tiny_weights), "--size", "48x32", "--frames", "4", "--runs", "1",
                     "--device", "cpu", "--json", str(report))
    assert code == 0, text
    for stage in ("decode", "SR stage", "bicubic", "encode", "end to end", "peak RSS"):
        assert stage in text
    data = json.loads(report.read_text())
    assert data["frames"] == 4 and data["output_size"] == "96x64" and data["sr_fps"] > 0 and data["params"] > 0
    assert data["reused_frames"] == 0 and "with reuse" in text  # the generated clip moves in every frame


def test_bench_counts_the_frames_reuse_spares(tiny_weights: Path, tmp_path: Path) -> None:
    import json

    from conftest import make_clip, pattern

    src = make_clip(tmp_path / "still.mp4", width=48, height=32, frames=6, codec="libx264", audio=False,
                    painter=lambda w, h, i: pattern(w, h, 0), options={"crf": "18"})
    report = tmp_path / "bench.json"
    code, text = run("bench", str(src), "-m", str(tiny_weights), "--runs", "1", "--device", "cpu", "--json", str(report))
    assert code == 0, text
    assert json.loads(report.read_text())["reused_frames"] == 5 and "5 of 6 frames reused" in text


def test_eval_scores_the_self_ensemble_apart(tmp_path: Path, tiny_weights: Path) -> None:
    """`eval --self-ensemble` labels its figures as the "+" of the model, and never records them in a
    weight file (`--export` is what the shipping rule reads)."""
    import json

    import torch
    from conftest import pattern

    from streamsr.io.images import write_png

    images = tmp_path / "set"
    images.mkdir()
    write_png(torch.from_numpy(pattern(48, 40, 0)).permute(2, 0, 1), images / "a.png")
    code, text = run("eval", "-m", str(tiny_weights), "-s", "2", str(images), "--self-ensemble", "--json", str(tmp_path / "e.json"))
    assert code == 0, text
    assert "+ (self-ensemble of 8)" in text.splitlines()[0]
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["self_ensemble"] is True
    # The table prints PSNR to a thousandth: at two decimals 34.0978 would read as a met 34.10 target.
    row = next(line.split() for line in text.splitlines() if line.split()[:2] == ["set", "1"])  # the set's row
    assert row[2] == f"{scores['sets'][0]['psnr']:.3f}"
    code, text = run("eval", "-m", str(tiny_weights), "-s", "2", str(images), "--self-ensemble", "--export", str(tmp_path / "w.safetensors"))
    assert code != 0 and "--export" in text and not (tmp_path / "w.safetensors").exists()


def test_python_evaluation_scores_and_exports_as_eval_does(tmp_path: Path, tiny_weights: Path) -> None:
    """The library's evaluation gives `eval`'s figures, records them in an exported file, and
    refuses to record the self-ensemble's."""
    import json

    import torch
    from conftest import pattern

    from streamsr.errors import ConfigError
    from streamsr.io.images import write_png
    from streamsr.models import load_model
    from streamsr.train.evaluate import evaluate_upscaler, evaluation_upscaler

    images = tmp_path / "set"
    images.mkdir()
    write_png(torch.from_numpy(pattern(48, 40, 0)).permute(2, 0, 1), images / "a.png")
    model = load_model(str(tiny_weights))
    heard = []
    scores = evaluate_upscaler(evaluation_upscaler(model), [images], export=tmp_path / "w.safetensors", on_set=heard.append)
    assert heard == scores and scores[0].images == 1
    code, text = run("eval", "-m", str(tiny_weights), str(images), "--json", str(tmp_path / "e.json"))
    assert code == 0, text
    assert json.loads((tmp_path / "e.json").read_text())["sets"][0]["psnr"] == pytest.approx(scores[0].psnr)
    recorded = load_model(str(tmp_path / "w.safetensors")).quality()["set"]
    assert recorded["psnr"] == pytest.approx(scores[0].psnr, abs=1e-4)
    with pytest.raises(ConfigError, match="self-ensemble"):
        evaluate_upscaler(evaluation_upscaler(model, self_ensemble=True), [images], export=tmp_path / "e.safetensors")
    assert not (tmp_path / "e.safetensors").exists()


def test_self_ensemble_reaches_the_engine_and_the_batch_fingerprint(clip_mp4: Path, tmp_path: Path, tiny_weights: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from streamsr.batch import settings_fingerprint
    from streamsr.stages import upscale as pipeline

    asked = []

    class SpyUpscaler(pipeline.Upscaler):
        def __init__(self, *args, **kwargs) -> None:
            asked.append(kwargs["self_ensemble"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pipeline, "Upscaler", SpyUpscaler)
    out = tmp_path / "out.mp4"
    code, text = run("upscale", str(clip_mp4), "-o", str(out), "--scale", "2", "-m", str(tiny_weights), "--self-ensemble", "--quiet")
    assert code == 0 and out.exists(), text
    assert asked == [True]
    # Its outputs differ, so a batch rerun with the flag redoes files finished without it.
    cfg = pipeline.UpscaleConfig(scale=2)
    assert settings_fingerprint(cfg) != settings_fingerprint(replace(cfg, self_ensemble=True))


def test_webm_output_gets_codecs_webm_holds(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "out.webm"
    code, text = run("upscale", str(clip_mp4), "-o", str(out), "-m", str(tiny_weights), "-q")
    assert code == 0, text
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "vp9" and c.streams.audio[0].codec_context.name == "opus"
        assert sum(1 for _ in c.decode(video=0)) == 12


def test_unknown_output_suffix_is_an_output_error_naming_the_file(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "out.xyz"
    code, text = run("upscale", str(clip_mp4), "-o", str(out), "-m", str(tiny_weights), "-q")
    assert code == 3 and f"{out}: no container format" in text and "partial" not in text
    assert list(tmp_path.iterdir()) == []


def test_disk_full_is_one_line_and_leaves_nothing(clip_mp4: Path, tmp_path: Path, tiny_weights: Path) -> None:
    import subprocess

    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        (disk / "filler").write_bytes(bytes(56 * 1024))  # 8 KiB left: too little for the output
        out = disk / "out.mp4"
        code, text = run("upscale", str(clip_mp4), "-o", str(out), "-m", str(tiny_weights), "-q", "--backend", "torch")
        assert code == 3 and text.strip() == f"Error: {out}: the disk is full; nothing was written (free space, or write elsewhere with -o)"
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_sigterm_stops_cleanly_and_leaves_nothing(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    src = make_clip(media_dir / "sigterm-long.mkv", width=160, height=120, frames=240, fps=24, audio=False)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamsr", "upscale", "-", "-o", str(out_dir / "long_x2.mkv"),
         "--model", str(tiny_weights), "--device", "cpu", "--backend", "torch"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    # Half the file through a pipe held open: the run cannot finish, however fast the machine,
    # and is still running when the signal comes.
    data = src.read_bytes()
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # the hidden partial output appears once frames are being written
    assert proc.poll() is None and any(out_dir.iterdir()), "the upscale never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].startswith("Error: stopped by SIGTERM")
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []  # neither the output nor a partial of it
