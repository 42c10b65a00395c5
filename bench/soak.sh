#!/usr/bin/env bash
# Soak test of issue 7: mediagate under mixed media load for a bounded time,
# printing errors, p99 latency and RSS every window, and RSS at start and end.
# One command; everything listens on 127.0.0.1 only and stops by itself.
#
#   bench/soak.sh                      # 1,000 connections for 10 minutes, a row every 30 s
#   bench/soak.sh --minutes 2          # shorter
#   bench/soak.sh --connections 256 --windows 3   # the issue's 3 runs of 30 s at -c256
#
# Options:
#   --minutes N       total load time (default 10); split into windows of --interval
#   --windows N       number of windows instead of --minutes
#   --interval S      seconds per window, one wrk run each (default 30)
#   --connections C   wrk connections (default 1000)
#   --idle S          quiet seconds after each window before the "idle" RSS sample (default 2)
#   --max-bytes SIZE  the cache's max_bytes (default 64MiB); slice_bytes = max_object_bytes = 1MiB
#   --cache-toml TEXT extra lines for the [cache] section (e.g. 'max_fills = 32')
#
# The load (bench/mixed.lua): 500 objects of 100 KB to 2 MB in s3s-fs (seeded
# straight into its data dir, with the ETag sidecar s3s-fs writes on upload);
# 40 % GETs of a hot set of 16 objects, 40 % GETs of any object (mostly cold in
# a 64 MiB cache), 20 % ranges of 64-512 KiB at random offsets.
#
# It installs wrk (Debian) and s3s-fs (as scripts/test.sh does) when missing,
# builds `cargo build --release` unless MEDIAGATE_BIN names a binary, and
# writes the table to target/soak/results.md (raw wrk outputs and RSS samples
# in target/soak/raw/). RSS is polled from /proc/PID/status every 0.1 s.
#
# Environment:
#   MEDIAGATE_BIN         use this binary instead of building target/release/mediagate
#   MEDIAGATE_SOAK_DATA   where the objects live (default target/soak-data; about 500 MB, reused)
#   MEDIAGATE_SOAK_WRAP   a command to run mediagate under, e.g. "heaptrack -o /tmp/mg"
#   MEDIAGATE_PEERS       where s3s-fs is installed (default ~/.cache/mediagate/peers)
#   RUST_LOG              mediagate's log filter (default warn; the log goes to a file)
# Run it under `nice -n 10` when other work needs the CPU.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MINUTES=10 WINDOWS="" INTERVAL=30 CONNS=1000 IDLE=2 MAX_BYTES=64MiB CACHE_EXTRA=""
while (($#)); do
    case "$1" in
    --minutes) MINUTES=$2 && shift ;;
    --windows) WINDOWS=$2 && shift ;;
    --interval) INTERVAL=$2 && shift ;;
    --connections) CONNS=$2 && shift ;;
    --idle) IDLE=$2 && shift ;;
    --max-bytes) MAX_BYTES=$2 && shift ;;
    --cache-toml) CACHE_EXTRA=$2 && shift ;;
    -h | --help)
        sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "bench/soak.sh: unknown argument $1 (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done
[[ -n "$WINDOWS" ]] || WINDOWS=$(((MINUTES * 60 + INTERVAL - 1) / INTERVAL))
for n in "$WINDOWS" "$INTERVAL" "$CONNS" "$IDLE"; do
    [[ "$n" =~ ^[0-9]+$ ]] || {
        echo "bench/soak.sh: $n is not a whole number" >&2
        exit 2
    }
done

PEERS="${MEDIAGATE_PEERS:-$HOME/.cache/mediagate/peers}"
S3S_VERSION="0.14.1"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
S3_ACCESS_KEY="mediagate-soak"
S3_SECRET_KEY="mediagate-soak-secret-0123456789"
BUCKET="soak"
OBJECTS=500
DATA="${MEDIAGATE_SOAK_DATA:-$ROOT/target/soak-data}"
OUT="$ROOT/target/soak"
RAW="$OUT/raw"
LIST="$DATA/objects.txt"

