"""The thumbnail rows of `make bench` (issue 12): cold thumbnails by kind of source
against thumbor and the decode floor, output formats, throughput and p99 latency
against concurrency (with a chart), and the first view of an eager size after an
upload.

Cold (row 5): every request asks for a box never asked before (WRK_SIZES: 100-199 px
wide, 200-1999 high, so the width decides and every request costs the same), for each
source: the 1600x1200 and 4000x3000 photos baseline (also against nginx image_filter)
and progressive, two real photographs (thumbor's own test fixtures, with ICC
profiles), and the 1600x1200 photo as PNG, WebP and GIF. Each filegate run proves it
missed: its `filegate_transforms_total{kind="thumbnail",result="ok"}` must grow by at
least the requests wrk completed. Beside each: the floor, the CPU a scaled decode
alone costs with the decoder filegate uses (examples/decode_floor.rs: libjpeg's DCT
scaling at the scale filegate picks for a JPEG, libvips' whole decode otherwise) as
requests/s on the machine's cores, Pillow's scaled decode beside it (decode_floor.py),
and filegate's own CPU per thumbnail in process (examples/thumbnail_cost.rs: no HTTP).
"""

import contextlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import time
import urllib.parse

import bench

# (key, label, fixture, content type, peers): peers beside thumbor.
SOURCES = [
    ("1600", "1600x1200 baseline JPEG", "photo1600.jpg", "image/jpeg", ("nginx image_filter",)),
    ("4000", "4000x3000 baseline JPEG", "photo4000.jpg", "image/jpeg", ("nginx image_filter",)),
    ("1600p", "1600x1200 progressive JPEG", "photo1600p.jpg", "image/jpeg", ()),
    ("4000p", "4000x3000 progressive JPEG", "photo4000p.jpg", "image/jpeg", ()),
    ("real-p", "real photo 1201x800, progressive, ICC", "real-progressive.jpg", "image/jpeg", ()),
    ("real-b", "real photo 800x533, baseline, ICC", "real-baseline.jpg", "image/jpeg", ()),
    ("png", "1600x1200 PNG", "photo1600.png", "image/png", ()),
    ("webp", "1600x1200 WebP", "photo1600.webp", "image/webp", ()),
    ("gif", "1600x1200 GIF", "photo1600.gif", "image/gif", ()),
]

# Real photographs: thumbor's own test fixtures (in the tools venv setup.sh installs).
REAL = {
    "real-progressive.jpg": "upscale3.jpg",
    "real-baseline.jpg": "Giunchedi%2C_Filippo_January_2015_01.jpg",
}

THUMB = "&image_type=2&w={W}&h={H}&thumbnail_strategy=2"
TRANSFORMS = 'filegate_transforms_total{kind="thumbnail",result="ok"'


def make_fixtures(fixtures):
    """The sources beyond bench.py's own, made once into bench-out/fixtures."""
    thumbor_fixtures = os.path.join(bench.tools_dir(), "venv", "lib")
    for name, original in REAL.items():
        path = os.path.join(fixtures, name)
        if os.path.exists(path):
            continue
        found = [os.path.join(d, original) for d, _, files in os.walk(thumbor_fixtures)
                 if original in files and d.endswith(os.path.join("fixtures", "filters"))]
        if not found:
            raise RuntimeError(f"thumbor's fixture {original} is missing (scripts/setup.sh test)")
        shutil.copyfile(found[0], path)
    made = {
        "photo1600p.jpg": ("photo1600.jpg", "[Q=85,interlace]"),
        "photo4000p.jpg": ("photo4000.jpg", "[Q=85,interlace]"),
        "photo1600.png": ("photo1600.jpg", ""),
        "photo1600.webp": ("photo1600.jpg", "[Q=85]"),
        "photo1600.gif": ("photo1600.jpg", ""),
    }
    for name, (source, options) in made.items():
        path = os.path.join(fixtures, name)
        if not os.path.exists(path):
            partial = os.path.join(fixtures, "partial-" + name)
            bench.run(["vips", "copy", os.path.join(fixtures, source), partial + options])
            os.rename(partial, path)


