# kernel/rules.mk - included by the top-level Makefile.
#   make kernel        build/kernel/linux: UML 6.1 with ubd/ and cow/
#   make kernel-stock  build/kernel/linux-stock: the same with the stock ubd
#   make check-kernel  boot tests (not yet part of make check)
# kernel/build.sh is always run: the kernel's own make decides what is stale.

.PHONY: kernel kernel-stock check-kernel

kernel:
	kernel/build.sh $(B) ours

kernel-stock:
	kernel/build.sh $(B) stock

check-kernel: all kernel $(B)/tests/cowutil
	tests/kernel/run.sh $(B)

# Not yet part of make check: the suite (hot-plug in particular) has not
# passed on a clean checkout.  Run it with make check-kernel.
