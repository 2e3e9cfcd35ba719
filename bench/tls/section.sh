# section.sh — the tls section of bench/run.sh: prefork serve over HTTPS against nginx with the same certificate and TLS settings, ECDSA P-256 and RSA 2048.
#
# Sourced by bench/run.sh, whose helpers it uses (server_start, http_spawn,
# http_workers, tree_cpu, machine_busy, bounded, wrk_parse, median,
# ratio, report). Settings, from the environment (bench/README.md):
#   BENCH_SECONDS       length of each run (default 5)
#   BENCH_ROUNDS        rounds over every scenario and server, the order
#                       reversed every other round; figures are medians,
#                       ratios the medians of each round's pair (default 1)
#   BENCH_TLS_KEYS      key types (default "ecdsa rsa")
#   BENCH_TLS_SCENARIOS scenarios (default "ka wrk-close full resume 1m idle")
#   BENCH_TLS_IDLE      idle TLS connections held in the idle scenario (2000)
#   BENCH_TLS_TESTSSL   0: no testssl.sh run at the end (default 1)
#
# Both servers: the same worker count, no access log, TLS 1.2 and 1.3,
# Mozilla's intermediate suites and groups in the client's order, tickets
# on, for nginx ssl_session_cache shared:SSL:10m too. Certificates are
# self-signed, made here; the clients do not verify them.

TLS_ALL=(ka wrk-close full resume 1m idle)
declare -A TLS_DESC=(
    [ka]="1 KiB file, keep-alive, wrk -c64"
    [wrk-close]="1 KiB file, a new connection per request, wrk -c16 (wrk offers its last session: resumed handshakes)"
    [full]="1 KiB file, a new connection per request, full TLS 1.3 handshakes, tls_load -t2 -c16"
    [resume]="1 KiB file, a new connection per request, resumed TLS 1.3 handshakes, tls_load -t2 -c16"
    [1m]="1 MiB file, keep-alive, wrk -c16"
    [idle]="idle TLS connections held (one request each), memory per connection"
)

# The certificates: $OUT/tls/KEY.pem and KEY.key for ecdsa and rsa.
tls_certs() {
    local d=$OUT/tls k opts
    mkdir -p "$d"
    for k in ecdsa rsa; do
        [[ -s $d/$k.pem ]] && continue
        opts="-newkey ec -pkeyopt ec_paramgen_curve:P-256"
        [[ $k == rsa ]] && opts="-newkey rsa:2048"
        # shellcheck disable=SC2086
        openssl req -x509 $opts -nodes -keyout "$d/$k.key" -out "$d/$k.pem" -days 365 \
            -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
            >/dev/null 2>&1 || { fail "openssl req ($k) failed"; return 1; }
    done
}

# tls_start SERVER KEY: start prefork or nginx on KEY's certificate; sets
# SERVER_PID SERVER_PORT HTTP_WPIDS HTTP_TREE.
tls_start() {
    local s=$1 k=$2 port conf
    if [[ $s == prefork ]]; then
        server_start "prefork-tls-$k" "$B/prefork" serve "$OUT/www" -l 127.0.0.1:0,tls \
            --tls-cert "$OUT/tls/$k.pem" --tls-key "$OUT/tls/$k.key" -w "$TLS_W" \
            --access-log off --keepalive-timeout 300 --graceful-timeout 5 || return 1
        http_workers "$TLS_W"
        return
    fi
    port=$(http_port) || { fail "no free port for nginx"; return 1; }
    conf=$PWD/$OUT/nginx-tls.conf
    sed -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$TLS_W|g" -e "s|@ROOT@|$PWD/$OUT/www|g" \
        -e "s|@STATE@|$PWD/$OUT|g" -e "s|@NOFILE@|$HTTP_NOFILE|g" \
        -e "s|@CONNS@|$((TLS_IDLE_N + 1024))|g" \
        -e "s|@CERT@|$PWD/$OUT/tls/$k.pem|g" -e "s|@KEY@|$PWD/$OUT/tls/$k.key|g" \
        bench/conf/nginx-tls.conf.in >"$conf" || return 1
    mkdir -p "$OUT/nginx-tmp"
    http_spawn "nginx-tls-$k" "$port" /usr/sbin/nginx -c "$conf" -e "$PWD/$OUT/nginx-error.log" &&
        http_workers "$TLS_W"
}

# tls_client SCENARIO: the client run, its output in $OUT/tls.out; prints
# "requests errors".
tls_client() {
    local url=https://127.0.0.1:$SERVER_PORT
    case $1 in
    ka) bounded "$OUT/tls.out" wrk -t2 -c64 -d"${TLS_SECS}s" --timeout 10s "$url/1k.bin" ;;
    wrk-close) bounded "$OUT/tls.out" wrk -t2 -c16 -d"${TLS_SECS}s" --timeout 10s \
        -H 'Connection: close' "$url/1k.bin" ;;
    1m) bounded "$OUT/tls.out" wrk -t2 -c16 -d"${TLS_SECS}s" --timeout 10s "$url/1m.bin" ;;
    full | resume) bounded "$OUT/tls.out" "$B/bench/tls_load" -p "$SERVER_PORT" -m "$1" -t 2 -c 16 \
        -d "$TLS_SECS" -u /1k.bin ;;
    esac
    if [[ $1 == full || $1 == resume ]]; then
        local line
        line=$(tail -n 1 "$OUT/tls.out")
        echo "$(field requests "$line") $(field errors "$line") $(field resumed "$line")"
    else
        local n e
        read -r n _ _ _ e < <(wrk_parse "$OUT/tls.out")
        echo "$n $e -"
    fi
}

# tls_run SERVER KEY SCENARIO: one timed run; its figures into TR.
tls_run() {
    local s=$1 k=$2 sc=$3 c0 c1 e0 e1 m0 m1 n err res rps per other
    c0=$(tree_cpu) m0=$(machine_busy) e0=$EPOCHREALTIME
    read -r n err res < <(tls_client "$sc")
    e1=$EPOCHREALTIME c1=$(tree_cpu) m1=$(machine_busy)
    read -r rps per other < <(awk -v n="${n:-0}" -v c0="$c0" -v c1="$c1" -v e0="$e0" -v e1="$e1" \
        -v m0="$m0" -v m1="$m1" 'BEGIN { t = e1 - e0; c = c1 - c0
        printf "%.0f %.0f %.0f\n", n / t, (c > 0 ? n / c : 0), 100 * (m1 - m0 - c) / t }')
    ((${n:-0} > 0)) || fail "$s ($k) $sc: no request completed"
    TR["$s|$k|$sc|rps"]+="$rps " TR["$s|$k|$sc|per_cpu"]+="$per " TR["$s|$k|$sc|errors"]+="${err:-0} "
    printf 'raw server=%s key=%s scenario=%s requests=%s rps=%s req_per_cpu_s=%s errors=%s resumed=%s machine_other_pct=%s\n' \
        "$s" "$k" "$sc" "$n" "$rps" "$per" "$err" "$res" "$other" >>"$RESULT"
    note "tls: $s $k $sc: $rps req/s, $per req per CPU-s, errors $err, resumed $res"
}

