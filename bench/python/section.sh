# section.sh — the python section of bench/run.sh: python3 -m prefork against gunicorn, uWSGI, waitress and prefork run + wsgiref.
#
# Sourced by bench/run.sh, whose helpers it uses: the http section's wrk
# runs (http_wrk: CPU of the server per run, retries while other load took
# the machine, medians over rounds in HR), its process tracking and its
# report helpers. Settings, from the environment (bench/README.md):
#   BENCH_PY_SERVERS    the servers (default: all of PY_ALL_SERVERS)
#   BENCH_PY_SCENARIOS  the scenarios (default: all of PY_ALL)
#   BENCH_PYTHON        the interpreter every server runs under (default
#                       $PYTHON, else /usr/bin/python3: Debian's, where the
#                       peers are installed)
#   BENCH_PY_PACKAGE    the folder holding prefork's Python package (default
#                       $B/python, which make builds)
#   BENCH_PY_SLOW       slow clients in the slow scenario (default 500)
#   BENCH_PY_PREFORK_ARGS  more options for python3 -m prefork
# and BENCH_SECONDS (default 5), BENCH_ROUNDS (default 1),
# BENCH_HTTP_RETRIES as in the http section.

PY_ALL=(ka close json file sleep slow tls)
PY_ALL_SERVERS=(prefork prefork-threads gunicorn-sync gunicorn-gthread uwsgi uwsgi-threads waitress prefork-run prefork-serve)
PY_PEERS=(gunicorn-sync gunicorn-gthread uwsgi uwsgi-threads waitress prefork-run)
declare -A PY_DESC=(
    [ka]="hello world, keep-alive, 64 connections"
    [close]="hello world, new connection per request (Connection: close), 64 connections"
    [json]="a 16 KiB JSON document built per request, keep-alive, 64 connections"
    [file]="a 1 MiB file through wsgi.file_wrapper, keep-alive, 16 connections"
    [sleep]="a handler that sleeps 10 ms, keep-alive, 32 connections"
    [slow]="hello world, keep-alive, 64 connections, while 500 slow clients hold connections"
    [tls]="hello world over HTTPS (ECDSA P-256, TLS 1.3), keep-alive, 64 connections"
)
declare -A PY_APP=([ka]=hello [close]=hello [json]=json16k [file]=file1m [sleep]=sleep10 [slow]=hello
    [tls]=hello)
declare -A PY_WHAT=(
    [prefork]="python3 -m prefork -w 2"
    [prefork-threads]="python3 -m prefork -w 2 --threads 8"
    [gunicorn-sync]="gunicorn -w 2 (sync)"
    [gunicorn-gthread]="gunicorn -w 2 -k gthread --threads 8"
    [uwsgi]="uwsgi --http-socket --processes 2"
    [uwsgi-threads]="uwsgi --http-socket --processes 2 --threads 8"
    [waitress]="waitress, 2 processes of 4 threads"
    [prefork-run]="prefork run -w 2 + wsgiref"
    [prefork-serve]="prefork serve -w 2, 1 KiB file (the floor)"
)
PY_W=2 # processes in every server

# Whether server s takes part in scenario sc, else why not.
py_skip() {
    case $1:$2 in
    prefork-serve:ka | prefork-serve:close) ;;
    prefork-serve:*) echo "the floor row is hello world only" ;;
    prefork:tls | prefork-threads:tls | gunicorn-*:tls) ;;
    *:tls) echo "no HTTPS of its own here (uWSGI's is in its router process; waitress and wsgiref have none)" ;;
    esac
}

# Whether peer s can run here; if not, one line saying why.
py_missing() {
    case $1 in
    prefork | prefork-threads)
        PYTHONPATH=$PY_PKG "$PY" -c 'import prefork' 2>/dev/null ||
            echo "prefork's Python package is not in $PY_PKG (make builds it; BENCH_PY_PACKAGE names another)" ;;
    gunicorn-*) "$PY" -c 'import gunicorn' 2>/dev/null || echo "gunicorn is not installed for $PY (make bench-deps)" ;;
    uwsgi | uwsgi-threads)
        command -v uwsgi >/dev/null && [[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]] ||
            echo "uwsgi or its python3 plugin is not installed (make bench-deps)" ;;
    waitress) "$PY" -c 'import waitress' 2>/dev/null || echo "waitress is not installed for $PY (make bench-deps)" ;;
    prefork-run | prefork-serve) [[ -x $B/prefork ]] || echo "$B/prefork is missing (make)" ;;
    *) echo "unknown server" ;;
    esac
}

