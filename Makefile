# ubdkit - top-level build.  Everything is built under $(B).
#   make            library, tools, man pages (never installs anything)
#   make deps       install the Debian packages make needs (as root)
#   make check      unit tests (plain and ASan+UBSan), fuzz smoke, the shell
#                   suites (tests/SUITE/*.t under prove); make -j2 check runs
#                   two at once
#   make demo       the end-to-end demo with a real UML guest
#   make bench      benchmarks against the real peers (writes BENCHMARKS.md)
#   make fuzz       run the header fuzzer for longer
#   make install PREFIX=/usr/local DESTDIR=

# The version lives in cow/ubdk_cow.h only; the pkg-config file and the man
# pages are filled from it at build time, the pages' date from the last
# commit (the build date outside a git checkout).
VERSION := $(shell sed -n 's/^\#define UBDK_VERSION_STRING "\(.*\)"/\1/p' cow/ubdk_cow.h)
MAN_DATE := $(shell git log -1 --format=%cs 2>/dev/null || date -u +%F)
SOVERSION := 1

B ?= build
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
WERROR ?= -Werror

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 $(WERROR)
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 $(WARN) $(CFLAGS)
# Each object records the headers it read, so a changed header rebuilds
# exactly what includes it.
DEPFLAGS := -MMD -MP
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

LIB_SRC := cow/error.c cow/header.c cow/bitmap.c cow/bmap.c cow/cow.c cow/backing.c cow/cbt.c cow/cbt_file.c cow/cbt_reply.c cow/scan.c cow/crc32.c cow/ubdk_os_posix.c
LIB_HDR := cow/ubdk_cow.h cow/ubdk_cbt.h cow/ubdk_static.h cow/ubdk_os.h cow/internal.h cow/ubdk_endian.h cow/cbt_internal.h cow/cbt_reply.h cow/cbt_reply_codes.h
LIB_OBJ := $(LIB_SRC:%.c=$(B)/obj/%.o)
LIB_PIC := $(LIB_SRC:%.c=$(B)/pic/%.o)

SONAME := libubdk.so.$(SOVERSION)
SHLIB := $(B)/lib/libubdk.so.$(VERSION)
STLIB := $(B)/lib/libubdk.a
PCFILE := $(B)/lib/pkgconfig/ubdk.pc

# Tools come from tools/NAME/rules.mk: `TOOLS += uml_x`, its sources in
# uml_x_SRC and the pkg-config names of the libraries it links in uml_x_PKGS.
TOOLS :=
TOOL_BINS = $(TOOLS:%=$(B)/bin/%)
COMMON_SRC := tools/common/cli.c tools/common/afile.c tools/common/quote.c \
	tools/common/input.c tools/common/extent.c tools/common/hostlock.c tools/common/grow.c \
	tools/common/samefile.c
COMMON_HDR := tools/common/cli.h tools/common/afile.h tools/common/quote.h \
	tools/common/input.h tools/common/extent.h tools/common/hostlock.h tools/common/grow.h \
	tools/common/samefile.h
