#!/usr/bin/env bash
# run.sh — runs the benchmarks (make bench): bench/run.sh [-l] [SECTION...], every section when none is named.
#
# Each section is a shell function section_NAME, listed in SECTIONS below with
# a one-line description; adding one is writing the function and listing it.
# A section prints its figures with `report` (which also appends them to
# build/bench/results-NAME.txt), starts servers with `server_start` and stops
# them with `stop_process`. Every process started is recorded by PID and
# killed at exit, whatever happens. Settings, from the environment:
#   BENCH_SECONDS   length of each timed run (default 10, http section 5;
#                   e.g. 2 or 2.5)
#   BENCH_ROUNDS    echo section: runs of each worker count, alternating; the
#                   ratio compares medians; http and modes sections: rounds
#                   over all servers, figures are medians (default 1, http
#                   section 3)
#   BENCH_PIN       1: echo section pins the client to the last CPU, the server
#                   to the others (default 0: the scheduler decides)
#   BENCH_BUILD     the build directory (default build; build/san works too)
#   BENCH_SECTIONS  the sections to run when none is named (make bench
#                   BENCH_SECTIONS=python)
#   BENCH_PY_*      python section: see bench/python/section.sh
#   BENCH_HTTP_SERVERS  http sections: which servers (default: prefork nginx
#                   lighttpd lighttpd-1p python; prefork-base too, see below)
#   BENCH_HTTP_IDLE http sections: idle connections held (default 10000)
#   BENCH_HTTP_RETRIES  http and modes sections: repeats of a run disturbed
#                   by other load (default 2)
#   BENCH_PREFORK_ARGS  http sections: more options for prefork serve (e.g.
#                   "--mode reuseport")
#   BENCH_PREFORK_BASE  http sections, A/B: an older prefork binary, run as
#                   server prefork-base with prefork's options, in the same
#                   rounds; not a peer: each scenario gains prefork vs
#                   prefork-base (req/s, req per CPU-s; target >= 0.97).
#                   BENCH_HTTP_SERVERS="prefork prefork-base" runs only the
#                   two. The parent commit, say:
#                     git worktree add /tmp/base HEAD~1 && make -C /tmp/base
#                     BENCH_PREFORK_BASE=/tmp/base/build/prefork bench/run.sh http
set -u
# A relative BENCH_PREFORK_BASE names a path from where the script was started.
[[ -n ${BENCH_PREFORK_BASE:-} && $BENCH_PREFORK_BASE != /* ]] && BENCH_PREFORK_BASE=$PWD/$BENCH_PREFORK_BASE
cd "$(dirname "$0")/.." || exit 1

SECTIONS=(
    "echo:echo service, 64 connections ping-ponging 100 B, 1 worker against 2"
    "wakeups:wake-ups per accepted connection, 8 idle workers, 1000 connections"
    "http:prefork serve against nginx, lighttpd and python's http.server (wrk; 8 scenarios)"
    "http_quick:the http section in short: 3 s runs, one round, no python (not run by default)"
    "lifecycle:longest request latency during HUP and USR2 against steady state, requests lost"
    "run:a Python http.server app under prefork run -w 2, as one process, and as a multiprocessing pool"
    "modes:shared, reuseport and dispatch, 4 workers: 1 KiB keep-alive, 1 KiB close, slow handler (wrk)"
    "python:WSGI: python3 -m prefork against gunicorn, uWSGI, waitress and prefork run + wsgiref (wrk; 6 scenarios)"
    "tls:HTTPS: prefork serve against nginx, ECDSA and RSA certificates (wrk and tls_load; 6 scenarios)"
    "fleet:two hosts behind HAProxy: requests lost in restarts, reloads, a kill; what PROXY v2 costs"
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

# ---- section: http ----

# The comparison: prefork serve against nginx, lighttpd (with workers and
# as its usual single process) and python3 -m http.server, each started in
# turn on its own port and measured with wrk, then stopped. The scenarios,
# by key: wrk's connections and path (the idle scenario also holds
# HTTP_IDLE_N idle keep-alive connections while it runs).
HTTP_ALL=(ka close 1m dir idle js-precompressed js-precompressed-gz js-compress) # BENCH_HTTP_SCENARIOS may choose some (http_scenarios)
declare -A HTTP_DESC=(
    [ka]="1 KiB file, keep-alive, 64 connections"
    [close]="1 KiB file, new connection per request (Connection: close), 64 connections"
    [1m]="1 MiB file, keep-alive, 16 connections"
    [dir]="directory listing of 100 entries, keep-alive, 64 connections"
    [idle]="1 KiB file, keep-alive, 64 connections, while 10,000 idle keep-alive connections are held"
    [js-precompressed]="100 KiB JavaScript file with .br and .gz beside it, Accept-Encoding: gzip, br, keep-alive, 64 connections (nginx gzip_static on and no brotli: it sends the .gz, prefork the .br)"
    [js-precompressed-gz]="the same file with only .gz beside it, Accept-Encoding: gzip, keep-alive, 64 connections (nginx gzip_static on: both send the same .gz)"
    [js-compress]="the same JavaScript, no variant on disk, Accept-Encoding: gzip, br, keep-alive, 64 connections (compressed at level 6: nginx gzip on, per request; prefork br, once per worker)"
)
declare -A HTTP_PATH=([ka]=/1k.bin [close]=/1k.bin [1m]=/1m.bin [dir]=/dir100/ [idle]=/1k.bin
    [js-precompressed]=/js/app.js [js-precompressed-gz]=/js-gz/app.js [js-compress]=/js-raw/app.js)
declare -A HTTP_CONNS=([ka]=64 [close]=64 [1m]=16 [dir]=64 [idle]=64
    [js-precompressed]=64 [js-precompressed-gz]=64 [js-compress]=64)
# The content-coding scenarios: the Accept-Encoding wrk sends, the coding
# each server must answer with (checked with curl before the runs: a server
# answering otherwise fails the section and sits the scenario out), and the
# one peer their targets compare against. nginx-light has no brotli module,
# so nginx sends gzip where prefork sends br. With only FILE.gz on disk
# wrk accepts gzip alone: offered br too, prefork would compress br itself
# rather than send the .gz, and the row would repeat js-compress's. lighttpd
# and python are not configured for codings and sit these out.
declare -A HTTP_AE=([js-precompressed]="gzip, br" [js-precompressed-gz]=gzip [js-compress]="gzip, br")
declare -A HTTP_ENC_OURS=([js-precompressed]=br [js-precompressed-gz]=gzip [js-compress]=br)
declare -A HTTP_ENC_NGINX=([js-precompressed]=gzip [js-precompressed-gz]=gzip [js-compress]=gzip)
declare -A HTTP_VS=([js-precompressed]=nginx [js-precompressed-gz]=nginx [js-compress]=nginx)
HTTP_JS_SIZE=102400                     # bytes of the JavaScript file
HTTP_PEERS=(nginx lighttpd lighttpd-1p) # the servers prefork's targets compare against
HTTP_AB_MIN=0.97                        # prefork's req per CPU-s over prefork-base's, at least
HTTP_W=2                                # workers in every multi-process server
HTTP_KEEPALIVE=60                       # idle keep-alive timeout in every server, s
HTTP_AFFINITY=${BENCH_CPU_AFFINITY:-off} # unless off: prefork --mode reuseport --cpu-affinity, nginx reuseport + worker_cpu_affinity auto
declare -A HR=()                        # figures: HR[server|scenario|name]="value per round ..."
declare -A SV_PID SV_PORT SV_WPIDS SV_TREE SV_SOCKS0 # the running servers, by name (http_keep)

# Make the document root: 1k.bin, 1m.bin (random bytes) and dir100/ with
# 100 small files and no index.
http_www() {
    local d=$OUT/www i f
    mkdir -p "$d/dir100" || return 1
    [[ $(stat -c %s "$d/1k.bin" 2>/dev/null) == 1024 ]] || head -c 1024 /dev/urandom >"$d/1k.bin"
    [[ $(stat -c %s "$d/1m.bin" 2>/dev/null) == 1048576 ]] || head -c 1048576 /dev/urandom >"$d/1m.bin"
    rm -f "$d/dir100/index.html"
    for ((i = 0; i < 100; i++)); do
        printf -v f '%s/dir100/file-%03d.txt' "$d" "$i"
        [[ -f $f ]] || printf 'file %d\n' "$i" >"$f"
    done
    [[ $(find "$d/dir100" -mindepth 1 | wc -l) == 100 ]] || { fail "$d/dir100 must hold exactly 100 entries"; return 1; }
    http_www_js "$d"
}

# The JavaScript of the coding scenarios, the same text three times:
# js/app.js with app.js.gz (gzip -9) and app.js.br (brotli, its default
# quality 11) beside it, js-gz/app.js with only the .gz, and js-raw/app.js
# alone (compressed by the server). The variants are made again whenever
# they are missing or older than the file.
http_www_js() {
    local d=$1 sub
    command -v brotli >/dev/null || { fail "brotli is missing (apt-get install brotli)"; return 1; }
    mkdir -p "$d/js" "$d/js-gz" "$d/js-raw" || return 1
    if [[ $(stat -c %s "$d/js/app.js" 2>/dev/null) != "$HTTP_JS_SIZE" ]]; then
        http_js_text "$HTTP_JS_SIZE" >"$d/js/app.js.tmp" && mv "$d/js/app.js.tmp" "$d/js/app.js" || return 1
        rm -f "$d/js/app.js.gz" "$d/js/app.js.br" "$d/js-gz/app.js"* "$d/js-raw/app.js"
    fi
    for sub in js-gz js-raw; do
        [[ -f $d/$sub/app.js ]] || cp -p "$d/js/app.js" "$d/$sub/app.js" || return 1
    done
    rm -f "$d/js-gz/app.js.br" "$d/js-raw/app.js".*
    # gzip and brotli give a variant the original's mtime: touch makes it
    # newer, as a build would.
    for sub in js js-gz; do
        [[ $d/$sub/app.js.gz -nt $d/$sub/app.js ]] ||
            { gzip -9 -k -f -n "$d/$sub/app.js" && touch "$d/$sub/app.js.gz"; } || return 1
    done
    [[ $d/js/app.js.br -nt $d/js/app.js ]] ||
        { brotli -k -f "$d/js/app.js" && touch "$d/js/app.js.br"; } || return 1
}

# http_js_text BYTES: JavaScript-like text of exactly BYTES bytes, the same
# every time: exported functions of declarations, calls, conditions, loops,
# comments, with identifiers made of common words, numbers and strings.
# Made up here, not taken from any project; it compresses about as well as
# hand-written code (gzip -9: 2.9x, brotli: 3.3x).
http_js_text() {
    awk -v n="$1" '
    function pick(a, k) { return a[int(rand() * k) + 1] }
    function ident(   s, w) {
        s = pick(W, nw)
        if (rand() < 0.6) { w = pick(W, nw); s = s toupper(substr(w, 1, 1)) substr(w, 2) }
        if (rand() < 0.15) s = s int(rand() * 100)
        return s
    }
    function num() { return rand() < 0.5 ? int(rand() * 1000) : sprintf("%.3f", rand() * 100) }
    function str(   s, i, k) {
        k = 1 + int(rand() * 5); s = pick(W, nw)
        for (i = 1; i < k; i++) s = s " " pick(W, nw)
        return "\"" s "\""
    }
    function expr(d,   r) {
        r = rand()
        if (d > 2 || r < 0.25) return ident()
        if (r < 0.4) return num()
        if (r < 0.55) return str()
        if (r < 0.75) return ident() "." ident() "(" expr(d + 1) ", " expr(d + 1) ")"
        if (r < 0.9) return expr(d + 1) " " pick(O, no) " " expr(d + 1)
        return "[" expr(d + 1) ", " expr(d + 1) ", " expr(d + 1) "]"
    }
    function stmt(ind,   r) {
        r = rand()
        if (r < 0.3) return ind pick(K, nk) " " ident() " = " expr(0) ";"
        if (r < 0.5) return ind ident() "." ident() "(" expr(0) ");"
        if (r < 0.65) return ind "if (" expr(1) " " pick(C, nc) " " expr(1) ") { return " expr(0) "; }"
        if (r < 0.8) return ind "this." ident() " = " expr(0) ";"
        if (r < 0.9) return ind "for (let i = 0; i < " ident() ".length; i++) " ident() " += " expr(1) ";"
        return ind "// " pick(W, nw) " " pick(W, nw) " " pick(W, nw) " " pick(W, nw)
    }
    BEGIN {
        srand(1)
        nw = split("user item list value index data node event handler config options state result " \
            "error request response token cache key name id count total offset limit page query filter " \
            "render update create remove parse format buffer stream element child parent style class " \
            "width height color target source path url method status message callback promise timer " \
            "queue map set array object string number length size start end next prev first last", W, " ")
        nk = split("const let var", K, " ")
        no = split("+ - * / % && || ??", O, " ")
        nc = split("=== !== < > <= >=", C, " ")
        out = "\"use strict\";\n"
        while (length(out) < n) {
            f = "export function " ident() "(" ident() ", " ident() ") {\n"
            m = 3 + int(rand() * 8)
            for (j = 0; j < m; j++) f = f stmt("  ") "\n"
            out = out f "  return " expr(0) ";\n}\n\n"
        }
        # Cut after the last whole line that fits, then a comment to the size.
        out = substr(out, 1, n - 64)
        sub(/\n[^\n]*$/, "\n", out)
        s = "//"
        while (length(out) + length(s) + 2 < n) s = s "-"
        printf "%s%s\n\n", out, s
    }'
}

# Raise the open-file limit of this shell, hence of every server and client
# it starts: the idle scenario needs one descriptor per connection in the
# client and in the server (and lighttpd allows connections up to half its
# descriptors). Only root can raise the hard limit; a container may forbid
# even that. Sets HTTP_NOFILE.
http_nofile() {
    local want=$((2 * HTTP_IDLE_N + 1024)) hard
    hard=$(ulimit -Hn)
    [[ $hard != unlimited ]] && ((hard < want)) && ulimit -Hn "$want" 2>/dev/null
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=$want
    HTTP_NOFILE=$((hard < want ? hard : want))
    ulimit -Sn "$HTTP_NOFILE" || { fail "cannot raise the open-file limit to $HTTP_NOFILE"; return 1; }
    ((HTTP_NOFILE >= HTTP_IDLE_N + 256)) || { fail "open-file limit $HTTP_NOFILE is too low for $HTTP_IDLE_N idle connections"; return 1; }
}

# A port below the ephemeral range (so that no client connection takes it
# between this check and the server's bind) that nothing uses.
http_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ -z $(ss -Htan "sport = :$p" 2>/dev/null) ]] && { echo "$p"; return 0; }
    done
    return 1
}

# http_conf TEMPLATE NAME PORT WORKERS CONNS: bench/conf/TEMPLATE.in with
# its @FIELD@s filled in, written to $OUT/NAME.conf; prints that path.
http_conf() {
    local out=$PWD/$OUT/$2.conf
    sed -e "s|@PORT@|$3|g" -e "s|@WORKERS@|$4|g" -e "s|@CONNS@|$5|g" \
        -e "s|@ROOT@|$PWD/$OUT/www|g" -e "s|@STATE@|$PWD/$OUT|g" \
        -e "s|@NOFILE@|$HTTP_NOFILE|g" -e "s|@KEEPALIVE@|$HTTP_KEEPALIVE|g" \
        -e "s|@AFFINITY@|$([[ $HTTP_AFFINITY == off ]] && echo '#')|g" \
        -e "s|@REUSEPORT@|$([[ $HTTP_AFFINITY != off ]] && echo ' reuseport')|g" \
        "bench/conf/$1.conf.in" >"$out" && echo "$out"
}

# http_spawn NAME PORT CMD...: start a server that does not log like ours,
# its output to $OUT/NAME.log, and wait until something listens on PORT
# (without sending a request: the memory at rest is read next). Sets
# SERVER_PID and SERVER_PORT.
#
# Each runs in a session of its own (setsid, which does not fork here: a
# background job of a script is no process group leader, so the PID stays
# the server's). lighttpd with workers stops them with kill(0, SIGTERM),
# which would otherwise reach its whole process group: this script, and
# whatever started it.
http_spawn() {
    local name=$1 port=$2 log="$OUT/$1.log" i
    shift 2
    setsid "$@" </dev/null >"$log" 2>&1 &
    SERVER_PID=$! SERVER_PORT=$port
    PIDS+=("$SERVER_PID")
    for ((i = 0; i < START_TIMEOUT * 20; i++)); do
        if [[ -n $(ss -Htln "sport = :$port" 2>/dev/null) ]]; then
            [[ $(cat "/proc/$SERVER_PID/comm" 2>/dev/null) != setsid ]] && return 0
            fail "setsid forked: pid $SERVER_PID is not $name"
            break
        fi
        alive "$SERVER_PID" || break
        sleep 0.05
    done
    fail "$name did not start listening on 127.0.0.1:$port; its log ($log):"
    sed 's/^/    /' "$log" | tee -a "$RESULT"
    stop_process "$SERVER_PID"
    return 1
}

# http_workers N: wait for the server's N workers (0: the server is one
# process), then set HTTP_WPIDS (the processes that serve connections) and
# HTTP_TREE (those and the master, whose CPU time counts).
http_workers() {
    local want=$1 i kids=()
    HTTP_WPIDS=("$SERVER_PID") HTTP_TREE=("$SERVER_PID")
    ((want == 0)) && { sleep 0.3; return 0; }
    for ((i = 0; i < START_TIMEOUT * 20; i++)); do
        mapfile -t kids < <(children_of "$SERVER_PID")
        ((${#kids[@]} >= want)) && break
        sleep 0.05
    done
    ((${#kids[@]} == want)) || { fail "pid $SERVER_PID has ${#kids[@]} children, not $want workers"; return 1; }
    HTTP_WPIDS=("${kids[@]}") HTTP_TREE+=("${kids[@]}")
    # Let the workers finish their start-up before their memory is read.
    sleep 0.3
}

# Ours: prefork, and the older build it may be compared with (prefork-base).
http_ours() { [[ $1 == prefork || $1 == prefork-base ]]; }

# http_start SERVER: start one server of the comparison. prefork-base is
# BENCH_PREFORK_BASE, started exactly as prefork is.
http_start() {
    local port conf bin=$B/prefork
    if http_ours "$1"; then
        [[ $1 == prefork-base ]] && bin=$BENCH_PREFORK_BASE
        server_start "$1" "$bin" serve "$OUT/www" -l 127.0.0.1:0 -w "$HTTP_W" \
            --access-log off --keepalive-timeout "$HTTP_KEEPALIVE" --graceful-timeout 5 \
            --cpu-affinity "$HTTP_AFFINITY" $([[ $HTTP_AFFINITY != off ]] && echo --mode reuseport) \
            ${BENCH_PREFORK_ARGS:-} || return 1
        http_workers "$HTTP_W"
        return
    fi
    port=$(http_port) || { fail "no free port found for $1"; return 1; }
    case $1 in
    nginx)
        # Enough connections per worker for every idle one plus wrk's, should
        # one worker get them all.
        conf=$(http_conf nginx nginx "$port" "$HTTP_W" "$((HTTP_IDLE_N + 1024))") || return 1
        mkdir -p "$OUT/nginx-tmp"
        http_spawn nginx "$port" /usr/sbin/nginx -c "$conf" -e "$PWD/$OUT/nginx-error.log" &&
            http_workers "$HTTP_W" ;;
    lighttpd | lighttpd-1p)
        local w=$HTTP_W
        [[ $1 == lighttpd-1p ]] && w=0
        conf=$(http_conf lighttpd "$1" "$port" "$w" "$((HTTP_NOFILE / 2))") || return 1
        http_spawn "$1" "$port" /usr/sbin/lighttpd -D -f "$conf" && http_workers "$w" ;;
    python)
        http_spawn python "$port" "$HTTP_PYTHON" -m http.server --bind 127.0.0.1 \
            --directory "$OUT/www" "$port" && http_workers 0 ;;
    esac
}

# Check that the server answers each scenario's path with 200, and each
# content-coding scenario it takes part in with the coding expected (one
# that fails sits that scenario out).
http_check() {
    local sc code
    for sc in ka 1m dir; do
        code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "http://127.0.0.1:$SERVER_PORT${HTTP_PATH[$sc]}")
        [[ $code == 200 ]] || { fail "$1: GET ${HTTP_PATH[$sc]} answered $code, not 200"; return 1; }
    done
    for sc in "${HTTP_SCENARIOS[@]}"; do
        [[ -n ${HTTP_AE[$sc]:-} && -z $(http_skip "$1" "$sc") ]] || continue
        http_check_coding "$1" "$sc" || HR["$1|$sc|skip"]="failed the check of its coding (above)"
    done
}

# A field of the response head in FILE (curl -D), without its CR.
head_field() {
    awk -v f="$1" 'BEGIN { f = tolower(f) ":" }
        { sub(/\r$/, "") } tolower($1) == f { sub(/^[^:]*: */, ""); v = $0 } END { print v }' "$2"
}

