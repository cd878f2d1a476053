#!/usr/bin/env python3
"""`make soak`: a bounded mixed load on filegate over a real S3 store (s3s-fs) that is
stopped, frozen and restarted along the way. Loopback only.

The mix: cache hits, cold thumbnails (a box never asked for), AMR->MP3 transcodes of
fresh uploads (grant + the product's POST form to the store), photo uploads (grant +
presigned PUT: s3s-fs's form parser fails on large bodies under load, its own bug),
original downloads, and bad requests (forged tokens, bad parameters, unknown routes). Every answer is counted by
kind and status; filegate's RSS is sampled throughout.

It passes when
  - nothing but the injected 502/504 appears (and those only while the store is down
    or just after), no connection to filegate fails, no request hangs;
  - RSS does not grow after warm-up: the highest sample of the last half stays within
    10% (+ 8 MiB) of the highest sample of the warm-up's end.

    python3 tests/soak/soak.py [--seconds 600] [--binary target/release/filegate]

`make test` runs it for a minute on the debug binary with `--smoke` (`make soak-smoke`:
the answers judged, RSS only printed), so the harness cannot rot unseen.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "soak-secret-0123456789abcdef"
AK, SK = "soak-ak", "soak-secret-key-0123456789"
CACHE_MIB = 32


def tools_dir():
    """The project's tools, outside the clone: the rule of scripts/tools-dir.sh."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("FILEGATE_TOOLS") or os.path.join(cache, "filegate", "tools")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub, kind="user", ttl=7200, secret=SECRET, app="soak"):
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    c = b64(json.dumps({"app": app, "sub": str(sub), "kind": kind,
                        "exp": int(time.time()) + ttl}).encode())
    sig = hmac.new(secret.encode(), f"{h}.{c}".encode(), hashlib.sha256).digest()
    return f"{h}.{c}.{b64(sig)}"


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Store:
    """s3s-fs on a fixed port; killed, frozen and restarted by its PID."""

    def __init__(self, work):
        self.bin = os.environ.get("FILEGATE_S3S_FS", os.path.join(tools_dir(), "bin", "s3s-fs"))
        self.root = os.path.join(work, "s3")
        os.makedirs(os.path.join(self.root, "filegate"), exist_ok=True)
        self.port = free_port()
        self.log = open(os.path.join(work, "s3s.log"), "ab")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [self.bin, "--host", "127.0.0.1", "--port", str(self.port), "--access-key", AK,
             "--secret-key", SK, self.root], stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)


def make_fixtures(work):
    photo = os.path.join(work, "photo.jpg")
    subprocess.run(["vips", "gaussnoise", os.path.join(work, "n.v"), "1600", "1200"], check=True)
    subprocess.run(["vips", "copy", os.path.join(work, "n.v"), photo + "[Q=85]"], check=True)
    amr = os.path.join(work, "voice.amr")
    subprocess.run([os.path.join(ROOT, "scripts", "make-voice.sh"), "20", amr], check=True)
    with open(photo, "rb") as f:
        photo_bytes = f.read()
    with open(amr, "rb") as f:
        amr_bytes = f.read()
    return photo_bytes, amr_bytes


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = defaultdict(Counter)
        self.unexpected = []
        self.outage_errors = Counter()

    def record(self, kind, status, ok, in_outage, detail=""):
        with self.lock:
            self.by_kind[kind][status] += 1
            if not ok:
                # 502/504 from filegate, or a connection cut mid-body (status 0),
                # while the store is down are the injected faults.
                if in_outage and status in (0, 502, 504):
                    self.outage_errors[status] += 1
                else:
                    self.unexpected.append((round(time.time()), kind, status, detail[:200]))


