"""The tiers row of `make bench` (issue 23): what the edge cache keeps when its working set
does not fit, at equal memory with nginx proxy_cache and Varnish.

2,000 files of 20-114 KB (random bytes, fixed seed; 128 MiB in all, 4x the 32 MiB every
system gets) and one trace over them: a Zipf mix (s=1.0, fixed seed, object ranks
shuffled so popularity has nothing to do with size) of 10,000 downloads of warm-up, then
30,000 measured, sent in order from 8 threads on keep-alive connections. Every system
answers the same trace from a cold cache:

- filegate, memory tier of 32 MiB, no disk tier (chat files uploaded by PUT into its
  embedded store);
- filegate, the same 32 MiB of memory and a 256 MiB disk tier: which hits came from disk;
- nginx proxy_cache, `max_size=32m`, in front of nginx's static files;
- Varnish, `-s malloc,32m`, in front of the same.

Each answer must be a 200 of the object's length; a hit is `X-Cache-Status: HIT` (filegate,
nginx's `$upstream_cache_status`, Varnish's `obj.hits > 0`). filegate's store GETs and
disk hits come from its /metrics. What each system held is sampled four times a second
(filegate's memory tier bytes, Varnish's `SMA.s0.g_bytes`, the bytes of nginx's cache
files): nginx's cache manager trims to `max_size` only now and then, and the row says
how far above it nginx's cache grew.
"""

import concurrent.futures
import itertools
import os
import random
import threading
import time
import urllib.parse

import bench

OBJECTS, WARMUP, MEASURED = 2000, 10_000, 30_000
DISK_HITS = 'filegate_cache_requests_total{kind="original",result="hit",tier="disk"}'
SMOKE = (100, 200, 300)


def make_objects(fixtures, count):
    """The row's files in fixtures/zipf/ (nginx serves them as /static/zipf/N.bin); made
    once, the same on every run."""
    d = os.path.join(fixtures, "zipf")
    os.makedirs(d, exist_ok=True)
    rng = random.Random(23)
    paths = []
    for i in range(count):
        size = rng.randint(20_000, 114_000)
        path = os.path.join(d, f"{i}.bin")
        if not os.path.exists(path) or os.path.getsize(path) != size:
            partial = path + ".partial"
            with open(partial, "wb") as f:
                f.write(rng.randbytes(size))
            os.rename(partial, path)
        else:
            rng.randbytes(size)  # the same stream of sizes whether made or not
        paths.append(path)
    return paths


def trace(count, warmup, measured):
    """The sequence of object indices: Zipf s=1.0 over shuffled ranks."""
    rng = random.Random(29)
    ranks = list(range(count))
    rng.shuffle(ranks)
    weights = list(itertools.accumulate(1.0 / r for r in range(1, count + 1)))
    return [ranks[i] for i in rng.choices(range(count), cum_weights=weights, k=warmup + measured)]


def dir_bytes(path):
    """Bytes of the files under `path` (nginx's cache on disk)."""
    total = 0
    for d, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(d, name))
            except OSError:
                pass  # removed by nginx's cache manager meanwhile
    return total


class Peak:
    """The largest value `held()` (bytes a cache holds) takes, sampled 4 times a second
    while the trace runs and once at its end: `with Peak(held) as peak: ...`."""

    def __init__(self, held):
        self.held, self.peak = held, 0
        self.sampler = bench.Sampler(self._sample, period=0.25)

    def _sample(self):
        self.peak = max(self.peak, self.held())
        return []

    def __enter__(self):
        self.sampler.__enter__()
        return self

    def __exit__(self, *exc):
        self.sampler.__exit__(*exc)
        self._sample()  # the end of the trace, whatever the sampler's last moment was


def replay(port, paths_sizes, headers, sequence, warmup, held):
    """Sends the sequence (8 threads, in order) while sampling `held()`; returns (hits
    among the measured, problems, downloads/s, peak bytes held)."""
    local = threading.local()

    def download(i):
        path, size = paths_sizes[i]
        problem, cache = bench.sized_get(local, port, path, headers, size, timeout=30)
        return problem, problem is None and cache == "HIT"

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool, Peak(held) as peak:
        first = list(pool.map(download, sequence[:warmup]))
        started = time.perf_counter()
        answers = list(pool.map(download, sequence[warmup:]))
        elapsed = time.perf_counter() - started
    problems = sorted({p for p, _ in first + answers if p})
    return sum(1 for _, hit in answers if hit), problems, len(answers) / elapsed, peak.peak


