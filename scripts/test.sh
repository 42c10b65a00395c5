#!/usr/bin/env bash
# Runs every check of the project: formatting, clippy, and all tests, the
# integration tests against real storage peers (s3s-fs for S3, Azurite for
# Azure Blob) that this script installs if missing and starts on free ports,
# and the browser tests (Debian's chromium and ffmpeg, playwright-core).
#
#   scripts/test.sh                       # fmt, clippy, every test
#   scripts/test.sh cargo test --test s3  # any command, with the peers up and the env set
#
# Environment:
#   MEDIAGATE_PEERS   where the peers are installed (default ~/.cache/mediagate/peers)
#                     (also playwright-core, for the headless-chromium tests)
#   CI=true           a peer that cannot be installed or started is a failure, not a skip
#   MEDIAGATE_TEST_REDBOT  the redbot command (installed into $MEDIAGATE_PEERS/redbot when unset)
#   MEDIAGATE_TEST_OPENAPI_VALIDATOR  the openapi-spec-validator command (installed into
#                     $MEDIAGATE_PEERS/openapi-spec-validator when unset)
#   MEDIAGATE_TEST_S3_ENDPOINT (+ _ACCESS_KEY, _SECRET_KEY, _REGION, _VHOST_DOMAIN)
#   MEDIAGATE_TEST_AZURE_URL (+ _ACCOUNT, _KEY)
#                     when already set, no local peer of that kind is started and
#                     the tests use the given server (e.g. a MinIO)
#   MEDIAGATE_TEST_KUBERNETES_VALIDATE  the kubernetes-validate command (installed into
#                     $MEDIAGATE_PEERS/kubernetes-validate when unset; tests/deploy_kubernetes.rs)
#   MEDIAGATE_TEST_HAPROXY, MEDIAGATE_TEST_NGINX  the haproxy and nginx commands (Debian's, installed
#                     when missing; tests/replicas.rs and tests/deploy_kubernetes.rs)
#   MEDIAGATE_TEST_BIN  run the black-box tests against this mediagate binary instead of cargo's
#                     build (e.g. target/release/mediagate for the figures of tests/replicas.rs)
#   MEDIAGATE_FUZZ_SECONDS  seconds per fuzz target in the fuzz step (default 30: with
#                     the nightly build of fuzz/, about 8-9 minutes; 0 skips the step)
#
# Safe to run again: installed peers are reused; servers it starts listen on
# 127.0.0.1 only and are stopped on exit, failure or interrupt.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PEERS="${MEDIAGATE_PEERS:-$HOME/.cache/mediagate/peers}"
S3S_VERSION="0.14.1"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
AZURITE_VERSION="3.37.0"
# The published Azurite development account key (not a secret).
AZURITE_ACCOUNT="devstoreaccount1"
AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Made-up credentials for the throwaway s3s-fs instance.
S3_ACCESS_KEY="mediagate-test"
S3_SECRET_KEY="mediagate-test-secret-0123456789"

IS_CI=false
[[ "${CI:-}" == "true" ]] && IS_CI=true


# A missing peer: fatal under CI, a warning (the tests that need it skip) otherwise.
peer_missing() {
    if $IS_CI; then
        log "FATAL: $* (CI=true: a missing peer is a failure, not a skip)"
        exit 1
    fi
    log "WARNING: $* -- the tests that need it will be skipped"
}

