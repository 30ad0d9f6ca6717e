# uml_backup: point-in-time backups of running UML guests (issue 6).
# Included by the top-level Makefile.
BACKUP_SRC := $(addprefix tools/backup/,uml_backup.c tool.c live.c backup.c incr.c manifest.c \
	verify.c restore.c stream.c sums.c pack.c lz4_splice.c unpack.c sparse.c xstream.c xstream_fd.c export.c \
	mconsole.c guest.c iotrack.c snap.c watchdog.c chunks.c chain.c point.c chainio.c chainrestore.c chainverify.c chainprune.c track.c)
BACKUP_HDR := $(addprefix tools/backup/,tool.h live.h backup.h manifest.h verify.h \
	restore.h stream.h sums.h pack.h lz4_splice.h unpack.h sparse.h xstream.h export.h \
	mconsole.h guest.h iotrack.h snap.h watchdog.h chunks.h chain.h point.h chainio.h track.h)
# Debian's libraries (scripts/deps.sh): LZ4 and zlib for the formats,
# libxxhash for the LZ4 blocks written here, nettle for SHA-256, jansson
# for the manifest and --json.
BACKUP_PKGS := liblz4 zlib libxxhash nettle jansson
BACKUP_CFLAGS = $(shell pkg-config --cflags $(BACKUP_PKGS))
BACKUP_LIBS = $(shell pkg-config --libs $(BACKUP_PKGS))

TOOLS += uml_backup
CHECK_SUITES += check-backup

uml_backup_SRC := $(BACKUP_SRC)
uml_backup_PKGS := $(BACKUP_PKGS)

# The mconsole client's own tests, against a fake guest.
$(B)/tests/mconsole_test: tests/backup/mconsole_test.c tools/backup/mconsole.c tools/backup/mconsole.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itools/backup -o $@ $(filter %.c,$^)

# Known answers for the checksums and formats the backups rely on.
$(B)/tests/backup_kat: tests/backup/kat_test.c tests/common/check.h tools/backup/sums.c tools/backup/sums.h \
		tools/backup/stream.c tools/backup/stream.h tools/backup/lz4_splice.c \
		tools/backup/lz4_splice.h tools/common/extent.c tools/common/extent.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(BACKUP_CFLAGS) -Icow -Itools/backup -Itools/common -o $@ \
		$(filter %.c,$^) $(BACKUP_LIBS)

.PHONY: check-backup
# kernel: the tracking-source tests boot our kernel (make kernel builds it once).
check-backup: all kernel $(B)/tests/cowutil $(B)/tests/mconsole_test $(B)/tests/backup_kat \
		$(B)/tests/xs_test
	tests/backup/run.sh $(B)

# The extent stream (xstream.h) against its spec, with sanitizers: it
# parses untrusted files and pipes.  It also writes the fuzz seeds.
XS_TEST_SRC := tests/backup/xs_test.c tools/backup/xstream.c tools/backup/xstream_fd.c \
	tools/backup/pack.c tools/backup/unpack.c tools/backup/lz4_splice.c \
	tools/backup/stream.c tools/backup/sums.c tools/common/extent.c
$(B)/tests/xs_test: $(XS_TEST_SRC) tests/common/check.h tools/backup/xstream.h tools/backup/pack.h \
		tools/backup/unpack.h tools/backup/stream.h tools/backup/lz4_splice.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 $(WARN) $(SAN_FLAGS) \
		$(BACKUP_CFLAGS) -Icow -Itools/backup -Itools/common -o $@ $(XS_TEST_SRC) $(BACKUP_LIBS)

.PHONY: check-xstream
check-xstream: $(B)/tests/xs_test
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(B)/tests/xs_test

# The parser under libFuzzer (check-fuzz runs it from the writer's seeds),
# built in the fuzz build (fuzz-build).
FUZZ_TARGETS += $(FUZZ_B)/tests/fuzz-xstream $(FUZZ_B)/tests/fuzz-chunks
$(B)/obj/tests/fuzz/fuzz_xstream.o $(B)/obj/tests/fuzz/fuzz_chunks.o: TOOL_CFLAGS := -Itools/backup \
	$(shell pkg-config --cflags libxxhash)
$(B)/tests/fuzz-xstream: $(B)/obj/tests/fuzz/fuzz_xstream.o $(B)/obj/tools/backup/xstream.o
	$(call fuzz-link,$$(pkg-config --libs libxxhash))

# Chunk tables are parsed from backup directories: a libFuzzer target,
# seeded with a table of two entries (a metadata and a data chunk; the
# target makes each input's end digest right as a second try).
$(B)/tests/fuzz-chunks: $(B)/obj/tests/fuzz/fuzz_chunks.o $(B)/obj/tools/backup/chunks.o \
		$(B)/obj/tools/backup/stream.o $(B)/obj/tools/common/extent.o \
		$(B)/obj/tools/common/grow.o
	$(call fuzz-link,$$(pkg-config --libs libxxhash))

.PHONY: check-fuzz-chunks
check-fuzz: check-fuzz-chunks
check-fuzz-chunks: fuzz-build
	@mkdir -p $(B)/fuzz-chunks-corpus $(B)/fuzz-crashes
	printf 'UBDKCHK1' > $(B)/fuzz-chunks-corpus/magic
	python3 -c 'import struct,sys; h=b"UBDKCHK1"+struct.pack("<IIQQQ",1,65536,1<<20,4096,2)+bytes([17])*16+bytes(8); e=struct.pack("<Q",0)+bytes(range(16))+struct.pack("<Q",4096)+bytes(range(16,32)); sys.stdout.buffer.write(h+e+bytes(16))' \
		> $(B)/fuzz-chunks-corpus/two-entries
	$(FUZZ_B)/tests/fuzz-chunks -runs=$(FUZZ_RUNS) -seed=1 -artifact_prefix=$(B)/fuzz-crashes/ \
		$(B)/fuzz-chunks-corpus >$(B)/fuzz-chunks.log 2>&1 || { tail -n 40 $(B)/fuzz-chunks.log; exit 1; }
	@tail -n 2 $(B)/fuzz-chunks.log