def floor(b, fixture):
    """(floor requests/s on all cores, by the decoder filegate uses; its ms a decode;
    Pillow's ms a scaled decode; filegate's ms a whole thumbnail in process)."""
    path = b.fixture(fixture)
    count = "20" if b.args.smoke else "200"
    pillow = json.loads(bench.run([os.path.join(bench.VENV, "python"),
                                   os.path.join(bench.ROOT, "benches", "load", "decode_floor.py"),
                                   path, count]).stdout)
    decoder = json.loads(bench.run([b.decode_floor, path, count]).stdout)
    ours = json.loads(bench.run([b.thumbnail_cost, path, count]).stdout)
    cores = os.cpu_count() or 1
    return cores * 1000.0 / decoder["cpu_ms"], decoder["cpu_ms"], pillow["cpu_ms"], ours["cpu_ms"]


# Boxes the samplers ask for: wider than wrk's (100-199) and taller than its (200-1999),
# so never one wrk asks for, and never the same twice in a run.
SAMPLE_BOXES = itertools.count()


def source_size(path, cache={}):
    """(width, height) of a fixture, from vipsheader (once per file)."""
    if path not in cache:
        out = bench.run(["vipsheader", "-f", "width", path]).stdout.decode().strip()
        height = bench.run(["vipsheader", "-f", "height", path]).stdout.decode().strip()
        cache[path] = (int(out), int(height))
    return cache[path]


def output_check(base, template, source, headers=None):
    """A sample for bench.Sampler: one fresh box of `template` on `base` must answer 200
    with a picture (of a type `headers`' Accept names, when given) the box's width wide
    and the source's aspect (within a pixel) high (an AVIF: its type and a body)."""
    sw, sh = source_size(source)

    def sample():
        n = next(SAMPLE_BOXES)
        w, h = 200 + n % 50, 2000 + n
        url = base.rstrip("/") + template.replace("{W}", str(w)).replace("{H}", str(h))
        status, got_headers, body = bench.fetch(url, headers)
        if status != 200:
            return [f"sampled thumbnail: HTTP {status} {body[:120]!r}"]
        kind = (got_headers.get("Content-Type") or "").split(";")[0]
        wanted = (headers or {}).get("Accept")
        if not kind.startswith("image/") or (wanted and kind not in wanted):
            return [f"sampled thumbnail: {len(body)} bytes of {kind!r}"]
        size = bench.image_size(body)
        if size is None:
            # An AVIF: its type and a body are what is checked.
            return [] if body and kind == "image/avif" else [
                f"sampled thumbnail: {len(body)} bytes of {kind!r}, not readable"]
        want_h = w * sh / sw
        if size[0] != w or abs(size[1] - want_h) > 1:
            return [f"sampled thumbnail of a {w}x{h} box: {size[0]}x{size[1]},"
                    f" want {w}x{want_h:.0f}"]
        return []
    return sample


def cold_run(url, b, template, hbase, headers=None, fg=None, source=None):
    """One wrk run of never-asked boxes; a filegate run (`fg`) must show a transform per
    request it answered. With `source` (the fixture's path), thumbnails of fresh boxes are
    sampled during the run and checked for their dimensions."""
    before = fg.metric_sum(TRANSFORMS) if fg else 0
    sampler = (bench.Sampler(output_check(url, template, source, headers), period=1.0)
               if source else contextlib.nullcontext())
    with sampler:
        rps, stats, bad = bench.wrk(url, b.seconds, b.conns, sizes=(template, 50, 100, hbase),
                                    headers=headers)
    problems = list(bad) + (sampler.problems if source else [])
    if fg:
        made = fg.metric_sum(TRANSFORMS) - before
        if made < stats["requests"]:
            problems.append(f"{stats['requests']} requests but {made:.0f} thumbnails made:"
                            " some were not misses")
    return rps, problems


def upload_source(b, fixture, content_type):
    grant = bench.upload(b.fg.base, b.fg.token, "/file/upload/avatar/user", b.fixture(fixture),
                         fixture, content_type)
    return grant["object_name"]


