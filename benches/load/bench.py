#!/usr/bin/env python3
"""`make bench`: filegate side by side with nginx and thumbor, on loopback only and
bounded in time. It makes the same inputs for every system, starts each system on free
ports, drives it with wrk, and prints one table: filegate's figure, the peer's, the ratio.

Rows:
  1. cache-hit download of a 200x200 thumbnail: filegate vs nginx proxy_cache;
  2. cold thumbnails of a 1600x1200 and a 4000x3000 JPEG: filegate vs nginx
     image_filter vs thumbor (a fresh size per request, no cache);
  3. original download of a 1.6 MB object: filegate vs nginx static;
  4. AMR->MP3 of a 60 s voice file: filegate's request latency vs the ffmpeg CLI;
  5. filegate's peak RSS against its cache budget.

Each figure is the median of --runs runs with the spread (min-max). --smoke runs
everything briefly (a few seconds a row) so the harness cannot rot; its figures mean
nothing.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tools_dir():
    """The project's tools, outside the clone: the rule of scripts/tools-dir.sh."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("FILEGATE_TOOLS") or os.path.join(cache, "filegate", "tools")


VENV = os.path.join(tools_dir(), "venv", "bin")
SECRET = "bench-secret-0123456789abcdef"
CACHE_BUDGET_MIB = 256

TARGETS = {
    "cache_hit": ("ratio >= 1.0", lambda r: r >= 1.0),
    "cold_vs_thumbor": ("ratio >= 3.0", lambda r: r >= 3.0),
    "cold_vs_image_filter": ("ratio >= 2.0", lambda r: r >= 2.0),
    "original": ("ratio >= 0.9", lambda r: r >= 0.9),
    "amr": ("ratio <= 0.33", lambda r: r <= 0.33),
}


# --- processes and ports ---------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited early ({proc.args[0]})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Started:
    """Processes this run started; each is stopped by its own PID."""

    def __init__(self):
        self.procs = []

    def start(self, args, log_path, env=None):
        log = open(log_path, "wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop_all(self):
        # Each was started in its own session: its process group holds the workers it
        # forked (thumbor's, nginx's) and nothing else.
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, **kw)


def rss_kib(pid):
    """(VmRSS, VmHWM) of a process, in KiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.split()[0] if v.split() else "0"
    return int(fields.get("VmRSS", 0)), int(fields.get("VmHWM", 0))


# --- fixtures ----------------------------------------------------------------------

def photo(path, w, h):
    """A photo-like JPEG: smoothed colour noise, quality 85."""
    tmp = tempfile.mkdtemp()
    bands = []
    for i in range(3):
        band = os.path.join(tmp, f"b{i}.v")
        run(["vips", "gaussnoise", band, str(w), str(h), "--sigma", "60", "--mean", "128"])
        bands.append(band)
    joined = os.path.join(tmp, "rgb.v")
    run(["vips", "bandjoin", " ".join(bands), joined])
    smooth = os.path.join(tmp, "smooth.v")
    run(["vips", "gaussblur", joined, smooth, "2"])
    cast = os.path.join(tmp, "cast.v")
    run(["vips", "cast", smooth, cast, "uchar"])
    run(["vips", "copy", cast, path + "[Q=85]", "--interpretation", "srgb"])
    shutil.rmtree(tmp)


def voice(path, seconds):
    run([os.path.join(ROOT, "scripts", "make-voice.sh"), str(seconds), path])


def make_fixtures(fixtures, work):
    """The inputs every system gets; made once and kept in bench-out/fixtures."""
    os.makedirs(fixtures, exist_ok=True)
    made = [
        ("photo1600.jpg", lambda p: photo(p, 1600, 1200)),
        ("photo4000.jpg", lambda p: photo(p, 4000, 3000)),
        ("blob.bin", lambda p: open(p, "wb").write(os.urandom(1_600_000))),
        ("voice60.amr", lambda p: voice(p, 60)),
    ]
    for name, make in made:
        path = os.path.join(fixtures, name)
        if not os.path.exists(path):
            # Made under a temporary name with the same extension (vips picks the
            # format by it), then renamed: an interrupted run leaves no half file.
            partial = os.path.join(fixtures, "partial-" + name)
            make(partial)
            os.rename(partial, path)


# --- filegate ----------------------------------------------------------------------

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(app, sub, kind, ttl=7200):
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"app": app, "sub": str(sub), "kind": kind,
                             "exp": int(time.time()) + ttl}).encode())
    sig = hmac.new(SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(sig)}"


def filegate_config(path, port, admin, data, cache_memory, write_back):
    with open(path, "w") as f:
        f.write(f"""listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
