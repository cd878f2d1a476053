#!/usr/bin/env python3
"""`make bench`: filegate side by side with nginx, Varnish and thumbor, on loopback only
and bounded in time. It makes the same inputs for every system, starts each system on free
ports, drives it with wrk, and prints one table: filegate's figure, the peer's, the ratio.

Two filegates run: one on an embedded store (the hit, cold, original and AMR rows) and
one in front of a real S3 server, s3s-fs (the S3 rows). Both keep their access log on
(the default: one JSON line per request on stdout, here into their log file), and so
does nginx (`access_log` to a file, `combined`, buffered 64 KiB / 100 ms as filegate's
own log is, with `open_file_cache`: the nginx an operator who cares would run) and
Varnish (malloc storage, `varnishncsa -w` writing its log to a file).

Rows:
  1. cache hit of a 200x200 thumbnail of a 1600x1200 JPEG on /file/download/chat, the
     access token in a header: filegate vs an nginx proxy_cache hit and a Varnish hit
     of the same thumbnail (nginx's own image_filter output);
  2. the same on /file/download/avatar with the token in the query (the web SDK's
     way), vs the same nginx proxy_cache and Varnish hits;
  3. cache hit of a ~100 KB JPEG original (an avatar) through the S3 filegate, token in
     a header, vs nginx proxy_cache of the same bytes (from its own /static/);
  4. origin offload of the S3 filegate: a Zipf mix (s=1.0, fixed seed) of downloads
     over 1,000 small chat files; store GETs per download after a warm-up, from its
     /metrics (driven from Python: a URL per request);
  4b. the tiers (`tiers`, tiers_row.py): a Zipf trace over files 4x the memory each
     system gets (32 MiB): hit ratios of filegate's memory tier, of it with a disk
     tier, of nginx proxy_cache and of Varnish, and what each held at most;
  5. cold thumbnails (a fresh size per request, no cache; every filegate request
     proven a miss by its transform count): the 1600x1200 and 4000x3000 photos,
     baseline (also vs nginx image_filter) and progressive, two real photographs,
     PNG, WebP and GIF sources, each vs thumbor and the decode floor; WebP and AVIF
     output; throughput and p99 against concurrency (chart); the first view of an
     eager size after an upload (thumbnail_rows.py). thumbor runs as two
     single-process instances behind an nginx round robin (its usual deployment);
  6. original download of a 1.6 MB object: filegate vs nginx static (sendfile);
  7. AMR->MP3 of a 60 s voice file: filegate's request latency vs the ffmpeg CLI;
  8. each filegate's peak RSS (VmHWM) against its cache budget;
  9-10. three nodes on a ring against one node and three without (store GETs and
     transforms over a Zipf mix; then store GETs over a trace 3x one node's memory),
     and the hit latency of a peer hop (cluster_row.py).
  11. TLS (the `tls` rows), one certificate (EC P-256, from a CA made for the run) and
     the same versions, suites and groups on both sides: the cache hit of row 1 over
     TLS on keep-alive connections (wrk, HTTP/1.1), filegate's TLS listener vs nginx
     `ssl` proxy_cache; and new TLS handshakes per second (h2load --h1, one request per
     connection: `Connection: close`, so every request is a fresh full handshake).
  12. `baseline` (not run by default; needs `--baseline BIN`): the chat hit and a cold
     thumbnail row of this build against an earlier filegate binary (baseline_row.py).

Every request must succeed, and rows look at what they get while the load runs: a
wrk run with non-2xx answers or socket errors, a hit row whose check request (before
the run, and sampled twice a second during it) is not a 200 with X-Cache-Status: HIT
and the same bytes (nginx and Varnish too), a cold row whose thumbnails sampled during
the run (a fresh box a second) are not the box's width and the source's aspect, an offload
download that is not a 200 of the right length, an h2load run whose requests did not
all succeed (or whose connections were reused, or whose TLS parameters differ between
the two systems), or an empty access log fails the run.

Each figure is the median of --runs runs with the spread (min-max), the systems of a row
interleaved run by run, each run started once the machine is quiet again (what the last
system still did for requests wrk abandoned does not land in the next one's run).
--smoke runs every row briefly (1 s a run, 1 run; the offload row on 100 objects) so
the harness cannot rot; its figures mean nothing.
"""

import argparse
import base64
import collections
import concurrent.futures
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import platform
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.client import HTTPConnection, HTTPException

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tools_dir():
    """The project's tools, outside the clone: the rule of scripts/tools-dir.sh."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("FILEGATE_TOOLS") or os.path.join(cache, "filegate", "tools")


VENV = os.path.join(tools_dir(), "venv", "bin")
SECRET = "bench-secret-0123456789abcdef"
CACHE_BUDGET_MIB = 256
# The memory every system gets in the tiers row (tiers_row.py): its working set is 4x.
TIERS_MEMORY_MIB = 32
# The S3 server's key pair and the bucket filegate uses.
S3_ACCESS_KEY = "bench-ak"
S3_SECRET_KEY = "bench-s3-secret-0123456789"
S3_BUCKET = "filegate"

# key: (target as printed, test of the figure, optional goal beyond the target).
TARGETS = {
    "cache_hit_chat": ("ratio >= 1.2", lambda r: r >= 1.2),
    "cache_hit_avatar": ("ratio >= 1.2", lambda r: r >= 1.2),
    "cache_hit_varnish": ("ratio >= 1.0", lambda r: r >= 1.0),
    "s3_original_hit": ("ratio >= 1.0", lambda r: r >= 1.0),
    "offload": ("offload >= 99%", lambda o: o >= 0.99),
    "cold_1600_vs_thumbor": ("ratio >= 1.5", lambda r: r >= 1.5),
    "cold_4000_vs_thumbor": ("ratio >= 1.2", lambda r: r >= 1.2),
    "cold_floor": ("floor within 1.3x", lambda r: r <= 1.3),
    "eager": ("ratio <= 2.0", lambda r: r <= 2.0),
    "cold_vs_image_filter": ("ratio >= 2.0", lambda r: r >= 2.0),
    "original": ("ratio >= 0.9", lambda r: r >= 0.9),
    "amr": ("ratio <= 0.33", lambda r: r <= 0.33),
    "rss": ("peak <= budget + 100 MiB", lambda p: p["peak_mib"] <= p["budget_mib"] + 100),
    "tls_hit": ("ratio >= 1.0", lambda r: r >= 1.0),
    "limits_hit": ("ratio >= 0.97", lambda r: r >= 0.97),
    "info_cold": ("(no target)", lambda r: True),
    "info_hit": ("(no target)", lambda r: True),
    "tls_handshakes": ("ratio >= 0.8", lambda r: r >= 0.8),
    "baseline": ("within noise (0.9-1.1)", lambda r: 0.9 <= r <= 1.1),
    "heif_vs_thumbor": ("ratio >= 1.5", lambda r: r >= 1.5),
    "tiers_hit_ratio": ("filegate >= peer", lambda d: d >= 0),
}

# Trusts the run's test CA for the checks of the TLS rows (set once the CA exists).
TLS_CONTEXT = None


# --- processes and ports ---------------------------------------------------------

def free_port():
    return free_ports(1)[0]


def free_ports(n):
    """`n` distinct free loopback ports: all bound at once, then released, so no two
    are the same (one at a time, the OS may hand out a port just closed again: seen as
    a cluster node's public port answering as another's admin port)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


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
        ("avatar100k.jpg", lambda p: photo(p, 960, 720)),
        ("blob.bin", lambda p: open(p, "wb").write(os.urandom(1_600_000))),
        ("voice60.amr", lambda p: voice(p, 60)),
        ("clip720.mp4", lambda p: run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                                       "testsrc=size=1280x720:rate=30", "-t", "10",
                                       "-c:v", "libx264", "-pix_fmt", "yuv420p", p])),
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


