# Shell functions shared by scripts/test.sh and bench/run.sh: logging, Debian
# packages, the S3 peer (s3s-fs) install, free ports, waiting for a server. Sourced, not run.
# The caller sets PEERS (the peers' install folder) and S3S_VERSION first.

log() { printf '%s\n' "$*" >&2; }
header() { printf '\n==== %s ====\n' "$*" >&2; }

APT_UPDATED=false
# ensure_debs PKG...: installs the Debian packages that are not installed yet.
ensure_debs() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    if ! $APT_UPDATED; then
        $sudo apt-get update -qq || return 1
        APT_UPDATED=true
    fi
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

S3S_BIN="$PEERS/s3s/bin/s3s-fs"
# install_s3s: s3s-fs $S3S_VERSION into $PEERS/s3s, unless it is there already.
install_s3s() {
    if [[ -x "$S3S_BIN" ]] && "$S3S_BIN" --version 2>/dev/null | grep -q "$S3S_VERSION"; then
        return 0
    fi
    header "installing s3s-fs $S3S_VERSION into $PEERS/s3s (about 2.5 minutes on 2 cores)"
    mkdir -p "$PEERS/s3s"
    # A target dir of its own so the project's target/ is not touched.
    CARGO_TARGET_DIR="$PEERS/s3s/target" cargo install s3s-fs --version "$S3S_VERSION" \
        --features binary --locked --root "$PEERS/s3s" || return 1
    rm -rf "$PEERS/s3s/target"
    [[ -x "$S3S_BIN" ]]
}

# free_port: prints a TCP port free on 127.0.0.1 now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_http PID PORT LOGFILE NAME: waits (up to 30 s) until 127.0.0.1:PORT
# answers HTTP (any status), or fails early if the process died.
wait_http() {
    local pid=$1 port=$2 logfile=$3 name=$4 i
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during start-up; its log:"
            sed 's/^/    /' "$logfile" >&2
            return 1
        fi
        if python3 - "$port" <<'EOF' 2>/dev/null; then
import sys, http.client
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=1)
c.request("GET", "/")
c.getresponse().read()
EOF
            return 0
        fi
        sleep 0.1
    done
    log "$name did not answer on 127.0.0.1:$port within 30 s; its log:"
    sed 's/^/    /' "$logfile" >&2
    return 1
}

# wait_line PID FILE REGEX [SECONDS]: prints the first match of REGEX in FILE
# once it appears (10 s at most unless SECONDS); fails early if PID exited.
wait_line() {
    local pid=$1 file=$2 re=$3 tries=$((${4:-10} * 10)) i m
    for ((i = 0; i < tries; i++)); do
        m=$(grep -oE "$re" "$file" 2>/dev/null | head -n1)
        [[ -n "$m" ]] && {
            echo "$m"
            return 0
        }
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_pids: stops every process in the PIDS array and waits for each.
stop_pids() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

# s3_bench_integration NAME PORT BUCKET: the [[integration]] table the bench
# scripts point at their s3s-fs (credentials from S3_ACCESS_KEY / S3_SECRET_KEY).
s3_bench_integration() {
    cat <<EOF
[[integration]]
name = "$1"
type = "s3"
endpoint = "127.0.0.1"
port = $2
tls = false
region = "us-east-1"
access_key_id = "$S3_ACCESS_KEY"
secret_access_key = "$S3_SECRET_KEY"
buckets = ["$3"]
EOF
}
