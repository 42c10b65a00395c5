#!/usr/bin/env python3
"""Hit ratio of mediagate's cache on a Zipf trace, against an exact LRU.

    zipf.py gen ROOT BUCKET TRACE [--objects 10000] [--requests 20000] [--alpha 0.9]
                                  [--min 1000] [--max 8000000] [--seed 42]
    zipf.py lru TRACE BUDGET_BYTES
    zipf.py replay URL_PREFIX TRACE PID

The data set (`gen`): OBJECTS objects z00000.bin... in ROOT/BUCKET (s3s-fs's
layout), sizes log-uniform between MIN and MAX bytes (ln size uniform, then
rounded), written as sparse files (zeros: no disk, no page cache needed);
each gets the s3s-fs metadata file holding an ETag (an MD5 of its name and
size), so s3s-fs never hashes it. The trace: REQUESTS object indices drawn
from Zipf(ALPHA) over ranks 1..OBJECTS (P(rank k) proportional to k^-ALPHA),
the ranks assigned to objects by a seeded shuffle (popularity independent of
size). Everything comes from one seeded random.Random: the same arguments
give the same files and the same trace.

`lru`: an exact LRU of BUDGET_BYTES bytes (object bytes only, no overhead)
replayed on the trace; an object larger than the budget is never kept.
`replay`: GETs every object of the trace in order, one connection, and counts
a hit when `Cache-Status` says `hit`; the peak RSS of PID (mediagate) is its
VmHWM at the end. Each prints one JSON object.
"""

import argparse
import base64
import bisect
import hashlib
import http.client
import json
import math
import os
import random
import sys
import time
import urllib.parse
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tools import status_kib  # noqa: E402  (bench/tools.py: one reader of /proc/<pid>/status)


def out(obj):
    print(json.dumps(obj))


def make_trace(objects, requests, alpha, lo, hi, seed):
    rng = random.Random(seed)
    sizes = [int(round(math.exp(rng.uniform(math.log(lo), math.log(hi))))) for _ in range(objects)]
    cum, total = [], 0.0
    for k in range(1, objects + 1):
        total += k ** -alpha
        cum.append(total)
    rank_to_object = list(range(objects))
    rng.shuffle(rank_to_object)
    trace = [rank_to_object[min(bisect.bisect_left(cum, rng.random() * total), objects - 1)] for _ in range(requests)]
    return sizes, trace


def gen(args):
    sizes, trace = make_trace(args.objects, args.requests, args.alpha, args.min, args.max, args.seed)
    d = os.path.join(args.root, args.bucket)
    os.makedirs(d, exist_ok=True)
    enc = lambda t: base64.urlsafe_b64encode(t.encode()).decode().rstrip("=")
    for i, size in enumerate(sizes):
        name = f"z{i:05d}.bin"
        path = os.path.join(d, name)
        if not (os.path.isfile(path) and os.path.getsize(path) == size):
            with open(path, "wb") as f:
                f.truncate(size)
        info = os.path.join(args.root, f".bucket-{enc(args.bucket)}.object-{enc(name)}.internal.json")
        with open(info, "w") as f:
            json.dump({"e_tag": hashlib.md5(f"{name}:{size}".encode()).hexdigest()}, f)
    with open(args.trace, "w") as f:
        json.dump({"params": {k: v for k, v in vars(args).items() if k != "fn"}, "sizes": sizes, "trace": trace}, f)
    out({
        "objects": len(sizes), "requests": len(trace), "data_set_bytes": sum(sizes),
        "trace_bytes": sum(sizes[o] for o in trace), "distinct_requested": len(set(trace)),
    })


def lru(args):
    t = json.load(open(args.trace))
    sizes, trace, budget = t["sizes"], t["trace"], args.budget
    cache, used, hits, hit_bytes, total_bytes = OrderedDict(), 0, 0, 0, 0
    for o in trace:
        size = sizes[o]
        total_bytes += size
        if o in cache:
            cache.move_to_end(o)
            hits += 1
            hit_bytes += size
            continue
        if size > budget:
            continue
        while used + size > budget:
            _, evicted = cache.popitem(last=False)
            used -= evicted
        cache[o] = size
        used += size
    out({"budget": budget, "requests": len(trace), "hits": hits, "hit_ratio": hits / len(trace),
         "byte_hit_ratio": hit_bytes / total_bytes, "bytes": total_bytes})


def replay(args):
    t = json.load(open(args.trace))
    sizes, trace = t["sizes"], t["trace"]
    u = urllib.parse.urlsplit(args.url_prefix)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    hits = hit_bytes = total_bytes = 0
    errors = []
    t0 = time.perf_counter()
    for o in trace:
        path = f"{u.path.rstrip('/')}/z{o:05d}.bin"
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            n = 0
            while True:
                k = resp.readinto(view)
                if not k:
                    break
                n += k
            status = resp.getheader("cache-status", "")
        except (OSError, http.client.HTTPException) as e:
            errors.append(f"{path}: {e}")
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            continue
        if resp.status != 200 or n != sizes[o]:
            errors.append(f"{path}: status {resp.status}, {n} of {sizes[o]} bytes")
            continue
        total_bytes += n
        if "; hit" in status:
            hits += 1
            hit_bytes += n
    elapsed = time.perf_counter() - t0
    conn.close()
    out({"requests": len(trace), "errors": len(errors), "first_errors": errors[:3], "hits": hits,
         "hit_ratio": hits / len(trace), "byte_hit_ratio": hit_bytes / max(total_bytes, 1), "bytes": total_bytes,
         "elapsed_s": elapsed, "rss_kib": status_kib(args.pid, "VmRSS"), "hwm_kib": status_kib(args.pid, "VmHWM")})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("root")
    g.add_argument("bucket")
    g.add_argument("trace")
    g.add_argument("--objects", type=int, default=10000)
    g.add_argument("--requests", type=int, default=20000)
    g.add_argument("--alpha", type=float, default=0.9)
    g.add_argument("--min", type=int, default=1000)
    g.add_argument("--max", type=int, default=8_000_000)
    g.add_argument("--seed", type=int, default=42)
    g.set_defaults(fn=gen)
    s = sub.add_parser("lru")
    s.add_argument("trace")
    s.add_argument("budget", type=int)
    s.set_defaults(fn=lru)
    r = sub.add_parser("replay")
    r.add_argument("url_prefix")
    r.add_argument("trace")
    r.add_argument("pid", type=int)
    r.set_defaults(fn=replay)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
