#!/usr/bin/env bash
# bench/run.sh: the side-by-side benchmark behind "make bench".
#
# Builds ssebench and limit, installs what the machine lacks (as root),
# then for every workload starts a fresh private server -- mod_sse in
# Apache httpd (worker MPM), nginx + Nchan, and the naive "limit" server --
# runs ssebench against it, stops it, and finally prints one table (figure,
# mod_sse, Nchan, limit, ratio mod_sse/Nchan), writes it as Markdown to
# bench/results/results.md and draws bench/results/results.png.
# The TLS workloads (T1-T4) run mod_sse in httpd with the event MPM and
# mod_ssl (SSESuspend on) against nginx + Nchan over ssl, with a
# self-signed certificate made at run time: their table goes to
# bench/results/results-tls.md.
# The hub workloads (H2, H3, H3T) run W2 and W3 through mod_sse's Mercure
# hub (same server, location /.well-known/mercure): their table, hub
# against the native endpoint of the same run, goes to
# bench/results/results-hub.md.
# The store workloads (S4-no, S4-everysec, S4-always: W4 with SSEHistoryPath
# and each SSEHistorySync; R10K: a replay of 10,000 events from the store
# beside live streams) run mod_sse only: their table, beside W4's in-memory
# mod_sse and Nchan of the same run, goes to bench/results/results-store.md.
#
# Everything listens on 127.0.0.1 and lives under build/bench/ (configs,
# logs, pid files, raw results); only processes started here are stopped.
#
# Environment:
#   BENCH_QUICK=1      small and fast (N=1000, fewer events): a few seconds per run
#   BENCH_SMOKE=1      tiny (N=200): checks that everything builds and works (CI);
#                      results go to build/bench/ only, bench/results/ is left alone
#   BENCH_N=10000      subscribers in W1, W2, W3 and W5 (50000: several client
#                      processes on source addresses 127.0.0.2..)
#   BENCH_PROCS        httpd children = nginx workers (default 2, the cores;
#                      more when N needs them: a process holds < 20,000 files)
#   BENCH_LIMIT_PROCS  processes of the limit server (default 1: the naive
#                      single writer; BENCH_PROCS when N needs more)
#   BENCH_QUIET_WAIT=30 seconds to wait, before each run, for other processes
#                      to leave the CPUs idle (the figures are noisy otherwise)
#   BENCH_REPEAT=3     runs of the short workloads (W1, W3-W5); the median is kept
#   BENCH_ONLY="W1 W2" only these workloads (W1-W5, and F: the floor, what a
#                      request costs each server with no module work, by ab;
#                      T1-T4: the TLS workloads; H2, H3, H3T: W2 and W3 through
#                      mod_sse's Mercure hub, mod_sse only, beside W2 and W3;
#                      S4 (or S4-no, S4-everysec, S4-always): W4 with the history
#                      on disk, each SSEHistorySync setting, mod_sse only, beside
#                      W4; R10K: a stream resuming 10,000 events from the store
#                      while 1,000 others get lone events every 10 ms;
#                      W7: a graceful restart under N streams (bench/reload.c);
#                      C1-C5, or C for all five: the cluster part, three httpd
#                      (event, worker, prefork) on one Redis, mod_sse only, one
#                      run each (bench/cluster.sh): C1 publishes/s through one
#                      server and round robin through three, Redis's CPU per
#                      publish; C2 fan-out over the three; C3 latency of lone
#                      events and of a burst, streams on another server than the
#                      publisher's; C4/C5 a Redis failover (SIGKILL of the master,
#                      sentinels) with SSEClusterWait 1 and 0.  Not in the smoke
#                      run unless named.  Ports BENCH_PORT+11..13 (httpd), +20..25
#                      (Redis, its replicas and sentinels))
#   BENCH_TLS_N=10000  TLS streams in T1-T4 (quick: 1000, smoke: 50)
#   BENCH_TLS_FACTOR=500 AsyncRequestWorkerFactor of the TLS httpd (event MPM)
#   BENCH_W4_CHANS=1   W4 on this many channels (default: one per subscriber;
#                      1: a burst on one channel, 100 deliveries per publish)
#   BENCH_TARGETS="modsse nchan limit"
#   BENCH_PORT=18400   base port: mod_sse +1, Nchan +2, limit +3, mod_sse over
#                      TLS +4, Nchan over TLS +5
#   BENCH_SERVER_CPUS=1 run every server on these CPUs only (taskset -c; an
#                      experiment: what the hand-overs between CPUs cost)
#   BENCH_NO_INSTALL=1 never call apt-get
#   BENCH_RESULTS=dir  where the table, chart and raw figures go (bench/results)
#   BENCH_OUT=dir      tools, configurations, logs (build/bench)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BDIR=$ROOT/bench
OUT=${BENCH_OUT:-$ROOT/build/bench}
BIN=$OUT/bin
HTTPD=${BENCH_HTTPD:-/usr/sbin/apache2}
NGINX=${BENCH_NGINX:-/usr/sbin/nginx}
PORT=${BENCH_PORT:-18400}
P_MODSSE=$((PORT + 1)) P_NCHAN=$((PORT + 2)) P_LIMIT=$((PORT + 3))
P_MODSSE_TLS=$((PORT + 4)) P_NCHAN_TLS=$((PORT + 5))
TARGETS=${BENCH_TARGETS:-modsse nchan limit}
ALL_W="W1 W2 W3 W4 W5 F T1 T2 T3 T4 H2 H3 H3T S4 R10K W7 C1 C2 C3 C4 C5"
QUICK=${BENCH_QUICK:-0}
SMOKE=${BENCH_SMOKE:-0}
# The smoke run (CI) leaves the cluster part (C1-C5) out unless asked for.
if [ "$SMOKE" = 1 ]; then ONLY=${BENCH_ONLY:-${ALL_W% C1 C2 C3 C4 C5}}; else ONLY=${BENCH_ONLY:-$ALL_W}; fi
# "C" is the whole cluster part
ONLY=$(echo " $ONLY " | sed 's/ C / C1 C2 C3 C4 C5 /; s/^ //; s/ $//')

say() { printf '== %s\n' "$*" >&2; }
fail() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------ sizes
if [ "$SMOKE" = 1 ]; then
    N=${BENCH_N:-200};  W2_EVENTS=10; W3_CHANS=$((N / 10)); W3_EVENTS=200
    W4_SUBS=20; W4_EVENTS=500; W4_PUBS=4; REPEAT=${BENCH_REPEAT:-1}; HOLD=0.5
elif [ "$QUICK" = 1 ]; then
    N=${BENCH_N:-1000}; W2_EVENTS=50; W3_CHANS=$((N / 10)); W3_EVENTS=1000
    W4_SUBS=100; W4_EVENTS=5000; W4_PUBS=16; REPEAT=${BENCH_REPEAT:-1}; HOLD=1
else
    N=${BENCH_N:-10000}; W2_EVENTS=200; W3_CHANS=$((N / 10)); W3_EVENTS=5000
    W4_SUBS=100; W4_EVENTS=20000; W4_PUBS=16; REPEAT=${BENCH_REPEAT:-3}; HOLD=2
    # W2 keeps about two million deliveries at any N, so N=50000 stays bounded.
    if [ "$N" -gt 10000 ]; then W2_EVENTS=$((2000000 / N)); fi
fi
W3_PUBS=8
# R10K: R_EVENTS events kept on one channel (SSEHistory R_EVENTS, store on),
# then R_SUBS streams on another channel get R_LIVE lone events, one every
# R_INTERVAL_US; a third of the way in, one stream resumes the first channel
# from its first event's id.
if [ "$SMOKE" = 1 ]; then R_EVENTS=500; R_SUBS=50; R_LIVE=30
else R_EVENTS=10000; R_SUBS=1000; R_LIVE=300; fi
R_INTERVAL_US=10000
# The hub's HS256 secret (publishers' and subscribers' tokens): the
# benchmark's own, on a server that listens on 127.0.0.1 only.
HUB_KEY=${BENCH_HUB_KEY:-bench-mercure-hub-hs256-secret-0123456789}
# The floor: requests per ab run, keep-alive and one connection each.
if [ "$SMOKE" = 1 ]; then F_KA=2000; F_CONN=500
elif [ "$QUICK" = 1 ]; then F_KA=20000; F_CONN=5000
else F_KA=100000; F_CONN=20000; fi
[ "$W3_CHANS" -ge 1 ] || W3_CHANS=1
# The TLS workloads: T1 hold, T2 lone events (T2_EVENTS at T2_RATE/s), T3
# connect rate, T4 a burst (T4_EVENTS back to back); TLS_N streams each.
if [ "$SMOKE" = 1 ]; then TLS_N=${BENCH_TLS_N:-50}; T2_EVENTS=5; T2_RATE=20; T4_EVENTS=10
elif [ "$QUICK" = 1 ]; then TLS_N=${BENCH_TLS_N:-1000}; T2_EVENTS=20; T2_RATE=5; T4_EVENTS=50
else TLS_N=${BENCH_TLS_N:-10000}; T2_EVENTS=20; T2_RATE=5; T4_EVENTS=50; fi
TLS_FACTOR=${BENCH_TLS_FACTOR:-500}
# A process may hold at most ~20,000 descriptors: spread the server's
# connections over enough processes, and the client over enough processes
# and source addresses (one source address has ~28,000 ports to one port).
if [ -n "${BENCH_PROCS:-}" ]; then SPROCS=$BENCH_PROCS
elif [ "$N" -le 15000 ]; then SPROCS=2
else SPROCS=$(( (N + 9999) / 10000 )); fi
CPROCS=$(( (N + 14999) / 15000 ))
# The limit server is the naive baseline: one process writing to every
# socket, unless N needs more processes to hold the connections.
if [ -n "${BENCH_LIMIT_PROCS:-}" ]; then LPROCS=$BENCH_LIMIT_PROCS
elif [ "$N" -le 19000 ]; then LPROCS=1
else LPROCS=$SPROCS; fi
SRC_OPT=()
if [ "$CPROCS" -gt 1 ]; then
    srcs=""
    for ((i = 0; i < CPROCS; i++)); do srcs+="${srcs:+,}127.0.0.$((i + 2))"; done
    SRC_OPT=(--procs "$CPROCS" --src "$srcs")