# py_start SERVER APP: start one server on a free port with the
# application bench/python/APP.py (app), wait until its workers are up and
# it answers. Sets SERVER_PID, SERVER_PORT, HTTP_WPIDS, HTTP_TREE.
py_start() {
    local s=$1 app=$2:app port here=$PWD/bench/python cmd=() extra=()
    read -ra extra <<<"${BENCH_PY_PREFORK_ARGS:-}"
    port=$(http_port) || { fail "no free port found for $s"; return 1; }
    case $s in
    prefork | prefork-threads)
        local listen=127.0.0.1:$port
        [[ $PY_SC == tls ]] && listen+=",tls" extra+=(--tls-cert "$PWD/$OUT/tls/ecdsa.pem" --tls-key "$PWD/$OUT/tls/ecdsa.key")
        cmd=(env "PYTHONPATH=$PY_PKG:$here" "$PY" -m prefork -l "$listen" -w "$PY_W"
            --access-log off "${extra[@]}" "$app")
        [[ $s == prefork-threads ]] && cmd+=(--threads 8) ;;
    gunicorn-sync)
        cmd=("$PY" -m gunicorn -w "$PY_W" -b "127.0.0.1:$port" --chdir "$here" "$app") ;;
    gunicorn-gthread)
        cmd=("$PY" -m gunicorn -w "$PY_W" -k gthread --threads 8 -b "127.0.0.1:$port" --chdir "$here" "$app") ;;
    uwsgi | uwsgi-threads)
        # --http-socket, as the issue measured it: uWSGI answers and
        # closes every connection, without a "Connection: close" (so wrk
        # counts each close as a read error; the answers count). Its
        # keep-alive form, --http11-socket, keeps a connection on its
        # process until the client leaves: with processes for workers, 2
        # connections are served and the other clients wait unseen (wrk
        # reports only the answered: 10 ms p50 at 187 req/s for 32
        # connections on the 10 ms handler, where Little's law says 171
        # ms), and it ignores a client's "Connection: close". TERM must
        # stop it, not reload it (--die-on-term); its default listen
        # queue of 100 is raised to 1024, waitress's.
        cmd=(uwsgi --plugin python3 --http-socket "127.0.0.1:$port" --master --processes "$PY_W"
            --chdir "$here" --module "$app" --need-app --disable-logging --listen 1024 --die-on-term)
        [[ $s == uwsgi-threads ]] && cmd+=(--threads 8) ;;
    waitress) cmd=("$PY" "$here/waitress_fork.py" "$port" "$PY_W" "$app") ;;
    prefork-run)
        cmd=("$B/prefork" run -w "$PY_W" -l "127.0.0.1:$port" --graceful-timeout 5 -- "$PY" "$here/wsgiref_worker.py" "$app") ;;
    prefork-serve)
        cmd=("$B/prefork" serve "$OUT/www" -l "127.0.0.1:$port" -w "$PY_W" --access-log off --graceful-timeout 5) ;;
    esac
    [[ $s == gunicorn-* && $PY_SC == tls ]] &&
        cmd+=(--certfile "$PWD/$OUT/tls/ecdsa.pem" --keyfile "$PWD/$OUT/tls/ecdsa.key")
    http_spawn "$s" "$port" "${cmd[@]}" && http_workers "$PY_W" && py_ready "$s"
}

# Python servers listen before their workers have imported the application:
# wait until one answers 200, then warm them up (every worker imports and
# serves) with a short wrk run.
py_ready() {
    local s=$1 i code=000
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        code=$(curl -sk -o /dev/null -m 2 -w '%{http_code}' "${HTTP_SCHEME:-http}://127.0.0.1:$SERVER_PORT${HTTP_PATH[$PY_SC]}")
        [[ $code == 200 ]] && break
        alive "$SERVER_PID" || break
        sleep 0.1
    done
    if [[ $code != 200 ]]; then
        fail "$s: GET ${HTTP_PATH[$PY_SC]} answered $code, not 200; its log ($OUT/$s.log):"
        tail -n 20 "$OUT/$s.log" | sed 's/^/    /' | tee -a "$RESULT"
        return 1
    fi
    timeout 10 wrk -t1 -c8 -d1s "${HTTP_SCHEME:-http}://127.0.0.1:$SERVER_PORT${HTTP_PATH[$PY_SC]}" >/dev/null 2>&1
    sleep 0.5
}

