#!/usr/bin/env bash
# The benchmark suite of issue 3: mediagate side by side with nginx and with
# the storage peer (s3s-fs), on this machine, over loopback. One command:
#
#   bench/run.sh            # every benchmark; load runs of 5 rounds x 5 s per target (about 12 minutes)
#   bench/run.sh --quick    # 1 round of 3 s per target, fewer samples (about 1.5 minutes)
#
# It installs what is missing (nginx and wrk from Debian, s3s-fs as
# scripts/test.sh does), builds mediagate with `cargo build --release`,
# creates the data once (target/bench-data, reused), starts every server on
# 127.0.0.1, runs the benchmarks, stops everything it started, and prints a
# markdown table, also written to target/bench/results.md (raw figures in
# target/bench/raw/). A benchmark reports; it never fails the run: a problem
# is an "n/a (why)" in the table, and the exit code is 0 unless the suite
# itself could not be set up.
#
# Environment:
#   MEDIAGATE_BIN            use this binary instead of building target/release/mediagate
#   MEDIAGATE_BENCH_CACHE    auto (default): write [cache] sections when the binary accepts them
#                            (`mediagate check`); 1: always; 0: never (pass-through figures)
#   MEDIAGATE_BENCH_PIN      1 (default): servers on CPU 0, load generators on CPU 1 (taskset);
#                            0: no pinning (everything shares every CPU)
#   MEDIAGATE_BENCH_ACCESS_LOG  1 (default): mediagate and nginx both write their access log
#                            (to files under the run dir); 0: both off (RUST_LOG=warn, access_log off)
#   MEDIAGATE_BENCH_DATA     where the data files live (default target/bench-data)
#   MEDIAGATE_BENCH_SLICE_MIB  slice size in MiB for mediagate's [cache] and nginx's `slice` (default 1)
#   MEDIAGATE_BENCH_ONLY     space-separated benchmark numbers to run, e.g. "1 2" (default: all)
#   MEDIAGATE_BENCH_BOTH_MODES  1 (default): after the benchmarks, the hot rows (1, 7 and the cold
#                            64 MiB reads of 3) again in the other pinning mode; 0: one mode only
#   MEDIAGATE_PEERS          where s3s-fs is installed (default ~/.cache/mediagate/peers)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

QUICK=false
for arg in "$@"; do
    case "$arg" in
    --quick) QUICK=true ;;
    -h | --help)
        sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "bench/run.sh: unknown argument $arg (try --help)" >&2
        exit 2
        ;;
    esac
done

if $QUICK; then
    DUR=3s ROUNDS=1 WARM=0 REPS=3 SMALL_REPS=5 SEEKS=20 SLOW_SECS=2
else
    DUR=5s ROUNDS=5 WARM=1 REPS=5 SMALL_REPS=15 SEEKS=50 SLOW_SECS=4
fi
WRK_CONNS=64       # benchmark 1
WRK_CONNS_LARGE=4  # benchmark 2
BURST=200          # benchmark 5
SEEK_LEN=262144    # benchmark 6: 256 KiB per seek
SEEK_SEED=3        # the same offsets for mediagate and nginx
SLOW_RATE=50M      # benchmark 4: the slow client's rate (curl --limit-rate)

# The [cache] sections, written only when the binary accepts them. The slice
# size is also nginx's `slice` (default 1 MiB both), so that benchmarks 5 and
# 6 compare like with like; objects up to one slice are kept whole.
SLICE_MIB="${MEDIAGATE_BENCH_SLICE_MIB:-1}"
CACHE_MAIN="[cache]
max_bytes = \"1GiB\"
max_object_bytes = \"${SLICE_MIB}MiB\"
slice_bytes = \"${SLICE_MIB}MiB\"
ttl = \"5m\""
CACHE_BUDGET="[cache]
max_bytes = \"256MiB\"
max_object_bytes = \"${SLICE_MIB}MiB\"
slice_bytes = \"${SLICE_MIB}MiB\"
ttl = \"5m\""
CACHE_OFF='[cache]
enabled = false'

PEERS="${MEDIAGATE_PEERS:-$HOME/.cache/mediagate/peers}"
S3S_VERSION="0.14.1"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
S3_ACCESS_KEY="mediagate-bench"
S3_SECRET_KEY="mediagate-bench-secret-0123456789"
BUCKET="bench"
DATA="${MEDIAGATE_BENCH_DATA:-$ROOT/target/bench-data}"
OUT="$ROOT/target/bench"
RAW="$OUT/raw"
PIN="${MEDIAGATE_BENCH_PIN:-1}"
ACCESS_LOG="${MEDIAGATE_BENCH_ACCESS_LOG:-1}"
CACHE_MODE="${MEDIAGATE_BENCH_CACHE:-auto}"
ONLY="${MEDIAGATE_BENCH_ONLY:-1 2 3 4 5 6 7}"
BOTH_MODES="${MEDIAGATE_BENCH_BOTH_MODES:-1}"
H2_CONNS=16 H2_STREAMS=10 # benchmark 7: h2load, h2c with prior knowledge
TOOLS=(python3 -B "$ROOT/bench/tools.py") # -B: no __pycache__ in the tree