# http_check_coding SERVER SCENARIO: GET the scenario's path as wrk will
# (its Accept-Encoding) and check the answer: 200, the Content-Encoding the
# server must choose (HTTP_ENC_OURS, HTTP_ENC_NGINX), a body that decodes to
# the JavaScript file, and for a variant on disk, that file's bytes with its
# size as Content-Length. Records the coding, the framing and the bytes of
# the response as sent (head + body, chunk framing included: curl --raw).
# A server that fails it fails the section; prefork-base, an older build
# that may not have codings, only gets a note.
http_check_coding() {
    local s=$1 sc=$2 want url code hsize bsize enc len te var why=''
    local ae="Accept-Encoding: ${HTTP_AE[$sc]}" js=$OUT/www/js/app.js
    url="http://127.0.0.1:$SERVER_PORT${HTTP_PATH[$sc]}"
    if http_ours "$s"; then want=${HTTP_ENC_OURS[$sc]}; else want=${HTTP_ENC_NGINX[$sc]}; fi
    read -r code hsize bsize < <(curl -s --raw -m 10 -H "$ae" -D "$OUT/coding.head" -o /dev/null \
        -w '%{http_code} %{size_header} %{size_download}\n' "$url")
    curl -s -m 10 -H "$ae" -o "$OUT/coding.body" "$url"
    enc=$(head_field Content-Encoding "$OUT/coding.head") len=$(head_field Content-Length "$OUT/coding.head")
    te=$(head_field Transfer-Encoding "$OUT/coding.head")
    case $enc in
    br) var=$OUT/www${HTTP_PATH[$sc]}.br ;;
    gzip) var=$OUT/www${HTTP_PATH[$sc]}.gz ;;
    *) var='' ;;
    esac
    if [[ $code != 200 ]]; then
        why="answered $code"
    elif [[ $enc != "$want" ]]; then
        why="answered with Content-Encoding '${enc:-none}', not $want"
    elif ! case $enc in br) brotli -dc ;; gzip) gzip -dc ;; esac <"$OUT/coding.body" 2>/dev/null | cmp -s - "$js"; then
        why="sent a $enc body that does not decode to the file"
    elif [[ -f $var ]] && ! cmp -s "$OUT/coding.body" "$var"; then
        why="did not send $var as it is"
    elif [[ -f $var && $len != $(stat -c %s "$var") ]]; then
        why="sent $var with Content-Length '${len:-none}', not its size $(stat -c %s "$var")"
    fi
    if [[ -n $why ]]; then
        why="$s: GET ${HTTP_PATH[$sc]} with $ae $why; head ($OUT/coding.head): $(tr -d '\r' <"$OUT/coding.head" | tr '\n' ' ' | head -c 400)"
        if [[ $s == prefork-base ]]; then report "note: $why (no $sc rows for it)"; else fail "$why"; fi
        return 1
    fi
    HR["$s|$sc|enc"]=$enc HR["$s|$sc|wire"]=$((hsize + bsize))
    HR["$s|$sc|framing"]=$([[ -n $len ]] && echo "Content-Length" || echo "${te:-no length}")
    note "http: $s $sc: $enc, $((hsize + bsize)) bytes on the wire (head $hsize), ${HR["$s|$sc|framing"]}"
}