PIDS=()
RUN=""
SAMPLER=""
cleanup() {
    [[ -n "$SAMPLER" ]] && kill "$SAMPLER" 2>/dev/null
    [[ -n "${MG_PID:-}" ]] && kill "$MG_PID" 2>/dev/null
    stop_pids
    [[ -n "$RUN" && -d "$RUN" ]] && rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The objects: sizes from a fixed seed, bytes from one random 2 MB block with
# the object's number in front (distinct ETags), written once and reused.
make_data() {
    mkdir -p "$DATA/s3/$BUCKET"
    python3 - "$DATA/s3/$BUCKET" "$LIST" "$OBJECTS" <<'EOF' || return 1
import os, random, sys
d, listing, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(7)
block = None
lines = []
for i in range(n):
    name, size = f"m{i:03d}.bin", rng.randint(100_000, 2_000_000)
    path = os.path.join(d, name)
    lines.append(f"{name} {size}\n")
    if os.path.isfile(path) and os.path.getsize(path) == size:
        continue
    if block is None:
        block = os.urandom(2_000_000)
    head = f"{i:08d}".encode()
    with open(path + ".tmp", "wb") as f:
        f.write(head + block[len(head):size])
    os.replace(path + ".tmp", path)
with open(listing, "w") as f:
    f.writelines(lines)
EOF
    python3 -B "$ROOT/bench/tools.py" etags "$DATA/s3" "$BUCKET" 2>/dev/null
}

kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }
mib() { [[ -n "$1" ]] && awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }' || printf 'n/a'; }

