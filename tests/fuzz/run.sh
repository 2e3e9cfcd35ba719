#!/usr/bin/env bash
# run.sh — build every libFuzzer target (tests/fuzz/fuzz_*.c) and run each for SECONDS; one summary line per target.
#
# usage: tests/fuzz/run.sh [SECONDS]     (default 60; from any directory)
#
# A target fuzz_X.c names the sources it tests in a line "/* fuzz-sources: a.c b.c */"
# (paths from the top of the tree; "none" when it #includes them itself); without
# one, fuzz_DIR_FILE.c tests src/DIR/FILE.c.
# A line "/* fuzz-libs: -lx -ly */" names libraries to link (TLS: -lssl -lcrypto).
# Its seeds are tests/fuzz/corpus/X/. The run works on a copy of them under
# build/fuzz/, so the committed corpus never grows; crashes land in build/fuzz/crashes/.
# Exits non-zero when a target does not build or crashes.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
out=build/fuzz
cc=${FUZZ_CC:-clang}
# shellcheck disable=SC2054  # the commas belong to -fsanitize=
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -std=c17 -D_GNU_SOURCE -Iinclude -Isrc)
# UBSan only reports by default; a finding must stop the run like a crash.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
mkdir -p "$out/crashes"

# The sources a target tests, from its fuzz-sources line or its name.
sources_of() { # target.c
    local line name
    line=$(sed -n 's|.*fuzz-sources:\(.*\)\*/.*|\1|p' "$1" | head -n 1)
    if [ -n "$line" ]; then
        # "none": the target #includes what it tests.
        [ "$(echo $line)" = none ] || echo "$line"
        return
    fi
    name=$(basename "$1" .c)
    name=${name#fuzz_}
    echo "src/${name%%_*}/${name#*_}.c"
}

# The libraries a target links, from its fuzz-libs line.
libs_of() { sed -n 's|.*fuzz-libs:\(.*\)\*/.*|\1|p' "$1" | head -n 1; }

# Build, run, print one line; return non-zero on failure.
fuzz_one() { # target.c
    local src=$1 name mod bin log scratch runs corpus
    name=$(basename "$src" .c)
    mod=${name#fuzz_}
    bin=$out/$name
    log=$out/$name.log
    # shellcheck disable=SC2046  # the source list is meant to split
    if ! "$cc" "${flags[@]}" "$src" $(sources_of "$src") -o "$bin" $(libs_of "$src") >"$log" 2>&1; then
        echo "$name: BUILD FAILED (see $log)"
        return 1
    fi
    scratch=$(mktemp -d "$out/corpus-$mod.XXXXXX")
    if [ -d "tests/fuzz/corpus/$mod" ]; then
        cp -R "tests/fuzz/corpus/$mod/." "$scratch/"
    fi
    "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/crashes/$name-" \
        "$scratch" >"$log" 2>&1
    local rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    corpus=$(find "$scratch" -type f | wc -l)
    rm -rf "$scratch"
    if [ "$rc" -ne 0 ]; then
        echo "$name: CRASH after ${runs:-?} runs, exit $rc (log $log, input in $out/crashes/)"
        return 1
    fi
    echo "$name: ok, ${runs:-?} runs in ${secs}s, corpus grew to $corpus inputs (log $log)"
}

failed=0 targets=0
for src in tests/fuzz/fuzz_*.c; do
    [ -f "$src" ] || continue
    targets=$((targets + 1))
    fuzz_one "$src" || failed=$((failed + 1))
done
echo "fuzz: $targets targets, $failed failed"
[ "$failed" -eq 0 ] && [ "$targets" -gt 0 ]
