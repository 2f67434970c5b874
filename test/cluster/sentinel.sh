#!/usr/bin/env bash
# Redis failover under several servers: a master, a replica
# (redis-server --replicaof) and three sentinels (quorum 2) on loopback
# ports, three private httpd (event, worker, prefork) joined through
# SSECluster redis-sentinel://..., then test/cluster/sentinel.t (it kills
# the master, waits for the failover, restarts the old master), then stops
# everything.  The sentinels ask for a password (requirepass), which the
# servers have from SSEClusterSentinelPasswordFile.  The environment of
# the .t: CLUSTER_PORTS, SENTINEL_PORTS, MASTER_PORT, REPLICA_PORT,
# SENTINEL_NAME, SENTINEL_PASSWORD, CLUSTER_PREFIX, CLUSTER_WORK.
# `make test-cluster` (and so `make test`) runs it; root or a user.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
base=${SENTINEL_BASE_PORT:-18640}
master=$((base + 10))
replica=$((base + 11))
sentinels="$((base + 12)) $((base + 13)) $((base + 14))"
name=ssemaster
work=$(mktemp -d "${TMPDIR:-/tmp}/mod_sse-sentinel.XXXXXX")
chmod 755 "$work"
prefix="ssesent$$"
spw="sentpw$$"
( umask 077; echo "$spw" > "$work/sentinel.pass" )
scli() { redis-cli --no-auth-warning -a "$spw" "$@"; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null
started=$(date +%s)

command -v redis-sentinel >/dev/null || {
    echo "sentinel: redis-sentinel not installed (Debian package redis-sentinel): run 'make deps'"; exit 2; }

cleanup() {
    for d in "$work"/s[0-9]; do
        [ -f "$d/httpd.pid" ] && kill "$(cat "$d/httpd.pid")" 2>/dev/null
    done
    for f in "$work"/*.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    sleep 1
    if [ "${keep:-0}" = 1 ]; then echo "sentinel: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

redis() {   # redis PORT NAME [ARGS...]: one private redis-server
    local port=$1 n=$2; shift 2
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$work/$n.pid" --logfile "$work/$n.log" \
        --dir "$work" --dbfilename "$n.rdb" --repl-diskless-sync-delay 0 "$@"
}
redis "$master" master || exit 2
redis "$replica" replica --replicaof 127.0.0.1 "$master" || exit 2
i=0
urls=""
for p in $sentinels; do
    i=$((i + 1))
    # a sentinel rewrites its configuration file: one of its own
    cat > "$work/sentinel$i.conf" <<EOF
port $p
bind 127.0.0.1
daemonize yes
pidfile "$work/sentinel$i.pid"
logfile "$work/sentinel$i.log"
dir "$work"
requirepass $spw
sentinel monitor $name 127.0.0.1 $master 2
sentinel down-after-milliseconds $name 1000
sentinel failover-timeout $name 4000
sentinel parallel-syncs $name 1
EOF
    redis-sentinel "$work/sentinel$i.conf" || exit 2
    urls="$urls,127.0.0.1:$p"
done

# the replica has synced, and the sentinels know it and each other (hello
# messages every 2 s)
ok=0
for _ in $(seq 1 100); do
    if redis-cli -p "$replica" info replication | grep -q '^master_link_status:up' \
       && scli -p "${sentinels%% *}" sentinel ckquorum "$name" 2>/dev/null | grep -q '^OK 3 ' \
       && [ "$(scli -p "${sentinels%% *}" sentinel replicas "$name" 2>/dev/null | grep -c '^ip$')" = 1 ]; then
        ok=1; break
    fi
    sleep 0.1
done
[ "$ok" = 1 ] || { echo "sentinel: the replica did not sync, or the sentinels did not see each other and it, in 10 s"; keep=1; exit 2; }

. "$here/servers.sh"
start_servers "redis-sentinel://${urls#,}/$name" "SSEClusterSentinelPasswordFile $work/sentinel.pass"

export CLUSTER_PORTS="${ports# }" SENTINEL_PORTS="$sentinels" MASTER_PORT="$master" \
    REPLICA_PORT="$replica" SENTINEL_NAME="$name" SENTINEL_PASSWORD="$spw" CLUSTER_PREFIX="$prefix" CLUSTER_WORK="$work"
export PERL5LIB="$top/test/t/lib${PERL5LIB:+:$PERL5LIB}"
prove ${CLUSTER_VERBOSE:+-v} "$here/sentinel.t"
rc=$?
echo "sentinel: the whole run took $(( $(date +%s) - started )) s"
if [ "$rc" != 0 ]; then
    keep=1
    for d in "$work"/s[0-9]; do echo "--- $d/error.log"; tail -n 30 "$d/error.log"; done
fi
exit "$rc"
