# section.sh — the fleet section of bench/run.sh: what each event costs a fleet behind HAProxy (the fleet test's figures), and what the PROXY protocol costs on 1 KiB keep-alive.
#
# Sourced by bench/run.sh, whose helpers it uses (http_www, http_spawn,
# http_workers, tree_cpu, wrk_parse, median, ratio, report). Settings:
#   BENCH_SECONDS  length of each wrk run in the PROXY scenario (default 5)
#   BENCH_ROUNDS   rounds of it, the order reversed every other round
#                  (default 3); figures are medians
#   BENCH_FLEET_EVENTS  0: skip part 1 (the fleet test)
#
# Part 1 runs tests/fleet/test_fleet.py (two hosts running prefork serve
# behind HAProxy, each in a network namespace) with FLEET_REPORT set: each
# event reports the requests the client sent through HAProxy during it,
# those that failed, and how long HAProxy took to mark a host down. It needs
# root for the namespaces; without, it says so and goes on.
#
# Part 2 puts HAProxy on loopback in front of prefork serve (2 workers) and
# runs wrk through it, 64 keep-alive connections for a 1 KiB file: once
# with send-proxy-v2 to a ,proxy listener, once without. HAProxy keeps its
# connections to the server alive, so the header goes once per server
# connection: the target is that it costs no more than 3%. Both runs use
# "http-reuse never", what docs/deploy.md advises with the PROXY protocol: a
# connection that carried one client's header is that client's, and with
# pooling on (safe or always) HAProxy 2.6, once the first clients had left,
# opened about one server connection per request (60,000 in 5 s instead of
# 64: a third of the req/s).

fleet_events() {
    local report=$OUT/fleet-events.txt
    rm -f "$report"
    if ! FLEET_REPORT=$report PF_BUILD=$B timeout 600 /usr/bin/python3 -m pytest -q \
        -p no:cacheprovider tests/fleet/test_fleet.py >"$OUT/fleet-pytest.log" 2>&1; then
        fail "the fleet test failed: $OUT/fleet-pytest.log"
    fi
    if [[ ! -s $report ]]; then
        report "fleet events: not measured ($(tail -n 1 "$OUT/fleet-pytest.log"))"
        return
    fi
    report "fleet events (client through HAProxy, wrk -c8, 2 hosts of 2 workers, pre-stop 2 s, checks every 200 ms, fall 2):"
    printf '  %-42s %9s %7s  %s\n' event requests failed notes | tee -a "$RESULT"
    FLEET_MD="| event | requests during it | failed | notes |"$'\n'"| --- | ---: | ---: | --- |"$'\n'
    local event done failed extra
    while IFS=$'\t' read -r event done failed extra; do
        printf '  %-42s %9s %7s  %s\n' "$event" "$done" "$failed" "$extra" | tee -a "$RESULT"
        FLEET_MD+="| $event | $done | $failed | $extra |"$'\n'
    done <"$report"
}

# haproxy in front of prefork serve on loopback, with or without the header.
fleet_haproxy() {
    local mode=$1 port=$2 backend=$3 cfg=$OUT/fleet-haproxy-$1.cfg send=""
    [[ $mode == proxy ]] && send="send-proxy-v2"
    cat >"$cfg" <<EOF
global
    maxconn 4000
    nbthread 1
defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s
    http-reuse never
frontend fe
    bind 127.0.0.1:$port
    default_backend be
backend be
    server s 127.0.0.1:$backend $send
EOF
    haproxy -f "$cfg" -db >"$OUT/fleet-haproxy-$mode.log" 2>&1 &
    FLEET_HA=$!
    PIDS+=("$FLEET_HA")
    local i
    for ((i = 0; i < 50; i++)); do
        curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/1k.bin" && return 0
        sleep 0.1
    done
    fail "haproxy ($mode) did not answer"
    return 1
}

# CPU seconds of a master and its workers.
fleet_cpu() {
    local p sum=0
    for p in "$1" $(children_of "$1"); do
        sum=$(awk -v a="$sum" -v b="$(cpu_seconds "$p")" 'BEGIN { print a + b }')
    done
    echo "$sum"
}

fleet_median() { tr ' ' '\n' <<<"$1" | grep . | median; }

