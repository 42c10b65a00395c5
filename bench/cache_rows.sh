# shellcheck shell=bash
# The cache's rows of bench/run.sh (issue 10), sourced by it; `cache_rows`
# runs them with run.sh's servers and helpers (s3s-fs on $S3_PORT, the
# relayed mediagate, start_mg, rss_run, seek_run, save, ...).
#
#   c1  hit ratio on a Zipf(0.9) trace (bench/zipf.py: 10,000 objects of
#       1 KB - 8 MB, log-uniform; MEDIAGATE_BENCH_ZIPF_REQUESTS requests,
#       default 20000, 5000 with --quick) through a fresh mediagate with
#       [cache] max_bytes = MEDIAGATE_BENCH_ZIPF_BUDGET_MIB MiB (default 256),
#       against an exact LRU of the same bytes simulated on the same trace;
#       mediagate's peak RSS (VmHWM) over the trace.
#   c2  upstream bytes per byte served, 1,000 random 256 KiB seeks into a
#       cold 1 GiB object (counting relay; run.sh's main [cache]).
#   c3  peak RSS, 200 MB streamed through a 16 MiB cache.
# All run unless MEDIAGATE_BENCH_ONLY is set; then those of c1 c2 c3 it names.

wants_cache_row() { [[ -z "${MEDIAGATE_BENCH_ONLY:-}" ]] || wants "$1"; }

ZIPF_REQUESTS="${MEDIAGATE_BENCH_ZIPF_REQUESTS:-$($QUICK && echo 5000 || echo 20000)}"
ZIPF_BUDGET_MIB="${MEDIAGATE_BENCH_ZIPF_BUDGET_MIB:-256}"
ZIPF_BUCKET="zipf"
ZIPF=(python3 -B "$ROOT/bench/zipf.py")

# The config of row c1: every object of the trace (8 MB at most) is kept whole.
zipf_config() {
    printf '[server]\nlisten = "127.0.0.1:0"\nmax_connections_per_ip = 0\n\n'
    printf '[cache]\nmax_bytes = "%sMiB"\nmax_object_bytes = "8MiB"\nslice_bytes = "1MiB"\nttl = "1h"\n\n' "$ZIPF_BUDGET_MIB"
    s3_bench_integration bench "$S3_PORT" "$ZIPF_BUCKET"
}

cache_row_zipf() {
    local trace="$DATA/zipf-trace.json" gen lru run
    gen=$("${ZIPF[@]}" gen "$DATA/s3" "$ZIPF_BUCKET" "$trace" --requests "$ZIPF_REQUESTS") || {
        na c1_zipf "the Zipf data set could not be written"
        return
    }
    lru=$("${ZIPF[@]}" lru "$trace" $((ZIPF_BUDGET_MIB * 1024 * 1024))) || {
        na c1_zipf "the LRU simulation failed"
        return
    }
    zipf_config >"$RUN/zipf.toml"
    start_mg zipf "$RUN/zipf.toml" || {
        na c1_zipf "mediagate did not start"
        return
    }
    run=$("${CLI[@]}" "${ZIPF[@]}" replay "${MG_URL[zipf]}/s3/$ZIPF_BUCKET" "$trace" "${MG_PID[zipf]}") || {
        na c1_zipf "the replay failed"
        stop "${MG_PID[zipf]}"
        return
    }
    stop "${MG_PID[zipf]}"
    python3 -c 'import json,sys; print(json.dumps({"data": json.loads(sys.argv[1]), "lru": json.loads(sys.argv[2]), "mediagate": json.loads(sys.argv[3])}))' \
        "$gen" "$lru" "$run" | save c1_zipf
}

cache_row_seeks() {
    [[ -n "${MG_URL[relay]:-}" && -n "${RELAY_CTL[mg]:-}" ]] || {
        na c2_seeks "the relayed mediagate did not start"
        return
    }
    link seek-1g-cold.bin seek-1g.bin
    "${TOOLS[@]}" etags "$DATA/s3" "$BUCKET" 2>/dev/null
    SEEKS=1000 seek_run c2_seeks "${MG_URL[relay]}/s3/$BUCKET/seek-1g-cold.bin" mg
}