fi

# ------------------------------------------------------------ packages
need_pkgs() {
    local missing=() p
    command -v gcc >/dev/null || missing+=(gcc)
    command -v make >/dev/null || missing+=(make)
    command -v curl >/dev/null || missing+=(curl)
    [ -x "$HTTPD" ] || missing+=(apache2)
    command -v apxs >/dev/null || missing+=(apache2-dev)
    if [ ! -x "$NGINX" ]; then missing+=(nginx-light); fi
    [ -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || missing+=(libnginx-mod-nchan)
    command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
    command -v ab >/dev/null || missing+=(apache2-utils)
    command -v openssl >/dev/null || missing+=(openssl)
    [ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
    case " $ONLY " in *" C"[1-5]" "*)
        command -v redis-server >/dev/null || missing+=(redis-server)
        command -v redis-sentinel >/dev/null || missing+=(redis-sentinel) ;;
    esac
    for p in "${missing[@]}"; do echo "$p"; done
}
missing=$(need_pkgs | tr '\n' ' ')
if [ -n "${missing// /}" ]; then
    if [ "$(id -u)" = 0 ] && [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
        say "installing: $missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq $missing >/dev/null
    else
        fail "missing: $missing -- run: sudo apt-get install -y $missing"
    fi
fi
NCHAN_SO=/usr/lib/nginx/modules/ngx_nchan_module.so
HAVE_GNUPLOT=0; command -v gnuplot >/dev/null && HAVE_GNUPLOT=1

# ------------------------------------------------------------ build
[ -f "$ROOT/mod_sse.so" ] || make -C "$ROOT" mod_sse.so >&2
mkdir -p "$BIN"
for t in ssebench limit wakeup; do
    libs=(); [ $t = ssebench ] && libs=(-lssl -lcrypto)
    gcc -O2 -Wall -Wextra -o "$BIN/$t" "$BDIR/$t.c" "${libs[@]}" 2>"$OUT/$t.build.log" \
        || { cat "$OUT/$t.build.log" >&2; fail "building $t failed"; }
    if [ -s "$OUT/$t.build.log" ]; then cat "$OUT/$t.build.log" >&2; fail "$t: compiler warnings"; fi
done

# ------------------------------------------------------------ limits
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 20000 ] && [ "$(id -u)" = 0 ]; then
    ulimit -Hn 20000 2>/dev/null || true
    hard=$(ulimit -Hn)
fi
ulimit -n "$hard"
per_proc=$(( N / SPROCS + N / (SPROCS * 4) + 100 ))
# A suspended TLS stream takes three descriptors in its httpd child (its
# socket and both ends of its pair from the broker).
tls_per_proc=$(( (TLS_N / SPROCS + TLS_N / (SPROCS * 4)) * 3 + 100 ))
[ "$tls_per_proc" -gt "$per_proc" ] && per_proc=$tls_per_proc
[ "$hard" = unlimited ] || [ "$hard" -ge "$per_proc" ] \
    || fail "open-file limit $hard is too low for $N subscribers over $SPROCS processes"
for p in $P_MODSSE $P_NCHAN $P_LIMIT $P_MODSSE_TLS $P_NCHAN_TLS; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then fail "port $p is in use (set BENCH_PORT)"; fi
done

# ------------------------------------------------------------ machine load
# The client and the servers share this machine; anything else running
# skews the figures.  Measure what other processes use for a second.
cpu_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
read -r b0 t0 < <(cpu_busy); sleep 1; read -r b1 t1 < <(cpu_busy)
BUSY=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v n="$(nproc)" 'BEGIN { printf "%.2f", t ? b / t * n : 0 }')
if awk -v b="$BUSY" 'BEGIN { exit !(b > 0.2) }'; then
    say "warning: other processes keep $BUSY cores busy: the figures will be noisy"
fi

# ------------------------------------------------------------ servers
RUN=$OUT/run
rm -rf "$RUN"
mkdir -p "$RUN/modsse/logs" "$RUN/nchan/logs" "$RUN/nchan/tmp" "$RUN/limit" "$RUN/kv" \
    "$RUN/modsse-tls/logs" "$RUN/nchan-tls/logs" "$RUN/nchan-tls/tmp" "$RUN/store"
AS_ROOT=0; [ "$(id -u)" = 0 ] && AS_ROOT=1
PIN=()
[ -n "${BENCH_SERVER_CPUS:-}" ] && PIN=(taskset -c "$BENCH_SERVER_CPUS")
port_of() {
    case $1 in
    modsse) echo $P_MODSSE ;; nchan) echo $P_NCHAN ;; limit) echo $P_LIMIT ;;
    modsse-tls) echo $P_MODSSE_TLS ;; nchan-tls) echo $P_NCHAN_TLS ;;
    esac
}
# The TLS servers' certificate: self-signed, made once per run.
TLS_DIR=$RUN/tls
make_cert() {
    [ -s "$TLS_DIR/localhost.key" ] && return 0
    mkdir -p "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
        -keyout "$TLS_DIR/localhost.key" -out "$TLS_DIR/localhost.crt" 2>"$TLS_DIR/openssl.log" \
        || fail "openssl could not make the certificate: $(tail -3 "$TLS_DIR/openssl.log")"
}
SERVER_PID=""
# The store workloads set these for their runs of the plain httpd: the
# history's directory (none: in memory), its sync setting, and an
# SSEHistory line for /publish, an SSEMaxBacklog line for /events/.
STORE_DIR=""; STORE_SYNC=everysec; PUB_HISTORY=""; STREAM_BACKLOG=""

write_httpd_conf() {
    local workers=$((25 * SPROCS))
    {
        cat <<EOF
# Private httpd for the benchmark (generated by bench/run.sh).
ServerRoot "$RUN/modsse"
ServerName 127.0.0.1
Listen 127.0.0.1:$P_MODSSE
ListenBacklog 4096
PidFile "$RUN/modsse/httpd.pid"
DefaultRuntimeDir "$RUN/modsse"
ErrorLog "$RUN/modsse/logs/error.log"
LogLevel warn
LoadModule mpm_worker_module /usr/lib/apache2/modules/mod_mpm_worker.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule sse_module "$ROOT/mod_sse.so"
EOF
        if [ "$AS_ROOT" = 1 ]; then printf 'User www-data\nGroup www-data\n'; fi
        # The store workloads (S4-*, R10K): the history on disk.
        if [ -n "$STORE_DIR" ]; then
            printf 'SSEHistoryPath "%s"\nSSEHistorySync %s\n' "$STORE_DIR" "$STORE_SYNC"
        fi
        cat <<EOF
# Streams hold no thread: a few workers per child serve every request.
# StartServers = ServerLimit and MaxSpareThreads = MaxRequestWorkers: every
# child lives for the whole run, none is retired (that would close streams).
StartServers $SPROCS
ServerLimit $SPROCS
ThreadsPerChild 25
MinSpareThreads 25
MaxSpareThreads $workers
MaxRequestWorkers $workers
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
# No access log (nginx runs with access_log off as well).
<LocationMatch "^/events/(?<chan>[^/]+)\$">
    SetHandler sse
    SSEChannel "%{env:MATCH_CHAN}"
$STREAM_BACKLOG
</LocationMatch>
<Location "/stream">
    SetHandler sse
</Location>
<Location "/publish">
    SetHandler sse-publish
$PUB_HISTORY
</Location>
# The Mercure hub (H2, H3, H3T): the same streams and relay, topics matched
# by the broker; tokens signed with an HS256 secret, anonymous subscribers.
<Location "/.well-known/mercure">
    SetHandler mercure
    MercurePublisherJWT "$HUB_KEY"
    MercureSubscriberJWT "$HUB_KEY"
    MercureAnonymous on
</Location>
# The floor (workload F): an empty 204 answer, no module work, no file.
<Location "/floor">
    Redirect 204
</Location>
EOF
    } >"$RUN/modsse/httpd.conf"
}

