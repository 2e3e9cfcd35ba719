#!/usr/bin/env bash
# layers.sh — check that src/lib's folders depend one way, master -> worker (spec.h only) -> core, by their includes and (given a build folder) their symbols; nothing outside src/lib includes its headers.
# usage: tests/layers.sh [BUILD_DIR]
set -uo pipefail
build=${1:-}
cd "$(dirname "$0")/.."
bad=0
# folder, then the lib/ folders it may include
check() {
    local dir=$1; shift
    local allowed=" $* "
    while IFS=: read -r file _ inc; do
        local to=${inc#*\"lib/}
        to=${to%%/*}
        if [[ $allowed != *" $to "* ]]; then
            echo "layers: $file includes $inc (not allowed from $dir)"
            bad=1
        fi
    done < <(grep -Hn '#include "lib/' "$dir"/*.[ch] 2>/dev/null)
}
check src/lib/core core
check src/lib/worker core worker
check src/lib/master core master worker
# The master's one door into the worker's side.
while IFS= read -r hit; do
    echo "layers: $hit (the master uses lib/worker/spec.h only)"
    bad=1
done < <(grep -Hn '#include "lib/worker/' src/lib/master/*.[ch] | grep -v 'lib/worker/spec.h')
# Above the library: the public header only.
check src/http
check src/tls
check src/static
check src/cli
# The HTTP core knows transports only through transport.h: TLS plugs in
# from above (src/tls uses the core's seam, never the reverse).
while IFS= read -r hit; do
    echo "layers: $hit (src/http may not use src/tls)"
    bad=1
done < <(grep -Hn '#include "tls/' src/http/*.[ch] 2>/dev/null)
# The same by symbols: what a folder's objects use, defined in a folder it
# may not use.
defined() { nm -g --defined-only "$build"/src/lib/"$1"/*.o | awk 'NF == 3 && $2 ~ /[TDBR]/ {print $3}' | sort -u; }
used() { nm -u "$build"/src/lib/"$1"/*.o | awk '$2 ~ /^pf_/ {print $2}' | sort -u; }
symbols() { # folder, then the folders it may not use
    local from=$1; shift
    for to in "$@"; do
        for sym in $(comm -12 <(used "$from") <(defined "$to")); do
            echo "layers: src/lib/$from uses $sym from src/lib/$to"
            bad=1
        done
    done
}
if [ -n "$build" ] && [ -d "$build/src/lib/core" ]; then
    symbols core worker master
    symbols worker master
fi
[ "$bad" -eq 0 ] && echo "layers: ok (core <- worker <- master; http, tls, static, cli use prefork.h; http <- tls)"
exit "$bad"
