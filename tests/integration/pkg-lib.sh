# SPDX-License-Identifier: Apache-2.0
# Shared by the packaging tests (systemd-unit.sh, quiet-module.sh,
# install-prefix.sh, packages.sh), sourced after lib.sh.

# make_var NAME: the build's value of a make variable, fully expanded
# (sbindir, sysconfdir, prefix...), read from $top_builddir/Makefile
make_var() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$top_builddir" \
		-f "$top_builddir/Makefile" -f - ak-print-var AK_VAR="$1" <<'EOM'
ak-print-var:
	@echo '$($(AK_VAR))'
EOM
}
