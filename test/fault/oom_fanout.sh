#!/usr/bin/env bash
# test/fault/oom_fanout.sh: a child's broker runs out of memory as it takes
# an event into a fan-out (gdb makes lap_add() fail once, as a failed
# malloc would).  That child's streams on the channel cannot get the
# event; README promises that nothing is lost, so they must end, and a
# client that reconnects with Last-Event-ID must get the event from the
# relay's history, then the next one.  (A broker that went on without it
# left the stream open and the event missing.)  Prints what it measured, a
# tab, and 1 when the check passed (0 otherwise); run.sh makes it a row.
#
#   bash oom_fanout.sh PORT
set -u
port=$1
base=http://127.0.0.1:$port
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

emit() {  # emit RESULT OK
    printf '%s\t%s\n' "$1" "$2"
}
if ! command -v gdb >/dev/null; then
    emit "not run: gdb is missing (make test-fault installs it as root)" 0
    exit 1
fi

chan=oom$$
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

# the next lap_add() in that child fails: out of memory
gdb -p "$child" -batch -ex 'set confirm off' -ex 'break lap_add' \
    -ex 'shell touch '"$tmp"'/attached' -ex continue \
    -ex 'return (int)-1' -ex 'shell touch '"$tmp"'/failed' -ex detach \
    >"$tmp/gdb.log" 2>&1 &
gdb_pid=$!
for _ in $(seq 100); do [ -e "$tmp/attached" ] && break; sleep 0.1; done
if [ ! -e "$tmp/attached" ]; then
    wait $gdb_pid
    emit "not run: gdb could not attach to child $child ($(grep -m1 -i 'ptrace\|denied\|symbol' "$tmp/gdb.log"))" 0
    exit 1
fi
sleep 0.5
lost=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/pub?channel=$chan" --data-urlencode data=lost)
wait $gdb_pid
ended=no
for _ in $(seq 50); do kill -0 $stream_pid 2>/dev/null || { ended=yes; break; }; sleep 0.1; done

# the client reconnects, as EventSource does, with the last id it had
curl -sN -H "Last-Event-ID: $id0" "$base/stream?channel=$chan" >"$tmp/resumed" &
for _ in $(seq 50); do grep -q '^: ok' "$tmp/resumed" && break; sleep 0.1; done
next=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/pub?channel=$chan" --data-urlencode data=next)
for _ in $(seq 30); do grep -q '^data: next' "$tmp/resumed" && break; sleep 0.1; done

failed=$([ -e "$tmp/failed" ] && echo yes || echo no)
in_first=$(grep -c '^data: lost' "$tmp/stream")
resumed=$(grep '^data: ' "$tmp/resumed" | tr '\n' ' ')
ok=0
[ "$failed" = yes ] && [ "$lost" = 200 ] && [ "$ended" = yes ] && [ "$in_first" = 0 ] \
    && [ "$resumed" = "data: lost data: next " ] && [ "$next" = 200 ] && ok=1
emit "lap_add failed in child $child: $failed; the publish: $lost; the stream ended: $ended; resumed with Last-Event-ID it got: ${resumed:-nothing}" $ok
[ $ok = 1 ]
