"""The HEIF rows of `make bench` (issue 20): an iPhone photo (the corpus' pug.heic:
iPhone 13 Pro, 4032x3024, a grid of 48 HEVC tiles of 512 pixels, Display P3, a depth
image and a gain map; no preview item, so every thumbnail decodes the whole picture)
as phones send it.

Against thumbor 7.8 with pillow-heif in its venv (thumbor's PIL engine decodes HEIF
through it), JPEG out on both. Not the same work: filegate converts Display P3 to sRGB
(SPEC §11; ~8% of a rendition's CPU), thumbor's PIL engine embeds the source's ICC
profile in its JPEG and converts nothing.

- The first view of a photo just sent: each request a fresh upload's (nothing cached),
  two at a time: a 200x200 chat thumbnail and a `format=jpg` rendition (the whole
  picture as JPEG).
- Cold thumbnails by wrk, every request a box never asked before (100-149 wide).
- The decode alone: pillow-heif's full decode of the file (CPU ms, libheif with
  libde265), as requests/s on the machine's cores; beside it filegate's in-process
  thumbnail (examples/thumbnail_cost.rs) and libvips' full heifload decode (the `vips`
  CLI, its start-up subtracted).
- Peak RSS of the filegate process over these rows (VmHWM, reset before they start).
"""

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse

import bench

PUG = os.path.join("corpus", "pillow_heif-1.8.1", "tests", "images", "heif_other", "pug.heic")
THUMB = "&image_type=2&w={W}&h={H}&thumbnail_strategy=2"
TRANSFORMS = 'filegate_transforms_total{kind="thumbnail",result="ok"'
RENDITIONS = 'filegate_transforms_total{kind="rendition",result="ok"'
HEIF_VENV = os.path.join("venv-heif", "bin", "python")


def fixture(b):
    src = os.path.join(bench.tools_dir(), PUG)
    if not os.path.exists(src):
        raise RuntimeError(f"{src} is missing (scripts/setup.sh test fetches it)")
    path = b.fixture("pug.heic")
    if not os.path.exists(path):
        shutil.copyfile(src, path)
    return path


def reset_peak(pid):
    """Resets the process' VmHWM (writing 5 to clear_refs): the peak read after the
    rows is theirs."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def thumbnail_row(b, name):
    """Cold thumbnails by wrk, boxes never asked before (100-149 wide, 200-1999 high)."""
    fg = b.fg
    url = urllib.parse.urlsplit(fg.avatar_url(name, THUMB))
    template = url.path + "?" + url.query
    thumbor = "/unsafe/fit-in/{W}x{H}/filters:format(jpeg)/pug.heic"
    for base, t in ((fg.base, template), (b.thumbor, thumbor)):
        status, _ = bench.http("GET", base + t.replace("{W}", "99").replace("{H}", "99"))
        if status != 200:
            raise RuntimeError(f"HEIF rows: {base} answered {status} for a thumbnail of pug.heic")
    print("row: cold thumbnails of an iPhone HEIC 4032x3024, boxes 100-149 wide"
          " (requests/s)", flush=True)

    def run(r, base, t, f):
        before = f.metric_sum(TRANSFORMS) if f else 0
        rps, stats, bad = bench.wrk(base + "/", b.seconds, b.conns,
                                    sizes=(t, 50, 100, r * 613 + 77))
        problems = list(bad)
        if f and f.metric_sum(TRANSFORMS) - before < stats["requests"]:
            problems.append("not every request was a miss")
        return rps, problems

    b.results["heif_thumb_full"] = bench.interleaved(b.runs, {
        "filegate": lambda r: run(r, fg.base, template, fg),
        "thumbor": lambda r: run(r, b.thumbor, thumbor, None),
    })


def two_at_a_time(targets, headers, want_miss):
    """Requests/s of fetching `targets` two at a time (each once), and what went wrong."""
    errors, lock = [], threading.Lock()
    queue = list(targets)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                url = queue.pop()
            status, got, body = bench.fetch(url, headers, timeout=120)
            bad = status != 200 or got.get("Content-Type") != "image/jpeg" or len(body) < 1000
            if want_miss and got.get("X-Cache-Status") != "MISS":
                bad = True
            if bad:
                with lock:
                    errors.append(f"HTTP {status} {got.get('Content-Type')}"
                                  f" {got.get('X-Cache-Status')}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(targets) / (time.perf_counter() - started), sorted(set(errors))


def fresh_rows(b, path):
    """The first view of a photo just sent: each request a fresh upload's (nothing
    cached), two at a time. A 200x200 chat thumbnail and a
    `format=jpg` rendition (the whole picture as JPEG), vs thumbor's fit-in as JPEG."""
    fg = b.fg
    per_run = 4 if b.args.smoke else 12
    cases = [
        ("heif_thumb_chat", "&image_type=2&w=200&h=200&thumbnail_strategy=2", TRANSFORMS,
         "/unsafe/fit-in/200x200/filters:format(jpeg)/pug.heic", "200x200 chat thumbnails"),
        ("heif_rendition", "&format=jpg", RENDITIONS,
         "/unsafe/fit-in/4096x4096/filters:format(jpeg)/pug.heic",
         "format=jpg renditions (the whole picture)"),
    ]
    for key, query, series, thumbor_path, label in cases:
        urls = []
        for i in range(per_run * b.runs + 1):
            grant = bench.upload(fg.base, fg.token, "/file/upload/chat?file_type=102&to_id=1",
                                 path, f"pug{i}.heic", "image/heic")
            urls.append(fg.chat_url(grant["file_sign"], query, token_in_query=False))
        # One made first, so the transform's series exists before it is read.
        status, _, _ = bench.fetch(urls.pop(), fg.headers, timeout=120)
        if status != 200:
            raise RuntimeError(f"HEIF rows: {label}: filegate answered {status}")

        def ours(r, urls=urls, series=series):
            before = fg.metric_sum(series)
            rps, errors = two_at_a_time(urls[r * per_run:(r + 1) * per_run], fg.headers, True)
            if fg.metric_sum(series) - before < per_run:
                errors.append("not every request made its result")
            return rps, errors

        thumbor = b.thumbor + thumbor_path
        print(f"row: cold {label} of an iPhone HEIC, fresh uploads, {per_run} a run, two at a"
              " time (requests/s)", flush=True)
        b.results[key] = bench.interleaved(b.runs, {
            "filegate": ours,
            "thumbor": lambda r, thumbor=thumbor: two_at_a_time([thumbor] * per_run, {}, False),
        })


