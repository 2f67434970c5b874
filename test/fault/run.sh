#!/usr/bin/env bash
# test/fault/run.sh: churn, stop, graceful, hostile-input and relay-socket
# runs against private httpd instances (worker MPM) loading ./mod_sse.so.
# test/fault/fault.mk calls it:
#
#   bash test/fault/run.sh full    100,000 churn cycles, 10,000 streams (make reliability)
#   bash test/fault/run.sh quick    10,000 churn cycles,  2,000 streams (make test-fault)
#
# Each server lives in build/fault/<name>/ (config, pid file, logs, relay
# socket) on 127.0.0.1:FAULT_PORT; only processes started here are
# signalled.  Results: build/fault/results/<mode>.tsv, one row per check:
#   area <TAB> what was done <TAB> how often <TAB> measured result <TAB> PASS|FAIL
# plus <mode>.meta (versions, sizes, durations).  test/fault/report.pl turns
# them into test/RELIABILITY.md.  Exit status 1 when any row failed.
#
# Environment (defaults in brackets): FAULT_PORT [18470], FAULT_MODULE
# [./mod_sse.so], FAULT_USER [ssetest: children and relay run as this user
# when started as root], FAULT_STRANGER [nobody: the local user that tries
# the relay socket], FAULT_CYCLES, FAULT_STREAMS, FAULT_EARLY,
# FAULT_CONCURRENCY [600], FAULT_RSS_MARGIN_KB [4096: RSS after vs. the
# baseline], FAULT_RSS_GROWTH_KB [1024: RSS growth over the second half of
# the churn, where a leak shows], FAULT_OUT
# [build/fault], FAULT_HTTPD [/usr/sbin/apache2], FAULT_HOSTILE_NORMAL and
# FAULT_HOSTILE_ATTACK [quick 300 and 3000, full 1000 and 20000: the
# normal clients and the streams one hostile address tries],
# FAULT_HOSTILE_RATE [1000: its attempts a second in the paced run].
#
# The TLS section (event MPM, mod_ssl on FAULT_PORT + 1, SSESuspend on;
# httpd-fault-tls.conf.in): FAULT_TLS_ONLY=1 runs only it (results in
# <mode>-tls.tsv), FAULT_TLS=0 skips it; FAULT_TLS_CYCLES [quick 2000,
# full 5000], FAULT_TLS_FANOUT [1000, 3000], FAULT_TLS_STREAMS [1000, 2000:
# graceful and stop], FAULT_TLS_SLOW [60 slow readers],
# FAULT_TLS_CONCURRENCY [100], FAULT_TLS_BUSY_MAX [10: busy workers while
# the slow readers are dropped], FAULT_TLS_RESTART_SECS [5],
# FAULT_TLS_RSS_MARGIN_KB [8192], FAULT_TLS_RSS_GROWTH_KB [2048].
set -u

mode=${1:-quick}
F_SRC=$(cd "$(dirname "$0")" && pwd)
F_TOP=$(cd "$F_SRC/../.." && pwd)
F_OUT=${FAULT_OUT:-$F_TOP/build/fault}
F_MODULE=${FAULT_MODULE:-$F_TOP/mod_sse.so}
F_NOFILE=$(ulimit -Hn)
[ "$F_NOFILE" = unlimited ] && F_NOFILE=65536
. "$F_SRC/lib.sh"

case $mode in
    full)  cycles=${FAULT_CYCLES:-100000} streams=${FAULT_STREAMS:-10000} early=${FAULT_EARLY:-20000}
           h_normal=${FAULT_HOSTILE_NORMAL:-1000} h_attack=${FAULT_HOSTILE_ATTACK:-20000} h_rate=${FAULT_HOSTILE_RATE:-1000}
           tls_cycles=${FAULT_TLS_CYCLES:-5000} tls_fanout=${FAULT_TLS_FANOUT:-3000}
           tls_streams=${FAULT_TLS_STREAMS:-2000} tls_events=20 ;;
    quick) cycles=${FAULT_CYCLES:-10000}  streams=${FAULT_STREAMS:-2000}  early=${FAULT_EARLY:-5000}
           h_normal=${FAULT_HOSTILE_NORMAL:-300} h_attack=${FAULT_HOSTILE_ATTACK:-3000} h_rate=${FAULT_HOSTILE_RATE:-1000}
           tls_cycles=${FAULT_TLS_CYCLES:-2000} tls_fanout=${FAULT_TLS_FANOUT:-1000}
           tls_streams=${FAULT_TLS_STREAMS:-1000} tls_events=10 ;;
    *) echo "usage: run.sh quick|full" >&2; exit 2 ;;
esac
# FAULT_TLS_ONLY=1: only the TLS section; FAULT_TLS=0: everything but it
tls_only=${FAULT_TLS_ONLY:-0}
tls_skip=$( [ "${FAULT_TLS:-1}" = 0 ] && [ "$tls_only" != 1 ] && echo 1 || echo 0)
tls_conc=${FAULT_TLS_CONCURRENCY:-100}
tls_slow=${FAULT_TLS_SLOW:-60}
tls_busy_max=${FAULT_TLS_BUSY_MAX:-10}
tls_restart_secs=${FAULT_TLS_RESTART_SECS:-5}
tls_rss_margin=${FAULT_TLS_RSS_MARGIN_KB:-8192}
tls_rss_growth=${FAULT_TLS_RSS_GROWTH_KB:-2048}
port=${FAULT_PORT:-18470}
conc=${FAULT_CONCURRENCY:-600}
rss_margin=${FAULT_RSS_MARGIN_KB:-4096}
rss_growth=${FAULT_RSS_GROWTH_KB:-1024}
stranger=${FAULT_STRANGER:-nobody}

