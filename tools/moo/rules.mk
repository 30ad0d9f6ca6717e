# uml_moo: merge a COW file into a new image or into its backing file.
# Included by the top-level Makefile.

TOOLS += uml_moo
uml_moo_SRC := tools/moo/uml_moo.c tools/moo/merge.c tools/moo/resume.c
uml_moo_PKGS := jansson
CHECK_SUITES += check-moo

.PHONY: check-moo
check-moo: all $(B)/tests/cowutil
	$(call prove-suite,moo,3)
