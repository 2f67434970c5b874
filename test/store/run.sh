#!/usr/bin/env bash
# The history on disk (SSEHistoryPath): for each MPM (event, worker,
# prefork) and each test, a private httpd whose history is a store in its
# own directory, and the test against it.  store.t: resume after a stop and
# start, after kill -9 of the relay in a burst and of every process, a
# damaged store, a full one, and (as root) a full disk.  torture.t: 10,000
# events while the client's connection is killed at random and the server
# is stopped and started halfway.  upgrade.t: the module replaced by
# another build under load, with a graceful restart.  `make test` runs
# store.t and upgrade.t, `make test-fault` torture.t (event), `make
# reliability` all three; it works as root and as a user.
#   MPMS="event" bash test/store/run.sh     some MPMs only
#   STORE_TESTS="store.t torture.t"         which tests (store.t upgrade.t)
#   STORE_VERBOSE=1                         prove -v: every check and the
#                                           "# RELIABILITY" lines (report.pl)
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
: "${MPMS:=event worker prefork}"
: "${STORE_TESTS:=store.t upgrade.t}"
verbose=""
[ "${STORE_VERBOSE:-0}" = 1 ] && verbose=-v
base=${STORE_BASE_PORT:-18650}
work=$(mktemp -d "${TMPDIR:-/tmp}/mod_sse-store.XXXXXX")
chmod 755 "$work"
root=""
[ "$(id -u)" = 0 ] && root=-DRUN_AS_ROOT

cleanup() {
    for d in "$work"/*/; do
        [ -f "$d/httpd.pid" ] && kill -9 -- "-$(cat "$d/httpd.pid")" 2>/dev/null
        [ -f "$d/httpd.pid" ] && kill -9 "$(cat "$d/httpd.pid")" 2>/dev/null
    done
    sleep 1
    for m in "$work"/*/history; do umount "$m" 2>/dev/null; done
    if [ "${keep:-0}" = 1 ]; then echo "store: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

export PERL5LIB="$top/test/t/lib${PERL5LIB:+:$PERL5LIB}"
rc=0
i=0
summary=""
echo "== store: run on $(date -u +%Y-%m-%dT%H:%M:%SZ): $(/usr/sbin/apache2 -v | sed -n 's/^Server version: //p'), mod_sse at $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?') (mod_sse.so sha256 $(sha256sum "$top/mod_sse.so" | cut -c1-16)...)"
for mpm in $MPMS; do
    i=$((i + 1))
    port=$((base + i))
    for t in $STORE_TESTS; do
        # each test its own server and store
        dir="$work/$mpm-${t%.t}"
        mkdir -p "$dir"
        [ -n "$root" ] && chown nobody "$dir"
        sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@MPM@|$mpm|g" \
            -e "s|@TOP@|$top|g" -e "s|@MAX@|4M|g" \
            "$here/httpd.conf.in" > "$dir/httpd.conf"
        echo "== store: $mpm $t"
        t0=$SECONDS
        if STORE_PORT=$port STORE_DIR=$dir STORE_ARGS="-f $dir/httpd.conf $root" \
            prove $verbose "$here/$t"; then
            line="store: $mpm $t: PASS ($((SECONDS - t0))s)"
        else
            rc=1
            keep=1
            line="store: $mpm $t: FAIL ($((SECONDS - t0))s)"
            echo "--- $dir/error.log"
            tail -n 30 "$dir/error.log"
        fi
        echo "== $line"
        summary="$summary$line"$'\n'
        [ -f "$dir/httpd.pid" ] && /usr/sbin/apache2 -f "$dir/httpd.conf" $root -k stop 2>/dev/null
        sleep 1
    done
done
printf '%s' "$summary"
exit "$rc"
