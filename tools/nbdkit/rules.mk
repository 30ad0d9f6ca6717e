# nbdkit-ubd-plugin: the merged view of a COW pair over NBD.
# Included by the top-level Makefile.  The plugin links the library's
# position-independent objects, so it needs no libubdk.so at run time.

NBDKIT_PLUGIN := $(B)/lib/nbdkit-ubd-plugin.so
NBDKIT_PLUGINDIR ?= $(shell pkg-config --variable=plugindir nbdkit 2>/dev/null)
CHECK_SUITES += check-nbdkit

tools: $(NBDKIT_PLUGIN)

$(NBDKIT_PLUGIN): tools/nbdkit/ubd.c tools/nbdkit/plugin.map $(LIB_PIC) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -Icow $$(pkg-config --cflags nbdkit) \
		-Wl,--version-script=tools/nbdkit/plugin.map -o $@ $< $(LIB_PIC) -pthread

.PHONY: check-nbdkit install-nbdkit uninstall-nbdkit
check-nbdkit: all $(B)/tests/cowutil $(NBDKIT_PLUGIN)
	$(call prove-suite,nbdkit,2)

# Into nbdkit's own plugin directory, where `nbdkit ubd` finds it.
install: install-nbdkit
install-nbdkit: $(NBDKIT_PLUGIN)
	@test -n "$(NBDKIT_PLUGINDIR)" || { echo "no nbdkit plugindir: install nbdkit-plugin-dev or set NBDKIT_PLUGINDIR" >&2; exit 1; }
	install -d $(DESTDIR)$(NBDKIT_PLUGINDIR)
	install -m 0755 $(NBDKIT_PLUGIN) $(DESTDIR)$(NBDKIT_PLUGINDIR)/

uninstall: uninstall-nbdkit
uninstall-nbdkit:
	rm -f $(DESTDIR)$(NBDKIT_PLUGINDIR)/nbdkit-ubd-plugin.so
