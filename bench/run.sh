#!/usr/bin/env bash
# run.sh — runs the benchmarks (make bench): bench/run.sh [-l] [SECTION...], every section when none is named.
#
# Each section is a shell function section_NAME, listed in SECTIONS below with
# a one-line description; adding one is writing the function and listing it.
# A section prints its figures with `report` (which also appends them to
# build/bench/results-NAME.txt), starts servers with `server_start` and stops
# them with `stop_process`. Every process started is recorded by PID and
# killed at exit, whatever happens. Settings, from the environment:
#   BENCH_SECONDS   length of each timed run (default 10; e.g. 2 or 2.5)
#   BENCH_ROUNDS    echo section: runs of each worker count, alternating; the
#                   ratio compares medians (default 1)
#   BENCH_PIN       1: echo section pins the client to the last CPU, the server
#                   to the others (default 0: the scheduler decides)
#   BENCH_BUILD     the build directory (default build; build/san works too)
set -u
cd "$(dirname "$0")/.." || exit 1

SECTIONS=(
    "echo:echo service, 64 connections ping-ponging 100 B, 1 worker against 2"
    "wakeups:wake-ups per accepted connection, 8 idle workers, 1000 connections"
)

B=${BENCH_BUILD:-build}
OUT=$B/bench
RUN_SECONDS=${BENCH_SECONDS:-10}
CLIENT_SLACK=30      # seconds a client may run past its own deadline
START_TIMEOUT=10     # seconds for a server to log that it started
STOP_TIMEOUT=10      # seconds for a server to exit after TERM, then KILL
PIDS=()              # every background process running, for cleanup
STOP_STATUS=0
RESULT=/dev/null     # the current section's results file
FAILED=0

# ---- helpers for sections ----

note() { printf '%s\n' "$*" >&2; }

# A result line: on stdout and in the section's results file.
report() { printf '%s\n' "$*" | tee -a "$RESULT"; }

fail() {
    report "FAILED: $*"
    FAILED=1
}

need() {
    local f
    for f in "$@"; do
        [[ -x $f ]] && continue
        fail "$f is missing (run: make $f)"
        return 1
    done
}

alive() { kill -0 "$1" 2>/dev/null; }

# The children of a process (a master's workers), one per line.
children_of() { tr ' ' '\n' <"/proc/$1/task/$1/children" 2>/dev/null | grep .; }

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
    local stat f
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    # The fields after the ")" that closes the command name: 12 = utime, 13 = stime.
    read -ra f <<<"${stat##*) }"
    awk -v u="${f[11]}" -v s="${f[12]}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", (u + s) / hz }'
}

