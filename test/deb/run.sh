#!/bin/bash
# test/deb/run.sh (make test-deb, as root, after make deb): the packages on
# this machine, as an admin uses them.
#
#   apt-get install ./build/deb/*.deb    installed, not enabled
#   a2enmod sse, apache2ctl start          the system's apache2 on port 80
#                                          logs "mod_sse/VERSION configured"
#   a stream receives an event published with the installed sse-publish
#   (the relay's socket) and one POSTed to /sse/publish (sse.conf's)
#   apache2ctl graceful                    a new stream receives a publish
#   apt-get remove libapache2-mod-sse      disabled, sse.conf kept
#   apt-get purge                          nothing of the packages is left
#                                          (dpkg -L, mods-enabled, files),
#                                          apache2 still starts
#
# The machine is left as found: apache2 stopped, the packages purged, the
# test's own conf-available file removed, whatever happened.  It refuses
# to run if the packages are installed already, apache2 is running or
# port 80 is taken.  Other suites use private httpds on high ports: run it
# under flock /tmp/sse-suite.lock like them.
set -uo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive

version=$(cat VERSION)
pkgs="libapache2-mod-sse sse-publish"
ns=test-deb
conf=/etc/apache2/conf-available/mod-sse-test-deb.conf
elog=/var/log/apache2/error.log
pidfile=/var/run/apache2/apache2.pid
work=$(mktemp -d "${TMPDIR:-/tmp}/mod_sse-test-deb.XXXXXX")
pass=0
fail=0
started=0
curls=""
t0=$(date +%s)