# tls_idle SERVER KEY: hold TLS_IDLE_N idle TLS connections; the growth of
# the serving processes' private memory (RssAnon) per connection.
tls_idle() {
    local s=$1 k=$2 a0 a1 pid line held
    a0=$(status_kib RssAnon "${HTTP_WPIDS[@]}")
    "$B/bench/tls_load" -p "$SERVER_PORT" -m idle -n "$TLS_IDLE_N" -d 600 -u /1k.bin \
        >"$OUT/tls_idle.out" 2>"$OUT/tls_idle.err" &
    pid=$!
    PIDS+=("$pid")
    if ! http_idle_wait "$pid" "$OUT/tls_idle.out"; then
        fail "$s ($k): tls_load did not hold $TLS_IDLE_N connections: $(head -c 300 "$OUT/tls_idle.err")"
        stop_process "$pid"
        return 1
    fi
    sleep 0.5
    a1=$(status_kib RssAnon "${HTTP_WPIDS[@]}")
    stop_process "$pid"
    line=$(head -n 1 "$OUT/tls_idle.out")
    held=${line#ready }
    # Fewer held than asked (the client's connects failed): the figure is
    # per connection held, and the run says so.
    ((held > 0)) || { fail "$s ($k): no idle connection held"; return 1; }
    ((held < TLS_IDLE_N)) && note "tls: $s ($k): only $held of $TLS_IDLE_N idle connections held: $(head -c 200 "$OUT/tls_idle.err")"
    TR["$s|$k|idle|bytes"]+="$(((a1 - a0) * 1024 / held)) "
    printf 'raw server=%s key=%s idle=%s %s rss_anon_kib_before=%s after=%s\n' \
        "$s" "$k" "$TLS_IDLE_N" "$line" "$a0" "$a1" >>"$RESULT"
}

tls_get() {
    local v=${TR["$1"]:-}
    [[ -n $v ]] || { echo -; return; }
    tr ' ' '\n' <<<"$v" | grep . | median | awk '{ printf "%.0f\n", $1 }'
}

# tls_pair KEY SCENARIO rps|per_cpu: the median of the paired ratios.
tls_pair() {
    local v=${TR["pair|$1|$2|$3"]:-}
    [[ -n $v ]] || { echo -; return; }
    tr ' ' '\n' <<<"$v" | grep . | median | awk '{ printf "%.2f\n", $1 }'
}

tls_report() {
    local k sc p n
    report ""
    report "HTTPS, prefork serve against nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $TLS_W workers each," \
        "$TLS_ROUNDS round(s) of ${TLS_SECS} s (medians; ratios: medians of the ratios of the two runs" \
        "of each round, back to back), 2 CPUs shared with the clients."
    for sc in "${TLS_SCENARIOS[@]}"; do report "  $sc: ${TLS_DESC[$sc]}"; done
    printf '%-6s %-10s %10s %10s %7s %12s %12s %7s\n' key scenario prefork nginx ratio \
        prefork/cpu-s nginx/cpu-s ratio | tee -a "$RESULT"
    TLS_MD="| key | scenario | prefork req/s | nginx req/s | ratio | prefork req/CPU-s | nginx req/CPU-s | ratio |"$'\n'
    TLS_MD+="| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"$'\n'
    for k in "${TLS_KEYS[@]}"; do
        for sc in "${TLS_SCENARIOS[@]}"; do
            if [[ $sc == idle ]]; then
                p=$(tls_get "prefork|$k|idle|bytes") n=$(tls_get "nginx|$k|idle|bytes")
                printf '%-6s %-10s %9sB %9sB %7s   (memory per idle TLS connection; lower is better)\n' \
                    "$k" idle "$p" "$n" "$(ratio "$p" "$n")" | tee -a "$RESULT"
                TLS_MD+="| $k | idle: bytes per connection | $p | $n | $(ratio "$p" "$n") | | | |"$'\n'
                continue
            fi
            local pr nr pc nc
            pr=$(tls_get "prefork|$k|$sc|rps") nr=$(tls_get "nginx|$k|$sc|rps")
            pc=$(tls_get "prefork|$k|$sc|per_cpu") nc=$(tls_get "nginx|$k|$sc|per_cpu")
            local rr rc
            rr=$(tls_pair "$k" "$sc" rps) rc=$(tls_pair "$k" "$sc" per_cpu)
            printf '%-6s %-10s %10s %10s %7s %12s %12s %7s\n' "$k" "$sc" "$pr" "$nr" \
                "$rr" "$pc" "$nc" "$rc" | tee -a "$RESULT"
            TLS_MD+="| $k | $sc | $pr | $nr | $rr | $pc | $nc | $rc |"$'\n'
        done
    done
    report ""
    report "Markdown:"
    report "$TLS_MD"
}

# testssl.sh against prefork (ECDSA), bounded: the findings rated HIGH or
# CRITICAL. Apart: those about the self-signed test certificate, and
# cipher_order, which testssl 3.0 rates HIGH whenever the server lets the
# client choose among its suites: that is Mozilla's intermediate setting,
# and ours by design (every suite offered is AEAD with forward secrecy, and
# a client without AES hardware picks ChaCha20). The checks: protocols,
# cipher lists, forward secrecy, server defaults and preferences,
# vulnerabilities (not each cipher one by one, nor the client simulations,
# which take ten minutes here and rate nothing).
tls_testssl() {
    local json=$PWD/$OUT/testssl.json bad design cert
    command -v testssl >/dev/null || { report "testssl: not installed (apt-get install testssl.sh): skipped"; return; }
    tls_start prefork ecdsa || return
    rm -f "$json"
    note "tls: testssl.sh against prefork (up to 10 minutes)"
    timeout -k 5 600 testssl --quiet --color 0 --warnings batch --severity HIGH --jsonfile "$json" \
        -p -s -f -S -P -U --ip 127.0.0.1 "127.0.0.1:$SERVER_PORT" >"$OUT/testssl.out" 2>&1
    stop_process "$SERVER_PID"
    [[ -s $json ]] || { fail "testssl.sh wrote no results (see $OUT/testssl.out)"; return; }
    read -r bad design cert < <(python3 - "$json" <<'PY'
import json, sys
items = [f["id"] for f in json.load(open(sys.argv[1])) if f.get("severity") in ("HIGH", "CRITICAL")]
cert = [i for i in items if i.startswith("cert")]
design = [i for i in items if i == "cipher_order"]
server = [i for i in items if i not in cert and i not in design]
print(",".join(server) or "none", ",".join(design) or "none", ",".join(cert) or "none")
PY
)
    report "testssl.sh (HIGH or CRITICAL): server: $bad; by design (client's suite order): $design;" \
        "about the self-signed test certificate: $cert"
    [[ $bad == none ]] || fail "testssl.sh rates these HIGH or CRITICAL: $bad"
}

# tls_idle_phase: every key, round and server (the order reversed every
# other round), each on a fresh server: its idle memory.
tls_idle_phase() {
    local k r s order
    for k in "${TLS_KEYS[@]}"; do
        for ((r = 0; r < TLS_ROUNDS; r++)); do
            order=(prefork nginx)
            ((r % 2)) && order=(nginx prefork)
            for s in "${order[@]}"; do
                note "tls: idle, $k, round $((r + 1))/$TLS_ROUNDS: $s"
                tls_start "$s" "$k" || continue
                tls_idle "$s" "$k"
                stop_process "$SERVER_PID"
            done
        done
    done
}

# tls_up SERVER KEY / tls_use SERVER: start a server and keep what names it
# (SERVER_PID SERVER_PORT HTTP_WPIDS HTTP_TREE) / make it the current one.
tls_up() {
    tls_start "$1" "$2" || return 1
    TLS_UP[$1]="$SERVER_PID $SERVER_PORT|${HTTP_WPIDS[*]}|${HTTP_TREE[*]}"
    # What a default OpenSSL client negotiates, for the record.
    printf 'raw server=%s key=%s negotiated="%s"\n' "$1" "$2" \
        "$(openssl s_client -connect "127.0.0.1:$SERVER_PORT" </dev/null 2>/dev/null |
            sed -n 's/^New, //p' | head -n 1)" >>"$RESULT"
}
tls_use() {
    local v=${TLS_UP[$1]} w t
    IFS='|' read -r v w t <<<"$v"
    read -r SERVER_PID SERVER_PORT <<<"$v"
    read -ra HTTP_WPIDS <<<"$w"
    read -ra HTTP_TREE <<<"$t"
}