def request(method, url, headers=None, body=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def multipart(fields, file_bytes, file_name, content_type):
    boundary = uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
             for k, v in fields.items()]
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n"
                 f"Content-Type: {content_type}\r\n\r\n".encode() + file_bytes + f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "filegate"))
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--smoke", action="store_true",
                    help="a short run: judge the answers only (a minute is too short to tell "
                         "RSS growth from warm-up, so RSS is printed, not judged)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="soak-")
    procs = []
    try:
        photo, amr = make_fixtures(work)
        store = Store(work)
        port, admin = free_port(), free_port()
        config = os.path.join(work, "filegate.yaml")
        with open(config, "w") as f:
            f.write(f"""listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
public_url: http://127.0.0.1:{port}
demo_page: false
server:
  upgrade_sock: {work}/upgrade.sock
  pid_file: {work}/filegate.pid
store:
  kind: s3
  endpoint: http://127.0.0.1:{store.port}
  bucket: filegate
  access_key_id: {AK}
  secret_access_key: {SK}
  connect_timeout: 1s
  read_timeout: 2s
apps:
  soak:
    secrets: ["{SECRET}"]
  soakput:
    secrets: ["{SECRET}"]
    upload_method: PUT
cache:
  memory: {CACHE_MIB} MiB
  fresh_for: 2s
""")
        log = open(os.path.join(work, "filegate.log"), "wb")
        fg = subprocess.Popen([args.binary, "serve", "-c", config], stdout=log, stderr=subprocess.STDOUT,
                              env=dict(os.environ, RUST_LOG="warn"))
        procs.append(fg)
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        user = mint(7)
        qt = urllib.parse.quote(user)

        def grant(route):
            status, body = request("GET", f"{base}{route}&app_id=soak", {"access-token": user})
            if status != 200:
                raise RuntimeError(f"grant {status}")
            return json.loads(body)["data"]

        putter = mint(7, app="soakput")

        def put_upload(data, ctype):
            # Presigned PUT: s3s-fs's form parser fails on bodies read in pieces over
            # 64 KiB under load ("failed to read file stream"), a bug of that test store.
            route = f"/file/upload/chat?file_type=102&to_id=2&size={len(data)}&content_type={ctype}"
            status, body = request("GET", f"{base}{route}&app_id=soakput", {"access-token": putter})
            if status != 200:
                raise RuntimeError(f"grant {status}")
            g = json.loads(body)["data"]
            headers = {k: v for k, v in g["oss_body_param"].items() if k.lower() != "content-length"}
            status, answer = request("PUT", g["upload_url"], headers, data)
            g["answer"] = answer[:300].decode(errors="replace")
            return status, g

        def upload(route, data, name, ctype):
            g = grant(route)
            body, ct = multipart(g["oss_body_param"], data, name, ctype)
            status, answer = request("POST", g["upload_url"], {"Content-Type": ct}, body)
            g["answer"] = answer[:300].decode(errors="replace")
            return status, g

        _, avatar = upload("/file/upload/avatar/user?x=1", photo, "a.jpg", "image/jpeg")
        avatar_name = urllib.parse.quote(avatar["object_name"], safe="")
        _, blob = upload("/file/upload/chat?file_type=100&to_id=1", os.urandom(300_000), "b.bin",
                         "application/octet-stream")
        hit_url = (f"{base}/file/download/avatar?app_id=soak&access-token={qt}&object_name={avatar_name}"
                   "&image_type=2&w=200&h=200&thumbnail_strategy=2")

        stats = Stats()
        outage = {"until": 0.0, "kind": ""}
        stop_at = time.time() + args.seconds
        box = [100]
        box_lock = threading.Lock()

        def in_outage():
            # Answers may lag the store's return by a read timeout.
            return time.time() < outage["until"] + 3.0

        def fresh_box():
            with box_lock:
                box[0] += 1
                n = box[0]
            return 100 + n % 150, 200 + (n // 150) % 1800

        def one(kind):
            try:
                if kind == "hit":
                    status, _ = request("GET", hit_url)
                    stats.record(kind, status, status == 200, in_outage())
                elif kind == "cold":
                    w, h = fresh_box()
                    status, _ = request("GET", hit_url.replace("w=200&h=200", f"w={w}&h={h}"))
                    stats.record(kind, status, status == 200, in_outage())
                elif kind == "original":
                    status, _ = request("GET", blob["download_url"] + f"&access-token={qt}")
                    stats.record(kind, status, status == 200, in_outage())
                elif kind == "upload":
                    status, g = put_upload(photo, "image/jpeg")
                    stats.record(kind, status, status == 200, in_outage(), g["answer"])
                elif kind == "transcode":
                    status, g = upload("/file/upload/chat?file_type=101&to_id=3", amr, "v.amr", "audio/amr")
                    if status != 200:
                        stats.record(kind, status, False, in_outage(), "upload")
                        return
                    status, body = request("GET", g["download_url"] + f"&access-token={qt}&format=mp3")
                    stats.record(kind, status, status == 200 and body[:3] in (b"ID3", b"\xff\xf3", b"\xff\xfb"),
                                 in_outage())
                elif kind == "bad":
                    choice = random.randrange(5)
                    if choice == 0:
                        status, _ = request("GET", hit_url.replace(qt, urllib.parse.quote(mint(7, secret="x" * 20))))
                        ok = status == 401
                    elif choice == 1:
                        status, _ = request("GET", hit_url.replace("w=200", "w=-5"))
                        ok = status == 400
                    elif choice == 2:
                        status, _ = request("GET", f"{base}/file/nope")
                        ok = status == 404
                    elif choice == 3:
                        status, _ = request("GET", f"{base}/file/download/avatar?app_id=soak&access-token={qt}"
                                                   "&object_name=..%2F..%2Fetc%2Fpasswd")
                        ok = status == 400
                    else:
                        status, _ = request("POST", f"{base}/file/upload/chat?app_id=soak")
                        ok = status == 405
                    stats.record(kind, status, ok, False)
            except RuntimeError as e:
                # A grant refused by the store being down, for instance.
                stats.record(kind, 599, False, in_outage(), str(e))
            except http.client.IncompleteRead as e:
                # The store failed mid-body: the head was out, so filegate cut the
                # connection (the only honest thing left to do).
                stats.record(kind, 0, False, in_outage(), f"cut mid-body: {e}")
            except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout,
                    http.client.HTTPException) as e:
                # Uploads go straight to the store: refused there while it is down is
                # the injected fault. Any failed connection to filegate is a failure.
                to_store = f":{store.port}" in str(getattr(e, "filename", "") or "") or (
                    kind in ("upload", "transcode") and in_outage())
                stats.record(kind, 0 if not to_store else 502, False, to_store and in_outage(),
                             f"connection: {e}")

        mix = ["hit"] * 40 + ["cold"] * 15 + ["original"] * 15 + ["upload"] * 10 + ["transcode"] * 5 + ["bad"] * 15

        def worker():
            while time.time() < stop_at:
                one(random.choice(mix))

        def chaos():
            # Every minute or so: kill the store for 5 s, or freeze it for 5 s. A short
            # run (the smoke in `make test`) has its first outage at a third of it.
            next_at = time.time() + min(45, args.seconds * 0.3)
            n = 0
            while time.time() < stop_at - 20:
                if time.time() >= next_at:
                    n += 1
                    outage["until"] = time.time() + 5.5
                    if n % 2:
                        outage["kind"] = "killed"
                        store.kill()
                        time.sleep(5)
                        store.start()
                    else:
                        outage["kind"] = "frozen"
                        store.pause()
                        time.sleep(5)
                        store.resume()
                    print(f"  store {outage['kind']} for 5 s and back", flush=True)
                    next_at = time.time() + 55
                time.sleep(0.2)

        samples = []

        def sampler():
            started = time.time()
            while time.time() < stop_at:
                samples.append((round(time.time() - started), rss_mib(fg.pid)))
                time.sleep(5)

        # Daemon threads: an interrupted run ends with its process, never spinning on.
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.workers)]
        threads += [threading.Thread(target=chaos, daemon=True), threading.Thread(target=sampler, daemon=True)]
        print(f"soak: {args.seconds}s, {args.workers} workers, filegate pid {fg.pid}, store port {store.port}",
              flush=True)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        alive = fg.poll() is None
        report(stats, samples, args, alive)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        try:
            store.resume()
            store.kill()
        except (NameError, ProcessLookupError, AttributeError):
            pass
        shutil.rmtree(work, ignore_errors=True)


