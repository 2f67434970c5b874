#!/usr/bin/env bash
# test/fault/relay_gap.sh: a child's broker loses its relay connection
# while the relay lives on, and with it an event the relay had sent (gdb
# sets the broker's relay_lost, as running out of memory for the bytes
# read does, while the event comes).  README promises that nothing is
# lost, so the streams must end once the broker is back on the same relay,
# and a client that reconnects with Last-Event-ID must get the event from
# the history, then the next one.  (gdb only writes memory here: calling a
# function in the process fails on some machines.)
# (A broker that just reconnected left the stream open and the event
# missing.)  Prints what it measured, a tab, and 1 when the check passed
# (0 otherwise); run.sh makes it a row.
#
#   bash relay_gap.sh PORT
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

chan=gap$$
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

# while the child is held: its relay connection is marked lost (any string
# will do as the reason), and an event comes
gdb -p "$child" -batch -ex 'set var B.relay_lost = B.s->server_hostname' \
    -ex 'print B.relay_lost' \
    -ex "shell curl -s -X POST '$base/pub?channel=$chan' --data-urlencode data=gap >$tmp/gap" \
    -ex detach >"$tmp/gdb.log" 2>&1
gap=$(cat "$tmp/gap" 2>/dev/null)
if ! grep -q '^\$1 = 0x' "$tmp/gdb.log" || [ -z "$gap" ]; then
    emit "not run: gdb could not mark the broker's relay connection lost ($(grep -m1 -i 'ptrace\|denied\|symbol\|error' "$tmp/gdb.log"))" 0
    exit 1
fi
ended=no
for _ in $(seq 50); do kill -0 $stream_pid 2>/dev/null || { ended=yes; break; }; sleep 0.1; done

# the client reconnects, as EventSource does, with the last id it had
curl -sN -H "Last-Event-ID: $id0" "$base/stream?channel=$chan" >"$tmp/resumed" &
for _ in $(seq 50); do grep -q '^: ok' "$tmp/resumed" && break; sleep 0.1; done
next=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/pub?channel=$chan" --data-urlencode data=next)
for _ in $(seq 30); do grep -q '^data: next' "$tmp/resumed" && break; sleep 0.1; done

subs=$(printf '%s' "$gap" | sed -n 's/.*"subscribers":\([0-9]*\).*/\1/p')
in_first=$(grep -c '^data: gap' "$tmp/stream")
resumed=$(grep '^data: ' "$tmp/resumed" | tr '\n' ' ')
ok=0
[ -n "$subs" ] && [ "$ended" = yes ] && [ "$in_first" = 0 ] \
    && [ "$resumed" = "data: gap data: next " ] && [ "$next" = 200 ] && ok=1
emit "the event lost with the connection was counted for ${subs:-?} stream(s); the stream ended: $ended; resumed with Last-Event-ID it got: ${resumed:-nothing}" $ok
[ $ok = 1 ]
