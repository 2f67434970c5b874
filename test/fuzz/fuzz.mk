# test/fuzz/fuzz.mk: libFuzzer targets for every mod_sse parser that reads outside
# bytes. Included by the top Makefile; every name here starts with fuzz / FUZZ_.
#
#   make fuzz              each target for FUZZ_SECONDS (300) s
#   make fuzz-smoke        each target for FUZZ_SMOKE_SECONDS (60) s; fails on any crash (CI)
#   make -j2 fuzz-smoke    the same, two targets at a time
#   make fuzz-build        only build them, into build/fuzz/
#   make fuzz-run-frame    one target (event_parse event_roundtrip channels frame hist text token
#                          topic)
#   make fuzz-coverage     line coverage of the pure sources by the corpora found so far
#
# Targets (test/fuzz/fuzz_<name>.c): event_parse (text/event-stream publish bodies),
# event_roundtrip (check, serialize, parse, and a WHATWG parser agree), channels
# (channel lists), frame (the relay frame codec), hist (Last-Event-ID lookup and
# history replay), text (UTF-8 check, JSON strings), token (the Mercure hub's JWT
# verifier, linked with libjwt, jansson and OpenSSL), topic (Mercure topic selectors:
# compile and match, checked against a POSIX regexp built as the Go hub builds its own).
# Each starts from its seeds in test/fuzz/corpus/<name>/ and keeps what it finds in
# build/fuzz/corpus/<name>/. A crash, leak, hang or broken property leaves the input in
# test/fuzz/artifacts/ (not in git) and the run prints the command that replays it.
# Copy an input worth keeping into the seed corpus by hand; the binary seeds of
# frame are written by test/fuzz/frame_seeds.py, those of token by token_seeds.py.

FUZZ_SRC   := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
FUZZ_TOP   := $(abspath $(FUZZ_SRC)/../..)
FUZZ_CC    ?= clang-14
FUZZ_SECONDS       ?= 300
FUZZ_SMOKE_SECONDS ?= 60
FUZZ_OUT   ?= $(FUZZ_TOP)/build/fuzz
FUZZ_ARTIFACTS ?= $(FUZZ_TOP)/test/fuzz/artifacts
FUZZ_TARGETS = event_parse event_roundtrip channels frame hist text token topic
# extra libFuzzer options for every run, e.g. FUZZ_RUN_FLAGS=-jobs=4
FUZZ_RUN_FLAGS ?=
FUZZ_CFLAGS ?= -g -O1 -fno-omit-frame-pointer -std=gnu99 -Wall -Wextra
FUZZ_SAN    = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CPPFLAGS = -I/usr/include/apr-1.0 -I$(FUZZ_TOP) -I$(FUZZ_SRC)
# fuzz_palloc.c replaces libapr's apr_palloc; libapr must see it
FUZZ_LIBS  = -lapr-1 -Wl,--export-dynamic-symbol=apr_palloc \
             -Wl,--export-dynamic-symbol=apr_pcalloc
FUZZ_PKGS  = clang-14 libclang-rt-14-dev libapr1-dev llvm-14 libjwt-dev libjansson-dev libssl-dev
FUZZ_COV_SRCS = $(FUZZ_TOP)/sse_event.c $(FUZZ_TOP)/sse_proto.c $(FUZZ_TOP)/sse_buf.c $(FUZZ_TOP)/sse_hist.c \
                $(FUZZ_TOP)/sse_token.c $(FUZZ_TOP)/sse_topic.c

