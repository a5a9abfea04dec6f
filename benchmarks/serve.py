"""What the web app costs over the command line: the same upscale as a `streamsr serve` job and as
`streamsr upscale`, alternated in one run.

    python benchmarks/serve.py examples/media/sample.mp4 --model safdn-x2 --rounds 3

A job's time runs from its submission to the event that says it is done (the page sees the same);
the command's from its start to its exit, which includes loading torch and the model, as a job's
includes loading the model. The job runs in keyframe segments (the server's default, 30 s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serving import Server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--model", default="safdn-x2")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copy(args.video, root / args.video.name)
        web, cli = [], []
        with Server(root) as server:
            for n in range(args.rounds):
                start = time.perf_counter()
                job = server.json("POST", "/api/jobs", {"source": args.video.name, "options": {"model": args.model}},
                                  status=201)
                last = list(server.events(job["id"]))[-1]
                web.append(time.perf_counter() - start)
                assert last["state"] == "done", last
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "streamsr", "upscale", str(root / args.video.name), "-m", args.model,
                                "-o", str(root / f"cli-{n}.mp4"), "-q"], check=True)
                cli.append(time.perf_counter() - start)
                print(f"round {n + 1}: job {web[-1]:.2f} s, command {cli[-1]:.2f} s ({last['frames']} frames)")
    print(f"median: job {statistics.median(web):.2f} s, command {statistics.median(cli):.2f} s, "
          f"job / command {statistics.median(web) / statistics.median(cli):.2f}")


if __name__ == "__main__":
    main()
