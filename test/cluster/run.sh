#!/usr/bin/env bash
# Several servers, one set of channels: starts a private redis-server on a
# loopback port and three private httpd (event, worker, prefork) sharing
# it through SSECluster, runs the tests in test/cluster/*.t against them
# (CLUSTER_PORTS, REDIS_PORT, CLUSTER_PREFIX and CLUSTER_WORK in the
# environment), stops everything.
# `make test-cluster` calls this; it works as root and as a user.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
base=${CLUSTER_BASE_PORT:-18610}
redis_port=$((base + 9))
work=$(mktemp -d "${TMPDIR:-/tmp}/mod_sse-cluster.XXXXXX")
chmod 755 "$work"
prefix="ssetest$$"
ulimit -n "$(ulimit -Hn)" 2>/dev/null

cleanup() {
    for d in "$work"/s*; do
        [ -f "$d/httpd.pid" ] && kill "$(cat "$d/httpd.pid")" 2>/dev/null
    done
    [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null
    sleep 1
    if [ "${keep:-0}" = 1 ]; then echo "cluster: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log" \
    --dir "$work" || exit 2

. "$here/servers.sh"
start_servers "redis://127.0.0.1:$redis_port"

export CLUSTER_PORTS="${ports# }" REDIS_PORT="$redis_port" CLUSTER_WORK="$work" \
    CLUSTER_PREFIX="$prefix"
export PERL5LIB="$top/test/t/lib${PERL5LIB:+:$PERL5LIB}"
# cluster.t last: it ends by killing server 3 (and restarts Redis midway);
# rolling.t before it (it upgrades every server, one at a time)
# (CLUSTER_TESTS="mercure.t ..." runs only those; CLUSTER_VERBOSE=1: prove -v)
tests=()
if [ -n "${CLUSTER_TESTS:-}" ]; then
    for t in $CLUSTER_TESTS; do tests+=("$here/$t"); done
else
    # (sentinel.t has its own Redis, test/cluster/sentinel.sh)
    for t in "$here"/*.t; do
        case "$(basename "$t")" in cluster.t|sentinel.t) ;; *) tests+=("$t") ;; esac
    done
    tests+=("$here/cluster.t")
fi
prove ${CLUSTER_VERBOSE:+-v} "${tests[@]}"
rc=$?
if [ "$rc" != 0 ]; then
    keep=1
    for d in "$work"/s*; do echo "--- $d/error.log"; tail -n 20 "$d/error.log"; done
fi
exit "$rc"
