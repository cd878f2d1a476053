"""The `baseline` rows of `make bench`: this build against an earlier one, so a change
that should not move the hot paths (a redesign, a refactor) is shown not to.

`--baseline BIN` names the earlier filegate binary (built from another commit, e.g. in a
git worktree: `cargo build --release --bin filegate`). Both run the same config on an
embedded store of their own and are driven alike, interleaved run by run:

- the chat-route cache hit of rows 1-2 (a 200x200 thumbnail of the 1600x1200 photo,
  the token in a header), each check request a 200 HIT;
- cold 200-px-wide thumbnails of the 1600x1200 baseline JPEG (a fresh box per request,
  each filegate proven to have made a thumbnail per request answered, as in row 5).
"""

import os
import urllib.parse

import bench
import thumbnail_rows


def rows(b):
    binary = b.args.baseline
    if not binary:
        raise RuntimeError("the baseline rows need --baseline BIN (an earlier filegate)")
    if not os.path.exists(binary):
        raise RuntimeError(f"--baseline {binary}: no such file")
    base = bench.Filegate(b.started, binary, b.work, "filegate-baseline",
                          f"{bench.CACHE_BUDGET_MIB} MiB", True)
    builds = {"this build": b.fg, "baseline": base}

    hits = {}
    for name, fg in builds.items():
        sign = bench.upload(fg.base, fg.token, "/file/upload/chat?file_type=102&to_id=1",
                            b.fixture("photo1600.jpg"), "photo1600.jpg",
                            "image/jpeg")["file_sign"]
        hits[name] = (fg.chat_url(sign, bench.THUMB_200, token_in_query=False), fg.headers)
    bench.warm(hits.values())
    print("baseline: cache hit of a 200x200 thumbnail, chat route (requests/s)", flush=True)
    hit = bench.interleaved(b.runs, {
        name: bench.throughput(url, b.seconds, b.conns, headers=headers,
                               check=bench.hit_check(url, headers))
        for name, (url, headers) in hits.items()
    })

    cold_systems = {}
    for name, fg in builds.items():
        grant = bench.upload(fg.base, fg.token, "/file/upload/avatar/user",
                             b.fixture("photo1600.jpg"), "photo1600.jpg", "image/jpeg")
        url = urllib.parse.urlsplit(fg.avatar_url(grant["object_name"], thumbnail_rows.THUMB))
        cold_systems[name] = (fg, url.path + "?" + url.query)
    print("baseline: cold thumbnails of the 1600x1200 baseline JPEG (requests/s)", flush=True)
    cold = bench.interleaved(b.runs, {
        # The same boxes for both builds in a round, fresh ones each round.
        name: (lambda r, fg=fg, template=template:
               thumbnail_rows.cold_run(fg.base + "/", b, template, r * 613 + 4099, fg=fg,
                                       source=b.fixture("photo1600.jpg")))
        for name, (fg, template) in cold_systems.items()
    })
    b.results["baseline_hit"] = {"filegate": hit["this build"], "peer": hit["baseline"]}
    b.results["baseline_cold"] = {"filegate": cold["this build"], "peer": cold["baseline"]}
    b.results["baseline_binary"] = binary


def report_lines(r, row):
    binary = r.get("baseline_binary", "")
    if "baseline_hit" in r:
        row("cache hit 200x200 thumbnail, chat route: this build vs an earlier one",
            r["baseline_hit"]["filegate"], r["baseline_hit"]["peer"], f"baseline {binary}",
            "req/s", "baseline")
    if "baseline_cold" in r:
        row("cold 200-px thumbnails of the 1600x1200 JPEG: this build vs an earlier one",
            r["baseline_cold"]["filegate"], r["baseline_cold"]["peer"], f"baseline {binary}",
            "req/s", "baseline")
