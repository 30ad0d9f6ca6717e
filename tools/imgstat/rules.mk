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

uml_imgstat_SRC := $(IMGSTAT_SRC)
uml_imgstat_PKGS := blkid ext2fs com_err jansson

# The same tool with AddressSanitizer and UBSan, for the damaged-filesystem
# tests (UBDK_ASAN_BIN).
$(B)/tests/uml_imgstat-asan: $(IMGSTAT_SRC) $(IMGSTAT_HDR) $(COMMON_SRC) $(COMMON_HDR) \
		$(LIB_SRC) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 $(WARN) $(SAN_FLAGS) \
		-Icow -Itools/common -o $@ $(IMGSTAT_SRC) $(COMMON_SRC) $(LIB_SRC) \
		$$(pkg-config --libs $(uml_imgstat_PKGS))

.PHONY: check-imgstat
check-imgstat: all $(B)/tests/cowutil $(B)/tests/uml_imgstat-asan
	UBDK_ASAN_BIN=$(abspath $(B)/tests/uml_imgstat-asan) tests/imgstat/run.sh $(B)

# The --files engine under libFuzzer on damaged ext4 images made at test
# time (tests/fuzz/seed-files.sh); tests/fuzz/fuzz_files.c says what an
# input is.  check-fuzz runs FUZZ_FILES_RUNS inputs, fuzz runs longer.
FUZZ_FILES_SRC := tests/fuzz/fuzz_files.c tools/imgstat/files.c tools/imgstat/fsdiff.c \
	tools/imgstat/extfs.c tools/imgstat/pairio.c tools/imgstat/img.c tools/imgstat/out.c \
	$(COMMON_SRC) $(LIB_SRC)
FUZZ_FILES_RUNS ?= 100000

$(B)/tests/fuzz-files: $(FUZZ_FILES_SRC) $(IMGSTAT_HDR) $(COMMON_HDR) $(LIB_HDR)
	@mkdir -p $(@D)
	clang -std=c11 -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 $(WARN) -g -O1 \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Icow -Itools/common -Itools/imgstat -o $@ $(FUZZ_FILES_SRC) \
		$$(pkg-config --libs ext2fs com_err jansson)

.PHONY: check-fuzz-files fuzz-files
check-fuzz: check-fuzz-files
check-fuzz-files: $(B)/tests/fuzz-files
	tests/fuzz/seed-files.sh $(B)/fuzz-files-images $(B)/fuzz-files-corpus
	@mkdir -p $(B)/fuzz-crashes
	UBDK_FUZZ_FILES_IMAGES=$(B)/fuzz-files-images $(B)/tests/fuzz-files \
		-runs=$(FUZZ_FILES_RUNS) -seed=1 -max_len=321 \
		-artifact_prefix=$(B)/fuzz-crashes/files- $(B)/fuzz-files-corpus \
		>$(B)/fuzz-files.log 2>&1 || { tail -n 60 $(B)/fuzz-files.log; exit 1; }
	@tail -n 2 $(B)/fuzz-files.log

fuzz: fuzz-files
fuzz-files: $(B)/tests/fuzz-files
	@scripts/deps.sh fuzz
	tests/fuzz/seed-files.sh $(B)/fuzz-files-images $(B)/fuzz-files-corpus
	@mkdir -p $(B)/fuzz-crashes
	UBDK_FUZZ_FILES_IMAGES=$(B)/fuzz-files-images $(B)/tests/fuzz-files \
		-max_total_time=$${FUZZ_SECONDS:-600} -max_len=321 \
		-artifact_prefix=$(B)/fuzz-crashes/files- $(B)/fuzz-files-corpus