def rows(b):
    count, warmup, measured = SMOKE if b.args.smoke else (OBJECTS, WARMUP, MEASURED)
    files = make_objects(b.fixtures, count)
    sizes = [os.path.getsize(p) for p in files]
    sequence = trace(count, warmup, measured)
    memory = f"{bench.TIERS_MEMORY_MIB} MiB"
    print(f"row: tiers, a Zipf trace over {count:,} files ({sum(sizes) / 2**20:,.0f} MiB) with"
          f" {bench.TIERS_MEMORY_MIB} MiB of memory each; {warmup:,} downloads of warm-up,"
          f" {measured:,} measured", flush=True)
    # Objects never asked for before the measured part: a miss whatever the cache.
    new = len(set(sequence[warmup:]) - set(sequence[:warmup]))
    results = {"objects": count, "bytes": sum(sizes), "memory_mib": bench.TIERS_MEMORY_MIB,
               "warmup": warmup, "measured": measured, "first_requests": new}

    for label, cache_extra in (
            ("filegate, memory", ""),
            ("filegate, memory + disk", "  disk: 256 MiB\n  dir: {dir}/disk\n")):
        name = "tiers-" + ("disk" if cache_extra else "memory")
        fg = bench.Filegate(b.started, b.args.binary, b.work, name, memory, False,
                            cache_extra=cache_extra.format(dir=os.path.join(b.work, name)))
        uploaded, headers = bench.put_uploads(fg, count, random.Random(1), bodies=files)
        gets0 = fg.store_gets()
        disk0 = fg.metric_sum(DISK_HITS) if cache_extra else 0
        hits, problems, rate, peak = replay(
            fg.port, uploaded, headers, sequence, warmup,
            lambda fg=fg: fg.metric_sum('filegate_cache_bytes{tier="memory"'))
        figure = {"hits": hits, "hit_ratio": hits / measured, "errors": problems,
                  "downloads_per_s": rate, "peak_bytes": peak,
                  # Over the whole trace (warm-up included): a GET per miss, no more.
                  "store_gets": fg.store_gets() - gets0}
        if cache_extra:
            disk = fg.metric_sum(DISK_HITS) - disk0
            figure["disk_hits_whole_trace"] = disk
        results[label] = figure
        report(label, figure, measured)

    for label, base, prefix, held in (
            ("nginx proxy_cache", b.nginx, "/zipf/",
             lambda: dir_bytes(os.path.join(b.work, "nginx-zipf-cache"))),
            ("Varnish (malloc)", b.zipf_varnish.base, "/static/zipf/",
             lambda: b.zipf_varnish.stat("SMA.s0.g_bytes"))):
        port = urllib.parse.urlsplit(base).port
        paths = [(f"{prefix}{i}.bin", size) for i, size in enumerate(sizes)]
        hits, problems, rate, peak = replay(port, paths, {}, sequence, warmup, held)
        figure = {"hits": hits, "hit_ratio": hits / measured, "errors": problems,
                  "downloads_per_s": rate, "peak_bytes": peak}
        results[label] = figure
        report(label, figure, measured)
    results["best"] = 1.0 - new / measured
    b.results["tiers"] = results


def report(label, figure, measured):
    extra = ""
    if "store_gets" in figure:
        extra += f", {figure['store_gets']:,.0f} store GETs over the whole trace"
    if "disk_hits_whole_trace" in figure:
        extra += f" ({figure['disk_hits_whole_trace']:,.0f} hits from disk)"
    print(f"  {label}: hit ratio {figure['hit_ratio']:.2%} ({figure['hits']:,} of {measured:,})"
          f"{extra}, at most {figure['peak_bytes'] / 2**20:,.1f} MiB held (memory; nginx: its"
          f" cache files), {figure['downloads_per_s']:,.0f} downloads/s"
          + (f"  !! {'; '.join(figure['errors'])}" if figure["errors"] else ""), flush=True)


def report_lines(r, lines, verdict):
    t = r["tiers"]
    title = (f"hit ratio, Zipf s=1.0 over {t['objects']:,} files ({t['bytes'] / 2**20:,.0f} MiB),"
             f" {t['memory_mib']} MiB of memory each, {t['measured']:,} downloads")
    ours = t["filegate, memory"]
    for peer in ("nginx proxy_cache", "Varnish (malloc)"):
        p = t[peer]
        target, met = verdict("tiers_hit_ratio", ours["hit_ratio"] - p["hit_ratio"],
                              ours["errors"] + p["errors"])
        lines.append(f"| {title} | {ours['hit_ratio']:.2%} (memory tier alone; at most"
                     f" {ours['peak_bytes'] / 2**20:,.1f} MiB held) | {peer} |"
                     f" {p['hit_ratio']:.2%} (at most {p['peak_bytes'] / 2**20:,.1f} MiB held) |"
                     f" {ours['hit_ratio'] - p['hit_ratio']:+.2%} | {target} | {met} |")
    disk = t["filegate, memory + disk"]
    share = disk.get("disk_hits_whole_trace", 0)
    lines.append(f"| {title}: with a 256 MiB disk tier | {disk['hit_ratio']:.2%}"
                 f" ({share:,.0f} hits of the whole trace from disk) | best possible"
                 f" (only first requests miss) | {t['best']:.2%} | - | - | - |")
