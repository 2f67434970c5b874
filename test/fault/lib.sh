# test/fault/lib.sh: start, inspect and stop a private httpd for the fault
# runs.  Sourced by test/fault/run.sh; every name starts with fault_ / F_.
#
# A server lives in $F_OUT/<name>/ (ServerRoot, httpd.conf, httpd.pid,
# logs/error.log, run/ with the relay socket).  Only processes started here
# are ever signalled: the parent whose pid this file's own pid file holds,
# and that parent's children.

: "${FAULT_HTTPD:=/usr/sbin/apache2}"
: "${FAULT_USER:=ssetest}"

# fault_setup NAME PORT MAXSUBS [TEMPLATE]: write the config (from
# httpd-fault.conf.in, or TEMPLATE in test/fault/); sets F_DIR, F_PORT and
# F_TLS_PORT (PORT + 1, used by httpd-fault-tls.conf.in).
fault_setup() {
    F_NAME=$1
    F_PORT=$2
    F_TLS_PORT=$(($2 + 1))
    F_DIR=$F_OUT/$1
    rm -rf "$F_DIR"
    mkdir -p "$F_DIR/logs" "$F_DIR/run" "$F_DIR/cores"
    # a crash leaves a core for gdb (CoreDumpDirectory; where the kernel's
    # core_pattern writes cores in the working directory)
    chmod 1777 "$F_DIR/cores"
    # the relay socket's folder is open to everyone on purpose: only the
    # socket's own mode and the relay's peer check may keep others out
    chmod 755 "$F_OUT" "$F_DIR" "$F_DIR/run"
    local group=$FAULT_USER
    [ "$(id -u)" = 0 ] && group=$(id -gn "$FAULT_USER")
    sed -e "s|@DIR@|$F_DIR|g" -e "s|@ROOT@|$F_TOP|g" -e "s|@PORT@|$F_PORT|g" \
        -e "s|@MODULE@|$F_MODULE|g" -e "s|@USER@|$FAULT_USER|g" -e "s|@GROUP@|$group|g" -e "s|@MAXSUBS@|$3|g" \
        -e "s|@TLS_PORT@|$F_TLS_PORT|g" "$F_SRC/${4:-httpd-fault.conf.in}" >"$F_DIR/httpd.conf"
    if [ -n "${4:-}" ] && grep -q 'SSLCertificateFile' "$F_DIR/httpd.conf"; then
        fault_tls_cert "$F_DIR/tls" || return 1
    fi
}

# fault_tls_cert DIR: a throw-away self-signed certificate for localhost
# (EC P-256: thousands of handshakes cost the server little).
fault_tls_cert() {
    mkdir -p "$1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -addext basicConstraints=critical,CA:FALSE -keyout "$1/localhost.key" -out "$1/localhost.crt" 2>/dev/null \
        || { fault_log "fault: openssl could not make a certificate"; return 1; }
}

# A field of mod_status's ?auto page (e.g. BusyWorkers, ConnsTotal).
fault_status_field() {
    curl -s -m 10 "http://127.0.0.1:$F_PORT/server-status?auto" | sed -n "s/^$1: //p" | head -n 1
}

fault_log() { printf '%s\n' "$*" >&2; }

# Start the server and wait until it publishes.  Returns non-zero on failure.
fault_start() {
    local args=() i
    [ "$(id -u)" = 0 ] && args+=(-DFAULT_AS_ROOT)
    if (exec 3<>"/dev/tcp/127.0.0.1/$F_PORT") 2>/dev/null; then
        fault_log "fault: port $F_PORT is in use (FAULT_PORT=... to pick another)"
        return 1
    fi
    ( ulimit -n "$F_NOFILE" && { ulimit -c unlimited 2>/dev/null || true; } \
      && exec "$FAULT_HTTPD" -f "$F_DIR/httpd.conf" "${args[@]}" -k start ) \
        || { fault_log "fault: httpd did not start"; cat "$F_DIR/logs/error.log" >&2; return 1; }
    for i in $(seq 1 100); do
        if [ -s "$F_DIR/httpd.pid" ] && [ -n "$(fault_relay)" ] \
           && [ "$(fault_http_code GET '/pub')" = 200 ]; then
            F_PPID=$(cat "$F_DIR/httpd.pid")
            # every child's broker connects to the relay within 200 ms
            sleep 1
            return 0
        fi
        sleep 0.1
    done
    fault_log "fault: httpd ($F_NAME) did not come up"
    return 1
}