def report(stats, samples, args, alive):
    total = sum(sum(c.values()) for c in stats.by_kind.values())
    print(f"\nrequests: {total} in {args.seconds}s ({total / args.seconds:.0f}/s)")
    for kind, counts in sorted(stats.by_kind.items()):
        print(f"  {kind:<10} " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print(f"injected store errors (during outages): {dict(stats.outage_errors) or 'none'}")
    print("RSS over time (s: MiB):")
    for i in range(0, len(samples), 6):
        print("  " + "  ".join(f"{t:>4}s {m:6.1f}" for t, m in samples[i:i + 6]))
    warm_end = max(1, len(samples) // 3)
    baseline = max(m for _, m in samples[:warm_end]) if samples else 0
    late = max(m for _, m in samples[len(samples) // 2:]) if samples else 0
    grows = late > baseline * 1.10 + 8
    print(f"RSS: warm-up peak {baseline:.1f} MiB, last-half peak {late:.1f} MiB")
    failed = []
    if not alive:
        failed.append("filegate exited")
    if stats.unexpected:
        failed.append(f"{len(stats.unexpected)} unexpected answers, e.g. {stats.unexpected[:5]}")
    if grows and not args.smoke:
        failed.append("RSS grew after warm-up")
    if failed:
        print("SOAK FAILED: " + "; ".join(failed))
        sys.exit(1)
    if args.smoke:
        print("SOAK SMOKE PASSED: only injected 502/504 (RSS not judged in a smoke)")
        return
    print("SOAK PASSED: only injected 502/504, RSS flat after warm-up")


if __name__ == "__main__":
    main()