# http_stop SERVER: stop it; only ours must exit 0 on TERM.
http_stop() {
    stop_process "$SERVER_PID"
    http_ours "$1" && ((STOP_STATUS != 0)) && fail "$1 (prefork serve) exited $STOP_STATUS on TERM"
    return 0
}

# /proc/PID/status field (VmRSS, RssAnon) in KiB, summed over PIDs.
status_kib() {
    local f=$1 p sum=0 v
    shift
    for p; do
        v=$(awk -v f="$f:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# CPU seconds used so far by the server's master and workers.
tree_cpu() {
    local p sum=0
    for p in "${HTTP_TREE[@]}"; do
        sum=$(awk -v a="$sum" -v b="$(cpu_seconds "$p")" 'BEGIN { print a + b }')
    done
    echo "$sum"
}

# The CPU seconds of this shell's finished children so far (bash's times
# builtin, which must run in this shell, not in $(...)), into FILE.
children_cpu_to() { times >"$1"; }
children_cpu_of() {
    awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"
}

# Pages of memory TCP sockets hold, machine-wide (/proc/net/sockstat).
tcp_mem_pages() {
    awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat
}

socket_count() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }

# hr_add SERVER SCENARIO NAME VALUE / hr_get SERVER SCENARIO NAME: the
# figures, one value per round; hr_get prints their median, or "-".
hr_add() { HR["$1|$2|$3"]+="$4 "; }
hr_get() {
    local v=${HR["$1|$2|$3"]:-}
    [[ -n $v ]] || { echo -; return; }
    tr ' ' '\n' <<<"$v" | grep . | median
}

# wrk's figures from its output: requests, Requests/sec, the 50% and 99%
# latencies in ms, and errors (socket errors plus non-2xx answers).
wrk_parse() {
    awk 'function ms(v) {
             if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0
             if (v ~ /m$/) return v * 60000; return v * 1000 }
         / requests in / { n = $1 }
         /^Requests\/sec:/ { r = $2 }
         /^ +50% / { p50 = ms($2) }
         /^ +99% / { p99 = ms($2) }
         /Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
         /Non-2xx or 3xx responses:/ { e += $5 }
         END { printf "%d %.0f %.3f %.3f %d\n", n, r, p50, p99, e }' "$1"
}

# Bytes per response as wrk read them, heads included, from its "N
# requests in Ts, SIZE read" line (SIZE in wrk's binary units).
wrk_bytes() {
    awk '/ requests in .* read$/ { n = $1; v = $(NF - 1)
             m = 1; if (v ~ /KB$/) m = 1024; else if (v ~ /MB$/) m = 1048576
             else if (v ~ /GB$/) m = 1073741824; else if (v ~ /TB$/) m = 1099511627776
             b = (v + 0) * m }
         END { if (n > 0) printf "%.0f\n", b / n; else print "-" }' "$1"
}

# http_wrk_once SERVER SCENARIO SECONDS: one wrk run against the running
# server. Sets WRK (requests rps p50 p99 errors server_cpu_s req_per_cpu_s
# server_cpu% wrk_cpu% other% bytes_per_response) and writes a raw line to
# the results file.
http_wrk_once() {
    local s=$1 sc=$2 secs=$3 hdr=() c0 c1 m0 m1 w0 w1 e0 e1 rc reqs rps p50 p99 err
    [[ $sc == close ]] && hdr=(-H 'Connection: close')
    [[ -n ${HTTP_AE[$sc]:-} ]] && hdr=(-H "Accept-Encoding: ${HTTP_AE[$sc]}")
    WRK=()
    c0=$(tree_cpu) m0=$(machine_busy) e0=$EPOCHREALTIME
    children_cpu_to "$OUT/times0"
    bounded "$OUT/wrk.out" wrk -t2 -c"${HTTP_CONNS[$sc]}" -d"${secs}s" --latency --timeout "${HTTP_WRK_TIMEOUT:-10s}" \
        "${hdr[@]}" "${HTTP_SCHEME:-http}://127.0.0.1:$SERVER_PORT${HTTP_PATH[$sc]}"
    rc=$?
    children_cpu_to "$OUT/times1"
    e1=$EPOCHREALTIME c1=$(tree_cpu) m1=$(machine_busy)
    w0=$(children_cpu_of "$OUT/times0") w1=$(children_cpu_of "$OUT/times1")
    read -r reqs rps p50 p99 err < <(wrk_parse "$OUT/wrk.out")
    if [[ $rc -ne 0 || ${reqs:-0} -eq 0 ]]; then
        note "http: $s $sc: wrk exited $rc after $reqs requests"
        http_ours "$s" && fail "wrk against $s ($sc) exited $rc after $reqs requests"
        return 1
    fi
    # CPU shares are over the measured wall time, which includes wrk's start.
    read -ra WRK < <(awk -v c0="$c0" -v c1="$c1" -v m0="$m0" -v m1="$m1" -v w0="$w0" -v w1="$w1" \
        -v e0="$e0" -v e1="$e1" -v n="$reqs" 'BEGIN { c = c1 - c0; w = w1 - w0; t = e1 - e0
        o = 100 * (m1 - m0 - c - w) / t
        printf "%.2f %.0f %.0f %.0f %.0f\n", c, (c > 0 ? n / c : 0), 100 * c / t, 100 * w / t, (o < 0 ? 0 : o) }')
    WRK=("$reqs" "$rps" "$p50" "$p99" "$err" "${WRK[@]}" "$(wrk_bytes "$OUT/wrk.out")")
    printf 'raw server=%s scenario=%s seconds=%s requests=%s rps=%s p50_ms=%s p99_ms=%s errors=%s server_cpu_s=%s req_per_cpu_s=%s server_cpu_pct=%s wrk_cpu_pct=%s other_cpu_pct=%s bytes_per_resp=%s\n' \
        "$s" "$sc" "$secs" "${WRK[@]}" >>"$RESULT"
    note "http: $s $sc: $rps req/s, p99 $p99 ms, ${WRK[6]} req per CPU-s, other load ${WRK[9]}%"
}

# http_wrk SERVER SCENARIO SECONDS: a wrk run, repeated (up to
# HTTP_RETRIES times) while other processes took over 20% of a CPU during
# it: on this shared machine someone else's build or test run can halve a
# row. The last attempt's figures go to HR.
http_wrk() {
    local s=$1 sc=$2 i
    for ((i = 0; i <= HTTP_RETRIES; i++)); do
        http_wrk_once "$@" || return 1
        ((WRK[9] <= 20)) && break
        ((i < HTTP_RETRIES)) && note "http: $s $sc: other load ${WRK[9]}%: running it again"
    done
    hr_add "$s" "$sc" rps "${WRK[1]}"; hr_add "$s" "$sc" p50 "${WRK[2]}"; hr_add "$s" "$sc" p99 "${WRK[3]}"
    hr_add "$s" "$sc" errors "${WRK[4]}"; hr_add "$s" "$sc" per_cpu "${WRK[6]}"
    hr_add "$s" "$sc" scpu "${WRK[7]}"; hr_add "$s" "$sc" wcpu "${WRK[8]}"; hr_add "$s" "$sc" other "${WRK[9]}"
    hr_add "$s" "$sc" bpr "${WRK[10]}"
    http_wire_check "$s" "$sc" "${WRK[10]}"
}

# http_wire_check SERVER SCENARIO BYTES: in a content-coding scenario, the
# bytes per response wrk read must be those of the response checked with
# curl (within 5%): otherwise the server changed what it sends under load.
http_wire_check() {
    local s=$1 sc=$2 b=$3 w=${HR["$1|$2|wire"]:-}
    [[ -n ${HTTP_AE[$sc]:-} && -n $w && $b != - ]] || return 0
    awk -v b="$b" -v w="$w" 'BEGIN { exit !(b > 1.05 * w || b < 0.95 * w) }' &&
        fail "$s $sc: wrk read $b bytes per response, where the response checked with curl had $w: the coding changed under load?"
    return 0
}

