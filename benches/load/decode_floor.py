#!/usr/bin/env python3
"""The decode floor of a thumbnail: the CPU time one decode of FILE costs at the
smallest scale that still covers the box (Pillow's `draft`, libjpeg-turbo's DCT
scaling, for a JPEG; a whole decode for the other formats), over the boxes the
benchmark's cold rows walk (100-199 px wide, 200-1999 high), nothing else: no resize,
no encode, no HTTP. Prints one JSON line. Run with the tools venv's Python (Pillow).

usage: decode_floor.py FILE [COUNT]
"""

import io
import json
import sys
import time

from PIL import Image


def main():
    path = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with open(path, "rb") as f:
        data = f.read()

    def decode(i):
        im = Image.open(io.BytesIO(data))
        w, h = 100 + i % 100, 200 + (i * 37) % 1800
        # The box's width decides (the cold rows' boxes are taller than the picture).
        scale = w / im.width
        im.draft("RGB", (max(1, round(im.width * scale)), max(1, round(im.height * scale))))
        im.load()
        return im.size

    decode(0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(1, count + 1):
        size = decode(i)
    cpu = (time.process_time() - cpu0) * 1000 / count
    wall = (time.perf_counter() - wall0) * 1000 / count
    print(json.dumps({"file": path, "count": count, "cpu_ms": round(cpu, 3),
                      "wall_ms": round(wall, 3), "decoded": list(size)}))


if __name__ == "__main__":
    main()