# quote.c writes JSON strings through jansson: every tool lists it in its
# NAME_PKGS too, for the link.
COMMON_PKGS := jansson
MAN_SRC := $(wildcard tools/*/*.1) cow/ubdk_cow.3 cow/ubdk_cbt.3
MANS := $(MAN_SRC:%=$(B)/man/%)

TEST_SRC := $(wildcard tests/unit/*.c)
TEST_HDR := $(wildcard tests/unit/*.h)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)

.PHONY: all lib tools mans check check-unit check-asan check-interop check-fuzz check-escape check-api \
	demo bench fuzz install uninstall clean deps

all: lib tools mans

# make never installs; make deps does (scripts/deps.sh: as root it runs
# apt-get, otherwise it prints the line to run).  make check, demo, bench
# and fuzz install what they need themselves, as the README says, and do
# it here, while the Makefile is read: before any rule runs, so that no
# compile runs beside apt-get, whatever -j.
deps:
	scripts/deps.sh build

DEPS_FOR := $(if $(filter check,$(MAKECMDGOALS)),test) \
	$(if $(filter demo,$(MAKECMDGOALS)),demo) \
	$(if $(filter bench,$(MAKECMDGOALS)),bench) \
	$(if $(filter fuzz fuzz-files,$(MAKECMDGOALS)),fuzz)
DEPS_FAILED := $(foreach d,$(DEPS_FOR),$(if $(filter 0,$(shell scripts/deps.sh $(d) >&2; echo $$?)),,$(d)))
$(if $(strip $(DEPS_FAILED)),$(error scripts/deps.sh $(strip $(DEPS_FAILED)) failed (see above)))

lib: $(SHLIB) $(STLIB) $(PCFILE)

# One rule for every object of the library and the tools.
$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) $(TOOL_CFLAGS) -Icow -Itools/common -c -o $@ $<

$(B)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -fPIC -Icow -c -o $@ $<

-include $(shell find $(B)/obj $(B)/pic -name '*.d' 2>/dev/null)

mans: $(MANS)

$(B)/man/%: %
	@mkdir -p $(@D)
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@DATE@|$(MAN_DATE)|g' $< > $@

$(SHLIB): $(LIB_PIC) cow/libubdk.map
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=cow/libubdk.map -o $@ $(LIB_PIC)
	ln -sf libubdk.so.$(VERSION) $(B)/lib/$(SONAME)
	ln -sf $(SONAME) $(B)/lib/libubdk.so

$(STLIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(PCFILE): cow/ubdk.pc.in cow/ubdk_cow.h
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

# Tools link the static library: one self-contained binary each.
CLI_OBJ := $(COMMON_SRC:%.c=$(B)/obj/%.o)
$(CLI_OBJ): TOOL_CFLAGS := $(shell pkg-config --cflags $(COMMON_PKGS))
define tool-rule
$$($(1)_SRC:%.c=$(B)/obj/%.o): TOOL_CFLAGS := $$($(1)_CFLAGS) $$(if $$($(1)_PKGS),$$(shell pkg-config --cflags $$($(1)_PKGS)))
$(B)/bin/$(1): $$($(1)_SRC:%.c=$(B)/obj/%.o) $(CLI_OBJ) $(STLIB)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) -o $$@ $$^ $$(if $$($(1)_PKGS),$$$$(pkg-config --libs $$($(1)_PKGS)))
endef

# --- tests --------------------------------------------------------------

# The shell suites: one file per behaviour, tests/SUITE/NAME.t, printing
# TAP (tests/lib/tap.sh), run by prove (tests/lib/prove-suite.sh), $(2) at
# once: each suite chooses its number for what its tests load (guests,
# CPU).  PROVE_J=N overrides it, PROVE_FLAGS=-v shows every test's output.
# One test alone:
#   B=build prove -v tests/SUITE/NAME.t
prove-suite = B=$(abspath $(B)) tests/lib/prove-suite.sh $(1) $(2)

$(B)/tests/unit: $(TEST_SRC) $(TEST_HDR) $(STLIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Icow -o $@ $(TEST_SRC) $(STLIB) $(CHECK_LIBS)

# The library over a failing OS layer (tests/fault/fault_os.c wraps the
# real one): everything but ubdk_os_posix.c, which fault_os.c includes.
FAULT_SRC := $(wildcard tests/fault/*.c) tests/unit/test_util.c $(filter-out cow/ubdk_os_posix.c,$(LIB_SRC))
FAULT_HDR := tests/fault/fault.h tests/unit/test_util.h $(LIB_HDR) cow/ubdk_os_posix.c
$(B)/tests/unit-fault: $(FAULT_SRC) $(FAULT_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Icow -Itests/unit -o $@ $(FAULT_SRC) $(CHECK_LIBS)

# The tools' common helpers (check-escape runs them from the sanitizer
# build: they take hostile names and files).
$(B)/tests/extent: tests/common/extent_test.c tests/common/check.h tools/common/extent.c tools/common/extent.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itools/common -o $@ tests/common/extent_test.c tools/common/extent.c

$(B)/tests/grow: tests/common/grow_test.c tests/common/check.h tools/common/grow.c tools/common/grow.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itools/common -o $@ tests/common/grow_test.c tools/common/grow.c

$(B)/tests/samefile: tests/common/samefile_test.c tests/common/check.h tools/common/samefile.c \
		tools/common/samefile.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itools/common -o $@ tests/common/samefile_test.c tools/common/samefile.c

$(B)/tests/quote: tests/common/quote_test.c tools/common/quote.c tools/common/quote.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itools/common $$(pkg-config --cflags $(COMMON_PKGS)) -o $@ \
		tests/common/quote_test.c tools/common/quote.c $$(pkg-config --libs $(COMMON_PKGS))

$(B)/tests/cowutil: tests/cowutil.c cow/ubdk_cbt.h cow/ubdk_cow.h $(STLIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Icow -o $@ $< $(STLIB)

# The libFuzzer build: this Makefile again in $(FUZZ_B) with clang and the
# fuzzer's coverage (fuzzer-no-link) for CFLAGS, so the library and tools
# objects come from the same rules; only the fuzz targets link libFuzzer's
# main (fuzz-link).  check-fuzz and fuzz build there.
FUZZ_B := $(B)/fuzz
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_MAKE = $(MAKE) --no-print-directory B=$(FUZZ_B) CC=clang CFLAGS='$(FUZZ_FLAGS)'
# Its targets (each rules.mk adds its own), built by one sub-make.
FUZZ_TARGETS := $(FUZZ_B)/tests/fuzz-header
fuzz-build:
	+$(FUZZ_MAKE) $(FUZZ_TARGETS)

define fuzz-link
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(1)
endef

$(B)/tests/fuzz-header: $(B)/obj/tests/fuzz/fuzz_header.o $(LIB_OBJ)
	$(call fuzz-link)

check-unit: $(B)/tests/unit $(B)/tests/unit-fault
	cd $(B)/tests && CK_FORK=yes ./unit && CK_FORK=yes ./unit-fault

# The sanitizer build: this Makefile again in $(ASAN_B) with SAN_FLAGS for
# CFLAGS, so the same rules build the library, the tests and the helpers
# (nothing copied by hand).
ASAN_B := $(B)/asan
ASAN_MAKE = $(MAKE) --no-print-directory B=$(ASAN_B) CFLAGS='$(SAN_FLAGS)'
SAN_ENV := ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
# What is taken from it, built by one sub-make (asan-build) so that two
# never write the same object at once under make -j check.
ASAN_TARGETS := $(ASAN_B)/tests/unit $(ASAN_B)/tests/unit-fault $(ASAN_B)/tests/quote \
	$(ASAN_B)/tests/extent $(ASAN_B)/tests/grow $(ASAN_B)/tests/samefile

.PHONY: asan-build fuzz-build
asan-build:
	+$(ASAN_MAKE) $(ASAN_TARGETS)

check-asan: asan-build
	cd $(ASAN_B)/tests && CK_FORK=yes $(SAN_ENV) ./unit && CK_FORK=yes $(SAN_ENV) ./unit-fault

# The installed headers, the exports and the man pages agree.
check-api: $(SHLIB)
	tests/api/exports.sh $(B)

check-escape: asan-build
	$(SAN_ENV) $(ASAN_B)/tests/quote
	$(SAN_ENV) $(ASAN_B)/tests/extent
	$(SAN_ENV) $(ASAN_B)/tests/grow
	$(SAN_ENV) $(ASAN_B)/tests/samefile

FUZZ_RUNS ?= 200000
check-fuzz: fuzz-build $(B)/tests/xs_test
	@mkdir -p $(B)/fuzz-corpus
	tests/fuzz/seed-corpus.sh $(B)/fuzz-corpus
	@mkdir -p $(B)/fuzz-crashes
	$(FUZZ_B)/tests/fuzz-header -runs=$(FUZZ_RUNS) -seed=1 -artifact_prefix=$(B)/fuzz-crashes/ \
		$(B)/fuzz-corpus >$(B)/fuzz.log 2>&1 || { tail -n 40 $(B)/fuzz.log; exit 1; }
	@tail -n 2 $(B)/fuzz.log
	@# The extent stream parser, from streams the writer made (xs_test --seeds).
	@mkdir -p $(B)/fuzz-corpus-xstream
	$(B)/tests/xs_test --seeds $(B)/fuzz-corpus-xstream
	$(FUZZ_B)/tests/fuzz-xstream -runs=$(FUZZ_RUNS) -seed=1 -artifact_prefix=$(B)/fuzz-crashes/ \
		$(B)/fuzz-corpus-xstream >$(B)/fuzz-xstream.log 2>&1 || \
		{ tail -n 40 $(B)/fuzz-xstream.log; exit 1; }
	@tail -n 2 $(B)/fuzz-xstream.log

fuzz: fuzz-build
	@mkdir -p $(B)/fuzz-corpus
	tests/fuzz/seed-corpus.sh $(B)/fuzz-corpus
	@mkdir -p $(B)/fuzz-crashes
	$(FUZZ_B)/tests/fuzz-header -max_total_time=$${FUZZ_SECONDS:-600} \
		-artifact_prefix=$(B)/fuzz-crashes/ $(B)/fuzz-corpus

check-interop: all $(B)/tests/cowutil
	$(call prove-suite,interop,2)

# --- demo and benchmarks -----------------------------------------------

demo: all $(B)/tests/cowutil
	scripts/demo.sh $(B)

bench: all $(B)/tests/cowutil
	bench/run.sh $(B)

# --- install -------------------------------------------------------------

install: lib tools
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3
	install -m 0755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libubdk.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libubdk.so
	install -m 0644 $(STLIB) $(DESTDIR)$(PREFIX)/lib/
	# The pkg-config file names the install prefix, not the build's.
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' cow/ubdk.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/ubdk.pc
	# The public API only: ubdk_static.h and the library's own headers stay.
	install -m 0644 cow/ubdk_cow.h cow/ubdk_cbt.h $(DESTDIR)$(PREFIX)/include/
	install -m 0755 $(TOOL_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(filter %.1,$(MANS)) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 $(filter %.3,$(MANS)) $(DESTDIR)$(PREFIX)/share/man/man3/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libubdk.* $(DESTDIR)$(PREFIX)/lib/pkgconfig/ubdk.pc \
		$(DESTDIR)$(PREFIX)/include/ubdk_cow.h $(DESTDIR)$(PREFIX)/include/ubdk_cbt.h $(TOOLS:%=$(DESTDIR)$(PREFIX)/bin/%) \
		$(patsubst %,$(DESTDIR)$(PREFIX)/share/man/man1/%,$(notdir $(filter %.1,$(MANS)))) \
		$(DESTDIR)$(PREFIX)/share/man/man3/ubdk_cow.3 $(DESTDIR)$(PREFIX)/share/man/man3/ubdk_cbt.3

clean:
	rm -rf $(B)

# Each tool brings its rules in tools/NAME/rules.mk: `TOOLS += NAME` with
# NAME_SRC and NAME_PKGS (linked by tool-rule above), its check-NAME suite
# added to CHECK_SUITES and what that runs to CHECK_BINS.  Included last so
# that everything above is defined.
CHECK_SUITES :=
CHECK_BINS := $(B)/tests/cowutil
include $(wildcard tools/*/rules.mk)
-include kernel/rules.mk
$(foreach t,$(TOOLS),$(eval $(call tool-rule,$(t))))
# Here, after the rules.mk files: prerequisites are expanded as read.
tools: $(TOOL_BINS)

# make check builds what the first suites run (CHECK_BINS), then starts the
# checks in check-run's order: under make -j a target whose prerequisites
# are still being built when make reaches it waits for make's next pass over
# the list, and would start last.  The kernel first: its build (ten minutes
# on a fresh clone) runs beside everything that does not need it; then the
# shell suites (the longest, backup, first), which mostly wait on guests;
# then the CPU-bound checks.  The suites that boot our kernel start once it
# is built.  make -j2 check runs two at once.
.PHONY: check-run
check: all $(CHECK_BINS)
	+@$(MAKE) --no-print-directory check-run
check-run: $(if $(wildcard kernel/rules.mk),kernel) $(CHECK_SUITES) check-interop check-unit \
	check-asan check-escape check-api check-fuzz
