# candor - build, test, sanitizers, format.
#
#   make              build/candor
#   make test         unit tests (cmocka) and integration tests (pytest)
#   make asan         build/asan/candor with AddressSanitizer and UBSan
#   make test-asan    every test against the sanitizer build (what CI runs)
#   make fmt          apply .clang-format
#   make install      build/candor into $(DESTDIR)$(PREFIX)/bin (/usr/local)
#
# V=asan selects the sanitizer variant for any target.

V ?= release
PKGS := libknot libuv gnutls libmicrohttpd
CC ?= cc

ifeq ($(V),asan)
BUILD := build/asan
VFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
          -fno-sanitize-recover=undefined
else
BUILD := build
VFLAGS := -O2 -g
endif

# The commit, "-dirty" when tracked files differ from it.
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)$(shell \
        git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo -dirty)
CFLAGS ?=
CPPFLAGS := -Isrc -D_GNU_SOURCE -DCND_COMMIT=\"$(COMMIT)\" \
            $(shell pkg-config --cflags $(PKGS))
WFLAGS := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
          -Wno-unused-parameter -Wno-format-truncation
ALL_CFLAGS := $(WFLAGS) $(VFLAGS) $(CFLAGS)
LDLIBS := $(shell pkg-config --libs $(PKGS)) -lpthread
TEST_LDLIBS := $(shell pkg-config --libs cmocka)

PLUGINS := $(shell awk '!/^\#/ && NF == 1 { print $$1 }' plugin.cfg)
PLUGIN_SRC := $(foreach p,$(PLUGINS),$(filter-out %_test.c,$(wildcard src/plugins/$(p)/*.c)))
LIB_SRC := $(wildcard src/util/*.c src/corefile/*.c src/core/*.c src/dns/*.c \
                      src/admin/*.c src/tools/*.c) \
           $(PLUGIN_SRC)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/plugins.o
MAIN_OBJ := $(BUILD)/obj/src/main.o

UNIT_SRC := $(wildcard tests/unit/test_*.c) $(wildcard src/plugins/*/*_test.c)
UNIT_BIN := $(patsubst %.c,$(BUILD)/unit/%,$(notdir $(UNIT_SRC)))

PYTHON ?= /usr/bin/python3

.PHONY: all asan test test-asan unit integration check-includes fmt clean \
        install uninstall
all: $(BUILD)/candor

asan:
	$(MAKE) V=asan all

test-asan:
	$(MAKE) V=asan test

# "make Q=" shows the full commands.
Q ?= @

$(BUILD)/candor: $(LIB_OBJ) $(MAIN_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

# The commit goes into the version string (server.c): a stamp rewritten
# only when HEAD moves, so a commit alone rebuilds and relinks.
COMMIT_STAMP := $(BUILD)/commit
$(shell mkdir -p $(BUILD); [ "$$(cat $(COMMIT_STAMP) 2>/dev/null)" = "$(COMMIT)" ] || \
        echo "$(COMMIT)" > $(COMMIT_STAMP))
$(BUILD)/obj/src/core/server.o: $(COMMIT_STAMP)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/plugins.c: plugin.cfg scripts/gen-plugins
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	$(Q)scripts/gen-plugins plugin.cfg > $@

$(BUILD)/obj/gen/plugins.o: $(BUILD)/gen/plugins.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# Each unit test is a program of its own, linked with everything but main
# and with tests/unit/vloop.c (a server on virtual time; its clock is off
# until a test turns it on).
UNIT_LIB_OBJ := $(BUILD)/obj/tests/unit/vloop.o
.SECONDARY: $(UNIT_LIB_OBJ)
vpath test_%.c tests/unit $(wildcard src/plugins/*)
vpath %_test.c $(wildcard src/plugins/*)
$(BUILD)/unit/%: %.c $(LIB_OBJ) $(UNIT_LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) -o $@ $< $(LIB_OBJ) \
	    $(UNIT_LIB_OBJ) $(LDLIBS) $(TEST_LDLIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integration: $(BUILD)/candor
	CANDOR=$(abspath $(BUILD)/candor) CANDOR_VARIANT=$(V) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# Plugins include only the plugin ABI (core/plugin.h, dns/, util/).
check-includes:
	@scripts/check-includes

test: check-includes all unit integration

fmt:
	clang-format -i $$(find src tests -name '*.[ch]')

clean:
	rm -rf build

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin

install: $(BUILD)/candor
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/candor $(DESTDIR)$(BINDIR)/candor

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/candor

# Benchmarks (bench/README.md), never part of "make test": "make bench" runs
# the full harness (about 15 minutes) and writes bench/RESULTS.md; "make
# bench-smoke" runs the same code for seconds into build/bench/SMOKE.md (the
# integration tests run it too, from tests/integration/test_bench_smoke.py).
.PHONY: bench bench-smoke
build/bench/echo: bench/echo.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(WFLAGS) -D_GNU_SOURCE -O2 -g -o $@ $<

bench: $(BUILD)/candor build/bench/echo
	$(PYTHON) bench/run --candor $(BUILD)/candor --out bench/RESULTS.md

bench-smoke: $(BUILD)/candor build/bench/echo
	$(PYTHON) bench/run --smoke --require-all --candor $(BUILD)/candor \
	    --out build/bench/SMOKE.md

-include $(shell find build -name '*.d' 2>/dev/null)