# Memory at rest: the serving processes right after start-up.
http_rest() {
    local s=$1 p n=${#HTTP_WPIDS[@]} rss=0 anon=0 max=0 amax=0 v a
    for p in "${HTTP_WPIDS[@]}"; do
        v=$(status_kib VmRSS "$p") a=$(status_kib RssAnon "$p")
        rss=$((rss + v)) anon=$((anon + a))
        ((v > max)) && max=$v
        ((a > amax)) && amax=$a
    done
    hr_add "$s" rest workers "$n"
    hr_add "$s" rest rss_avg $((rss / n)); hr_add "$s" rest rss_max "$max"
    hr_add "$s" rest anon_avg $((anon / n)); hr_add "$s" rest anon_max "$amax"
    ((${#HTTP_TREE[@]} > n)) && hr_add "$s" rest master_rss "$(status_kib VmRSS "$SERVER_PID")"
    printf 'raw server=%s at_rest procs=%s vmrss_kib_avg=%s max=%s rss_anon_kib_avg=%s max=%s\n' \
        "$s" "$n" $((rss / n)) "$max" $((anon / n)) "$amax" >>"$RESULT"
    HTTP_SOCKS0=()
    for p in "${HTTP_WPIDS[@]}"; do HTTP_SOCKS0+=("$(socket_count "$p")"); done
}

# http_idle_wait PID FILE: wait for http_idle's "ready" line.
http_idle_wait() {
    local i
    for ((i = 0; i < 1500; i++)); do
        grep -q '^ready' "$2" && return 0
        alive "$1" || return 1
        sleep 0.1
    done
    return 1
}

# The idle scenario: hold HTTP_IDLE_N idle connections, read the memory
# they cost, run the 1 KiB keep-alive load meanwhile, then check that
# none was dropped.
http_idle_run() {
    local s=$1 secs=$2 a0 a1 v0 v1 k0 k1 pid i split='' line held dropped
    a0=$(status_kib RssAnon "${HTTP_WPIDS[@]}") v0=$(status_kib VmRSS "${HTTP_WPIDS[@]}")
    k0=$(tcp_mem_pages)
    "$B/bench/http_idle" -p "$SERVER_PORT" -n "$HTTP_IDLE_N" -d $(((HTTP_RETRIES + 1) * secs + 120)) \
        >"$OUT/http_idle.out" 2>"$OUT/http_idle.err" &
    pid=$!
    PIDS+=("$pid")
    if ! http_idle_wait "$pid" "$OUT/http_idle.out"; then
        stop_process "$pid"
        note "http: $s: http_idle did not get $HTTP_IDLE_N idle connections: $(head -c 300 "$OUT/http_idle.err")"
        http_ours "$s" && fail "http_idle against $s: $(head -n 3 "$OUT/http_idle.err")"
        return 1
    fi
    sleep 0.3
    a1=$(status_kib RssAnon "${HTTP_WPIDS[@]}") v1=$(status_kib VmRSS "${HTTP_WPIDS[@]}")
    k1=$(tcp_mem_pages)
    for ((i = 0; i < ${#HTTP_WPIDS[@]}; i++)); do
        split+="${split:+/}$(($(socket_count "${HTTP_WPIDS[i]}") - HTTP_SOCKS0[i]))"
    done
    http_wrk "$s" idle "$secs"
    stop_process "$pid"
    line=$(grep '^held=' "$OUT/http_idle.out")
    held=$(field held "$line") dropped=$(field dropped "$line")
    hr_add "$s" mem held "${held:-0}"; hr_add "$s" mem dropped "${dropped:-?}"
    # Memory only from the first round: freed memory a process keeps for
    # reuse would make later rounds' growth look smaller than it is.
    if ((HTTP_ROUND == 0)); then
        hr_add "$s" mem own_b $(((a1 - a0) * 1024 / HTTP_IDLE_N))
        hr_add "$s" mem rss_b $(((v1 - v0) * 1024 / HTTP_IDLE_N))
        hr_add "$s" mem kernel_b $(((k1 - k0) * $(getconf PAGESIZE) / HTTP_IDLE_N))
        HR["$s|mem|split"]=$split
    fi
    printf 'raw server=%s idle_conns=%s held=%s dropped=%s rss_anon_kib_before=%s after=%s vmrss_kib_before=%s after=%s tcp_mem_pages_before=%s after=%s conns_per_worker=%s\n' \
        "$s" "$HTTP_IDLE_N" "$held" "$dropped" "$a0" "$a1" "$v0" "$v1" "$k0" "$k1" "$split" >>"$RESULT"
}

# Whether server s takes part in scenario sc, else why not.
http_skip() {
    case $1:$2 in
    python:idle) echo "python's http.server speaks HTTP/1.0 and closes every connection" ;;
    lighttpd:js-* | lighttpd-1p:js-* | python:js-*)
        echo "not configured for content codings (see bench/README.md)" ;;
    lighttpd-1p:idle)
        ((HTTP_NOFILE / 2 >= HTTP_IDLE_N + 64 + 16)) ||
            echo "one lighttpd process allows max-fds/2 = $((HTTP_NOFILE / 2)) connections (open-file limit $HTTP_NOFILE), fewer than $HTTP_IDLE_N idle + 64" ;;
    esac
}

# Every server of the comparison runs from the start of the section to its
# end, each on a port of its own and idle but for its own runs. A scenario's
# runs then follow one another server after server, round after round, so a
# slow spell of this shared machine hits every server alike rather than the
# one whose turn it happened to be; ratios compare runs minutes apart at most.

# http_keep SERVER / http_use SERVER: save, and make current again, one
# running server's globals (SERVER_PID SERVER_PORT HTTP_WPIDS HTTP_TREE
# HTTP_SOCKS0).
http_keep() {
    SV_PID[$1]=$SERVER_PID SV_PORT[$1]=$SERVER_PORT SV_WPIDS[$1]="${HTTP_WPIDS[*]}"
    SV_TREE[$1]="${HTTP_TREE[*]}" SV_SOCKS0[$1]="${HTTP_SOCKS0[*]}"
}
http_use() {
    SERVER_PID=${SV_PID[$1]} SERVER_PORT=${SV_PORT[$1]}
    read -ra HTTP_WPIDS <<<"${SV_WPIDS[$1]}"
    read -ra HTTP_TREE <<<"${SV_TREE[$1]}"
    read -ra HTTP_SOCKS0 <<<"${SV_SOCKS0[$1]}"
}

# Start every server, read its memory at rest and check that it answers;
# HTTP_UP lists those that did.
http_start_all() {
    local s
    HTTP_UP=() SV_PID=() SV_PORT=() SV_WPIDS=() SV_TREE=() SV_SOCKS0=()
    for s in "${HTTP_RUN[@]}"; do
        note "http: starting $s"
        if ! http_start "$s"; then
            # A server whose workers did not appear may still be running.
            [[ " ${PIDS[*]} " == *" $SERVER_PID "* ]] && stop_process "$SERVER_PID"
            continue
        fi
        http_rest "$s"
        http_keep "$s"
        if http_check "$s"; then HTTP_UP+=("$s"); else http_stop "$s"; fi
    done
}

http_stop_all() {
    local s
    for s in "${HTTP_UP[@]}"; do
        http_use "$s"
        http_stop "$s"
    done
}

# One scenario: every round, every server (in reverse order every other
# round, so that none always runs right after the same one).
http_scenario() {
    local sc=$1 r i s secs why order
    for ((r = 0; r < HTTP_ROUNDS; r++)); do
        HTTP_ROUND=$r
        order=("${HTTP_UP[@]}")
        if ((r % 2)); then
            order=()
            for ((i = ${#HTTP_UP[@]} - 1; i >= 0; i--)); do order+=("${HTTP_UP[i]}"); done
        fi
        for s in "${order[@]}"; do
            why=${HR["$s|$sc|skip"]:-}
            [[ -n $why ]] || why=$(http_skip "$s" "$sc")
            [[ -n $why ]] && { HR["$s|$sc|skip"]=$why; continue; }
            http_use "$s"
            alive "$SERVER_PID" || { fail "$s (pid $SERVER_PID) is gone"; continue; }
            note "http: $sc, round $((r + 1))/$HTTP_ROUNDS: $s"
            secs=$HTTP_SECS
            [[ $s == python ]] && secs=$HTTP_PY_SECS
            if [[ $sc == idle ]]; then http_idle_run "$s" "$secs"; else http_wrk "$s" "$sc" "$secs"; fi
        done
    done
}

# ---- section http: the report ----

http_row() { printf '%-12s %9s %8s %8s %10s %9s %9s %7s %6s %8s\n' "$@" | tee -a "$RESULT"; }
# md LINE...: lines for the Markdown copy of the report.
md() {
    local l
    for l; do HTTP_MD+="$l"$'\n'; done
}
# ratio A B [DIGITS]: A / B to DIGITS decimals (default 2), or "-".
ratio() {
    awk -v a="$1" -v b="$2" -v d="${3:-2}" \
        'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%." d "f\n", a / b }'
}

# http_best SCENARIO NAME max|min [PEER...]: the best figure of the peers
# (default HTTP_PEERS) and whose, as "VALUE SERVER".
http_best() {
    local sc=$1 name=$2 how=$3 s v best=- who=- peers=("${@:4}")
    ((${#peers[@]})) || peers=("${HTTP_PEERS[@]}")
    for s in "${peers[@]}"; do
        v=$(hr_get "$s" "$sc" "$name")
        [[ $v == - ]] && continue
        if [[ $best == - ]] || awk -v a="$v" -v b="$best" -v h="$how" \
            'BEGIN { exit !(h == "max" ? a > b : a < b) }'; then
            best=$v who=$s
        fi
    done
    echo "$best $who"
}

# Count a verdict for the summary.
http_count() {
    case $1 in
    MISS) HTTP_MISSES=$((HTTP_MISSES + 1)) ;;
    n/a) HTTP_UNKNOWN=$((HTTP_UNKNOWN + 1)) ;;
    esac
}

# verdict RATIO ge|le TARGET: PASS or MISS (or n/a when a figure is missing).
verdict() {
    [[ $1 == - ]] && { echo n/a; return; }
    awk -v r="$1" -v t="$3" -v op="$2" 'BEGIN { ok = op == "ge" ? r >= t : r <= t; print ok ? "PASS" : "MISS" }'
}

# The prefork/best-peer ratios of one scenario, with verdicts.
http_ratios() {
    local sc=$1 b1 w1 b2 w2 b3 w3 r1 r2 r3 v1 v2 v3 v
    read -r b1 w1 < <(http_best "$sc" rps max)
    read -r b2 w2 < <(http_best "$sc" per_cpu max)
    read -r b3 w3 < <(http_best "$sc" p99 min)
    r1=$(ratio "$(hr_get prefork "$sc" rps)" "$b1") v1=$(verdict "$r1" ge 1.10)
    r2=$(ratio "$(hr_get prefork "$sc" per_cpu)" "$b2") v2=$(verdict "$r2" ge 1.10)
    r3=$(ratio "$(hr_get prefork "$sc" p99)" "$b3") v3=$(verdict "$r3" le 1.00)
    report "prefork / best of nginx and lighttpd: req/s $r1 (best: $w1; target >= 1.10: $v1)," \
        "req per CPU-s $r2 (best: $w2; >= 1.10: $v2), p99 $r3 (lowest: $w3; <= 1.00: $v3)"
    md "| **prefork ÷ best peer** | **$r1** ($w1) $v1 | | **$r3** ($w3) $v3 | **$r2** ($w2) $v2 |"
    for v in "$v1" "$v2" "$v3"; do http_count "$v"; done
    http_same_w "$sc"
}

# The ratios of a content-coding scenario: prefork over its one peer
# (HTTP_VS), against the issue's targets (at least 1.10 in req/s and in
# requests per CPU-second; p99 for information), then what each server
# sent: coding, framing and bytes per response, as curl saw one and as wrk
# read them under load.
http_ratios_vs() {
    local sc=$1 p=${HTTP_VS[$1]} r1 r2 r3 v1 v2 s line='' wrkl=''
    r1=$(ratio "$(hr_get prefork "$sc" rps)" "$(hr_get "$p" "$sc" rps)") v1=$(verdict "$r1" ge 1.10)
    r2=$(ratio "$(hr_get prefork "$sc" per_cpu)" "$(hr_get "$p" "$sc" per_cpu)") v2=$(verdict "$r2" ge 1.10)
    r3=$(ratio "$(hr_get prefork "$sc" p99)" "$(hr_get "$p" "$sc" p99)")
    report "prefork / $p: req/s $r1 (target >= 1.10: $v1), req per CPU-s $r2 (>= 1.10: $v2), p99 $r3 (no target)"
    md "| **prefork ÷ $p** | **$r1** $v1 | | $r3 | **$r2** $v2 | |"
    for s in "${HTTP_RUN[@]}"; do
        [[ -n ${HR["$s|$sc|wire"]:-} ]] || continue
        line+=" $s ${HR["$s|$sc|wire"]} (${HR["$s|$sc|enc"]}, ${HR["$s|$sc|framing"]}),"
        wrkl+=" $s $(hr_get "$s" "$sc" bpr),"
    done
    report "bytes per response, head + body as sent (curl):${line%,}; as wrk read them:${wrkl%,}"
    http_count "$v1"
    http_count "$v2"
}

# The same ratios against the peers with as many processes as ours only
# (nginx, lighttpd with workers), for information: not counted.
http_same_w() {
    local sc=$1 b1 w1 b2 w2 b3 w3
    read -r b1 w1 < <(http_best "$sc" rps max nginx lighttpd)
    read -r b2 w2 < <(http_best "$sc" per_cpu max nginx lighttpd)
    read -r b3 w3 < <(http_best "$sc" p99 min nginx lighttpd)
    report "  against $HTTP_W-process peers only (nginx, lighttpd): req/s $(ratio "$(hr_get prefork "$sc" rps)" "$b1") ($w1)," \
        "req per CPU-s $(ratio "$(hr_get prefork "$sc" per_cpu)" "$b2") ($w2), p99 $(ratio "$(hr_get prefork "$sc" p99)" "$b3") ($w3)"
}

http_table() {
    local sc=$1 s skip noisy=0 o
    report ""
    report "-- $sc: ${HTTP_DESC[$sc]}"
    http_row server req/s p50_ms p99_ms req/cpu_s server_cpu% wrk_cpu% other% errors B/resp
    # The Markdown tables of the coding scenarios also give the bytes per response.
    if [[ -n ${HTTP_VS[$sc]:-} ]]; then
        md "" "**${HTTP_DESC[$sc]}**" "" "| server | req/s | p50 ms | p99 ms | req per CPU-s | bytes per response |" "| --- | ---: | ---: | ---: | ---: | ---: |"
    else
        md "" "**${HTTP_DESC[$sc]}**" "" "| server | req/s | p50 ms | p99 ms | req per CPU-s |" "| --- | ---: | ---: | ---: | ---: |"
    fi
    for s in "${HTTP_RUN[@]}"; do
        skip=${HR["$s|$sc|skip"]:-}
        if [[ -n $skip ]]; then
            report "$(printf '%-12s skipped: %s' "$s" "$skip")"
            md "| $s | skipped | | | |$([[ -n ${HTTP_VS[$sc]:-} ]] && echo ' |')"
            continue
        fi
        http_row "$s" "$(hr_get "$s" "$sc" rps)" "$(hr_get "$s" "$sc" p50)" "$(hr_get "$s" "$sc" p99)" \
            "$(hr_get "$s" "$sc" per_cpu)" "$(hr_get "$s" "$sc" scpu)" "$(hr_get "$s" "$sc" wcpu)" \
            "$(hr_get "$s" "$sc" other)" "$(hr_get "$s" "$sc" errors)" "$(hr_get "$s" "$sc" bpr)"
        if [[ -n ${HTTP_VS[$sc]:-} ]]; then
            md "| $s | $(hr_get "$s" "$sc" rps) | $(hr_get "$s" "$sc" p50) | $(hr_get "$s" "$sc" p99) | $(hr_get "$s" "$sc" per_cpu) | ${HR["$s|$sc|wire"]:--} (${HR["$s|$sc|enc"]:--}) |"
        else
            md "| $s | $(hr_get "$s" "$sc" rps) | $(hr_get "$s" "$sc" p50) | $(hr_get "$s" "$sc" p99) | $(hr_get "$s" "$sc" per_cpu) |"
        fi
        o=$(hr_get "$s" "$sc" other)
        [[ $o != - ]] && awk -v o="$o" 'BEGIN { exit !(o > 20) }' && noisy=1
    done
    ((noisy)) && report "warning: other processes used over 20% of a CPU during some runs: those rows are low and noisy"
    if [[ -n ${HTTP_VS[$sc]:-} ]]; then http_ratios_vs "$sc"; else http_ratios "$sc"; fi
    http_ab "$sc"
}

# The A/B of one scenario, when prefork-base ran: prefork over the older
# build, ratios of the medians (3 decimals: the bar is 3% away), and the
# current issue's bar on requests per CPU-second. Counted apart from the
# targets against the peers, which prefork-base is not one of.
http_ab() {
    local sc=$1 r1 r2 v
    ((HTTP_AB_ON)) || return 0
    r1=$(ratio "$(hr_get prefork "$sc" rps)" "$(hr_get prefork-base "$sc" rps)" 3)
    r2=$(ratio "$(hr_get prefork "$sc" per_cpu)" "$(hr_get prefork-base "$sc" per_cpu)" 3)
    v=$(verdict "$r2" ge "$HTTP_AB_MIN")
    report "prefork vs prefork-base: req/s $r1, req per CPU-s $r2"
    report "  per CPU-s >= ${HTTP_AB_MIN}x prefork-base: $v"
    md "| **prefork ÷ prefork-base** | **$r1** | | | **$r2** $v |"
    HTTP_AB_N=$((HTTP_AB_N + 1))
    case $v in
    MISS) HTTP_AB_MISSES=$((HTTP_AB_MISSES + 1)) ;;
    n/a) HTTP_AB_UNKNOWN=$((HTTP_AB_UNKNOWN + 1)) ;;
    esac
}

# How the held idle connections changed the 1 KiB keep-alive figures.
http_idle_effect() {
    local s line=''
    for s in "${HTTP_RUN[@]}"; do
        [[ $(hr_get "$s" idle rps) == - ]] && continue
        line+=" $s $(ratio "$(hr_get "$s" idle rps)" "$(hr_get "$s" ka rps)")x req/s, $(ratio "$(hr_get "$s" idle p99)" "$(hr_get "$s" ka p99)")x p99;"
    done
    report "with $HTTP_IDLE_N idle connections held, against the same load without:${line%;}"
}

http_memory() {
    local s own rss mib v
    report ""
    report "-- memory at rest (after start-up, before any request; KiB per serving process, avg/max)"
    printf '%-12s %8s %14s %14s %12s\n' server procs VmRSS RssAnon master_VmRSS | tee -a "$RESULT"
    md "" "**Memory**" "" "| server | VmRSS per worker at rest, KiB | RssAnon per worker at rest, KiB | own memory per idle connection, B | VmRSS per idle connection, B |" "| --- | ---: | ---: | ---: | ---: |"
    for s in "${HTTP_RUN[@]}"; do
        printf '%-12s %8s %14s %14s %12s\n' "$s" "$(hr_get "$s" rest workers)" \
            "$(hr_get "$s" rest rss_avg)/$(hr_get "$s" rest rss_max)" \
            "$(hr_get "$s" rest anon_avg)/$(hr_get "$s" rest anon_max)" "$(hr_get "$s" rest master_rss)" | tee -a "$RESULT"
        md "| $s | $(hr_get "$s" rest rss_max) | $(hr_get "$s" rest anon_max) | $(hr_get "$s" mem own_b) | $(hr_get "$s" mem rss_b) |"
    done
    report ""
    report "-- $HTTP_IDLE_N idle keep-alive connections, each after one GET /1k.bin; bytes per connection"
    report "   own = the serving processes' RssAnon (heap, stacks) with them minus before; kernel = TCP socket"
    report "   memory (/proc/net/sockstat), machine-wide, both ends (http_idle's sockets too)"
    printf '%-12s %6s %8s %8s %8s %10s  %s\n' server held dropped own_B VmRSS_B kernel_B conns_per_worker | tee -a "$RESULT"
    for s in "${HTTP_RUN[@]}"; do
        [[ $(hr_get "$s" mem held) == - ]] && continue
        printf '%-12s %6s %8s %8s %8s %10s  %s\n' "$s" "$(hr_get "$s" mem held)" "$(hr_get "$s" mem dropped)" \
            "$(hr_get "$s" mem own_b)" "$(hr_get "$s" mem rss_b)" "$(hr_get "$s" mem kernel_b)" \
            "${HR["$s|mem|split"]:-}" | tee -a "$RESULT"
    done
    rss=$(hr_get prefork rest rss_max) own=$(hr_get prefork mem own_b)
    mib=$(awk -v k="$rss" 'BEGIN { if (k == "-") print "-"; else printf "%.2f", k / 1024 }')
    v=$(verdict "$mib" le 1.5)
    http_count "$v"
    report "prefork VmRSS per idle worker (the larger): $mib MiB (target <= 1.5 MiB: $v)"
    v=$(verdict "$own" le 1024)
    http_count "$v"
    report "prefork own memory per idle connection: $own B (target <= 1024 B: $v)"
}

http_report() {
    local sc
    HTTP_MD='' HTTP_MISSES=0 HTTP_UNKNOWN=0 HTTP_AB_N=0 HTTP_AB_MISSES=0 HTTP_AB_UNKNOWN=0
    md "Static files on $(nproc) CPUs shared by the servers and wrk (\`bench/run.sh $RESULT_NAME\`, ${HTTP_SECS} s per run$( ((HTTP_ROUNDS > 1)) && echo ", medians of $HTTP_ROUNDS rounds"); $(date -u +%Y-%m-%d)). Peers: $HTTP_VERSIONS.$([[ $HTTP_AFFINITY != off ]] && echo " prefork --mode reuseport --cpu-affinity $HTTP_AFFINITY, nginx reuseport + worker_cpu_affinity auto.")$([[ -n ${BENCH_PREFORK_ARGS:-} ]] && echo " prefork serve $BENCH_PREFORK_ARGS.")$( ((HTTP_AB_ON)) && echo " prefork-base: $BENCH_PREFORK_BASE, started as prefork is; not a peer.")"
    for sc in "${HTTP_SCENARIOS[@]}"; do http_table "$sc"; done
    report ""
    http_idle_effect
    http_memory
    report ""
    report "targets: $((HTTP_TARGETS - HTTP_MISSES - HTTP_UNKNOWN)) of $HTTP_TARGETS met, $HTTP_MISSES missed, $HTTP_UNKNOWN not measured (a shared $(nproc)-CPU machine, wrk on the same CPUs: see bench/README.md)"
    md "" "Targets: $((HTTP_TARGETS - HTTP_MISSES - HTTP_UNKNOWN)) of $HTTP_TARGETS met, $HTTP_MISSES missed, $HTTP_UNKNOWN not measured."
    if ((HTTP_AB_N)); then
        report "A/B targets (prefork req per CPU-s >= ${HTTP_AB_MIN}x prefork-base, not counted above): $((HTTP_AB_N - HTTP_AB_MISSES - HTTP_AB_UNKNOWN)) of $HTTP_AB_N met, $HTTP_AB_MISSES missed, $HTTP_AB_UNKNOWN not measured"
        md "A/B against prefork-base (req per CPU-s >= ${HTTP_AB_MIN}x): $((HTTP_AB_N - HTTP_AB_MISSES - HTTP_AB_UNKNOWN)) of $HTTP_AB_N met."
    fi
    printf '%s' "$HTTP_MD" >"${RESULT%.txt}.md"
    note "markdown: ${RESULT%.txt}.md"
}

http_notes() {
    report "static HTTP: prefork serve against nginx, lighttpd and python3 -m http.server on 127.0.0.1, wrk -t2 --latency"
    report "  $HTTP_VERSIONS"
    report "  this machine has $(nproc) CPU(s), shared by the server under test and wrk (2 threads): expect the"
    report "  client to take about one of them; server_cpu%/wrk_cpu%/other% are % of one CPU."
    report "  workers: $HTTP_W everywhere (prefork -w $HTTP_W, nginx worker_processes $HTTP_W, lighttpd server.max-worker $HTTP_W);"
    report "  lighttpd-1p is lighttpd as usually run, one process; both count as peers. python is one process."
    if [[ $HTTP_AFFINITY == off ]]; then
        report "  CPU affinity: none, one shared listener (the defaults; BENCH_CPU_AFFINITY=auto pins prefork's and nginx's workers)."
    else
        report "  CPU affinity: prefork --mode reuseport --cpu-affinity $HTTP_AFFINITY (each connection steered to the worker"
        report "  on its CPU), nginx listen ... reuseport and worker_cpu_affinity auto; lighttpd has no such settings."
    fi
    if [[ -n ${BENCH_PREFORK_ARGS:-} ]]; then
        report "  prefork serve also gets: $BENCH_PREFORK_ARGS (BENCH_PREFORK_ARGS)"
    fi
    if ((HTTP_AB_ON)); then
        report "  prefork-base: $BENCH_PREFORK_BASE (BENCH_PREFORK_BASE), started as prefork is (same options, -w $HTTP_W),"
        report "  in the same rounds; not a peer: only the \"prefork vs prefork-base\" lines compare with it."
    fi
    report "  keep-alive: idle timeout ${HTTP_KEEPALIVE} s in every server (defaults: prefork 15, nginx 75, lighttpd 5), so the"
    report "  held idle connections last the run; at most 1000 requests per connection (prefork's default and"
    report "  nginx's keepalive_requests; lighttpd server.max-keep-alive-requests 1000). nginx: sendfile on,"
    report "  tcp_nopush on, access_log off, autoindex on. prefork: --access-log off, its 1 s cache of small"
    report "  files and listings on (the default); nginx's open_file_cache off (its default)."
    report "  content codings (js-* scenarios; wrk -H 'Accept-Encoding: gzip, br', gzip alone where only a .gz is on"
    report "  disk): prefork's defaults (precompressed variants, its own compression at level 6 once per worker,"
    report "  cached); nginx, under prefixes of their own, gzip_static on, and gzip on with gzip_comp_level 6 (per"
    report "  request); nginx-light has no brotli; lighttpd and python sit these out. Each server's coding is"
    report "  checked with curl before the runs."
    report "  every server runs for the whole section, idle but for its own runs; each scenario runs server"
    report "  after server, round after round: ${HTTP_SECS} s per wrk run (python ${HTTP_PY_SECS} s), $HTTP_ROUNDS round(s), server"
    report "  order reversed every other round; figures are medians over rounds; a run during which other processes used over 20% of a CPU"
    report "  is repeated, up to $HTTP_RETRIES times (BENCH_HTTP_RETRIES). Server CPU = utime+stime of master and workers around each run"
    report "  (loopback TCP work the kernel does in softirq is not charged to any process)."
    report "  open-file limit: $HTTP_NOFILE (hard $(ulimit -Hn))"
}

# The scenarios to run: BENCH_HTTP_SCENARIOS (a subset, to iterate on one
# row), or all. Each counts 3 targets (a content-coding one 2: req/s and
# per CPU-s against nginx), and memory 2 more (the idle one is "not
# measured" without the idle scenario).
http_scenarios() {
    local sc
    HTTP_SCENARIOS=(${BENCH_HTTP_SCENARIOS:-${HTTP_ALL[*]}})
    HTTP_TARGETS=2
    for sc in "${HTTP_SCENARIOS[@]}"; do
        [[ -n ${HTTP_DESC[$sc]:-} ]] || { fail "unknown scenario in BENCH_HTTP_SCENARIOS: $sc (${HTTP_ALL[*]})"; return 1; }
        if [[ -n ${HTTP_VS[$sc]:-} ]]; then HTTP_TARGETS=$((HTTP_TARGETS + 2)); else HTTP_TARGETS=$((HTTP_TARGETS + 3)); fi
    done
}

# The servers to compare: BENCH_HTTP_SERVERS, or all that are installed.
# With BENCH_PREFORK_BASE, prefork-base comes right after prefork unless
# the list places it.
http_servers() {
    local s list=${BENCH_HTTP_SERVERS:-prefork nginx lighttpd lighttpd-1p python}
    HTTP_RUN=()
    for s in $list; do
        case $s in
        prefork)
            need "$B/prefork" || return 1
            HTTP_RUN+=(prefork)
            [[ -n ${BENCH_PREFORK_BASE:-} && " $list " != *" prefork-base "* ]] && http_base_ok &&
                HTTP_RUN+=(prefork-base)
            continue ;;
        prefork-base) http_base_ok || continue ;;
        nginx) [[ -x /usr/sbin/nginx ]] || { report "note: /usr/sbin/nginx missing (tests/deps.sh installs it)"; continue; } ;;
        lighttpd | lighttpd-1p) [[ -x /usr/sbin/lighttpd ]] || { report "note: /usr/sbin/lighttpd missing"; continue; } ;;
        python) [[ -n $HTTP_PYTHON ]] || { report "note: python3 missing"; continue; } ;;
        *) fail "unknown server in BENCH_HTTP_SERVERS: $s"; return 1 ;;
        esac
        HTTP_RUN+=("$s")
    done
    HTTP_AB_ON=0
    [[ " ${HTTP_RUN[*]} " == *" prefork-base "* ]] && HTTP_AB_ON=1
    return 0
}