wants() { [[ " $ONLY " == *" $1 "* ]]; }

# Issue 10's cache rows live in their own file, which defines cache_rows
# (called after the other benchmarks) and reports through extra_row.
# shellcheck source=/dev/null
[[ -f "$ROOT/bench/cache_rows.sh" ]] && source "$ROOT/bench/cache_rows.sh"

# ---------------------------------------------------------------- cleanup
PIDS=()
RUN=""
cleanup() {
    stop_pids
    [[ -n "$RUN" && -d "$RUN" ]] && rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop PID: stops one server this script started, and forgets it.
stop() {
    local pid=$1 keep=() p
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ "$p" != "$pid" ]] && keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# set_pinning 1|0: servers on CPU 0, clients on CPU 1 (when pinned and there
# are 2+ CPUs), or no pinning. Sets PIN, SRV and CLI.
SRV=()
CLI=()
set_pinning() {
    PIN=$1
    SRV=()
    CLI=()
    if [[ "$PIN" == 1 ]] && (($(nproc) >= 2)) && command -v taskset >/dev/null; then
        SRV=(taskset -c 0)
        CLI=(taskset -c 1)
    else
        PIN=0
    fi
}
set_pinning "$PIN"

# ---------------------------------------------------------------- servers


S3_PORT=""
start_s3s() {
    S3_PORT=${1:-$(free_port)}
    "${SRV[@]}" "$S3S_BIN" --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_ACCESS_KEY" \
        --secret-key "$S3_SECRET_KEY" "$DATA/s3" >"$RUN/s3s-fs.log" 2>&1 &
    PIDS+=($!)
    S3S_PID=$!
    wait_http $! "$S3_PORT" "$RUN/s3s-fs.log" s3s-fs || return 1
    log "s3s-fs on 127.0.0.1:$S3_PORT (pid ${PIDS[-1]}, data in $DATA/s3)"
}

# start_relay NAME TARGET_PORT: sets RELAY_PORT[NAME], RELAY_CTL[NAME].
declare -A RELAY_PORT RELAY_CTL
start_relay() {
    local name=$1 target=$2 line pid
    "${SRV[@]}" python3 "$ROOT/bench/count_relay.py" --target "127.0.0.1:$target" \
        >"$RUN/relay-$name.out" 2>"$RUN/relay-$name.err" &
    pid=$!
    PIDS+=("$pid")
    line=$(wait_line "$pid" "$RUN/relay-$name.out" 'listening on [0-9.]+:[0-9]+ control on [0-9.]+:[0-9]+') || {
        log "relay $name did not start: $(cat "$RUN/relay-$name.err")"
        return 1
    }
    RELAY_PORT[$name]=$(sed -E 's/listening on [0-9.]+:([0-9]+) .*/\1/' <<<"$line")
    RELAY_CTL[$name]="http://127.0.0.1:$(sed -E 's/.*control on [0-9.]+:([0-9]+)/\1/' <<<"$line")"
    log "relay $name on 127.0.0.1:${RELAY_PORT[$name]} -> 127.0.0.1:$target (pid $pid)"
}