main() {
    RUN=$(mktemp -d -t mediagate-soak.XXXXXX)
    mkdir -p "$RAW"
    rm -f "$RAW"/*
    header "setup"
    ensure_debs wrk curl || exit 1
    install_s3s || exit 1
    if [[ -n "${MEDIAGATE_BIN:-}" ]]; then
        MG=$MEDIAGATE_BIN
    else
        log "cargo build --release"
        cargo build --release 2>"$RUN/build.log" || {
            tail -n 30 "$RUN/build.log" >&2
            exit 1
        }
        MG="$ROOT/target/release/mediagate"
    fi
    make_data || {
        log "the objects could not be written to $DATA"
        exit 1
    }

    local s3_port
    s3_port=$(free_port)
    "$S3S_BIN" --host 127.0.0.1 --port "$s3_port" --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" \
        "$DATA/s3" >"$RUN/s3s-fs.log" 2>&1 &
    PIDS+=($!)
    wait_http $! "$s3_port" "$RUN/s3s-fs.log" s3s-fs || exit 1

    cat >"$RUN/soak.toml" <<EOF
# Written by bench/soak.sh.
[server]
listen = "127.0.0.1:0"
# the load comes from one address: no per-client cap (as behind a CDN)
max_connections_per_ip = 0

[cache]
max_bytes = "$MAX_BYTES"
max_object_bytes = "1MiB"
slice_bytes = "1MiB"
$CACHE_EXTRA

EOF
    s3_bench_integration soak "$s3_port" "$BUCKET" >>"$RUN/soak.toml"
    local wrap=()
    [[ -n "${MEDIAGATE_SOAK_WRAP:-}" ]] && read -r -a wrap <<<"$MEDIAGATE_SOAK_WRAP"
    RUST_LOG="${RUST_LOG:-warn}" "${wrap[@]}" "$MG" serve --config "$RUN/soak.toml" >"$RUN/mg.out" 2>"$OUT/mediagate.log" &
    PIDS+=($!)
    local url="" i
    for ((i = 0; i < 300; i++)); do
        url=$(grep -oE 'http://[0-9.]+:[0-9]+' "$RUN/mg.out" 2>/dev/null | head -n1)
        [[ -n "$url" ]] && break
        kill -0 "${PIDS[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$url" ]] || {
        log "mediagate did not start; its log:"
        tail -n 20 "$OUT/mediagate.log" >&2
        exit 1
    }
    # The mediagate process itself (a wrapper such as heaptrack runs it as a child).
    MG_PID=${PIDS[-1]}
    if ((${#wrap[@]})); then
        MG_PID=$(pgrep -n -f -- "serve --config $RUN/soak.toml" | head -n1)
    fi
    log "s3s-fs on 127.0.0.1:$s3_port, mediagate on $url (pid $MG_PID), $OBJECTS objects in $DATA"

    # Every object once, so that the first window is not all cold (and the pools are warm).
    curl -s -o /dev/null --max-time 10 "$url/s3/$BUCKET/m000.bin"
    sleep 1
    local rss_start hwm_start
    rss_start=$(kib "$MG_PID" VmRSS)
    hwm_start=$(kib "$MG_PID" VmHWM)

    header "soak: $CONNS connections, $WINDOWS windows of ${INTERVAL}s, cache max_bytes $MAX_BYTES"
    local table="$OUT/results.md"
    {
        echo "| window | end (s) | requests | req/s | errors | p99 (ms) | RSS peak (MiB) | RSS idle after (MiB) |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
    } | tee "$table"
    local w t0=$SECONDS line errors=0 total=0 peak_all=0 idle_first=""
    for ((w = 1; w <= WINDOWS; w++)); do
        (
            while kill -0 "$MG_PID" 2>/dev/null; do
                awk '$1 == "VmRSS:" { print $2 }' "/proc/$MG_PID/status" 2>/dev/null
                sleep 0.1
            done
        ) >"$RAW/rss.$w.txt" &
        SAMPLER=$!
        timeout $((INTERVAL + 60)) wrk -t2 -c"$CONNS" -d"${INTERVAL}s" --timeout 10s --latency \
            -s "$ROOT/bench/mixed.lua" "$url" -- "$LIST" "/s3/$BUCKET/" 16 >"$RAW/wrk.$w.txt" 2>&1
        kill "$SAMPLER" 2>/dev/null
        wait "$SAMPLER" 2>/dev/null
        SAMPLER=""
        sleep "$IDLE"
        local idle peak req rps err p99
        idle=$(kib "$MG_PID" VmRSS)
        peak=$(sort -n "$RAW/rss.$w.txt" | tail -n1)
        line=$(grep '^SOAK ' "$RAW/wrk.$w.txt" | tail -n1)
        if [[ -z "$line" ]]; then
            printf '| %d | %d | wrk failed: %s |||||\n' "$w" $((SECONDS - t0)) "$(tail -n1 "$RAW/wrk.$w.txt")" | tee -a "$table"
            kill -0 "$MG_PID" 2>/dev/null || {
                log "mediagate is gone; its log:"
                tail -n 20 "$OUT/mediagate.log" >&2
                break
            }
            continue
        fi
        req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
        err=$(awk '{ s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^(connect|read|write|status|timeout)=/) { split($i, kv, "="); s += kv[2] } print s }' <<<"$line")
        p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")
        rps=$(awk -v r="$req" -v s="$INTERVAL" 'BEGIN { printf "%.0f", r / s }')
        errors=$((errors + err))
        total=$((total + req))
        ((${peak:-0} > peak_all)) && peak_all=$peak
        [[ -n "$idle_first" ]] || idle_first=$idle
        printf '| %d | %d | %d | %s | %d | %s | %s | %s |\n' "$w" $((SECONDS - t0)) "$req" "$rps" "$err" "$p99" \
            "$(mib "$peak")" "$(mib "$idle")" | tee -a "$table"
    done
    local rss_end hwm_end
    rss_end=$(kib "$MG_PID" VmRSS)
    hwm_end=$(kib "$MG_PID" VmHWM)
    {
        echo
        echo "- load: $CONNS connections, $WINDOWS x ${INTERVAL}s (bench/mixed.lua), cache max_bytes $MAX_BYTES, slice 1MiB"
        echo "- requests: $total; errors (socket errors + non-2xx/3xx): $errors"
        echo "- RSS at start (after one warm-up GET): $(mib "$rss_start") MiB; at end (idle ${IDLE}s): $(mib "$rss_end") MiB"
        echo "- peak RSS sampled: $(mib "$peak_all") MiB; VmHWM: $(mib "$hwm_start") MiB at start, $(mib "$hwm_end") MiB at end"
        echo "- idle RSS after the first window: $(mib "$idle_first") MiB; after the last: $(mib "$rss_end") MiB"
    } | tee -a "$table"
    log "(table in $table; wrk outputs and RSS samples in $RAW)"
}

main "$@"
