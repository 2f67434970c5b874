# test/fault/gdb_check.sh: sourced by the checks that hold or change a
# process with gdb (stalled_relay.sh, lost_event.sh).  Gives $tmp (removed
# on exit, with the background jobs) and emit RESULT OK, the line run.sh
# makes a row of (OK: 1 passed, 0 failed, skip: could not run here).
#
# A check that cannot run here is skipped, not failed: gdb missing, or
# ptrace not allowed (kernel.yama.ptrace_scope, a container without
# CAP_SYS_PTRACE, the process already traced by another debugger or
# strace).  gdb_require PID says so before the check starts; gdb_skip_if_denied
# LOG after a gdb run that did not do what it was told.  A check that ran
# and found a fault still fails.
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

emit() {  # emit RESULT OK
    printf '%s\t%s\n' "$1" "$2"
}
skip() {  # skip REASON: the check could not run here; ends it (exit 0)
    emit "skipped: $1" skip
    exit 0
}
if ! command -v gdb >/dev/null; then
    skip "gdb is missing (make test-fault installs it as root)"
fi

# Why ptrace is refused, from gdb's words in LOG; nothing when it was not.
gdb_denied() {
    local why
    why=$(grep -m1 -iE 'ptrace:|could not attach|not permitted|operation not permitted|attaching.*denied' "$1" 2>/dev/null) || return 1
    printf '%s' "$why"
}

# What limits ptrace here, for the reason (empty when nothing is known).
gdb_ptrace_limit() {
    local pid=$1 scope tracer
    tracer=$(awk '/^TracerPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
    if [ -n "$tracer" ] && [ "$tracer" != 0 ]; then
        printf 'process %s is already traced by %s (%s)' "$pid" "$tracer" \
            "$(tr -d '\n' <"/proc/$tracer/comm" 2>/dev/null || echo '?')"
        return
    fi
    scope=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null)
    case $scope in
        1) printf 'kernel.yama.ptrace_scope = 1 (only descendants, or CAP_SYS_PTRACE)' ;;
        2) printf 'kernel.yama.ptrace_scope = 2 (CAP_SYS_PTRACE only)' ;;
        3) printf 'kernel.yama.ptrace_scope = 3 (no ptrace at all)' ;;
    esac
    if ! grep -q '^CapEff:' /proc/self/status 2>/dev/null; then
        return
    fi
    # CAP_SYS_PTRACE is bit 19
    if [ $(( 0x$(awk '/^CapEff:/ { print $2 }' /proc/self/status) >> 19 & 1 )) = 0 ] \
       && [ "$(stat -c %u "/proc/$pid" 2>/dev/null)" != "$(id -u)" ]; then
        printf '%sno CAP_SYS_PTRACE for a process of another user' "${scope:+; }"
    fi
}

# gdb_require PID WHAT: skip the check unless gdb can attach to PID (WHAT
# names it).  Attaches and detaches at once.
gdb_require() {
    local pid=$1 what=$2 limit
    limit=$(gdb_ptrace_limit "$pid")
    if [ -r /proc/sys/kernel/yama/ptrace_scope ] && [ "$(cat /proc/sys/kernel/yama/ptrace_scope)" = 3 ]; then
        skip "ptrace is not allowed: $limit"
    fi
    gdb -p "$pid" -batch -ex detach >"$tmp/gdb-probe.log" 2>&1 </dev/null
    if gdb_denied "$tmp/gdb-probe.log" >/dev/null; then
        skip "gdb cannot attach to $what (pid $pid): $(gdb_denied "$tmp/gdb-probe.log")${limit:+ ($limit)}"
    fi
}

# gdb_skip_if_denied LOG PID WHAT: after a gdb run that did not work, skip
# when ptrace was refused; return (the caller fails) otherwise.
gdb_skip_if_denied() {
    local why limit
    why=$(gdb_denied "$1") || return 0
    limit=$(gdb_ptrace_limit "$2")
    skip "gdb cannot attach to $3 (pid $2): $why${limit:+ ($limit)}"
}
