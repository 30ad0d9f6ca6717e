# kernel/rules.mk - included by the top-level Makefile.
#   make kernel        build/kernel/linux: UML 6.1 with ubd/ and cow/
#   make kernel-stock  build/kernel/linux-stock: the same with the stock ubd
#   make check-kernel  boot tests (part of make check)
#   make check-kernel-map  the same with map-on-read on (part of make check)
# kernel/build.sh is always run: the kernel's own make decides what is stale.

.PHONY: kernel kernel-stock check-kernel check-kernel-map

kernel:
	kernel/build.sh $(B) ours

kernel-stock:
	kernel/build.sh $(B) stock

check-kernel: all kernel $(B)/tests/cowutil $(B)/tests/eio_preload.so \
		$(B)/tests/maptool
	$(call prove-suite,kernel,2)

# Fails chosen reads of a chosen file inside a booted kernel (LD_PRELOAD).
$(B)/tests/eio_preload.so: tests/kernel/eio_preload.c
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -O2 -fPIC -shared -o $@ $< -ldl

# File mappings inside a booted kernel (the map-on-read tests).
$(B)/tests/maptool: tests/kernel/maptool.c
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -O2 -o $@ $<

# The whole suite again with map-on-read ('m') on every device our kernel
# boots (docs/sharing.md: on or off, every kernel test passes), five
# SIGKILL rounds instead of twenty; it must have mapped pages, or the run
# proved nothing.
check-kernel-map: all kernel $(B)/tests/cowutil $(B)/tests/eio_preload.so \
		$(B)/tests/maptool
	rm -f $(B)/kernel-map.log
	UBD_MAP=1 UBD_MAP_LOG=$(abspath $(B))/kernel-map.log KILL_ROUNDS=5 $(call prove-suite,kernel,2)
	@awk '{ n += $$NF } END { printf "kernel (m): %d pages mapped over the suite\n", n; exit n == 0 }' \
		$(B)/kernel-map.log

CHECK_SUITES += check-kernel check-kernel-map
