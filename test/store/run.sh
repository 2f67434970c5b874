#!/usr/bin/env bash
# The history on disk (SSEHistoryPath): for each MPM (event, worker,
# prefork), a private httpd whose history is a store in its own directory,
# and test/store/store.t against it: resume after a stop and start, after
# kill -9 of the relay in a burst and of every process, a damaged store, a
# full one, and (as root) a full disk; then test/store/upgrade.t: the
# module replaced by another build under load, with a graceful restart.  `make test` calls this; it works as root and as a user.
#   MPMS="event" bash test/store/run.sh     some MPMs only
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
: "${MPMS:=event worker prefork}"
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
for mpm in $MPMS; do
    i=$((i + 1))
    port=$((base + i))
    dir="$work/$mpm"
    mkdir -p "$dir"
    [ -n "$root" ] && chown nobody "$dir"
    sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@MPM@|$mpm|g" \
        -e "s|@TOP@|$top|g" -e "s|@MAX@|4M|g" \
        "$here/httpd.conf.in" > "$dir/httpd.conf"
    echo "== store: $mpm"
    STORE_PORT=$port STORE_DIR=$dir STORE_ARGS="-f $dir/httpd.conf $root" \
        prove ${STORE_PROVE:-} "$here/store.t" "$here/upgrade.t" || { rc=1; keep=1; echo "--- $dir/error.log"; tail -n 30 "$dir/error.log"; }
    [ -f "$dir/httpd.pid" ] && /usr/sbin/apache2 -f "$dir/httpd.conf" $root -k stop 2>/dev/null
    sleep 1
done
exit "$rc"