# Memory of the idle workers, after the warm-up: VmRSS, RssAnon and Pss
# (each shared page divided among the processes sharing it: what forking
# after import, --preload and gc.freeze save shows here), KiB per worker.
py_rest() {
    local s=$1 p n=${#HTTP_WPIDS[@]} rss=0 anon=0 pss=0 max=0 v
    for p in "${HTTP_WPIDS[@]}"; do
        v=$(status_kib VmRSS "$p")
        rss=$((rss + v)) anon=$((anon + $(status_kib RssAnon "$p")))
        pss=$((pss + $(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
        ((v > max)) && max=$v
    done
    hr_add "$s" rest rss_avg $((rss / n)); hr_add "$s" rest rss_max "$max"
    hr_add "$s" rest anon_avg $((anon / n)); hr_add "$s" rest pss_avg $((pss / n))
    ((${#HTTP_TREE[@]} > n)) && hr_add "$s" rest master_rss "$(status_kib VmRSS "$SERVER_PID")"
    printf 'raw server=%s idle_workers=%s vmrss_kib_avg=%s max=%s rss_anon_kib_avg=%s pss_kib_avg=%s\n' \
        "$s" "$n" $((rss / n)) "$max" $((anon / n)) $((pss / n)) >>"$RESULT"
}

# The slow scenario for one server: PY_SLOW_N slow clients connect, then
# the hello-world load runs; repeated (as http_wrk repeats) while other
# load took the machine, each attempt with fresh clients, so that none
# outlives the server's header timeout (prefork's is 10 s) and the
# measured run never sees them all dropped and reconnecting at once.
py_slow_run() {
    local s=$1 secs=$2 i
    for ((i = 0; i <= HTTP_RETRIES; i++)); do
        py_slow_once "$s" "$secs" || { py_wrk_none "$s" slow; return; }
        ((WRK[9] <= 20)) && break
        ((i < HTTP_RETRIES)) && note "python: $s slow: other load ${WRK[9]}%: running it again"
    done
    py_record "$s" slow
}

# One attempt: start the clients, wait until they are connected and have
# each sent a byte or two, one wrk run, stop them. Sets WRK, as
# http_wrk_once does; returns 1 when wrk got no answer.
py_slow_once() {
    local s=$1 secs=$2 pid line rc=0
    "$B/bench/http_slow" -p "$SERVER_PORT" -n "$PY_SLOW_N" -d $((secs + 30)) \
        >"$OUT/http_slow.out" 2>"$OUT/http_slow.err" &
    pid=$!
    PIDS+=("$pid")
    if ! http_idle_wait "$pid" "$OUT/http_slow.out"; then
        stop_process "$pid"
        fail "http_slow against $s did not start: $(head -n 3 "$OUT/http_slow.err")"
        return 1
    fi
    sleep 1
    http_wrk_once "$s" slow "$secs" || rc=1
    stop_process "$pid"
    line=$(grep '^conns=' "$OUT/http_slow.out")
    printf 'raw server=%s slow_clients %s\n' "$s" "$line" >>"$RESULT"
    hr_add "$s" slow ready "$(sed -n 's/^ready //p' "$OUT/http_slow.out")"
    hr_add "$s" slow min_held "$(field min_held "$line")"
    hr_add "$s" slow reopened $(($(field closed "$line") + $(field answered "$line")))
    return "$rc"
}

# The figures of the last wrk run (WRK) into HR, as http_wrk records them.
py_record() {
    local s=$1 sc=$2
    hr_add "$s" "$sc" rps "${WRK[1]}"; hr_add "$s" "$sc" p50 "${WRK[2]}"; hr_add "$s" "$sc" p99 "${WRK[3]}"
    hr_add "$s" "$sc" errors "${WRK[4]}"; hr_add "$s" "$sc" per_cpu "${WRK[6]}"
    hr_add "$s" "$sc" scpu "${WRK[7]}"; hr_add "$s" "$sc" wcpu "${WRK[8]}"; hr_add "$s" "$sc" other "${WRK[9]}"
    hr_add "$s" "$sc" timeouts "$(py_timeouts "$OUT/wrk.out")"
}

# One wrk run through the http section's http_wrk; a peer that answers
# nothing at all (every request timed out) is recorded as 0 req/s and 0
# requests per CPU-second, with wrk's error counts.
py_wrk() {
    local s=$1 sc=$2 secs=$3
    if http_wrk "$s" "$sc" "$secs"; then
        hr_add "$s" "$sc" timeouts "$(py_timeouts "$OUT/wrk.out")"
        return 0
    fi
    py_wrk_none "$s" "$sc"
}

# A run that got no answer at all: 0 req/s, 0 per CPU-second.
py_wrk_none() {
    local s=$1 sc=$2 f=$OUT/wrk.out
    hr_add "$s" "$sc" rps 0; hr_add "$s" "$sc" per_cpu 0
    hr_add "$s" "$sc" errors "$(wrk_parse "$f" | awk '{ print $5 }')"; hr_add "$s" "$sc" timeouts "$(py_timeouts "$f")"
    HR["$s|$sc|none"]=1
}

# wrk's timeouts: requests unanswered after --timeout.
py_timeouts() { awk '/Socket errors:/ { gsub(/,/, ""); t = $10 } END { print t + 0 }' "$1"; }

# One scenario: start every server with its application, warm them up,
# run wrk against each in turn, round after round (order reversed every
# other round), stop them.
py_scenario() {
    local sc=$1 r i s up=() order why HTTP_SCHEME=http
    PY_SC=$sc
    if [[ $sc == tls ]]; then
        HTTP_SCHEME=https
        tls_certs || return
    fi
    for s in "${PY_RUN[@]}"; do
        why=$(py_skip "$s" "$sc")
        [[ -n $why ]] && { HR["$s|$sc|skip"]=$why; continue; }
        note "python: $sc: starting $s"
        if ! py_start "$s" "${PY_APP[$sc]}"; then
            [[ " ${PIDS[*]} " == *" $SERVER_PID "* ]] && stop_process "$SERVER_PID"
            HR["$s|$sc|skip"]="did not start (see $OUT/$s.log)"
            continue
        fi
        [[ $sc == ka ]] && py_rest "$s"
        http_keep "$s"
        up+=("$s")
    done
    for ((r = 0; r < PY_ROUNDS; r++)); do
        HTTP_ROUND=$r
        order=("${up[@]}")
        if ((r % 2)); then
            order=()
            for ((i = ${#up[@]} - 1; i >= 0; i--)); do order+=("${up[i]}"); done
        fi
        for s in "${order[@]}"; do
            http_use "$s"
            alive "$SERVER_PID" || { fail "$s (pid $SERVER_PID) is gone"; continue; }
            note "python: $sc, round $((r + 1))/$PY_ROUNDS: $s"
            if [[ $sc == slow ]]; then py_slow_run "$s" "$PY_SECS"; else py_wrk "$s" "$sc" "$PY_SECS"; fi
        done
    done
    for s in "${up[@]}"; do
        http_use "$s"
        stop_process "$SERVER_PID"
        [[ $s == prefork* ]] && ((STOP_STATUS != 0)) && fail "$s exited $STOP_STATUS on TERM"
    done
}

# ---- the report ----

py_row() { printf '%-16s %9s %8s %9s %10s %5s %5s %5s %7s %6s %7s %7s\n' "$@" | tee -a "$RESULT"; }

# py_best SCENARIO NAME max|min PEER...: the best figure among PEER and whose.
py_best() { http_best "$@"; }

# The figure that prefork has over server s, or "-": prefork's best row
# for the scenario (with or without --threads).
py_over() {
    local p pw
    read -r p pw < <(http_best "$2" "$3" max prefork prefork-threads)
    py_ratio "$p" "$(hr_get "$1" "$2" "$3")"
}

py_table() {
    local sc=$1 s skip p99 noisy=0 o
    report ""
    report "-- $sc: ${PY_DESC[$sc]}"
    py_row server req/s p50_ms p99_ms req/cpu_s cpu% wrk% oth% errors tmo pf÷rps pf÷cpu
    md "" "**${PY_DESC[$sc]}**" "" \
        "| server | req/s | p50 ms | p99 ms | req per CPU-s | errors | prefork ÷ it, req/s | prefork ÷ it, per CPU-s |" \
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for s in "${PY_RUN[@]}"; do
        skip=${HR["$s|$sc|skip"]:-}
        if [[ -n $skip ]]; then
            [[ $s == prefork-serve ]] && continue
            report "$(printf '%-16s skipped: %s' "$s" "$skip")"
            md "| $s | skipped: $skip | | | | | | |"
            continue
        fi
        p99=$(hr_get "$s" "$sc" p99)
        [[ -n ${HR["$s|$sc|none"]:-} ]] && p99="timeouts"
        py_row "$s" "$(hr_get "$s" "$sc" rps)" "$(hr_get "$s" "$sc" p50)" "$p99" \
            "$(hr_get "$s" "$sc" per_cpu)" "$(hr_get "$s" "$sc" scpu)" "$(hr_get "$s" "$sc" wcpu)" \
            "$(hr_get "$s" "$sc" other)" "$(hr_get "$s" "$sc" errors)" "$(hr_get "$s" "$sc" timeouts)" \
            "$(py_over "$s" "$sc" rps)" "$(py_over "$s" "$sc" per_cpu)"
        md "| ${PY_WHAT[$s]} | $(hr_get "$s" "$sc" rps) | $(hr_get "$s" "$sc" p50) | $p99 | $(hr_get "$s" "$sc" per_cpu) | $(hr_get "$s" "$sc" errors) | $(py_over "$s" "$sc" rps) | $(py_over "$s" "$sc" per_cpu) |"
        o=$(hr_get "$s" "$sc" other)
        [[ $o != - ]] && awk -v o="$o" 'BEGIN { exit !(o > 20) }' && noisy=1
    done
    ((noisy)) && report "warning: other processes used over 20% of a CPU during some runs: those rows are low and noisy"
    [[ $sc == slow ]] && py_slow_held
    py_target "$sc: req/s, prefork / best peer" rps max
    py_target "$sc: req per CPU-s, prefork / best peer" per_cpu max
}

# How many slow clients each server held while wrk ran.
py_slow_held() {
    local s line=''
    for s in "${PY_RUN[@]}"; do
        [[ $(hr_get "$s" slow ready) == - ]] && continue
        line+=" $s $(hr_get "$s" slow ready)/$(hr_get "$s" slow min_held) ($(hr_get "$s" slow reopened) closed by it);"
    done
    report "slow clients connected when wrk started / fewest held during the run:${line%;}"
}

# py_target TEXT NAME max: prefork against the best peer in NAME, which
# must be ahead (ratio > 1; "inf" when no peer answered at all). Each side
# is its best configuration: the peers' sync or threaded forms, prefork's
# rows with and without --threads.
py_target() {
    local text=$1 name=$2 sc=${1%%:*} b w p pw r v
    read -r b w < <(http_best "$sc" "$name" max "${PY_PEERS[@]}")
    read -r p pw < <(http_best "$sc" "$name" max prefork prefork-threads)
    r=$(py_ratio "$p" "$b")
    v=$(py_verdict "$r" gt 1)
    [[ $pw == prefork-threads ]] && w+=", prefork with --threads 8"
    py_line "$text" "$r" "> 1.00 ($w)" "$v"
}

# ratio, but A / 0 with A > 0 is "inf" (a peer that answered nothing).
py_ratio() {
    if [[ $2 == 0 ]] && awk -v a="$1" 'BEGIN { exit !(a != "-" && a > 0) }'; then echo inf; else ratio "$1" "$2"; fi
}

# py_verdict VALUE gt|ge|le TARGET: PASS, FAIL, or n/a when not measured.
py_verdict() {
    [[ $1 == - ]] && { echo n/a; return; }
    [[ $1 == inf ]] && { [[ $2 == le ]] && echo FAIL || echo PASS; return; }
    awk -v r="$1" -v t="$3" -v op="$2" 'BEGIN {
        ok = op == "gt" ? r > t : op == "ge" ? r >= t : r <= t; print ok ? "PASS" : "FAIL" }'
}

py_line() {
    case $4 in
    FAIL) PY_FAILS=$((PY_FAILS + 1)) ;;
    n/a) PY_UNKNOWN=$((PY_UNKNOWN + 1)) ;;
    esac
    PY_TARGETS=$((PY_TARGETS + 1))
    report "$(printf '%-4s %-50s %7s  (target %s)' "$4" "$1" "$2" "$3")"
    PY_TMD+="| $1 | $2 | $3 | $4 |"$'\n'
}

# The issue's headline targets, the slow clients' one, and the floor.
py_headline() {
    local b w r ka slow
    report ""
    report "targets (the issue's):"
    if [[ " ${PY_SCENARIOS[*]} " == *" ka "* ]]; then
        read -r b w < <(http_best ka rps max uwsgi uwsgi-threads)
        py_line "ka: req/s, prefork / uWSGI's best" "$(ratio "$(hr_get prefork ka rps)" "$b")" ">= 2.0 ($w)" \
            "$(py_verdict "$(ratio "$(hr_get prefork ka rps)" "$b")" ge 2.0)"
        read -r b w < <(http_best ka rps max gunicorn-sync gunicorn-gthread)
        py_line "ka: req/s, prefork / gunicorn's best" "$(ratio "$(hr_get prefork ka rps)" "$b")" ">= 3.0 ($w)" \
            "$(py_verdict "$(ratio "$(hr_get prefork ka rps)" "$b")" ge 3.0)"
    fi
    if [[ " ${PY_SCENARIOS[*]} " == *" slow "* && " ${PY_SCENARIOS[*]} " == *" ka "* ]]; then
        ka=$(hr_get prefork ka p99) slow=$(hr_get prefork slow p99)
        r=$(ratio "$slow" "$ka")
        py_line "slow: prefork p99 with slow clients / without" "$r" "<= 2.0 ($slow ms / $ka ms)" "$(py_verdict "$r" le 2.0)"
    fi
    printf '%s' "$PY_TMD" >"$OUT/py-targets.md"
    if [[ $(hr_get prefork-serve ka rps) != - ]]; then
        PY_FLOOR="ka req/s $(ratio "$(hr_get prefork ka rps)" "$(hr_get prefork-serve ka rps)"), per CPU-s $(ratio "$(hr_get prefork ka per_cpu)" "$(hr_get prefork-serve ka per_cpu)"); close req/s $(ratio "$(hr_get prefork close rps)" "$(hr_get prefork-serve close rps)")"
        report "floor: python3 -m prefork on hello world / prefork serve on a 1 KiB file (pure C): $PY_FLOOR"
    fi
}

py_memory() {
    local s
    report ""
    report "-- memory of an idle worker after warm-up (hello world; KiB per worker: VmRSS avg/max, RssAnon, Pss)"
    printf '%-16s %14s %9s %9s %12s\n' server VmRSS RssAnon Pss master_VmRSS | tee -a "$RESULT"
    md "" "**Memory of an idle worker** (hello world, after warm-up)" "" \
        "| server | VmRSS per worker, KiB | RssAnon, KiB | Pss, KiB |" "| --- | ---: | ---: | ---: |"
    for s in "${PY_RUN[@]}"; do
        [[ $(hr_get "$s" rest rss_avg) == - ]] && continue
        printf '%-16s %14s %9s %9s %12s\n' "$s" "$(hr_get "$s" rest rss_avg)/$(hr_get "$s" rest rss_max)" \
            "$(hr_get "$s" rest anon_avg)" "$(hr_get "$s" rest pss_avg)" "$(hr_get "$s" rest master_rss)" | tee -a "$RESULT"
        md "| ${PY_WHAT[$s]} | $(hr_get "$s" rest rss_avg) | $(hr_get "$s" rest anon_avg) | $(hr_get "$s" rest pss_avg) |"
    done
}

# One table for the docs: req/s (and requests per CPU-second) of every
# server in every scenario, and the idle worker's memory.
py_summary_md() {
    local s sc head="| server |" rule="| --- |" row v
    for sc in "${PY_SCENARIOS[@]}"; do head+=" $sc |"; rule+=" ---: |"; done
    md "" "**Summary**: req/s (requests per CPU-second of the server); memory: an idle worker's VmRSS / Pss, MiB" "" \
        "$head memory |" "$rule ---: |"
    for s in "${PY_RUN[@]}"; do
        row="| ${PY_WHAT[$s]} |"
        for sc in "${PY_SCENARIOS[@]}"; do
            v=$(hr_get "$s" "$sc" rps)
            [[ $v != - ]] && v+=" ($(hr_get "$s" "$sc" per_cpu))"
            [[ -n ${HR["$s|$sc|skip"]:-} ]] && v=""
            row+=" $v |"
        done
        v=$(hr_get "$s" rest rss_avg)
        [[ $v != - ]] && v=$(awk -v r="$v" -v p="$(hr_get "$s" rest pss_avg)" 'BEGIN { printf "%.1f / %.1f", r / 1024, p / 1024 }')
        md "$row $v |"
    done
}

py_report() {
    local sc
    HTTP_MD='' PY_TMD='' PY_FAILS=0 PY_UNKNOWN=0 PY_TARGETS=0 PY_FLOOR=
    md "WSGI servers, $PY_W processes each, on $(nproc) CPUs shared with wrk (\`bench/run.sh python\`, ${PY_SECS} s per run$( ((PY_ROUNDS > 1)) && echo ", medians of $PY_ROUNDS rounds"); $(date -u +%Y-%m-%d)). $PY_VERSIONS."
    for sc in "${PY_SCENARIOS[@]}"; do py_table "$sc"; done
    py_summary_md
    py_memory
    py_headline
    report ""
    report "targets: $((PY_TARGETS - PY_FAILS - PY_UNKNOWN)) of $PY_TARGETS met, $PY_FAILS failed, $PY_UNKNOWN not measured (a shared $(nproc)-CPU machine, wrk on the same CPUs: see bench/README.md)"
    md "" "**Targets**" "" "| target | value | wanted | |" "| --- | ---: | --- | --- |"
    HTTP_MD+=$PY_TMD
    md "" "Targets: $((PY_TARGETS - PY_FAILS - PY_UNKNOWN)) of $PY_TARGETS met, $PY_FAILS failed, $PY_UNKNOWN not measured."
    [[ -n $PY_FLOOR ]] && md "" "Floor: python3 -m prefork on hello world over prefork serve on a 1 KiB file (pure C): $PY_FLOOR."
    printf '%s' "$HTTP_MD" >"${RESULT%.txt}.md"
    note "markdown: ${RESULT%.txt}.md"
}

py_versions() {
    local v=("$("$PY" --version 2>&1)")
    "$PY" -c 'import gunicorn' 2>/dev/null && v+=("gunicorn $("$PY" -c 'import gunicorn; print(gunicorn.__version__)')")
    command -v uwsgi >/dev/null && v+=("uWSGI $(uwsgi --version 2>/dev/null)")
    "$PY" -c 'import waitress' 2>/dev/null &&
        v+=("waitress $("$PY" -c 'from importlib.metadata import version; print(version("waitress"))' 2>/dev/null)")
    v+=("$(wrk -v 2>&1 | head -n 1 | awk '{ print "wrk " $2 }')")
    PY_VERSIONS=$(printf '%s, ' "${v[@]}")
    PY_VERSIONS=${PY_VERSIONS%, }
}

py_notes() {
    local s
    report "WSGI: python3 -m prefork against gunicorn, uWSGI, waitress and prefork run + wsgiref on 127.0.0.1, wrk -t2 --latency --timeout 2s"
    report "  $PY_VERSIONS; every server runs under $PY"
    report "  this machine has $(nproc) CPU(s), shared by the server under test and wrk (2 threads); cpu%, wrk%, oth% are % of one CPU"
    for s in "${PY_RUN[@]}"; do report "  $(printf '%-16s %s' "$s" "${PY_WHAT[$s]}")"; done
    report "  the applications: bench/python/{hello,json16k,file1m,sleep10}.py, the same file for every server"
    report "  per scenario every server is started with its application, warmed up (wrk 1 s), then wrk runs"
    report "  against each in turn: ${PY_SECS} s per run, $PY_ROUNDS round(s) (medians), a run during which other processes"
    report "  used over 20% of a CPU repeated up to $HTTP_RETRIES times. req/cpu_s: requests per CPU-second of the server's"
    report "  master and workers (utime+stime, threads included). pf÷rps, pf÷cpu: prefork's figure over the row's (its better row of prefork and prefork-threads)."
    report "  errors: wrk's socket errors and non-2xx answers; tmo: those of them that are requests unanswered after 2 s."
    report "  uwsgi --http-socket closes each connection without saying so: wrk counts a read error each time (the"
    report "  request was answered and counts in req/s)."
}

py_setup() {
    local s why list=${BENCH_PY_SERVERS:-${PY_ALL_SERVERS[*]}}
    PY=${BENCH_PYTHON:-${PYTHON:-/usr/bin/python3}}
    PY_PKG=${BENCH_PY_PACKAGE:-$PWD/$B/python}
    [[ $PY_PKG == /* ]] || PY_PKG=$PWD/$PY_PKG
    PY_SLOW_N=${BENCH_PY_SLOW:-500}
    PY_DESC[slow]="hello world, keep-alive, 64 connections, while $PY_SLOW_N slow clients hold connections"
    PY_SECS=$(awk -v s="$RUN_SECONDS" 'BEGIN { s = int(s + 0.5); print s < 1 ? 1 : s }')
    PY_ROUNDS=${BENCH_ROUNDS:-1} HTTP_RETRIES=${BENCH_HTTP_RETRIES:-2}
    command -v "$PY" >/dev/null || { fail "$PY is missing (BENCH_PYTHON names the interpreter)"; return 1; }
    command -v wrk >/dev/null || { fail "wrk is missing (tests/deps.sh installs it)"; return 1; }
    read -ra PY_SCENARIOS <<<"${BENCH_PY_SCENARIOS:-${PY_ALL[*]}}"
    for s in "${PY_SCENARIOS[@]}"; do
        [[ -n ${PY_DESC[$s]:-} ]] || { fail "unknown scenario in BENCH_PY_SCENARIOS: $s (${PY_ALL[*]})"; return 1; }
    done
    [[ " ${PY_SCENARIOS[*]} " == *" slow "* ]] && { need "$B/bench/http_slow" || return 1; }
    PY_RUN=()
    for s in $list; do
        [[ -n ${PY_WHAT[$s]:-} ]] || { fail "unknown server in BENCH_PY_SERVERS: $s (${PY_ALL_SERVERS[*]})"; return 1; }
        why=$(py_missing "$s")
        if [[ -n $why ]]; then
            if [[ $s == prefork ]]; then fail "$why"; else report "skipped: $s: $why"; fi
            continue
        fi
        PY_RUN+=("$s")
    done
    ((${#PY_RUN[@]})) || { fail "no server to run"; return 1; }
}

section_python() {
    local RUN_SECONDS=${BENCH_SECONDS:-5} PY PY_PKG PY_SLOW_N PY_SECS PY_ROUNDS PY_SC PY_VERSIONS
    local PY_RUN=() PY_SCENARIOS=() HTTP_RETRIES HTTP_ROUND=0 sc
    # A request unanswered after 2 s counts as a timeout (wrk's figure, in
    # errors and in tmo): where a server starves some clients, that shows.
    local HTTP_WRK_TIMEOUT=2s
    # The http section's wrk runs read their scenario's connections and
    # path from these; here they are this section's scenarios. Every
    # application answers any path, so the floor (prefork serve) and the
    # Python servers can share /1k.bin.
    local -A HTTP_CONNS=([ka]=64 [close]=64 [json]=64 [file]=16 [sleep]=32 [slow]=64 [tls]=64)
    local -A HTTP_PATH=([ka]=/1k.bin [close]=/1k.bin [json]=/ [file]=/ [sleep]=/ [slow]=/1k.bin
        [tls]=/1k.bin)
    HR=()
    py_setup && http_www || return
    export BENCH_FILE=$PWD/$OUT/www/1m.bin # bench/python/file1m.py sends it
    py_versions
    py_notes
    for sc in "${PY_SCENARIOS[@]}"; do py_scenario "$sc"; done
    py_report
}