write_nginx_conf() {
    cat >"$RUN/nchan/nginx.conf" <<EOF
# Private nginx + Nchan for the benchmark (generated by bench/run.sh).
load_module $NCHAN_SO;
worker_processes $SPROCS;
worker_rlimit_nofile $hard;
pid $RUN/nchan/nginx.pid;
error_log $RUN/nchan/logs/error.log warn;
events {
    worker_connections $(( hard > 65000 ? 65000 : hard ));
}
http {
    access_log off;
    client_body_temp_path $RUN/nchan/tmp/body;
    proxy_temp_path $RUN/nchan/tmp/proxy;
    fastcgi_temp_path $RUN/nchan/tmp/fastcgi;
    uwsgi_temp_path $RUN/nchan/tmp/uwsgi;
    scgi_temp_path $RUN/nchan/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 30s;
    nchan_shared_memory_size 256M;
    server {
        listen 127.0.0.1:$P_NCHAN backlog=4096;
        location = /nchan_status {
            nchan_stub_status;
        }
        location = /floor {
            return 204;
        }
        location ~ ^/sub/([\\w.~:@-]+)\$ {
            nchan_subscriber eventsource;
            nchan_channel_id \$1;
        }
        location ~ ^/pub/([\\w.~:@-]+)\$ {
            nchan_publisher;
            nchan_channel_id \$1;
            nchan_message_buffer_length 1000;
            nchan_message_timeout 10m;
        }
    }
}
EOF
}

# mod_sse over TLS: the event MPM with its default ThreadsPerChild (25),
# mod_ssl, SSESuspend on: a stream gives its worker thread back and waits
# among the MPM's connections, so AsyncRequestWorkerFactor is raised (a
# child takes ThreadsPerChild + idle threads x the factor connections) and
# MaxSpareThreads = MaxRequestWorkers (a child that only serves suspended
# streams looks idle and would be stopped, ending them).
write_httpd_tls_conf() {
    local d=$RUN/modsse-tls workers=$((25 * SPROCS))
    {
        cat <<EOF
# Private httpd over TLS for the benchmark (generated by bench/run.sh).
ServerRoot "$d"
ServerName localhost
Listen 127.0.0.1:$P_MODSSE_TLS https
ListenBacklog 4096
PidFile "$d/httpd.pid"
DefaultRuntimeDir "$d"
ErrorLog "$d/logs/error.log"
LogLevel warn
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
LoadModule sse_module "$ROOT/mod_sse.so"
EOF
        if [ "$AS_ROOT" = 1 ]; then printf 'User www-data\nGroup www-data\n'; fi
        cat <<EOF
StartServers $SPROCS
ServerLimit $SPROCS
ThreadsPerChild 25
MinSpareThreads 25
MaxSpareThreads $workers
MaxRequestWorkers $workers
MaxConnectionsPerChild 0
AsyncRequestWorkerFactor $TLS_FACTOR
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
SSLEngine on
SSLCertificateFile "$TLS_DIR/localhost.crt"
SSLCertificateKeyFile "$TLS_DIR/localhost.key"
SSLSessionCache none
SSESuspend on
<LocationMatch "^/events/(?<chan>[^/]+)\$">
    SetHandler sse
    SSEChannel "%{env:MATCH_CHAN}"
</LocationMatch>
<Location "/publish">
    SetHandler sse-publish
</Location>
EOF
    } >"$d/httpd.conf"
}

# Nchan over TLS: the same nginx, listening with ssl (same certificate).
write_nginx_tls_conf() {
    local d=$RUN/nchan-tls
    cat >"$d/nginx.conf" <<EOF
# Private nginx + Nchan over TLS for the benchmark (generated by bench/run.sh).
load_module $NCHAN_SO;
worker_processes $SPROCS;
worker_rlimit_nofile $hard;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events {
    worker_connections $(( hard > 65000 ? 65000 : hard ));
}
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 30s;
    nchan_shared_memory_size 256M;
    server {
        listen 127.0.0.1:$P_NCHAN_TLS ssl backlog=4096;
        ssl_certificate $TLS_DIR/localhost.crt;
        ssl_certificate_key $TLS_DIR/localhost.key;
        location = /nchan_status {
            nchan_stub_status;
        }
        location ~ ^/sub/([\\w.~:@-]+)\$ {
            nchan_subscriber eventsource;
            nchan_channel_id \$1;
        }
        location ~ ^/pub/([\\w.~:@-]+)\$ {
            nchan_publisher;
            nchan_channel_id \$1;
            nchan_message_buffer_length 1000;
            nchan_message_timeout 10m;
        }
    }
}
EOF
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {   # port seconds: until something listens
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        port_open "$1" && return 0
        sleep 0.05
    done
    return 1
}

wait_file() {   # file seconds
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

tree_pids() {   # pid: it and all its descendants
    local p=$1 c
    echo "$p"
    for c in $(pgrep -P "$p" 2>/dev/null); do tree_pids "$c"; done
}

# Stops the process tree rooted at pid: TERM to the root, then KILL to
# whatever of the tree is left after 15 s; waits until all are gone.
stop_tree() {
    local root=$1 pids p i alive
    pids=$(tree_pids "$root" | tr '\n' ' ')
    kill -TERM "$root" 2>/dev/null || true
    for ((i = 0; i < 400; i++)); do
        alive=""
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive+="$p "; done
        [ -z "$alive" ] && return 0
        [ $i = 300 ] && kill -KILL $alive 2>/dev/null
        sleep 0.05
    done
    say "warning: processes $alive did not stop"
}

start_server() {    # target -> sets SERVER_PID
    local port; port=$(port_of "$1")
    port_open "$port" && fail "port $port is still in use before starting $1"
    case $1 in
    modsse|modsse-tls)
        local d=$RUN/$1
        if [ "$1" = modsse ]; then write_httpd_conf; else make_cert; write_httpd_tls_conf; fi
        rm -f "$d/httpd.pid"
        "${PIN[@]}" "$HTTPD" -f "$d/httpd.conf" -k start
        wait_file "$d/httpd.pid" 10 || fail "httpd did not start: $(tail -5 "$d/logs/error.log")"
        SERVER_PID=$(cat "$d/httpd.pid")
        wait_port "$port" 10 || fail "httpd does not listen: $(tail -5 "$d/logs/error.log")"
        # Every child up (StartServers), each with its broker, and the relay.
        local i
        for ((i = 0; i < 100; i++)); do
            [ "$(pgrep -c -P "$SERVER_PID" 2>/dev/null || echo 0)" -ge $((SPROCS + 1)) ] && break
            sleep 0.05
        done
        ;;
    nchan|nchan-tls)
        local d=$RUN/$1
        if [ "$1" = nchan ]; then write_nginx_conf; else make_cert; write_nginx_tls_conf; fi
        rm -f "$d/nginx.pid"
        "${PIN[@]}" "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" 2>>"$d/logs/start.log" \
            || fail "nginx did not start: $(tail -5 "$d/logs/start.log")"
        wait_file "$d/nginx.pid" 10 || fail "nginx did not start: $(tail -5 "$d/logs/error.log")"
        SERVER_PID=$(cat "$d/nginx.pid")
        wait_port "$port" 10 || fail "nginx does not listen: $(tail -5 "$RUN/nchan/logs/error.log")"
        ;;
    limit)
        "${PIN[@]}" "$BIN/limit" -p "$port" -w "$LPROCS" -T 900 &
        SERVER_PID=$!
        wait_port "$port" 10 || fail "limit did not start"
        ;;
    esac
    sleep 0.5
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        stop_tree "$SERVER_PID"
        SERVER_PID=""
    fi
    # A start that failed half-way may have left a server whose pid file
    # appeared late: it is ours (our run directory), stop it too.
    local f
    for f in "$RUN/modsse/httpd.pid" "$RUN/nchan/nginx.pid" "$RUN/modsse-tls/httpd.pid" "$RUN/nchan-tls/nginx.pid"; do
        [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && stop_tree "$(cat "$f")"
        rm -f "$f"
    done
    sleep 0.2
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ workloads

# quiet_wait: waits (at most BENCH_QUIET_WAIT seconds) until processes
# other than ours use less than 0.2 cores; sets OTHER_BUSY to the last figure.
OTHER_BUSY=0
quiet_wait() {
    local i b0 t0 b1 t1 max=${BENCH_QUIET_WAIT:-$([ "$SMOKE" = 1 ] && echo 0 || echo 30)}
    for ((i = 0; i <= max; i++)); do
        read -r b0 t0 < <(cpu_busy); sleep 0.5; read -r b1 t1 < <(cpu_busy)
        OTHER_BUSY=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v n="$(nproc)" 'BEGIN { printf "%.2f", t ? b / t * n : 0 }')
        awk -v b="$OTHER_BUSY" 'BEGIN { exit !(b < 0.2) }' && return 0
        [ $i = 0 ] && say "waiting up to ${max}s for the CPUs to be idle (others use $OTHER_BUSY cores)"
        sleep 0.5
    done
    say "warning: running anyway; other processes use $OTHER_BUSY cores"
}