NGX_STATIC="" NGX_CACHE="" NGX_SLICE="" NGX_H2="" NGX_RELAY=""
start_nginx() {
    local dir="$RUN/nginx" workers=auto user="" alog="access_log $RUN/nginx/access.log;"
    mkdir -p "$dir"/{tmp,cache,slices}
    [[ "$PIN" == 1 ]] && workers=1
    [[ $(id -u) -eq 0 ]] && user="user root;"
    [[ "$ACCESS_LOG" == 1 ]] || alog="access_log off;"
    cat >"$dir/nginx.conf" <<EOF
# Written by bench/run.sh.
$user
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    $alog
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    proxy_cache_path $dir/cache levels=1:2 keys_zone=hot:16m max_size=4g inactive=1h use_temp_path=off;
    proxy_cache_path $dir/slices levels=1:2 keys_zone=slices:16m max_size=4g inactive=1h use_temp_path=off;

    upstream static_origin { server 127.0.0.1:$NGX_STATIC; keepalive 64; }
    upstream relayed_origin { server 127.0.0.1:${RELAY_PORT[nginx]:-$NGX_STATIC}; keepalive 64; }

    # The static peer: the files s3s-fs serves, straight from disk with sendfile.
    server {
        listen 127.0.0.1:$NGX_STATIC;
        root $DATA/s3/$BUCKET;
        location / { }
    }
    # The same over h2c (HTTP/2 with prior knowledge: nginx 1.22 \`listen ... http2\` without TLS).
    server {
        listen 127.0.0.1:$NGX_H2 http2;
        root $DATA/s3/$BUCKET;
        location / { }
    }
    # proxy_cache in front of the static server (nginx cannot sign SigV4 for s3s-fs; for hits the origin is idle).
    server {
        listen 127.0.0.1:$NGX_CACHE;
        location / {
            proxy_pass http://static_origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache hot;
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
            add_header Cache-Status "nginx; \$upstream_cache_status";
        }
    }
    # A plain relay to s3s-fs (benchmark 3's reference for the cost of one
    # proxy hop): the client signs for s3s-fs's host and nginx passes the
    # request on unchanged; unbuffered, so bytes go on as they arrive.
    server {
        listen 127.0.0.1:$NGX_RELAY;
        location / {
            proxy_pass http://127.0.0.1:$S3_PORT;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_buffering off;
        }
    }
    # proxy_cache + slice with cache lock, through the counting relay to the static server.
    server {
        listen 127.0.0.1:$NGX_SLICE;
        location / {
            slice ${SLICE_MIB}m;
            proxy_cache slices;
            proxy_cache_key \$uri\$slice_range;
            proxy_set_header Range \$slice_range;
            proxy_cache_valid 200 206 1h;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 60s;
            proxy_cache_lock_age 60s;
            proxy_pass http://relayed_origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header Cache-Status "nginx; \$upstream_cache_status";
        }
    }
}
EOF
    "${SRV[@]}" nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    PIDS+=($!)
    wait_http $! "$NGX_STATIC" "$dir/error.log" nginx || return 1
    NGX_PID=${PIDS[-1]}
    log "nginx: static 127.0.0.1:$NGX_STATIC (h2c $NGX_H2), proxy_cache 127.0.0.1:$NGX_CACHE, slice 127.0.0.1:$NGX_SLICE (pid ${PIDS[-1]})"
}

# mg_config FILE UPSTREAM_PORT CACHE_TOML: a bench config for mediagate.
mg_config() {
    local file=$1 port=$2 cache=$3
    cat >"$file" <<EOF
# Written by bench/run.sh.
[server]
listen = "127.0.0.1:0"
# the load comes from one address: no per-client cap (as behind a CDN)
max_connections_per_ip = 0

$cache

EOF
    s3_bench_integration bench "$port" "$BUCKET" >>"$file"
}

# start_mg NAME CONFIG: sets MG_URL[NAME] (base URL) and MG_PID[NAME].
declare -A MG_URL MG_PID
start_mg() {
    local name=$1 config=$2 pid addr level=info
    [[ "$ACCESS_LOG" == 1 ]] || level=warn
    RUST_LOG="${RUST_LOG:-$level}" "${SRV[@]}" "$MG" serve --config "$config" \
        >"$RUN/mg-$name.out" 2>"$RUN/mg-$name.log" &
    pid=$!
    PIDS+=("$pid")
    addr=$(wait_line "$pid" "$RUN/mg-$name.out" 'listening on http://[0-9.]+:[0-9]+') || {
        log "mediagate ($name) did not start; its log:"
        tail -n 20 "$RUN/mg-$name.log" | sed 's/^/    /' >&2
        return 1
    }
    MG_URL[$name]="${addr#listening on }"
    MG_PID[$name]=$pid
    log "mediagate ($name) on ${MG_URL[$name]} (pid $pid)"
}

# ---------------------------------------------------------------- data
# Files live in $DATA/s3/$BUCKET: s3s-fs serves them as s3://bench/<name>,
# nginx serves the same files. Random bytes for the small ones; large ones
# repeat a 1 MiB random block (written at disk speed, not urandom speed).
make_file() {
    local name=$1 bytes=$2 path="$DATA/s3/$BUCKET/$1"
    [[ -f "$path" && $(stat -c %s "$path") -eq $bytes ]] && return 0
    log "creating $name ($bytes bytes)"
    python3 - "$path" "$bytes" <<'EOF' || return 1
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
block = os.urandom(min(n, 1 << 20))
with open(path + ".tmp", "wb") as f:
    left = n
    while left:
        k = min(left, len(block))
        f.write(block[:k])
        left -= k
os.replace(path + ".tmp", path)
EOF
}