# server_start NAME CMD...: run a libprefork server whose log goes to
# $OUT/NAME.log, wait for its "started ... on HOST:PORT" line, and set
# SERVER_PID and SERVER_PORT. Returns 1 if it died or did not start in time.
server_start() {
    local name=$1 log="$OUT/$1.log" i
    shift
    : >"$log"
    "$@" </dev/null >/dev/null 2>"$log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for ((i = 0; i < START_TIMEOUT * 20; i++)); do
        SERVER_PORT=$(sed -n 's/.* started .* on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
        [[ -n $SERVER_PORT ]] && return 0
        alive "$SERVER_PID" || break
        sleep 0.05
    done
    fail "$name did not start; its log ($log):"
    sed 's/^/    /' "$log" | tee -a "$RESULT"
    stop_process "$SERVER_PID"
    return 1
}

# stop_process PID: TERM, wait up to STOP_TIMEOUT, then KILL the process
# (a server's master) and any child it left behind (its workers). Sets
# STOP_STATUS to its exit status. Runs in this shell, never in $(...): only
# the parent can wait for a child.
stop_process() {
    local pid=$1 kids k i=0
    kids=$(children_of "$pid")
    kill -TERM "$pid" 2>/dev/null
    while alive "$pid" && ((i++ < STOP_TIMEOUT * 20)); do
        sleep 0.05
    done
    if alive "$pid"; then
        note "pid $pid did not stop within ${STOP_TIMEOUT}s: killing it"
        kill -KILL "$pid" 2>/dev/null
    fi
    STOP_STATUS=0
    wait "$pid" 2>/dev/null || STOP_STATUS=$?
    for k in $kids; do
        alive "$k" && kill -KILL "$k" 2>/dev/null
    done
    forget "$pid"
}

forget() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# bounded FILE CMD...: run a client, its output to FILE, killed if it runs
# CLIENT_SLACK seconds past RUN_SECONDS. It runs in the background so that
# a signal to this script is acted on at once, not when the client ends.
bounded() {
    local file=$1 limit pid rc=0
    shift
    limit=$(awk -v s="$RUN_SECONDS" -v k="$CLIENT_SLACK" 'BEGIN { print s + k }')
    timeout -k 5 "$limit" "$@" >"$file" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget "$pid"
    return "$rc"
}

cleanup() {
    local i pid
    trap - EXIT INT TERM
    # Newest first: a client goes before the server it keeps busy, which
    # would otherwise wait for its connections until the drain deadline.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        alive "$pid" && stop_process "$pid"
    done
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# Pull KEY=VALUE out of a machine-readable line.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# ---- section: echo ----

# CPU seconds used so far by a master's workers.
workers_cpu() {
    local pid sum=0
    for pid in $(children_of "$1"); do
        sum=$(awk -v a="$sum" -v b="$(cpu_seconds "$pid")" 'BEGIN { print a + b }')
    done
    echo "$sum"
}

# CPU seconds the whole machine has spent in processes (user, nice, system)
# or lost to steal (CPU this virtual machine wanted and did not get). Not
# irq and softirq: the kernel counts loopback TCP's softirq work there and
# not in any process, and here that work is the benchmark's own.
machine_busy() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { print ($2 + $3 + $4 + $9) / hz }' /proc/stat
}

# One run of the echo service with W workers. Sets ECHO_LINE (echo_load's
# machine line), ECHO_SPLIT (connections per worker), ECHO_SCPU (the
# workers' CPU, % of one core) and ECHO_OTHER (what every other process on
# the machine used meanwhile, % of one core: other people's builds skew it).
echo_run() {
    local w=$1 rc s0 s1 m0 m1
    ECHO_LINE='' ECHO_SPLIT='' ECHO_SCPU='' ECHO_OTHER=''
    server_start "echo-w$w" "${PIN_SERVER[@]}" "$B/examples/echo" -l 127.0.0.1:0 \
        -w "$w" --graceful-timeout 5 || return 1
    s0=$(workers_cpu "$SERVER_PID") m0=$(machine_busy)
    bounded "$OUT/echo_load.out" "${PIN_CLIENT[@]}" "$B/bench/echo_load" -p "$SERVER_PORT" \
        -c 64 -s 100 -d "$RUN_SECONDS"
    rc=$?
    s1=$(workers_cpu "$SERVER_PID") m1=$(machine_busy)
    ECHO_SPLIT=$("$B/bench/wakeups" -m "$SERVER_PID" -n 0 |
        awk '$1 ~ /^[0-9]+$/ { s = s (s == "" ? "" : "/") $3 } END { print s }')
    stop_process "$SERVER_PID"
    ECHO_RAW+="workers=$w $(grep '^msgs_per_s=' "$OUT/echo_load.out")"$'\n'
    ECHO_LINE=$(grep '^msgs_per_s=' "$OUT/echo_load.out")
    [[ $rc -eq 0 && -n $ECHO_LINE ]] || { fail "echo_load with $w worker(s) exited $rc"; return 1; }
    [[ $STOP_STATUS -eq 0 ]] || { fail "echo -w $w exited $STOP_STATUS on TERM"; return 1; }
    read -r ECHO_SCPU ECHO_OTHER < <(awk -v s0="$s0" -v s1="$s1" -v m0="$m0" -v m1="$m1" \
        -v t="$(field seconds "$ECHO_LINE")" -v c="$(field client_cpu_pct "$ECHO_LINE")" \
        'BEGIN { srv = 100 * (s1 - s0) / t; o = 100 * (m1 - m0) / t - srv - c
                 printf "%.0f %.0f\n", srv, o < 0 ? 0 : o }')
}

# BENCH_PIN=1: the client on the last CPU, the server on the others, so
# that the scheduler never puts a worker on the client's CPU. Sets the
# command prefixes PIN_SERVER and PIN_CLIENT (empty without pinning).
echo_pinning() {
    local n
    n=$(nproc)
    PIN_SERVER=() PIN_CLIENT=()
    [[ ${BENCH_PIN:-0} == 1 ]] || return 0
    if ((n < 2)) || ! command -v taskset >/dev/null; then
        report "note: BENCH_PIN=1 needs 2 CPUs and taskset: not pinning"
        return 0
    fi
    PIN_SERVER=(taskset -c "0-$((n - 2))") PIN_CLIENT=(taskset -c "$((n - 1))")
    report "pinned: server on CPU(s) 0-$((n - 2)), client on CPU $((n - 1))"
}

echo_row() {
    printf '%-8s %10s %9s %9s %11s %11s %10s  %s\n' "$@" | tee -a "$RESULT"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

section_echo() {
    need "$B/examples/echo" "$B/bench/echo_load" "$B/bench/wakeups" || return
    local w r l rates1='' rates2='' m1 m2 noisy=0 rounds=${BENCH_ROUNDS:-1}
    ECHO_RAW=''
    report "echo service: 64 connections, each sending 100 B and awaiting the echo, ${RUN_SECONDS} s per run, on 127.0.0.1"
    report "note: this machine has $(nproc) CPU(s) shared by the server and the client; the client alone"
    report "      needs about one, so with 2 CPUs a second worker has no core of its own: expect 2w/1w <= 1."
    report "      The figure shows pool overhead here; scaling needs more cores or a client on another host."
    report "      BENCH_PIN=1 keeps the workers off the client's CPU (see bench/README.md)."
    echo_pinning
    echo_row workers msgs/s p50_us p99_us server_cpu% client_cpu% other_cpu% conns_per_worker
    for ((r = 0; r < rounds; r++)); do
        for w in 1 2; do
            echo_run "$w" || continue
            l=$ECHO_LINE
            echo_row "$w" "$(field msgs_per_s "$l")" "$(field p50_us "$l")" "$(field p99_us "$l")" \
                "$ECHO_SCPU" "$(field client_cpu_pct "$l")" "$ECHO_OTHER" "$ECHO_SPLIT"
            ((ECHO_OTHER > 20)) && noisy=1
            if ((w == 1)); then rates1+="$(field msgs_per_s "$l") "; else rates2+="$(field msgs_per_s "$l") "; fi
        done
    done
    # The clients' own lines, for scripts, in the results file only.
    printf '%s' "$ECHO_RAW" >>"$RESULT"
    ((noisy)) && report "warning: other processes used over 20% of a CPU during a run: those figures are low and noisy"
    [[ -n $rates1 && -n $rates2 ]] || return
    m1=$(tr ' ' '\n' <<<"$rates1" | grep . | median)
    m2=$(tr ' ' '\n' <<<"$rates2" | grep . | median)
    report "ratio 2w/1w: $(awk -v a="$m2" -v b="$m1" 'BEGIN { printf "%.2f", a / b }')$( ((rounds > 1)) && echo " (medians of $rounds runs each)")"
}

# ---- section: wakeups ----

section_wakeups() {
    need "$B/examples/echo" "$B/bench/wakeups" || return
    local out rc st line woken
    report "wake-ups: 8 idle workers in shared mode, 1000 connections opened one at a time"
    server_start echo-w8 "$B/examples/echo" -l 127.0.0.1:0 -w 8 --graceful-timeout 5 || return
    bounded "$OUT/wakeups.out" "$B/bench/wakeups" -p "$SERVER_PORT" -m "$SERVER_PID" -n 1000
    rc=$?
    out=$(cat "$OUT/wakeups.out")
    stop_process "$SERVER_PID"
    st=$STOP_STATUS
    printf '%s\n' "$out" | tee -a "$RESULT"
    [[ $rc -eq 0 ]] || { fail "wakeups exited $rc"; return; }
    [[ $st -eq 0 ]] || fail "echo -w 8 exited $st on TERM"
    line=$(grep '^conns=' <<<"$out")
    woken=$(field woken_per_conn "$line")
    if awk -v r="$woken" 'BEGIN { exit !(r <= 1.5) }'; then
        report "verdict: no thundering herd: $woken workers woken per connection (ideal 1, full herd 8)"
    else
        report "verdict: THUNDERING HERD: $woken workers woken per connection (ideal 1, full herd 8)"
    fi
}

# ---- main ----

usage() {
    local s
    echo "usage: bench/run.sh [-l] [SECTION...]   (every section when none is named)"
    for s in "${SECTIONS[@]}"; do printf '  %-10s %s\n' "${s%%:*}" "${s#*:}"; done
}

run_section() {
    local name=$1
    RESULT=$OUT/results-$name.txt
    : >"$RESULT"
    report "== $name ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -sr), $(nproc) CPUs)"
    "section_$name"
    report ""
}

main() {
    local names=() s n
    case ${1:-} in
    -h | --help) usage; return 0 ;;
    -l | --list) for s in "${SECTIONS[@]}"; do echo "${s%%:*}"; done; return 0 ;;
    esac
    for s in "${SECTIONS[@]}"; do names+=("${s%%:*}"); done
    (($# > 0)) && names=("$@")
    for n in "${names[@]}"; do
        declare -F "section_$n" >/dev/null || { usage >&2; echo "unknown section: $n" >&2; return 2; }
    done
    mkdir -p "$OUT"
    for n in "${names[@]}"; do run_section "$n"; done
    note "results: $(printf "$OUT/results-%s.txt " "${names[@]}")"
    return "$FAILED"
}

main "$@"
