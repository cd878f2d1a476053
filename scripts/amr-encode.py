#!/usr/bin/env python3
"""Encodes any audio file as AMR-NB (12.2 kbit/s, 8 kHz mono): the voice fixtures of the
tests and benchmarks. Debian's FFmpeg has no AMR-NB encoder; PyAV's bundled FFmpeg has
libopencore_amrnb. Run with the tools' venv Python (`scripts/setup.sh test` installs PyAV
into $FILEGATE_TOOLS/venv, by default ~/.cache/filegate/tools/venv).

    ~/.cache/filegate/tools/venv/bin/python scripts/amr-encode.py speech.wav voice.amr
"""
import sys

import av


def main(src, dst):
    with av.open(src) as inp, av.open(dst, "w", format="amr") as out:
        stream = out.add_stream("libopencore_amrnb", rate=8000, layout="mono")
        stream.bit_rate = 12200
        resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
        for frame in inp.decode(audio=0):
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for f in resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