cache_row_rss16() {
    if ! make_file rss-200m.bin 200000000 || ! "${TOOLS[@]}" etags "$DATA/s3" "$BUCKET" 2>/dev/null; then
        na c3_rss16 "the 200 MB file could not be written"
        return
    fi
    local cache
    cache=$(printf '[cache]\nmax_bytes = "16MiB"\nmax_object_bytes = "%sMiB"\nslice_bytes = "%sMiB"\n' "$SLICE_MIB" "$SLICE_MIB")
    rss_run c3_rss16 "$cache" rss-200m.bin --max-time 120
}

# Prints the rows from the saved figures (also to $OUT/cache_rows.md).
cache_rows_report() {
    python3 - "$RAW" <<'PY' | tee "$OUT/cache_rows.md" >&2
import json, os, sys
raw = sys.argv[1]
def load(name):
    p = os.path.join(raw, name + ".json")
    if os.path.exists(p):
        return json.load(open(p))
    p = os.path.join(raw, name + ".na")
    return {"na": open(p).read().strip()} if os.path.exists(p) else {"na": "not run"}
print("| row | mediagate | reference | ratio | target |")
print("|---|---|---|---|---|")
z = load("c1_zipf")
if "na" in z:
    print(f"| hit ratio, Zipf(0.9) | n/a: {z['na']} | | | >= 1.1x |")
else:
    m, l = z["mediagate"], z["lru"]
    print(f"| hit ratio, Zipf(0.9), {m['requests']} requests, {l['budget'] >> 20} MiB | {m['hit_ratio']:.4f} | exact LRU {l['hit_ratio']:.4f} | {m['hit_ratio'] / max(l['hit_ratio'], 1e-9):.3f}x | >= 1.1x |")
    print(f"| byte hit ratio, same trace | {m['byte_hit_ratio']:.4f} | exact LRU {l['byte_hit_ratio']:.4f} | {m['byte_hit_ratio'] / max(l['byte_hit_ratio'], 1e-9):.3f}x | report |")
    print(f"| mediagate peak RSS over the trace (VmHWM; {m['errors']} errors, {m['elapsed_s']:.0f} s) | {m['hwm_kib'] / 1024:.0f} MiB | budget {l['budget'] >> 20} MiB | | report |")
s = load("c2_seeks")
if "na" in s:
    print(f"| upstream bytes / byte served, 1,000 seeks | n/a: {s['na']} | | | <= 2.0 |")
else:
    served = s["seeks"]["bytes_served"]
    up = s["relay"]["bytes_from_target"]
    print(f"| upstream bytes / byte served, {s['seeks']['ok']} seeks of 256 KiB into 1 GiB | {up / max(served, 1):.3f} ({up} / {served}) | nginx slice: bench 6 | | <= 2.0 |")
r = load("c3_rss16")
if "na" in r:
    print(f"| peak RSS, 200 MB through a 16 MiB cache | n/a: {r['na']} | | | <= 40 MiB |")
else:
    print(f"| peak RSS, 200 MB through a 16 MiB cache (idle {r['idle_kib'] / 1024:.0f} MiB) | {r['hwm_kib'] / 1024:.0f} MiB (sampled {r['peak_sampled_kib'] / 1024:.0f}) | budget 16 MiB | | <= 40 MiB |")
PY
}

cache_rows() {
    header "cache rows: Zipf hit ratio vs LRU, seek amplification, RSS through a 16 MiB cache"
    if ! $CACHE_ON; then
        na c1_zipf "no [cache] in this binary"
    else
        wants_cache_row c1 && cache_row_zipf
        wants_cache_row c2 && cache_row_seeks
        wants_cache_row c3 && cache_row_rss16
    fi
    cache_rows_report
}