ulimit -n "$F_NOFILE" 2>/dev/null
if [ "$(ulimit -n)" -lt $((streams + 500)) ]; then
    echo "fault: ulimit -n is $(ulimit -n); $streams streams need more" >&2
    exit 2
fi
[ -f "$F_MODULE" ] || { echo "fault: $F_MODULE not found; run make first" >&2; exit 2; }
if [ "$(id -u)" = 0 ] && ! id "$FAULT_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$FAULT_USER" || exit 2
fi
if [ "$(id -u)" != 0 ]; then
    FAULT_USER=$(id -un)
fi

mkdir -p "$F_OUT/results"
bin=$F_OUT/ssefault
if [ ! -x "$bin" ] || [ "$F_SRC/ssefault.c" -nt "$bin" ]; then
    gcc -O2 -g -Wall -Wextra -pthread -o "$bin" "$F_SRC/ssefault.c" -lssl -lcrypto || exit 2
fi
chmod 755 "$F_OUT" "$bin"

# a TLS-only run keeps its own results (the whole run's stay as they were)
tag=$mode
[ "$tls_only" = 1 ] && tag=$mode-tls
res=$F_OUT/results/$tag.tsv
meta=$F_OUT/results/$tag.meta
: >"$res"
t_start=$SECONDS
{
    echo "mode=$mode"
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "httpd=$("$FAULT_HTTPD" -v | sed -n 's/^Server version: //p')"
    echo "kernel=$(uname -r)"
    echo "cpus=$(nproc)"
    echo "module=$F_MODULE"
    echo "module_sha256=$(sha256sum "$F_MODULE" | cut -c1-16)"
    echo "git=$(git -C "$F_TOP" describe --always --dirty 2>/dev/null || echo '?')"
    echo "cycles=$cycles"
    echo "streams=$streams"
    echo "early=$early"
    echo "hostile=$h_normal $h_attack $h_rate"
    echo "concurrency=$conc"
    echo "rss_margin_kb=$rss_margin"
    echo "rss_growth_kb=$rss_growth"
    echo "user=$FAULT_USER"
    echo "tls=$( [ "$tls_skip" = 1 ] && echo skipped || echo "$tls_cycles $tls_fanout $tls_streams $tls_events $tls_slow") "
    [ "$tls_only" = 1 ] && echo "tls_only=1"
} >"$meta"

failed=0
row() {   # row AREA WHAT TRIES RESULT OK(0|1|skip: could not run here)
    local v=PASS
    if [ "$5" = skip ]; then
        v=SKIP
    elif [ "$5" != 1 ]; then
        v=FAIL
        failed=1
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$v" >>"$res"
    printf '  %-4s %s: %s (%s)\n' "$(case $v in PASS) echo ok ;; *) echo $v ;; esac)" "$1" "$2" "$4" >&2
}
ok() { "$@" && echo 1 || echo 0; }

# kv FILE KEY: a value from ssefault's key=value output
kv() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# Snapshot of every child and the relay: "pid fds rss" lines into a file.
snap() { fault_snapshot >"$1"; echo "parent $(fault_fds "$F_PPID") $(fault_rss "$F_PPID") 0" >>"$1"; }

# compare BEFORE AFTER: per-process deltas "pid:+fds:+rsskB" and maxima
compare() {
    awk 'NR == FNR { f[$1] = $2; r[$1] = $3; next }
         ($1 in f) { df = $2 - f[$1]; dr = $3 - r[$1];
                     printf "%s %d %d\n", $1, df, dr }' "$1" "$2"
}

if [ "$tls_only" != 1 ]; then
# --- 1. churn, hostile input, capacity and stop: one server -------------------
echo "fault: churn server ($cycles cycles, $conc at once)" >&2
fault_setup churn "$port" "$streams"
fault_start || exit 2
all_children=$(fault_children | tr '\n' ' ')

# warm-up: 10% of the cycles, at least 2,000: every worker thread's malloc
# arena and relay connection exists before the baseline is taken
warm=$((cycles / 10))
[ "$warm" -lt 2000 ] && warm=2000
churn_args=(-p "$port" -c "$conc" -T 600 --mix clean=40,rst=40,vanish=20 --vanish-ms 200-3000)
timeout 700 "$bin" churn "${churn_args[@]}" -n "$warm" >"$F_OUT/churn.warm" 2>/dev/null
fault_wait_streams 0 10
sleep 1
snap "$F_OUT/snap.base"
half=$((cycles / 2))
t0=$SECONDS
timeout 700 "$bin" churn "${churn_args[@]}" -n "$half" >"$F_OUT/churn.1" || true
fault_wait_streams 0 10
sleep 1
snap "$F_OUT/snap.mid"
timeout 700 "$bin" churn "${churn_args[@]}" -n "$((cycles - half))" >"$F_OUT/churn.2" || true
churn_secs=$((SECONDS - t0))
zero=$(ok fault_wait_streams 0 10)
sleep 1
snap "$F_OUT/snap.end"

