# uml_backup: point-in-time backups of running UML guests (issue 6).
# Included by the top-level Makefile.
# Folders by job: format/ the file formats, codec/ the compressors,
# guest/ the running guest's session, changes/ the sources of changed
# blocks, chain/ a chain's points, run/ a backup run (its devices,
# destination, and the writers after the copy), cmd/ the commands.
BACKUP_DIRS := format codec guest changes chain run cmd
BACKUP_SRC := $(addprefix tools/backup/,uml_backup.c tool.c \
	format/xstream.c format/xstream_fd.c format/chunks.c format/manifest.c format/stream.c \
	format/sums.c format/sparse.c \
	codec/pack.c codec/unpack.c codec/lz4_splice.c \
	guest/mconsole.c guest/guest.c guest/watchdog.c guest/snap.c guest/live.c \
	changes/kernel_cbt.c changes/io_tracer.c changes/io_tracer_source.c changes/compare.c \
	chain/chain.c chain/point.c chain/chainio.c chain/reader.c \
	run/run.c run/parent.c run/writer.c \
	cmd/backup.c cmd/restore.c cmd/verify.c cmd/export.c cmd/prune.c)
BACKUP_HDR := $(wildcard $(addprefix tools/backup/,*.h $(addsuffix /*.h,$(BACKUP_DIRS))))
# Sources include each other's headers by folder ("format/xstream.h");
# the tests include them by name.
BACKUP_INC := -Itools/backup
BACKUP_TEST_INC := $(addprefix -Itools/backup/,$(BACKUP_DIRS)) -Itools/backup
# Debian's libraries (scripts/deps.sh): LZ4 and zlib for the formats,
# libxxhash for the LZ4 blocks written here, nettle for SHA-256, jansson
# for the manifest and --json.
BACKUP_PKGS := liblz4 zlib libxxhash nettle jansson
BACKUP_CFLAGS = $(shell pkg-config --cflags $(BACKUP_PKGS))
BACKUP_LIBS = $(shell pkg-config --libs $(BACKUP_PKGS))

TOOLS += uml_backup
CHECK_SUITES += check-backup check-backup-kernel
CHECK_BINS += $(B)/tests/mconsole_test $(B)/tests/backup_kat $(B)/tests/xs_test

uml_backup_SRC := $(BACKUP_SRC)
uml_backup_PKGS := $(BACKUP_PKGS)
uml_backup_CFLAGS := $(BACKUP_INC)

# The mconsole client's own tests, against a fake guest.
$(B)/tests/mconsole_test: tests/backup/mconsole_test.c tools/backup/guest/mconsole.c tools/backup/guest/mconsole.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(BACKUP_TEST_INC) -o $@ $(filter %.c,$^)

# Known answers for the checksums and formats the backups rely on.
$(B)/tests/backup_kat: tests/backup/kat_test.c tests/common/check.h tools/backup/format/sums.c \
		tools/backup/format/sums.h tools/backup/format/stream.c tools/backup/format/stream.h \
		tools/backup/codec/lz4_splice.c tools/backup/codec/lz4_splice.h tools/common/extent.c \
		tools/common/extent.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(BACKUP_CFLAGS) -Icow $(BACKUP_TEST_INC) -Itools/common -o $@ \
		$(filter %.c,$^) $(BACKUP_LIBS)

.PHONY: check-backup check-backup-kernel
# Guests boot Debian's linux.uml: no need of our kernel.
check-backup: all $(B)/tests/cowutil $(B)/tests/mconsole_test $(B)/tests/backup_kat \
		$(B)/tests/xs_test
	$(call prove-suite,backup,3)

# The tracking-source tests (tests/backup-kernel/, helpers in
# tests/backup/functions.sh) boot our kernel: make kernel builds it once.
check-backup-kernel: all kernel $(B)/tests/cowutil
	$(call prove-suite,backup-kernel,2)

# The extent stream (xstream.h) against its spec, with sanitizers: it
# parses untrusted files and pipes.  It also writes the fuzz seeds.
XS_TEST_SRC := tests/backup/xs_test.c tools/backup/format/xstream.c tools/backup/format/xstream_fd.c \
	tools/backup/codec/pack.c tools/backup/codec/unpack.c tools/backup/codec/lz4_splice.c \
	tools/backup/format/stream.c tools/backup/format/sums.c tools/common/extent.c
$(B)/tests/xs_test: $(XS_TEST_SRC) tests/common/check.h tools/backup/format/xstream.h \
		tools/backup/codec/pack.h tools/backup/codec/unpack.h tools/backup/format/stream.h \
		tools/backup/codec/lz4_splice.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 $(WARN) $(SAN_FLAGS) \
		$(BACKUP_CFLAGS) -Icow $(BACKUP_TEST_INC) -Itools/common -o $@ $(XS_TEST_SRC) $(BACKUP_LIBS)

.PHONY: check-xstream
check-xstream: $(B)/tests/xs_test
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(B)/tests/xs_test

# The parser under libFuzzer (check-fuzz runs it from the writer's seeds),
# built in the fuzz build (fuzz-build).
FUZZ_TARGETS += $(FUZZ_B)/tests/fuzz-xstream $(FUZZ_B)/tests/fuzz-chunks
$(B)/obj/tests/fuzz/fuzz_xstream.o $(B)/obj/tests/fuzz/fuzz_chunks.o: TOOL_CFLAGS := \
	$(BACKUP_TEST_INC) $(shell pkg-config --cflags libxxhash)
$(B)/tests/fuzz-xstream: $(B)/obj/tests/fuzz/fuzz_xstream.o $(B)/obj/tools/backup/format/xstream.o
	$(call fuzz-link,$$(pkg-config --libs libxxhash))

# Chunk tables are parsed from backup directories: a libFuzzer target,
# seeded with a table of two entries (a metadata and a data chunk; the
# target makes each input's end digest right as a second try).
$(B)/tests/fuzz-chunks: $(B)/obj/tests/fuzz/fuzz_chunks.o $(B)/obj/tools/backup/format/chunks.o \
		$(B)/obj/tools/backup/format/stream.o $(B)/obj/tools/common/extent.o \
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
