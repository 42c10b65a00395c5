#!/usr/bin/env bash
# Builds the cargo-fuzz targets of fuzz/ (nightly toolchain, libFuzzer) and
# runs each for a time or a number of executions, then prints one row per
# target: executions, exec/s, coverage, corpus and the finding, if any.
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   scripts/fuzz.sh --seconds 15         # every target, 15 s each
#   scripts/fuzz.sh --runs 10000000 range config   # 10 M executions of two targets
#   scripts/fuzz.sh --list               # the target names
#
# Each run starts from the committed seeds (fuzz/corpus/<target>, never
# written to) plus the inputs earlier runs found (fuzz/target/corpus/<target>),
# with the target's dictionary (fuzz/dict). A crash, a failed property, a
# timeout (10 s for one input) or running out of memory (2 GiB) is a finding:
# its reproducer is written to fuzz/artifacts/<target>/ and printed with the
# command that replays it; the script then exits 1.
#
# Environment:
#   CI=true                   a missing nightly toolchain or cargo-fuzz is installed, or the
#                             script fails; without CI a failed install skips fuzzing (exit 0)
#   MEDIAGATE_FUZZ_SANITIZER  cargo fuzz --sanitizer (default none: the crate forbids unsafe
#                             code, and without ASan the runs are about twice as fast)
#   MEDIAGATE_FUZZ_SKIP_PENDING=1  skip the checks that need the locator hardening
#                             (fuzz/src/lib.rs, module `pending`); off by default
#   MEDIAGATE_FUZZ_ARGS       extra libFuzzer flags for every run (e.g. -use_value_profile=1)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
cd "$FUZZ"

TARGETS=(locator_path locator_query locator_parse azure_url key_encoding range conditional signed_url config multipart)
SECONDS_EACH=60
RUNS=""
SANITIZER="${MEDIAGATE_FUZZ_SANITIZER:-none}"
IS_CI=false
[[ "${CI:-}" == "true" ]] && IS_CI=true

log() { printf '%s\n' "$*" >&2; }

usage() {
    sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

# The longest input libFuzzer makes: larger seeds are cut to it. The config
# gets 2 KiB: longer documents only repeat tables, and parse 5 times slower;
# keys just past the 1024-byte limit are enough for key_encoding.
max_len_of() {
    case "$1" in
        config) echo 2048 ;;
        key_encoding) echo 1100 ;;
        *) echo 4096 ;;
    esac
}

dict_of() {
    case "$1" in
        locator_* | azure_url | key_encoding | signed_url) echo "$FUZZ/dict/locator.dict" ;;
        range | multipart) echo "$FUZZ/dict/range.dict" ;;
        conditional) echo "$FUZZ/dict/conditional.dict" ;;
        config) echo "$FUZZ/dict/config.dict" ;;
    esac
}

selected=()
while (($#)); do
    case "$1" in
        --seconds) SECONDS_EACH="${2:?--seconds needs a number}"; RUNS=""; shift 2 ;;
        --runs) RUNS="${2:?--runs needs a number}"; shift 2 ;;
        --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
        -h | --help) usage ;;
        -*) log "unknown option $1"; usage ;;
        *)
            if [[ " ${TARGETS[*]} " != *" $1 "* ]]; then
                log "unknown target $1 (known: ${TARGETS[*]})"
                exit 2
            fi
            selected+=("$1")
            shift
            ;;
    esac
done
((${#selected[@]})) || selected=("${TARGETS[@]}")
if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ && ( -z "$RUNS" || "$RUNS" =~ ^[0-9]+$ ) ]]; then
    log "--seconds and --runs take whole numbers"
    exit 2
fi

# A missing tool: installed, or under CI a failure, otherwise a skip.
missing() {
    if $IS_CI; then
        log "FATAL: $* (CI=true: fuzzing cannot be skipped)"
        exit 1
    fi
    log "WARNING: $* -- fuzzing skipped"
    exit 0
}
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    log "installing the nightly toolchain (cargo-fuzz needs it)"
    rustup toolchain install nightly --profile minimal >&2 || missing "the nightly toolchain could not be installed"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked >&2 || missing "cargo-fuzz could not be installed"
fi

log "==== building the fuzz targets (cargo +nightly fuzz build --sanitizer $SANITIZER)"
build_start=$SECONDS
if ! cargo +nightly fuzz build --sanitizer "$SANITIZER" >&2; then
    log "FATAL: the fuzz targets do not build"
    exit 1
fi
log "built in $((SECONDS - build_start)) s"
BIN="$FUZZ/target/x86_64-unknown-linux-gnu/release"

if [[ -n "$RUNS" ]]; then budget=(-runs="$RUNS") what="$RUNS executions"; else budget=(-max_total_time="$SECONDS_EACH") what="$SECONDS_EACH s"; fi
rows=()
failed=()
for t in "${selected[@]}"; do
    work="$FUZZ/target/corpus/$t"
    artifacts="$FUZZ/artifacts/$t"
    mkdir -p "$work" "$artifacts"
    logfile="$FUZZ/target/fuzz-$t.log"
    log "==== $t: $what (log $logfile)"
    start=$SECONDS
    # shellcheck disable=SC2086 # MEDIAGATE_FUZZ_ARGS is a list of flags
    "$BIN/$t" "${budget[@]}" -dict="$(dict_of "$t")" -max_len="$(max_len_of "$t")" -artifact_prefix="$artifacts/" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 ${MEDIAGATE_FUZZ_ARGS:-} "$work" "$FUZZ/corpus/$t" >"$logfile" 2>&1
    rc=$?
    elapsed=$((SECONDS - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logfile" | tail -n1)
    status=$(grep -E '^#[0-9]+' "$logfile" | tail -n1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$status")
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logfile" | tail -n1)
    if ((rc == 0)); then
        finding="none"
    else
        finding="CRASH ${artifact:-(no reproducer written; see $logfile)}"
        failed+=("$t")
        grep -m1 -A3 -E "panicked at|ERROR: libFuzzer" "$logfile" | sed 's/^/    /' >&2
        if [[ -n "$artifact" ]]; then
            log "    replay: $BIN/$t $artifact"
            log "       or: (cd fuzz && cargo +nightly fuzz run --sanitizer $SANITIZER $t $artifact)"
        fi
    fi
    rows+=("$(printf '%-14s %7s %13s %9s %6s %7s %6s  %s' "$t" "${elapsed}s" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$finding")")
done

printf '\n%-14s %7s %13s %9s %6s %7s %6s  %s\n' target time executions exec/s cov ft corpus finding
printf '%s\n' "${rows[@]}"
if ((${#failed[@]})); then
    printf '\nFINDINGS in: %s (reproducers under fuzz/artifacts/)\n' "${failed[*]}"
    exit 1
fi
printf '\nno findings\n'
