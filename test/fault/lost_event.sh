#!/usr/bin/env bash
# test/fault/lost_event.sh: a child's broker cannot deliver an event the
# relay sent it, and the relay has answered the publish already.  docs/resuming.md
# promises that nothing is lost: the child's streams must end, and a client
# that reconnects with Last-Event-ID must get the event from the relay's
# history, then the next one.  (A broker that went on left the stream open
# and the event missing.)  gdb holds the child while the event comes, then:
#
#   fanout-oom   lap_add() fails once, as a failed malloc would, when the
#                event is taken into a fan-out;
#   relay-lost   the broker's relay.lost is set, as running out of memory
#                for the bytes it read does: it drops the connection with
#                the event unread, and is back on the same relay.
#
# gdb only stops, returns and writes memory here: calling a function in the
# process fails on some machines.  Prints what it measured, a tab, and 1
# when the check passed (0 otherwise); run.sh makes it a row.
#
#   bash lost_event.sh PORT fanout-oom|relay-lost
set -u
port=$1 mode=$2
base=http://127.0.0.1:$port
. "$(dirname "$0")/gdb_check.sh"

chan=lost$$
curl -sN "$base/stream?channel=$chan" >"$tmp/stream" &
stream_pid=$!
for _ in $(seq 50); do grep -q '^: ok' "$tmp/stream" && break; sleep 0.1; done
first=$(curl -s -X POST "$base/pub?channel=$chan" --data-urlencode data=first)
id0=$(printf '%s' "$first" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
for _ in $(seq 30); do grep -q '^data: first' "$tmp/stream" && break; sleep 0.1; done
child=$(curl -s "$base/pub?channel=$chan" | grep -o '"pid":[0-9]*' | head -1 | cut -d: -f2)
if [ -z "$id0" ] || [ -z "$child" ] || ! grep -q '^data: first' "$tmp/stream"; then
    emit "not run: the stream did not start (id '$id0', child '$child')" 0
    exit 1
fi
gdb_require "$child" "child $child"

publish="curl -s -X POST '$base/pub?channel=$chan' --data-urlencode data=lost >$tmp/lost"
case $mode in
fanout-oom)
    how=(-ex 'set confirm off' -ex 'break lap_add' -ex "shell $publish" -ex continue
         -ex 'return (int)-1' -ex 'print 12345')
    what="lap_add made to fail in child $child" ;;
relay-lost)
    how=(-ex 'set var B.relay.lost = B.s->server_hostname' -ex "shell $publish"
         -ex 'print 12345')
    what="child $child's relay connection marked lost" ;;
*)
    emit "not run: unknown mode $mode" 0
    exit 1 ;;
esac
gdb -p "$child" -batch "${how[@]}" -ex detach >"$tmp/gdb.log" 2>&1
lost=$(cat "$tmp/lost" 2>/dev/null)
if ! grep -q '= 12345$' "$tmp/gdb.log" || [ -z "$lost" ] \
   || grep -qi 'ptrace\|denied\|no symbol\|no member\|cannot\|can not' "$tmp/gdb.log"; then
    gdb_skip_if_denied "$tmp/gdb.log" "$child" "child $child"
    emit "not run: $mode with gdb: $(grep -m1 -i 'ptrace\|denied\|symbol\|member\|cannot\|can not' "$tmp/gdb.log")" 0
    exit 1
fi
ended=no
for _ in $(seq 50); do kill -0 $stream_pid 2>/dev/null || { ended=yes; break; }; sleep 0.1; done

# the client reconnects, as EventSource does, with the last id it had
curl -sN -H "Last-Event-ID: $id0" "$base/stream?channel=$chan" >"$tmp/resumed" &
for _ in $(seq 50); do grep -q '^: ok' "$tmp/resumed" && break; sleep 0.1; done
next=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/pub?channel=$chan" --data-urlencode data=next)
for _ in $(seq 30); do grep -q '^data: next' "$tmp/resumed" && break; sleep 0.1; done

subs=$(printf '%s' "$lost" | sed -n 's/.*"subscribers":\([0-9]*\).*/\1/p')
in_first=$(grep -c '^data: lost' "$tmp/stream")
resumed=$(grep '^data: ' "$tmp/resumed" | tr '\n' ' ')
ok=0
[ "${subs:-0}" -ge 1 ] && [ "$ended" = yes ] && [ "$in_first" = 0 ] \
    && [ "$resumed" = "data: lost data: next " ] && [ "$next" = 200 ] && ok=1
emit "$what; the event was counted for ${subs:-?} stream(s); the stream ended: $ended; resumed with Last-Event-ID it got: ${resumed:-nothing}" $ok
[ $ok = 1 ]