def embedded_store(data):
    return f"store:\n  kind: embedded\n  dir: {data}\n"


def s3_store(endpoint):
    return (f"store:\n  kind: s3\n  endpoint: {endpoint}\n  region: us-east-1\n"
            f"  bucket: {S3_BUCKET}\n  access_key_id: {S3_ACCESS_KEY}\n"
            f"  secret_access_key: {S3_SECRET_KEY}\n  path_style: true\n")


def filegate_config(path, port, admin, data, cache_memory, write_back, store, extra="",
                    cache_extra=""):
    # Two apps: `bench` uploads by POST form, `benchput` by presigned PUT (quick to fill
    # an S3 store with many objects).
    with open(path, "w") as f:
        f.write(f"""listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
public_url: http://127.0.0.1:{port}
threads: 2
demo_page: false
access_log: stdout
server:
  upgrade_sock: {data}/upgrade.sock
  pid_file: {data}/filegate.pid
{store}apps:
  bench:
    secrets: ["{SECRET}"]
    max_upload:
      picture: 30 MiB
      file: 30 MiB
  benchput:
    secrets: ["{SECRET}"]
    upload_method: PUT
  benchgo:
    secrets: ["{SECRET}"]
    eager:
      - {{image_type: 2, w: 200, h: 200, thumbnail_strategy: 2}}
media:
  queue: 1024
cache:
  memory: {cache_memory}
  write_back: {"true" if write_back else "false"}
{cache_extra}{extra}""")


def _context(url):
    return TLS_CONTEXT if url.startswith("https://") else None


def http(method, url, headers=None, body=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout, context=_context(url)) as resp:
        return resp.status, resp.read()


def fetch(url, headers=None, timeout=60):
    """(status, headers, body) of a GET, whatever the status."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_context(url)) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def upload(base, token, route, file_path, file_name, content_type, app="bench"):
    """Asks for a grant and posts the form the way a client does; returns data."""
    sep = "&" if "?" in route else "?"
    _, body = http("GET", f"{base}{route}{sep}app_id={app}",
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
    """One filegate under test, its access log on (the default), stdout and stderr in
    its log file. `store` is its `store:` section (default: embedded in its dir); `ports`
    its (public, admin) ports (default: free ones); `extra` more config (a `cluster:`).
    `wait=False` returns before it listens (the nodes of a cluster start together);
    `cache_extra` more keys of its `cache:` section (each line indented two spaces)."""

    def __init__(self, started, binary, work, name, cache_memory, write_back, store=None,
                 ports=None, extra="", wait=True, tls=None, cache_extra=""):
        self.name = name
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.admin_port = ports or tuple(free_ports(2))
        config = os.path.join(self.dir, "filegate.yaml")
        data = os.path.join(self.dir, "data")
        # `tls`: (cert, key) for a TLS listener beside the plain one.
        self.tls_port = free_port() if tls else None
        tls_section = (f"tls:\n  listen: 127.0.0.1:{self.tls_port}\n  cert: {tls[0]}\n"
                       f"  key: {tls[1]}\n") if tls else ""
        filegate_config(config, self.port, self.admin_port, data, cache_memory, write_back,
                        store or embedded_store(data), tls_section + extra, cache_extra)
        # Logging at its default level, whatever the caller's shell says: RUST_LOG=warn
        # would turn the access log off.
        env = dict(os.environ, RUST_LOG="info")
        self.log = os.path.join(self.dir, "filegate.log")
        self.proc = started.start([binary, "serve", "-c", config], self.log, env=env)
        if wait:
            wait_port(self.port, proc=self.proc)
        self.base = f"http://127.0.0.1:{self.port}"
        self.tls_base = None
        if self.tls_port:
            wait_port(self.tls_port, proc=self.proc)
            self.tls_base = f"https://127.0.0.1:{self.tls_port}"
        self.token = mint("bench", 1, "user")
        self.quoted_token = urllib.parse.quote(self.token)
        # The token sent the native SDKs' way, in a header.
        self.headers = {"access-token": self.token}

    def _credential(self, token_in_query):
        return f"&access-token={self.quoted_token}" if token_in_query else ""

    def avatar_url(self, object_name, query="", token_in_query=True):
        return (f"{self.base}/file/download/avatar?app_id=bench{self._credential(token_in_query)}"
                f"&object_name={urllib.parse.quote(object_name, safe='')}{query}")

    def chat_url(self, file_sign, query="", token_in_query=True):
        return (f"{self.base}/file/download/chat?app_id=bench{self._credential(token_in_query)}"
                f"&file_sign={file_sign}{query}")

    def metric_sum(self, prefix):
        """The sum of the /metrics series whose line starts with `prefix`; a series that
        is not there is an error, never a 0."""
        _, body = http("GET", f"http://127.0.0.1:{self.admin_port}/metrics")
        values = [float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
                  if line.startswith(prefix)]
        if not values:
            raise RuntimeError(f"{self.name}: no metric series {prefix}... in /metrics")
        return sum(values)

    def store_gets(self):
        """Store GETs so far, any result, from the admin listener's /metrics."""
        return self.metric_sum('filegate_store_operations_total{op="get"')

    def tls_connections(self):
        """TLS handshakes its TLS listener completed so far."""
        return self.metric_sum("filegate_tls_connections_total{")


def start_s3s(started, work):
    """s3s-fs (the S3 server the e2e tests use) on a free port, with an empty bucket;
    returns its endpoint."""
    binary = os.environ.get("FILEGATE_S3S_FS") or os.path.join(tools_dir(), "bin", "s3s-fs")
    if not os.path.exists(binary):
        raise RuntimeError(f"{binary} is missing: run scripts/setup.sh test")
    root = os.path.join(work, "s3")
    os.makedirs(os.path.join(root, S3_BUCKET), exist_ok=True)
    port = free_port()
    proc = started.start([binary, "--host", "127.0.0.1", "--port", str(port),
                          "--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY, root],
                         os.path.join(work, "s3s-fs.log"))
    wait_port(port, proc=proc)
    return f"http://127.0.0.1:{port}"


# --- peers -------------------------------------------------------------------------

NGINX_CONF = """
load_module /usr/lib/nginx/modules/ngx_http_image_filter_module.so;
user root;
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    # Logged like filegate: every request, buffered 64 KiB / 100 ms (filegate's access
    # log is written by a 64 KiB buffer every 100 ms too); open files cached.
    access_log {work}/nginx-access.log combined buffer=64k flush=100ms;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    proxy_cache_path {work}/nginx-cache levels=1:2 keys_zone=thumbs:10m max_size=1g
                     inactive=1h use_temp_path=off;
    # The tiers row's cache: max_size the memory every system gets there (its cache
    # manager evicts the least recently used files above it).
    proxy_cache_path {work}/nginx-zipf-cache levels=1:2 keys_zone=zipf:10m
                     max_size={zipf_bytes} inactive=1h use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        # The TLS rows: the certificate filegate's TLS listener has, and what rustls
        # offers there (TLS 1.3 and 1.2, its suites and key exchanges); no resumption
        # for either in those rows (h2load and wrk never resume).
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {tls_cert};
        ssl_certificate_key {tls_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
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
            add_header X-Cache-Status $upstream_cache_status;
        }}
        # The same bytes as /static/, from nginx's cache. tcp_nopush off here: with it on,
        # nginx 1.22's cache hits of a ~100 KB body stall on loopback (measured here:
        # 0.6-1.9k req/s, against ~20-26k with it off), and the peer gets its best setting.
        location /zipf/ {{
            proxy_pass http://127.0.0.1:{port}/static/zipf/;
            proxy_cache zipf;
            proxy_cache_valid 200 1h;
            proxy_http_version 1.1;
            tcp_nopush off;
            add_header X-Cache-Status $upstream_cache_status;
        }}
        location /cached-static/ {{
            proxy_pass http://127.0.0.1:{port}/static/;
            proxy_cache thumbs;
            proxy_cache_valid 200 1h;
            proxy_http_version 1.1;
            tcp_nopush off;
            add_header X-Cache-Status $upstream_cache_status;
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
# Baseline JPEGs, as filegate writes (thumbor's default is progressive, which costs more).
PROGRESSIVE_JPEG = False
ALLOW_UNSAFE_URL = True
"""


def start_nginx(started, work, fixtures, tls):
    """nginx with its plain and TLS (`tls` = (cert, key)) listeners; returns both bases."""
    port, tls_port = free_ports(2)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(work=work, port=port, fixtures=fixtures, tls_port=tls_port,
                                  tls_cert=tls[0], tls_key=tls[1],
                                  zipf_bytes=f"{TIERS_MEMORY_MIB}m"))
    proc = started.start(["nginx", "-c", conf, "-p", work, "-g", "daemon off;"],
                         os.path.join(work, "nginx.log"))
    wait_port(port, proc=proc)
    wait_port(tls_port, proc=proc)
    return f"http://127.0.0.1:{port}", f"https://127.0.0.1:{tls_port}"