# ---------------------------------------------------------------- cleanup
PIDS=()
TMPDIRS=()
STEP_PID=""
cleanup() {
    if [[ -n "$STEP_PID" ]]; then
        kill "$STEP_PID" 2>/dev/null || true
    fi
    stop_pids
    if ((${#TMPDIRS[@]})); then
        rm -rf "${TMPDIRS[@]}"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- installs

ensure_rust_components() {
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
}


AZURITE_MAIN="$PEERS/azurite/node_modules/azurite/dist/src/blob/main.js"
azurite_installed_version() {
    local pkg="$PEERS/azurite/node_modules/azurite/package.json"
    [[ -f "$pkg" ]] || return 0
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg" | head -n1
}
install_azurite() {
    if [[ -f "$AZURITE_MAIN" && "$(azurite_installed_version)" == "$AZURITE_VERSION" ]]; then
        command -v node >/dev/null 2>&1 && return 0
    fi
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        ensure_debs nodejs npm || return 1
    fi
    header "installing Azurite $AZURITE_VERSION into $PEERS/azurite"
    mkdir -p "$PEERS/azurite"
    (cd "$PEERS/azurite" && npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION") || return 1
    [[ -f "$AZURITE_MAIN" ]]
}

# Browser tests: Debian's chromium, ffmpeg (ffprobe), openssl (test
# certificates), and playwright-core from npm (no browser download: it drives
# the Debian chromium).
PLAYWRIGHT_VERSION="1.65.1"
PLAYWRIGHT_DIR="$PEERS/playwright/node_modules/playwright-core"
playwright_installed_version() {
    [[ -f "$PLAYWRIGHT_DIR/package.json" ]] || return 0
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$PLAYWRIGHT_DIR/package.json" | head -n1
}
install_browser_tools() {
    ensure_debs chromium ffmpeg openssl fonts-liberation || return 1
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        ensure_debs nodejs npm || return 1
    fi
    if [[ "$(playwright_installed_version)" != "$PLAYWRIGHT_VERSION" ]]; then
        header "installing playwright-core $PLAYWRIGHT_VERSION into $PEERS/playwright"
        mkdir -p "$PEERS/playwright"
        (cd "$PEERS/playwright" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund \
            --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION") || return 1
    fi
    command -v chromium >/dev/null && command -v ffprobe >/dev/null && [[ -f "$PLAYWRIGHT_DIR/index.mjs" ]] || return 1
    export MEDIAGATE_TEST_CHROMIUM="$(command -v chromium)"
    export MEDIAGATE_TEST_FFPROBE="$(command -v ffprobe)"
    export MEDIAGATE_TEST_PLAYWRIGHT="$PLAYWRIGHT_DIR"
    log "browser tests: $("$MEDIAGATE_TEST_CHROMIUM" --version 2>/dev/null), playwright-core $PLAYWRIGHT_VERSION, $(ffprobe -version | head -n1 | cut -d' ' -f1-3)"
}

# A Python tool from PyPI in a venv of its own under $PEERS/<package>: installs
# PACKAGE==VERSION unless that version is there, then exports VAR=<its command>.
# A VAR set beforehand names a tool to use instead.
install_pip_tool() { # <package> <version> <command> <VAR> <what it is for>
    local package="$1" version="$2" command="$3" var="$4" what="$5"
    local venv="$PEERS/$package" bin="$PEERS/$package/bin/$command"
    if [[ -n "${!var:-}" ]]; then
        log "$package: using the given ${!var}"
        return 0
    fi
    if ! { [[ -x "$bin" ]] && "$venv/bin/pip" show "$package" 2>/dev/null | grep -x "Version: $version" >/dev/null; }; then
        header "installing $package $version into $venv ($what)"
        if ! python3 -m venv "$venv"; then
            ensure_debs python3-venv && python3 -m venv "$venv" || return 1
        fi
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version" || return 1
    fi
    [[ -x "$bin" ]] || return 1
    export "$var=$bin"
    log "$package $version: $bin"
}

# REDbot, the HTTP linter (tests/redbot.rs).
install_redbot() {
    install_pip_tool redbot 2.7.1 redbot MEDIAGATE_TEST_REDBOT "the HTTP linter of tests/redbot.rs"
}

# openapi-spec-validator (tests/openapi.rs checks docs/openapi.json with it).
install_openapi_validator() {
    install_pip_tool openapi-spec-validator 0.9.0 openapi-spec-validator MEDIAGATE_TEST_OPENAPI_VALIDATOR \
        "tests/openapi.rs checks docs/openapi.json with it"
}

# kubernetes-validate (tests/deploy_kubernetes.rs checks deploy/kubernetes/ against the Kubernetes
# schemas it ships, offline).
install_kubernetes_validate() {
    install_pip_tool kubernetes-validate 1.37.0 kubernetes-validate MEDIAGATE_TEST_KUBERNETES_VALIDATE \
        "tests/deploy_kubernetes.rs validates deploy/kubernetes/ with it"
}

# The load balancers of tests/replicas.rs (deploy/haproxy, deploy/nginx): Debian's HAProxy 2.6 and
# nginx 1.22. Installing them starts no daemon here (no init system); the tests start their own.
install_load_balancers() {
    ensure_debs haproxy nginx || return 1
    command -v haproxy >/dev/null && command -v nginx >/dev/null || return 1
    export MEDIAGATE_TEST_HAPROXY="${MEDIAGATE_TEST_HAPROXY:-$(command -v haproxy)}"
    export MEDIAGATE_TEST_NGINX="${MEDIAGATE_TEST_NGINX:-$(command -v nginx)}"
    log "load balancers: $("$MEDIAGATE_TEST_HAPROXY" -v | head -n1 | cut -d' ' -f1-3), $("$MEDIAGATE_TEST_NGINX" -v 2>&1)"
}

# ---------------------------------------------------------------- servers


start_s3s() {
    local dir port pid
    dir="$(mktemp -d -t mediagate-s3s.XXXXXX)" || return 1
    TMPDIRS+=("$dir")
    mkdir -p "$dir/data"
    port="$(free_port)" || return 1
    "$S3S_BIN" --host 127.0.0.1 --port "$port" --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" \
        --domain "s3.localhost:$port" "$dir/data" >"$dir/s3s-fs.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_http "$pid" "$port" "$dir/s3s-fs.log" s3s-fs || return 1
    export MEDIAGATE_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    export MEDIAGATE_TEST_S3_ACCESS_KEY="$S3_ACCESS_KEY"
    export MEDIAGATE_TEST_S3_SECRET_KEY="$S3_SECRET_KEY"
    export MEDIAGATE_TEST_S3_REGION="us-east-1"
    export MEDIAGATE_TEST_S3_VHOST_DOMAIN="s3.localhost:$port"
    log "s3s-fs $S3S_VERSION listening on $MEDIAGATE_TEST_S3_ENDPOINT (data in $dir/data, pid $pid)"
}

# install_postgres: Debian's PostgreSQL server (tests/store.rs starts a server of each test's
# own with initdb in a temp dir, as the user postgres when root); exports where its binaries are.
install_postgres() {
    ensure_debs postgresql || return 1
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$bin" && -x "$bin/initdb" && -x "$bin/pg_ctl" ]] || return 1
    export MEDIAGATE_TEST_PG_BIN="$bin"
    log "PostgreSQL: $("$bin/postgres" --version) in $bin"
}

start_azurite() {
    local dir port pid
    dir="$(mktemp -d -t mediagate-azurite.XXXXXX)" || return 1
    TMPDIRS+=("$dir")
    port="$(free_port)" || return 1
    # Run from the temp dir: anything Azurite writes beside its memory store lands there.
    (cd "$dir" && exec node "$AZURITE_MAIN" --blobHost 127.0.0.1 --blobPort "$port" \
        --inMemoryPersistence --skipApiVersionCheck --loose --disableTelemetry) >"$dir/azurite.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_http "$pid" "$port" "$dir/azurite.log" Azurite || return 1
    export MEDIAGATE_TEST_AZURE_URL="http://127.0.0.1:$port/$AZURITE_ACCOUNT"
    export MEDIAGATE_TEST_AZURE_ACCOUNT="$AZURITE_ACCOUNT"
    export MEDIAGATE_TEST_AZURE_KEY="$AZURITE_KEY"
    # tests/azure_identity.rs starts its own Azurite in OAuth mode over HTTPS.
    export MEDIAGATE_TEST_AZURITE_MAIN="$AZURITE_MAIN"
    log "Azurite $AZURITE_VERSION listening on $MEDIAGATE_TEST_AZURE_URL (pid $pid)"
}

# ---------------------------------------------------------------- steps
FAILED=()
# step NAME CMD...: runs one check with a header and its elapsed time.
step() {
    local name=$1
    shift
    header "$name: $*"
    local start=$SECONDS rc
    # In the background and waited for, so that a TERM or INT reaches the
    # trap at once (bash runs traps only between foreground commands).
    "$@" &
    STEP_PID=$!
    wait "$STEP_PID"
    rc=$?
    STEP_PID=""
    if ((rc == 0)); then
        log "---- $name: ok ($((SECONDS - start)) s)"
    else
        log "---- $name: FAILED with exit code $rc ($((SECONDS - start)) s)"
        FAILED+=("$name")
    fi
}

main() {
    local t0=$SECONDS
    header "setup (CI=$IS_CI, peers in $PEERS)"
    ensure_rust_components || {
        log "FATAL: rustfmt/clippy are not available"
        exit 1
    }
    install_browser_tools || peer_missing "chromium, ffmpeg, openssl or playwright-core could not be installed"
    install_redbot || peer_missing "REDbot could not be installed"
    install_openapi_validator || peer_missing "openapi-spec-validator could not be installed"
    install_kubernetes_validate || peer_missing "kubernetes-validate could not be installed"
    install_load_balancers || peer_missing "HAProxy or nginx could not be installed"

    if [[ -n "${MEDIAGATE_TEST_S3_ENDPOINT:-}" ]]; then
        log "S3: using the given server $MEDIAGATE_TEST_S3_ENDPOINT"
    elif install_s3s; then
        start_s3s || peer_missing "s3s-fs did not start"
    else
        peer_missing "s3s-fs $S3S_VERSION could not be installed"
    fi

    if [[ -n "${MEDIAGATE_TEST_AZURE_URL:-}" ]]; then
        log "Azure: using the given server $MEDIAGATE_TEST_AZURE_URL"
    elif install_azurite; then
        start_azurite || peer_missing "Azurite did not start"
    else
        peer_missing "Azurite $AZURITE_VERSION could not be installed"
    fi
    install_postgres || peer_missing "PostgreSQL could not be installed"
    log "setup done ($((SECONDS - t0)) s)"

    if (($#)); then
        step "$1" "$@"
        ((${#FAILED[@]})) && exit 1
        exit 0
    fi

    step fmt cargo fmt --all -- --check
    step clippy cargo clippy --all-targets -- -D warnings
    step test cargo test --all-targets --no-fail-fast
    # A short run of every fuzz target (scripts/fuzz.sh, docs/FUZZING.md);
    # under CI=true a missing nightly toolchain or cargo-fuzz is installed or fails.
    if [[ "${MEDIAGATE_FUZZ_SECONDS:-30}" != 0 ]]; then
        step fuzz "$ROOT/scripts/fuzz.sh" --seconds "${MEDIAGATE_FUZZ_SECONDS:-30}"
    fi

    header "summary ($((SECONDS - t0)) s in all)"
    if ((${#FAILED[@]})); then
        log "FAILED: ${FAILED[*]}"
        exit 1
    fi
    log "all checks passed"
}

main "$@"