public_url: http://127.0.0.1:{port}
threads: 2
demo_page: false
server:
  upgrade_sock: {data}/upgrade.sock
  pid_file: {data}/filegate.pid
store:
  kind: embedded
  dir: {data}
apps:
  bench:
    secrets: ["{SECRET}"]
    max_upload:
      picture: 30 MiB
      file: 30 MiB
media:
  queue: 1024
cache:
  memory: {cache_memory}
  write_back: {"true" if write_back else "false"}
""")


def http(method, url, headers=None, body=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


def upload(base, token, route, file_path, file_name, content_type):
    """Asks for a grant and posts the form the way a client does; returns data."""
    sep = "&" if "?" in route else "?"
    _, body = http("GET", f"{base}{route}{sep}app_id=bench",
                   headers={"access-token": token})
    data = json.loads(body)["data"]
    boundary = uuid.uuid4().hex
    parts = []
    for k, v in data["oss_body_param"].items():
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode())
    with open(file_path, "rb") as f:
        content = f.read()
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n".encode())
    parts.append(content + f"\r\n--{boundary}--\r\n".encode())
    status, _ = http("POST", data["upload_url"], body=b"".join(parts),
                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    if status != 200:
        raise RuntimeError(f"upload answered {status}")
    return data


class Filegate:
    def __init__(self, started, binary, work, name, cache_memory, write_back):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port, admin = free_port(), free_port()
        config = os.path.join(self.dir, "filegate.yaml")
        filegate_config(config, self.port, admin, os.path.join(self.dir, "data"), cache_memory,
                        write_back)
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = started.start([binary, "serve", "-c", config],
                                  os.path.join(self.dir, "filegate.log"), env=env)
        wait_port(self.port, proc=self.proc)
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = mint("bench", 1, "user")
        self.quoted_token = urllib.parse.quote(self.token)

    def avatar_url(self, object_name, query=""):
        return (f"{self.base}/file/download/avatar?app_id=bench&access-token={self.quoted_token}"
                f"&object_name={urllib.parse.quote(object_name, safe='')}{query}")

    def chat_url(self, file_sign, query=""):
        return (f"{self.base}/file/download/chat?app_id=bench&access-token={self.quoted_token}"
                f"&file_sign={file_sign}{query}")


# --- peers -------------------------------------------------------------------------

NGINX_CONF = """
load_module /usr/lib/nginx/modules/ngx_http_image_filter_module.so;
user root;
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    proxy_cache_path {work}/nginx-cache levels=1:2 keys_zone=thumbs:10m max_size=1g
                     inactive=1h use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        location /static/ {{ alias {fixtures}/; }}
        location ~ ^/resize/(\\d+)x(\\d+)/(.+)$ {{
            alias {fixtures}/$3;
            image_filter resize $1 $2;
            image_filter_buffer 64M;
            image_filter_jpeg_quality 82;
        }}
        location /cached/ {{
            proxy_pass http://127.0.0.1:{port}/resize/;
            proxy_cache thumbs;
            proxy_cache_valid 200 1h;
            proxy_http_version 1.1;
        }}
    }}
}}
"""

THUMBOR_CONF = """
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = '{fixtures}'
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
QUALITY = 82
ALLOW_UNSAFE_URL = True
"""


def start_nginx(started, work, fixtures):
    port = free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(work=work, port=port, fixtures=fixtures))
    proc = started.start(["nginx", "-c", conf, "-p", work, "-g", "daemon off;"],
                         os.path.join(work, "nginx.log"))
    wait_port(port, proc=proc)
    return f"http://127.0.0.1:{port}"


def start_thumbor(started, work, fixtures):
    port = free_port()
    conf = os.path.join(work, "thumbor.conf")
    with open(conf, "w") as f:
        f.write(THUMBOR_CONF.format(fixtures=fixtures))
    proc = started.start([os.path.join(VENV, "thumbor"), "-i", "127.0.0.1", "-p", str(port),
                          "-c", conf, "-l", "error", "--processes", "2"],
                         os.path.join(work, "thumbor.log"))
    wait_port(port, timeout=60, proc=proc)
    return f"http://127.0.0.1:{port}"


# --- load ----------------------------------------------------------------------------

WRK_SIZES = r"""
-- A box never asked for before, per request: {W} is first + tid*span + n % span (a
-- thumbnail 100-250 px wide) and {H} walks 200..1999 from hbase, so (W, H) never
-- repeats within a run or across runs (hbase differs) and no cache can help; H stays
-- above 3/4 W, so the width decides the output and the work per request is equal.
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  counter = 0
  template = args[1]
  span = tonumber(args[2])
  first = tonumber(args[3])
  hbase = tonumber(args[4])
