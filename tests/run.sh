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

# The Python package's tests (pytest), when the build has the package, and
# the fleet test (pytest too: prefork serve hosts behind HAProxy and nginx,
# in network namespaces; it skips with one line where it cannot make them).
# Under sanitizers the extension is preloaded with ASan's runtime into the
# interpreters the tests start (conftest.py), and the WSGI conformance (on
# the loop and in threads), fault, thread, TLS, PROXY, hook, forwarded
# scheme and captured output tests run: the rest drive the same C paths.
run_pytest() {
    local python=${PYTHON:-/usr/bin/python3} out rc line p f e tests=(tests/python tests/fleet)
    if ! "$python" -c 'import pytest' 2>/dev/null; then
        broken+=("tests/python (no pytest for $python: make deps)")
        failed=$((failed + 1))
        return
    fi
    if [[ $build == */san ]]; then
        export PF_PY_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so)
        tests=(tests/python/test_wsgi.py tests/python/test_faults.py tests/python/test_threads.py
               tests/python/test_tls.py tests/python/test_proxy.py tests/python/test_config.py
               tests/python/test_forwarded.py tests/python/test_cli.py::test_capture_output
               tests/python/test_cli.py::test_check_config)
    fi
    out=$(mktemp)
    "$python" -m pytest -q -p no:cacheprovider "${tests[@]}" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    # "3 failed, 60 passed, 2 skipped, 1 error in 40.1s"
    line=$(grep -aE '^[=]* *[0-9]+ (passed|failed|error)' "$out" | tail -n 1)
    rm -f "$out"
    p=$(sed -n 's/.*\b\([0-9]*\) passed.*/\1/p' <<<"$line")
    f=$(sed -n 's/.*\b\([0-9]*\) failed.*/\1/p' <<<"$line")
    e=$(sed -n 's/.*\b\([0-9]*\) error.*/\1/p' <<<"$line")
    programs=$((programs + 1))
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${e:-0}))
    if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ] && [ "${e:-0}" -eq 0 ]; then
        broken+=("tests/python (pytest exit $rc)")
        failed=$((failed + 1))
    fi
}
[ -f "$build/python/prefork/__init__.py" ] && run_pytest

echo
for b in "${broken[@]}"; do echo "FAILED: $b"; done
echo "($programs test programs in $build)"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$programs" -gt 0 ]