sum() { echo $(( $(kv "$F_OUT/churn.1" "$1") + $(kv "$F_OUT/churn.2" "$1") )); }
done_c=$(( $(sum clean) + $(sum rst) + $(sum vanish) ))
errors=$(sum errors)
pub_bad=$(( $(sum pub_total) - $(sum pub_200) + $(sum pub_vanish_total) - $(sum pub_vanish_200) ))
row churn "connect/disconnect cycles, $conc at once: clean close $(sum clean), RST (SO_LINGER 0) $(sum rst), vanish mid-write $(sum vanish) ($(sum vanish_closed_with_unread) closed with unread data, $(sum vanish_dropped_by_server) dropped by the server), while events are published" \
    "$cycles" "$done_c done in ${churn_secs} s, $errors failed; $(( $(sum pub_total) + $(sum pub_vanish_total) )) publishes, $pub_bad not 200" \
    "$( [ "$done_c" = "$cycles" ] && [ "$errors" = 0 ] && [ "$pub_bad" = 0 ] && echo 1 || echo 0)"
row churn "streams counted after the churn (GET /pub)" 1 "$(fault_open_streams)" "$zero"

compare "$F_OUT/snap.base" "$F_OUT/snap.end" >"$F_OUT/delta.end"
compare "$F_OUT/snap.mid" "$F_OUT/snap.end" >"$F_OUT/delta.half"
kids=$(grep -v '^parent' "$F_OUT/snap.base" | awk '{print $1}' | grep -vx "$(fault_relay)")
nkids=$(echo $kids | wc -w)
gone=0
for p in $all_children; do fault_alive "$p" || gone=$((gone + 1)); done
fd_list=$(awk -v r="$(fault_relay)" '$1 != r && $1 != "parent" { printf "%+d ", $2 }' "$F_OUT/delta.end")
fd_max=$(awk -v r="$(fault_relay)" 'BEGIN { m = 0 } $1 != r && $1 != "parent" && $2 > m { m = $2 } END { print m }' "$F_OUT/delta.end")
fd_base=$(awk '$1 != "parent" { print $2; exit }' "$F_OUT/snap.base")
unix_max=$(awk -v r="$(fault_relay)" 'BEGIN { m = 0 } $1 != r && $1 != "parent" && $4 > m { m = $4 } END { print m }' "$F_OUT/snap.end")
row churn "open descriptors of each child after the churn vs. before (baseline after a ${warm}-cycle warm-up)" \
    "$nkids children" "leaked: ${fd_list:-none} (baseline $fd_base each, not counting the relay connections kept by worker threads: at most $unix_max per child)" \
    "$( [ "${fd_max:-1}" -le 0 ] && [ "$gone" = 0 ] && [ "$unix_max" -le 26 ] && echo 1 || echo 0)"
rss_list=$(awk -v r="$(fault_relay)" '$1 != r && $1 != "parent" { printf "%+d ", $3 }' "$F_OUT/delta.end")
rss_max=$(awk -v r="$(fault_relay)" 'BEGIN { m = -1e9 } $1 != r && $1 != "parent" && $3 > m { m = $3 } END { print m }' "$F_OUT/delta.end")
rss_half=$(awk -v r="$(fault_relay)" 'BEGIN { m = -1e9 } $1 != r && $1 != "parent" && $3 > m { m = $3 } END { print m }' "$F_OUT/delta.half")
rss_base=$(awk -v r="$(fault_relay)" '$1 != r && $1 != "parent" { s += $3; n++ } END { printf "%d", n ? s / n : 0 }' "$F_OUT/snap.base")
row churn "RSS of each child after the churn vs. baseline (margins: $rss_margin KiB in all, $rss_growth KiB over the second half)" "$nkids children" \
    "delta KiB: ${rss_list:-?}(baseline about $rss_base KiB); second half of the run: $(printf '%+d' "$rss_half") KiB at most" \
    "$( [ "${rss_max:-999999}" -le "$rss_margin" ] && [ "${rss_half:-999999}" -le "$rss_growth" ] && [ "$gone" = 0 ] && echo 1 || echo 0)"
relay=$(fault_relay)
read -r _ rfd rrss < <(grep "^$relay " "$F_OUT/delta.end" || echo "x 99 99")
read -r _ pfd _ < <(grep "^parent " "$F_OUT/delta.end" || echo "x 99 99")
row churn "relay and parent after the churn" 2 "relay: $(printf '%+d' "$rfd") descriptors, $(printf '%+d' "$rrss") KiB RSS (its history holds the last events); parent: $(printf '%+d' "$pfd") descriptors" \
    "$( [ "$rfd" -le 0 ] && [ "$pfd" -le 0 ] && echo 1 || echo 0)"
crashes=$(fault_crashes | wc -l)
row churn "crashes during the churn" 1 "$gone of $nkids children died; $crashes error log lines" \
    "$( [ "$gone" = 0 ] && [ "$crashes" = 0 ] && echo 1 || echo 0)"

# hostile input, then the same checks
echo "fault: hostile input" >&2
mark=$(stat -c %s "$F_DIR/logs/error.log")
sock=$(ls "$F_DIR"/run/sse-relay.*.sock 2>/dev/null | head -n 1)
hargs=(--port "$port" --out "$res" --relay-sock "$sock" --helper "$bin" --run-user "$FAULT_USER"
       --stranger "$stranger" --log "$F_DIR/logs/error.log")
