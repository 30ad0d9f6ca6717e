# uml_backup: point-in-time backups of running UML guests (issue 6).
# Included by the top-level Makefile.
BACKUP_SRC := tools/backup/uml_backup.c tools/backup/mconsole.c tools/backup/guest.c \
	tools/backup/iotrack.c tools/backup/snap.c tools/backup/pack.c \
	tools/backup/sha256.c tools/backup/json.c tools/backup/watchdog.c
BACKUP_HDR := tools/backup/mconsole.h tools/backup/guest.h tools/backup/iotrack.h \
	tools/backup/snap.h tools/backup/pack.h tools/backup/sha256.h tools/backup/json.h \
	tools/backup/watchdog.h

TOOLS += uml_backup
CHECK_SUITES += check-backup

uml_backup_SRC := $(BACKUP_SRC)
uml_backup_PKGS := liblz4 zlib

# The mconsole client's own tests, against a fake guest.
$(B)/tests/mconsole_test: tests/backup/mconsole_test.c tools/backup/mconsole.c tools/backup/mconsole.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itools/backup -o $@ $(filter %.c,$^)

.PHONY: check-backup
check-backup: all $(B)/tests/cowutil $(B)/tests/mconsole_test $(B)/tests/quote_test
	tests/backup/run.sh $(B)

# The shared quoting helpers (tools/common/quote.c), run by the backup suite.
$(B)/tests/quote_test: tests/common/quote_test.c tools/common/quote.c tools/common/quote.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itools/common -o $@ $(filter %.c,$^)
