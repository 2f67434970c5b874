# test/fault/gdb_check.sh: sourced by the checks that hold or change a
# process with gdb (stalled_relay.sh, lost_event.sh).  Gives $tmp (removed
# on exit, with the background jobs) and emit RESULT OK, the line run.sh
# makes a row of; ends the check, not run, when gdb is missing.
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

emit() {  # emit RESULT OK
    printf '%s\t%s\n' "$1" "$2"
}
if ! command -v gdb >/dev/null; then
    emit "not run: gdb is missing (make test-fault installs it as root)" 0
    exit 1
fi
