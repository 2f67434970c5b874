# bench/bench.mk: the benchmark's targets, included by the top-level Makefile.
#   make bench         mod_sse against Nchan and the naive limit server: prints
#                      the table, writes bench/results/results.md and .png
#   make bench-quick   the same at N=1000 (about two minutes)
#   make bench-smoke   a tiny run (N=200; TLS rows N=50) that checks that
#                      everything builds and works; results stay in build/bench/ (for CI)
#   make bench-tls     the TLS rows only (T1-T4, N=10,000): results-tls.md
#   make bench-tools   only build the tools in build/bench/bin (ssebench, limit,
#                      wakeup)
#   make bench BENCH_ONLY=C   the cluster part only (C1-C5, bench/cluster.sh, about
#                      2 minutes): three httpd (event, worker, prefork) on one Redis
#                      beside one httpd without it: publishes/s, fan-out, latency
#                      across servers, Redis's CPU per publish, then a Redis failover
#                      (sentinels) with SSEClusterWait 1 and 0: results-cluster.md.
#                      Part of "make bench"; not of bench-smoke (CI) unless named
# Any BENCH_* variable of bench/run.sh may be given on the command line,
# e.g. make bench BENCH_N=50000 or make bench BENCH_ONLY="W2 W4".

BENCH_DIR    := bench
BENCH_BIN    := build/bench/bin
BENCH_CC     ?= gcc
BENCH_CFLAGS ?= -O2 -Wall -Wextra
BENCH_TOOLS  := $(BENCH_BIN)/ssebench $(BENCH_BIN)/limit $(BENCH_BIN)/wakeup
# ssebench --tls speaks HTTPS through OpenSSL (libssl-dev)
BENCH_SSL_LIBS ?= -lssl -lcrypto
# Passed to run.sh whether they come from the command line or the environment.
BENCH_VARS    = $(foreach v,$(filter BENCH_%,$(.VARIABLES)),$(if $(filter environment command line,$(origin $(v))),$(v)='$($(v))'))

.PHONY: bench bench-quick bench-smoke bench-tls bench-tools

bench-tools: $(BENCH_TOOLS)

$(BENCH_BIN)/ssebench: $(BENCH_DIR)/ssebench.c
	@mkdir -p $(BENCH_BIN)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $< $(BENCH_SSL_LIBS)

$(BENCH_BIN)/limit: $(BENCH_DIR)/limit.c
	@mkdir -p $(BENCH_BIN)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $<

$(BENCH_BIN)/wakeup: $(BENCH_DIR)/wakeup.c
	@mkdir -p $(BENCH_BIN)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $<

bench: deps mod_sse.so
	env $(BENCH_VARS) bash $(BENCH_DIR)/run.sh

bench-quick: deps mod_sse.so
	env $(BENCH_VARS) BENCH_QUICK=1 bash $(BENCH_DIR)/run.sh

bench-smoke: deps mod_sse.so
	env $(BENCH_VARS) BENCH_SMOKE=1 bash $(BENCH_DIR)/run.sh

bench-tls: deps mod_sse.so
	env BENCH_ONLY="T1 T2 T3 T4" $(BENCH_VARS) bash $(BENCH_DIR)/run.sh
