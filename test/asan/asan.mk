# test/asan/asan.mk: the Apache::Test suite against an ASan + UBSan build of
# mod_sse. Included by the top Makefile; every name here starts with asan / ASAN_.
#
#   make test-asan                     build build/asan/mod_sse.so, run every MPM
#   make test-asan ASAN_MPMS=prefork   some MPMs only
#   make test-asan ASAN_STRICT=0       fail only on reports that name mod_sse code
#   make test-asan ASAN_LEAKS=1 ASAN_STRICT=0   LeakSanitizer too (httpd, OpenSSL
#                                      and PCRE leak at exit: only mod_sse's count)
#   make test-asan-cluster             the several-server tests (test/cluster:
#                                      run.sh and sentinel.sh), every httpd
#                                      under ASan + UBSan
#   make asan-build                    only build the module
#   make test-asan-churn               TLS streams on the event MPM (SSESuspend):
#                                      10,000 open/close cycles, a graceful
#                                      restart and a stop (test/asan/churn.sh;
#                                      ASAN_CHURN_CYCLES, ASAN_CHURN_STREAMS)
#
# The module is compiled with clang and apxs's own flags straight into
# build/asan/mod_sse.so, so ./mod_sse.so and ./.libs are not touched. Not with
# apxs -c: its libtool links with gcc whatever CC says, and with gcc's runtimes
# UBSan ignores log_path once ASan is loaded (its reports went to stderr, lost
# among httpd's); clang's ASan runtime carries UBSan and writes both to one
# file per process. test/asan/run.sh then runs the suite with Debian's httpd,
# that runtime preloaded, and fails on any report (build/asan/reports).

ASAN_SRC   := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
ASAN_TOP   := $(abspath $(ASAN_SRC)/../..)
ASAN_APXS  ?= apxs
ASAN_CC    ?= clang-14
ASAN_OUT   ?= $(ASAN_TOP)/build/asan
ASAN_MPMS  ?= event worker prefork
ASAN_STRICT ?= 1
ASAN_LEAKS ?= 0
# The module's sources: the top Makefile's SRCS, else every C file at the top
# (the rule's prerequisites are always all of them: SRCS may be set after this
# file is read). It links with what `make` links.
ASAN_MOD_SRCS = $(if $(SRCS),$(addprefix $(ASAN_TOP)/,$(SRCS)),$(wildcard $(ASAN_TOP)/*.c))
ASAN_MOD_DEPS = $(wildcard $(ASAN_TOP)/*.c $(ASAN_TOP)/*.h)
ASAN_MOD_LIBS ?= -lhiredis -ljwt -ljansson -lssl -lcrypto -llmdb -lz
# -fsanitize-recover: a report does not end the process, so one run shows them all.
# -include stddef.h: apr_general.h picks offsetof for APR_OFFSETOF only when it is
# already defined, else a NULL->field idiom that UBSan reports in every
# APR_BRIGADE_INSERT_TAIL (the APR ring macros), which is APR's and not ours.
ASAN_CFLAGS = -DSSE_VERSION=$(shell cat $(ASAN_TOP)/VERSION) -DSSE_BUILD_STAMP=$(shell date +%s%3N) -std=gnu99 -Wall -g -O1 -fno-omit-frame-pointer -include stddef.h \
              -fsanitize=address,undefined -fsanitize-recover=address,undefined
ASAN_PKGS  = clang-14 libclang-rt-14-dev apache2 apache2-dev libhiredis-dev libjwt-dev libjansson-dev libssl-dev liblmdb-dev
# what `make test` needs besides mod_sse.so (targets of the top Makefile)
ASAN_TEST_DEPS ?= deps test/t/conf/tls/localhost.key

ASAN_CHURN_CYCLES ?= 10000
ASAN_CHURN_STREAMS ?= 300
# the TLS client (test/fault/fault.mk's targets: libssl-dev, build/fault/ssefault)
ASAN_CHURN_DEPS ?= deps fault-debs fault-build

ASAN_SAVED_GOAL := $(.DEFAULT_GOAL)

.PHONY: test-asan test-asan-churn test-asan-cluster asan-build asan-deps

test-asan: $(ASAN_OUT)/mod_sse.so $(ASAN_TEST_DEPS)
	ASAN_MODULE=$(ASAN_OUT)/mod_sse.so ASAN_MPMS="$(ASAN_MPMS)" ASAN_STRICT=$(ASAN_STRICT) \
	    ASAN_LEAKS=$(ASAN_LEAKS) ASAN_CC=$(ASAN_CC) bash $(ASAN_SRC)/run.sh

test-asan-churn: $(ASAN_OUT)/mod_sse.so $(ASAN_CHURN_DEPS)
	ASAN_MODULE=$(ASAN_OUT)/mod_sse.so ASAN_CC=$(ASAN_CC) ASAN_CHURN_CYCLES=$(ASAN_CHURN_CYCLES) \
	    ASAN_CHURN_STREAMS=$(ASAN_CHURN_STREAMS) bash $(ASAN_SRC)/churn.sh

# what test/cluster needs (Redis, Sentinel: the top Makefile's deps)
ASAN_CLUSTER_DEPS ?= deps

test-asan-cluster: $(ASAN_OUT)/mod_sse.so $(ASAN_CLUSTER_DEPS)
	ASAN_SUITE=cluster ASAN_MODULE=$(ASAN_OUT)/mod_sse.so ASAN_STRICT=$(ASAN_STRICT) \
	    ASAN_LEAKS=$(ASAN_LEAKS) ASAN_CC=$(ASAN_CC) bash $(ASAN_SRC)/run.sh

asan-build: $(ASAN_OUT)/mod_sse.so

# No runtime linked in (httpd gets it preloaded); -shared-libasan records it as needed.
$(ASAN_OUT)/mod_sse.so: $(ASAN_MOD_DEPS) | asan-deps
	@mkdir -p $(@D)
	$(ASAN_CC) -shared -fPIC -shared-libasan $(ASAN_CFLAGS) \
	    $$($(ASAN_APXS) -q CFLAGS) $$($(ASAN_APXS) -q EXTRA_CPPFLAGS) \
	    $$($(ASAN_APXS) -q EXTRA_INCLUDES) -I$(ASAN_TOP) \
	    -Wl,-z,relro -Wl,-z,now -o $@.tmp $(ASAN_MOD_SRCS) $(ASAN_MOD_LIBS)
	mv $@.tmp $@

# Install what is missing (as root), or say what to run.
asan-deps:
	@sh tools/need-debs $(ASAN_PKGS)

.DEFAULT_GOAL := $(ASAN_SAVED_GOAL)