[ "$mode" = quick ] && hargs+=(--quick)
timeout 600 perl "$F_SRC/hostile.pl" "${hargs[@]}" || failed=1
zero=$(ok fault_wait_streams 0 10)
sleep 1
snap "$F_OUT/snap.hostile"
compare "$F_OUT/snap.base" "$F_OUT/snap.hostile" >"$F_OUT/delta.hostile"
fd_list=$(awk -v r="$(fault_relay)" '$1 != r && $1 != "parent" { printf "%+d ", $2 }' "$F_OUT/delta.hostile")
fd_max=$(awk -v r="$(fault_relay)" 'BEGIN { m = 0 } $1 != r && $1 != "parent" && $2 > m { m = $2 } END { print m }' "$F_OUT/delta.hostile")
gone=0
for p in $all_children; do fault_alive "$p" || gone=$((gone + 1)); done
crashes=$(tail -c +"$((mark + 1))" "$F_DIR/logs/error.log" | grep -cE 'Segmentation fault|exit signal|double free|corrupted')
row after "after all hostile input: descriptors of each child vs. the churn's baseline, counts, crashes" "$nkids children" \
    "leaked: ${fd_list:-none}; streams counted: $(fault_open_streams); $gone children died; $crashes crash lines" \
    "$( [ "${fd_max:-1}" -le 0 ] && [ "$zero" = 1 ] && [ "$gone" = 0 ] && [ "$crashes" = 0 ] && echo 1 || echo 0)"

# one child frozen: does a publish hang, and what does it answer?
echo "fault: frozen child" >&2
perl "$F_SRC/frozen.pl" --port "$port" --ppid "$F_PPID" --relay "$(fault_relay)" --out "$res" || failed=1

# the relay stalls right after epoll_wait handed it a publish
echo "fault: stalled relay" >&2
stalled=$(bash "$F_SRC/stalled_relay.sh" "$port" "$(fault_relay)")
row "stalled relay" "a publish the relay took from epoll_wait just before it stalled for 7 s (gdb at the syscall's return; the worker waits 5 s)" \
    1 "${stalled%$'\t'*}" "${stalled##*$'\t'}"

# a broker cannot deliver an event the relay has answered for
echo "fault: out of memory in a fan-out" >&2
oom=$(bash "$F_SRC/lost_event.sh" "$port" fanout-oom)
row "fan-out out of memory" "a child's broker cannot allocate an event for a fan-out (gdb makes lap_add fail once); the stream must end and resume with Last-Event-ID" \
    1 "${oom%$'\t'*}" "${oom##*$'\t'}"
echo "fault: a broker's relay connection lost" >&2
gap=$(bash "$F_SRC/lost_event.sh" "$port" relay-lost)
row "relay connection lost" "a child's broker loses its relay connection, and an event with it, while the relay lives on (gdb sets the broker's relay.lost); the stream must end and resume with Last-Event-ID" \
    1 "${gap%$'\t'*}" "${gap##*$'\t'}"

# capacity: the whole SSEMaxSubscribers is still there, then stop
echo "fault: $streams streams, then stop" >&2
watch=$(echo $(fault_children) $(fault_relay) | tr ' ' ',')
timeout 120 "$bin" hold -p "$port" -n "$((streams + 1))" --path '/stream?channel=hold' \
    --stop "$F_PPID" --watch "$watch" >"$F_OUT/hold.out"
admitted=$(kv "$F_OUT/hold.out" status_200)
refused=$(kv "$F_OUT/hold.out" status_503)
row capacity "SSEMaxSubscribers $streams after churn and hostile input: open $((streams + 1)) streams" "$((streams + 1))" \
    "${admitted:-0} admitted, ${refused:-0} refused with 503" \
    "$( [ "${admitted:-0}" = "$streams" ] && [ "${refused:-0}" = 1 ] && echo 1 || echo 0)"
t_all=$(kv "$F_OUT/hold.out" all_processes_exit_secs)
t_eof=$(kv "$F_OUT/hold.out" all_streams_ended_secs)
row stop "stop (SIGTERM to the parent) with ${admitted:-0} streams open" 1 \
    "every stream ended after ${t_eof} s; parent, children and relay gone after ${t_all} s" \
    "$(awk -v t="$t_all" -v e="$t_eof" 'BEGIN { print (t >= 0 && t <= 5 && e >= 0) ? 1 : 0 }')"
left=$(ls "$F_DIR"/run/sse-relay.*.sock 2>/dev/null | wc -l)
row stop "the relay socket file is removed when httpd stops (runtime dir owned by root, as /var/run/apache2 is)" 1 \
    "$left socket files left in the runtime dir" "$( [ "$left" = 0 ] && echo 1 || echo 0)"
fault_stop

# --- 2. clients that close before the answer: their own server --------------------
echo "fault: early-close churn ($early cycles)" >&2
fault_setup early "$port" "$streams"
fault_start || exit 2
kids=$(fault_children)
timeout 700 "$bin" churn -p "$port" -c 200 -T 600 --mix early=1 -n "$early" >"$F_OUT/churn.early" 2>/dev/null
sleep 2
gone=0
for p in $kids; do fault_alive "$p" || gone=$((gone + 1)); done
crashes=$(fault_crashes | grep -c 'exit signal')
ebadf=$(grep -c SSE00102 "$F_DIR/logs/error.log")
row churn "clients that send a stream request and close at once, before the answer (while events are published)" "$early" \
    "$gone of $(echo $kids | wc -w) original children died; $crashes children exited on a signal; $ebadf 'SSE00102 cannot watch stream socket' errors" \
    "$( [ "$crashes" = 0 ] && [ "$ebadf" = 0 ] && echo 1 || echo 0)"