fleet_proxy_cost() {
    local mode r sp hp pf cpu0 cpu1 out rps
    declare -A RPS=() CPU=()
    for mode in plain proxy; do
        RPS[$mode]="" CPU[$mode]=""
    done
    for ((r = 0; r < FLEET_ROUNDS; r++)); do
        local order=(plain proxy)
        ((r % 2)) && order=(proxy plain)
        for mode in "${order[@]}"; do
            sp=$(http_port) && hp=$(http_port) || { fail "no free port"; return; }
            local listen="127.0.0.1:$sp"
            [[ $mode == proxy ]] && listen+=",proxy"
            "$B/prefork" serve "$OUT/www" -w 2 -l "$listen" --access-log off >"$OUT/fleet-serve-$mode.log" 2>&1 &
            pf=$!
            PIDS+=("$pf")
            local i
            for ((i = 0; i < 50; i++)); do
                [[ $mode == plain ]] && curl -s -o /dev/null -m 1 "http://127.0.0.1:$sp/1k.bin" && break
                [[ $mode == proxy && -n $(children_of "$pf") ]] && break
                sleep 0.1
            done
            fleet_haproxy "$mode" "$hp" "$sp" || { stop_process "$pf"; return; }
            wrk -t1 -c64 -d1s "http://127.0.0.1:$hp/1k.bin" >/dev/null 2>&1
            cpu0=$(fleet_cpu "$pf")
            out=$(wrk -t1 -c64 -d"${FLEET_SECS}s" "http://127.0.0.1:$hp/1k.bin" 2>&1)
            cpu1=$(fleet_cpu "$pf")
            rps=$(awk '/Requests\/sec/ { print int($2) }' <<<"$out")
            RPS[$mode]+="$rps "
            CPU[$mode]+="$(awk -v a="$cpu0" -v b="$cpu1" -v r="$rps" -v s="$FLEET_SECS" \
                'BEGIN { c = b - a; printf "%d", (c > 0 ? r * s / c : 0) }') "
            note "fleet: $mode round $((r + 1)): $rps req/s"
            stop_process "$FLEET_HA"
            stop_process "$pf"
        done
    done
    local p_rps n_rps p_cpu n_cpu
    n_rps=$(fleet_median "${RPS[plain]}") p_rps=$(fleet_median "${RPS[proxy]}")
    n_cpu=$(fleet_median "${CPU[plain]}") p_cpu=$(fleet_median "${CPU[proxy]}")
    report ""
    report "PROXY v2 through HAProxy (wrk -c64 keep-alive, 1 KiB, prefork serve -w 2, ${FLEET_ROUNDS} rounds of ${FLEET_SECS} s, medians):"
    report "  without the header: $n_rps req/s, $n_cpu req per prefork CPU-s"
    report "  with send-proxy-v2:  $p_rps req/s, $p_cpu req per prefork CPU-s"
    local rr rc
    rr=$(ratio "$p_rps" "$n_rps") rc=$(ratio "$p_cpu" "$n_cpu")
    report "  with / without: req/s $rr, per CPU-s $rc (target: within 3%, >= 0.97)"
    FLEET_MD+=$'\n'"| PROXY v2 through HAProxy, 1 KiB keep-alive | without | with | with / without |"$'\n'
    FLEET_MD+="| --- | ---: | ---: | ---: |"$'\n'
    FLEET_MD+="| req/s | $n_rps | $p_rps | $rr |"$'\n'"| req per prefork CPU-s | $n_cpu | $p_cpu | $rc |"$'\n'
}

section_fleet() {
    local FLEET_SECS=${BENCH_SECONDS:-5} FLEET_ROUNDS=${BENCH_ROUNDS:-3} FLEET_MD="" FLEET_HA
    command -v haproxy >/dev/null && command -v wrk >/dev/null ||
        { fail "haproxy and wrk are needed (tests/deps.sh installs them)"; return; }
    need "$B/prefork" || return
    http_www || return
    [[ ${BENCH_FLEET_EVENTS:-1} == 0 ]] || fleet_events
    fleet_proxy_cost
    printf '%s' "$FLEET_MD" >"${RESULT%.txt}.md"
}
