# uml_mkcow: COW files, one or thousands, a drop-in for uml-utilities' tool.
# Included by the top-level Makefile.

TOOLS += uml_mkcow
uml_mkcow_SRC := tools/mkcow/uml_mkcow.c tools/mkcow/clone.c tools/mkcow/names.c \
	tools/mkcow/diff.c
uml_mkcow_PKGS := jansson
CHECK_SUITES += check-mkcow

.PHONY: check-mkcow
check-mkcow: all $(B)/tests/cowutil
	$(call prove-suite,mkcow,2)