# this server stops as pkill or Ctrl-C in a terminal stop it: SIGTERM to
# the parent, its children and the relay at once
ppid=$F_PPID
kill -TERM "$ppid" $(ps --ppid "$ppid" -o pid=) 2>/dev/null
for i in $(seq 1 200); do fault_alive "$ppid" || break; sleep 0.1; done
left=$(ls "$F_DIR"/run/sse-relay.*.sock 2>/dev/null | wc -l)
row stop "SIGTERM to the parent, the children and the relay at once (pkill, Ctrl-C): the relay socket file is removed" 1 \
    "$left socket files left in the runtime dir" "$( [ "$left" = 0 ] && echo 1 || echo 0)"
fault_stop

# --- 3. graceful restart under load ---------------------------------------------
echo "fault: graceful restart with $streams streams" >&2
fault_setup graceful "$port" "$((streams * 2 + 100))"
fault_start || exit 2
old=$(fault_children)
relay=$(fault_relay)
pfd=$(fault_fds "$F_PPID")
timeout 200 "$bin" graceful -p "$port" -n "$streams" --ppid "$F_PPID" --run 12 --pub-ms 20 >"$F_OUT/graceful.out"
left=0
for i in $(seq 1 100); do
    left=0
    for p in $old; do fault_alive "$p" && left=$((left + 1)); done
    [ "$left" = 0 ] && break
    sleep 0.1
done
pfd2=$(fault_fds "$F_PPID")
crashes=$(fault_crashes | wc -l)
g() { kv "$F_OUT/graceful.out" "$1"; }
row graceful "graceful restart (SIGUSR1) with $streams streams and an event every 20 ms; every client reconnects with Last-Event-ID" "$streams" \
    "lost $(g lost), duplicated $(g duplicated) of $(g last_seq) events; $(g reconnects) reconnects, all back after $(g all_reconnected_secs) s; history-lost notices $(g history_lost_notices)" \
    "$( [ "$(g lost)" = 0 ] && [ "$(g duplicated)" = 0 ] && [ "$(g streams_without_events)" = 0 ] && echo 1 || echo 0)"
row graceful "publishing during the restart" "$(g pub_total)" \
    "$(g pub_200) answered 200, $(g pub_503) 503, $(g pub_other) other, $(g pub_timeout) timed out; slowest $(g pub_max_secs) s" \
    "$( [ "$(g pub_other)" = 0 ] && [ "$(g pub_timeout)" = 0 ] && [ "$(g pub_connfail)" = 0 ] && echo 1 || echo 0)"
row graceful "old children exit, relay kept, parent descriptors, crashes" 1 \
    "$left of $(echo $old | wc -w) old children left; relay $( [ "$(fault_relay)" = "$relay" ] && echo kept || echo replaced); parent descriptors $pfd -> $pfd2; $crashes crash lines" \
    "$( [ "$left" = 0 ] && [ "$(fault_relay)" = "$relay" ] && [ "$pfd" = "$pfd2" ] && [ "$crashes" = 0 ] && echo 1 || echo 0)"
fault_stop

# --- 3b. one hostile client against everyone else (SSEMaxStreamsPerClient) ----
# Normal clients on addresses of their own hold a stream each on /capped
# (SSEMaxStreamsPerClient 10); events go out every 20 ms, first alone
# (the baseline), then while one address tries $h_attack streams there:
# first at $h_rate a second, then as fast as the server answers (which
# costs CPU whatever the cap: the second run's latency is reported, not
# judged).
fault_setup hostile "$port" "$((h_normal + 1000))"
fault_start || exit 2
for run in paced flood; do
    rate=$h_rate
    [ "$run" = flood ] && rate=0
    echo "fault: one address tries $h_attack streams ($run) beside $h_normal normal clients" >&2
    timeout 900 "$bin" hostile -p "$port" -n "$h_normal" --attack "$h_attack" --attack-rate "$rate" \
        -c 200 --events 50 --pub-ms 20 >"$F_OUT/hostile.$run.out"
    h() { kv "$F_OUT/hostile.$run.out" "$1"; }
    how="at most $rate a second"
    [ "$run" = flood ] && how="as fast as the server answers"
    hlog=$(grep -c 'SSE00603' "$F_DIR/logs/error.log")
    crashes=$(fault_crashes | wc -l)
    row "hostile client" "one address (127.2.0.1) tries $h_attack streams ($how, 200 at a time) on a location with SSEMaxStreamsPerClient 10, while $h_normal clients on $h_normal other addresses hold one each" "$h_attack" \
        "$(h attack_200) admitted ($(h attack_held_at_end) still open at the end), $(h attack_429) refused with 429, $(h attack_503) 503, $(h attack_other) other, all tried in $(h attack_secs) s; $hlog SSE00603 log lines so far; $(h normal_open) of $h_normal normal clients open, $(h normal_ended) ended; $crashes crash lines" \
        "$( [ "$(h attack_200)" = 10 ] && [ "$(h attack_held_at_end)" = 10 ] && [ "$(h attack_429)" = $((h_attack - 10)) ] \
            && [ "$(h normal_open)" = "$h_normal" ] && [ "$(h normal_ended)" = 0 ] && [ "$hlog" -ge 1 ] && [ "$hlog" -le 2 ] \
            && [ "$crashes" = 0 ] && echo 1 || echo 0)"
    judge=1
    limit="p99 during the attack at most twice the baseline's, or the baseline's + 20 ms"
    [ "$run" = flood ] && { judge=0; limit="latency reported, not judged"; }
    row "hostile client" "the $h_normal normal clients receive every event before and during that attack (an event every 20 ms; latency from the publish request to the client's read; $limit)" \
        "$(( $(h events_before) + $(h events_during) ))" \
        "before: $(h events_before) events, lost $(h lost_before), p50 $(h p50_before_ms) ms, p99 $(h p99_before_ms) ms, max $(h max_before_ms) ms; during: $(h events_during) events, lost $(h lost_during), p50 $(h p50_during_ms) ms, p99 $(h p99_during_ms) ms, max $(h max_during_ms) ms" \
        "$(awk -v lb="$(h lost_before)" -v ld="$(h lost_during)" -v b="$(h p99_before_ms)" -v d="$(h p99_during_ms)" \
            -v eb="$(h events_before)" -v ed="$(h events_during)" -v judge="$judge" \
            'BEGIN { lim = 2 * b; if (b + 20 > lim) lim = b + 20;
                     print (lb == 0 && ld == 0 && eb > 0 && ed > 0 && (!judge || (d >= 0 && d <= lim))) ? 1 : 0 }')"