# Whether BENCH_PREFORK_BASE names a program that can run as prefork-base.
http_base_ok() {
    local b=${BENCH_PREFORK_BASE:-}
    if [[ -z $b ]]; then
        report "note: prefork-base needs BENCH_PREFORK_BASE=/path/to/an/older/prefork: not running it"
        return 1
    fi
    if [[ ! -f $b || ! -x $b ]]; then
        report "note: BENCH_PREFORK_BASE=$b is missing or not executable: no prefork-base, no A/B (bench/README.md says how to build one)"
        return 1
    fi
}

http_versions() {
    local v=()
    [[ -x /usr/sbin/nginx ]] && v+=("$(/usr/sbin/nginx -v 2>&1 | sed 's/.*: //')")
    [[ -x /usr/sbin/lighttpd ]] && v+=("$(/usr/sbin/lighttpd -v 2>&1 | sed 's/ .*//')")
    [[ -n $HTTP_PYTHON ]] && v+=("$("$HTTP_PYTHON" --version 2>&1)")
    v+=("$(wrk -v 2>&1 | head -n 1 | awk '{ print "wrk " $2 }')")
    HTTP_VERSIONS=$(printf '%s, ' "${v[@]}")
    HTTP_VERSIONS=${HTTP_VERSIONS%, }
}

