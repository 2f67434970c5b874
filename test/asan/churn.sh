#!/usr/bin/env bash
# test/asan/churn.sh: TLS streams opened and closed many times against an
# ASan + UBSan build of mod_sse on the event MPM, where TLS streams are
# suspended (SSESuspend on): each one's last round frees its request, its
# connection's pool and SSL object, while the watcher thread, the broker
# and other workers may still look at them.  `make test-asan-churn` builds
# the module (test/asan/asan.mk) and the client (test/fault/fault.mk) and
# calls this.
#
#   1. httpd (event MPM, mod_ssl, test/fault/httpd-fault-tls.conf.in) with
#      the ASan runtime preloaded; a warm-up of 500 TLS stream cycles, then
#      the descriptors of each child are the baseline;
#   2. ASAN_CHURN_CYCLES (10,000) TLS stream cycles, 50 at once, half closed
#      with close_notify, a quarter with a FIN, a quarter with a RST (one in
#      ten right after its request, a quarter of the others right after
#      ": ok"), while events are published on their channels every 20 ms;
#   3. a graceful restart with ASAN_CHURN_STREAMS (300) TLS streams open,
#      then a stop with as many open.
#
# It fails on any sanitizer report (files in build/asan/churn-reports, or
# lines in the error log), any child that died of a signal, any cycle that
# failed, descriptors of a child not back to its baseline, or a restart or
# stop that did not finish.  Environment: ASAN_MODULE (build/asan/mod_sse.so),
# ASAN_CHURN_CYCLES, ASAN_CHURN_STREAMS, ASAN_CHURN_PORT (18480; TLS on the
# next port), ASAN_CC (clang-14, whose runtime is preloaded), HTTPD
# (/usr/sbin/apache2), FAULT_USER (ssetest, when run as root).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/asan
: "${ASAN_MODULE:=$out/mod_sse.so}"
: "${ASAN_CHURN_CYCLES:=10000}"
: "${ASAN_CHURN_STREAMS:=300}"
: "${ASAN_CHURN_PORT:=18480}"
: "${ASAN_CC:=clang-14}"
: "${HTTPD:=/usr/sbin/apache2}"
: "${FAULT_USER:=ssetest}"
reports=$out/churn-reports
bin=$top/build/fault/ssefault
runtime=$("$ASAN_CC" -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)
t_begin=$SECONDS

[ -f "$ASAN_MODULE" ] || { echo "asan-churn: $ASAN_MODULE not found; run make test-asan-churn" >&2; exit 2; }
[ -f "$runtime" ] || { echo "asan-churn: no ASan runtime from $ASAN_CC" >&2; exit 2; }
if [ ! -x "$bin" ] || [ "$top/test/fault/ssefault.c" -nt "$bin" ]; then
    mkdir -p "$(dirname "$bin")"
    gcc -O2 -g -Wall -Wextra -pthread -o "$bin" "$top/test/fault/ssefault.c" -lssl -lcrypto || exit 2
fi
if [ "$(id -u)" = 0 ] && ! id "$FAULT_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$FAULT_USER" || exit 2
fi
[ "$(id -u)" != 0 ] && FAULT_USER=$(id -un)
ASAN_MODULE=$(readlink -f "$ASAN_MODULE")

# httpd runs as the test user: the report folder must be writable by it
rm -rf "$reports"
mkdir -p "$reports"
chmod 1777 "$reports"
chmod go+rx "$out" "$ASAN_MODULE"
# the same options as test/asan/run.sh (see there for use_sigaltstack=0)
wrapper=$out/churn-apache2
cat >"$wrapper" <<EOW
#!/bin/sh
# written by test/asan/churn.sh: Debian's httpd with the ASan runtime preloaded
echo "\$\$ \$*" >>"$reports/started"
LD_PRELOAD="$runtime\${LD_PRELOAD:+:\$LD_PRELOAD}"
ASAN_OPTIONS="log_path=$reports/san:halt_on_error=0:detect_leaks=0:detect_stack_use_after_return=1:use_sigaltstack=0"
UBSAN_OPTIONS="log_path=$reports/san:halt_on_error=0:print_stacktrace=1"
export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
exec "$HTTPD" "\$@"
EOW
chmod 755 "$wrapper"

F_SRC=$top/test/fault
F_TOP=$top
F_OUT=$out/churn
F_MODULE=$ASAN_MODULE
FAULT_HTTPD=$wrapper
F_NOFILE=$(ulimit -Hn)
[ "$F_NOFILE" = unlimited ] && F_NOFILE=65536
ulimit -n "$F_NOFILE" 2>/dev/null
mkdir -p "$F_OUT"
. "$F_SRC/lib.sh"

port=$ASAN_CHURN_PORT
targs=(-p "$((port + 1))" --pub-port "$port")
kv() { sed -n "s/^$2=//p" "$1" | tail -n 1; }
rc=0
fail() { echo "asan-churn: FAIL: $*"; rc=1; }

fault_setup tls "$port" 10000 httpd-fault-tls.conf.in || exit 2
fault_start || { fault_stop; exit 2; }
echo "asan-churn: httpd $HTTPD (event MPM, TLS on $((port + 1))) with $ASAN_MODULE; reports in $reports"
kids=$(fault_children)

# 1. warm-up and baseline
"$bin" tls-churn "${targs[@]}" -n 500 -c 50 --chans 8 --pub-ms 20 -T 120 >"$F_OUT/warm.out" 2>/dev/null
fault_wait_streams 0 10
sleep 0.5
fault_snapshot >"$F_OUT/snap.base"

