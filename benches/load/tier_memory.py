"""What the memory tier costs the process: fills it with small distinct thumbnails and
prints the process' RSS beside `filegate_cache_bytes{tier="memory"}` as it goes.

    python3 benches/load/tier_memory.py [COUNT [MEMORY]]    # default 150000, "256 MiB"

One release filegate (embedded store, write-back off), one 400x300 photo uploaded as a
chat picture, then COUNT thumbnails of it, each a box never asked for before (~1.1 KB),
from 4 threads on keep-alive connections. If the tier weighs its entries right, "other"
(RSS minus the tier) stays flat while the tier grows; every answer must be a 200.
Loopback only; stops what it started. Not part of `make bench` (docs/decisions.md,
"An entry weighs its body plus 560 bytes").
"""

import concurrent.futures
import os
import shutil
import sys
import tempfile
import threading
import urllib.parse

import bench

# Thumbnails between two lines of the report.
REPORT_EVERY = 10_000


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 150_000
    memory = sys.argv[2] if len(sys.argv) > 2 else "256 MiB"
    work = tempfile.mkdtemp(prefix="tier-memory-")
    source = os.path.join(work, "small.jpg")
    bench.photo(source, 400, 300)
    started = bench.Started()
    try:
        binary = os.path.join(bench.ROOT, "target", "release", "filegate")
        fg = bench.Filegate(started, binary, work, "fg", memory, False)
        sign = bench.upload(fg.base, fg.token, "/file/upload/chat?file_type=102&to_id=1",
                            source, "small.jpg", "image/jpeg")["file_sign"]
        url = urllib.parse.urlsplit(fg.chat_url(sign, "", token_in_query=False))
        path = f"{url.path}?{url.query}"
        local = threading.local()

        def thumbnail(i):
            """None, or what was wrong with the answer for box i (never asked before)."""
            box = f"&image_type=2&w={20 + i % 100}&h={20 + i // 100}&thumbnail_strategy=2"
            resp, body = bench.keepalive_get(local, fg.port, path + box, fg.headers)
            if resp is None:
                return body
            return None if resp.status == 200 else f"status {resp.status}"

        def report(label):
            rss = bench.rss_kib(fg.proc.pid)[0] / 1024
            tier = fg.metric_sum('filegate_cache_bytes{tier="memory"') / 1048576
            print(f"{label} rss {rss:.1f} MiB, tier {tier:.1f} MiB, other {rss - tier:.1f} MiB",
                  flush=True)

        report("start:")
        problems = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for done in range(0, count, REPORT_EVERY):
                chunk = range(done, min(done + REPORT_EVERY, count))
                problems += [p for p in pool.map(thumbnail, chunk) if p]
                report(f"{chunk.stop:>7} thumbnails:")
        if problems:
            print(f"FAILED: {len(problems)} answers were not 200, e.g. {problems[:3]}")
            sys.exit(1)
    finally:
        started.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
