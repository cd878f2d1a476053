"""The cluster rows of `make bench` (issue 11): what a ring of three nodes saves, and what
a peer hop costs.

Row 9: a Zipf mix (s=1.0, fixed seed) over 2,000 pictures (the ~100 KB avatar JPEG,
uploaded 2,000 times under distinct keys by PUT into s3s-fs), half the requests for the
original and half for a 200x200 thumbnail, sent round robin from 8 threads. Three
set-ups, each with fresh caches and its own 2,000 objects (so no set-up reuses another's
`_derived/` copies): one node alone; three nodes that know nothing of each other; three
nodes on a ring (`cluster:`); and the last two again with `cache.write_back: false`. Store GETs and transforms summed over the nodes' /metrics;
the ideal is one body GET per distinct object and one transform per distinct thumbnail
asked (with `write_back`, each first miss of a thumbnail also looks for its copy under
`_derived/`: a GET answered 404).

Row 9b: the ring when the working set does not fit one node: 1,500 files of 20-114 KB
(~96 MiB, the first of the tiers row's files) and nodes of 32 MiB of memory each, no disk
tier, write-back off: the working set is 3x one node's memory and fits three nodes' only
if each holds what it owns. One trace (Zipf s=1.0, fixed seed, ranks shuffled; 5,000
downloads of warm-up, 20,000 measured, round robin over the nodes, 8 threads): store GETs
over the measured part, one node vs three without a ring vs three on a ring.

Row 10: the hit latency a peer hop adds. Three nodes on a ring; a thumbnail owned by the
third is read (wrk -t1 -c1, keep-alive) from its owner, from a node that must ask the
owner every time (`local_copy_max: 0`) and from a node with the default short-lived copy.
"""

import concurrent.futures
import itertools
import os
import random
import re
import threading
import time

import bench
import tiers_row

CLUSTER_SECRET = "bench-cluster-secret-0123456789"
THUMB = "&image_type=2&w=200&h=200&thumbnail_strategy=2"


def start_nodes(b, label, count, ring, cluster_extra=lambda i: "", write_back=True,
                memory_mib=bench.CACHE_BUDGET_MIB):
    """`count` nodes over the bench's s3s-fs, started together, each with `memory_mib` of
    memory tier; on a ring if `ring`, with `cluster_extra(i)` more keys of node i's
    `cluster:` section."""
    started = bench.Started()
    drawn = bench.free_ports(2 * count)
    ports = list(zip(drawn[0::2], drawn[1::2]))
    peers = [f"http://127.0.0.1:{port}" for port, _ in ports]
    nodes = []
    for i, (port, admin) in enumerate(ports):
        extra = ""
        if ring:
            extra = (f"cluster:\n  self: {peers[i]}\n  peers: [{', '.join(peers)}]\n"
                     f"  secret: \"{CLUSTER_SECRET}\"\n")
            extra += "".join(f"  {line}\n" for line in cluster_extra(i).splitlines())
        nodes.append(bench.Filegate(started, b.args.binary, b.work, f"{label}-{i}",
                                    f"{memory_mib} MiB", write_back,
                                    store=bench.s3_store(b.s3), ports=(port, admin),
                                    extra=extra, wait=False))
    for node in nodes:
        bench.wait_port(node.port, proc=node.proc)
    if ring:
        # Every node sees every other live before the row begins.
        deadline = time.monotonic() + 20
        while any(n.metric_sum("filegate_cluster_nodes_live") < count for n in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label}: the nodes do not all see each other live")
            time.sleep(0.2)
    return started, nodes