# run_one workload target repeat ssebench-options...
run_one() {
    local w=$1 t=$2 r=$3; shift 3
    local kvf=$RUN/kv/$w-$t-$r.kv log=$RUN/kv/$w-$t-$r.log
    quiet_wait
    start_server "$t"
    say "$w $t (run $r): ssebench $*"
    set +e
    local tls=()
    case $t in *-tls) tls=(--tls) ;; esac
    "$BIN/ssebench" -t "${t%-tls}" -p "$(port_of "$t")" --server-pid "$SERVER_PID" --kv "$kvf" \
        "${tls[@]}" "${SRC_OPT[@]}" "$@" >"$log" 2>&1
    local rc=$?
    set -e
    echo "other_busy=$OTHER_BUSY" >>"$kvf"
    sed 's/^/   /' "$log" >&2
    [ $rc = 0 ] || say "$w $t: ssebench exit status $rc (see $log)"
    stop_server
}

# server_cpu_ticks: utime + stime of the running server's processes.
server_cpu_ticks() {
    local p sum=0 t
    for p in $(tree_pids "$SERVER_PID"); do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}

# ab_run KEY ab-options...: one ab run against /floor, its requests/s and
# the server's CPU per request as KEY_rate= and KEY_cpu_us= (to $kvf).
ab_run() {
    local key=$1; shift
    local n=$1; shift
    local c0 c1 out rate failed non2xx cpu_us
    c0=$(server_cpu_ticks)
    out=$(ab -q -n "$n" "$@" "http://127.0.0.1:$(port_of "$t")/floor" 2>&1) || {
        echo "$out" | tail -3 | sed 's/^/   /' >&2; return 1; }
    c1=$(server_cpu_ticks)
    rate=$(echo "$out" | awk '/^Requests per second/ { print $4 }')
    failed=$(echo "$out" | awk '/^Failed requests/ { print $3 }')
    non2xx=$(echo "$out" | awk '/^Non-2xx responses/ { print $3 }')
    cpu_us=$(awk -v d=$((c1 - c0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }')
    printf '   floor %-10s %10.0f requests/s, server CPU %.1f us per request (failed %s, non-2xx %s)\n' \
        "$key" "$rate" "$cpu_us" "${failed:-?}" "${non2xx:-0}" >&2
    printf '%s_rate=%s\n%s_cpu_us=%s\n' "$key" "$rate" "$key" "$cpu_us" >>"$kvf"
    [ "${failed:-1}" = 0 ] && [ "${non2xx:-0}" = 0 ]
}

# floor_one target repeat: what a request costs the server with no module
# work: keep-alive requests, then a new connection per request (ab, 16 at
# a time), each answered 204.
floor_one() {
    local t=$1 r=$2 kvf=$RUN/kv/F-$1-$2.kv ok=1
    : >"$kvf"
    quiet_wait
    start_server "$t"
    say "F $t (run $r): ab -k -c 16 -n $F_KA, then ab -c 16 -n $F_CONN on /floor"
    ab_run floor_ka "$F_KA" -k -c 16 || ok=0
    ab_run floor_conn "$F_CONN" -c 16 || ok=0
    [ $ok = 1 ] && echo "verified=OK" >>"$kvf"
    echo "other_busy=$OTHER_BUSY" >>"$kvf"
    stop_server
}

wanted() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
has_target() { case " $TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }

# Workload definitions: which targets, how many runs, ssebench options.
# The limit server has no channels, so it takes part only where there is
# one channel and a fan-out (W1, W2, W5).
# Targets take turns within each repetition, so a passing disturbance on
# the machine hits all of them rather than one.
for w in W1 W2 W3 W4 W5; do
    wanted $w || continue
    runs=$REPEAT
    for ((r = 1; r <= runs; r++)); do
        for t in modsse nchan limit; do
            has_target $t || continue
            case $w in
            W1) opts=(-m hold -n "$N" --hold "$HOLD") ;;
            W2) opts=(-n "$N" -e "$W2_EVENTS") ;;
            W3) [ $t = limit ] && continue
                opts=(-n "$N" -c "$W3_CHANS" -e "$W3_EVENTS" --random -P "$W3_PUBS") ;;
            W4) [ $t = limit ] && continue
                opts=(-n "$W4_SUBS" -c "${BENCH_W4_CHANS:-$W4_SUBS}" -e "$W4_EVENTS" -P "$W4_PUBS") ;;
            W5) opts=(-m hold -n "$N" --hold 0) ;;
            esac
            run_one "$w" "$t" "$r" --timeout 240 "${opts[@]}"
        done
    done
done
# The hub workloads: W2 and W3 through mod_sse's Mercure hub, on the same
# server as W2 and W3 (mod_sse only).  H2: W2's N subscribers on one exact
# topic; H3: W3's channels as topics, each subscriber on its own exactly;
# H3T: H3 with the last W3_CHANS subscribers (one per channel) on distinct
# URI templates https://example.com/cC/{id}, each matching its channel's
# topic only: every update is matched against all of them.
for w in H2 H3 H3T; do
    wanted $w || continue
    has_target modsse || continue
    for ((r = 1; r <= REPEAT; r++)); do
        case $w in
        H2) opts=(-n "$N" -e "$W2_EVENTS") ;;
        H3) opts=(-n "$N" -c "$W3_CHANS" -e "$W3_EVENTS" --random -P "$W3_PUBS") ;;
        H3T) opts=(-n "$N" -c "$W3_CHANS" -e "$W3_EVENTS" --random -P "$W3_PUBS"
                   --hub-templates "$W3_CHANS") ;;
        esac
        run_one "$w" modsse "$r" --timeout 240 "${opts[@]}" -t hub --hub-key "$HUB_KEY"
    done
done
# The store workloads, mod_sse only.  S4-<sync>: W4's load with the history
# on disk (SSEHistoryPath, a fresh directory per run, SSEHistorySync <sync>;
# SSEHistory stays the default 100 events per channel, so the store trims
# as it goes), beside W4's in-memory mod_sse and Nchan.  R10K: R_EVENTS
# events kept on one channel (SSEHistory R_EVENTS), then R_SUBS streams on
# another get R_LIVE lone events every R_INTERVAL_US while one stream
# resumes the first channel from its first id.
S4_MODES=""
for m in no everysec always; do
    if wanted S4 || wanted "S4-$m"; then S4_MODES+=" $m"; fi
done
if has_target modsse; then
    for ((r = 1; r <= REPEAT; r++)); do
        for m in $S4_MODES; do
            STORE_DIR=$RUN/store/S4-$m-$r STORE_SYNC=$m
            run_one "S4-$m" modsse "$r" --timeout 240 \
                -n "$W4_SUBS" -c "${BENCH_W4_CHANS:-$W4_SUBS}" -e "$W4_EVENTS" -P "$W4_PUBS"
            STORE_DIR=""
        done
        if wanted R10K; then
            STORE_DIR=$RUN/store/R10K-$r STORE_SYNC=everysec
            PUB_HISTORY="    SSEHistory $R_EVENTS 3600"
            # A replay is written to the stream at once: past the socket's
            # buffer it waits in the stream's backlog, and the default
            # SSEMaxBacklog (256 KiB, about 2,750 of these events) closes
            # the stream as too slow.  16 MiB holds the whole replay.
            STREAM_BACKLOG="    SSEMaxBacklog 16777216"
            run_one R10K modsse "$r" --timeout 240 -n "$R_SUBS" -c 1 -e "$R_LIVE" -P 1 \
                --interval-us "$R_INTERVAL_US" --replay "$R_EVENTS" --replay-after $((R_LIVE / 3))
            STORE_DIR="" PUB_HISTORY="" STREAM_BACKLOG=""
        fi
    done
fi
# The TLS workloads: mod_sse (event MPM, mod_ssl, SSESuspend on) against
# Nchan over ssl, TLS_N streams on one channel.
for w in T1 T2 T3 T4; do
    wanted $w || continue
    for ((r = 1; r <= REPEAT; r++)); do
        for t in modsse nchan; do
            has_target $t || continue
            case $w in
            T1) opts=(-m hold -n "$TLS_N" --hold "$HOLD") ;;
            T2) opts=(-n "$TLS_N" -e "$T2_EVENTS" --interval-us $((1000000 / T2_RATE))) ;;
            T3) opts=(-m hold -n "$TLS_N" --hold 0) ;;
            T4) opts=(-n "$TLS_N" -e "$T4_EVENTS") ;;
            esac
            run_one "$w" "$t-tls" "$r" --timeout 240 "${opts[@]}"
        done
    done
done
if wanted F; then
    for ((r = 1; r <= REPEAT; r++)); do
        for t in modsse nchan; do
            has_target $t && floor_one "$t" "$r"
        done
    done
fi

