#!/usr/bin/env bash
# run.sh — run every test program of a build (unit, then integration) and print one closing tally.
# usage: tests/run.sh [BUILD_DIR]   (default build; the sanitizer run passes build/san)
set -uo pipefail
build=${1:-build}
export PF_BUILD=$build
# Sanitizers: fail on the first report, and say where.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0 failed=0 programs=0 broken=()
run_one() { # program, criterion args...
    local prog=$1; shift
    local out rc
    out=$(mktemp)
    "$prog" "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    # "[====] Synthesis: Tested: 9 | Passing: 9 | Failing: 0 | Crashing: 0"
    local line p f c
    line=$(grep -a 'Synthesis:' "$out" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g')
    p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
    f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$line")
    c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$line")
    # Criterion exits 1 with every test passed when one logged a warning or
    # an error (cr_log_warn, cr_log_error) or crashed after its body: keep
    # those lines for the closing tally.
    local warned
    warned=$(grep -aE '\[WARN\]|\[ERR \]|Warning!' "$out" | sed 's/\x1b\[[0-9;]*m//g' | tr '\n' ' ')
    rm -f "$out"
    programs=$((programs + 1))
    if [ -z "$line" ]; then
        broken+=("$prog (no result, exit $rc)")
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${c:-0}))
    if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ] && [ "${c:-0}" -eq 0 ]; then
        broken+=("$prog (exit $rc) ${warned}")
        failed=$((failed + 1))
    fi
    return 0
}

shopt -s nullglob
for t in "$build"/tests/unit/*; do
    [ -x "$t" ] && [ -f "$t" ] && [[ $t != *.[od] ]] && run_one "$t" --jobs=2 --timeout=60
done
# Integration tests start real pools: one at a time, so that two of them do
# not fight over the 2 cores and miss each other's deadlines.
for t in "$build"/tests/integration/*; do
    [ -x "$t" ] && [ -f "$t" ] && [[ $t != *.[od] ]] && run_one "$t" --jobs=1 --timeout=120
done

echo
for b in "${broken[@]}"; do echo "FAILED: $b"; done
echo "($programs test programs in $build)"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$programs" -gt 0 ]
