#!/usr/bin/env bash
# User-space instructions per request of a mediagate build, counted by
# valgrind's cachegrind: figures that the machine's load does not change,
# so a change can be judged on a busy machine (docs/BENCHMARKS.md, "Method").
#
#   bench/instructions.sh [BINARY]     (default: target/release/mediagate)
#
# The binary must keep its symbols for cg_annotate to name functions:
#   CARGO_PROFILE_RELEASE_STRIP=false cargo build --release
#
# Rows (each: two runs of N1 and N2 requests, the difference divided by
# N2 - N1, so start-up and the first fill cancel out):
#   h1    16 KiB cache hits, HTTP/1.1, h2load --h1 -c 64
#   h2c   16 KiB cache hits, h2c, h2load -c 16 -m 10
#   cold  64 MiB cold reads from s3s-fs, per MiB (one read against none)
# With MEDIAGATE_INSTR_ANNOTATE=1 the top functions of the difference are
# printed too (cg_diff, cg_annotate).
#
# Environment: MEDIAGATE_INSTR_ONLY ("h1 h2c cold"), MEDIAGATE_INSTR_N1
# (1000), MEDIAGATE_INSTR_N2 (11000).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MG=$(realpath "${1:-$ROOT/target/release/mediagate}")
ONLY="${MEDIAGATE_INSTR_ONLY:-h1 h2c cold}"
N1="${MEDIAGATE_INSTR_N1:-1000}"
N2="${MEDIAGATE_INSTR_N2:-11000}"
PEERS="${MEDIAGATE_PEERS:-$HOME/.cache/mediagate/peers}"
S3S_BIN="$PEERS/s3s/bin/s3s-fs"
S3S_VERSION="0.14.1"
S3_ACCESS_KEY="mediagate-bench"
S3_SECRET_KEY="mediagate-bench-secret-0123456789"
BUCKET="bench"
DATA="${MEDIAGATE_BENCH_DATA:-$ROOT/target/bench-data}"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

for tool in valgrind cg_annotate cg_diff h2load curl python3; do
    command -v "$tool" >/dev/null || {
        log "missing: $tool (Debian: valgrind, nghttp2-client, curl, python3)"
        exit 1
    }
done
install_s3s
RUN=$(mktemp -d)
PIDS=()
trap 'stop_pids; rm -rf "$RUN"' EXIT

mkdir -p "$DATA/s3/$BUCKET"
[[ -f "$DATA/s3/$BUCKET/small.bin" ]] || head -c 16384 /dev/urandom >"$DATA/s3/$BUCKET/small.bin"
[[ -f "$DATA/s3/$BUCKET/large.bin" ]] || head -c $((64 << 20)) /dev/urandom >"$DATA/s3/$BUCKET/large.bin"
for i in 1 2; do ln -f "$DATA/s3/$BUCKET/large.bin" "$DATA/s3/$BUCKET/instr-cold-$i.bin"; done

S3_PORT=$(free_port)
"$S3S_BIN" --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_ACCESS_KEY" \
    --secret-key "$S3_SECRET_KEY" "$DATA/s3" >"$RUN/s3s.log" 2>&1 &
PIDS+=($!)
wait_http $! "$S3_PORT" "$RUN/s3s.log" s3s-fs

cat >"$RUN/mg.toml" <<EOF
[server]
listen = "127.0.0.1:0"
max_connections_per_ip = 0

[cache]
max_bytes = "1GiB"
max_object_bytes = "1MiB"
slice_bytes = "1MiB"
ttl = "5m"

EOF
s3_bench_integration bench "$S3_PORT" "$BUCKET" >>"$RUN/mg.toml"

# counted NAME LOAD: mediagate under cachegrind, one warm-up GET of
# small.bin, then the LOAD command line (with {url} replaced); prints the
# instructions of the whole run and leaves cachegrind's file in $RUN/NAME.cg.
counted() {
    local name=$1 load=$2 pid addr
    RUST_LOG=info valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$RUN/$name.cg" \
        "$MG" serve --config "$RUN/mg.toml" >"$RUN/$name.out" 2>"$RUN/$name.log" &
    pid=$!
    # valgrind starts slowly: up to 60 s.
    addr=$(wait_line "$pid" "$RUN/$name.out" 'listening on http://[0-9.]+:[0-9]+' 60) || {
        tail "$RUN/$name.log" >&2
        return 1
    }
    local url="${addr#listening on }"
    curl -sf -o /dev/null "$url/s3/$BUCKET/small.bin"
    bash -c "${load//\{url\}/$url}" >"$RUN/$name.load" 2>&1 || { cat "$RUN/$name.load" >&2; return 1; }
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^summary:/ { print $2 }' "$RUN/$name.cg"
}

# row NAME N1 N2 UNIT LOAD1 LOAD2: prints "NAME <instructions per UNIT>".
row() {
    local name=$1 n1=$2 n2=$3 unit=$4 a b
    a=$(counted "$name-a" "$5") || return 1
    b=$(counted "$name-b" "$6") || return 1
    printf '%-5s %10.0f instructions per %s  (runs: %s, %s)\n' "$name" "$(((b - a) / (n2 - n1)))" "$unit" "$a" "$b"
    if [[ "${MEDIAGATE_INSTR_ANNOTATE:-0}" == 1 ]]; then
        cg_diff "$RUN/$name-a.cg" "$RUN/$name-b.cg" >"$RUN/$name.diff.cg"
        cg_annotate --auto=no --threshold=0.5 "$RUN/$name.diff.cg" | awk '/^Ir/ { on = 1 } on && NF { print }' | sed -n '1,45p' || true
    fi
}

printf 'binary: %s\n' "$MG"
for what in $ONLY; do
    case $what in
    h1) row h1 "$N1" "$N2" request "h2load --h1 -n $N1 -c 64 {url}/s3/$BUCKET/small.bin" \
        "h2load --h1 -n $N2 -c 64 {url}/s3/$BUCKET/small.bin" ;;
    h2c) row h2c "$N1" "$N2" request "h2load -n $N1 -c 16 -m 10 {url}/s3/$BUCKET/small.bin" \
        "h2load -n $N2 -c 16 -m 10 {url}/s3/$BUCKET/small.bin" ;;
    cold) row cold 0 64 MiB "true" "curl -sf -o /dev/null {url}/s3/$BUCKET/instr-cold-1.bin" ;;
    *) log "unknown row: $what" && exit 2 ;;
    esac
done