# The whole comparison; the two sections differ only in length and servers.
http_bench() {
    local sc
    need "$B/bench/http_idle" || return
    command -v wrk >/dev/null || { fail "wrk is missing (tests/deps.sh installs it)"; return; }
    HTTP_IDLE_N=${BENCH_HTTP_IDLE:-10000} HTTP_RETRIES=${BENCH_HTTP_RETRIES:-2}
    HTTP_DESC[idle]="1 KiB file, keep-alive, 64 connections, while $HTTP_IDLE_N idle keep-alive connections are held"
    HTTP_SECS=$(awk -v s="$RUN_SECONDS" 'BEGIN { s = int(s + 0.5); print s < 1 ? 1 : s }')
    HTTP_PY_SECS=$((HTTP_SECS < 3 ? HTTP_SECS : 3))
    HTTP_PYTHON=$(command -v /usr/bin/python3 python3 | head -n 1)
    HR=()
    http_scenarios && http_servers && http_www && http_nofile || return
    http_versions
    http_notes
    http_start_all
    for sc in "${HTTP_SCENARIOS[@]}"; do http_scenario "$sc"; done
    http_stop_all
    http_report
}

# Three rounds of 5 s, and the median of each figure: where four busy
# threads share two CPUs, a single run can land in a poor arrangement of
# them (see bench/README.md, "The keep-alive p99 is bimodal"), and the
# median of three is what a reader can expect to see again.
section_http() {
    local RUN_SECONDS=${BENCH_SECONDS:-5}
    HTTP_ROUNDS=${BENCH_ROUNDS:-3} RESULT_NAME=http
    http_bench
}

# The same comparison, short: 3 s runs (unless BENCH_SECONDS says), one
# round, and without python, which only shows how far behind it is.
section_http_quick() {
    local RUN_SECONDS=${BENCH_SECONDS:-3} BENCH_HTTP_SERVERS=${BENCH_HTTP_SERVERS:-prefork nginx lighttpd lighttpd-1p}
    HTTP_ROUNDS=1 RESULT_NAME=http_quick
    http_bench
}

# ---- lifecycle: reload and upgrade under load ----

# wrk's Max latency in ms ("Latency  1.08ms  1.12ms  15.94ms  91.17%").
wrk_max_ms() {
    awk 'function ms(v) {
             if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0
             if (v ~ /m$/) return v * 60000; return v * 1000 }
         /^ +Latency +[0-9]/ { printf "%.2f\n", ms($4); exit }' "$1"
}

# lifecycle_run NAME SIGNAL: the 1 KiB keep-alive load for RUN_SECONDS,
# with SIGNAL (or none) sent to the serving master a third of the way in.
lifecycle_run() {
    local name=$1 sig=$2 pid reqs rps p50 p99 err max master
    master=$(cat "$OUT/lifecycle.pid" 2>/dev/null)
    timeout -k 5 $((${RUN_SECONDS%.*} + CLIENT_SLACK)) wrk -t2 -c64 -d"${RUN_SECONDS}s" --latency \
        --timeout 10s "http://127.0.0.1:$SERVER_PORT/1k.bin" >"$OUT/wrk-$name.out" &
    pid=$!
    PIDS+=("$pid")
    if [[ $sig != none ]]; then
        sleep "$(awk -v s="$RUN_SECONDS" 'BEGIN { print s / 3 }')"
        kill -"$sig" "$master"
    fi
    wait "$pid"
    forget "$pid"
    read -r reqs rps p50 p99 err < <(wrk_parse "$OUT/wrk-$name.out")
    max=$(wrk_max_ms "$OUT/wrk-$name.out")
    printf '%-10s %9s %8s %8s %9s %6s\n' "$name" "$rps" "$p50" "$p99" "$max" "$err" | tee -a "$RESULT"
    [[ ${err:-1} -eq 0 ]] || fail "$name: $err requests lost (socket errors or non-2xx)"
    LIFE_MAX[$name]=$max
}

# Wait for the pidfile to name a new master once an upgrade has finished.
lifecycle_wait_pid() {
    local old=$1 i
    for ((i = 0; i < 200; i++)); do
        [[ -s $OUT/lifecycle.pid && $(cat "$OUT/lifecycle.pid") != "$old" ]] && return 0
        sleep 0.05
    done
    return 1
}

section_lifecycle() {
    declare -gA LIFE_MAX=()
    local master new
    need "$B/prefork" || return
    http_www || return
    rm -f "$OUT/lifecycle.pid"
    report "prefork serve -w 2, wrk -t2 -c64 keep-alive on 1k.bin for ${RUN_SECONDS} s; the signal is sent"
    report "a third of the way in. Lost = wrk's socket errors + non-2xx answers (must be 0)."
    server_start lifecycle "$B/prefork" serve "$OUT/www" -l 127.0.0.1:0 -w 2 --access-log off \
        --pidfile "$OUT/lifecycle.pid" || return
    for ((i = 0; i < 100; i++)); do [[ -s $OUT/lifecycle.pid ]] && break; sleep 0.05; done
    master=$(cat "$OUT/lifecycle.pid")
    printf '%-10s %9s %8s %8s %9s %6s\n' run req/s p50_ms p99_ms max_ms lost | tee -a "$RESULT"
    lifecycle_run steady none
    lifecycle_run hup HUP
    lifecycle_run usr2 USR2
    lifecycle_wait_pid "$master" || fail "usr2: the pidfile still names $master"
    new=$(cat "$OUT/lifecycle.pid")
    report "usr2: master $master -> $new; the new master is not this script's child"
    report "longest request: hup $(ratio "${LIFE_MAX[hup]}" "${LIFE_MAX[steady]}")x steady, usr2 $(ratio "${LIFE_MAX[usr2]}" "${LIFE_MAX[steady]}")x steady"
    kill -TERM "$new" 2>/dev/null
    for ((i = 0; i < STOP_TIMEOUT * 20; i++)); do alive "$new" || break; sleep 0.05; done
    alive "$new" && kill -KILL "$new"
    wait "$SERVER_PID" 2>/dev/null # the old master exited after the upgrade
    forget "$SERVER_PID"
}

