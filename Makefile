# mod_sse: Server-Sent Events on named channels for Apache httpd 2.4.
#   make          build mod_sse.so (apxs, -Wall -Wextra) and tools/sse-publish
#   make run      install what is missing, build, run a private httpd with the demo
#                 (and a Mercure hub: make run MERCURE_KEY=<its HS256 secret>)
#   make test     install what is missing, build, run the Apache::Test suite (event, worker, prefork),
#                 the history store's test and the cluster's
#   make unit     C unit tests of the pure parts
#   make test-browser  the demo, the dashboard, a page told its history was lost, the Mercure page and cross-origin streams in Chromium (no console error)
#   make docs-check  the docs against the code (directives, message codes, links, man pages)
#   make man      build/man/mod_sse.5, generated from docs/directives.md
#   make deb      the Debian packages libapache2-mod-sse and sse-publish, into build/deb/
#   make test-deb as root: install them, enable, stream, publish, graceful, purge
#   make install  apxs -i plus conf/sse.load and conf/sse.conf into mods-available, sse-publish into $(BINDIR)

APXS     ?= apxs
# mod_sse's version: the VERSION file is its one place (sse_version.h).
SSE_VERSION := $(shell cat $(dir $(lastword $(MAKEFILE_LIST)))VERSION)
HTTPD    ?= /usr/sbin/apache2
PORT     ?= 8080
TLS_PORT ?= 8443
TLS      ?=
# The demo hub's HS256 key (publishers' and subscribers' JWTs): exported to
# the httpd of make run, whose config reads ${MERCURE_KEY}.
MERCURE_DEMO_KEY = !ChangeThisDemoMercureKey!
ifeq ($(strip $(MERCURE_KEY)),)
MERCURE_KEY = $(MERCURE_DEMO_KEY)
endif
export MERCURE_KEY
SRCS      = mod_sse.c sse_conf.c sse_request.c sse_stream.c sse_publish.c sse_broker.c sse_broker_sub.c sse_broker_fanout.c sse_broker_link.c sse_loop.c sse_peer.c sse_chan.c sse_relay_client.c sse_relayd.c sse_relayd_ops.c sse_relayd_gather.c sse_relayd_flow.c sse_relayd_hist.c sse_relayd_cluster.c sse_relay_spawn.c sse_wire.c sse_proto.c sse_buf.c sse_sock.c sse_event.c sse_hist.c sse_held.c sse_suspend.c sse_spread.c sse_cluster.c sse_count.c sse_client.c sse_status.c sse_census.c sse_trim.c sse_tls.c sse_hub.c sse_auth.c sse_broker_hub.c sse_update.c sse_topic.c sse_token.c sse_store.c
HDRS      = sse_version.h sse_config.h sse_conf.h sse_request.h sse_handlers.h sse_log.h sse_broker.h sse_broker_int.h sse_loop.h sse_peer.h sse_chan.h sse_relay.h sse_relayd.h sse_relayd_int.h sse_wire.h sse_proto.h sse_buf.h sse_sock.h sse_event.h sse_hist.h sse_held.h sse_suspend.h sse_spread.h sse_cluster.h sse_count.h sse_client.h sse_status.h sse_census.h sse_trim.h sse_tls.h sse_update.h sse_topic.h sse_token.h sse_auth.h sse_store.h
WARN      = -Wc,-Wall -Wc,-Wextra -Wc,-std=gnu99
EXTRA_CFLAGS ?=
# The sse-publish command: the module's own event checks and relay framing.
CLI_SRCS  = tools/sse-publish.c sse_wire.c sse_event.c sse_proto.c sse_buf.c sse_sock.c
APR_INC  ?= /usr/include/apr-1.0
BINDIR   ?= /usr/local/bin
RUNDIR    = $(CURDIR)/build/run
# Debian packages that the build, the demo and the tests need.
DEB_PKGS  = apache2 apache2-dev libapache2-mod-perl2 libwww-perl libio-socket-ssl-perl libprotocol-http2-perl libhiredis-dev libjwt-dev libjansson-dev libssl-dev liblmdb-dev zlib1g-dev redis-server redis-sentinel curl openssl make gcc
# make deb needs these besides debian/control's Build-Depends (which it
# installs too).
DEB_BUILD_PKGS = dpkg-dev debhelper lintian
# Only the tests need these (t/71_mercure_symfony.t: Symfony's Mercure client).
TEST_DEB_PKGS = php-cli php-curl php-symfony-mercure