# tls_load_phase: for each key both servers run side by side (the one not
# measured is idle), and each scenario runs on one then at once on the
# other, the order reversed every other round. The ratio of each such pair
# is taken, and the report gives their median: this machine's speed drifts
# by a quarter from one half-minute to the next (other tenants of the
# host), far more than from one run to the next, so runs far apart in time
# compare badly, and neighbours well.
tls_load_phase() {
    local k r s sc order p n
    declare -gA TLS_UP=()
    for k in "${TLS_KEYS[@]}"; do
        tls_up prefork "$k" && tls_up nginx "$k" || {
            for s in "${!TLS_UP[@]}"; do tls_use "$s"; stop_process "$SERVER_PID"; done
            TLS_UP=()
            continue
        }
        for ((r = 0; r < TLS_ROUNDS; r++)); do
            order=(prefork nginx)
            ((r % 2)) && order=(nginx prefork)
            for sc in "${TLS_SCENARIOS[@]}"; do
                [[ $sc == idle ]] && continue
                note "tls: load, $k, $sc, round $((r + 1))/$TLS_ROUNDS"
                for s in "${order[@]}"; do
                    tls_use "$s"
                    tls_run "$s" "$k" "$sc"
                done
                for n in rps per_cpu; do
                    p=$(ratio "$(tls_last "prefork|$k|$sc|$n")" "$(tls_last "nginx|$k|$sc|$n")" 3)
                    [[ $p == - ]] || TR["pair|$k|$sc|$n"]+="$p "
                done
            done
        done
        for s in prefork nginx; do tls_use "$s"; stop_process "$SERVER_PID"; done
        TLS_UP=()
    done
}

tls_last() {
    local v=${TR["$1"]:-}
    v=${v% }
    echo "${v##* }"
}

section_tls() {
    local RUN_SECONDS=${BENCH_SECONDS:-5}
    need "$B/prefork" "$B/bench/tls_load" || return
    command -v wrk >/dev/null && [[ -x /usr/sbin/nginx ]] ||
        { fail "wrk and nginx are needed (tests/deps.sh installs them)"; return; }
    read -ra TLS_KEYS <<<"${BENCH_TLS_KEYS:-ecdsa rsa}"
    read -ra TLS_SCENARIOS <<<"${BENCH_TLS_SCENARIOS:-${TLS_ALL[*]}}"
    TLS_ROUNDS=${BENCH_ROUNDS:-1} TLS_IDLE_N=${BENCH_TLS_IDLE:-2000} TLS_W=$(nproc)
    TLS_SECS=$(awk -v s="$RUN_SECONDS" 'BEGIN { s = int(s + 0.5); print s < 1 ? 1 : s }')
    HTTP_IDLE_N=$TLS_IDLE_N
    declare -gA TR=()
    http_www && http_nofile && tls_certs || return
    # Memory first, for every server and key, each on a fresh server and
    # before any load: freed memory an allocator keeps would hide part of
    # the growth, and the load's closed connections (TIME_WAIT) would take
    # the client's ports.
    [[ " ${TLS_SCENARIOS[*]} " == *" idle "* ]] && tls_idle_phase
    tls_load_phase
    tls_report
    [[ ${BENCH_TLS_TESTSSL:-1} == 0 ]] || tls_testssl
}