# ---- section: modes ----

# The three distribution modes side by side, 4 workers each: one server
# per mode and program is started, measured with wrk and stopped. The
# scoreboard is read before and after each run (once no worker holds a
# connection), so the per-worker figures are that run's alone.
MODES=(shared reuseport dispatch)
MODE_SCENARIOS=(ka close slow)
MODE_W=4
declare -A MW=() # one run's figures, by name
declare -A MODE_DESC=(
    [ka]="1 KiB file, keep-alive, wrk -t2 -c64"
    [close]="1 KiB file, new connection per request (Connection: close), wrk -t2 -c64"
    [slow]="examples/slow --work 10 (each request blocks its worker 10 ms, then it closes), wrk -t2 -c32"
)

# modes_board MASTER: the scoreboard, one line per worker:
# index pid accepted wakeups requests active.
modes_board() {
    # The workers' array only: the pool and its per-worker totals follow it.
    "$B/prefork" status "$1" --json 2>/dev/null | sed 's/,"pool":.*//' |
        grep -o '"\(index\|pid\|accepted\|wakeups\|active\|requests\)":[0-9]*' |
        awk -F: 'function out() { if (n) print v["index"], v["pid"], v["accepted"], v["wakeups"], v["requests"], v["active"] }
                 { gsub(/"/, "", $1) }
                 $1 == "index" { out(); n = 1; delete v }
                 { v[$1] = $2 } END { out() }'
}

# modes_settle MASTER: the scoreboard once every worker is up, none holds a
# connection and two readings in a row agree (at most 5 s: a slow request
# may still be running after wrk stops), each line with a 7th field: the
# worker's CPU time so far in clock ticks (utime + stime, /proc/PID/stat).
modes_settle() {
    local prev='' cur='' i
    for ((i = 0; i < 100; i++)); do
        cur=$(modes_board "$1")
        [[ -n $cur && $cur == "$prev" ]] &&
            awk -v w="$MODE_W" '$2 > 0 { n++ } { a += $6 } END { exit !(n == w && a == 0) }' <<<"$cur" && break
        prev=$cur
        sleep 0.05
    done
    awk '{ f = "/proc/" $2 "/stat"; t = 0
           if ((getline s < f) > 0) { sub(/.*\) /, "", s); split(s, x, " "); t = x[12] + x[13] }
           close(f); print $0, t }' <<<"$cur"
}

# modes_delta BEFORE AFTER: the per-worker differences between two
# readings, as "requests/split conns/split cv_requests cv_conns wakeups
# accepted requests replaced cv_cpu" (replaced: workers whose pid changed,
# whose counters started again from 0). CPU time comes in ticks of 10 ms:
# below 20 per worker its CV would be rounding, so it is "-".
modes_delta() {
    awk 'function cv(x, min,   i, m, s) { for (i = 0; i < n; i++) m += x[i]; m /= n
             if (m == 0 || m < min) return "-"
             for (i = 0; i < n; i++) s += (x[i] - m) ^ 2
             return sprintf("%.3f", sqrt(s / n) / m) }
         NR == FNR { pid[$1] = $2; a[$1] = $3; w[$1] = $4; r[$1] = $5; c[$1] = $7; next }
         { i = n++; if (pid[$1] != $2) bad++
           da[i] = $3 - a[$1]; dw = dw + $4 - w[$1]; dr[i] = $5 - r[$1]; dc[i] = $7 - c[$1]
           sa += da[i]; sr += dr[i]
           rs = rs (i ? "/" : "") dr[i]; as = as (i ? "/" : "") da[i] }
         END { print rs, as, cv(dr), cv(da), dw, sa, sr, bad + 0, cv(dc, 20) }' <(printf '%s\n' "$1") <(printf '%s\n' "$2")
}

# modes_sample: the counters read around a run, on one line: the master's
# CPU seconds, its workers', the master's voluntary context switches (the
# times it slept and was woken: in dispatch mode, its accept wake-ups), the
# machine's busy CPU seconds, and the time.
modes_sample() {
    echo "$(cpu_seconds "$SERVER_PID") $(workers_cpu "$SERVER_PID")" \
        "$(awk '$1 == "voluntary_ctxt_switches:" { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null)" \
        "$(machine_busy) $EPOCHREALTIME"
}

# modes_figures BOARD0 BOARD1: MW's per-worker and CPU figures, from the
# scoreboards, the samples S0 and S1 and wrk's CPU (the times files)
# around a run.
modes_figures() {
    local bad w0 w1
    read -r 'MW[rsplit]' 'MW[csplit]' 'MW[cv_req]' 'MW[cv_conn]' 'MW[wakeups]' 'MW[accepted]' 'MW[requests]' bad 'MW[cv_cpu]' \
        < <(modes_delta "$1" "$2")
    ((bad == 0)) || note "modes: $bad worker(s) replaced during the run: their counts are short"
    # Wake-ups per connection from the scoreboard: workers' listener events.
    # In dispatch mode no worker watches a listener: there are none.
    MW[wpc]=$(awk -v w="${MW[wakeups]}" -v a="${MW[accepted]}" 'BEGIN { print (w > 0 && a > 0) ? sprintf("%.3f", w / a) : "-" }')
    w0=$(children_cpu_of "$OUT/times0") w1=$(children_cpu_of "$OUT/times1")
    read -r 'MW[mwpc]' 'MW[scpu]' 'MW[mcpu]' 'MW[wcpu]' 'MW[other]' < <(awk -v a="${MW[accepted]}" -v w0="$w0" -v w1="$w1" \
        -v s0="$S0" -v s1="$S1" 'BEGIN { split(s0, x); split(s1, y)
        t = y[5] - x[5]; m = y[1] - x[1]; s = m + y[2] - x[2]; w = w1 - w0
        o = 100 * (y[4] - x[4] - s - w) / t
        printf "%.3f %.0f %.0f %.0f %.0f\n", a ? (y[3] - x[3]) / a : 0, 100 * s / t, 100 * m / t,
            100 * w / t, o < 0 ? 0 : o }')
}

# modes_wrk_once MODE SCENARIO: one wrk run against the running server.
# Sets MW (figures by name) and writes a raw line to the results file.
modes_wrk_once() {
    local m=$1 sc=$2 hdr=() conns=64 path=/1k.bin b0 b1 rc reqs k line S0 S1
    case $sc in
    close) hdr=(-H 'Connection: close') ;;
    slow) conns=32 path=/ ;;
    esac
    MW=()
    b0=$(modes_settle "$SERVER_PID")
    [[ $(grep -c . <<<"$b0") -eq $MODE_W ]] || { fail "$m $sc: the scoreboard does not show $MODE_W workers"; return 1; }
    S0=$(modes_sample)
    children_cpu_to "$OUT/times0"
    bounded "$OUT/wrk-modes.out" wrk -t2 -c"$conns" -d"${MODE_SECS}s" --latency --timeout 10s \
        "${hdr[@]}" "http://127.0.0.1:$SERVER_PORT$path"
    rc=$?
    children_cpu_to "$OUT/times1"
    S1=$(modes_sample)
    b1=$(modes_settle "$SERVER_PID")
    read -r reqs 'MW[rps]' 'MW[p50]' 'MW[p99]' 'MW[errors]' < <(wrk_parse "$OUT/wrk-modes.out")
    [[ $rc -eq 0 && ${reqs:-0} -gt 0 ]] || { fail "$m $sc: wrk exited $rc after $reqs requests"; return 1; }
    [[ $(grep -c . <<<"$b1") -eq $MODE_W ]] || { fail "$m $sc: no scoreboard after the run"; return 1; }
    modes_figures "$b0" "$b1"
    line="raw mode=$m scenario=$sc seconds=$MODE_SECS wrk_requests=$reqs"
    for k in rps p50 p99 errors rsplit csplit cv_req cv_conn cv_cpu wakeups accepted requests wpc mwpc scpu mcpu wcpu other; do
        line+=" $k=${MW[$k]}"
    done
    printf '%s\n' "$line" >>"$RESULT"
    note "modes: $m $sc: ${MW[rps]} req/s, p99 ${MW[p99]} ms, requests per worker ${MW[rsplit]} (cv ${MW[cv_req]}), other load ${MW[other]}%"
}

# modes_wrk MODE SCENARIO: a run, repeated (up to BENCH_HTTP_RETRIES
# times) while other processes took over 20% of a CPU; the last counts.
# The figures go to HR, as the http section's do, keyed by mode.
modes_wrk() {
    local m=$1 sc=$2 i k
    for ((i = 0; i <= MODE_RETRIES; i++)); do
        modes_wrk_once "$m" "$sc" || return 1
        ((MW[other] <= 20)) && break
        ((i < MODE_RETRIES)) && note "modes: $m $sc: other load ${MW[other]}%: running it again"
    done
    for k in rps p50 p99 errors cv_req cv_conn cv_cpu mwpc scpu mcpu wcpu other; do
        [[ ${MW[$k]} != - ]] && hr_add "$m" "$sc" "$k" "${MW[$k]}"
    done
    [[ ${MW[wpc]} != - ]] && hr_add "$m" "$sc" wpc "${MW[wpc]}"
    HR["$m|$sc|rsplit"]=${MW[rsplit]} HR["$m|$sc|csplit"]=${MW[csplit]}
}

# modes_server MODE PROGRAM: start prefork serve (the 1 KiB scenarios) or
# examples/slow in MODE, run its scenarios, stop it.
modes_server() {
    local m=$1 prog=$2 sc code
    if [[ $prog == serve ]]; then
        server_start "modes-$m" "$B/prefork" serve "$OUT/www" -l 127.0.0.1:0 -w "$MODE_W" --mode "$m" \
            --access-log off --graceful-timeout 5 || return
        code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "http://127.0.0.1:$SERVER_PORT/1k.bin")
    else
        server_start "modes-slow-$m" "$B/examples/slow" -l 127.0.0.1:0 -w "$MODE_W" --mode "$m" --work 10 || return
        code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "http://127.0.0.1:$SERVER_PORT/")
    fi
    if [[ $code != 200 ]]; then
        fail "$prog --mode $m: GET answered $code, not 200"
    elif [[ $prog == serve ]]; then
        for sc in ka close; do modes_wrk "$m" "$sc"; done
    else
        modes_wrk "$m" slow
    fi
    stop_process "$SERVER_PID"
    [[ $STOP_STATUS -eq 0 ]] || fail "$prog --mode $m exited $STOP_STATUS on TERM"
}

modes_row() {
    printf '%-10s %7s %7s %8s %4s %5s %5s %5s %5s %7s %7s %7s %11s %10s  %s\n' "$@" | tee -a "$RESULT"
}

# The wake-ups column: the scoreboard's, or why there is none.
modes_wpc() {
    local v
    v=$(hr_get "$1" "$2" wpc)
    [[ $v == - && $1 == dispatch ]] && v="n/a(master)"
    echo "$v"
}

