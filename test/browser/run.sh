#!/usr/bin/env bash
# make test-browser: the demo page (two tabs, a broadcast), the live
# dashboard (with the losses it causes: losses.conf), the demo page told
# its history was lost (history-lost.mjs: SSEHistoryLostEvent), the
# Mercure demo page (tabs with and without a token) and streams read by
# the pages of other origins (cors.mjs: SSECORSOrigins) in a real
# Chromium, against the same private httpd as `make run` (its config, on
# BROWSER_PORT, in the background; plus cors.conf.in and a second port,
# BROWSER_PORT + 2, for the other origins, and losses.conf): each fails
# on a missing event, a console error, an uncaught exception or a failed
# request.  Chromium is Debian's (package chromium); playwright-core, from
# the npm registry, only drives it (it downloads no browser).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PORT=${BROWSER_PORT:-18931}
RUN=$ROOT/build/browser
HTTPD=${HTTPD:-/usr/sbin/apache2}
# The demo hub's key (conf/mercure-demo.conf reads it from httpd's
# environment); mercure.mjs signs its publisher's JWT with it.
export MERCURE_KEY=${MERCURE_KEY:-browser-test-mercure-key}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

need=()
[ -x "$CHROMIUM" ] || need+=(chromium)
command -v npm >/dev/null || need+=(nodejs npm)
# mercure.mjs publishes with Symfony's Mercure component too
[ -f /usr/share/php/Symfony/Component/Mercure/autoload.php ] || need+=(php-cli php-symfony-mercure)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "test-browser: missing packages; run: sudo apt-get install -y ${need[*]}" >&2
        exit 1
    fi
fi
if [ ! -d "$ROOT/test/browser/node_modules/playwright-core" ]; then
    (cd "$ROOT/test/browser" && npm install --no-save --no-audit --no-fund \
        --loglevel=error playwright-core >/dev/null)
fi

mkdir -p "$RUN/logs"
sed -e "s|@ROOT@|$ROOT|g" -e "s|@RUNDIR@|$RUN|g" -e "s|@PORT@|$PORT|g" \
    -e "s|@TLS_PORT@|$((PORT + 1))|g" "$ROOT/conf/httpd-run.conf.in" >"$RUN/httpd.conf"
CORS_PORT=$((PORT + 2))
sed -e "s|@ROOT@|$ROOT|g" -e "s|@PORT@|$PORT|g" -e "s|@CORS_PORT@|$CORS_PORT|g" \
    "$ROOT/test/browser/cors.conf.in" >>"$RUN/httpd.conf"
cat "$ROOT/test/browser/losses.conf" >>"$RUN/httpd.conf"
defs=()
[ "$(id -u)" = 0 ] && defs+=(-DRUN_AS_ROOT)
rm -f "$RUN/httpd.pid"
"$HTTPD" -f "$RUN/httpd.conf" "${defs[@]}" -k start
stop() {
    "$HTTPD" -f "$RUN/httpd.conf" "${defs[@]}" -k stop 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$RUN/httpd.pid" ] || break; sleep 0.1; done
}
trap stop EXIT
for _ in $(seq 100); do
    curl -fs -o /dev/null "http://localhost:$PORT/" && break
    sleep 0.1
done

rc=0
node "$ROOT/test/browser/demo-tabs.mjs" "http://localhost:$PORT/" 2 || rc=1
node "$ROOT/test/browser/dashboard.mjs" "http://localhost:$PORT/" || rc=1
node "$ROOT/test/browser/history-lost.mjs" "http://localhost:$PORT/" || rc=1
node "$ROOT/test/browser/mercure.mjs" "http://localhost:$PORT/" || rc=1
node "$ROOT/test/browser/cors.mjs" "http://localhost:$PORT/" "$CORS_PORT" "$RUN/logs/access.log" || rc=1
if [ $rc = 0 ]; then echo "test-browser: PASS"; else echo "test-browser: FAIL (logs in $RUN/logs)"; fi
exit $rc