end
function request()
  counter = counter + 1
  local w = first + tid * span + (counter % span)
  local h = 200 + (hbase + math.floor(counter / span)) % 1800
  local path = string.gsub(template, "{W}", tostring(w))
  path = string.gsub(path, "{H}", tostring(h))
  return wrk.format("GET", path)
end
"""


def wrk(url, seconds, conns, threads=2, sizes=None):
    """Requests per second (and p50/p99 latency) from one wrk run."""
    args = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency",
            "--timeout", "30s"]
    script = None
    if sizes is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(WRK_SIZES)
        script.close()
        args += ["-s", script.name]
    parsed = urllib.parse.urlsplit(url)
    args.append(f"{parsed.scheme}://{parsed.netloc}/")
    if sizes is not None:
        template, span, first, hbase = sizes
        args += ["--", template, str(span), str(first), str(hbase)]
    else:
        args[-1] = url
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    if script is not None:
        os.unlink(script.name)
    rps = float(next(l for l in out.splitlines() if l.startswith("Requests/sec:")).split()[1])
    bad = [l for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l]
    latency = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            latency[parts[0]] = parts[1]
    return rps, latency, bad


def summarize(label, values, notes):
    med = statistics.median(values)
    print(f"  {label}: median {med:,.1f} (runs {', '.join(f'{v:,.1f}' for v in values)})"
          + (f"  !! {'; '.join(sorted(set(notes)))}" if notes else ""), flush=True)
    return {"median": med, "min": min(values), "max": max(values), "runs": values,
            "errors": sorted(set(notes))}


def interleaved(runs, systems):
    """Runs each system once per round, rounds `runs` times: drift of a shared
    machine then touches every system alike. `systems` maps a label to a function
    of the round number returning (value, notes)."""
    values = {name: [] for name in systems}
    notes = {name: [] for name in systems}
    for r in range(runs):
        for name, fn in systems.items():
            value, note = fn(r)
            values[name].append(value)
            notes[name].extend(note or [])
    return {name: summarize(name, values[name], notes[name]) for name in systems}


def throughput(url, seconds, conns, sizes=None):
    """A round's requests/s; `sizes(round)` gives the wrk size-script arguments."""
    def once(r):
        rps, _latency, bad = wrk(url, seconds, conns, sizes=sizes(r) if sizes else None)
        return rps, bad
    return once


def latency_of(fn):
    def once(_r):
        started = time.perf_counter()
        fn()
        return (time.perf_counter() - started) * 1000.0, []
    return once


