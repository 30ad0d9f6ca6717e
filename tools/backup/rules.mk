# uml_backup: point-in-time backups of running UML guests (issue 6).
# Included by the top-level Makefile.
BACKUP_SRC := $(addprefix tools/backup/,uml_backup.c tool.c live.c backup.c manifest.c \
	verify.c restore.c stream.c sums.c pack.c lz4_splice.c unpack.c sparse.c \
	mconsole.c guest.c iotrack.c snap.c watchdog.c chunks.c chain.c)
BACKUP_HDR := $(addprefix tools/backup/,tool.h live.h backup.h manifest.h verify.h \
	restore.h stream.h sums.h pack.h lz4_splice.h unpack.h sparse.h \
	mconsole.h guest.h iotrack.h snap.h watchdog.h chunks.h chain.h point.h)
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
$(B)/tests/backup_kat: tests/backup/kat_test.c tools/backup/sums.c tools/backup/sums.h \
		tools/backup/stream.c tools/backup/stream.h tools/backup/lz4_splice.c \
		tools/backup/lz4_splice.h tools/common/extent.c tools/common/extent.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(BACKUP_CFLAGS) -Itools/backup -Itools/common -o $@ \
		$(filter %.c,$^) $(BACKUP_LIBS)

.PHONY: check-backup
check-backup: all $(B)/tests/cowutil $(B)/tests/mconsole_test $(B)/tests/backup_kat
	tests/backup/run.sh $(B)