# Stop it (SIGTERM to its parent) and wait; SIGKILL what is left of the
# processes it started if it takes more than 20 s.
fault_stop() {
    local pids ppid i
    [ -s "$F_DIR/httpd.pid" ] || return 0
    ppid=$(cat "$F_DIR/httpd.pid")
    pids="$ppid $(ps --ppid "$ppid" -o pid= 2>/dev/null)"
    kill -TERM "$ppid" 2>/dev/null
    for i in $(seq 1 200); do
        fault_alive "$ppid" || break
        sleep 0.1
    done
    for p in $pids; do
        fault_alive "$p" && kill -KILL "$p" 2>/dev/null
    done
    rm -f "$F_DIR/httpd.pid"
    return 0
}

# fault_alive PID: a live process (a zombie counts as gone).
fault_alive() {
    local st
    st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# The relay's pid: the last "relay N listening" line of the error log.
fault_relay() {
    grep -o 'SSE00207: relay [0-9]*' "$F_DIR/logs/error.log" 2>/dev/null \
        | tail -n 1 | awk '{ print $3 }'
}

# The parent's children that serve requests (every child but the relay).
fault_children() {
    local relay
    relay=$(fault_relay)
    ps --ppid "$F_PPID" -o pid= | awk -v r="$relay" '$1 != r { print $1 }' | sort -n
}

fault_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# fault_fds_split PID: "OTHER UNIX": descriptors that are not unix-domain
# sockets (streams, listeners, files), and unix-domain sockets (each worker
# thread keeps one connection to the relay, so up to ThreadsPerChild).
fault_fds_split() {
    local pid=$1
    ls -l "/proc/$pid/fd" 2>/dev/null | awk -v pid="$pid" '
        BEGIN { while ((getline l < "/proc/net/unix") > 0) { split(l, f, " "); if (f[7] ~ /^[0-9]+$/) u[f[7]] = 1 } }
        / -> / { t = $NF; if (t ~ /^socket:\[/) { i = t; gsub(/[^0-9]/, "", i); if (i in u) { nu++; next } } no++ }
        END { printf "%d %d\n", no, nu }'
}
fault_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# fault_http_code METHOD PATH [curl args]: the status code only.
fault_http_code() {
    local m=$1 p=$2
    shift 2
    curl -s -o /dev/null -w '%{http_code}' -m 10 -X "$m" "$@" "http://127.0.0.1:$F_PORT$p"
}

# The sum of every channel's count: 0 when no stream is open anywhere.
fault_open_streams() {
    curl -s -m 10 "http://127.0.0.1:$F_PORT/pub" \
        | perl -MJSON::PP -0777 -ne 'my $j = eval { decode_json($_) } or do { print "?\n"; exit };
                                     my $n = 0; $n += $_->{subscribers} for @{ $j->{channels} }; print "$n\n"'
}

# fault_wait_streams N SECS: wait until exactly N streams are counted.
fault_wait_streams() {
    local want=$1 secs=$2 t0=$SECONDS
    while [ $((SECONDS - t0)) -le "$secs" ]; do
        [ "$(fault_open_streams)" = "$want" ] && return 0
        sleep 0.2
    done
    return 1
}

# One line per process "pid fds rss_kb unix_fds" for the children and the
# relay; fds counts every descriptor but the unix-domain sockets.
fault_snapshot() {
    local p
    for p in $(fault_children) $(fault_relay); do
        set -- $(fault_fds_split "$p")
        echo "$p $1 $(fault_rss "$p") $2"
    done
}

# Problems in the error log: crashes, and children that died of a signal.
fault_crashes() {
    grep -E 'Segmentation fault|exit signal|AH00052|AH00060|double free|corrupted|Aborted' \
        "$F_DIR/logs/error.log" 2>/dev/null
}