def mix(b, label, count, ring, objects, requests, write_back=True):
    """One set-up of row 9: store GETs, transforms and errors over the mix."""
    started, nodes = start_nodes(b, label, count, ring, write_back=write_back)
    try:
        rng = random.Random(11)
        t0 = time.perf_counter()
        uploaded, headers = bench.put_uploads(nodes[0], objects, rng, body=b.avatar_jpeg,
                                              file_type=102)
        upload_s = time.perf_counter() - t0
        def store(result):
            return sum(n.metric_sum(f'filegate_store_operations_total{{op="get",result="{result}"')
                       for n in nodes)

        bodies0, lookups0 = store("ok"), store("not_found")
        weights = list(itertools.accumulate(1.0 / rank for rank in range(1, objects + 1)))
        picks = rng.choices(range(objects), cum_weights=weights, k=requests)
        thumbs = [rng.random() < 0.5 for _ in range(requests)]
        local = threading.local()

        def download(i):
            node = nodes[i % count]
            path, size = uploaded[picks[i]]
            if thumbs[i]:
                path += THUMB
            resp, body = bench.keepalive_get(local, node.port, path, headers)
            if resp is None:
                return body
            if resp.status != 200:
                return f"download: HTTP {resp.status} {body[:200]!r}"
            if not thumbs[i] and len(body) != size:
                return f"download: {len(body)} bytes, want {size}"
            if thumbs[i] and not body.startswith(b"\xff\xd8"):
                return "download: a thumbnail that is not a JPEG"
            return None

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            problems = list(pool.map(download, range(requests)))
        elapsed = time.perf_counter() - t0
        # Bodies read, and lookups of `_derived/` copies not there yet (write_back).
        bodies, lookups = store("ok") - bodies0, store("not_found") - lookups0
        gets = bodies + lookups
        transforms = sum(n.metric_sum('filegate_transforms_total{kind="thumbnail",result="ok"')
                         for n in nodes)
        peer = {}
        if ring:
            for role in ("asked", "answered"):
                peer[role] = sum(n.metric_sum(
                    f'filegate_cluster_requests_total{{result="ok",role="{role}"')
                    for n in nodes)
            peer["fallback"] = sum(n.metric_sum(
                'filegate_cluster_requests_total{result="fallback",role="asked"')
                for n in nodes)
        figure = {
            "nodes": count, "ring": ring, "objects": objects, "requests": requests,
            "store_gets": gets, "store_bodies": bodies, "store_lookups": lookups,
            "transforms": transforms,
            "ideal_gets": len(set(picks)),
            "ideal_transforms": len({p for p, t in zip(picks, thumbs) if t}),
            "requests_per_s": requests / elapsed, "upload_s": upload_s, "peer": peer,
            "errors": sorted({p for p in problems if p}),
        }
        print(f"  {label}: {gets:,.0f} store GETs ({bodies:,.0f} bodies, ideal"
              f" {figure['ideal_gets']:,}; {lookups:,.0f} lookups of copies not yet there),"
              f" {transforms:,.0f} transforms (ideal {figure['ideal_transforms']:,}),"
              f" {figure['requests_per_s']:,.0f} requests/s"
              + (f", fills {peer}" if ring else "")
              + (f"  !! {'; '.join(figure['errors'])}" if figure["errors"] else ""), flush=True)
        return figure
    finally:
        started.stop_all()


def mix_row(b):
    objects, requests = (100, 300) if b.args.smoke else (2000, 12000)
    print(f"row 9: a Zipf mix over {objects:,} pictures, {requests:,} requests (half originals,"
          " half 200x200 thumbnails), round robin", flush=True)
    b.results["cluster_mix"] = {
        "one node": mix(b, "one-node", 1, False, objects, requests),
        "three nodes, no ring": mix(b, "no-ring", 3, False, objects, requests),
        "three nodes, ring": mix(b, "ring", 3, True, objects, requests),
        # Without the store's copies, nothing but the ring shares results.
        "three nodes, no ring, write_back off": mix(b, "no-ring-no-copies", 3, False, objects,
                                                    requests, write_back=False),
        "three nodes, ring, write_back off": mix(b, "ring-no-copies", 3, True, objects,
                                                 requests, write_back=False),
    }


