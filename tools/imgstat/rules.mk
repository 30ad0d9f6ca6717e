# uml_imgstat: describe COW files and disk images (issue 5).
# Included by the top-level Makefile.

TOOLS += uml_imgstat
CHECK_SUITES += check-imgstat

IMGSTAT_SRC := tools/imgstat/uml_imgstat.c tools/imgstat/img.c tools/imgstat/out.c \
	tools/imgstat/stat.c tools/imgstat/map.c tools/imgstat/check.c \
	tools/imgstat/probe.c tools/imgstat/extfs.c tools/imgstat/pairio.c \
	tools/imgstat/files.c tools/imgstat/filesrep.c tools/imgstat/fsdiff.c
IMGSTAT_HDR := tools/imgstat/imgstat.h tools/imgstat/img.h tools/imgstat/out.h \
	tools/imgstat/probe.h tools/imgstat/extfs.h tools/imgstat/pairio.h \
	tools/imgstat/fsdiff.h

$(B)/bin/uml_imgstat: $(IMGSTAT_SRC) $(IMGSTAT_HDR) $(CLI_OBJ) $(STLIB) $(COMMON_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Icow -Itools/common -o $@ $(filter %.c,$^) $(CLI_OBJ) $(STLIB) \
		$$(pkg-config --libs blkid ext2fs com_err)

.PHONY: check-imgstat
check-imgstat: all $(B)/tests/cowutil
	tests/imgstat/run.sh $(B)