VARNISH_VCL = """vcl 4.1;
# Varnish in front of the bench's nginx (its image_filter thumbnails and static files):
# every GET cached for an hour, in malloc storage of the size varnishd is given.
backend origin {{ .host = "127.0.0.1"; .port = "{origin_port}"; }}
sub vcl_backend_response {{ set beresp.ttl = 1h; set beresp.grace = 0s; }}
sub vcl_deliver {{
    if (obj.hits > 0) {{ set resp.http.X-Cache-Status = "HIT"; }}
    else {{ set resp.http.X-Cache-Status = "MISS"; }}
}}
"""


class Varnish:
    """varnishd (Debian's, malloc storage of `memory`, its default two thread pools) in
    front of `origin` (an nginx base), with varnishncsa writing its access log to a file:
    Varnish itself logs only into shared memory, and varnishncsa is how its operators get
    a log, so it runs (and takes its CPU) as nginx's and filegate's logs do."""

    def __init__(self, started, work, name, origin, memory):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        origin_port = urllib.parse.urlsplit(origin).port
        vcl = os.path.join(self.dir, "bench.vcl")
        with open(vcl, "w") as f:
            f.write(VARNISH_VCL.format(origin_port=origin_port))
        self.port = free_port()
        # varnishd's own files (-n): its child drops to the `varnish` user, which must
        # read them.
        state = os.path.join(self.dir, "state")
        os.makedirs(state, exist_ok=True)
        proc = started.start(["varnishd", "-F", "-a", f"127.0.0.1:{self.port}", "-T", "none",
                              "-f", vcl, "-s", f"malloc,{memory}", "-n", state],
                             os.path.join(self.dir, "varnishd.log"))
        wait_port(self.port, proc=proc)
        self.log = os.path.join(self.dir, "access.log")
        started.start(["varnishncsa", "-n", state, "-w", self.log],
                      os.path.join(self.dir, "varnishncsa.log"))
        self.base = f"http://127.0.0.1:{self.port}"
        self.state = state

    def stat(self, field):
        """One counter of varnishstat (e.g. MAIN.cache_hit)."""
        out = run(["varnishstat", "-n", self.state, "-1", "-f", field]).stdout.decode()
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == field:
                return int(parts[1])
        raise RuntimeError(f"varnishstat has no {field}")


def make_tls_certificate(work):
    """A CA and a server certificate for 127.0.0.1 (EC P-256, CA:FALSE, serverAuth) made
    for this run with the openssl CLI; returns (ca, cert, key) paths."""
    d = os.path.join(work, "tls")
    os.makedirs(d, exist_ok=True)
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    csr, ext = os.path.join(d, "cert.csr"), os.path.join(d, "cert.ext")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=filegate bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"])
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", "1",
         "-out", cert, "-days", "2", "-extfile", ext])
    return ca, cert, key


def nginx_access_log(work):
    return os.path.join(work, "nginx-access.log")


THUMBOR_BALANCER_CONF = """
worker_processes 2;
pid {work}/thumbor-lb.pid;
error_log {work}/thumbor-lb-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    upstream thumbor {{
        server 127.0.0.1:{first};
        server 127.0.0.1:{second};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://thumbor;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def start_thumbor(started, work, fixtures):
    """Two single-process thumbors behind an nginx round robin, as thumbor is deployed.
    One thumbor with `--processes 2` shares one listening socket between its two
    processes, and which process accepts wrk's 16 keep-alive connections is luck: runs
    came out at ~260 or ~520 requests/s on the same code (one process or both busy)."""
    conf = os.path.join(work, "thumbor.conf")
    with open(conf, "w") as f:
        f.write(THUMBOR_CONF.format(fixtures=fixtures))
    ports = []
    for i in range(2):
        port = free_port()
        proc = started.start([os.path.join(VENV, "thumbor"), "-i", "127.0.0.1", "-p", str(port),
                              "-c", conf, "-l", "error", "--processes", "1"],
                             os.path.join(work, f"thumbor-{i}.log"))
        wait_port(port, timeout=60, proc=proc)
        ports.append(port)
    port = free_port()
    lb_conf = os.path.join(work, "thumbor-lb.conf")
    with open(lb_conf, "w") as f:
        f.write(THUMBOR_BALANCER_CONF.format(work=work, port=port, first=ports[0],
                                             second=ports[1]))
    proc = started.start(["nginx", "-c", lb_conf, "-p", work, "-g", "daemon off;"],
                         os.path.join(work, "thumbor-lb.log"))
    wait_port(port, proc=proc)
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


def wrk(url, seconds, conns, threads=2, sizes=None, headers=None):
    """Requests per second, and a dict of p50/p99 latency ("50%", "99%") and the requests
    completed ("requests"), from one wrk run."""
    args = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency",
            "--timeout", "30s"]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
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
    # "  12345 requests in 10.00s, 1.2MB read"
    done = int(next(l for l in out.splitlines() if " requests in " in l).split()[0])
    bad = [l for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l]
    latency = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            latency[parts[0]] = parts[1]
    latency["requests"] = done
    return rps, latency, bad


def keepalive_get(local, port, path, headers, timeout=60):
    """GET `path` on 127.0.0.1:`port` over this thread's keep-alive connection to that
    port (kept in `local`, a threading.local): (response, body), or (None, problem)
    when the connection failed (it is dropped, the next call opens another)."""
    conns = getattr(local, "conns", None)
    if conns is None:
        conns = local.conns = {}
    conn = conns.get(port)
    if conn is None:
        conn = conns[port] = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp, resp.read()
    except (OSError, HTTPException) as e:
        conn.close()
        conns.pop(port, None)
        return None, f"download: {type(e).__name__}: {e}"


def sized_get(local, port, path, headers, size, timeout=60):
    """A keep-alive GET (keepalive_get) that must answer 200 with `size` bytes: (problem or
    None, X-Cache-Status or None)."""
    resp, body = keepalive_get(local, port, path, headers, timeout=timeout)
    if resp is None:
        return body, None
    cache = resp.getheader("X-Cache-Status")
    if resp.status != 200:
        return f"download: HTTP {resp.status} {body[:200]!r}", cache
    if len(body) != size:
        return f"download: {len(body)} bytes, want {size}", cache
    return None, cache


def summarize(label, values, notes):
    med = statistics.median(values)
    print(f"  {label}: median {med:,.1f} (runs {', '.join(f'{v:,.1f}' for v in values)})"
          + (f"  !! {'; '.join(sorted(set(notes)))}" if notes else ""), flush=True)
    return {"median": med, "min": min(values), "max": max(values), "runs": values,
            "errors": sorted(set(notes))}


def cpu_times():
    """(idle, total) jiffies of all the machine's CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    # user nice system idle iowait irq softirq steal
    return fields[3] + fields[4], sum(fields)


