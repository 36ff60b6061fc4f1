# rtcauth build. GNU make + pkg-config.
#   make            release build into build/
#   make test       ASan+UBSan build into build-asan/, then every test
#   make run        bootstrap ./var and start rtcauthd in the foreground
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (default 60)
#   make bench      every benchmark (bench-sip, bench-oauth, bench-sa, bench-tls)
#   make install    PREFIX=/usr/local DESTDIR=
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?=
BUILD   ?= build$(if $(SAN),-$(SAN))
CC      ?= cc

PKGS    := openssl libevent libevent_openssl libevent_pthreads sqlite3 inih jansson libsystemd libcurl krb5-gssapi krb5 zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
# snprintf truncation is deliberate and checked where it matters
ifneq ($(findstring clang,$(shell $(CC) --version 2>/dev/null)),clang)
WARN    += -Wno-format-truncation
endif
OPT     ?= -O2 -g
CFLAGS  += $(OPT) -std=c11 -D_GNU_SOURCE $(WARN) -Isrc $(PKG_CFLAGS) -fno-strict-aliasing -pthread
LDLIBS  += $(PKG_LIBS) -pthread -lm
ifeq ($(SAN),asan)
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRCS := $(filter-out src/daemon/main.c src/ctl/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
DAEMON_OBJS := $(BUILD)/src/daemon/main.o
CTL_OBJS := $(BUILD)/src/ctl/main.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))

.PHONY: all test run fuzz bench bench-sip bench-oauth bench-turn bench-sa bench-tls install clean format check-format deps
all: $(BUILD)/rtcauthd $(BUILD)/rtcauthctl $(UNIT_BINS)

$(BUILD)/librtcauth.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/rtcauthd: $(DAEMON_OBJS) $(BUILD)/librtcauth.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/rtcauthctl: $(CTL_OBJS) $(BUILD)/librtcauth.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/librtcauth.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

deps:
	scripts/install-deps

# Fuzz targets: clang + libFuzzer + ASan/UBSan, built into build-fuzz/.
FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Isrc $(PKG_CFLAGS) -pthread -fsanitize=fuzzer-no-link,address,undefined
$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_BUILD)/librtcauth.a: $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
	$(AR) rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/fuzz/fuzz_%.o $(FUZZ_BUILD)/librtcauth.a
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(FUZZ_BUILD)/%)
fuzz-build: $(FUZZ_BINS)
FUZZ_SECONDS ?= 60
fuzz: deps fuzz-build
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p build-fuzz/corpus/$$n; \
	  echo "== $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=70000 build-fuzz/corpus/$$n fuzz/corpus/$$n || exit 1; done

# both builds on every core unless make was given -j; run-tests runs
# RTC_TEST_JOBS programs at once (default: every core)
test: deps
	$(MAKE) $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc)) SAN=asan all fuzz-build
	scripts/run-tests build-asan

run: deps all
	scripts/run-dev $(BUILD)

bench: bench-sip bench-oauth bench-turn bench-sa bench-tls
bench-sip: all
	scripts/install-deps --bench
	bench/sip/run $(BUILD)
bench-oauth: all
	scripts/install-deps --bench
	bench/oauth/run $(BUILD)
# TURN relay against coturn's turnserver (bench/turn/run); the allocation
# load generator links our STUN codec, built like the daemon
$(BUILD)/bench/turn_alloc_load: bench/turn/alloc_load.c $(BUILD)/librtcauth.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/librtcauth.a $(LDLIBS)
$(BUILD)/bench/turn_relay_load: bench/turn/relay_load.c $(BUILD)/librtcauth.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/librtcauth.a $(LDLIBS)
bench-turn: $(BUILD)/rtcauthd $(BUILD)/rtcauthctl $(BUILD)/bench/turn_alloc_load $(BUILD)/bench/turn_relay_load
	scripts/install-deps --bench
	bench/turn/run $(BUILD)
# [MS-SIPAE] SAs in process (bench/sa/bench_sa.c), optimized like the daemon
$(BUILD)/bench/bench_sa: bench/sa/bench_sa.c $(BUILD)/librtcauth.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/librtcauth.a $(LDLIBS)
bench-sa: $(BUILD)/rtcauthd $(BUILD)/rtcauthctl $(BUILD)/bench/bench_sa
	scripts/install-deps
	bench/sa/run $(BUILD)
# TLS client certificates (bench/tls/run): handshakes against openssl
# s_server, issuance against the CA key's raw signing rate
$(BUILD)/bench/bench_tls: bench/tls/bench_tls.c $(BUILD)/librtcauth.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/librtcauth.a $(LDLIBS)
bench-tls: $(BUILD)/rtcauthd $(BUILD)/rtcauthctl $(BUILD)/bench/bench_tls
	bench/tls/run $(BUILD)

install: $(BUILD)/rtcauthd $(BUILD)/rtcauthctl
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)/etc/rtcauth
	install -m 755 $(BUILD)/rtcauthd $(BUILD)/rtcauthctl $(DESTDIR)$(PREFIX)/sbin/
	install -m 644 docs/rtcauth.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 docs/rtcauthd.8 docs/rtcauthctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	# the example config's state lives in ./var for `make run`; an installed
	# one uses the default /var/lib/rtcauth. Never overwrite an operator's file.
	test -e $(DESTDIR)/etc/rtcauth/rtcauth.conf || \
	  sed -e 's|^state_dir = \.\./var$$|# state_dir = /var/lib/rtcauth|' \
	      -e 's|^digest_algorithms = MD5, SHA-256, SHA-512-256$$|# digest_algorithms = SHA-512-256, SHA-256, MD5|' \
	      etc/rtcauth.conf \
	  >$(DESTDIR)/etc/rtcauth/rtcauth.conf && chmod 640 $(DESTDIR)/etc/rtcauth/rtcauth.conf
	install -d $(DESTDIR)/lib/systemd/system
	sed -e 's|/usr/local/sbin/|$(PREFIX)/sbin/|g' etc/rtcauthd.service \
	  >$(DESTDIR)/lib/systemd/system/rtcauthd.service

format:
	clang-format -i $$(find src tests fuzz -name '*.[ch]')
check-format:
	clang-format --dry-run --Werror $$(find src tests fuzz -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz
