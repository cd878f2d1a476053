#!/usr/bin/env python3
"""`make cluster`: three filegate nodes over a SeaweedFS cluster, on loopback.

SeaweedFS (the `weed` binary setup.sh installs in the tools dir): one master, four
volume servers, a filer and the S3 gateway, replication 002 (three copies). Then three
filegate nodes (release build) on 127.0.0.1:8081-8083 (admin 9181-9183), each listing
all three as `cluster.peers`. It prints how to reach them and runs until Ctrl-C, then
stops every process it started, by PID. Data lives in `cluster-data/` (removed at the
end unless --keep).
"""

import argparse
import datetime
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCESS_KEY, SECRET_KEY, BUCKET = "cluster-ak", "cluster-secret-key-0123456789", "filegate"
APP_SECRET = "cluster-app-secret-0123456789"
CLUSTER_SECRET = "cluster-peer-secret-0123456789"


def tools_dir():
    explicit = os.environ.get("FILEGATE_TOOLS")
    if explicit:
        return explicit
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "filegate", "tools")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Processes:
    """Every process this run started; stopped by PID."""

    def __init__(self, work):
        self.work, self.procs = work, []

    def start(self, name, args, cwd=None):
        log = open(os.path.join(self.work, f"{name}.log"), "wb")
        proc = subprocess.Popen(args, cwd=cwd or self.work, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        self.procs.append((name, proc))
        return proc

    def stop_all(self):
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.time() + 5
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def check_alive(self):
        for name, proc in self.procs:
            if proc.poll() is not None:
                log = os.path.join(self.work, f"{name}.log")
                tail = open(log, errors="replace").read()[-2000:]
                raise RuntimeError(f"{name} exited ({proc.returncode}):\n{tail}")


def start_seaweedfs(p, weed, work):
    ports = free_ports(14)
    (m, mg), (f, fg), (s3, s3g) = (ports[0], ports[1]), (ports[2], ports[3]), (ports[4], ports[5])
    ip = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    master = f"127.0.0.1:{m}.{mg}"
    mdir = os.path.join(work, "master")
    os.makedirs(mdir)
    with open(os.path.join(mdir, "master.toml"), "w") as fh:
        fh.write("[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n")
    p.start("weed-master", [weed, "master", *ip, f"-port={m}", f"-port.grpc={mg}", f"-mdir={mdir}",
                            "-defaultReplication=002", "-volumeSizeLimitMB=64", "-telemetry=false"],
            cwd=mdir)
    for i in range(4):
        port, grpc = ports[6 + 2 * i], ports[7 + 2 * i]
        vdir = os.path.join(work, f"volume{i}")
        os.makedirs(vdir)
        p.start(f"weed-volume{i}", [weed, "volume", *ip, f"-port={port}", f"-port.grpc={grpc}",
                                    f"-dir={vdir}", "-max=100", "-preStopSeconds=0",
                                    f"-mserver={master}", "-dataCenter=dc1", "-rack=r1",
                                    "-minFreeSpace=1"], cwd=vdir)
    fdir = os.path.join(work, "filer")
    os.makedirs(fdir)
    p.start("weed-filer", [weed, "filer", *ip, f"-port={f}", f"-port.grpc={fg}", f"-master={master}",
                           "-defaultReplicaPlacement=002", f"-defaultStoreDir={fdir}",
                           f"-localSocket={os.path.join(fdir, 'filer.sock')}"], cwd=fdir)
    sdir = os.path.join(work, "s3")
    os.makedirs(sdir)
    identities = {"identities": [{"name": "filegate", "credentials": [
        {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    with open(os.path.join(sdir, "s3.json"), "w") as fh:
        json.dump(identities, fh)
    p.start("weed-s3", [weed, "s3", *ip, f"-port={s3}", f"-port.grpc={s3g}", f"-filer=127.0.0.1:{f}.{fg}",
                        f"-config={os.path.join(sdir, 's3.json')}", "-port.iceberg=0", "-port.lance=0",
                        "-allowDeleteBucketNotEmpty=false",
                        f"-localSocket={os.path.join(sdir, 's3.sock')}"], cwd=sdir)
    # The bucket, by a signed CreateBucket, retried until the cluster is up (~8 s);
    # then a signed PutObject that succeeds is the readiness check.
    endpoint = f"http://127.0.0.1:{s3}"
    deadline = time.time() + 60
    last = "no answer"
    while time.time() < deadline:
        p.check_alive()
        try:
            signed_put(f"{endpoint}/{BUCKET}", b"")
        except OSError as e:
            last = str(e)
        try:
            if signed_put(f"{endpoint}/{BUCKET}/_probe/ready", b"ready") == 200:
                return endpoint
        except OSError as e:
            last = str(e)
        time.sleep(0.5)
    raise RuntimeError(f"SeaweedFS did not get ready: {last}")


def signed_put(url, body):
    """A PUT signed with AWS SigV4 (the S3 gateway's key pair); returns the status."""
    parsed = urllib.parse.urlsplit(url)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": parsed.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["PUT", parsed.path or "/", "",
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload])
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=body, method="PUT", headers={
        "x-amz-content-sha256": payload, "x-amz-date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
                         f"SignedHeaders={signed}, Signature={signature}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def node_config(path, work, port, admin, peers, endpoint):
    with open(path, "w") as fh:
        fh.write(f"""listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
public_url: http://127.0.0.1:{port}
server:
  upgrade_sock: {work}/node{port}.sock
  pid_file: {work}/node{port}.pid
store:
  kind: s3
  endpoint: {endpoint}
  region: us-east-1
  bucket: {BUCKET}
  access_key_id: {ACCESS_KEY}
  secret_access_key: {SECRET_KEY}
  path_style: true
apps:
  demo:
    secrets: ["{APP_SECRET}"]
cluster:
  self: http://127.0.0.1:{port}
  peers: [{", ".join(peers)}]
  secret: "{CLUSTER_SECRET}"
""")


def wait_live(admin_ports, p, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        p.check_alive()
        live = []
        for a in admin_ports:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{a}/metrics", timeout=2).read().decode()
                live.append(next(float(l.split()[1]) for l in text.splitlines()
                                 if l.startswith("filegate_cluster_nodes_live ")))
            except (OSError, StopIteration, ValueError):
                live.append(0)
        if all(v >= len(admin_ports) for v in live):
            return
        time.sleep(0.2)
    raise RuntimeError("the nodes never all saw each other live")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "filegate"))
    ap.add_argument("--work", default=os.path.join(ROOT, "cluster-data"))
    ap.add_argument("--keep", action="store_true", help="keep cluster-data/ at the end")
    args = ap.parse_args()
    weed = os.path.join(tools_dir(), "bin", "weed")
    if not os.access(weed, os.X_OK):
        sys.exit(f"cluster: {weed} is missing: run scripts/setup.sh test")
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"cluster: {args.binary} is missing: run cargo build --release")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    p = Processes(args.work)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        print("cluster: starting SeaweedFS (1 master, 4 volume servers, filer, S3 gateway)", flush=True)
        endpoint = start_seaweedfs(p, weed, args.work)
        ports, admins = [8081, 8082, 8083], [9181, 9182, 9183]
        peers = [f"http://127.0.0.1:{port}" for port in ports]
        for port, admin in zip(ports, admins):
            conf = os.path.join(args.work, f"node{port}.yaml")
            node_config(conf, args.work, port, admin, peers, endpoint)
            p.start(f"filegate-{port}", [args.binary, "serve", "-c", conf])
        wait_live(admins, p)
        conf = os.path.join(args.work, "node8081.yaml")
        print(f"""
cluster: ready. SeaweedFS S3 gateway {endpoint} (bucket {BUCKET}); logs in {args.work}/
  nodes:   {", ".join(peers)}   (admin: {", ".join(f"http://127.0.0.1:{a}/metrics" for a in admins)})
  a token: TOKEN=$({args.binary} token --app demo --sub 1 --kind user -c {conf})
  try:     curl -s -H "access-token: $TOKEN" 'http://127.0.0.1:8081/file/upload/avatar/user?app_id=demo'
  any node serves any object; each object lives on one owner (docs/cluster.md).
  Ctrl-C stops everything.""", flush=True)
        while not stop:
            p.check_alive()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("cluster: stopping", flush=True)
        p.stop_all()
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        sys.exit(f"cluster: {e}")