.PHONY: all deps install run test test-cluster test-browser unit clean clean-build docs-check man deb test-deb

all: mod_sse.so tools/sse-publish

# The build id (sse_build_id): a relay of another build is replaced, with
# its history, at a graceful restart.  A package may set it.
BUILD_STAMP ?= $(shell date +%s%3N)

mod_sse.so: $(SRCS) $(HDRS) Makefile VERSION
	@command -v $(APXS) >/dev/null || { echo "apxs not found: run 'make deps' (as root) or: sudo apt-get install -y $(DEB_PKGS)"; exit 1; }
	$(APXS) -c -o mod_sse.la $(WARN) -DSSE_BUILD_STAMP=$(BUILD_STAMP) -DSSE_VERSION=$(SSE_VERSION) $(EXTRA_CFLAGS) $(SRCS) $(MOD_LIBS)
	cp .libs/mod_sse.so mod_sse.so.tmp && mv -f mod_sse.so.tmp mod_sse.so

# CFLAGS, CPPFLAGS and LDFLAGS: the package's (dpkg-buildflags), else none.
tools/sse-publish: $(CLI_SRCS) sse_wire.h sse_event.h sse_proto.h sse_buf.h sse_sock.h sse_version.h Makefile VERSION
	$(CC) -std=gnu99 -Wall -Wextra -O2 $(CFLAGS) $(CPPFLAGS) -DSSE_VERSION=$(SSE_VERSION) -I. -I$(APR_INC) \
	    $(LDFLAGS) -o $@ $(CLI_SRCS) -lapr-1

# Install what a fresh Debian machine lacks (as root), or say what to run.
deps:
	@sh tools/need-debs $(DEB_PKGS)

install: mod_sse.so tools/sse-publish
	install -m 755 tools/sse-publish $(DESTDIR)$(BINDIR)/sse-publish
	$(APXS) -i -n sse mod_sse.la
	install -m 644 conf/sse.load conf/sse.conf conf/mercure-hub.conf $$($(APXS) -q SYSCONFDIR)/mods-available/

run: deps mod_sse.so
	@mkdir -p $(RUNDIR)/logs
	@sed -e 's|@ROOT@|$(CURDIR)|g' -e 's|@RUNDIR@|$(RUNDIR)|g' -e 's|@PORT@|$(PORT)|g' \
	    -e 's|@TLS_PORT@|$(TLS_PORT)|g' conf/httpd-run.conf.in > $(RUNDIR)/httpd.conf
	@if [ -n "$(TLS)" ] && [ ! -f $(RUNDIR)/tls/localhost.key ]; then \
	  mkdir -p $(RUNDIR)/tls && openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
	    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	    -keyout $(RUNDIR)/tls/localhost.key -out $(RUNDIR)/tls/localhost.crt 2>/dev/null; fi
	@echo "mod_sse demo: http://localhost:$(PORT)/   (Ctrl-C stops; logs in build/run/logs)"
	@[ -z "$(TLS)" ] || echo "          and https://localhost:$(TLS_PORT)/ (HTTP/2, self-signed certificate)"
	@if [ "$$MERCURE_KEY" = '$(MERCURE_DEMO_KEY)' ]; then \
	  echo "Mercure hub: /.well-known/mercure, HS256 key '$$MERCURE_KEY' (the demo's; set your own: make run MERCURE_KEY=...)"; \
	else echo "Mercure hub: /.well-known/mercure, HS256 key from MERCURE_KEY"; fi
	$(HTTPD) -f $(RUNDIR)/httpd.conf -DFOREGROUND $$([ "$$(id -u)" = 0 ] && echo -DRUN_AS_ROOT) \
	    $$([ -n "$(TLS)" ] && echo -DTLS)

