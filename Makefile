# Makefile — builds libprefork, the prefork CLI, examples, tests and benchmarks.
#
#   make            build/prefork, build/libprefork.a, build/examples/*
#   make serve      build, then serve the current folder on http://127.0.0.1:8000
#   make test       install what the tests need (if missing), run every test
#   make test-san   the whole suite again under ASan + UBSan (build/san/)
#   make fuzz       run each libFuzzer target (FUZZ_SECONDS, default 60)
#   make bench      run the benchmarks (bench/README.md)
#
# Layout: one directory per role. Every .c under src/lib is the library,
# src/http the HTTP/1.1 server core (built on the library's public API
# only), src/static the static site (a user of the core), src/cli the
# prefork command; each examples/X.c, tests/*/X.c and bench/X.c
# is one program. Adding a file needs no change here.

CC      ?= cc
SAN     ?=
B       := build$(if $(SAN),/san)
CSTD    := -std=c17 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
OPT     := $(if $(SAN),-O1 -g -fno-omit-frame-pointer $(SANFLAGS),-O2 -g)
CFLAGS  += $(CSTD) $(WARN) $(OPT) -Iinclude -Isrc -MMD -MP
# Full RELRO: every symbol bound at start (in the master, before the fork),
# the GOT then read-only. Workers never run the lazy binder, so they never
# touch the dynamic loader's pages: about 150 KiB less RSS per worker.
LDFLAGS += -Wl,-z,relro,-z,now $(if $(SAN),$(SANFLAGS))

LIB_SRC  := $(wildcard src/lib/*.c)
HTTP_SRC := $(wildcard src/http/*.c)
STATIC_SRC := $(wildcard src/static/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
LIB      := $(B)/libprefork.a
HTTPLIB  := $(B)/libpfhttp.a
STATICLIB := $(B)/libpfstatic.a
EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
UNIT     := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/*.c))
INTEG    := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(wildcard tests/integration/*.c))
HELPERS  := $(patsubst tests/helpers/%.c,$(B)/tests/helpers/%,$(wildcard tests/helpers/*.c))
BENCH    := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))
TEST_LIBS := $(shell pkg-config --libs criterion 2>/dev/null || echo -lcriterion)

.PHONY: all serve test test-san check deps fuzz bench clean
# Objects of single-file programs are kept, so a second make builds nothing.
.SECONDARY:
all: $(B)/prefork $(LIB) $(EXAMPLES)

# V=1 shows the commands.
Q := $(if $(V),,@)

$(B)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_SRC:%.c=$(B)/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(HTTPLIB): $(HTTP_SRC:%.c=$(B)/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(STATICLIB): $(STATIC_SRC:%.c=$(B)/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(B)/prefork: $(CLI_SRC:%.c=$(B)/%.o) $(STATICLIB) $(HTTPLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^

$(B)/examples/%: $(B)/examples/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^

$(B)/tests/helpers/%: $(B)/tests/helpers/%.o $(HTTPLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^

# tests/*/*support.c are shared by the tests of their folder, not tests.
USUPPORT := $(patsubst %.c,$(B)/%.o,$(wildcard tests/unit/*support.c))
$(B)/tests/unit/%: $(B)/tests/unit/%.o $(USUPPORT) $(STATICLIB) $(HTTPLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

# tests/integration/*support.c are shared by the integration tests, not tests.
ISUPPORT := $(patsubst %.c,$(B)/%.o,$(wildcard tests/integration/*support.c))
$(B)/tests/integration/%: $(B)/tests/integration/%.o $(ISUPPORT) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

# bench/*support.c is shared by the benchmark clients, not a program.
BSUPPORT := $(patsubst %.c,$(B)/%.o,$(wildcard bench/*support.c))
$(B)/bench/%: $(B)/bench/%.o $(BSUPPORT) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^

INTEG := $(filter-out %support,$(INTEG))
UNIT := $(filter-out %support,$(UNIT))
BENCH := $(filter-out %support,$(BENCH))

check: all $(UNIT) $(INTEG) $(HELPERS) $(BENCH)

deps:
	@tests/deps.sh

test: deps
	$(MAKE) check
	tests/run.sh $(B)

test-san: deps
	$(MAKE) SAN=1 check
	tests/run.sh build/san

serve: all
	$(B)/prefork serve .

fuzz: deps
	tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: all $(BENCH)
	bench/run.sh

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