# 2. the churn
t0=$SECONDS
"$bin" tls-churn "${targs[@]}" -n "$ASAN_CHURN_CYCLES" -c 50 --chans 8 --pub-ms 20 -T 600 \
    >"$F_OUT/churn.out" 2>/dev/null
churn_secs=$((SECONDS - t0))
c() { kv "$F_OUT/churn.out" "$1"; }
done_c=$(( $(c close_notify) + $(c fin) + $(c rst) ))
echo "asan-churn: $done_c of $ASAN_CHURN_CYCLES TLS stream cycles in $churn_secs s (close_notify $(c close_notify), FIN $(c fin), RST $(c rst); $(c early) closed right after the request, $(c at_once) right after ': ok'); $(c errors) failed; $(c pub_200) of $(c pub_total) publishes 200"
[ "$done_c" = "$ASAN_CHURN_CYCLES" ] && [ "$(c errors)" = 0 ] || fail "TLS stream cycles failed (see $F_OUT/churn.out)"
fault_wait_streams 0 10 || fail "streams still counted after the churn: $(fault_open_streams)"
sleep 0.5
fault_snapshot >"$F_OUT/snap.end"
relay=$(fault_relay)
gone=0
for p in $kids; do fault_alive "$p" || gone=$((gone + 1)); done
deltas=$(awk -v r="$relay" 'NR == FNR { f[$1] = $2; next } ($1 in f) && $1 != r { printf "%+d ", $2 - f[$1] }' \
         "$F_OUT/snap.base" "$F_OUT/snap.end")
fd_max=$(awk -v r="$relay" 'BEGIN { m = 0 } NR == FNR { f[$1] = $2; next } ($1 in f) && $1 != r && $2 - f[$1] > m { m = $2 - f[$1] } END { print m }' \
         "$F_OUT/snap.base" "$F_OUT/snap.end")
unix_max=$(awk -v r="$relay" 'BEGIN { m = 0 } $1 != r && $4 > m { m = $4 } END { print m }' "$F_OUT/snap.end")
echo "asan-churn: descriptors of each child vs. the baseline: ${deltas:-none}(unix-domain sockets at most $unix_max); $gone of $(echo $kids | wc -w) children died"
[ "$fd_max" -le 0 ] && [ -n "$deltas" ] || fail "descriptors not back to the baseline"
[ "$unix_max" -le 26 ] || fail "more unix-domain sockets than the worker threads' relay connections and the broker's"
[ "$gone" = 0 ] || fail "$gone children died during the churn"

# 3. graceful restart, then stop, each with TLS streams open
"$bin" tls-hold "${targs[@]}" -n "$ASAN_CHURN_STREAMS" -c 50 --graceful "$F_PPID" \
    --watch "$(echo $kids | tr ' ' ',')" >"$F_OUT/graceful.out"
g() { kv "$F_OUT/graceful.out" "$1"; }
echo "asan-churn: graceful restart with $(g open) TLS streams: all ended after $(g all_streams_ended_secs) s, old children gone after $(g old_children_exit_secs) s, a new stream served after $(g new_stream_secs) s"
[ "$(g open)" = "$ASAN_CHURN_STREAMS" ] \
    && awk -v e="$(g all_streams_ended_secs)" -v o="$(g old_children_exit_secs)" -v n="$(g new_stream_secs)" \
           'BEGIN { exit !(e >= 0 && e <= 10 && o >= 0 && o <= 10 && n >= 0 && n <= 10) }' \
    || fail "the graceful restart with TLS streams did not finish within 10 s"
sleep 0.5
watch=$(echo $(fault_children) $(fault_relay) | tr ' ' ',')
"$bin" tls-hold "${targs[@]}" -n "$ASAN_CHURN_STREAMS" -c 50 --stop "$F_PPID" --watch "$watch" >"$F_OUT/stop.out"
s() { kv "$F_OUT/stop.out" "$1"; }
echo "asan-churn: stop with $(s open) TLS streams: all ended after $(s all_streams_ended_secs) s, every process gone after $(s all_processes_exit_secs) s"
[ "$(s open)" = "$ASAN_CHURN_STREAMS" ] \
    && awk -v e="$(s all_streams_ended_secs)" -v a="$(s all_processes_exit_secs)" 'BEGIN { exit !(e >= 0 && a >= 0 && a <= 10) }' \
    || fail "the stop with TLS streams did not finish within 10 s"
fault_stop

# 4. what the sanitizers and the error log say
log=$F_DIR/logs/error.log
started=$(wc -l <"$reports/started" 2>/dev/null || echo 0)
nrep=0
for f in "$reports"/san.*; do
    [ -e "$f" ] || continue
    nrep=$((nrep + 1))
    echo "[report] $(basename "$f"):"
    grep -E '^SUMMARY|runtime error|ERROR: (Address|Leak)Sanitizer' "$f" | sort | uniq -c | sed 's/^/    /'
    grep -m8 -E '#[0-9]+ ' "$f" | sed 's/^/      /'
done
inlog=$(grep -cE 'AddressSanitizer|LeakSanitizer|runtime error:' "$log")
crashes=$(fault_crashes | wc -l)
echo "asan-churn: httpd started $started times under ASan; $nrep sanitizer reports, $inlog sanitizer lines and $crashes crash lines in the error log"
fault_crashes | head -n 5 | sed 's/^/    /'
[ "$started" -ge 1 ] || fail "httpd was never started through the ASan wrapper"
[ "$nrep" = 0 ] && [ "$inlog" = 0 ] || fail "sanitizer reports (in $reports and $log)"
[ "$crashes" = 0 ] || fail "$crashes crash lines in $log"
echo "asan-churn: $((SECONDS - t_begin)) s"
[ "$rc" = 0 ] && echo "asan-churn: PASS"
exit "$rc"