def settle(limit=60.0, quiet=0.9, window=0.25):
    """Waits until the machine is quiet (at least `quiet` of its CPU time idle over a
    `window`), at most `limit` seconds, and returns the seconds waited: what a system
    still does after its run (thumbor finishes every request wrk abandoned: 16 HEIC
    thumbnails are ~8 s of CPU) must not land in the next system's run."""
    started = time.perf_counter()
    before = cpu_times()
    while True:
        time.sleep(window)
        now = cpu_times()
        total = now[1] - before[1]
        if total > 0 and (now[0] - before[0]) / total >= quiet:
            return time.perf_counter() - started
        waited = time.perf_counter() - started
        if waited >= limit:
            print(f"  (the machine was still busy after {waited:.0f} s; the run starts anyway)",
                  flush=True)
            return waited
        before = now


def interleaved(runs, systems, quiet=True):
    """Runs each system once per round, rounds `runs` times: drift of a shared
    machine then touches every system alike. With `quiet`, each run starts on a quiet
    machine ([`settle`]); rows of one request at a time, each awaited, leave nothing
    behind and pass `quiet=False` (a pause before a lone request would add the idle
    CPUs' wake-up to its latency: ~4 ms on this VM). `systems` maps a label to a
    function of the round number returning (value, notes)."""
    values = {name: [] for name in systems}
    notes = {name: [] for name in systems}
    for r in range(runs):
        for name, fn in systems.items():
            waited = settle() if quiet else 0.0
            if waited >= 1.0:
                print(f"  ({name}, run {r + 1}: waited {waited:.1f} s for the machine to go"
                      " quiet)", flush=True)
            value, note = fn(r)
            values[name].append(value)
            notes[name].extend(note or [])
    return {name: summarize(name, values[name], notes[name]) for name in systems}