# link NAME TARGET: another key for the same bytes (a cold key for a cache).
link() {
    local d="$DATA/s3/$BUCKET"
    [[ "$d/$1" -ef "$d/$2" ]] || ln -f "$d/$2" "$d/$1"
}

make_data() {
    mkdir -p "$DATA/s3/$BUCKET"
    make_file small.bin $((16 * 1024)) &&
        make_file large.bin $((64 * 1024 * 1024)) &&
        make_file burst.bin 1000000 &&
        make_file burst-sliced.bin $((8 * 1024 * 1024)) &&
        make_file seek-1g.bin $((1024 * 1024 * 1024)) &&
        make_file stream-2g.bin $((2048 * 1024 * 1024)) || return 1
    link cached-2g.bin stream-2g.bin
    link slow-2g.bin stream-2g.bin
    local i
    for ((i = 0; i <= 15; i++)); do
        link "cold-small-$i.bin" small.bin
        ((i <= 10)) && link "cold-large-$i.bin" large.bin
    done
    # s3s-fs computes the MD5 of the whole file on every GET of a file it did
    # not write itself (1 GiB: seconds per request); give it the ETag it
    # would have stored on upload.
    "${TOOLS[@]}" etags "$DATA/s3" "$BUCKET"
}

# ---------------------------------------------------------------- results
mkdir -p "$RAW"
rm -f "$RAW"/*
# na NAME WHY: this figure is not available, and why.
na() {
    printf '%s\n' "$2" >"$RAW/$1.na"
    log "n/a: $1: $2"
}
# save NAME: stdin (one JSON object) is the figure NAME.
save() {
    local tmp
    tmp=$(cat)
    if [[ -z "$tmp" ]] || ! python3 -c 'import json,sys; json.loads(sys.argv[1])' "$tmp" 2>/dev/null; then
        na "$1" "no result"
        return 1
    fi
    printf '%s\n' "$tmp" >"$RAW/$1.json"
}
meta() { printf '%s\t%s\n' "$1" "$2" >>"$RAW/meta.tsv"; }

# ---------------------------------------------------------------- benchmarks
# wrk_rounds CONNS NAME=URL...: ROUNDS rounds; in each, every target in turn
# (so that a change in the machine's load hits them all alike); each figure
# is the median over the rounds. One warm-up run per target first (discarded).
wrk_rounds() {
    local conns=$1 threads=1 r spec name url files
    shift
    [[ "$PIN" == 1 ]] || threads=2
    for spec in "$@"; do
        url=${spec#*=}
        curl -s -o /dev/null --max-time 30 "$url" # fills a cache
        if ((WARM)); then
            timeout 30 "${CLI[@]}" wrk -t"$threads" -c"$conns" -d2s "$url" >/dev/null 2>&1
        fi
    done
    for ((r = 1; r <= ROUNDS; r++)); do
        for spec in "$@"; do
            name=${spec%%=*} url=${spec#*=}
            timeout 120 "${CLI[@]}" wrk -t"$threads" -c"$conns" -d"$DUR" --latency "$url" >"$RAW/$name.r$r.wrk" 2>&1 ||
                log "wrk failed for $name (round $r): $(tail -n1 "$RAW/$name.r$r.wrk")"
        done
    done
    for spec in "$@"; do
        name=${spec%%=*}
        files=()
        for ((r = 1; r <= ROUNDS; r++)); do files+=("$RAW/$name.r$r.wrk"); done
        "${TOOLS[@]}" wrk "${files[@]}" | save "$name"
    done
}

bench1() {
    header "1. cache-hit small object (16 KiB), $WRK_CONNS connections, $ROUNDS x $DUR each"
    wrk_rounds "$WRK_CONNS" "b1_mg=${MG_URL[main]}/s3/$BUCKET/small.bin" \
        "b1_static=http://127.0.0.1:$NGX_STATIC/small.bin" "b1_pcache=http://127.0.0.1:$NGX_CACHE/small.bin"
}

bench2() {
    header "2. cache-hit large object (64 MiB), $WRK_CONNS_LARGE connections, $ROUNDS x $DUR each"
    wrk_rounds "$WRK_CONNS_LARGE" "b2_mg=${MG_URL[main]}/s3/$BUCKET/large.bin" \
        "b2_static=http://127.0.0.1:$NGX_STATIC/large.bin"
}

# timed_get WHO SIZE URL [curl args]: one line "WHO SIZE ttfb total bytes status".
timed_get() {
    local who=$1 size=$2 url=$3
    shift 3
    printf '%s %s ' "$who" "$size"
    "${CLI[@]}" curl -s -o /dev/null --max-time 60 "$@" \
        -w '%{time_starttransfer} %{time_total} %{size_download} %{http_code}\n' "$url" || echo "0 0 0 000"
}

bench3() {
    header "3. cold miss through mediagate vs straight from s3s-fs ($SMALL_REPS x 16 KiB, $REPS x 64 MiB each, alternating)"
    local i f="$RAW/b3.txt" sig=(--aws-sigv4 "aws:amz:us-east-1:s3" -u "$S3_ACCESS_KEY:$S3_SECRET_KEY"
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    : >"$f"
    # One request each way first, so that both have a warm connection path
    # and the files are in the page cache; not counted.
    timed_get warm small "${MG_URL[main]}/s3/$BUCKET/cold-small-0.bin" >/dev/null
    timed_get warm small "http://127.0.0.1:$S3_PORT/$BUCKET/small.bin" "${sig[@]}" >/dev/null
    timed_get warm large "${MG_URL[main]}/s3/$BUCKET/cold-large-0.bin" >/dev/null
    timed_get warm large "http://127.0.0.1:$S3_PORT/$BUCKET/large.bin" "${sig[@]}" >/dev/null
    for ((i = 1; i <= SMALL_REPS; i++)); do
        timed_get mg small "${MG_URL[main]}/s3/$BUCKET/cold-small-$i.bin" >>"$f"
        timed_get direct small "http://127.0.0.1:$S3_PORT/$BUCKET/small.bin" "${sig[@]}" >>"$f"
    done
    cold_large "$f" 1
    "${TOOLS[@]}" coldmiss "$f" | save b3
}

# cold_large FILE FIRST: REPS cold 64 MiB reads through mediagate (keys
# cold-large-FIRST...) alternating with the same read straight from s3s-fs.
cold_large() {
    local f=$1 first=$2 i sig=(--aws-sigv4 "aws:amz:us-east-1:s3" -u "$S3_ACCESS_KEY:$S3_SECRET_KEY"
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    for ((i = first; i < first + REPS; i++)); do
        timed_get mg large "${MG_URL[main]}/s3/$BUCKET/cold-large-$i.bin" >>"$f"
        timed_get direct large "http://127.0.0.1:$S3_PORT/$BUCKET/large.bin" "${sig[@]}" >>"$f"
        timed_get nginx large "http://127.0.0.1:$NGX_RELAY/$BUCKET/large.bin" "${sig[@]}" -H "Host: 127.0.0.1:$S3_PORT" >>"$f"
    done
}

# rss_run NAME CACHE_TOML KEY [curl args]: a fresh mediagate, one 2 GiB GET, its RSS.
rss_run() {
    local name=$1 cache=$2 key=$3
    shift 3
    mg_config "$RUN/$name.toml" "$S3_PORT" "$cache"
    start_mg "$name" "$RUN/$name.toml" || {
        na "$name" "mediagate did not start"
        return
    }
    local url="${MG_URL[$name]}/s3/$BUCKET/$key"
    curl -s -o /dev/null --max-time 5 "${MG_URL[$name]}/s3/$BUCKET/small.bin" # warm the pools
    sleep 0.5
    "${TOOLS[@]}" rss-during "${MG_PID[$name]}" -- "${CLI[@]}" curl -s -o /dev/null "$@" \
        -w '%{http_code} %{size_download} %{speed_download}' "$url" | save "$name"
    stop "${MG_PID[$name]}"
}

bench4() {
    header "4. peak RSS: 2 GiB streamed uncached, to a slow client, and cached in slices"
    local off="" budget=""
    if $CACHE_ON; then
        off=$CACHE_OFF_TOML
        budget=$CACHE_BUDGET
    fi
    rss_run b4_stream "$off" stream-2g.bin --max-time 120
    rss_run b4_slow "$off" slow-2g.bin --limit-rate "$SLOW_RATE" --max-time "$SLOW_SECS"
    if $CACHE_ON; then
        rss_run b4_cache "$budget" cached-2g.bin --max-time 120
    else
        na b4_cache "no [cache] in this binary"
    fi
}

# burst_run NAME URL RELAY: BURST concurrent GETs of a cold object, upstream requests counted at RELAY.
burst_run() {
    local name=$1 url=$2 relay=$3 b
    "${TOOLS[@]}" stats "${RELAY_CTL[$relay]}" reset >/dev/null || {
        na "$name" "relay not answering"
        return
    }
    b=$("${CLI[@]}" "${TOOLS[@]}" burst "$url" "$BURST") || {
        na "$name" "burst client failed"
        return
    }
    sleep 0.5 # let background fills finish
    python3 -c 'import json,sys; print(json.dumps({"burst": json.loads(sys.argv[1]), "relay": json.loads(sys.argv[2])}))' \
        "$b" "$("${TOOLS[@]}" stats "${RELAY_CTL[$relay]}")" | save "$name"
}

bench5() {
    header "5. $BURST concurrent requests for one cold object: upstream requests at a counting relay"
    burst_run b5_mg "${MG_URL[relay]}/s3/$BUCKET/burst.bin" mg
    burst_run b5_nginx "http://127.0.0.1:$NGX_SLICE/burst.bin" nginx
    burst_run b5s_mg "${MG_URL[relay]}/s3/$BUCKET/burst-sliced.bin" mg
    burst_run b5s_nginx "http://127.0.0.1:$NGX_SLICE/burst-sliced.bin" nginx
}

# seek_run NAME URL RELAY
seek_run() {
    local name=$1 url=$2 relay=$3 s
    "${TOOLS[@]}" stats "${RELAY_CTL[$relay]}" reset >/dev/null || {
        na "$name" "relay not answering"
        return
    }
    s=$("${CLI[@]}" "${TOOLS[@]}" seeks "$url" $((1024 * 1024 * 1024)) "$SEEKS" "$SEEK_LEN" "$SEEK_SEED") || {
        na "$name" "seek client failed"
        return
    }
    python3 -c 'import json,sys; print(json.dumps({"seeks": json.loads(sys.argv[1]), "relay": json.loads(sys.argv[2])}))' \
        "$s" "$("${TOOLS[@]}" stats "${RELAY_CTL[$relay]}")" | save "$name"
}

bench6() {
    header "6. $SEEKS random seeks of 256 KiB into a cold 1 GiB object"
    seek_run b6_mg "${MG_URL[relay]}/s3/$BUCKET/seek-1g.bin" mg
    seek_run b6_nginx "http://127.0.0.1:$NGX_SLICE/seek-1g.bin" nginx
    seek_upstreams
}

# seek_upstreams: the two upstreams alone, so that the seek rows can be read
# net of the peer: the time to first byte of a one-slice range (what a cold
# seek asks upstream) from s3s-fs (mediagate's upstream, signed) and from
# the nginx static server (nginx slice's upstream), alternating.
seek_upstreams() {
    local i off f="$RAW/b6_up.txt" slice=$((SLICE_MIB * 1024 * 1024)) sig=(--aws-sigv4 "aws:amz:us-east-1:s3"
        -u "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    : >"$f"
    for ((i = 0; i < SEEKS; i++)); do
        off=$(((i * 7919 % (1024 / SLICE_MIB)) * slice))
        timed_get s3s range "http://127.0.0.1:$S3_PORT/$BUCKET/seek-1g.bin" -r "$off-$((off + slice - 1))" "${sig[@]}" >>"$f"
        timed_get nginx range "http://127.0.0.1:$NGX_STATIC/seek-1g.bin" -r "$off-$((off + slice - 1))" >>"$f"
    done
    "${TOOLS[@]}" coldmiss "$f" | save b6_up
}

# h2_rounds NAME=URL...: like wrk_rounds, over h2c with h2load ($H2_CONNS
# connections x $H2_STREAMS streams), each figure the median over the rounds.
h2_rounds() {
    local r spec name url files secs=${DUR%s}
    for spec in "$@"; do
        url=${spec#*=}
        curl -s -o /dev/null --http2-prior-knowledge --max-time 30 "$url" # fills a cache
        if ((WARM)); then
            timeout 30 "${CLI[@]}" h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D2 "$url" >/dev/null 2>&1
        fi
    done
    for ((r = 1; r <= ROUNDS; r++)); do
        for spec in "$@"; do
            name=${spec%%=*} url=${spec#*=}
            timeout 120 "${CLI[@]}" h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D"$secs" "$url" >"$RAW/$name.r$r.h2load" 2>&1 ||
                log "h2load failed for $name (round $r): $(tail -n1 "$RAW/$name.r$r.h2load")"
        done
    done
    for spec in "$@"; do
        name=${spec%%=*}
        files=()
        for ((r = 1; r <= ROUNDS; r++)); do files+=("$RAW/$name.r$r.h2load"); done
        "${TOOLS[@]}" h2load "${files[@]}" | save "$name"
    done
}

bench7() {
    header "7. cache-hit small object (16 KiB) over h2c, $H2_CONNS connections x $H2_STREAMS streams, $ROUNDS x $DUR each"
    h2_rounds "b7_mg${SUFFIX:-}=${MG_URL[main]}/s3/$BUCKET/small.bin" \
        "b7_static${SUFFIX:-}=http://127.0.0.1:$NGX_H2/small.bin"
}

# other_mode: the hot rows again in the other pinning mode (issue 10 wants
# both): s3s-fs, nginx and mediagate restarted pinned or not, then
# benchmarks 1 and 7 and the cold 64 MiB reads of 3, saved with the suffix
# ".alt" (the report labels them with the mode).
other_mode() {
    local was=$PIN f="$RAW/b3.alt.txt"
    set_pinning $((1 - PIN))
    if [[ "$PIN" == "$was" ]]; then
        log "no other pinning mode here (taskset or a second CPU missing)"
        return
    fi
    header "the hot rows again, $([[ "$PIN" == 1 ]] && echo pinned || echo unpinned)"
    meta pinning_alt "$([[ "$PIN" == 1 ]] && echo "servers on CPU 0, clients on CPU 1 (taskset); nginx 1 worker" || echo "none; nginx worker_processes auto")"
    stop "${MG_PID[main]}"
    [[ -n "${MG_PID[relay]:-}" ]] && stop "${MG_PID[relay]}"
    stop "$NGX_PID"
    stop "$S3S_PID"
    start_s3s "$S3_PORT" && start_nginx && start_mg main "$RUN/main.toml" || {
        na b1_mg.alt "the servers did not restart in the other mode"
        return
    }
    local SUFFIX=.alt
    if wants 1; then
        header "1. (other mode) cache-hit small object (16 KiB), $WRK_CONNS connections"
        wrk_rounds "$WRK_CONNS" "b1_mg.alt=${MG_URL[main]}/s3/$BUCKET/small.bin" \
            "b1_static.alt=http://127.0.0.1:$NGX_STATIC/small.bin" "b1_pcache.alt=http://127.0.0.1:$NGX_CACHE/small.bin"
    fi
    wants 7 && bench7
    if wants 3; then
        header "3. (other mode) cold 64 MiB reads, $REPS each way"
        : >"$f"
        cold_large "$f" 6
        "${TOOLS[@]}" coldmiss "$f" | save b3.alt
    fi
    set_pinning "$was"
}

# extra_row LABEL MEDIAGATE PEER RATIO TARGET MET: a row for the report's
# table from a sourced benchmark (bench/cache_rows.sh), in the order written.
extra_row() {
    local IFS=$'\t'
    printf '%s\n' "$*" >>"$RAW/extra_rows.tsv"
}

# ---------------------------------------------------------------- main
report() {
    header "results"
    "${TOOLS[@]}" report "$RAW" "$OUT/results.md"
    log "(also in $OUT/results.md; raw figures in $RAW)"
}

main() {
    local t0=$SECONDS
    RUN=$(mktemp -d -t mediagate-bench.XXXXXX)
    : >"$RAW/meta.tsv"
    meta started "$(date -u '+%Y-%m-%d %H:%M UTC')"
    meta mode "$($QUICK && echo "--quick" || echo "full"): wrk $ROUNDS round(s) x $DUR per target (median), cold samples $SMALL_REPS x 16 KiB + $REPS x 64 MiB, $SEEKS seeks"
    meta machine "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
    meta pinning "$([[ "$PIN" == 1 ]] && echo "servers on CPU 0, clients on CPU 1 (taskset); nginx 1 worker" || echo "none; nginx worker_processes auto")"
    meta slice "${SLICE_MIB} MiB (mediagate slice_bytes and max_object_bytes when [cache] is on; nginx slice)"
    printf '{"slice_mib": %s, "pin": %s}\n' "$SLICE_MIB" "$PIN" >"$RAW/params.json"
    meta access_log "$([[ "$ACCESS_LOG" == 1 ]] && echo "on for mediagate and nginx (to files)" || echo "off for both")"

    header "setup"
    ensure_debs nginx wrk curl nghttp2-client || {
        na setup "nginx/wrk/h2load could not be installed"
        report
        exit 1
    }
    install_s3s || {
        na setup "s3s-fs could not be installed"
        report
        exit 1
    }
    if [[ -n "${MEDIAGATE_BIN:-}" ]]; then
        MG=$MEDIAGATE_BIN
    else
        log "cargo build --release"
        if ! cargo build --release 2>"$RUN/build.log"; then
            tail -n 30 "$RUN/build.log" >&2
            na setup "cargo build --release failed"
            report
            exit 1
        fi
        MG="$ROOT/target/release/mediagate"
    fi
    if [[ -n "${MEDIAGATE_BIN:-}" ]]; then
        meta binary "$MG ($("$MG" --version 2>/dev/null), given by MEDIAGATE_BIN)"
    else
        meta binary "target/release/mediagate ($("$MG" --version 2>/dev/null), git $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo " + uncommitted changes in src/"))"
    fi
    make_data || {
        na setup "the data files could not be created in $DATA"
        report
        exit 1
    }

    # Does this binary take [cache]? `check` on a local integration (no network).
    CACHE_ON=false
    CACHE_OFF_TOML=""
    local probe="$RUN/probe.toml"
    printf '[server]\nlisten = "127.0.0.1:0"\n\n%s\n\n[[integration]]\nname = "probe"\ntype = "local"\nroot = "%s"\nbuckets = ["%s"]\n' \
        "$CACHE_MAIN" "$DATA/s3" "$BUCKET" >"$probe"
    local why rc
    why=$("$MG" check --config "$probe" 2>&1 >/dev/null)
    rc=$?
    case "$CACHE_MODE" in
    0) meta cache "off (MEDIAGATE_BENCH_CACHE=0): pass-through figures" ;;
    1)
        CACHE_ON=true
        meta cache "forced on (MEDIAGATE_BENCH_CACHE=1)"
        ;;
    *)
        if ((rc == 0)); then
            CACHE_ON=true
            meta cache "[cache] accepted by \`mediagate check\`"
        else
            meta cache "[cache] not accepted by this binary ($(grep -m1 -i cache <<<"$why" | sed 's/^ *//' | cut -c1-160)): pass-through figures"
        fi
        ;;
    esac
    if $CACHE_ON; then
        sed -i "/^\[cache\]/,/^$/d" "$probe"
        printf '%s\n' "$CACHE_OFF" >>"$probe"
        if "$MG" check --config "$probe" >/dev/null 2>&1; then
            CACHE_OFF_TOML=$CACHE_OFF
        else
            meta cache_off "\`[cache] enabled = false\` not accepted: the 'uncached' stream of benchmark 4 ran with the default cache"
        fi
    fi

    start_s3s || {
        na setup "s3s-fs did not start"
        report
        exit 1
    }
    NGX_STATIC=$(free_port) NGX_CACHE=$(free_port) NGX_SLICE=$(free_port) NGX_H2=$(free_port) NGX_RELAY=$(free_port)
    start_relay mg "$S3_PORT" || true
    start_relay nginx "$NGX_STATIC" || true
    start_nginx || {
        na setup "nginx did not start"
        report
        exit 1
    }

    local main_cache=""
    $CACHE_ON && main_cache=$CACHE_MAIN
    mg_config "$RUN/main.toml" "$S3_PORT" "$main_cache"
    mg_config "$RUN/relay.toml" "${RELAY_PORT[mg]:-1}" "$main_cache"
    start_mg main "$RUN/main.toml" || {
        na setup "mediagate did not start"
        report
        exit 1
    }
    [[ -n "${RELAY_PORT[mg]:-}" ]] && start_mg relay "$RUN/relay.toml"

    # What the cache says on a second GET of the same object.
    local verdict
    curl -s -o /dev/null --max-time 5 "${MG_URL[main]}/s3/$BUCKET/small.bin"
    verdict=$(curl -s -o /dev/null -D - --max-time 5 "${MG_URL[main]}/s3/$BUCKET/small.bin" | tr -d '\r' | sed -n 's/^[Cc]ache-[Ss]tatus: //p')
    meta cache_verdict "second GET of small.bin: Cache-Status: ${verdict:-none}"
    if [[ "$verdict" == *hit* ]]; then
        meta cache_active yes
    else
        meta cache_active "no: the second GET was not a hit, so every figure below is pass-through (each request goes to s3s-fs)"
    fi
    log "setup done ($((SECONDS - t0)) s); cache: $($CACHE_ON && echo on || echo off), second GET: ${verdict:-no Cache-Status}"

    local n
    for n in 1 2 3 4 5 6 7; do
        wants "$n" || continue
        if [[ $n == 5 || $n == 6 ]] && [[ -z "${MG_URL[relay]:-}" || -z "${RELAY_CTL[nginx]:-}" ]]; then
            na "b${n}_mg" "the counting relay or the relayed mediagate did not start"
            continue
        fi
        "bench$n"
    done
    # Issue 10's cache rows (hit ratio, RSS, seek amplification): bench/cache_rows.sh defines cache_rows.
    # They run before other_mode, which restarts the servers without the relayed mediagate they use.
    declare -F cache_rows >/dev/null && cache_rows
    [[ "$BOTH_MODES" == 1 ]] && other_mode
    meta duration "$((SECONDS - t0)) s"
    report
}

main "$@"