modes_table() {
    local sc=$1 m o noisy=0
    report ""
    report "-- $sc: ${MODE_DESC[$sc]}"
    modes_row mode req/s p50_ms p99_ms err cpu% mst% wrk% oth% cv_req cv_conn cv_cpu wake/conn mwake/conn \
        "requests per worker (conns per worker)"
    md "" "**${MODE_DESC[$sc]}**" "" \
        "| mode | req/s | p50 ms | p99 ms | requests per worker | CV | connections per worker | CV | CV of worker CPU | wake-ups per connection | master wake-ups per connection | master CPU % |" \
        "| --- | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    for m in "${MODES[@]}"; do
        modes_row "$m" "$(hr_get "$m" "$sc" rps)" "$(hr_get "$m" "$sc" p50)" "$(hr_get "$m" "$sc" p99)" \
            "$(hr_get "$m" "$sc" errors)" "$(hr_get "$m" "$sc" scpu)" "$(hr_get "$m" "$sc" mcpu)" \
            "$(hr_get "$m" "$sc" wcpu)" "$(hr_get "$m" "$sc" other)" "$(hr_get "$m" "$sc" cv_req)" \
            "$(hr_get "$m" "$sc" cv_conn)" "$(hr_get "$m" "$sc" cv_cpu)" "$(modes_wpc "$m" "$sc")" "$(hr_get "$m" "$sc" mwpc)" \
            "${HR["$m|$sc|rsplit"]:--} (${HR["$m|$sc|csplit"]:--})"
        md "| $m | $(hr_get "$m" "$sc" rps) | $(hr_get "$m" "$sc" p50) | $(hr_get "$m" "$sc" p99) | ${HR["$m|$sc|rsplit"]:--} | $(hr_get "$m" "$sc" cv_req) | ${HR["$m|$sc|csplit"]:--} | $(hr_get "$m" "$sc" cv_conn) | $(hr_get "$m" "$sc" cv_cpu) | $(modes_wpc "$m" "$sc") | $(hr_get "$m" "$sc" mwpc) | $(hr_get "$m" "$sc" mcpu) |"
        o=$(hr_get "$m" "$sc" other)
        [[ $o != - ]] && awk -v o="$o" 'BEGIN { exit !(o > 20) }' && noisy=1
    done
    ((noisy)) && report "warning: other processes used over 20% of a CPU during some runs: those rows are low and noisy"
}

# modes_target TEXT VALUE ge|le LIMIT: a target line, with its verdict.
modes_target() {
    local v
    v=$(verdict "$2" "$3" "$4")
    http_count "$v"
    report "$(printf '%-52s %7s  (target %s %s): %s' "$1" "$2" "$([[ $3 == ge ]] && echo '>=' || echo '<=')" "$4" "$v")"
    md "| $1 | $2 | $([[ $3 == ge ]] && echo '≥' || echo '≤') $4 | $v |"
}

modes_targets() {
    local sc m
    report ""
    report "targets:"
    md "" "**Targets**" "" "| figure | value | target | |" "| --- | ---: | ---: | --- |"
    modes_target "close: dispatch req/s / shared req/s" \
        "$(ratio "$(hr_get dispatch close rps)" "$(hr_get shared close rps)")" ge 0.8
    # 32 clients, each waiting for its answer before the next request, on
    # 4 workers that serve 100 requests/s each: a request waits for 32 / 400
    # s on average (Little's law), whatever the mode. No p99 is below that
    # floor: dispatch should sit on it, shared (balanced) stay within 2x.
    modes_target "slow: dispatch p99 / 80 ms floor" "$(ratio "$(hr_get dispatch slow p99)" 80)" le 1.2
    modes_target "slow: shared p99 / 80 ms floor" "$(ratio "$(hr_get shared slow p99)" 80)" le 2
    report "  (reuseport p99 / 80 ms: $(ratio "$(hr_get reuseport slow p99)" 80), for information;" \
        "dispatch p99 / shared p99: $(ratio "$(hr_get dispatch slow p99)" "$(hr_get shared slow p99)"))"
    md "| slow: reuseport p99 / 80 ms; dispatch p99 / shared p99 | $(ratio "$(hr_get reuseport slow p99)" 80); $(ratio "$(hr_get dispatch slow p99)" "$(hr_get shared slow p99)") | for information | |"
    for sc in "${MODE_SCENARIOS[@]}"; do
        for m in reuseport dispatch; do
            modes_target "$sc: $m CV of requests per worker" "$(hr_get "$m" "$sc" cv_req)" le 0.1
        done
    done
    report "targets: $((9 - HTTP_MISSES - HTTP_UNKNOWN)) of 9 met, $HTTP_MISSES missed, $HTTP_UNKNOWN not measured"
    md "" "Targets: $((9 - HTTP_MISSES - HTTP_UNKNOWN)) of 9 met, $HTTP_MISSES missed, $HTTP_UNKNOWN not measured."
}

modes_notes() {
    report "distribution modes: $MODE_W workers each (--mode shared|reuseport|dispatch), wrk -t2 --latency --timeout 10s,"
    report "  ${MODE_SECS} s per run, $MODE_ROUNDS round(s) (figures are medians; the mode order is reversed every"
    report "  other round; the per-worker splits are the last round's), on 127.0.0.1. This machine has $(nproc) CPU(s),"
    report "  shared by the $MODE_W workers, the master and wrk's 2 threads."
    report "  cpu% = master + workers, mst% = the master alone, wrk%, oth% = everything else: % of one CPU."
    report "  cv_req, cv_conn: coefficient of variation (stddev / mean) over the workers of the requests and"
    report "  connections each served in the run (scoreboard before and after); cv_cpu: the same for the CPU"
    report "  time each used (when cv_req follows it, the scheduler made the split, not the mode)."
    report "  wake/conn: the workers' listener wake-ups (scoreboard) per accepted connection; in dispatch"
    report "  mode the master accepts and no worker watches a listener: n/a(master). mwake/conn: the master's"
    report "  own wake-ups (voluntary context switches) per connection; about 0 when it only supervises."
}

section_modes() {
    local r order m sc
    need "$B/prefork" "$B/examples/slow" || return
    command -v wrk >/dev/null || { fail "wrk is missing (tests/deps.sh installs it)"; return; }
    command -v curl >/dev/null || { fail "curl is missing"; return; }
    MODE_SECS=$(awk -v s="$RUN_SECONDS" 'BEGIN { s = int(s + 0.5); print s < 1 ? 1 : s }')
    MODE_ROUNDS=${BENCH_ROUNDS:-1} MODE_RETRIES=${BENCH_HTTP_RETRIES:-2}
    HR=() HTTP_MD='' HTTP_MISSES=0 HTTP_UNKNOWN=0
    http_www || return
    modes_notes
    md "Distribution modes, $MODE_W workers, on $(nproc) CPUs shared with wrk (\`bench/run.sh modes\`, ${MODE_SECS} s per run$( ((MODE_ROUNDS > 1)) && echo ", medians of $MODE_ROUNDS rounds"); $(date -u +%Y-%m-%d))."
    for ((r = 0; r < MODE_ROUNDS; r++)); do
        order=("${MODES[@]}")
        ((r % 2)) && order=(dispatch reuseport shared)
        for m in "${order[@]}"; do
            note "modes: round $((r + 1))/$MODE_ROUNDS: $m"
            modes_server "$m" serve
            modes_server "$m" slow
        done
    done
    for sc in "${MODE_SCENARIOS[@]}"; do modes_table "$sc"; done
    modes_targets
    printf '%s' "$HTTP_MD" >"${RESULT%.txt}.md"
    note "markdown: ${RESULT%.txt}.md"
}

# ---- run: a Python program scaled by prefork run ----

# run_load NAME URL_PORT MODE: wrk for RUN_SECONDS, 16 connections; MODE ka or close.
run_load() {
    local name=$1 port=$2 mode=$3 hdr=() reqs rps p50 p99 err
    [[ $mode == close ]] && hdr=(-H 'Connection: close')
    bounded "$OUT/wrk-run.out" wrk -t2 -c16 -d"${RUN_SECONDS}s" --latency --timeout 10s \
        "${hdr[@]}" "http://127.0.0.1:$port/"
    read -r reqs rps p50 p99 err < <(wrk_parse "$OUT/wrk-run.out")
    printf '%-26s %-6s %9s %8s %9s %6s\n' "$name" "$mode" "$rps" "$p50" "$p99" "$err" | tee -a "$RESULT"
    RUN_RPS[$name|$mode]=$rps
    RUN_P99[$name|$mode]=$p99
}

# run_server NAME CMD...: start it (its log must say "started ... on 127.0.0.1:PORT"), load it
# both ways, stop it by pid.
run_server() {
    local name=$1
    shift
    server_start "run-$name" "$@" || return
    run_wait_ready
    run_load "$name" "$SERVER_PORT" ka
    run_load "$name" "$SERVER_PORT" close
    stop_process "$SERVER_PID"
}

# Python takes a moment to start: wait until it answers.
run_wait_ready() {
    local i
    for ((i = 0; i < 200; i++)); do
        curl -s -o /dev/null -m 1 "http://127.0.0.1:$SERVER_PORT/" && return 0
        sleep 0.05
    done
}

section_run() {
    declare -gA RUN_RPS=() RUN_P99=()
    local app=examples/python/app.py m
    need "$B/prefork" || return
    command -v python3 >/dev/null || { fail "python3 is missing"; return; }
    report "examples/python/app.py (http.server, threads) on 127.0.0.1, wrk -t2 -c16 for ${RUN_SECONDS} s,"
    report "keep-alive (ka) and a new connection per request (close); 2 CPUs shared with wrk."
    printf '%-26s %-6s %9s %8s %9s %6s\n' server load req/s p50_ms p99_ms errors | tee -a "$RESULT"
    run_server "prefork run -w 2" "$B/prefork" run -w 2 -l 127.0.0.1:0 -- python3 "$app"
    run_server "prefork run -w 2 --no-capt" "$B/prefork" run -w 2 --no-capture -l 127.0.0.1:0 \
        -- python3 "$app"
    run_server "prefork run -w 1 (1 proc)" "$B/prefork" run -w 1 -l 127.0.0.1:0 -- python3 "$app"
    local port
    port=$(http_port) || { fail "no free port"; return; }
    # mp_server logs "mp_server: started 2 workers on 127.0.0.1:PORT", as server_start expects.
    run_server "multiprocessing pool (2)" python3 bench/python/mp_server.py "$port" 2
    for m in ka close; do
        report "$m: prefork run -w 2 / one process: req/s $(ratio "${RUN_RPS[prefork run -w 2|$m]}" "${RUN_RPS[prefork run -w 1 (1 proc)|$m]}"), p99 $(ratio "${RUN_P99[prefork run -w 2|$m]}" "${RUN_P99[prefork run -w 1 (1 proc)|$m]}"); / multiprocessing pool: req/s $(ratio "${RUN_RPS[prefork run -w 2|$m]}" "${RUN_RPS[multiprocessing pool (2)|$m]}"), p99 $(ratio "${RUN_P99[prefork run -w 2|$m]}" "${RUN_P99[multiprocessing pool (2)|$m]}")"
    done
}

# ---- python: WSGI servers (bench/python/section.sh) ----

# shellcheck source=bench/python/section.sh
source bench/python/section.sh

# ---- tls: HTTPS against nginx (bench/tls/section.sh) ----

# shellcheck source=bench/tls/section.sh
source bench/tls/section.sh

# ---- fleet: behind HAProxy (bench/fleet/section.sh) ----

# shellcheck source=bench/fleet/section.sh
source bench/fleet/section.sh

# ---- main ----

usage() {
    local s
    echo "usage: bench/run.sh [-l] [SECTION...]   (BENCH_SECTIONS, else every section, when none is named)"
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
    # A *_quick section is a short form of another: run only when named.
    for s in "${SECTIONS[@]}"; do [[ ${s%%:*} == *_quick ]] || names+=("${s%%:*}"); done
    [[ -n ${BENCH_SECTIONS:-} ]] && read -ra names <<<"$BENCH_SECTIONS"
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
