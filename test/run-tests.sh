#!/usr/bin/env bash
# Black-box tests of mod_sse: the Apache::Test suite in test/t, run once per
# MPM (event, worker, prefork) against the mod_sse.so that `make` built at
# the top of the repository.  `make test` calls this.
#
#   bash test/run-tests.sh                 all three MPMs
#   MPMS="prefork" bash test/run-tests.sh  only some
#   bash test/run-tests.sh t/04_multiplex.t   extra arguments go to t/TEST
#
# Apache::Test refuses to run as root.  As root, this script copies the tree
# to a temporary directory owned by an unprivileged user (SSE_TEST_USER,
# default ssetest, created if missing) and runs itself there with runuser.
# The copy is removed when every MPM passed and kept (for its t/logs) when
# one failed.
#
# Environment: MPMS, APXS (/usr/bin/apxs), HTTPD (/usr/sbin/apache2),
# SSE_TEST_USER, SSE_TEST_KEEP=1 (keep the copy even on success).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
: "${MPMS:=event worker prefork}"
: "${APXS:=/usr/bin/apxs}"
: "${HTTPD:=/usr/sbin/apache2}"
: "${SSE_TEST_USER:=ssetest}"
export MPMS APXS HTTPD SSE_TEST_USER

# The suite holds 2,000+ sockets open at once, on both ends.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then hard=65536; fi
ulimit -n "$hard" 2>/dev/null || echo "run-tests.sh: could not raise ulimit -n to $hard" >&2
if [ "$(ulimit -n)" -lt 5000 ]; then
    echo "run-tests.sh: warning: ulimit -n is $(ulimit -n); t/08_many_streams.t needs about 4,500" >&2
fi

# The Mercure hub's RS256 location (t/conf/mercure.conf.in) reads this
# public key at start-up; t/70_mercure.t signs with the private one.
if [ ! -f "$top/test/t/conf/jwt/rs256.pub" ]; then
    mkdir -p "$top/test/t/conf/jwt"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$top/test/t/conf/jwt/rs256.key" 2>/dev/null
    openssl pkey -in "$top/test/t/conf/jwt/rs256.key" -pubout \
        -out "$top/test/t/conf/jwt/rs256.pub"
fi

if [ ! -f "$top/mod_sse.so" ]; then
    echo "run-tests.sh: $top/mod_sse.so not found; run make first" >&2
    exit 2
fi

if [ "$(id -u)" = 0 ]; then
    if ! id "$SSE_TEST_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$SSE_TEST_USER" || exit 2
    fi
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/mod_sse-test.XXXXXX") || exit 2
    # the tree without git metadata and build leftovers (the demo's
    # build/run holds sockets); the tests read ../conf and ../mod_sse.so
    tar -C "$top" --exclude=./.git --exclude=./build --warning=no-file-ignored -cf - . \
        | tar -C "$tmp" -xf - || exit 2
    chown -R "$SSE_TEST_USER": "$tmp"
    chmod 755 "$tmp"
    echo "run-tests.sh: running as $SSE_TEST_USER in $tmp"
    runuser -u "$SSE_TEST_USER" -- env HOME="$tmp" bash "$tmp/test/run-tests.sh" "$@"
    rc=$?
    if [ "$rc" = 0 ] && [ "${SSE_TEST_KEEP:-0}" != 1 ]; then
        rm -rf "$tmp"
    else
        echo "run-tests.sh: test tree kept in $tmp (server logs in $tmp/test/t/logs)"
    fi
    exit "$rc"
fi

cd "$here" || exit 2

# t/TEST is generated: t/TEST.PL plus the paths of this machine's apache.
rm -f t/TEST t/SMOKE
perl -MApache::TestMM -e 'Apache::TestMM::filter_args(); Apache::TestMM::generate_script("t/TEST")' \
    -- -apxs "$APXS" -httpd "$HTTPD" >/dev/null || exit 2

summary=""
failed=0
for mpm in $MPMS; do
    define=MPM_$(echo "$mpm" | tr '[:lower:]' '[:upper:]')
    case $define in
        MPM_EVENT|MPM_WORKER|MPM_PREFORK) ;;
        *) echo "run-tests.sh: unknown MPM '$mpm'" >&2; exit 2 ;;
    esac
    echo
    echo "=============================== mpm $mpm ==============================="
    t/TEST -clean >/dev/null 2>&1
    start=$(date +%s)
    # Apache::Test's own summary goes to stdout; keep a copy for ours.
    # Dropped: Apache::Test probing the system config for an httpd.conf
    # that Debian does not have (harmless, once per test file).
    out=$(mktemp)
    t/TEST -port select -defines "$define" "$@" 2>&1 \
        | grep --line-buffered -v 'Could not open configuration file /etc/apache2/httpd.conf' \
        | tee "$out"
    rc=${PIPESTATUS[0]}
    secs=$(( $(date +%s) - start ))
    if [ "$rc" = 0 ] && grep -q '^Result: PASS' "$out"; then
        line="mpm $mpm: PASS (${secs}s)"
    else
        failed=1
        bad=$(grep -E '^t/.*(Wstat|Failed)' "$out" | awk '{print $1}' | sort -u | tr '\n' ' ')
        line="mpm $mpm: FAIL (exit $rc, ${secs}s)${bad:+ failing: $bad}"
        if [ -f t/logs/error_log ]; then
            echo "--- last lines of t/logs/error_log ($mpm) ---"
            grep -v -E '\[(trace[0-9]|debug)\]' t/logs/error_log | tail -n 30
            cp t/logs/error_log "t/logs/error_log.$mpm" 2>/dev/null
        fi
    fi
    rm -f "$out"
    summary="$summary$line"$'\n'
done

echo
echo "=============================== summary ================================"
printf '%s' "$summary"
exit "$failed"
