#!/usr/bin/env bash
# test/fault/stalled_relay.sh: the relay takes a publish from epoll_wait and
# stalls right there (gdb holds it at the syscall's return, as SIGSTOP or
# swap could) for longer than a worker waits for it (5 s).  The worker
# answers 503; docs/how-it-works.md promises that a refused publish published nothing, so
# when the relay runs again the event must not reach the stream, and the
# next one must.  A relay that trusted epoll's "readable" without looking
# for the hang-up again published it (seen once in about 20 runs of t/41
# under ASan; here every time); today the relay refuses a request by its
# age (sent 3 s ago or more).  Prints what it measured, a tab, and 1
# when the check passed (0 otherwise); run.sh makes it a row.
#
#   bash stalled_relay.sh PORT RELAYPID
set -u
port=$1 relay=$2
base=http://127.0.0.1:$port
. "$(dirname "$0")/gdb_check.sh"
gdb_require "$relay" "the relay"

# every worker thread keeps its own relay connection: open them all first,
# so the publish below comes on a connection the relay already watches
seq 400 | xargs -P 100 -I{} curl -s -o /dev/null -X POST "$base/pub?channel=warm$$" --data-urlencode data={}

chan=stalled$$
curl -sN "$base/stream?channel=$chan" >"$tmp/stream" &
for _ in $(seq 50); do grep -q '^: ok' "$tmp/stream" && break; sleep 0.1; done

# hold the relay at the first epoll_wait that returns an event
gdb -p "$relay" -batch -ex 'catch syscall epoll_wait' -ex 'condition 1 $rax > 0' \
    -ex 'shell touch '"$tmp"'/attached' -ex continue \
    -ex 'shell date +%s.%N >'"$tmp"'/caught' -ex 'shell sleep 7' -ex detach \
    >"$tmp/gdb.log" 2>&1 &
gdb_pid=$!
for _ in $(seq 100); do [ -e "$tmp/attached" ] && break; sleep 0.1; done
if [ ! -e "$tmp/attached" ]; then
    wait $gdb_pid
    gdb_skip_if_denied "$tmp/gdb.log" "$relay" "the relay"
    emit "not run: gdb could not attach to the relay ($(grep -m1 -i 'ptrace\|denied' "$tmp/gdb.log"))" 0
    exit 1
fi
sleep 0.5
t0=$(date +%s.%N)
refused=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST "$base/pub?channel=$chan" --data-urlencode data=refused)
wait $gdb_pid
# (gdb runs the commands after a failed attach too)
gdb_skip_if_denied "$tmp/gdb.log" "$relay" "the relay"
sleep 1
next=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/pub?channel=$chan" --data-urlencode data=next)
for _ in $(seq 30); do grep -q '^data: next' "$tmp/stream" && break; sleep 0.1; done

caught=$(cat "$tmp/caught" 2>/dev/null || echo 0)
# the relay was idle: what it caught after the publish began was the publish
took=$(awk -v a="$caught" -v b="$t0" 'BEGIN { print (a >= b) ? "yes" : "no (it caught another event first)" }')
got_refused=$(grep -c '^data: refused' "$tmp/stream")
got_next=$(grep -c '^data: next' "$tmp/stream")
ok=0
[ "${refused%% *}" = 503 ] && [ "$got_refused" = 0 ] && [ "$got_next" = 1 ] && [ "$next" = 200 ] && ok=1
emit "publish answered ${refused% *} after ${refused#* } s; the relay held right after taking it: $took; the refused event reached the stream: $([ "$got_refused" = 0 ] && echo no || echo YES); the next publish: $next, received: $([ "$got_next" = 1 ] && echo yes || echo NO)" $ok
[ $ok = 1 ]