def cold_rows(b):
    make_fixtures(b.fixtures)
    fg = b.fg
    for key, label, fixture, content_type, peers in SOURCES:
        name = upload_source(b, fixture, content_type)
        url = urllib.parse.urlsplit(fg.avatar_url(name, THUMB))
        systems = {"filegate": (fg.base, url.path + "?" + url.query, fg)}
        systems["thumbor"] = (b.thumbor, f"/unsafe/fit-in/{{W}}x{{H}}/{fixture}", None)
        if "nginx image_filter" in peers:
            systems["nginx image_filter"] = (b.nginx, f"/resize/{{W}}x{{H}}/{fixture}", None)
        for base, template, _ in systems.values():
            status, _ = bench.http("GET", base + template.replace("{W}", "99").replace("{H}", "99"))
            if status != 200:
                raise RuntimeError(f"row 5 {label}: {base} answered {status}")
        print(f"row 5: cold thumbnails of the {label} (requests/s)", flush=True)
        seed = sum(map(ord, key)) * 97
        result = bench.interleaved(b.runs, {
            name: (lambda r, base=base, template=template, f=f:
                   cold_run(base + "/", b, template, r * 613 + seed, fg=f,
                            source=b.fixture(fixture)))
            for name, (base, template, f) in systems.items()
        })
        floor_rps, decoder_ms, pillow_ms, ours_ms = floor(b, fixture)
        result["floor"] = {"rps": floor_rps, "decoder_ms": decoder_ms, "pillow_ms": pillow_ms,
                           "filegate_ms": ours_ms}
        result["label"] = label
        print(f"  floor: {floor_rps:,.1f} requests/s on {os.cpu_count()} cores (filegate's"
              f" decoder alone {decoder_ms:.2f} ms a decode; Pillow's scaled decode"
              f" {pillow_ms:.2f} ms; filegate's thumbnail in process {ours_ms:.2f} ms)",
              flush=True)
        b.results[f"cold_{key}"] = result


def format_rows(b):
    """Row 5b: the cost of WebP and AVIF output, cold, from the 1600x1200 JPEG."""
    fg = b.fg
    name = upload_source(b, "photo1600.jpg", "image/jpeg")
    url = urllib.parse.urlsplit(fg.avatar_url(name, THUMB))
    template = url.path + "?" + url.query
    formats = {"JPEG": "image/jpeg", "WebP": "image/webp", "AVIF": "image/avif,image/webp"}
    print("row 5b: cold 1600x1200 thumbnails by output format (requests/s)", flush=True)
    result = bench.interleaved(b.runs, {
        f: (lambda r, accept=accept, f=f:
            cold_run(fg.base + "/", b, template, r * 613 + 5000 + len(f), headers={"Accept": accept},
                     fg=fg, source=b.fixture("photo1600.jpg")))
        for f, accept in formats.items()
    })
    # Mean output size over 20 fresh boxes each, and the type actually answered.
    for f, accept in formats.items():
        sizes, types = [], set()
        for i in range(20):
            u = fg.base + template.replace("{W}", str(150 + i)).replace("{H}", str(3000 + i))
            status, headers, body = bench.fetch(u, {"Accept": accept})
            if status != 200:
                result[f]["errors"].append(f"size check: HTTP {status}")
            sizes.append(len(body))
            types.add(headers.get("Content-Type"))
        result[f]["bytes"] = statistics.mean(sizes)
        result[f]["types"] = sorted(t or "none" for t in types)
    b.results["cold_formats"] = result