def ring_fit_row(b):
    count, warmup, measured = (100, 200, 300) if b.args.smoke else (1500, 5000, 20000)
    files = tiers_row.make_objects(b.fixtures, count)
    sequence = tiers_row.trace(count, warmup, measured)
    total = sum(os.path.getsize(p) for p in files)
    print(f"row 9b: a Zipf trace over {count:,} files ({total / 2**20:,.0f} MiB) on nodes of"
          f" {bench.TIERS_MEMORY_MIB} MiB each; {warmup:,} downloads of warm-up, {measured:,}"
          " measured, round robin", flush=True)
    out = {"objects": count, "bytes": total, "memory_mib": bench.TIERS_MEMORY_MIB,
           "measured": measured,
           "first_requests": len(set(sequence[warmup:]) - set(sequence[:warmup]))}
    for label, nodes_count, ring in (("one node", 1, False), ("three nodes, no ring", 3, False),
                                     ("three nodes, ring", 3, True)):
        started, nodes = start_nodes(b, "fit-" + label.replace(" ", "-").replace(",", ""),
                                     nodes_count, ring, write_back=False,
                                     memory_mib=bench.TIERS_MEMORY_MIB)
        try:
            uploaded, headers = bench.put_uploads(nodes[0], count, random.Random(1), bodies=files)
            local = threading.local()

            def download(i, nodes=nodes, uploaded=uploaded, headers=headers):
                path, size = uploaded[sequence[i]]
                return bench.sized_get(local, nodes[i % len(nodes)].port, path, headers, size)[0]

            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                problems = list(pool.map(download, range(warmup)))
                gets0 = sum(n.store_gets() for n in nodes)
                problems += list(pool.map(download, range(warmup, warmup + measured)))
                gets = sum(n.store_gets() for n in nodes) - gets0
        finally:
            started.stop_all()
        out[label] = {"store_gets": gets, "errors": sorted({p for p in problems if p})}
        print(f"  {label}: {gets:,.0f} store GETs over {measured:,} downloads"
              + (f"  !! {'; '.join(out[label]['errors'])}" if out[label]["errors"] else ""),
              flush=True)
    b.results["cluster_fit"] = out


