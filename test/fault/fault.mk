# test/fault/fault.mk: fault injection, churn, hostile input and the
# reliability report.  Included by the top Makefile; every name here
# starts with fault / FAULT_.
#
#   make test-fault       the CI run (a few minutes): 10,000 churn cycles,
#                         2,000 streams for capacity, stop and graceful,
#                         every hostile input, the relay socket from another user,
#                         one address trying 3,000 streams beside 300 clients
#                         (SSEMaxStreamsPerClient; full run: 20,000 beside 1,000),
#                         and the history store's torture (test/store/torture.t,
#                         event MPM; make test runs store.t under every MPM)
#   make reliability      the full run: 100,000 churn cycles, 10,000 streams,
#                         plus t/40-44, store.t and torture.t under every MPM;
#                         rewrites test/RELIABILITY.md
#   make fault-store      only store.t, upgrade.t and torture.t under every MPM (results/store.log)
#   make fault-build      only build the client (build/fault/ssefault)
#   FAULT_TLS_ONLY=1 make test-fault   only the TLS section (event MPM, mod_ssl,
#                         SSESuspend on: churn, fan-out, slow readers, graceful, stop)
#
# Variables: FAULT_PORT (18470, the private httpd's port), FAULT_MODULE
# (./mod_sse.so; e.g. an ASan build), FAULT_USER (ssetest: the children and
# the relay run as this user when make runs as root), FAULT_STRANGER (nobody:
# the local user that tries the relay socket), FAULT_MPMS, FAULT_CYCLES,
# FAULT_STREAMS, FAULT_CONCURRENCY, FAULT_RSS_MARGIN_KB, FAULT_RSS_GROWTH_KB.
# Results stay in build/fault/results/; servers' logs in build/fault/<name>/logs.

FAULT_SRC := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
FAULT_TOP := $(abspath $(FAULT_SRC)/../..)
FAULT_OUT ?= $(FAULT_TOP)/build/fault
FAULT_PORT ?= 18470
FAULT_MODULE ?= $(FAULT_TOP)/mod_sse.so
FAULT_USER ?= ssetest
FAULT_STRANGER ?= nobody
FAULT_MPMS ?= event worker prefork
FAULT_CYCLES ?=
FAULT_STREAMS ?=
FAULT_CONCURRENCY ?= 600
FAULT_RSS_MARGIN_KB ?= 4096
FAULT_RSS_GROWTH_KB ?= 1024
FAULT_TESTS = t/40_kill_child.t t/41_kill_relay.t t/42_graceful_load.t t/35_restart_spread.t \
              t/43_kill_child_limit.t t/44_churn_early_close.t \
              t/09_a2enmod.t t/53_cli.t t/60_namespace.t
# what the runs need from the top Makefile: packages, the module, the
# certificate the Apache::Test configuration refers to
FAULT_DEPS ?= deps fault-debs mod_sse.so test/t/conf/tls/localhost.key
FAULT_ENV = FAULT_OUT='$(FAULT_OUT)' FAULT_PORT='$(FAULT_PORT)' FAULT_MODULE='$(FAULT_MODULE)' \
            FAULT_USER='$(FAULT_USER)' FAULT_STRANGER='$(FAULT_STRANGER)' \
            FAULT_CONCURRENCY='$(FAULT_CONCURRENCY)' FAULT_RSS_MARGIN_KB='$(FAULT_RSS_MARGIN_KB)' \
            FAULT_RSS_GROWTH_KB='$(FAULT_RSS_GROWTH_KB)' \
            $(if $(FAULT_CYCLES),FAULT_CYCLES='$(FAULT_CYCLES)') \
            $(if $(FAULT_STREAMS),FAULT_STREAMS='$(FAULT_STREAMS)')

FAULT_SAVED_GOAL := $(.DEFAULT_GOAL)

# the history on disk (test/store/run.sh): its checks' "# RELIABILITY"
# lines are in the log, for report.pl
FAULT_STORE = STORE_VERBOSE=1 bash $(FAULT_TOP)/test/store/run.sh
FAULT_STORE_LOG = $(FAULT_OUT)/results/store.log

.PHONY: test-fault reliability fault-build fault-debs fault-store

fault-build: $(FAULT_OUT)/ssefault