ok() {
    pass=$((pass + 1))
    echo "ok $((pass + fail)) - $1"
}
not_ok() {
    fail=$((fail + 1))
    echo "not ok $((pass + fail)) - $1"
    [ -z "${2:-}" ] || echo "$2" | sed 's/^/#   /'
}
check() {        # check NAME COMMAND...: ok when the command succeeds
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
# until N COMMAND...: true once the command succeeds, within N seconds
until_ok() {
    local n=$(( $1 * 10 ))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}
apache_pid() {
    local p
    p=$(cat "$pidfile" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
}
port80_free() { [ -z "$(ss -ltnH '( sport = :80 )')" ]; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
# known to dpkg in any state but purged
present() {
    local s
    s=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) && [ -n "$s" ] \
        && ! grep -q 'not-installed' <<< "$s"
}
apache_stop() {
    if apache_pid >/dev/null; then
        apache2ctl stop >/dev/null 2>&1
        until_ok 20 sh -c "! { p=\$(cat $pidfile 2>/dev/null) && kill -0 \$p; }"
    fi
    until_ok 10 port80_free
}

cleanup() {
    local p
    for p in $curls; do kill "$p" 2>/dev/null; done
    [ "$started" = 1 ] && apache_stop
    if [ -e "$conf" ]; then
        a2disconf -q -p mod-sse-test-deb >/dev/null 2>&1
        rm -f "$conf"
    fi
    for p in $pkgs; do
        if present "$p"; then
            apt-get purge -y -qq "$p" >/dev/null 2>&1
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

# --- preconditions: the machine as it is, to leave it so -----------------
if [ "$(id -u)" != 0 ]; then
    echo "test-deb: run as root (it installs the packages and starts the system's apache2)" >&2
    exit 1
fi
debs=$(ls build/deb/libapache2-mod-sse_"$version"_*.deb build/deb/sse-publish_"$version"_*.deb 2>/dev/null)
if [ "$(echo "$debs" | grep -c .)" != 2 ]; then
    echo "test-deb: no packages of version $version in build/deb/: make deb" >&2
    exit 1
fi
for p in $pkgs; do
    if present "$p"; then
        echo "test-deb: $p is installed already: this test installs and purges it; remove it first" >&2
        trap - EXIT; rm -rf "$work"; exit 1
    fi
done
if apache_pid >/dev/null || ! port80_free; then
    echo "test-deb: apache2 is running or port 80 is taken:" >&2
    ss -ltnp '( sport = :80 )' >&2
    trap - EXIT; rm -rf "$work"; exit 1
fi
enabled_before=$(ls /etc/apache2/mods-enabled)
touch "$elog"

# --- install --------------------------------------------------------------
echo "# apt-get install $(echo $debs)"
# shellcheck disable=SC2086  # one path each
check "apt-get install ./build/deb/*.deb" apt-get install -y -qq $(printf './%s ' $debs)
for p in $pkgs; do
    check "$p is installed" installed "$p"
done
check "mods-available has sse.load and sse.conf" \
    test -f /etc/apache2/mods-available/sse.load -a -f /etc/apache2/mods-available/sse.conf
check "installing did not enable the module" \
    test ! -e /etc/apache2/mods-enabled/sse.load -a ! -e /etc/apache2/mods-enabled/sse.conf
check "the module is /usr/lib/apache2/modules/mod_sse.so" test -f /usr/lib/apache2/modules/mod_sse.so
out=$(sse-publish --version 2>&1)
if [ "$out" = "sse-publish (mod_sse) $version" ]; then ok "sse-publish --version: $out"
else not_ok "sse-publish --version says the VERSION file's $version" "$out"; fi
check "man pages: sse-publish(1), mod_sse(5)" \
    test -f /usr/share/man/man1/sse-publish.1.gz -a -f /usr/share/man/man5/mod_sse.5.gz
check "examples under /usr/share/doc/libapache2-mod-sse/examples" \
    test -f /usr/share/doc/libapache2-mod-sse/examples/sse-demo.conf \
         -a -f /usr/share/doc/libapache2-mod-sse/examples/htdocs/index.html

# --- enable, start, stream, publish ----------------------------------------
check "a2enmod sse" a2enmod -q sse
check "mods-enabled has sse.load and sse.conf" \
    test -L /etc/apache2/mods-enabled/sse.load -a -L /etc/apache2/mods-enabled/sse.conf
# A stream location (sse.conf opens none), in this test's namespace.
cat > "$conf" <<EOF
# make test-deb's stream location (test/deb/run.sh removes this file)
<IfModule sse_module>
    SSENamespace $ns
    <Location "/test-deb/stream">
        SetHandler sse
        SSEChannel $ns
        Require local
    </Location>
</IfModule>
EOF
check "a2enconf the test's stream location" a2enconf -q mod-sse-test-deb
check "apache2ctl configtest" apache2ctl configtest
log_from=$(stat -c %s "$elog")
started=1
check "apache2ctl start" apache2ctl start
if until_ok 15 sh -c "curl -s -o /dev/null http://127.0.0.1/"; then
    ok "apache2 answers on port 80"
else
    not_ok "apache2 answers on port 80" "$(tail -n 20 "$elog")"
fi
until_ok 5 grep -q "SSE00016: mod_sse/$version configured" <(tail -c +"$((log_from + 1))" "$elog")
if tail -c +"$((log_from + 1))" "$elog" | grep -q "SSE00016: mod_sse/$version configured"; then
    ok "error.log: mod_sse/$version configured"
else
    not_ok "error.log: mod_sse/$version configured" "$(tail -c +"$((log_from + 1))" "$elog" | tail -n 20)"
fi
check "sse.conf's history store is made: /var/cache/apache2/mod_sse" \
    test -d /var/cache/apache2/mod_sse
if [ -e /etc/apache2/mods-enabled/status.load ]; then
    out=$(curl -s http://127.0.0.1/server-status?auto)
    if grep -qx "SSEVersion: $version" <<< "$out"; then ok "/server-status?auto: SSEVersion: $version"
    else not_ok "/server-status?auto: SSEVersion: $version" "$(grep '^SSE' <<< "$out" | head -n 3)"; fi
fi

# stream N: a stream on the test's channel into $work/streamN, and wait
# until the server counts it
open_stream() {
    curl -sN http://127.0.0.1/test-deb/stream > "$work/stream$1" 2>&1 &
    curls="$curls $!"
    until_ok 10 sh -c "curl -s 'http://127.0.0.1/sse/publish?channel=$ns' | grep -q '\"subscribers\":$2'"
}
received() {    # received N DATA: stream N got an event with this data
    until_ok 10 grep -qx "data: $2" "$work/stream$1"
}

if open_stream 1 1; then ok "a stream is open (GET /sse/publish counts 1)"
else not_ok "a stream is open (GET /sse/publish counts 1)" "$(curl -s "http://127.0.0.1/sse/publish?channel=$ns")"; fi
out=$(sse-publish --namespace "$ns" "$ns" "from sse-publish" 2>&1)
if grep -q '"subscribers":1' <<< "$out"; then ok "sse-publish (relay socket) reached 1 stream: $out"
else not_ok "sse-publish (relay socket) reached 1 stream" "$out"; fi
out=$(curl -s --data-urlencode "data=from /sse/publish" "http://127.0.0.1/sse/publish?channel=$ns")
if grep -q '"subscribers":1' <<< "$out"; then ok "POST /sse/publish reached 1 stream: $out"
else not_ok "POST /sse/publish reached 1 stream" "$out"; fi
if received 1 "from sse-publish"; then ok "the stream received sse-publish's event"
else not_ok "the stream received sse-publish's event" "$(cat "$work/stream1")"; fi
if received 1 "from /sse/publish"; then ok "the stream received /sse/publish's event"
else not_ok "the stream received /sse/publish's event" "$(cat "$work/stream1")"; fi

# --- graceful -------------------------------------------------------------
n=$(grep -c "SSE00016: mod_sse/$version configured" "$elog")
check "apache2ctl graceful" apache2ctl graceful
if until_ok 15 sh -c "[ \$(grep -c 'SSE00016: mod_sse/$version configured' $elog) -gt $n ]"; then
    ok "after graceful: mod_sse/$version configured again"
else
    not_ok "after graceful: mod_sse/$version configured again" "$(tail -n 20 "$elog")"
fi
for p in $curls; do kill "$p" 2>/dev/null; done
curls=""
if open_stream 2 1; then ok "after graceful: a new stream is open"
else not_ok "after graceful: a new stream is open" "$(curl -s "http://127.0.0.1/sse/publish?channel=$ns")"; fi
out=$(sse-publish --namespace "$ns" "$ns" "after graceful" 2>&1)
if received 2 "after graceful"; then ok "after graceful: the stream received sse-publish's event"
else not_ok "after graceful: the stream received sse-publish's event" "$out / $(cat "$work/stream2")"; fi
for p in $curls; do kill "$p" 2>/dev/null; done
curls=""
if grep -qi 'segmentation\|exit signal' <(tail -c +"$((log_from + 1))" "$elog"); then
    not_ok "no child crashed" "$(grep -i 'segmentation\|exit signal' <(tail -c +"$((log_from + 1))" "$elog"))"
else
    ok "no child crashed (error.log)"
fi

# --- remove: disabled, its configuration kept -----------------------------
check "apt-get remove libapache2-mod-sse (apache2 running)" apt-get remove -y -qq libapache2-mod-sse
check "remove disabled the module (mods-enabled has no sse.*)" \
    test ! -e /etc/apache2/mods-enabled/sse.load -a ! -e /etc/apache2/mods-enabled/sse.conf
check "remove kept sse.conf and sse.load (conffiles) and removed mod_sse.so" \
    test -f /etc/apache2/mods-available/sse.conf -a -f /etc/apache2/mods-available/sse.load \
         -a ! -e /usr/lib/apache2/modules/mod_sse.so
check "apache2ctl configtest after remove" apache2ctl configtest

# --- purge: nothing left --------------------------------------------------
# shellcheck disable=SC2086
check "apt-get purge $pkgs" apt-get purge -y -qq $pkgs
for p in $pkgs; do
    if out=$(dpkg -L "$p" 2>/dev/null) && [ -n "$out" ]; then not_ok "dpkg -L $p is empty" "$out"
    else ok "dpkg -L $p is empty"; fi
done
left=$(ls -d /etc/apache2/mods-enabled/sse.* /etc/apache2/mods-available/sse.* \
             /usr/lib/apache2/modules/mod_sse.so /usr/bin/sse-publish \
             /usr/share/doc/libapache2-mod-sse /usr/share/doc/sse-publish \
             /usr/share/man/man1/sse-publish.1.gz /usr/share/man/man5/mod_sse.5.gz \
             /var/cache/apache2/mod_sse 2>/dev/null; \
       find /var/lib/apache2 -name sse 2>/dev/null)
if [ -z "$left" ]; then ok "purge left no file (mods-enabled, mods-available, module, binary, docs, history, a2enmod's state)"
else not_ok "purge left no file" "$left"; fi
a2disconf -q -p mod-sse-test-deb >/dev/null 2>&1
rm -f "$conf"
if [ "$(ls /etc/apache2/mods-enabled)" = "$enabled_before" ]; then ok "mods-enabled is as it was before the test"
else not_ok "mods-enabled is as it was before the test" "$(diff <(echo "$enabled_before") <(ls /etc/apache2/mods-enabled))"; fi

# --- apache2 still starts -------------------------------------------------
apache_stop
check "apache2ctl configtest without mod_sse" apache2ctl configtest
check "apache2ctl start without mod_sse" apache2ctl start
if until_ok 15 sh -c "curl -s -o /dev/null http://127.0.0.1/"; then ok "apache2 answers on port 80 without mod_sse"
else not_ok "apache2 answers on port 80 without mod_sse" "$(tail -n 20 "$elog")"; fi
apache_stop
if apache_pid >/dev/null || ! port80_free; then not_ok "apache2 stopped, port 80 free"
else ok "apache2 stopped, port 80 free"; fi
started=0

echo "# test-deb: $pass passed, $fail failed, $(( $(date +%s) - t0 )) s"
[ "$fail" = 0 ] && echo "test-deb: PASS" || echo "test-deb: FAIL"
[ "$fail" = 0 ]