done
fault_stop

fi   # FAULT_TLS_ONLY

# --- 4. TLS: suspended streams (event MPM, mod_ssl, SSESuspend on) -------------
# Each TLS stream's handler returns SUSPENDED; a watcher thread watches its
# socket and an MPM worker writes its events through mod_ssl.  Ending one
# must give everything back: the connection's pool, its SSL object and
# descriptor, its place in the event MPM's counts.
if [ "$tls_skip" != 1 ]; then
tport=$((port + 1))
targs=(-p "$tport" --pub-port "$port")
echo "fault: TLS (event MPM, SSESuspend on): $tls_cycles churn cycles, $tls_fanout streams fan-out, $tls_streams for graceful and stop" >&2
fault_setup tls "$port" 10000 httpd-fault-tls.conf.in || exit 2
fault_start || exit 2
tls_t0=$SECONDS
all_children=$(fault_children | tr '\n' ' ')
nkids=$(echo $all_children | wc -w)
suspended=$(grep -c 'SSE00306: event streams over TLS (HTTP/1.1) are suspended' "$F_DIR/logs/error.log")
# crash lines in the error log after byte offset MARK
crashes_since() {
    tail -c +"$(($1 + 1))" "$F_DIR/logs/error.log" \
        | grep -cE 'Segmentation fault|exit signal|AH00052|AH00060|double free|corrupted|Aborted|AddressSanitizer'
}
logmark() { stat -c %s "$F_DIR/logs/error.log"; }
# fault_status_field ConnsTotal until it reads 0; prints the seconds it took, or -1
conns_settle() {
    local t0 t v
    t0=$(date +%s.%N)
    while :; do
        v=$(fault_status_field ConnsTotal)
        t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        [ "$v" = 0 ] && { echo "$t"; return 0; }
        awk -v t="$t" -v m="$1" 'BEGIN { exit !(t > m) }' && { echo -1; return 1; }
        sleep 0.2
    done
}
tchurn=(tls-churn "${targs[@]}" -c "$tls_conc" --chans 8 --pub-ms 20 --pub-size 512 -T 900)

# (a) churn.  Warm-up first (a fifth of the cycles, at least 1,000): every
# worker thread's pools, its relay connection and mod_ssl's caches exist
# before the baseline is taken.
mark=$(logmark)
warm=$((tls_cycles / 5))
[ "$warm" -lt 1000 ] && warm=1000
timeout 900 "$bin" "${tchurn[@]}" -n "$warm" >"$F_OUT/tls-churn.warm" 2>/dev/null
fault_wait_streams 0 10
conns_settle 10 >/dev/null
snap "$F_OUT/tls-snap.base"
half=$((tls_cycles / 2))
t0=$SECONDS
timeout 900 "$bin" "${tchurn[@]}" -n "$half" >"$F_OUT/tls-churn.1" || true
fault_wait_streams 0 10
conns_settle 10 >/dev/null
snap "$F_OUT/tls-snap.mid"
timeout 900 "$bin" "${tchurn[@]}" -n "$((tls_cycles - half))" >"$F_OUT/tls-churn.2" || true
tls_churn_secs=$((SECONDS - t0))
zero=$(ok fault_wait_streams 0 10)
# ConnsTotal is, as we read the event MPM, each child listener thread's
# last sample of its count, taken when that thread wakes; suspended
# streams written by the watcher wake it less often, so the sample may lag
# by many seconds (the count itself, which the MPM acts on, is exact: the
# graceful row shows it)
settle=$(conns_settle 30)
snap "$F_OUT/tls-snap.end"
tsum() { echo $(( $(kv "$F_OUT/tls-churn.1" "$1") + $(kv "$F_OUT/tls-churn.2" "$1") )); }
done_c=$(( $(tsum close_notify) + $(tsum fin) + $(tsum rst) ))
errors=$(tsum errors)
pub_bad=$(( $(tsum pub_total) - $(tsum pub_200) ))
row "tls churn" "open/close cycles of TLS streams (suspended: $suspended start-up line says so), $tls_conc at once, each read to ': ok' and held 0-30 ms ($(tsum at_once) closed at once after it; $(tsum early) closed as soon as their request was sent): closed with close_notify $(tsum close_notify), abruptly with a FIN $(tsum fin), with a RST $(tsum rst); events published on their 8 channels every 20 ms" \
    "$tls_cycles" "$done_c done in ${tls_churn_secs} s, $errors failed (TLS $(tsum err_tls), status $(tsum err_status), ended by the server $(tsum err_eof), timed out $(tsum err_timeout)); $(tsum pub_total) publishes, $pub_bad not 200" \
    "$( [ "$done_c" = "$tls_cycles" ] && [ "$errors" = 0 ] && [ "$pub_bad" = 0 ] && [ "$suspended" = 1 ] && echo 1 || echo 0)"