# SUITE_MPMS: the MPMs of the Apache::Test suite (CI gives "worker
# prefork": it runs the suite on event under ASan already); SUITE_CLUSTER=0
# leaves out the several-server tests (CI runs them under ASan instead)
SUITE_MPMS ?= event worker prefork
SUITE_CLUSTER ?= 1
test: deps mod_sse.so test/t/conf/tls/localhost.key
	@sh tools/need-debs $(TEST_DEB_PKGS)
	MPMS="$(SUITE_MPMS)" bash test/run-tests.sh
	bash test/store/run.sh
	if [ "$(SUITE_CLUSTER)" != 0 ]; then bash test/cluster/run.sh && bash test/cluster/sentinel.sh; fi

# The demo page, the dashboard (with the losses it shows), a page's
# EventSource told its history was lost (SSEHistoryLostEvent), the Mercure
# page and streams read from another origin (SSECORSOrigins) in Debian's
# Chromium (not part of make test: it needs chromium and playwright-core
# from npm).
test-browser: deps mod_sse.so
	bash test/browser/run.sh

# Several servers over Redis only (also part of make test), then over a
# Redis master, a replica and three sentinels, through a failover.
test-cluster: deps mod_sse.so
	bash test/cluster/run.sh
	bash test/cluster/sentinel.sh

# A throw-away certificate for the TLS and HTTP/2 tests.
test/t/conf/tls/localhost.key:
	mkdir -p test/t/conf/tls
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \
	    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	    -keyout $@ -out test/t/conf/tls/localhost.crt 2>/dev/null

unit:
	$(MAKE) -C test/unit

# The manual pages: sse-publish(1) is man/sse-publish.1; mod_sse(5) is made
# from docs/directives.md (written once, there).
man: build/man/mod_sse.5

build/man/mod_sse.5: docs/directives.md tools/md2man VERSION
	@mkdir -p $(@D)
	perl tools/md2man $(SSE_VERSION) < docs/directives.md > $@.tmp && mv -f $@.tmp $@

# The docs against the code: every directive and SSE0xxxx code documented,
# every link and anchor alive, the README a front door.
docs-check:
	bash test/docs-check.sh

clean: clean-build
	rm -rf build
	-$(MAKE) -C test/unit clean

# What make (all, man) builds; the package's clean (debian/rules) runs it.
clean-build:
	rm -rf .libs *.la *.lo *.slo *.o mod_sse.so mod_sse.so.tmp tools/sse-publish build/man

# The Debian packages, libapache2-mod-sse and sse-publish, into build/deb/
# (dpkg-buildpackage on a copy of the tree's files that git knows, so that
# nothing generated is packaged), then lintian on them.  Installs what the
# build lacks (as root), or says what to run.
deb:
	@sh tools/need-debs $(DEB_BUILD_PKGS)
	bash tools/make-deb

# The packages on this machine, as root: build, install, a2enmod sse, the
# system's apache2 (port 80: nothing else may use it), a stream, a publish
# by sse-publish and one through /sse/publish, a graceful restart, purge,
# and nothing of them is left; apache2 is stopped at the end.
test-deb: deb
	bash test/deb/run.sh

# Fuzzing (make fuzz, make fuzz-smoke), the sanitizer runs (make test-asan,
# make test-asan-churn: TLS stream churn on the event MPM),
# the benchmark beside Nchan (make bench) and the fault/reliability runs.
MOD_LIBS = -lhiredis -ljwt -ljansson -lssl -lcrypto -llmdb -lz
ASAN_MOD_LIBS ?= $(MOD_LIBS)
ASAN_TEST_DEPS ?= deps test/t/conf/tls/localhost.key
include test/fuzz/fuzz.mk
include test/asan/asan.mk
include test/fault/fault.mk
include bench/bench.mk
