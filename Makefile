# Makefile — builds libprefork, the prefork CLI, examples, tests and benchmarks.
#
#   make            build/prefork, build/libprefork.a and .so, build/examples/*
#   make install    install them under PREFIX (/usr/local); DESTDIR stages them
#   make uninstall  remove exactly what make install put
#   make serve      install what building needs (if missing: OpenSSL, zlib,
#                   Brotli headers), build, then serve the current folder
#                   on http://127.0.0.1:8000
#   make test       install what the tests need (if missing), run every test
#   make test-san   the whole suite again under ASan + UBSan (build/san/)
#   make fuzz       run each libFuzzer target (FUZZ_SECONDS, default 60)
#   make bench      run the benchmarks (bench/README.md)
#   make python     the Python package in build/python (part of make when
#                   PYTHON has its headers): PYTHONPATH=build/python
#                   python3 -m prefork MODULE:APP
#
# Layout: one directory per role. Every .c in a folder of src/lib is the
# library (core, worker, master: -Isrc, so "lib/core/internal.h"),
# src/http the HTTP/1.1 server core (built on the library's public API
# only), src/tls its TLS transport (OpenSSL 3), src/static the static
# site (a user of the core), src/cli the
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

LIB_SRC  := $(wildcard src/lib/*/*.c)
HTTP_SRC := $(wildcard src/http/*.c)
TLS_SRC  := $(wildcard src/tls/*.c)
STATIC_SRC := $(wildcard src/static/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
LIB      := $(B)/libprefork.a
# The version is PF_VERSION in prefork.h, so the two cannot drift; the
# soname carries its first number (0.x: libprefork.so.0).
VERSION  := $(shell sed -n 's/^\#define PF_VERSION "\(.*\)"/\1/p' include/prefork.h)
$(if $(VERSION),,$(error no PF_VERSION "X.Y.Z" in include/prefork.h))
SONAME   := libprefork.so.$(firstword $(subst ., ,$(VERSION)))
SHLIB    := $(B)/libprefork.so.$(VERSION)
HTTPLIB  := $(B)/libpfhttp.a
# TLS (src/tls) is OpenSSL 3. The tests and the Python extension link it;
# the prefork command loads it as a module, prefork-tls.so, only when a
# listener has ,tls (a plain server never maps OpenSSL: 460 KiB less RSS
# per worker). The command has its option parsing (config.c) built in and
# exports to the module the few calls of ours it makes (tls-exports.list).
TLSLIB   := $(B)/libpftls.a
TLS_MOD  := $(B)/prefork-tls.so
TLS_MOD_SRC := $(filter-out src/tls/config.c,$(TLS_SRC))
SSL_LIBS := $(shell pkg-config --libs libssl libcrypto 2>/dev/null || echo -lssl -lcrypto)
# The static site compresses with zlib (gzip) and Brotli (br).
ZIP_LIBS := $(shell pkg-config --libs zlib libbrotlienc 2>/dev/null || echo -lz -lbrotlienc)
STATICLIB := $(B)/libpfstatic.a
EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
UNIT     := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/*.c))
INTEG    := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(wildcard tests/integration/*.c))
HELPERS  := $(patsubst tests/helpers/%.c,$(B)/tests/helpers/%,$(wildcard tests/helpers/*.c))
BENCH    := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))
TEST_LIBS := $(shell pkg-config --libs criterion 2>/dev/null || echo -lcriterion)

# The Python package (python/): its .py files copied, and the extension
# prefork._prefork built from python/src with the library and the HTTP
# core, position-independent. PYTHON names an interpreter that has pytest
# (Debian's, where apt installs python3-pytest and python3-flask); any
# CPython of the same version loads the result (same EXT_SUFFIX).
PYTHON  ?= /usr/bin/python3
PY_CFG  := $(shell $(PYTHON) -c 'import sysconfig as s; print(s.get_config_var("EXT_SUFFIX"), s.get_paths()["include"])' 2>/dev/null)
PY_EXT  := $(word 1,$(PY_CFG))
PY_INC  := $(word 2,$(PY_CFG))
PY_OK   := $(and $(PY_EXT),$(wildcard $(PY_INC)/Python.h))
PY_SRC  := $(wildcard python/src/*.c)
PY_DIR  := $(B)/python/prefork
PY_SO   := $(PY_DIR)/_prefork$(PY_EXT)
PY_FILES := $(patsubst python/prefork/%,$(PY_DIR)/%,$(wildcard python/prefork/*.py))

.PHONY: all serve test test-san check deps build-deps fuzz bench clean install uninstall FORCE
# Objects of single-file programs are kept, so a second make builds nothing.
.SECONDARY:
all: $(B)/prefork $(TLS_MOD) $(LIB) $(SHLIB) $(EXAMPLES) $(if $(PY_OK),python,python-skipped)

# Without the headers the rest still builds; say so, once, rather than fail.
.PHONY: python-skipped
python-skipped:
	@echo "make: the Python package is not built: no Python.h for $(PYTHON) (apt-get install python3-dev)"

# V=1 shows the commands.
Q := $(if $(V),,@)

$(B)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

.PHONY: python
python: $(PY_SO) $(PY_FILES)

$(B)/pic/python/%.o: CFLAGS += -I$(PY_INC) -Ipython/src

$(PY_SO): $(PY_SRC:%.c=$(B)/pic/%.o) $(LIB_SRC:%.c=$(B)/pic/%.o) $(HTTP_SRC:%.c=$(B)/pic/%.o) \
		$(TLS_SRC:%.c=$(B)/pic/%.o) python/src/_prefork.map
	@mkdir -p $(@D)
	$(CC) -shared -Wl,--version-script,python/src/_prefork.map $(LDFLAGS) -o $@ \
		$(filter %.o,$^) $(SSL_LIBS) -lpthread

$(PY_DIR)/%.py: python/prefork/%.py
	@mkdir -p $(@D)
	cp $< $@

$(LIB): $(LIB_SRC:%.c=$(B)/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# The shared library is built from its own position-independent objects
# (build/pic/), so the static library and the programs keep theirs. It
# exports the public pf_ API only: a version script keeps every global
# named pf_ but not pf__ (the internal prefix) and makes the rest local.
# Chosen over -fvisibility=hidden because it needs no mark on each of the
# header's declarations and follows the naming rule the code already keeps.
$(B)/pic/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(V),,echo "  CC -fPIC $<")
	$(Q)$(CC) $(CFLAGS) -fPIC -c $< -o $@

# -z defs: a symbol the library uses but no dependency defines fails this
# link, not the program that loads the library (not under sanitizers:
# clang leaves their runtime for the program to bring).
$(SHLIB): $(LIB_SRC:%.c=$(B)/pic/%.o) src/libprefork.map
	$(CC) -shared -Wl,-soname,$(SONAME) $(if $(SAN),,-Wl,-z,defs) \
		-Wl,--version-script,src/libprefork.map $(LDFLAGS) -o $@ $(filter %.o,$^)
	ln -sf $(@F) $(@D)/$(SONAME)
	ln -sf $(SONAME) $(@D)/libprefork.so

$(HTTPLIB): $(HTTP_SRC:%.c=$(B)/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(STATICLIB): $(STATIC_SRC:%.c=$(B)/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(TLSLIB): $(TLS_SRC:%.c=$(B)/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# The module's only global is its table of calls (src/tls/module.map);
# what it uses of ours comes from the command that loads it.
$(TLS_MOD): $(TLS_MOD_SRC:%.c=$(B)/pic/%.o) src/tls/module.map
	$(CC) -shared -Wl,--version-script,src/tls/module.map $(LDFLAGS) -o $@ \
		$(filter %.o,$^) $(SSL_LIBS)

# Where the command looks for the module once installed, relative to its
# own folder; rewritten only when BINDIR or LIBDIR change the answer.
$(B)/gen/cli_paths.h: FORCE
	@mkdir -p $(@D)
	@echo '#define CLI_TLS_MODULE_DIR "$(shell realpath -m --relative-to=$(BINDIR) $(LIBDIR)/prefork)"' \
		> $@.tmp && (cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@)
$(B)/src/cli/tls_module.o: $(B)/gen/cli_paths.h
$(B)/src/cli/tls_module.o: CFLAGS += -I$(B)/gen

$(B)/prefork: $(CLI_SRC:%.c=$(B)/%.o) $(B)/src/tls/config.o $(STATICLIB) $(HTTPLIB) $(LIB) \
		src/cli/tls-exports.list | $(TLS_MOD)
	$(CC) $(LDFLAGS) -Wl,--dynamic-list=src/cli/tls-exports.list -o $@ $(filter %.o %.a,$^) \
		$(ZIP_LIBS)

$(B)/examples/%: $(B)/examples/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^

$(B)/tests/helpers/%: $(B)/tests/helpers/%.o $(HTTPLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^

# tests/*/*support.c are shared by the tests of their folder, not tests.
USUPPORT := $(patsubst %.c,$(B)/%.o,$(wildcard tests/unit/*support.c))
# tests/unit/*_nomem.c make the library's reallocs fail: linked with
# realloc wrapped (their own __wrap_realloc decides).
NOMEM_LD := -Wl,--wrap=realloc
$(B)/tests/unit/%: $(B)/tests/unit/%.o $(USUPPORT) $(STATICLIB) $(TLSLIB) $(HTTPLIB) $(LIB)
	$(CC) $(LDFLAGS) $(if $(filter %_nomem,$@),$(NOMEM_LD)) -o $@ $^ $(TEST_LIBS) $(SSL_LIBS) $(ZIP_LIBS) \
		$(if $(filter %/test_static_compress,$@),-lbrotlidec)

# tests/integration/*support.c are shared by the integration tests, not tests.
ISUPPORT := $(patsubst %.c,$(B)/%.o,$(wildcard tests/integration/*support.c))
$(B)/tests/integration/%: $(B)/tests/integration/%.o $(ISUPPORT) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

# bench/*support.c is shared by the benchmark clients, not a program.
BSUPPORT := $(patsubst %.c,$(B)/%.o,$(wildcard bench/*support.c))
$(B)/bench/%: $(B)/bench/%.o $(BSUPPORT) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(if $(filter %/tls_load,$@),$(SSL_LIBS))

INTEG := $(filter-out %support,$(INTEG))
UNIT := $(filter-out %support,$(UNIT))
BENCH := $(filter-out %support,$(BENCH))

# tests/layers.sh: src/lib's folders depend one way (master, worker, core).
check: all $(UNIT) $(INTEG) $(HELPERS) $(BENCH)
	@tests/layers.sh $(B)

deps:
	@tests/deps.sh

test: deps
	$(MAKE) check
	PYTHON=$(PYTHON) tests/run.sh $(B)

test-san: deps
	$(MAKE) SAN=1 check
	PYTHON=$(PYTHON) CC=$(CC) tests/run.sh build/san

# A fresh machine may lack the headers of OpenSSL, zlib and Brotli: the
# build's own packages are installed first (tests/deps.sh build).
serve: build-deps
	$(MAKE) all
	$(B)/prefork serve .

build-deps:
	@tests/deps.sh build

fuzz: deps
	tests/fuzz/run.sh $(FUZZ_SECONDS)

# make bench BENCH_SECTIONS="python http" runs those sections only. The
# python section runs every server under PYTHON (default /usr/bin/python3).
bench: all $(BENCH)
	PYTHON="$(PYTHON)" bench/run.sh $(BENCH_SECTIONS)

# The benchmark's peers (gunicorn, uWSGI, waitress), not needed by the tests.
.PHONY: bench-deps
bench-deps: deps
	@bench/deps.sh

# Installation. DESTDIR stages it (packaging, tests); make uninstall takes
# the same variables and removes exactly the files listed in INSTALLED.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
LIBDIR         ?= $(PREFIX)/lib
INCLUDEDIR     ?= $(PREFIX)/include
MANDIR         ?= $(PREFIX)/share/man
PKGCONFIGDIR   ?= $(LIBDIR)/pkgconfig
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL        ?= install
INSTALLED := $(BINDIR)/prefork $(LIBDIR)/prefork/prefork-tls.so $(INCLUDEDIR)/prefork.h \
	$(MANDIR)/man1/prefork.1 \
	$(addprefix $(LIBDIR)/,libprefork.a $(notdir $(SHLIB)) $(SONAME) libprefork.so) \
	$(PKGCONFIGDIR)/prefork.pc $(SYSTEMDUNITDIR)/prefork.service $(SYSTEMDUNITDIR)/prefork.socket

# A folder under the prefix is written ${prefix}/... in prefork.pc, so a
# sysroot or a relocated tree still finds it.
pcdir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
# Generated at every install, since PREFIX and the folders may differ from
# one run to the next. The unit's ExecStart names the installed command.
$(B)/gen/prefork.pc: contrib/prefork.pc.in FORCE
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBDIR@|$(call pcdir,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(call pcdir,$(INCLUDEDIR))|' $< > $@
$(B)/gen/prefork.service: contrib/systemd/prefork.service FORCE
	@mkdir -p $(@D)
	sed -e 's|/usr/local/bin/prefork|$(BINDIR)/prefork|' $< > $@
FORCE:

install: all $(B)/gen/prefork.pc $(B)/gen/prefork.service
	$(INSTALL) -d $(addprefix $(DESTDIR),$(BINDIR) $(LIBDIR) $(LIBDIR)/prefork $(INCLUDEDIR) \
		$(PKGCONFIGDIR) $(MANDIR)/man1 $(SYSTEMDUNITDIR))
	$(INSTALL) -m 755 $(B)/prefork $(DESTDIR)$(BINDIR)/prefork
	$(INSTALL) -m 755 $(TLS_MOD) $(DESTDIR)$(LIBDIR)/prefork/prefork-tls.so
	$(INSTALL) -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libprefork.a
	$(INSTALL) -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB))
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libprefork.so
	$(INSTALL) -m 644 include/prefork.h $(DESTDIR)$(INCLUDEDIR)/prefork.h
	$(INSTALL) -m 644 $(B)/gen/prefork.pc $(DESTDIR)$(PKGCONFIGDIR)/prefork.pc
	$(INSTALL) -m 644 docs/prefork.1 $(DESTDIR)$(MANDIR)/man1/prefork.1
	$(INSTALL) -m 644 $(B)/gen/prefork.service contrib/systemd/prefork.socket \
		$(DESTDIR)$(SYSTEMDUNITDIR)/

# Folders are left: they may hold other packages' files.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