$(FAULT_OUT)/ssefault: $(FAULT_SRC)/ssefault.c
	mkdir -p $(FAULT_OUT)
	gcc -O2 -g -Wall -Wextra -pthread -o $@ $< -lssl -lcrypto

# gdb holds the relay at one exact point (stalled_relay.sh) and makes a
# broker's allocation fail once or its relay connection go (lost_event.sh);
# the client speaks TLS with OpenSSL (the TLS rows)
fault-debs:
	@sh $(FAULT_TOP)/tools/need-debs gdb libssl-dev

# The store's torture after the private servers' run, even when that failed
# (not with FAULT_TLS_ONLY=1); its log in results/store-quick.log.
test-fault: $(FAULT_DEPS) fault-build
	@mkdir -p $(FAULT_OUT)/results
	$(FAULT_ENV) bash $(FAULT_SRC)/run.sh quick; rc1=$$?; rc2=0; \
	if [ "$(FAULT_TLS_ONLY)" != 1 ]; then \
	    echo "test-fault: test/store/torture.t (event; log: $(FAULT_OUT)/results/store-quick.log)"; \
	    MPMS=event STORE_TESTS=torture.t $(FAULT_STORE) >$(FAULT_OUT)/results/store-quick.log 2>&1; rc2=$$?; \
	    grep -E '^(# RELIABILITY|store: )' $(FAULT_OUT)/results/store-quick.log; \
	    [ $$rc2 = 0 ] || tail -n 60 $(FAULT_OUT)/results/store-quick.log; \
	fi; \
	[ $$rc1 = 0 ] && [ $$rc2 = 0 ]

fault-store: $(FAULT_DEPS)
	@mkdir -p $(FAULT_OUT)/results
	@echo "fault-store: store.t, upgrade.t and torture.t under $(FAULT_MPMS) (log: $(FAULT_STORE_LOG))"
	@MPMS='$(FAULT_MPMS)' STORE_TESTS='store.t upgrade.t torture.t' $(FAULT_STORE) >$(FAULT_STORE_LOG) 2>&1; rc=$$?; \
	grep -E '^store: ' $(FAULT_STORE_LOG); exit $$rc

# Every part runs even when an earlier one failed, the report is always
# rewritten, and the target fails if any check did.
reliability: $(FAULT_DEPS) fault-build
	@mkdir -p $(FAULT_OUT)/results
	@echo "reliability: t/40-44 under $(FAULT_MPMS) (log: $(FAULT_OUT)/results/apache-test.log)"
	@MPMS='$(FAULT_MPMS)' bash $(FAULT_TOP)/test/run-tests.sh -verbose $(FAULT_TESTS) \
	    >$(FAULT_OUT)/results/apache-test.log 2>&1; rc1=$$?; \
	grep -E '^mpm .*: (PASS|FAIL)' $(FAULT_OUT)/results/apache-test.log; \
	$(FAULT_ENV) bash $(FAULT_SRC)/run.sh full; rc2=$$?; \
	echo "reliability: store.t, upgrade.t and torture.t under $(FAULT_MPMS) (log: $(FAULT_STORE_LOG))"; \
	MPMS='$(FAULT_MPMS)' STORE_TESTS='store.t upgrade.t torture.t' $(FAULT_STORE) >$(FAULT_STORE_LOG) 2>&1; rc4=$$?; \
	grep -E '^store: ' $(FAULT_STORE_LOG); \
	echo "reliability: a rolling upgrade of a cluster (log: $(FAULT_OUT)/results/cluster.log)"; \
	CLUSTER_VERBOSE=1 CLUSTER_TESTS=rolling.t bash $(FAULT_TOP)/test/cluster/run.sh >$(FAULT_OUT)/results/cluster.log 2>&1; rc5=$$?; \
	grep -E '^Result: ' $(FAULT_OUT)/results/cluster.log; \
	perl $(FAULT_SRC)/report.pl --mode full --out $(FAULT_TOP)/test/RELIABILITY.md $(FAULT_OUT)/results; rc3=$$?; \
	echo "reliability: test/RELIABILITY.md written"; \
	[ $$rc1 = 0 ] && [ $$rc2 = 0 ] && [ $$rc3 = 0 ] && [ $$rc4 = 0 ] && [ $$rc5 = 0 ]

.DEFAULT_GOAL := $(FAULT_SAVED_GOAL)