def to_ms(text):
    """wrk's latency ("812.00us", "1.20ms", "2.00s") in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise RuntimeError(f"wrk latency {text!r} not understood")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def hop_row(b):
    # Node 0 asks the owner every time; the others keep the default copies.
    started, nodes = start_nodes(b, "hop", 3, True,
                                 lambda i: "local_copy_max: 0 B" if i == 0 else "")
    try:
        owner = nodes[2]
        answered = 'filegate_cluster_requests_total{result="ok",role="answered"'
        path = None
        for attempt in range(40):
            grant = bench.upload(nodes[0].base, nodes[0].token,
                                 "/file/upload/chat?file_type=102&to_id=1",
                                 b.fixture("avatar100k.jpg"), "avatar100k.jpg", "image/jpeg")
            candidate = nodes[0].chat_url(grant["file_sign"], THUMB, token_in_query=False)
            before = owner.metric_sum(answered)
            status, _, _ = bench.fetch(candidate, nodes[0].headers)
            if status != 200:
                raise RuntimeError(f"hop row: a thumbnail answered {status}")
            if owner.metric_sum(answered) > before:
                path = candidate[len(nodes[0].base):]
                break
        if path is None:
            raise RuntimeError("hop row: no upload of 40 was owned by the third node")
        systems = {
            "owner (its own cache)": owner,
            "non-owner, asks the owner each time": nodes[0],
            "non-owner, default short-lived copy": nodes[1],
        }
        for node in systems.values():
            bench.warm([(node.base + path, node.headers)])
        print("row 10: hit latency of a 200x200 thumbnail through a peer hop (wrk -t1 -c1)",
              flush=True)
        figures = {name: {"p50": [], "p99": [], "rps": [], "errors": []} for name in systems}
        for _ in range(b.runs):
            for name, node in systems.items():
                url = node.base + path
                problems = bench.hit_check(url, node.headers)()
                rps, latency, bad = bench.wrk(url, b.seconds, 1, threads=1, headers=node.headers)
                f = figures[name]
                f["rps"].append(rps)
                f["p50"].append(to_ms(latency["50%"]))
                f["p99"].append(to_ms(latency["99%"]))
                f["errors"].extend(problems + bad)
        hops = owner.metric_sum(answered)
        out = {}
        for name, f in figures.items():
            out[name] = {k: (sorted(v)[len(v) // 2] if k != "errors" else sorted(set(v)))
                         for k, v in f.items()}
            print(f"  {name}: p50 {out[name]['p50']:.3f} ms, p99 {out[name]['p99']:.3f} ms,"
                  f" {out[name]['rps']:,.0f} requests/s"
                  + (f"  !! {'; '.join(out[name]['errors'])}" if out[name]["errors"] else ""),
                  flush=True)
        # The non-owner without copies really crossed to the owner: a fill per request.
        asked = sum(figures["non-owner, asks the owner each time"]["rps"]) * b.seconds
        if hops < 0.9 * asked:
            out["non-owner, asks the owner each time"]["errors"].append(
                f"{hops:,.0f} fills answered by the owner for ~{asked:,.0f} requests:"
                " the hop did not happen")
        b.results["cluster_hop"] = out
    finally:
        started.stop_all()


def report_lines(r, lines):
    """The cluster rows of the results table."""
    if "cluster_mix" in r:
        m = r["cluster_mix"]
        one = m["one node"]
        for name, f in m.items():
            # Bodies read: the lookups of copies not yet there depend on write_back alone.
            gets_x = f["store_bodies"] / one["store_bodies"] if one["store_bodies"] else float("nan")
            made_x = f["transforms"] / one["transforms"] if one["transforms"] else float("nan")
            worst = max(gets_x, made_x)
            target = "within 1.1x of one node" if f["ring"] else "-"
            met = ("yes" if worst <= 1.1 else "no") if target != "-" else "-"
            if f["errors"]:
                met += " (errors!)"
            lines.append(
                f"| Zipf mix over {f['objects']:,} pictures, {f['requests']:,} requests, {name} |"
                f" {f['store_gets']:,.0f} store GETs ({f['store_bodies']:,.0f} bodies),"
                f" {f['transforms']:,.0f} transforms ({f['requests_per_s']:,.0f} req/s) | one node |"
                f" {one['store_gets']:,.0f} GETs ({one['store_bodies']:,.0f} bodies),"
                f" {one['transforms']:,.0f} transforms (ideal {one['ideal_gets']:,} bodies,"
                f" {one['ideal_transforms']:,} transforms) | body GETs {gets_x:.2f}x,"
                f" transforms {made_x:.2f}x |"
                f" {target} | {met} |")
    if "cluster_fit" in r:
        f = r["cluster_fit"]
        one = f["one node"]["store_gets"]
        for name in ("three nodes, no ring", "three nodes, ring"):
            gets = f[name]["store_gets"]
            ratio = gets / one if one else float("nan")
            ring = name.endswith(", ring")
            met = ("yes" if ratio <= 0.5 else "no") if ring else "-"
            if f[name]["errors"] or f["one node"]["errors"]:
                met += " (errors!)"
            lines.append(
                f"| ring at 3x: Zipf over {f['objects']:,} files ({f['bytes'] / 2**20:,.0f} MiB),"
                f" {f['memory_mib']} MiB of memory a node, {f['measured']:,} downloads, {name} |"
                f" {gets:,.0f} store GETs | one node | {one:,.0f} store GETs (first requests"
                f" {f['first_requests']:,}) | {ratio:.2f}x | {'<= 0.5x' if ring else '-'} | {met} |")
    if "cluster_hop" in r:
        h = r["cluster_hop"]
        owner = h["owner (its own cache)"]
        for name, f in h.items():
            added = f["p50"] - owner["p50"]
            lines.append(
                f"| thumbnail hit latency, {name} (wrk -c1) | p50 {f['p50']:.3f} ms, p99"
                f" {f['p99']:.3f} ms | owner | p50 {owner['p50']:.3f} ms | +{added:.3f} ms |"
                f" - | {'(errors!)' if f['errors'] else '-'} |")


def rows(b):
    with open(b.fixture("avatar100k.jpg"), "rb") as f:
        b.avatar_jpeg = f.read()
    mix_row(b)
    ring_fit_row(b)
    hop_row(b)