class Sampler:
    """Runs `sample()` (returning a list of problems) every `period` seconds on a thread
    of its own while the load runs, and at least once, so a row checks what it gets
    during the run, not only before it: `with Sampler(fn): wrk(...)`, then `.problems`
    and `.count`."""

    def __init__(self, sample, period=0.5):
        self.sample, self.period = sample, period
        self.problems, self.count = [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _once(self):
        try:
            self.problems.extend(self.sample())
        except (OSError, HTTPException, ValueError) as e:
            self.problems.append(f"sample: {type(e).__name__}: {e}")
        self.count += 1

    def _run(self):
        while not self._stop.wait(self.period):
            self._once()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        # A run shorter than the period (a smoke's second) is sampled once at its end.
        if self.count == 0:
            self._once()


def throughput(url, seconds, conns, sizes=None, headers=None, check=None):
    """A round's requests/s; `sizes(round)` gives the wrk size-script arguments;
    `check()` returns what is wrong with one response (then an error): run before each
    wrk run and, sampled, twice a second during it."""
    def once(r):
        problems = check() if check else []
        with Sampler(check) if check else contextlib.nullcontext() as sampler:
            rps, _latency, bad = wrk(url, seconds, conns, sizes=sizes(r) if sizes else None,
                                     headers=headers)
        return rps, problems + (sampler.problems if check else []) + bad
    return once


def hit_check(url, headers=None, body=None):
    """A check for throughput(): one request must answer 200, X-Cache-Status: HIT and
    a whole body: `body` byte for byte when given, else the bytes of the first answer
    (every later sample the same)."""
    first = []

    def check():
        status, got_headers, got = fetch(url, headers)
        cache = got_headers.get("X-Cache-Status")
        length = got_headers.get("Content-Length")
        if status != 200:
            return [f"check request: HTTP {status} {got[:200]!r}"]
        if cache != "HIT":
            return [f"check request: X-Cache-Status {cache}, not HIT"]
        want = body if body is not None else (first[0] if first else None)
        if not got or length != str(len(got)) or (want is not None and got != want):
            return [f"check request: body of {len(got)} bytes (Content-Length {length}),"
                    f" want {len(want) if want is not None else 'a whole body'}"
                    + (" (not the bytes of the first answer)" if body is None and first else "")]
        if not first:
            first.append(got)
        return []
    return check


def image_size(data):
    """(width, height) of a JPEG (its first SOFn), PNG (IHDR), GIF (its screen) or WebP
    (VP8, VP8L or VP8X header), else None (AVIF: not read here)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            return (int.from_bytes(data[26:28], "little") & 0x3FFF,
                    int.from_bytes(data[28:30], "little") & 0x3FFF)
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return (int.from_bytes(data[24:27], "little") + 1,
                    int.from_bytes(data[27:30], "little") + 1)
        return None
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return (int.from_bytes(data[i + 7:i + 9], "big"),
                    int.from_bytes(data[i + 5:i + 7], "big"))
        i += 2 + length
    return None


def warm(urls_headers, times=2):
    for url, headers in urls_headers:
        for _ in range(times):
            fetch(url, headers)


def latency_of(fn):
    def once(_r):
        started = time.perf_counter()
        fn()
        return (time.perf_counter() - started) * 1000.0, []
    return once


# --- rows ----------------------------------------------------------------------------

class Bench:
    """What the rows share: the options, the systems under test, the results."""

    def __init__(self, args, work, fixtures, fg, fg_s3, s3, nginx, thumbor, nginx_tls=None,
                 varnish=None):
        self.args, self.work, self.fixtures = args, work, fixtures
        self.fg, self.fg_s3, self.s3, self.nginx, self.thumbor = fg, fg_s3, s3, nginx, thumbor
        self.nginx_tls, self.varnish = nginx_tls, varnish
        self.seconds, self.runs, self.conns = args.seconds, args.runs, args.connections
        self.results = {}
        self.photos = {}  # size -> object_name of the photo uploaded as an avatar
        # filegate's in-process cost of a thumbnail (examples/thumbnail_cost.rs), built
        # beside the binary under test.
        self.thumbnail_cost = os.path.join(os.path.dirname(args.binary), "examples",
                                           "thumbnail_cost")
        # The decode alone, with the decoder filegate uses (examples/decode_floor.rs).
        self.decode_floor = os.path.join(os.path.dirname(args.binary), "examples",
                                         "decode_floor")

    def fixture(self, name):
        return os.path.join(self.fixtures, name)


THUMB_200 = "&image_type=2&w=200&h=200&thumbnail_strategy=2"


def hit_rows(b):
    """Rows 1-2: a cached 200x200 thumbnail of the 1600x1200 photo on
    /file/download/chat (token in a header) and on /file/download/avatar (token in
    the query), vs one nginx proxy_cache hit of the same thumbnail; the three
    interleaved run by run."""
    fg = b.fg
    sign = upload(fg.base, fg.token, "/file/upload/chat?file_type=102&to_id=1",
                  b.fixture("photo1600.jpg"), "photo1600.jpg", "image/jpeg")["file_sign"]
    systems = {
        "filegate chat, token in headers": (fg.chat_url(sign, THUMB_200, token_in_query=False),
                                            fg.headers),
        "filegate avatar, token in query": (fg.avatar_url(b.photos[1600], THUMB_200), {}),
        "nginx proxy_cache": (f"{b.nginx}/cached/200x200/photo1600.jpg", {}),
        "Varnish (malloc)": (f"{b.varnish.base}/resize/200x200/photo1600.jpg", {}),
    }
    warm(systems.values())
    print("rows 1-2: cache hit of a 200x200 thumbnail (requests/s)", flush=True)
    r = interleaved(b.runs, {
        name: throughput(url, b.seconds, b.conns, headers=headers,
                         check=hit_check(url, headers))
        for name, (url, headers) in systems.items()
    })
    for key, name in (("chat", "filegate chat, token in headers"),
                      ("avatar", "filegate avatar, token in query")):
        b.results[f"cache_hit_{key}"] = {"filegate": r[name], "peer": r["nginx proxy_cache"],
                                         "varnish": r["Varnish (malloc)"]}


def limits_row(b):
    """The chat-route cache hit (row 1) with generous rate limits on (per address and
    per user: every request counted, none refused) vs the same filegate with them off
    (the default); the two interleaved run by run."""
    on = Filegate(b.started, b.args.binary, b.work, "filegate-limits", f"{CACHE_BUDGET_MIB} MiB",
                  True, extra="limits:\n  rate:\n    per_ip: 100000000/s\n"
                              "    per_user: 100000000/s\n")
    systems = {}
    for name, fg in (("limits off", b.fg), ("limits on", on)):
        sign = upload(fg.base, fg.token, "/file/upload/chat?file_type=102&to_id=1",
                      b.fixture("photo1600.jpg"), "photo1600.jpg", "image/jpeg")["file_sign"]
        systems[name] = (fg.chat_url(sign, THUMB_200, token_in_query=False), fg.headers)
    warm(systems.values())
    print("row: cache hit of a 200x200 thumbnail, rate limits on vs off (requests/s)", flush=True)
    r = interleaved(b.runs, {
        name: throughput(url, b.seconds, b.conns, headers=headers,
                         check=hit_check(url, headers))
        for name, (url, headers) in systems.items()
    })
    refused = on.metric_sum("filegate_rate_limited_total{")
    if refused:
        r["limits on"].setdefault("errors", []).append(f"{refused:.0f} requests refused (429)")
    b.results["limits_hit"] = {"filegate": r["limits on"], "peer": r["limits off"]}


def info_rows(b):
    """`info=1` (SPEC §11): cold, per kind (each sample a fresh upload, so nothing is
    cached: the header read, and for pictures and videos the ThumbHash's small decode)
    against the tool a client-side service would run as a process (vipsheader for the
    photo, ffprobe for the video and the voice); and the hit rate of an info beside the
    thumbnail hit of row 1."""
    fg = b.fg
    kinds = [
        ("photo 1600x1200 JPEG", "photo1600.jpg", 102, "image/jpeg",
         ["vipsheader", "-a"]),
        ("video 10 s 720p MP4", "clip720.mp4", 103, "video/mp4",
         ["ffprobe", "-v", "error", "-show_streams", "-show_format"]),
        ("voice 60 s AMR", "voice60.amr", 101, "audio/amr",
         ["ffprobe", "-v", "error", "-show_streams", "-show_format"]),
    ]
    samples = 3 if b.args.smoke else 7
    b.results["info_cold"] = []
    print("rows: info=1, cold (ms) vs the header tool as a process", flush=True)
    for label, name, file_type, ctype, tool in kinds:
        path = b.fixture(name)
        urls = []
        for _ in range(samples):
            sign = upload(fg.base, fg.token, f"/file/upload/chat?file_type={file_type}&to_id=1",
                          path, name, ctype)["file_sign"]
            urls.append(fg.chat_url(sign, "&info=1", token_in_query=False))
        errors = []

        def cold(r, urls=urls, errors=errors):
            started = time.perf_counter()
            status, headers, body = fetch(urls[r], fg.headers)
            ms = (time.perf_counter() - started) * 1000.0
            data = json.loads(body).get("data") or {} if status == 200 else {}
            if status != 200 or headers.get("X-Cache-Status") != "MISS" or not data.get("mime"):
                errors.append(f"info answered {status} {headers.get('X-Cache-Status')} {body[:80]!r}")
            return ms, []

        r = interleaved(samples, {
            "filegate info=1": cold,
            " ".join(tool[:1]): latency_of(lambda tool=tool, path=path: run(tool + [path])),
        }, quiet=False)
        r["filegate info=1"]["errors"] = sorted(set(errors))
        b.results["info_cold"].append({"kind": label, "filegate": r["filegate info=1"],
                                       "peer": r[" ".join(tool[:1])], "tool": tool[0]})
    sign = upload(fg.base, fg.token, "/file/upload/chat?file_type=102&to_id=1",
                  b.fixture("photo1600.jpg"), "photo1600.jpg", "image/jpeg")["file_sign"]
    systems = {
        "info=1 hit": (fg.chat_url(sign, "&info=1", token_in_query=False), fg.headers),
        "thumbnail hit": (fg.chat_url(sign, THUMB_200, token_in_query=False), fg.headers),
    }
    warm(systems.values())
    print("row: cache hit of info=1 vs of a 200x200 thumbnail (requests/s)", flush=True)
    r = interleaved(b.runs, {
        name: throughput(url, b.seconds, b.conns, headers=headers,
                         check=hit_check(url, headers))
        for name, (url, headers) in systems.items()
    })
    b.results["info_hit"] = {"filegate": r["info=1 hit"], "peer": r["thumbnail hit"]}


def s3_original_row(b):
    """Row 3: a ~100 KB JPEG original, uploaded as an avatar through the S3 filegate's
    POST grant (the form in the S3 dialect, posted to s3s-fs), served from its cache
    (token in a header), vs nginx proxy_cache of the same file from its own /static/."""
    fg = b.fg_s3
    path = b.fixture("avatar100k.jpg")
    with open(path, "rb") as f:
        want = f.read()
    grant = upload(fg.base, fg.token, "/file/upload/avatar/user", path, "avatar100k.jpg",
                   "image/jpeg")
    if not grant["upload_url"].startswith(b.s3):
        raise RuntimeError(f"the S3 filegate's grant uploads to {grant['upload_url']}, not {b.s3}")
    systems = {
        "filegate (S3 store)": (fg.avatar_url(grant["object_name"], token_in_query=False),
                                fg.headers),
        "nginx proxy_cache": (f"{b.nginx}/cached-static/avatar100k.jpg", {}),
    }
    warm(systems.values())
    print(f"row 3: cache hit of a {len(want) // 1000} KB original from S3 (requests/s)", flush=True)
    r = interleaved(b.runs, {
        name: throughput(url, b.seconds, b.conns, headers=headers,
                         check=hit_check(url, headers, body=want))
        for name, (url, headers) in systems.items()
    })
    b.results["s3_original_hit"] = {"filegate": r["filegate (S3 store)"],
                                    "peer": r["nginx proxy_cache"], "bytes": len(want)}


def put_uploads(fg, count, rng, body=None, file_type=100, bodies=None):
    """`count` chat files (of `file_type`) of `body`, or else of 2-20 KB of random bytes
    (or the files `bodies` names, one each, when given), each through a presigned PUT grant
    of the `benchput` app (its headers sent as given, If-None-Match: * included); returns
    [(download path, size)] with the token left to a header."""
    token = mint("benchput", 1, "user")
    api = HTTPConnection("127.0.0.1", fg.port, timeout=30)
    stores = {}
    objects = []
    try:
        for i in range(count):
            if bodies is not None:
                with open(bodies[i], "rb") as f:
                    content = f.read()
            else:
                content = body if body is not None else rng.randbytes(rng.randint(2_000, 20_000))
            api.request("GET", f"/file/upload/chat?app_id=benchput&file_type={file_type}"
                               f"&to_id=1&size={len(content)}", headers={"access-token": token})
            resp = api.getresponse()
            answer = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"PUT grant answered {resp.status}: {answer[:300]!r}")
            grant = json.loads(answer)["data"]
            url = urllib.parse.urlsplit(grant["upload_url"])
            store = stores.get(url.netloc)
            if store is None:
                store = stores[url.netloc] = HTTPConnection(url.netloc, timeout=30)
            store.request("PUT", f"{url.path}?{url.query}", body=content,
                          headers=grant["oss_body_param"])
            resp = store.getresponse()
            answer = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"presigned PUT answered {resp.status}: {answer[:300]!r}")
            objects.append((f"/file/download/chat?app_id=benchput&file_sign={grant['file_sign']}",
                            len(content)))
    finally:
        api.close()
        for store in stores.values():
            store.close()
    return objects, {"access-token": token}


def offload_row(b):
    """Row 4: origin offload of the S3 filegate once warm. Small chat files uploaded by
    PUT; a warm-up that asks for every object once and then a Zipf mix; then a Zipf mix
    (s=1.0 over the objects, fixed seed) of downloads from 8 threads on keep-alive
    connections, with store GETs (its /metrics before and after) per download over the
    measured downloads; offload = 1 - GETs / downloads. Also the best any cache could
    do on the same sequence: only objects never asked for before must be fetched."""
    fg = b.fg_s3
    count, warmup, measured = (100, 200, 300) if b.args.smoke else (1000, 2000, 5000)
    rng = random.Random(9)
    started = time.perf_counter()
    objects, headers = put_uploads(fg, count, rng)
    print(f"row 4: origin offload, Zipf s=1.0 over {count} objects ({count} PUT uploads in"
          f" {time.perf_counter() - started:.1f} s); {warmup} downloads of warm-up,"
          f" {measured} measured", flush=True)
    weights = list(itertools.accumulate(1.0 / rank for rank in range(1, count + 1)))
    # Warm means the cache has seen every object once (in a shuffled order), then a
    # Zipf warm-up; the measured part is the Zipf mix alone.
    every_once = list(range(count))
    rng.shuffle(every_once)
    sequence = every_once + rng.choices(range(count), cum_weights=weights, k=warmup + measured)
    warmup += count
    local = threading.local()

    def download(i):
        """(problem or None, X-Cache-Status) of one download of object i."""
        path, size = objects[i]
        return sized_get(local, fg.port, path, headers, size, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        first = list(pool.map(download, sequence[:warmup]))
        gets_before = fg.store_gets()
        started = time.perf_counter()
        answers = list(pool.map(download, sequence[warmup:]))
        elapsed = time.perf_counter() - started
        gets = fg.store_gets() - gets_before
    errors = sorted({p for p, _ in first + answers if p})
    # Objects first asked for in the measured part: a GET each, whatever the cache.
    new = len(set(sequence[warmup:]) - set(sequence[:warmup]))
    figure = {
        "objects": count, "warmup": warmup, "downloads": measured,
        "store_gets": gets, "offload": 1.0 - gets / measured,
        "gets_per_1000": gets * 1000.0 / measured,
        "first_requests": new, "best_offload": 1.0 - new / measured,
        "repeat_offload": 1.0 - max(gets - new, 0) / (measured - new),
        "downloads_per_s": measured / elapsed,
        "cache_status": dict(collections.Counter(c for _, c in answers)),
        "errors": errors,
    }
    print(f"  filegate (S3 store): offload {figure['offload']:.2%} ({gets:.0f} store GETs for"
          f" {measured} downloads; best possible {figure['best_offload']:.2%}: {new} objects"
          f" first asked for in the measured part; of repeat requests"
          f" {figure['repeat_offload']:.2%}), {figure['downloads_per_s']:,.0f} downloads/s,"
          f" X-Cache-Status {figure['cache_status']}"
          + (f"  !! {'; '.join(errors)}" if errors else ""), flush=True)
    b.results["offload"] = {"filegate": figure}


def original_row(b):
    """Row 6: a 1.6 MB original from the embedded store vs nginx static (sendfile)."""
    fg = b.fg
    sign = upload(fg.base, fg.token, "/file/upload/chat?file_type=100&to_id=1",
                  b.fixture("blob.bin"), "blob.bin", "application/octet-stream")["file_sign"]
    print("row 6: original download of 1.6 MB (requests/s)", flush=True)
    r = interleaved(b.runs, {
        "filegate": throughput(fg.chat_url(sign), b.seconds, b.conns),
        "nginx static": throughput(f"{b.nginx}/static/blob.bin", b.seconds, b.conns),
    })
    b.results["original"] = {"filegate": r["filegate"], "peer": r["nginx static"]}


def amr_rows(b):
    """Row 7: AMR -> MP3 of 60 s: a cold request to a fresh copy each time vs the CLI at
    its default settings and at filegate's (LAME quality 7); then the cached answer."""
    fg = b.fg
    amr_runs = 3 if b.args.smoke else 15
    amr = b.fixture("voice60.amr")
    signs = [upload(fg.base, fg.token, "/file/upload/chat?file_type=101&to_id=1", amr,
                    "voice.amr", "audio/amr")["file_sign"] for _ in range(amr_runs)]
    pending = list(signs)

    def filegate_mp3():
        status, body = http("GET", fg.chat_url(pending.pop(), "&format=mp3"))
        if status != 200 or len(body) < 1000:
            raise RuntimeError("mp3 request failed")

    out_mp3 = os.path.join(b.work, "cli.mp3")

    def cli_mp3(extra):
        def go():
            run(["ffmpeg", "-v", "error", "-y", "-i", amr, "-ar", "16000", "-ac", "1",
                 "-c:a", "libmp3lame", "-b:a", "32k", *extra, out_mp3])
        return go

    print("row 7: AMR->MP3 of 60 s (ms, one at a time)", flush=True)
    r = interleaved(amr_runs, {
        "filegate (cold)": latency_of(filegate_mp3),
        "ffmpeg CLI, same settings": latency_of(cli_mp3(["-compression_level", "7"])),
        "ffmpeg CLI, its defaults": latency_of(cli_mp3([])),
    }, quiet=False)
    b.results["amr"] = {"filegate": r["filegate (cold)"], "peer": r["ffmpeg CLI, same settings"],
                        "peer_default": r["ffmpeg CLI, its defaults"]}
    hit_mp3 = fg.chat_url(signs[0], "&format=mp3")
    b.results["amr_cached"] = interleaved(amr_runs, {
        "filegate (cached)": latency_of(lambda: http("GET", hit_mp3))},
        quiet=False)["filegate (cached)"]


def rss_rows(b):
    """Row 8: peak RSS (VmHWM) of each filegate against its memory budget."""
    b.results["rss"] = {}
    for label, fg in (("filegate (hit rows, embedded)", b.fg), ("filegate (S3 store)", b.fg_s3)):
        _, hwm = rss_kib(fg.proc.pid)
        b.results["rss"][label] = {"peak_mib": hwm / 1024, "budget_mib": CACHE_BUDGET_MIB}


def h2load_handshakes(url, requests, conns, headers):
    """(requests/s, TLS parameters, problems) of one h2load run over HTTP/1.1 in which
    every request asks for `Connection: close`: h2load then opens a new connection, so
    a full TLS handshake, per request."""
    args = ["h2load", "--h1", "-n", str(requests), "-c", str(conns), "-H", "Connection: close"]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    args.append(url)
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=900).stdout
    problems, params, rps = [], {}, 0.0
    for line in out.splitlines():
        if line.startswith("finished in"):
            rps = float(line.split(",")[1].split()[0])
        for key in ("TLS Protocol", "Cipher", "Server Temp Key"):
            if line.startswith(key + ":"):
                params[key] = line.split(":", 1)[1].strip()
        if line.startswith("requests:"):
            counts = {}
            for part in line.split(":", 1)[1].split(","):
                n, label = part.split()
                counts[label] = int(n)
            if counts.get("succeeded") != counts.get("total"):
                problems.append(f"h2load: {line.strip()}")
    if not rps:
        problems.append(f"h2load printed no rate: {out[-500:]!r}")
    return rps, params, problems


def tls_rows(b):
    """Row 11: over TLS, with one certificate and the same TLS parameters on both sides
    (checked: each h2load run reports what it negotiated). (a) the cached 200x200
    thumbnail of row 1 on keep-alive connections (wrk, HTTP/1.1, token in a header),
    filegate's TLS listener vs nginx `ssl` + proxy_cache; (b) new TLS handshakes per
    second: h2load --h1 with `Connection: close`, one request (a HIT) per connection;
    filegate's own count of TLS connections must grow by one per request."""
    fg = b.fg
    sign = upload(fg.base, fg.token, "/file/upload/chat?file_type=102&to_id=1",
                  b.fixture("photo1600.jpg"), "photo1600.jpg", "image/jpeg")["file_sign"]
    url = urllib.parse.urlsplit(fg.chat_url(sign, THUMB_200, token_in_query=False))
    path = f"{url.path}?{url.query}"
    systems = {
        "filegate TLS listener": (fg.tls_base + path, fg.headers, fg.tls_connections),
        "nginx ssl proxy_cache": (f"{b.nginx_tls}/cached/200x200/photo1600.jpg", {}, None),
    }
    warm([(u, h) for u, h, _ in systems.values()])
    print("row 11a: cache hit of a 200x200 thumbnail over TLS, keep-alive (requests/s)",
          flush=True)
    r = interleaved(b.runs, {
        name: throughput(u, b.seconds, b.conns, headers=h, check=hit_check(u, h))
        for name, (u, h, _) in systems.items()
    })
    b.results["tls_hit"] = {"filegate": r["filegate TLS listener"],
                            "peer": r["nginx ssl proxy_cache"]}

    # As many handshakes as one run of --seconds takes, from a first (warm-up) run.
    first = {}
    for name, (u, h, _) in systems.items():
        rate, _, problems = h2load_handshakes(u, b.conns * 10, b.conns, h)
        first[name] = rate
        if problems:
            raise RuntimeError(f"{name}: {problems}")
    negotiated = {}

    def handshakes(name, u, h, counter):
        requests = b.conns * 10 if b.args.smoke else max(b.conns * 10,
                                                        int(first[name] * b.seconds))

        def once(_r):
            before = counter() if counter else 0
            rate, params, problems = h2load_handshakes(u, requests, b.conns, h)
            negotiated[name] = params
            if counter:
                made = counter() - before
                if made < requests:
                    problems.append(f"{requests} requests made only {made:.0f} TLS connections")
            return rate, problems
        return once

    print(f"row 11b: new TLS handshakes (h2load --h1 -c {b.conns}, one request per connection;"
          " handshakes/s)", flush=True)
    r = interleaved(b.runs, {name: handshakes(name, u, h, c)
                             for name, (u, h, c) in systems.items()})
    params = list(negotiated.values())
    if any(p != params[0] for p in params):
        for figure in r.values():
            figure["errors"].append(f"TLS parameters differ: {negotiated}")
    print(f"  negotiated: {negotiated}", flush=True)
    b.results["tls_handshakes"] = {"filegate": r["filegate TLS listener"],
                                   "peer": r["nginx ssl proxy_cache"],
                                   "negotiated": negotiated}


def access_log_lines(path, first):
    """Lines of a log that start with `first` (bytes)."""
    count, tail = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            count += (tail + chunk).count(b"\n" + first)
            tail = chunk[-1:]
    return count


# The rows that send requests to each long-lived system (its access log must then have
# lines; the embedded filegate always has the photo uploads).
LOGGED_BY = {"filegate-s3": {"s3", "offload"}, "nginx": {"hits", "s3", "cold", "original", "tls"},
             "varnish": {"hits"}}


def check_access_logs(b, wanted):
    """After the systems stopped (filegate flushes its log then): every system the rows
    sent requests to wrote its access log."""
    logs = {f.name: (f.log, b'{"time"') for f in (b.fg, b.fg_s3)}
    logs["nginx"] = (nginx_access_log(b.work), b"127.0.0.1 ")
    logs["varnish"] = (b.varnish.log, b"127.0.0.1 ")
    logs = {name: log for name, log in logs.items()
            if name not in LOGGED_BY or LOGGED_BY[name] & set(wanted)}
    b.results["access_log"] = {}
    for name, (path, first) in logs.items():
        lines = access_log_lines(path, first) if os.path.exists(path) else 0
        b.results["access_log"][name] = {
            "lines": lines, "path": path,
            "errors": [] if lines else [f"no access log lines in {path}: was it on?"]}


# --- main ----------------------------------------------------------------------------

ROWS = {
    "hits": lambda b: hit_rows(b),
    "s3": lambda b: s3_original_row(b),
    "offload": lambda b: offload_row(b),
    # Imported here: thumbnail_rows imports this module's helpers.
    "cold": lambda b: __import__("thumbnail_rows").rows(b),
    "original": lambda b: original_row(b),
    "amr": lambda b: amr_rows(b),
    "rss": lambda b: rss_rows(b),
    # Imported here: cluster_row imports this module's helpers.
    "cluster": lambda b: __import__("cluster_row").rows(b),
    "tls": lambda b: tls_rows(b),
    "limits": lambda b: limits_row(b),
    "info": lambda b: info_rows(b),
    # Imported here: heif_rows imports this module's helpers.
    "heif": lambda b: __import__("heif_rows").rows(b),
    # Imported here: tiers_row imports this module's helpers.
    "tiers": lambda b: __import__("tiers_row").rows(b),
    # Imported here: baseline_row imports this module's helpers. Needs --baseline.
    "baseline": lambda b: __import__("baseline_row").rows(b),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "filegate"))
    ap.add_argument("--seconds", type=int, default=10, help="length of one wrk run")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median, spread)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--smoke", action="store_true", help="a few seconds a row; figures mean nothing")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    ap.add_argument("--rows", default=",".join(r for r in ROWS if r != "baseline"),
                    help="rows to run, comma-separated (default all but baseline:"
                         f" {','.join(ROWS)})")
    ap.add_argument("--baseline", help="an earlier filegate binary for the baseline rows")
    args = ap.parse_args()
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in wanted if r not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; rows: {', '.join(ROWS)}")
    if args.smoke:
        args.seconds, args.runs = 1, 1

    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run-", dir=args.out)
    # varnishd started as root reads its VCL as the `varnish` user: the run's directory
    # (no secrets but the bench's demo ones) must be traversable.
    os.chmod(work, 0o755)
    fixtures = os.path.join(args.out, "fixtures")
    started = Started()
    began = time.perf_counter()
    try:
        print(f"bench: fixtures in {fixtures}", flush=True)
        make_fixtures(fixtures, work)
        budget = f"{CACHE_BUDGET_MIB} MiB"
        # One certificate for both TLS sides (the `tls` rows), made for this run.
        global TLS_CONTEXT
        ca, cert, key = make_tls_certificate(work)
        TLS_CONTEXT = ssl.create_default_context(cafile=ca)
        fg = Filegate(started, args.binary, work, "filegate", budget, True,
                      tls=(cert, key) if "tls" in wanted else None)
        s3 = start_s3s(started, work)
        fg_s3 = Filegate(started, args.binary, work, "filegate-s3", budget, True, store=s3_store(s3))
        nginx, nginx_tls = start_nginx(started, work, fixtures, (cert, key))
        thumbor = start_thumbor(started, work, fixtures)
        # Varnish gets filegate's memory budget (the hit rows hold one object).
        varnish = Varnish(started, work, "varnish", nginx, f"{CACHE_BUDGET_MIB}m")
        b = Bench(args, work, fixtures, fg, fg_s3, s3, nginx, thumbor, nginx_tls, varnish)
        if "tiers" in wanted:
            # The tiers row's Varnish: the memory every system gets there.
            b.zipf_varnish = Varnish(started, work, "varnish-tiers", nginx,
                                     f"{TIERS_MEMORY_MIB}m")
        b.started = started
        print(f"bench: wrk -t2 -c{b.conns}, {b.seconds}s a run, {b.runs} runs a figure,"
              " systems interleaved run by run; access logs on", flush=True)
        b.photos = {
            size: upload(fg.base, fg.token, "/file/upload/avatar/user",
                         b.fixture(f"photo{size}.jpg"), f"photo{size}.jpg",
                         "image/jpeg")["object_name"]
            for size in (1600, 4000)
        }
        for name in wanted:
            ROWS[name](b)
    finally:
        started.stop_all()
    check_access_logs(b, wanted)
    b.results["elapsed_s"] = time.perf_counter() - began
    report(b.results, args, work)