def decode_row(b, path):
    count = "5" if b.args.smoke else "30"
    script = (
        "import sys, time, pillow_heif\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "n = int(sys.argv[2])\n"
        "t0 = time.process_time()\n"
        "for _ in range(n):\n"
        "    pillow_heif.open_heif(data, convert_hdr_to_8bit=True).data\n"
        "print((time.process_time() - t0) * 1000.0 / n)\n"
    )
    python = os.path.join(bench.tools_dir(), HEIF_VENV)
    pillow_ms = float(bench.run([python, "-c", script, path, count]).stdout)
    ours = json.loads(bench.run([b.thumbnail_cost, path, count]).stdout)
    # libvips' heifload of the whole picture, by the CLI: a run of N decodes less a run
    # of none (the process's start-up), both as CPU time.
    def vips_cpu(decodes):
        start = os.times()
        for _ in range(decodes):
            subprocess.run(["vips", "copy", path, os.path.join(b.work, "pug.v")], check=True,
                           capture_output=True)
        end = os.times()
        return (end.children_user + end.children_system
                - start.children_user - start.children_system) * 1000.0
    n = 3 if b.args.smoke else 10
    startup = 0.0
    for _ in range(n):
        t = os.times()
        subprocess.run(["vips", "--version"], check=True, capture_output=True)
        e = os.times()
        startup += (e.children_user + e.children_system - t.children_user - t.children_system) * 1000.0
    vips_ms = (vips_cpu(n) - startup) / n
    cores = os.cpu_count() or 1
    b.results["heif_decode"] = {
        "pillow_ms": pillow_ms, "floor_rps": cores * 1000.0 / pillow_ms,
        "filegate_ms": ours["cpu_ms"], "vips_ms": vips_ms,
    }
    print(f"  decode alone: pillow-heif {pillow_ms:.1f} ms CPU ({cores * 1000.0 / pillow_ms:,.1f}"
          f" req/s on {cores} cores); libvips heifload {vips_ms:.1f} ms; filegate's thumbnail in"
          f" process {ours['cpu_ms']:.1f} ms", flush=True)


def rows(b):
    path = fixture(b)
    fg = b.fg
    reset_peak(fg.proc.pid)
    grant = bench.upload(fg.base, fg.token, "/file/upload/avatar/user", path, "pug.heic",
                         "image/heic")
    thumbnail_row(b, grant["object_name"])
    fresh_rows(b, path)
    _, hwm = bench.rss_kib(fg.proc.pid)
    b.results["heif_rss"] = {"peak_mib": hwm / 1024.0}
    print(f"  peak RSS of filegate over the HEIF rows: {hwm / 1024.0:,.0f} MiB", flush=True)
    decode_row(b, path)


def report_lines(r, lines, verdict):
    def fmt(m):
        return f"{m['median']:,.1f} req/s ({m['min']:,.1f}-{m['max']:,.1f})"

    rows_of = [
        ("heif_thumb_chat", "cold 200x200 thumbnails, iPhone HEIC 4032x3024 (fresh uploads,"
         " 2 at a time)"),
        ("heif_thumb_full", "cold thumbnails, iPhone HEIC 4032x3024, boxes 100-149 wide (wrk)"),
        ("heif_rendition", "cold format=jpg renditions, iPhone HEIC 4032x3024 (fresh uploads,"
         " 2 at a time)"),
    ]
    for key, title in rows_of:
        if key not in r:
            continue
        fg, peer = r[key]["filegate"], r[key]["thumbor"]
        ratio = fg["median"] / peer["median"] if peer["median"] else float("nan")
        target, met = verdict("heif_vs_thumbor", ratio, fg["errors"] + peer["errors"])
        lines.append(f"| {title} | {fmt(fg)} | thumbor 7.8 + pillow-heif | {fmt(peer)} |"
                     f" {ratio:.2f}x | {target} | {met} |")
    if "heif_decode" in r:
        d = r["heif_decode"]
        lines.append(f"| the decode alone, iPhone HEIC 4032x3024 | thumbnail in process"
                     f" {d['filegate_ms']:.1f} ms CPU; libvips heifload whole {d['vips_ms']:.1f} ms"
                     f" | pillow-heif full decode | {d['pillow_ms']:.1f} ms CPU"
                     f" ({d['floor_rps']:,.1f} req/s on the cores) | - | - | - |")
    if "heif_rss" in r:
        lines.append(f"| peak RSS over the HEIF rows | {r['heif_rss']['peak_mib']:,.0f} MiB"
                     " | - | - | - | - | - |")
