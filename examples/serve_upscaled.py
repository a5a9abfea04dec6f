"""Upscale a video or a live stream and serve it over TCP as MPEG-TS to the first player that
connects (e.g. `ffplay tcp://HOST:9000` or `mpv tcp://HOST:9000`).

    python examples/serve_upscaled.py examples/media/sample.mp4 --scale 2 --port 9000
    python examples/serve_upscaled.py rtsp://camera/stream --scale 2 --live-policy drop
"""

from __future__ import annotations

import argparse

import streamsr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", help="a file, - for stdin, or a URL")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--live-policy", choices=["auto", "drop", "wait"], default="auto")
    args = parser.parse_args()

    # The server listens once the first frames are upscaled (after the model has loaded).
    print(f"serving on tcp://0.0.0.0:{args.port}; connect a player once the model has loaded")
    result = streamsr.upscale_stream(
        args.source, f"tcp://0.0.0.0:{args.port}?listen=1", streamsr.UpscaleConfig(scale=args.scale),
        output_format="mpegts", live_policy=args.live_policy, on_warning=print,
    )
    print(f"served {result.frames} frames at {result.fps:.2f} fps")


if __name__ == "__main__":
    main()
