# kernel/rules.mk - included by the top-level Makefile.
#   make kernel        build/kernel/linux: UML 6.1 with ubd/ and cow/
#   make kernel-stock  build/kernel/linux-stock: the same with the stock ubd
#   make check-kernel  boot tests (part of make check)
# kernel/build.sh is always run: the kernel's own make decides what is stale.

.PHONY: kernel kernel-stock check-kernel

kernel:
	kernel/build.sh $(B) ours

kernel-stock:
	kernel/build.sh $(B) stock

check-kernel: all kernel $(B)/tests/cowutil $(B)/tests/eio_preload.so \
		$(B)/tests/maptool
	tests/kernel/run.sh $(B)

# Fails chosen reads of a chosen file inside a booted kernel (LD_PRELOAD).
$(B)/tests/eio_preload.so: tests/kernel/eio_preload.c
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -O2 -fPIC -shared -o $@ $< -ldl

# File mappings inside a booted kernel (the map-on-read tests).
$(B)/tests/maptool: tests/kernel/maptool.c
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -O2 -o $@ $<

CHECK_SUITES += check-kernel