FUZZ_COMMON = $(FUZZ_SRC)/fuzz_palloc.c
FUZZ_HDRS   = $(wildcard $(FUZZ_SRC)/*.h) $(FUZZ_TOP)/sse_event.h $(FUZZ_TOP)/sse_proto.h $(FUZZ_TOP)/sse_buf.h \
              $(FUZZ_TOP)/sse_hist.h $(FUZZ_TOP)/sse_token.h $(FUZZ_TOP)/sse_topic.h
FUZZ_SRCS_event_parse     = $(FUZZ_TOP)/sse_event.c
FUZZ_SRCS_event_roundtrip = $(FUZZ_TOP)/sse_event.c $(FUZZ_SRC)/fuzz_ref.c
FUZZ_SRCS_channels        = $(FUZZ_TOP)/sse_event.c
FUZZ_SRCS_frame           = $(FUZZ_TOP)/sse_proto.c $(FUZZ_TOP)/sse_buf.c $(FUZZ_TOP)/sse_event.c $(FUZZ_TOP)/sse_census.c
FUZZ_SRCS_hist            = $(FUZZ_TOP)/sse_hist.c $(FUZZ_TOP)/sse_proto.c $(FUZZ_TOP)/sse_buf.c
FUZZ_SRCS_text            = $(FUZZ_TOP)/sse_event.c $(FUZZ_SRC)/fuzz_ref.c
FUZZ_SRCS_token           = $(FUZZ_TOP)/sse_token.c
FUZZ_SRCS_topic           = $(FUZZ_TOP)/sse_topic.c
# libraries of one target, after FUZZ_LIBS
FUZZ_LIBS_token           = -ljwt -ljansson -lcrypto
FUZZ_DICT_event_parse     = -dict=$(FUZZ_SRC)/event.dict
FUZZ_DICT_event_roundtrip = -dict=$(FUZZ_SRC)/event.dict
FUZZ_DICT_token           = -dict=$(FUZZ_SRC)/token.dict
FUZZ_DICT_topic           = -dict=$(FUZZ_SRC)/topic.dict

# Whoever was the default goal before this file stays it (see the end).
FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-deps fuzz-coverage $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz: FUZZ_TIME = $(FUZZ_SECONDS)
fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-smoke: FUZZ_TIME = $(FUZZ_SMOKE_SECONDS)
fuzz-smoke: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_OUT)/fuzz_%)

# Install what is missing (as root), or say what to run.
fuzz-deps:
	@sh tools/need-debs $(FUZZ_PKGS)

define FUZZ_RULES
$(FUZZ_OUT)/fuzz_$(1): $(FUZZ_SRC)/fuzz_$(1).c $(FUZZ_SRCS_$(1)) $(FUZZ_COMMON) $(FUZZ_HDRS) | fuzz-deps
	@mkdir -p $$(@D)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) $$(FUZZ_SAN) $$(FUZZ_CPPFLAGS) -o $$@ \
	    $$< $(FUZZ_SRCS_$(1)) $(FUZZ_COMMON) $$(FUZZ_LIBS) $(FUZZ_LIBS_$(1))

# the same without sanitizers, counting lines, for fuzz-coverage
$(FUZZ_OUT)/cov/fuzz_$(1): $(FUZZ_SRC)/fuzz_$(1).c $(FUZZ_SRCS_$(1)) $(FUZZ_COMMON) $(FUZZ_HDRS) | fuzz-deps
	@mkdir -p $$(@D)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
	    $$(FUZZ_CPPFLAGS) -o $$@ $$< $(FUZZ_SRCS_$(1)) $(FUZZ_COMMON) $$(FUZZ_LIBS) $(FUZZ_LIBS_$(1))

fuzz-run-$(1): $(FUZZ_OUT)/fuzz_$(1)
	@$$(call FUZZ_RUN,$(1))
endef

# One run. libFuzzer's log goes to build/fuzz/<name>.log; one summary line is printed,
# and the end of the log when it failed. FUZZ_TIME comes from fuzz or fuzz-smoke.
FUZZ_RUN = mkdir -p $(FUZZ_OUT)/corpus/$(1) $(FUZZ_ARTIFACTS); \
	log=$(FUZZ_OUT)/$(1).log; secs=$(or $(FUZZ_TIME),$(FUZZ_SECONDS)); \
	echo "fuzz $(1): $$secs s (log: $$log)"; \
	$(FUZZ_OUT)/fuzz_$(1) -max_total_time=$$secs -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_ARTIFACTS)/$(1)- $(FUZZ_DICT_$(1)) $(FUZZ_RUN_FLAGS) \
	    $(FUZZ_OUT)/corpus/$(1) $(FUZZ_SRC)/corpus/$(1) >$$log 2>&1; \
	rc=$$?; \
	runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log); \
	cov=$$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9]*[A-Za-z]*' $$log | tail -n 1); \
	if [ $$rc = 0 ]; then \
	  echo "fuzz $(1): ok, $${runs:-?} runs, $$cov"; \
	else \
	  echo "fuzz $(1): FAILED (exit $$rc) after $${runs:-?} runs; end of $$log:"; \
	  grep -v '^\#[0-9]' $$log | tail -n 40; \
	  art=$$(sed -n 's/.*Test unit written to //p' $$log | tail -n 1); \
	  [ -z "$$art" ] || echo "replay: $(FUZZ_OUT)/fuzz_$(1) $$art"; \
	  exit 1; \
	fi

$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULES,$(t))))

# Runs every input of every corpus once and reports the lines of the pure sources run.
fuzz-coverage: $(FUZZ_TARGETS:%=$(FUZZ_OUT)/cov/fuzz_%)
	@rm -f $(FUZZ_OUT)/cov/*.profraw
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_OUT)/corpus/$$t; \
	  LLVM_PROFILE_FILE=$(FUZZ_OUT)/cov/$$t.profraw $(FUZZ_OUT)/cov/fuzz_$$t -runs=0 \
	      $(FUZZ_OUT)/corpus/$$t $(FUZZ_SRC)/corpus/$$t >$(FUZZ_OUT)/cov/$$t.log 2>&1 \
	    || { echo "fuzz-coverage: $$t failed, see $(FUZZ_OUT)/cov/$$t.log"; exit 1; }; \
	done
	@llvm-profdata-14 merge -o $(FUZZ_OUT)/cov/all.profdata $(FUZZ_OUT)/cov/*.profraw
	@llvm-cov-14 report $(FUZZ_OUT)/cov/fuzz_$(firstword $(FUZZ_TARGETS)) \
	    $(foreach t,$(wordlist 2,99,$(FUZZ_TARGETS)),-object $(FUZZ_OUT)/cov/fuzz_$(t)) \
	    -instr-profile=$(FUZZ_OUT)/cov/all.profdata $(FUZZ_COV_SRCS)
	@echo "line by line: llvm-cov-14 show $(FUZZ_OUT)/cov/fuzz_<target>" \
	    "-instr-profile=$(FUZZ_OUT)/cov/all.profdata <source.c>"

.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)
