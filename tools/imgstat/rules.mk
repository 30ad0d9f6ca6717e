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

# The same tool with AddressSanitizer and UBSan, for the damaged-filesystem
# tests (UBDK_ASAN_BIN).
$(B)/tests/uml_imgstat-asan: $(IMGSTAT_SRC) $(IMGSTAT_HDR) $(COMMON_SRC) $(COMMON_HDR) \
		$(LIB_SRC) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 $(WARN) $(SAN_FLAGS) \
		-Icow -Itools/common -o $@ $(IMGSTAT_SRC) $(COMMON_SRC) $(LIB_SRC) \
		$$(pkg-config --libs blkid ext2fs com_err)

.PHONY: check-imgstat
check-imgstat: all $(B)/tests/cowutil $(B)/tests/uml_imgstat-asan
	UBDK_ASAN_BIN=$(B)/tests/uml_imgstat-asan tests/imgstat/run.sh $(B)