# --- main ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "filegate"))
    ap.add_argument("--seconds", type=int, default=10, help="length of one wrk run")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median, spread)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--smoke", action="store_true", help="a few seconds a row; figures mean nothing")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.runs = 1, 1
    amr_runs = 3 if args.smoke else 15

    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run-", dir=args.out)
    fixtures = os.path.join(args.out, "fixtures")
    started = Started()
    results = {}
    try:
        print(f"bench: fixtures in {fixtures}", flush=True)
        make_fixtures(fixtures, work)
        fg = Filegate(started, args.binary, work, "filegate", f"{CACHE_BUDGET_MIB} MiB", True)
        nginx = start_nginx(started, work, fixtures)
        thumbor = start_thumbor(started, work, fixtures)
        conns = args.connections
        print(f"bench: wrk -t2 -c{conns}, {args.seconds}s a run, {args.runs} runs a figure,"
              " systems interleaved run by run", flush=True)
        photos = {
            size: upload(fg.base, fg.token, "/file/upload/avatar/user",
                         os.path.join(fixtures, f"photo{size}.jpg"), f"photo{size}.jpg",
                         "image/jpeg")["object_name"]
            for size in (1600, 4000)
        }

        # 1. cache hits of a 200x200 thumbnail.
        hit_fg = fg.avatar_url(photos[1600], "&image_type=2&w=200&h=200&thumbnail_strategy=2")
        hit_nginx = f"{nginx}/cached/200x200/photo1600.jpg"
        for url in (hit_fg, hit_nginx):
            for _ in range(2):
                http("GET", url)
        print("row 1: cache-hit 200x200 thumbnail (requests/s)", flush=True)
        r1 = interleaved(args.runs, {
            "filegate": throughput(hit_fg, args.seconds, conns),
            "nginx proxy_cache": throughput(hit_nginx, args.seconds, conns),
        })
        results["cache_hit"] = {"filegate": r1["filegate"], "peer": r1["nginx proxy_cache"]}

        # 2. cold thumbnails: a box never asked for before, per request.
        for size in (1600, 4000):
            url = urllib.parse.urlsplit(fg.avatar_url(
                photos[size], "&image_type=2&w={W}&h={H}&thumbnail_strategy=2"))
            rows = {
                "filegate": (fg.base, url.path + "?" + url.query),
                "nginx image_filter": (nginx, f"/resize/{{W}}x{{H}}/photo{size}.jpg"),
                "thumbor": (thumbor, f"/unsafe/fit-in/{{W}}x{{H}}/photo{size}.jpg"),
            }
            for base, template in rows.values():
                http("GET", base + template.replace("{W}", "99").replace("{H}", "99"))
            print(f"row 2: cold thumbnails of the {size} JPEG (requests/s)", flush=True)
            results[f"cold_{size}"] = interleaved(args.runs, {
                name: throughput(base + "/", args.seconds, conns,
                                 sizes=lambda r, t=template: (t, 50, 100, r * 613 + (size // 1000) * 7))
                for name, (base, template) in rows.items()
            })

        # 3. original download of a 1.6 MB object.
        sign = upload(fg.base, fg.token, "/file/upload/chat?file_type=100&to_id=1",
                      os.path.join(fixtures, "blob.bin"), "blob.bin",
                      "application/octet-stream")["file_sign"]
        orig_fg = fg.chat_url(sign)
        orig_nginx = f"{nginx}/static/blob.bin"
        print("row 3: original download of 1.6 MB (requests/s)", flush=True)
        r3 = interleaved(args.runs, {
            "filegate": throughput(orig_fg, args.seconds, conns),
            "nginx static": throughput(orig_nginx, args.seconds, conns),
        })
        results["original"] = {"filegate": r3["filegate"], "peer": r3["nginx static"]}

        # 4. AMR -> MP3 of 60 s: a cold request to a fresh copy each time vs the CLI
        # at its default settings and at filegate's (LAME quality 7).
        amr = os.path.join(fixtures, "voice60.amr")
        signs = [upload(fg.base, fg.token, "/file/upload/chat?file_type=101&to_id=1", amr,
                        "voice.amr", "audio/amr")["file_sign"] for _ in range(amr_runs)]
        pending = list(signs)

        def filegate_mp3():
            status, body = http("GET", fg.chat_url(pending.pop(), "&format=mp3"))
            if status != 200 or len(body) < 1000:
                raise RuntimeError("mp3 request failed")

        out_mp3 = os.path.join(work, "cli.mp3")

        def cli_mp3(extra):
            def go():
                run(["ffmpeg", "-v", "error", "-y", "-i", amr, "-ar", "16000", "-ac", "1",
                     "-c:a", "libmp3lame", "-b:a", "32k", *extra, out_mp3])
            return go

        print("row 4: AMR->MP3 of 60 s (ms, one at a time)", flush=True)
        r4 = interleaved(amr_runs, {
            "filegate (cold)": latency_of(filegate_mp3),
            "ffmpeg CLI, same settings": latency_of(cli_mp3(["-compression_level", "7"])),
            "ffmpeg CLI, its defaults": latency_of(cli_mp3([])),
        })
        results["amr"] = {"filegate": r4["filegate (cold)"], "peer": r4["ffmpeg CLI, same settings"],
                          "peer_default": r4["ffmpeg CLI, its defaults"]}
        hit_mp3 = fg.chat_url(signs[0], "&format=mp3")
        results["amr_cached"] = interleaved(amr_runs, {
            "filegate (cached)": latency_of(lambda: http("GET", hit_mp3))})["filegate (cached)"]

        # 5. peak RSS of the one filegate that served every row, against its budget.
        _, hwm = rss_kib(fg.proc.pid)
        results["rss"] = {"filegate": {"peak_mib": hwm / 1024, "budget_mib": CACHE_BUDGET_MIB}}
    finally:
        started.stop_all()

    report(results, args, work)


def report(results, args, work):
    lines = []
    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines.append(f"machine: {platform.node()}, {os.cpu_count()} cores, {cpu}")
    lines.append(f"command: python3 benches/load/bench.py --seconds {args.seconds} --runs {args.runs}"
                 f" --connections {args.connections}{' --smoke' if args.smoke else ''}")
    lines.append(f"load: wrk -t2 -c{args.connections} on the same machine; each figure the median"
                 f" of {args.runs} run(s), spread min-max")
    lines.append("")
    lines.append("| row | filegate | peer | peer figure | ratio | target | met |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")

    def fmt(m, unit):
        return f"{m['median']:,.1f} {unit} ({m['min']:,.1f}-{m['max']:,.1f})"

    def row(name, title, fg, peer, peer_name, unit, higher, target_key):
        ratio = fg["median"] / peer["median"] if peer["median"] else float("nan")
        target, ok = TARGETS[target_key]
        errors = fg.get("errors", []) + peer.get("errors", [])
        met = ("yes" if ok(ratio) else "no") + (" (errors!)" if errors else "")
        lines.append(f"| {title} | {fmt(fg, unit)} | {peer_name} | {fmt(peer, unit)} | {ratio:.2f}x | {target} | {met} |")

    r = results
    row("cache_hit", "cache-hit 200x200 thumbnail", r["cache_hit"]["filegate"], r["cache_hit"]["peer"],
        "nginx proxy_cache", "req/s", True, "cache_hit")
    for size, label in ((1600, "1600x1200"), (4000, "4000x3000")):
        c = r[f"cold_{size}"]  # noqa: keyed by system name
        row(f"cold_{size}", f"cold thumbnails {label}", c["filegate"], c["thumbor"], "thumbor",
            "req/s", True, "cold_vs_thumbor")
        row(f"cold_{size}", f"cold thumbnails {label}", c["filegate"], c["nginx image_filter"],
            "nginx image_filter", "req/s", True, "cold_vs_image_filter")
    row("original", "original 1.6 MB download", r["original"]["filegate"], r["original"]["peer"],
        "nginx static", "req/s", True, "original")
    row("amr", "AMR->MP3 60 s (latency)", r["amr"]["filegate"], r["amr"]["peer"],
        "ffmpeg CLI, same settings", "ms", False, "amr")
    row("amr", "AMR->MP3 60 s (latency)", r["amr"]["filegate"], r["amr"]["peer_default"],
        "ffmpeg CLI, its defaults", "ms", False, "amr")
    lines.append("")
    lines.append(f"AMR->MP3 served from filegate's cache: {r['amr_cached']['median']:,.1f} ms median.")
    for name, p in r["rss"].items():
        verdict = "yes" if p["peak_mib"] <= p["budget_mib"] + 100 else "no"
        lines.append(f"peak RSS of {name}: {p['peak_mib']:,.0f} MiB against a cache budget of"
                     f" {p['budget_mib']} MiB (target: budget + 100 MiB; met: {verdict})")
    text = "\n".join(lines)
    print()
    print(text)
    with open(os.path.join(work, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nbench: results in {work}")
    failed = sorted({f"{row}: {e}" for row, errs in row_errors(results) for e in errs})
    if failed:
        # A row whose requests failed measured nothing: the run fails, in smoke too.
        raise RuntimeError("requests failed, so these rows are not figures:\n  " + "\n  ".join(failed))


def row_errors(results):
    """(row, errors) of every figure whose wrk run saw non-2xx answers or socket errors."""
    for row, systems in results.items():
        if not isinstance(systems, dict):
            continue
        for name, figure in systems.items():
            if isinstance(figure, dict) and figure.get("errors"):
                yield f"{row} / {name}", figure["errors"]
        if systems.get("errors"):
            yield row, systems["errors"]


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        detail = getattr(e, "stderr", b"") or b""
        print(f"bench failed: {e} {detail.decode(errors='replace')[:2000]}", file=sys.stderr)
        sys.exit(1)