# Which tables this run makes: the plain one (W1-W5, F) and the TLS one (T1-T4).
WANT_PLAIN=0; WANT_TLS=0; WANT_HUB=0
for w in W1 W2 W3 W4 W5 F; do wanted $w && WANT_PLAIN=1; done
for w in T1 T2 T3 T4; do wanted $w && WANT_TLS=1; done
for w in H2 H3 H3T; do wanted $w && has_target modsse && WANT_HUB=1; done
WANT_STORE=0
if has_target modsse && { [ -n "$S4_MODES" ] || wanted R10K; }; then WANT_STORE=1; fi
HOSTDESC="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
HTTPD_V=$("$HTTPD" -v 2>/dev/null | sed -n 's/^Server version: //p')
NGINX_V=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
NCHAN_V=$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo "?")
nfail_all=0
for f in "$RUN"/kv/*.kv; do
    [ -f "$f" ] || continue
    grep -q '^verified=OK$' "$f" || nfail_all=$((nfail_all + 1))
done

# median KEY W T: the median of KEY over the runs of workload W on target T
# ("" when absent); a run that failed verification marks the value with "!".
median() {
    local key=$1 w=$2 t=$3 f vals="" bad=0
    for f in "$RUN"/kv/"$w"-"$t"-*.kv; do
        [ -f "$f" ] || continue
        v=$(awk -F= -v k="$key" '$1 == k { print $2 }' "$f")
        [ -n "$v" ] && vals+="$v"$'\n'
        grep -q '^verified=OK$' "$f" || bad=1
    done
    [ -n "$vals" ] || { echo ""; return; }
    m=$(printf '%s' "$vals" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    if [ $bad = 1 ]; then echo "$m!"; else echo "$m"; fi
}

if [ "$WANT_PLAIN" = 1 ]; then
# What waking another process costs here (the servers differ in how
# often they do it): once, on a quiet machine.
WAKE_KV=$RUN/wakeup.kv
quiet_wait
"$BIN/wakeup" -n "$([ "$SMOKE" = 1 ] && echo 2000 || echo 20000)" >"$WAKE_KV" \
    || fail "bench/wakeup failed"
wake() { sed -n "s/^$1=//p" "$WAKE_KV"; }

# ------------------------------------------------------------ table
MD=$OUT/results.md
DAT=$OUT/results.dat
: >"$DAT"
{
    echo "| figure | mod_sse | Nchan | limit | ratio mod_sse/Nchan | goal |"
    echo "|---|---:|---:|---:|---:|---|"
} >"$MD"

# row W key label better(hi|lo) scale decimals [limit:yes|no]
row() {
    local w=$1 key=$2 label=$3 better=$4 scale=$5 dec=$6 lim=${7:-yes}
    wanted "$w" || return 0
    local a b c
    a=$(median "$key" "$w" modsse); b=$(median "$key" "$w" nchan)
    c=""; [ "$lim" = yes ] && c=$(median "$key" "$w" limit)
    awk -v a="$a" -v b="$b" -v c="$c" -v s="$scale" -v d="$dec" -v better="$better" \
        -v label="$label" -v dat="$DAT" '
    function num(x) { sub(/!$/, "", x); return x + 0 }
    function fmt(x,   v, mark) {
        if (x == "") return "-"
        mark = (x ~ /!$/) ? " (failed check)" : ""
        v = num(x) * s
        return sprintf("%." d "f", v) mark
    }
    BEGIN {
        ratio = "-"; goal = ""
        if (a != "" && b != "" && num(b) != 0) {
            r = num(a) / num(b); ratio = sprintf("%.2f", r)
            if (better == "hi") goal = (r >= 1.2) ? "met (>= 1.2)" : "not met (>= 1.2)"
            else if (better == "lo") goal = (r <= 0.8) ? "met (<= 0.8)" : "not met (<= 0.8)"
            else goal = "-"
            # chart: mod_sse relative to Nchan, higher is better for mod_sse
            sc = (better == "hi") ? r : (r > 0 ? 1 / r : 0)
            lc = ""
            if (c != "" && num(b) != 0 && num(c) != 0) {
                rl = num(c) / num(b); lc = (better == "hi") ? rl : 1 / rl
            }
            if (better != "info")
                printf "\"%s\" %.4f %s\n", label, sc, (lc == "" ? "NaN" : sprintf("%.4f", lc)) >> dat
        }
        printf "| %s | %s | %s | %s | %s | %s |\n", label, fmt(a), fmt(b), fmt(c), ratio, goal
    }' >>"$MD"
}

row W1 rss_per_sub_b        "W1 hold: server memory per idle subscriber (bytes)" lo 1 0
row W1 rss_after_kb         "W1 hold: server RSS with N subscribers (MiB)" info 0.0009765625 1
row W1 threads              "W1 hold: server threads (all processes)" info 1 0
row W2 deliv_rate           "W2 fan-out: deliveries/s" hi 1 0
row W2 lat_p50_ms           "W2 fan-out: latency p50 (ms)" lo 1 1
row W2 lat_p99_ms           "W2 fan-out: latency p99 (ms)" lo 1 1
row W2 lat_max_ms           "W2 fan-out: latency max (ms)" lo 1 1
row W2 lat_read_p99_ms      "W2 fan-out: latency p99, read by the client (ms)" lo 1 1
row W2 cpu_us_per_delivery  "W2 fan-out: server CPU per delivery (us)" lo 1 2
row W3 deliv_rate           "W3 many channels: deliveries/s" hi 1 0 no
row W3 lat_p99_ms           "W3 many channels: latency p99 (ms)" lo 1 2 no
row W3 lat_read_p99_ms      "W3 many channels: latency p99, read by the client (ms)" lo 1 2 no
row W3 cpu_us_per_delivery  "W3 many channels: server CPU per delivery (us)" lo 1 2 no
row W4 pub_rate             "W4 publish: publishes/s" hi 1 0 no
row W4 pub_p99_ms           "W4 publish: publish latency p99 (ms)" lo 1 2 no
row W4 cpu_us_per_publish   "W4 publish: server CPU per publish (us)" lo 1 1 no
row W5 connect_rate         "W5 connect: new subscriptions/s" hi 1 0
row W5 connect_cpu_us       "W5 connect: server CPU per subscription (us)" lo 1 1
row F  floor_ka_rate        "Floor: keep-alive requests/s answered 204, no module work (ab)" info 1 0 no
row F  floor_ka_cpu_us      "Floor: server CPU per keep-alive request (us)" info 1 1 no
row F  floor_conn_rate      "Floor: new connections/s, each answered 204 (ab)" info 1 0 no
row F  floor_conn_cpu_us    "Floor: server CPU per new connection (us)" info 1 1 no

# Verification summary over every run of these workloads.
nfail=0; nruns=0; failed=""
for f in "$RUN"/kv/[WF]*.kv; do
    [ -f "$f" ] || continue
    nruns=$((nruns + 1))
    if ! grep -q '^verified=OK$' "$f"; then nfail=$((nfail + 1)); failed+=" $(basename "$f" .kv)"; fi
done

{
    echo
    echo "N = $N subscribers (W1, W2, W5; W3: $N over $W3_CHANS channels, $W3_EVENTS events, $W3_PUBS publishers;"
    echo "W2: $W2_EVENTS events; W4: $W4_SUBS subscribers on ${BENCH_W4_CHANS:-$W4_SUBS} channels, $W4_EVENTS events, $W4_PUBS publishers)."
    echo "Median of $REPEAT runs of each workload. Server processes: $SPROCS"
    echo "(httpd children = nginx workers). Client processes: $CPROCS. Machine: $HOSTDESC."
    echo "$HTTPD_V, worker MPM; $NGINX_V with Nchan $NCHAN_V; $(date -u +%Y-%m-%d)."
    maxbusy=$(cat "$RUN"/kv/[WF]*.kv 2>/dev/null | awk -F= '$1 == "other_busy" && $2 > m { m = $2 } END { printf "%.2f", m }')
    echo "Other processes used at most $maxbusy cores just before each run (limit server: $LPROCS process(es))."
    if [ -n "${BENCH_SERVER_CPUS:-}" ]; then
        echo "Every server ran on CPU(s) $BENCH_SERVER_CPUS only (BENCH_SERVER_CPUS); the client on any."
    fi
    if [ -n "$(wake wake_other_cpu_us)" ]; then
        echo "Waking a process (bench/wakeup.c, a byte to and fro between two processes): $(wake wake_same_cpu_us) us of CPU"
        echo "per round trip when both run on one CPU, $(wake wake_other_cpu_us) us when they run on two."
    fi
    if [ $nfail = 0 ]; then
        echo "Verification: every delivery in all $nruns runs arrived exactly once and in order."
    else
        echo "Verification FAILED in $nfail of $nruns runs:$failed (values marked \"failed check\")."
    fi
} >>"$MD"

echo >&2
cat "$MD"

if [ "$HAVE_GNUPLOT" = 1 ] && [ -s "$DAT" ]; then
    nrows=$(wc -l <"$DAT")
    gnuplot <<EOF 2>"$OUT/gnuplot.log" || say "gnuplot failed (see $OUT/gnuplot.log)"
set terminal pngcairo size 1000,$((170 + 34 * nrows)) font "sans,10" noenhanced
set output "$OUT/results.png"
set lmargin 52
set title "mod_sse and the naive limit, relative to Nchan (= 1); N = $N, $(nproc) cores, $(date -u +%Y-%m-%d)\nright of 1: better than Nchan (throughput: ratio; latency, CPU, memory: inverse ratio)" font "sans,10"
set logscale x 2
set xrange [1.0/16:16]
set xtics ("1/16" 0.0625, "1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "1.2" 1.2, "2" 2, "4" 4, "8" 8, "16" 16)
set yrange [$nrows:-1]
set ytics nomirror
set grid x
set key outside bottom center horizontal
set arrow from 1, graph 0 to 1, graph 1 nohead lc rgb "black" lw 2
set arrow from 1.2, graph 0 to 1.2, graph 1 nohead lc rgb "#d08000" dt 2
set style fill solid 0.85 border -1
clamp(v) = v < 1.0/16 ? 1.0/16 : (v > 16 ? 16 : v)
plot "$DAT" using (1):(\$0-0.17):(clamp(\$2) < 1 ? clamp(\$2) : 1):(clamp(\$2) < 1 ? 1 : clamp(\$2)):(\$0-0.32):(\$0-0.02):ytic(1) with boxxyerror lc rgb "#2a6fdb" title "mod_sse / Nchan", \
     "$DAT" using (1):(\$0+0.17):(clamp(\$3) < 1 ? clamp(\$3) : 1):(clamp(\$3) < 1 ? 1 : clamp(\$3)):(\$0+0.02):(\$0+0.32) with boxxyerror lc rgb "#999999" title "limit / Nchan", \
     NaN with lines lc rgb "#d08000" dt 2 title "goal 1.2"
EOF
fi
fi     # WANT_PLAIN

# ------------------------------------------------------------ TLS table
MDT=$OUT/results-tls.md
if [ "$WANT_TLS" = 1 ]; then
{
    echo "| figure | mod_sse | Nchan | ratio mod_sse/Nchan | goal |"
    echo "|---|---:|---:|---:|---|"
} >"$MDT"

# trow W key label goal scale decimals: a row of the TLS table; goal is
# lo08 (ratio at most 0.8), le1 (at most 1), zero (mod_sse's value is 0),
# or info (no goal).
trow() {
    local w=$1 key=$2 label=$3 goal=$4 scale=$5 dec=$6 a b
    wanted "$w" || return 0
    a=$(median "$key" "$w" modsse-tls); b=$(median "$key" "$w" nchan-tls)
    awk -v a="$a" -v b="$b" -v s="$scale" -v d="$dec" -v goal="$goal" -v label="$label" \
        -v n="$TLS_N" '
    function num(x) { sub(/!$/, "", x); return x + 0 }
    function fmt(x,   mark) {
        if (x == "") return "-"
        mark = (x ~ /!$/) ? " (failed check)" : ""
        return sprintf("%." d "f", num(x) * s) mark
    }
    BEGIN {
        ratio = "-"; g = "-"
        if (a != "" && b != "" && num(b) != 0) {
            r = num(a) / num(b); ratio = sprintf("%.2f", r)
            if (goal == "lo08") g = (r <= 0.8) ? "met (<= 0.8)" : "not met (<= 0.8)"
            if (goal == "le1") g = (r <= 1.0) ? "met (<= 1)" : "not met (<= 1)"
        }
        if (goal == "zero" && a != "") {
            if (num(a) == 0 && a !~ /!$/)
                g = (n >= 10000) ? sprintf("met (%d held)", n) : sprintf("none refused (N = %d, below the goal%s 10,000)", n, "\x27s")
            else
                g = "not met"
        }
        printf "| %s | %s | %s | %s | %s |\n", label, fmt(a), fmt(b), ratio, g
    }' >>"$MDT"
}

trow T1 subs_fail            "T1 hold: TLS streams refused or failed (of N)" zero 1 0
trow T1 rss_per_sub_b        "T1 hold: server memory per TLS stream (bytes)" le1 1 0
trow T1 rss_after_kb         "T1 hold: server RSS with N TLS streams (MiB)" info 0.0009765625 1
trow T1 threads              "T1 hold: server threads (all processes)" info 1 0
trow T2 cpu_us_per_delivery  "T2 lone events: server CPU per delivery (us)" lo08 1 2
trow T2 lat_p50_ms           "T2 lone events: latency p50 (ms)" info 1 1
trow T2 lat_p99_ms           "T2 lone events: latency p99 (ms)" lo08 1 1
trow T3 connect_rate         "T3 connect: new TLS streams/s (handshake included)" info 1 0
trow T3 connect_cpu_us       "T3 connect: server CPU per new TLS stream (us)" info 1 1
trow T4 cpu_us_per_delivery  "T4 burst: server CPU per delivery (us)" lo08 1 2
trow T4 lat_p50_ms           "T4 burst: latency p50 (ms)" info 1 1
trow T4 lat_p99_ms           "T4 burst: latency p99 (ms)" lo08 1 1
trow T4 deliv_rate           "T4 burst: deliveries/s" info 1 0

tnfail=0; tnruns=0; tfailed=""
for f in "$RUN"/kv/T*.kv; do
    [ -f "$f" ] || continue
    tnruns=$((tnruns + 1))
    if ! grep -q '^verified=OK$' "$f"; then tnfail=$((tnfail + 1)); tfailed+=" $(basename "$f" .kv)"; fi
done
{
    echo
    echo "N = $TLS_N TLS streams on one channel in every workload (T1 held $HOLD s; T2: $T2_EVENTS events at $T2_RATE/s;"
    echo "T3: the connects of a hold with no hold; T4: $T4_EVENTS events back to back). Median of $REPEAT runs of each workload."
    echo "Every connection is HTTPS (TLS 1.3 as negotiated, a full handshake each, HTTP/1.1), the publishes too;"
    echo "both servers use the same self-signed RSA-2048 certificate."
    echo "mod_sse: $HTTPD_V, event MPM, $SPROCS children x ThreadsPerChild 25, AsyncRequestWorkerFactor $TLS_FACTOR,"
    echo "MaxSpareThreads = MaxRequestWorkers = $((25 * SPROCS)), mod_ssl, SSESuspend on."
    echo "Nchan: $NGINX_V with Nchan $NCHAN_V, $SPROCS workers, listen ... ssl. Machine: $HOSTDESC; $(date -u +%Y-%m-%d)."
    maxbusy=$(cat "$RUN"/kv/T*.kv 2>/dev/null | awk -F= '$1 == "other_busy" && $2 > m { m = $2 } END { printf "%.2f", m }')
    echo "Other processes used at most $maxbusy cores just before each run."
    if [ $tnfail = 0 ]; then
        echo "Verification: every stream connected and every delivery in all $tnruns runs arrived exactly once and in order."
    else
        echo "Verification FAILED in $tnfail of $tnruns runs:$tfailed (values marked \"failed check\")."
    fi
} >>"$MDT"
echo >&2
cat "$MDT"
fi     # WANT_TLS

# ------------------------------------------------------------ hub table
MDH=$OUT/results-hub.md
if [ "$WANT_HUB" = 1 ]; then
{
    echo "| figure | native | hub | ratio hub/native |"
    echo "|---|---:|---:|---:|"
} >"$MDH"

# hrow NATIVE HUB key label scale decimals: the median of key in workload
# NATIVE (W2, W3) and HUB (H2, H3, H3T) of this run, and their ratio.
hrow() {
    local wn=$1 wh=$2 key=$3 label=$4 scale=$5 dec=$6 a="" b
    wanted "$wh" || return 0
    wanted "$wn" && a=$(median "$key" "$wn" modsse)
    b=$(median "$key" "$wh" modsse)
    awk -v a="$a" -v b="$b" -v s="$scale" -v d="$dec" -v label="$label" '
    function num(x) { sub(/!$/, "", x); return x + 0 }
    function fmt(x,   mark) {
        if (x == "") return "-"
        mark = (x ~ /!$/) ? " (failed check)" : ""
        return sprintf("%." d "f", num(x) * s) mark
    }
    BEGIN {
        ratio = "-"
        if (a != "" && b != "" && num(a) != 0) ratio = sprintf("%.2f", num(b) / num(a))
        printf "| %s | %s | %s | %s |\n", label, fmt(a), fmt(b), ratio
    }' >>"$MDH"
}

for pair in "W2 H2 W2 one topic (H2)" "W3 H3 W3 topics (H3)" "W3 H3T W3 topics + templates (H3T)"; do
    set -- $pair
    wn=$1 wh=$2; shift 2; what="$*"
    hrow "$wn" "$wh" deliv_rate          "$what: deliveries/s" 1 0
    hrow "$wn" "$wh" lat_p50_ms          "$what: latency p50 (ms)" 1 2
    hrow "$wn" "$wh" lat_p99_ms          "$what: latency p99 (ms)" 1 2
    hrow "$wn" "$wh" cpu_us_per_delivery "$what: server CPU per delivery (us)" 1 2
    hrow "$wn" "$wh" cpu_us_per_publish  "$what: server CPU per publish (us)" 1 1
    hrow "$wn" "$wh" pub_p50_ms          "$what: publish answer p50 (ms)" 1 2
    if [ "$wh" = H2 ]; then
        hrow "$wn" "$wh" connect_rate   "$what: new subscriptions/s (connect phase)" 1 0
        hrow "$wn" "$wh" connect_cpu_us "$what: server CPU per subscription (us)" 1 1
    fi
done

hnfail=0; hnruns=0; hfailed=""
for f in "$RUN"/kv/H*.kv; do
    [ -f "$f" ] || continue
    hnruns=$((hnruns + 1))
    if ! grep -q '^verified=OK$' "$f"; then hnfail=$((hnfail + 1)); hfailed+=" $(basename "$f" .kv)"; fi
done
{
    echo
    echo "mod_sse only, one server: native = W2/W3 (\`/events/C\`, \`/publish?channel=C\`), hub = the same load through"
    echo "\`/.well-known/mercure\` (topic https://example.com/cC/NAME; HS256 bearer token on each publish; anonymous subscribers)."
    echo "N = $N subscribers; W2/H2: one channel or topic, $W2_EVENTS events; W3/H3/H3T: $W3_CHANS channels or topics, $W3_EVENTS events"
    echo "to random ones, $W3_PUBS publishers; H3T: of the N, $W3_CHANS (one per topic) on distinct URI templates https://example.com/cC/{id}."
    echo "Median of $REPEAT runs of each workload. $HTTPD_V, worker MPM, $SPROCS children. Machine: $HOSTDESC; $(date -u +%Y-%m-%d)."
    maxbusy=$(cat "$RUN"/kv/[WH]*.kv 2>/dev/null | awk -F= '$1 == "other_busy" && $2 > m { m = $2 } END { printf "%.2f", m }')
    echo "Other processes used at most $maxbusy cores just before each run."
    if [ $hnfail = 0 ]; then
        echo "Verification: every delivery in all $hnruns hub runs arrived exactly once and in order."
    else
        echo "Verification FAILED in $hnfail of $hnruns hub runs:$hfailed (values marked \"failed check\")."
    fi
} >>"$MDH"
echo >&2
cat "$MDH"
fi     # WANT_HUB

# ------------------------------------------------------------ store table
MDS=$OUT/results-store.md
if [ "$WANT_STORE" = 1 ]; then
# srow LABEL W T: one row of the publish table: publishes/s, p99 and CPU per
# publish of workload W on target T (medians), each with its ratio to W4's
# in-memory mod_sse and to W4's Nchan of this run.
srow() {
    local label=$1 w=$2 t=$3 k vals=()
    for k in pub_rate pub_p99_ms cpu_us_per_publish; do
        # "_" holds the place of a missing figure
        for x in "$(median "$k" "$w" "$t")" "$(median "$k" W4 modsse)" "$(median "$k" W4 nchan)"; do
            vals+=("${x:-_}")
        done
    done
    [ "${vals[0]}" != _ ] || return 0
    awk -v label="$label" -v v="${vals[*]}" '
    function num(x) { sub(/!$/, "", x); return x + 0 }
    function fmt(x, d) { return x == "" ? "-" : sprintf("%." d "f", num(x)) ((x ~ /!$/) ? " (failed check)" : "") }
    function ratio(a, b) { return (a == "" || b == "" || num(b) == 0) ? "-" : sprintf("%.2f", num(a) / num(b)) }
    BEGIN {
        n = split(v, a, " ")
        for (i = 1; i <= n; i++) if (a[i] == "_") a[i] = ""
        printf "| %s", label
        for (i = 0; i < 3; i++) {
            x = a[3 * i + 1]; m = a[3 * i + 2]; c = a[3 * i + 3]
            printf " | %s | %s | %s", fmt(x, i == 0 ? 0 : (i == 1 ? 2 : 1)), ratio(x, m), ratio(x, c)
        }
        printf " |\n"
    }' >>"$MDS"
}
{
    echo "| W4 load on | publishes/s | x in memory | x Nchan | publish p99 (ms) | x in memory | x Nchan | server CPU per publish (us) | x in memory | x Nchan |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$MDS"
if wanted W4; then
    srow "Nchan (W4)" W4 nchan
    srow "mod_sse, history in memory (W4)" W4 modsse
fi
for m in $S4_MODES; do
    srow "mod_sse, history on disk, SSEHistorySync $m (S4-$m)" "S4-$m" modsse
done
if wanted R10K; then
    # kvr KEY [DECIMALS]: the median of KEY over the R10K runs
    kvr() { median "$1" R10K modsse | awk -v d="${2:-1}" '{ m = ($0 ~ /!$/) ? " (failed check)" : ""; sub(/!$/, ""); printf "%." d "f%s", $0, m }'; }
    {
        echo
        echo "| R10K: replay of $R_EVENTS events beside $R_SUBS live streams | value |"
        echo "|---|---:|"
        echo "| history published first, one publisher, store on (everysec): publishes/s | $(kvr replay_pub_rate 0) |"
        echo "| resuming stream: events replayed (of $((R_EVENTS - 1))) | $(kvr replay_events 0) |"
        echo "| resuming stream: connect to first event (ms) | $(kvr replay_first_ms) |"
        echo "| resuming stream: connect to last event (ms) | $(kvr replay_ms) |"
        echo "| resuming stream: events/s | $(kvr replay_rate 0) |"
        echo "| live streams, events published during the replay: deliveries | $(kvr live_in_n 0) |"
        echo "| live streams, during the replay: latency p50 / p99 / max (ms) | $(kvr live_in_p50_ms) / $(kvr live_in_p99_ms) / $(kvr live_in_max_ms) |"
        echo "| live streams, before and after the replay: deliveries | $(kvr live_out_n 0) |"
        echo "| live streams, before and after the replay: latency p50 / p99 / max (ms) | $(kvr live_out_p50_ms) / $(kvr live_out_p99_ms) / $(kvr live_out_max_ms) |"
        echo "| server CPU during the live part and the replay (s) | $(kvr cpu_s 2) |"
    } >>"$MDS"
fi
snfail=0; snruns=0; sfailed=""
for f in "$RUN"/kv/S4-*.kv "$RUN"/kv/R10K-*.kv; do
    [ -f "$f" ] || continue
    snruns=$((snruns + 1))
    if ! grep -q '^verified=OK$' "$f"; then snfail=$((snfail + 1)); sfailed+=" $(basename "$f" .kv)"; fi
done
{
    echo
    echo "W4 load: $W4_SUBS subscribers on ${BENCH_W4_CHANS:-$W4_SUBS} channels, $W4_EVENTS events round robin, $W4_PUBS publishers on keep-alive connections."
    echo "S4-<sync>: mod_sse with SSEHistoryPath (a fresh directory per run, $(df -T "$RUN" | awk 'NR == 2 { print $2 }') on $(df "$RUN" | awk 'NR == 2 { print $1 }')) and SSEHistorySync <sync>;"
    echo "SSEHistory the default (100 events per channel). Ratios: to W4's mod_sse (history in memory) and W4's Nchan of this run."
    echo "R10K: $R_EVENTS events on one channel (SSEHistory $R_EVENTS 3600, store on, everysec), then $R_SUBS streams on another channel,"
    echo "$R_LIVE lone events there every $((R_INTERVAL_US / 1000)) ms; after $((R_LIVE / 3)) of them one stream resumes the first channel from its first id."
    echo "The streams' location has SSEMaxBacklog 16777216 in R10K (the default 256 KiB closes the resuming stream as too slow)."
    echo "\"During the replay\": live events published between the resuming stream's connect and its last event."
    echo "Median of $REPEAT runs of each workload. $HTTPD_V, worker MPM, $SPROCS children. Machine: $HOSTDESC; $(date -u +%Y-%m-%d)."
    maxbusy=$(cat "$RUN"/kv/[WSR]*.kv 2>/dev/null | awk -F= '$1 == "other_busy" && $2 > m { m = $2 } END { printf "%.2f", m }')
    echo "Other processes used at most $maxbusy cores just before each run."
    if [ $snfail = 0 ]; then
        echo "Verification: every delivery in all $snruns store runs arrived exactly once and in order (the replay too)."
    else
        echo "Verification FAILED in $snfail of $snruns store runs:$sfailed (values marked \"failed check\")."
    fi
} >>"$MDS"
echo >&2
cat "$MDS"
fi     # WANT_STORE

if [ "$SMOKE" != 1 ]; then
    RES=${BENCH_RESULTS:-$BDIR/results}
    mkdir -p "$RES"
    if [ "$WANT_STORE" = 1 ]; then
        cp "$MDS" "$RES/results-store.md"
        rm -rf "$RES/raw-store.new" && mkdir -p "$RES/raw-store.new"
        cp "$RUN"/kv/S4-* "$RUN"/kv/R10K-* "$RES/raw-store.new/" 2>/dev/null || true
        if wanted W4; then cp "$RUN"/kv/W4-* "$RES/raw-store.new/" 2>/dev/null || true; fi
        [ -f "$RUN/modsse/logs/error.log" ] && cp "$RUN/modsse/logs/error.log" "$RES/raw-store.new/modsse-error.log"
        rm -rf "$RES/raw-store" && mv "$RES/raw-store.new" "$RES/raw-store"
        say "wrote $RES/ (results-store.md, raw-store/)"
    fi
    if [ "$WANT_HUB" = 1 ]; then
        cp "$MDH" "$RES/results-hub.md"
        rm -rf "$RES/raw-hub.new" && mkdir -p "$RES/raw-hub.new"
        cp "$RUN"/kv/H* "$RES/raw-hub.new/" 2>/dev/null || true
        for w in W2 W3; do
            if wanted $w; then cp "$RUN"/kv/$w-modsse-* "$RES/raw-hub.new/" 2>/dev/null || true; fi
        done
        [ -f "$RUN/modsse/logs/error.log" ] && cp "$RUN/modsse/logs/error.log" "$RES/raw-hub.new/modsse-error.log"
        rm -rf "$RES/raw-hub" && mv "$RES/raw-hub.new" "$RES/raw-hub"
        say "wrote $RES/ (results-hub.md, raw-hub/)"
    fi
    if [ "$WANT_TLS" = 1 ]; then
        cp "$MDT" "$RES/results-tls.md"
        rm -rf "$RES/raw-tls.new" && mkdir -p "$RES/raw-tls.new"
        cp "$RUN"/kv/T*.kv "$RUN"/kv/T*.log "$RES/raw-tls.new/" 2>/dev/null || true
        for t in modsse-tls nchan-tls; do
            [ -f "$RUN/$t/logs/error.log" ] && cp "$RUN/$t/logs/error.log" "$RES/raw-tls.new/$t-error.log"
        done
        rm -rf "$RES/raw-tls" && mv "$RES/raw-tls.new" "$RES/raw-tls"
        say "wrote $RES/ (results-tls.md, raw-tls/)"
    fi
fi
if [ "$SMOKE" != 1 ] && [ "$WANT_PLAIN" = 1 ]; then
    RES=${BENCH_RESULTS:-$BDIR/results}
    mkdir -p "$RES"
    cp "$MD" "$RES/results.md"
    [ -f "$OUT/results.png" ] && cp "$OUT/results.png" "$RES/results.png"
    rm -rf "$RES/raw.new" && mkdir -p "$RES/raw.new"
    cp "$RUN"/kv/[WF]* "$RES/raw.new/" 2>/dev/null || true
    rm -rf "$RES/raw" && mv "$RES/raw.new" "$RES/raw"
    say "wrote $RES/ (results.md, results.png, raw/)"
    # A full run (every workload, default sizes) also refreshes the table in
    # bench/README.md, between its two marker lines.
    if [ "$QUICK" != 1 ] && [ "$ONLY" = "$ALL_W" ] && [ -z "${BENCH_N:-}" ] \
        && [ -z "${BENCH_RESULTS:-}" ] && [ -z "${BENCH_TARGETS:-}" ] \
        && grep -q '^<!-- results -->$' "$BDIR/README.md"; then
        cmd="make bench"
        for v in $(env | sed -n 's/^\(BENCH_[A-Z_]*\)=.*/\1/p' | sort); do cmd+=" $v=${!v}"; done
        {
            sed -n '1,/^<!-- results -->$/p' "$BDIR/README.md"
            echo "Measured with \`$cmd\`:"
            echo
            cat "$MD"
            echo
            echo "![mod_sse and the limit relative to Nchan](results/results.png)"
            sed -n '/^<!-- \/results -->$/,$p' "$BDIR/README.md"
        } >"$OUT/README.new"
        mv "$OUT/README.new" "$BDIR/README.md"
        say "updated the table in bench/README.md"
    fi