def sweep(b):
    """Row 5c: throughput and p99 of cold 1600x1200 thumbnails at 1, 4, 16 and 64
    connections, filegate vs thumbor vs nginx image_filter; a chart when the plot venv
    is there (make bench), required outside --smoke."""
    fg = b.fg
    name = upload_source(b, "photo1600.jpg", "image/jpeg")
    url = urllib.parse.urlsplit(fg.avatar_url(name, THUMB))
    systems = {
        "filegate": (fg.base, url.path + "?" + url.query, fg),
        "thumbor": (b.thumbor, "/unsafe/fit-in/{W}x{H}/photo1600.jpg", None),
        "nginx image_filter": (b.nginx, "/resize/{W}x{H}/photo1600.jpg", None),
    }
    levels = (1, 4, 16, 64)
    print("row 5c: cold 1600x1200 thumbnails against concurrency", flush=True)
    points = {s: [] for s in systems}
    for i, conns in enumerate(levels):
        # H ranges 400 apart per level (mod 1800 in the script), so no level asks a box
        # an earlier one asked: every request a miss.
        hbase = 100 + i * 400
        for system, (base, template, f) in systems.items():
            before = f.metric_sum(TRANSFORMS) if f else 0
            rps, stats, bad = bench.wrk(base + "/", b.seconds, conns, threads=min(2, conns),
                                        sizes=(template, 50, 100, hbase))
            errors = list(bad)
            if f and f.metric_sum(TRANSFORMS) - before < stats["requests"]:
                errors.append("not every request was a miss")
            points[system].append({"connections": conns, "rps": rps,
                                   "p99_ms": to_ms(stats["99%"]), "errors": errors})
            print(f"  {system} -c{conns}: {rps:,.1f} requests/s, p99 {stats['99%']}"
                  + (f"  !! {'; '.join(errors)}" if errors else ""), flush=True)
    b.results["cold_sweep"] = {"points": points,
                               "errors": sorted({e for p in points.values() for x in p
                                                 for e in x["errors"]})}
    plot = os.path.join(bench.tools_dir(), "venv-plot", "bin", "python")
    if not os.path.exists(plot):
        if not b.args.smoke:
            b.results["cold_sweep"]["errors"].append(
                "no chart: the plot venv is missing (scripts/setup.sh bench)")
        return
    data = os.path.join(b.work, "cold-sweep.json")
    with open(data, "w") as f:
        json.dump(points, f)
    chart = os.path.join(b.work, "cold-thumbnails.png")
    bench.run([plot, os.path.join(bench.ROOT, "benches", "load", "plot_sweep.py"), data, chart])
    b.results["cold_sweep"]["chart"] = chart
    print(f"  chart: {chart}", flush=True)


def to_ms(text):
    """wrk's latency ("812.00us", "1.20ms", "2.00s") in milliseconds."""
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise RuntimeError(f"wrk latency {text!r} not understood")


def eager_row(b):
    """Row 5d: the first view of an eager size after an upload (app `benchgo`, eager
    200x200): the download after the upload's eager result is made, against a repeat
    hit of the same URL; both timed one request at a time on one connection, each after
    the connection sat idle for as long as the wait for the eager result (a request
    after idle wakes both sides from sleep: ~0.1 ms here, which a back-to-back repeat
    would not pay and the first view would)."""
    fg = b.fg
    count = 5 if b.args.smoke else 30
    token = bench.mint("benchgo", 1, "user")
    made = 'filegate_eager_total{result="made"'
    firsts, repeats, readies, errors = [], [], [], []
    conn = bench.HTTPConnection("127.0.0.1", fg.port, timeout=30)

    def timed(path):
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"access-token": token})
        resp = conn.getresponse()
        body = resp.read()
        return (time.perf_counter() - t0) * 1000.0, resp.status, resp.getheader("X-Cache-Status"), body

    print(f"row 5d: the first view of an eager size after {count} uploads", flush=True)
    for i in range(count):
        before = fg.metric_sum(made)
        grant = bench.upload(fg.base, token, "/file/upload/chat?file_type=102&to_id=1",
                             b.fixture("avatar100k.jpg"), f"eager{i}.jpg", "image/jpeg",
                             app="benchgo")
        uploaded = time.perf_counter()
        while fg.metric_sum(made) <= before:
            if time.perf_counter() - uploaded > 10:
                errors.append("an eager result not made within 10 s")
                break
            time.sleep(0.002)
        idle = time.perf_counter() - uploaded
        readies.append(idle * 1000.0)
        path = (f"/file/download/chat?app_id=benchgo&file_sign={grant['file_sign']}"
                "&image_type=2&w=200&h=200&thumbnail_strategy=2")
        ms, status, cache, _ = timed(path)
        if status != 200 or cache != "HIT":
            errors.append(f"first view: HTTP {status}, X-Cache-Status {cache}")
        firsts.append(ms)
        for _ in range(3):
            time.sleep(idle)
            ms, status, cache, _ = timed(path)
            if status != 200 or cache != "HIT":
                errors.append(f"repeat: HTTP {status}, X-Cache-Status {cache}")
            repeats.append(ms)
    conn.close()
    first, repeat = statistics.median(firsts), statistics.median(repeats)
    b.results["eager"] = {"first_ms": first, "hit_ms": repeat, "ratio": first / repeat,
                          "ready_ms": statistics.median(readies), "uploads": count,
                          "errors": sorted(set(errors))}
    print(f"  first view {first:.3f} ms (median), a repeat hit {repeat:.3f} ms: {first / repeat:.2f}x;"
          f" eager result made {statistics.median(readies):.1f} ms after the upload answered",
          flush=True)


