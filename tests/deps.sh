#!/usr/bin/env bash
# deps.sh — install the Debian packages the tests, fuzzers and benchmarks need (or, with "build", what building needs), if any is missing.
set -euo pipefail

# Criterion: the unit and integration test framework (each test in its own
# process, with timeouts). clang + libclang-rt: libFuzzer and sanitizers.
# libssl-dev, openssl: TLS (OpenSSL 3) and the tests' certificates and
# s_client; testssl.sh checks the TLS set-up in make bench's tls section.
# zlib1g-dev, libbrotli-dev: the static site compresses text (gzip, br);
# brotli: the tests make .br files and decode what the server sends.
# curl, wrk: real HTTP clients. nginx, lighttpd: benchmark peers.
# chromium: a real browser loads the directory listing. python3-dev: the
# Python package's extension; python3-pytest, python3-flask, python3-venv:
# its tests (pytest; a Flask app; pip install into a fresh venv);
# python3-prometheus-client: a strict parser of the metrics exposition.
# haproxy, iproute2: the fleet test (hosts behind a real HAProxy, in
# network namespaces). libnginx-mod-stream: nginx's stream module, which
# nginx-light lacks; the fleet test's nginx balancer sends the PROXY
# protocol from it. systemd: systemd-socket-activate passes a socket as a
# .socket unit does.
packages=(build-essential pkg-config libcriterion-dev clang libclang-rt-14-dev libssl-dev openssl testssl.sh
          zlib1g-dev libbrotli-dev brotli curl wrk
          python3 nginx-light lighttpd chromium python3-dev python3-pytest python3-flask
          python3-venv python3-prometheus-client haproxy iproute2 libnginx-mod-stream
          prometheus systemd)

# "deps.sh build": only what building needs (make serve on a fresh machine).
if [ "${1:-}" = build ]; then
    packages=(build-essential pkg-config libssl-dev zlib1g-dev libbrotli-dev)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
    command -v sudo >/dev/null || { echo "deps: run as root: apt-get install ${missing[*]}" >&2; exit 1; }
else
    sudo=
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt (a second checkout's deps, unattended upgrades)
# rather than fail on its lock.
apt=(apt-get -o DPkg::Lock::Timeout=600)
# The package lists may be missing or stale on a fresh machine.
$sudo "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    $sudo "${apt[@]}" update -q >/dev/null
    $sudo "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
# The benchmark peers and Prometheus must not keep running as system services.
for svc in nginx lighttpd haproxy prometheus; do
    if [[ " ${missing[*]} " == *" $svc"* ]] && command -v systemctl >/dev/null; then
        $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
done
echo "deps: done"