row "tls churn" "streams counted (GET /pub) and the event MPM's connections (mod_status ConnsTotal) after the churn" 1 \
    "streams $(fault_open_streams); ConnsTotal $( [ "$settle" = -1 ] && echo "not 0 after 30 s ($(fault_status_field ConnsTotal))" || echo "0 after $settle s")" \
    "$( [ "$zero" = 1 ] && [ "$settle" != -1 ] && echo 1 || echo 0)"
compare "$F_OUT/tls-snap.base" "$F_OUT/tls-snap.end" >"$F_OUT/tls-delta.end"
compare "$F_OUT/tls-snap.mid" "$F_OUT/tls-snap.end" >"$F_OUT/tls-delta.half"
relay=$(fault_relay)
gone=0
for p in $all_children; do fault_alive "$p" || gone=$((gone + 1)); done
# compared: the children in both snapshots (a child that died and was
# replaced is not; the crash row counts it, and then this one fails too)
ncmp=$(awk -v r="$relay" '$1 != r && $1 != "parent"' "$F_OUT/tls-delta.end" | wc -l)
fd_list=$(awk -v r="$relay" '$1 != r && $1 != "parent" { printf "%+d ", $2 }' "$F_OUT/tls-delta.end")
fd_max=$(awk -v r="$relay" 'BEGIN { m = 0 } $1 != r && $1 != "parent" && $2 > m { m = $2 } END { print m }' "$F_OUT/tls-delta.end")
fd_base=$(awk -v r="$relay" '$1 != r && $1 != "parent" { print $2; exit }' "$F_OUT/tls-snap.base")
unix_max=$(awk -v r="$relay" 'BEGIN { m = 0 } $1 != r && $1 != "parent" && $4 > m { m = $4 } END { print m }' "$F_OUT/tls-snap.end")
row "tls churn" "open descriptors of each child after the churn vs. before (baseline after a ${warm}-cycle warm-up; a suspended stream holds its TLS socket and a socketpair)" \
    "$nkids children" "leaked: ${fd_list:-none} (baseline $fd_base each; unix-domain sockets at most $unix_max per child: the worker threads' relay connections and the broker's); $ncmp of $nkids children alive in both snapshots" \
    "$( [ "${fd_max:-1}" -le 0 ] && [ "$ncmp" = "$nkids" ] && [ "$unix_max" -le 26 ] && echo 1 || echo 0)"
rss_list=$(awk -v r="$relay" '$1 != r && $1 != "parent" { printf "%+d ", $3 }' "$F_OUT/tls-delta.end")
rss_max=$(awk -v r="$relay" 'BEGIN { m = -1e9 } $1 != r && $1 != "parent" && $3 > m { m = $3 } END { print m }' "$F_OUT/tls-delta.end")
rss_half=$(awk -v r="$relay" 'BEGIN { m = -1e9 } $1 != r && $1 != "parent" && $3 > m { m = $3 } END { print m }' "$F_OUT/tls-delta.half")
rss_base=$(awk -v r="$relay" '$1 != r && $1 != "parent" { s += $3; n++ } END { printf "%d", n ? s / n : 0 }' "$F_OUT/tls-snap.base")
row "tls churn" "RSS of each child after the churn vs. baseline (margins: $tls_rss_margin KiB in all, $tls_rss_growth KiB over the second half)" "$nkids children" \
    "delta KiB: ${rss_list:-?}(baseline about $rss_base KiB); second half of the run: $(printf '%+d' "$rss_half") KiB at most; $ncmp of $nkids children alive in both snapshots" \
    "$( [ "${rss_max:-999999}" -le "$tls_rss_margin" ] && [ "${rss_half:-999999}" -le "$tls_rss_growth" ] && [ "$ncmp" = "$nkids" ] && echo 1 || echo 0)"
crashes=$(crashes_since "$mark")
row "tls churn" "crashes during the TLS churn (warm-up included)" 1 "$gone of $nkids children died; $crashes crash lines in the error log" \
    "$( [ "$gone" = 0 ] && [ "$crashes" = 0 ] && echo 1 || echo 0)"

# (b) fan-out: more TLS streams than threads, every event byte for byte
echo "fault: TLS fan-out, $tls_fanout streams ($((SECONDS - tls_t0)) s)" >&2
mark=$(logmark)
timeout 600 "$bin" tls-fanout "${targs[@]}" -c 200 -n "$tls_fanout" --events "$tls_events" \
    --event-size 1000 --pub-ms 50 >"$F_OUT/tls-fanout.out"
fo() { kv "$F_OUT/tls-fanout.out" "$1"; }
zero=$(ok fault_wait_streams 0 10)
crashes=$(crashes_since "$mark")
row "tls fan-out" "$tls_fanout TLS streams (suspended; 100 worker threads in all) on one channel, $tls_events events of 1000 bytes published 50 ms apart; each stream's bytes compared with the expected text" "$tls_fanout" \
    "$(fo open) open in $(fo open_secs) s; $(fo published_200) of $tls_events publishes 200, each counting $(fo subscribers_min)-$(fo subscribers_max) streams; $(fo exact) streams got every byte ($(fo expected_bytes)), $(fo short) short, $(fo wrong) different, $(fo ended_early) ended early; all delivered $(fo deliver_secs) s after the first publish; busy workers at most $(fo busy_max_opening) of 100 while the streams opened, $(fo busy_max_events) while the events went out (mod_status every 20 ms); streams counted after they closed: $(fault_open_streams); $crashes crash lines" \
    "$( [ "$(fo open)" = "$tls_fanout" ] && [ "$(fo exact)" = "$tls_fanout" ] && [ "$(fo published_200)" = "$tls_events" ] \
        && [ "$(fo subscribers_min)" = "$tls_fanout" ] && [ "$zero" = 1 ] && [ "$crashes" = 0 ] && echo 1 || echo 0)"