def cpu_model():
    """The CPU as /proc/cpuinfo names it, with its family and model numbers (a VM often
    names only the vendor's line: "AMD EPYC") and whether it runs under a hypervisor."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if not line.strip():
                    break
                fields.setdefault(k, v.strip())
    except OSError:
        return "unknown cpu"
    name = fields.get("model name", "unknown cpu")
    family, model = fields.get("cpu family"), fields.get("model")
    virtual = " under a hypervisor" if "hypervisor" in fields.get("flags", "").split() else ""
    return f"{name} (family {family}, model {model}){virtual}"


def report(results, args, work):
    lines = []
    cpu = cpu_model()
    lines.append(f"machine: {platform.node()}, {os.cpu_count()} cores, {cpu}")
    lines.append(f"command: python3 benches/load/bench.py --seconds {args.seconds} --runs {args.runs}"
                 f" --connections {args.connections} --rows {args.rows}"
                 f"{f' --baseline {args.baseline}' if args.baseline else ''}"
                 f"{' --smoke' if args.smoke else ''}")
    lines.append(f"load: wrk -t2 -c{args.connections} on the same machine; each figure the median"
                 f" of {args.runs} run(s), spread min-max; access logs on (filegate: stdout to"
                 " a file, 64 KiB / 100 ms buffer; nginx: access_log combined buffer=64k"
                 " flush=100ms, open_file_cache; Varnish: varnishncsa -w to a file)")
    lines.append("")
    lines.append("| row | filegate | peer | peer figure | ratio | target | met |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")

    def fmt(m, unit):
        return f"{m['median']:,.1f} {unit} ({m['min']:,.1f}-{m['max']:,.1f})"

    def verdict(target_key, value, errors=()):
        target, ok, *goal = TARGETS[target_key]
        met = "yes" if ok(value) else "no"
        if goal:
            met += f" (goal: {'yes' if goal[0](value) else 'no'})"
        return target, met + (" (errors!)" if errors else "")

    def row(title, fg, peer, peer_name, unit, target_key):
        ratio = fg["median"] / peer["median"] if peer["median"] else float("nan")
        target, met = verdict(target_key, ratio, fg.get("errors", []) + peer.get("errors", []))
        lines.append(f"| {title} | {fmt(fg, unit)} | {peer_name} | {fmt(peer, unit)} | {ratio:.2f}x | {target} | {met} |")

    r = results
    for key, title in (("chat", "/file/download/chat, token in headers"),
                       ("avatar", "/file/download/avatar, token in query")):
        if f"cache_hit_{key}" in r:
            hit = r[f"cache_hit_{key}"]
            row(f"cache hit 200x200 thumbnail, {title}", hit["filegate"], hit["peer"],
                "nginx proxy_cache", "req/s", f"cache_hit_{key}")
            row(f"cache hit 200x200 thumbnail, {title}", hit["filegate"], hit["varnish"],
                "Varnish malloc (varnishncsa logging)", "req/s", "cache_hit_varnish")
    for cold in r.get("info_cold", []):
        row(f"info=1 cold, {cold['kind']} (latency)", cold["filegate"], cold["peer"],
            f"{cold['tool']} as a process", "ms", "info_cold")
    if "info_hit" in r:
        row("info=1 cache hit, /file/download/chat, token in headers", r["info_hit"]["filegate"],
            r["info_hit"]["peer"], "filegate, 200x200 thumbnail hit", "req/s", "info_hit")
    if "limits_hit" in r:
        row("cache hit 200x200 thumbnail, /file/download/chat, generous rate limits on",
            r["limits_hit"]["filegate"], r["limits_hit"]["peer"], "filegate, limits off",
            "req/s", "limits_hit")
    if "s3_original_hit" in r:
        s3 = r["s3_original_hit"]
        row(f"cache hit {s3['bytes'] / 1000:.0f} KB original from S3 (s3s-fs), token in headers",
            s3["filegate"], s3["peer"], "nginx proxy_cache", "req/s", "s3_original_hit")
    if "offload" in r:
        offload_line(r, lines, verdict)
    if "tiers" in r:
        __import__("tiers_row").report_lines(r, lines, verdict)
    if any(k.startswith("cold_") for k in r) or "eager" in r:
        __import__("thumbnail_rows").report_lines(r, lines, verdict)
    if any(k.startswith("heif_") for k in r):
        __import__("heif_rows").report_lines(r, lines, verdict)
    if "original" in r:
        row("original 1.6 MB download", r["original"]["filegate"], r["original"]["peer"],
            "nginx static", "req/s", "original")
    if "amr" in r:
        row("AMR->MP3 60 s (latency)", r["amr"]["filegate"], r["amr"]["peer"],
            "ffmpeg CLI, same settings", "ms", "amr")
        row("AMR->MP3 60 s (latency)", r["amr"]["filegate"], r["amr"]["peer_default"],
            "ffmpeg CLI, its defaults", "ms", "amr")
    if "cluster_mix" in r or "cluster_hop" in r:
        __import__("cluster_row").report_lines(r, lines)
    if "baseline_hit" in r or "baseline_cold" in r:
        __import__("baseline_row").report_lines(r, row)
    if "tls_hit" in r:
        row("cache hit 200x200 thumbnail over TLS (keep-alive, HTTP/1.1), token in headers",
            r["tls_hit"]["filegate"], r["tls_hit"]["peer"], "nginx ssl + proxy_cache", "req/s",
            "tls_hit")
    if "tls_handshakes" in r:
        row("new TLS handshakes (h2load --h1, one request per connection)",
            r["tls_handshakes"]["filegate"], r["tls_handshakes"]["peer"], "nginx ssl",
            "handshakes/s", "tls_handshakes")
    for name, p in r.get("rss", {}).items():
        target, met = verdict("rss", p)
        lines.append(f"| peak RSS (VmHWM), {name} | {p['peak_mib']:,.0f} MiB | cache.memory |"
                     f" {p['budget_mib']} MiB | - | {target} | {met} |")
    lines.append("")
    if "amr_cached" in r:
        lines.append(f"AMR->MP3 served from filegate's cache: {r['amr_cached']['median']:,.1f} ms median.")
    if "tls_handshakes" in r:
        lines.append("TLS negotiated (h2load): " + "; ".join(
            f"{name}: {', '.join(p.values())}" for name, p in r["tls_handshakes"]["negotiated"].items()))
    lines.append("access log lines: " + ", ".join(
        f"{name} {a['lines']:,}" for name, a in r["access_log"].items()))
    lines.append(f"run took {r['elapsed_s']:.0f} s")
    finish_report(lines, results, work)


def offload_line(r, lines, verdict):
    o = r["offload"]["filegate"]
    target, met = verdict("offload", o["offload"], o["errors"])
    if not TARGETS["offload"][1](o["best_offload"]):
        met += f" (no cache can: best {o['best_offload']:.2%})"
    lines.append(f"| origin offload, Zipf s=1.0 over {o['objects']:,} objects (S3) |"
                 f" {o['offload']:.2%} ({o['store_gets']:,.0f} store GETs / {o['downloads']:,}"
                 f" downloads after {o['warmup']:,}; repeat requests {o['repeat_offload']:.2%};"
                 f" {o['downloads_per_s']:,.0f} downloads/s) | best possible on this sequence |"
                 f" {o['best_offload']:.2%} ({o['first_requests']:,} objects first asked for) |"
                 f" - | {target} | {met} |")


def finish_report(lines, results, work):
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
    """(row, errors) of every figure whose requests failed: a wrk run's non-2xx answers or
    socket errors, a hit check that was not a HIT, an offload download, an empty log."""
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