fi
# W7: a graceful restart under N plain streams on the event MPM, events
# published every 20 ms throughout, each client reconnecting as an
# EventSource does (after its last retry:, with Last-Event-ID); run with
# SSERestartSpread 0 and 5s (mod_sse only: Nchan has nothing like it).
# bench/reload.c is the client; results-reload.md the table.
if wanted W7 && has_target modsse; then
    W7_N=${BENCH_W7_N:-$N}
    gcc -O2 -Wall -Wextra -o "$BIN/reload" "$BDIR/reload.c" 2>"$OUT/reload.build.log" \
        || fail "reload.c did not build (see $OUT/reload.build.log)"
    W7D=$RUN/w7
    MD7=$OUT/results-reload.md
    mkdir -p "$RUN/kv"
    for spread in 0 5s; do
        rm -rf "$W7D" && mkdir -p "$W7D/logs"
        {
            echo "# W7's private httpd (generated by bench/run.sh)"
            echo "ServerRoot \"$W7D\""
            echo "ServerName 127.0.0.1"
            echo "Listen 127.0.0.1:$P_MODSSE"
            echo "ListenBacklog 4096"
            echo "PidFile \"$W7D/httpd.pid\""
            echo "DefaultRuntimeDir \"$W7D\""
            echo "ErrorLog \"$W7D/logs/error.log\""
            echo "LogLevel warn"
            echo "LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so"
            echo "LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so"
            echo "LoadModule sse_module \"$ROOT/mod_sse.so\""
            if [ "$AS_ROOT" = 1 ]; then printf 'User www-data\nGroup www-data\n'; fi
            echo "# room for a new generation while the old one holds its streams"
            echo "StartServers $SPROCS"
            echo "ServerLimit $((4 * SPROCS))"
            echo "ThreadsPerChild 25"
            echo "MinSpareThreads 25"
            echo "MaxSpareThreads $((100 * SPROCS))"
            echo "MaxRequestWorkers $((25 * SPROCS))"
            echo "MaxConnectionsPerChild 0"
            echo "SSEMaxSubscribers $((2 * W7_N + 1000))"
            echo "SSERestartSpread $spread"
            echo "<Location \"/stream\">"
            echo "    SetHandler sse"
            echo "</Location>"
            echo "<Location \"/pub\">"
            echo "    SetHandler sse-publish"
            echo "    SSEHistory 100000"
            echo "</Location>"
        } >"$W7D/httpd.conf"
        say "W7 modsse SSERestartSpread $spread: $W7_N streams, a graceful restart"
        "$HTTPD" -f "$W7D/httpd.conf" -k start || fail "W7: httpd did not start"
        wait_file "$W7D/httpd.pid" 10
        wait_port "$P_MODSSE" 10
        "$BIN/reload" -p "$P_MODSSE" -n "$W7_N" -P "$W7D/httpd.pid" -u "/stream?channel=w7" \
            -U "/pub?channel=w7" -i 20 >"$RUN/kv/W7-modsse-$spread.kv" 2>"$RUN/kv/W7-modsse-$spread.log" \
            || say "W7: reload exit status $? (see $RUN/kv/W7-modsse-$spread.log)"
        w7pid=$(cat "$W7D/httpd.pid" 2>/dev/null)
        "$HTTPD" -f "$W7D/httpd.conf" -k stop
        for _ in $(seq 1 100); do
            if [ -n "$w7pid" ] && kill -0 "$w7pid" 2>/dev/null; then sleep 0.1; else break; fi
        done
        cp "$W7D/logs/error.log" "$RUN/kv/W7-modsse-$spread-error.log" 2>/dev/null || true
    done
    k7() { sed -n "s/^$2=//p" "$RUN/kv/W7-modsse-$1.kv"; }
    {
        echo "| W7: graceful restart, $W7_N streams (event MPM) | SSERestartSpread 0 | SSERestartSpread 5s |"
        echo "|---|---|---|"
        for f in "streams closed by the restart:closed" "reconnected:reconnected" \
                 "last stream closed (ms after the restart):close_last_ms" \
                 "reconnects in the busiest second:busiest_count" \
                 "share of all reconnects in the busiest second:busiest_share" \
                 "reconnect time p50 (ms after the restart):reconnect_p50_ms" \
                 "reconnect time p99 (ms):reconnect_p99_ms" \
                 "all reconnected (ms):reconnect_all_ms" \
                 "events published during the run:published" \
                 "publishes refused:publish_refused" \
                 "events lost (gaps, and missing at the end):lost" \
                 "missing at the end:missing" "events received twice:repeated"; do
            echo "| ${f%%:*} | $(k7 0 "${f##*:}") | $(k7 5s "${f##*:}") |"
        done
    } >"$MD7"
    cat "$MD7"
    if [ "$SMOKE" != 1 ]; then
        RES=${BENCH_RESULTS:-$BDIR/results}
        mkdir -p "$RES/raw-reload"
        cp "$MD7" "$RES/results-reload.md"
        cp "$RUN"/kv/W7-* "$RES/raw-reload/" 2>/dev/null || true
        say "wrote $RES/ (results-reload.md, raw-reload/)"
    fi
fi
# C1-C5: several servers on one Redis (bench/cluster.sh)
. "$BDIR/cluster.sh"
[ $nfail_all = 0 ] || exit 1