# (e) slow readers: dropped by SSEMaxBacklog, no worker thread pinned
echo "fault: TLS slow readers ($((SECONDS - tls_t0)) s)" >&2
mark=$(logmark)
timeout 120 "$bin" tls-slow "${targs[@]}" -n "$tls_slow" --rcvbuf 4096 --run 20 \
    --vanish-pub 32768/10 >"$F_OUT/tls-slow.out"
sl() { kv "$F_OUT/tls-slow.out" "$1"; }
zero=$(ok fault_wait_streams 0 10)
crashes=$(crashes_since "$mark")
backlog=$(tail -c +"$((mark + 1))" "$F_DIR/logs/error.log" | grep -c 'reason=slow client')
row "tls slow readers" "$tls_slow TLS clients that read ': ok' and then nothing (4 KiB receive buffer), on a channel with 32 KiB events every 10 ms (SSEMaxBacklog 64 KiB); BusyWorkers from mod_status every 0.1 s" "$tls_slow" \
    "$(sl open) open; all dropped $(sl dropped_all_secs) s after the events started ($backlog 'slow client' log lines); busy workers at most $(sl busy_max) of 100 ($(sl status_samples) samples, slowest status answer $(sl status_max_secs) s, $(sl status_failed) failed); streams counted after: $(fault_open_streams); $crashes crash lines" \
    "$( [ "$(sl open)" = "$tls_slow" ] && awk -v t="$(sl dropped_all_secs)" 'BEGIN { exit !(t >= 0) }' \
        && [ "$backlog" = "$tls_slow" ] && [ "$(sl busy_max)" -ge 1 ] && [ "$(sl busy_max)" -le "$tls_busy_max" ] \
        && [ "$(sl status_failed)" = 0 ] && [ "$zero" = 1 ] && [ "$crashes" = 0 ] && echo 1 || echo 0)"

# (c) graceful restart with TLS streams: they end, the old children exit,
# the new generation serves
echo "fault: TLS graceful restart with $tls_streams streams ($((SECONDS - tls_t0)) s)" >&2
mark=$(logmark)
old=$(fault_children)
timeout 300 "$bin" tls-hold "${targs[@]}" -c 200 -n "$tls_streams" --graceful "$F_PPID" \
    --watch "$(echo $old | tr ' ' ',')" >"$F_OUT/tls-graceful.out"
gr() { kv "$F_OUT/tls-graceful.out" "$1"; }
sleep 1
new=$(fault_children)
renewed=0
for p in $new; do echo " $old " | grep -q " $p " || renewed=$((renewed + 1)); done
crashes=$(crashes_since "$mark")
row "tls graceful" "graceful restart (SIGUSR1) with $tls_streams TLS streams open" "$tls_streams" \
    "$(gr open) open; every stream ended after $(gr all_streams_ended_secs) s ($(gr server_close_notify) with a close_notify); the $(echo $old | wc -w) old children gone after $(gr old_children_exit_secs) s; a new TLS stream served after $(gr new_stream_secs) s; $renewed new children; $crashes crash lines" \
    "$( [ "$(gr open)" = "$tls_streams" ] && [ "$renewed" -ge 1 ] && [ "$crashes" = 0 ] \
        && awk -v e="$(gr all_streams_ended_secs)" -v o="$(gr old_children_exit_secs)" -v n="$(gr new_stream_secs)" -v m="$tls_restart_secs" \
               'BEGIN { exit !(e >= 0 && e <= m && o >= 0 && o <= m && n >= 0 && n <= m) }' && echo 1 || echo 0)"

# (d) stop with TLS streams
echo "fault: TLS stop with $tls_streams streams ($((SECONDS - tls_t0)) s)" >&2
mark=$(logmark)
watch=$(echo $(fault_children) $(fault_relay) | tr ' ' ',')
timeout 300 "$bin" tls-hold "${targs[@]}" -c 200 -n "$tls_streams" --stop "$F_PPID" \
    --watch "$watch" >"$F_OUT/tls-stop.out"
st() { kv "$F_OUT/tls-stop.out" "$1"; }
crashes=$(crashes_since "$mark")
row "tls stop" "stop (SIGTERM to the parent) with $tls_streams TLS streams open" 1 \
    "$(st open) open; every stream ended after $(st all_streams_ended_secs) s ($(st server_close_notify) with a close_notify); parent, children and relay gone after $(st all_processes_exit_secs) s; $crashes crash lines" \
    "$( [ "$(st open)" = "$tls_streams" ] && [ "$crashes" = 0 ] \
        && awk -v e="$(st all_streams_ended_secs)" -v a="$(st all_processes_exit_secs)" 'BEGIN { exit !(e >= 0 && a >= 0 && a <= 5) }' && echo 1 || echo 0)"
fault_stop
echo "tls_secs=$((SECONDS - tls_t0))" >>"$meta"
fi   # tls_skip

echo "secs=$((SECONDS - t_start))" >>"$meta"
echo
echo "fault: results in $res"
awk -F '\t' '{ printf "%-4s %-12s %s\n", $5, $1, $4 }' "$res"
exit "$failed"