def rows(b):
    cold_rows(b)
    format_rows(b)
    sweep(b)
    eager_row(b)


def report_lines(r, lines, verdict):
    """The thumbnail rows of the results table."""
    def fmt(m):
        return f"{m['median']:,.1f} req/s ({m['min']:,.1f}-{m['max']:,.1f})"

    for key, label, *_ in SOURCES:
        c = r.get(f"cold_{key}")
        if not c:
            continue
        fg = c["filegate"]
        errors = fg.get("errors", [])
        for peer in ("thumbor", "nginx image_filter"):
            if peer not in c:
                continue
            # A peer that finished no request within a (smoke) run has no ratio; the
            # verdict then says no, it does not crash the report.
            ratio = fg["median"] / c[peer]["median"] if c[peer]["median"] else float("nan")
            target_key = {"1600": "cold_1600_vs_thumbor", "4000": "cold_4000_vs_thumbor"}.get(key)
            if peer == "nginx image_filter":
                target_key = "cold_vs_image_filter"
            target, met = verdict(target_key, ratio, errors + c[peer].get("errors", [])) \
                if target_key else ("-", "-")
            lines.append(f"| cold thumbnails, {label} | {fmt(fg)} | {peer} | {fmt(c[peer])} |"
                         f" {ratio:.2f}x | {target} | {met} |")
        fl = c["floor"]
        ratio = fl["rps"] / fg["median"] if fg["median"] else float("nan")
        target, met = verdict("cold_floor", ratio, errors) if key == "1600" else ("-", "-")
        lines.append(f"| cold thumbnails, {label}: the decode floor | {fmt(fg)} | filegate's"
                     f" decoder alone ({fl['decoder_ms']:.2f} ms a decode; Pillow's"
                     f" {fl['pillow_ms']:.2f} ms; filegate in process"
                     f" {fl['filegate_ms']:.2f} ms a thumbnail) | {fl['rps']:,.1f} req/s |"
                     f" floor / filegate {ratio:.2f}x | {target} | {met} |")
    if "cold_formats" in r:
        f = r["cold_formats"]
        jpeg = f["JPEG"]
        for name in ("WebP", "AVIF"):
            m = f[name]
            lines.append(f"| cold thumbnails 1600x1200, {name} output ({', '.join(m['types'])},"
                         f" {m['bytes']:,.0f} B) | {fmt(m)} | JPEG output | {fmt(jpeg)}"
                         f" ({jpeg['bytes']:,.0f} B) | {(m['median'] / jpeg['median'] if jpeg['median'] else float('nan')):.2f}x | - |"
                         f" {'(errors!)' if m['errors'] else '-'} |")
    if "eager" in r:
        e = r["eager"]
        target, met = verdict("eager", e["ratio"], e["errors"])
        lines.append(f"| first view of an eager 200x200 after an upload | {e['first_ms']:.3f} ms |"
                     f" a repeat cache hit | {e['hit_ms']:.3f} ms | {e['ratio']:.2f}x | {target} |"
                     f" {met} |")
