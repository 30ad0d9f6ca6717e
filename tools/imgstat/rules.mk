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

.PHONY: check-imgstat
# The damaged-filesystem tests also run the tool of the sanitizer build
# (UBDK_ASAN_BIN).
ASAN_TARGETS += $(ASAN_B)/bin/uml_imgstat
check-imgstat: all $(B)/tests/cowutil asan-build
	UBDK_ASAN_BIN=$(abspath $(ASAN_B)/bin/uml_imgstat) $(call prove-suite,imgstat,2)

# The --files engine under libFuzzer on damaged ext4 images made at test
# time (tests/fuzz/seed-files.sh); tests/fuzz/fuzz_files.c says what an
# input is.  check-fuzz runs FUZZ_FILES_RUNS inputs, fuzz runs longer.
FUZZ_FILES_SRC := tests/fuzz/fuzz_files.c tools/imgstat/files.c tools/imgstat/fsdiff.c \
	tools/imgstat/extfs.c tools/imgstat/pairio.c tools/imgstat/img.c tools/imgstat/out.c \
	$(COMMON_SRC)
FUZZ_FILES_RUNS ?= 100000

# Built in the fuzz build (fuzz-build).
FUZZ_TARGETS += $(FUZZ_B)/tests/fuzz-files
$(B)/obj/tests/fuzz/fuzz_files.o: TOOL_CFLAGS := -Itools/imgstat
$(B)/tests/fuzz-files: $(FUZZ_FILES_SRC:%.c=$(B)/obj/%.o) $(LIB_OBJ)
	$(call fuzz-link,$$(pkg-config --libs ext2fs com_err jansson))

.PHONY: check-fuzz-files fuzz-files
check-fuzz: check-fuzz-files
check-fuzz-files: fuzz-build
	tests/fuzz/seed-files.sh $(B)/fuzz-files-images $(B)/fuzz-files-corpus
	@mkdir -p $(B)/fuzz-crashes
	UBDK_FUZZ_FILES_IMAGES=$(B)/fuzz-files-images $(FUZZ_B)/tests/fuzz-files \
		-runs=$(FUZZ_FILES_RUNS) -seed=1 -max_len=321 \
		-artifact_prefix=$(B)/fuzz-crashes/files- $(B)/fuzz-files-corpus \
		>$(B)/fuzz-files.log 2>&1 || { tail -n 60 $(B)/fuzz-files.log; exit 1; }
	@tail -n 2 $(B)/fuzz-files.log

fuzz: fuzz-files
fuzz-files: fuzz-build
	tests/fuzz/seed-files.sh $(B)/fuzz-files-images $(B)/fuzz-files-corpus
	@mkdir -p $(B)/fuzz-crashes
	UBDK_FUZZ_FILES_IMAGES=$(B)/fuzz-files-images $(FUZZ_B)/tests/fuzz-files \
		-max_total_time=$${FUZZ_SECONDS:-600} -max_len=321 \
		-artifact_prefix=$(B)/fuzz-crashes/files- $(B)/fuzz-files-corpus
