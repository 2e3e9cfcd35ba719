#!/usr/bin/env bash
# deps.sh — install the Debian packages of the benchmark's peers (make bench-deps), if any is missing; the tests do not need them.
set -euo pipefail

# The python section's peers, for Debian's /usr/bin/python3: gunicorn,
# uWSGI with its Python 3 plugin, waitress. Flask for examples/python.
# (tests/deps.sh installs wrk, nginx and lighttpd, which the tests use too.)
packages=(gunicorn uwsgi-core uwsgi-plugin-python3 python3-waitress python3-flask)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bench-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
    command -v sudo >/dev/null || { echo "bench-deps: run as root: apt-get install ${missing[*]}" >&2; exit 1; }
else
    sudo=
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine.
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
echo "bench-deps: done"
