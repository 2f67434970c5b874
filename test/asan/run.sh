#!/usr/bin/env bash
# The Apache::Test suite (test/run-tests.sh) against a mod_sse.so built with
# AddressSanitizer + UBSan, in Debian's own httpd with the ASan runtime
# preloaded.  `make test-asan` builds the module and calls this.
#
#   bash test/asan/run.sh                  every MPM, every test
#   ASAN_MPMS=prefork bash test/asan/run.sh t/02_wire.t
#   ASAN_SUITE=cluster bash test/asan/run.sh   the several-server tests
#                      instead (test/cluster/run.sh and sentinel.sh: three
#                      httpd on Redis, on Sentinel), every httpd under ASan
#
# httpd is started through a small wrapper (build/asan/apache2) that sets
# LD_PRELOAD and the sanitizer options for httpd alone: the Perl test client
# stays uninstrumented.  Every httpd process (parent, children, the relay)
# writes its reports, ASan's and UBSan's, to ASAN_REPORTS/san.<pid> and goes
# on running after one.  At the end each report is listed, and the run fails
# when the suite failed, when httpd never ran under ASan, or when there is a
# report: any report (ASAN_STRICT=1, the default: httpd itself runs clean),
# or only one naming mod_sse code (ASAN_STRICT=0).  Leak checking is off
# unless ASAN_LEAKS=1; use it with ASAN_STRICT=0, since httpd, OpenSSL and
# PCRE leave memory for exit to free: a leak with a mod_sse frame still fails.
#
# Environment: ASAN_MODULE (build/asan/mod_sse.so), ASAN_MPMS (all three),
# ASAN_REPORTS (build/asan/reports), ASAN_STRICT (1), ASAN_LEAKS (0),
# ASAN_CC (clang-14, whose runtime is preloaded), HTTPD (/usr/sbin/apache2).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/asan
: "${ASAN_MODULE:=$out/mod_sse.so}"
: "${ASAN_MPMS:=event worker prefork}"
: "${ASAN_REPORTS:=$out/reports}"
: "${ASAN_STRICT:=1}"
: "${ASAN_LEAKS:=0}"
: "${ASAN_CC:=clang-14}"
: "${HTTPD:=/usr/sbin/apache2}"
runtime=$("$ASAN_CC" -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)

if [ ! -f "$ASAN_MODULE" ]; then
    echo "asan: $ASAN_MODULE not found; run make test-asan" >&2
    exit 2
fi
if [ ! -f "$runtime" ]; then
    echo "asan: no ASan runtime from $ASAN_CC; apt-get install clang-14 libclang-rt-14-dev" >&2
    exit 2
fi
ASAN_MODULE=$(readlink -f "$ASAN_MODULE")
mkdir -p "$out"

# httpd runs as the test user: the report folder must be writable by it.
rm -rf "$ASAN_REPORTS"
mkdir -p "$ASAN_REPORTS"
chmod 1777 "$ASAN_REPORTS"
chmod go+rx "$out" "$ASAN_MODULE"

# use_sigaltstack=0: the broker thread ends in apr_thread_exit() called from an
# instrumented frame, whose redzones so stay poisoned; ASan's own sigaltstack()
# at thread exit then reports them as a stack-buffer-overflow in every child.
# The option only drops the alternate stack used to report stack overflows.
wrapper=$out/apache2
cat >"$wrapper" <<EOF
#!/bin/sh
# written by test/asan/run.sh: Debian's httpd with the ASan runtime preloaded
echo "\$\$ \$*" >>"$ASAN_REPORTS/started"
LD_PRELOAD="$runtime\${LD_PRELOAD:+:\$LD_PRELOAD}"
ASAN_OPTIONS="log_path=$ASAN_REPORTS/san:halt_on_error=0:detect_leaks=$ASAN_LEAKS:detect_stack_use_after_return=1:use_sigaltstack=0"
UBSAN_OPTIONS="log_path=$ASAN_REPORTS/san:halt_on_error=0:print_stacktrace=1"
export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
exec "$HTTPD" "\$@"
EOF
chmod 755 "$wrapper"

# The module under test.  The suite loads the mod_sse.so at the top of the
# tree it runs in.  As root, run-tests.sh runs from a copy, and puts
# $SSE_MODULE there if it knows that variable; else run it from a copy of
# our own whose mod_sse.so is the sanitizer build.
if [ "$(id -u)" = 0 ] && grep -q 'SSE_MODULE' "$top/test/run-tests.sh"; then
    suite=$top/test/run-tests.sh
    export SSE_MODULE=$ASAN_MODULE
else
    tree=$out/tree
    rm -rf "$tree"
    mkdir -p "$tree"
    tar -C "$top" --exclude=./.git --exclude=./build -cf - . | tar -C "$tree" -xf - || exit 2
    cp "$ASAN_MODULE" "$tree/mod_sse.so"
    suite=$tree/test/run-tests.sh
fi

echo "asan: module $ASAN_MODULE"
echo "asan: httpd $HTTPD via $wrapper (runtime $runtime)"
echo "asan: reports in $ASAN_REPORTS"
if [ "${ASAN_SUITE:-}" = cluster ]; then
    export CLUSTER_MODULE=$ASAN_MODULE CLUSTER_HTTPD=$wrapper
    bash "$top/test/cluster/run.sh"
    suite_rc=$?
    bash "$top/test/cluster/sentinel.sh" || suite_rc=1
else
    MPMS=$ASAN_MPMS HTTPD=$wrapper bash "$suite" "$@"
    suite_rc=$?
fi
[ -n "${tree:-}" ] && rm -rf "$tree"

# --- the reports ------------------------------------------------------------
ours_re='mod_sse\.so|mod_sse\.c|sse_[a-z_]+\.c'
started=$(wc -l <"$ASAN_REPORTS/started" 2>/dev/null || echo 0)
ours=0
others=0
echo
echo "=============================== sanitizers ==============================="
echo "httpd started $started times under ASan"
for f in "$ASAN_REPORTS"/san.*; do
    [ -e "$f" ] || continue
    if grep -qE "$ours_re" "$f"; then
        ours=$((ours + 1))
        tag=mod_sse
    else
        others=$((others + 1))
        tag=httpd
    fi
    echo "[$tag] $(basename "$f"):"
    grep -E '^SUMMARY|runtime error|ERROR: (Address|Leak)Sanitizer' "$f" | sort | uniq -c | sed 's/^/    /'
    grep -m5 -E "#[0-9]+ .*($ours_re)" "$f" | sed 's/^/      /'
done
echo "reports naming mod_sse: $ours, others: $others"

rc=0
if [ "$started" = 0 ]; then
    echo "asan: FAIL: httpd was never started through the ASan wrapper"
    rc=1
fi
if [ "$suite_rc" != 0 ]; then
    echo "asan: FAIL: the test suite failed under the sanitizers (exit $suite_rc)"
    rc=1
fi
if [ "$ours" != 0 ]; then
    echo "asan: FAIL: $ours sanitizer report(s) name mod_sse code (in $ASAN_REPORTS)"
    rc=1
fi
if [ "$others" != 0 ] && [ "$ASAN_STRICT" = 1 ]; then
    echo "asan: FAIL: $others sanitizer report(s) outside mod_sse (in $ASAN_REPORTS;" \
         "ASAN_STRICT=0 ignores those)"
    rc=1
fi
[ "$rc" = 0 ] && echo "asan: PASS"
exit "$rc"
