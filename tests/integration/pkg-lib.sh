# SPDX-License-Identifier: Apache-2.0
# Shared by the packaging tests (systemd-unit.sh, quiet-module.sh,
# install-prefix.sh, packages.sh), sourced after lib.sh.

# make_var NAME [BUILDDIR]: a build's value of a make variable, fully
# expanded (sbindir, sysconfdir, prefix...), read from BUILDDIR/Makefile
# (default $top_builddir)
make_var() {
	local b=${2:-$top_builddir}
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$b" \
		-f "$b/Makefile" -f - ak-print-var AK_VAR="$1" <<'EOM'
ak-print-var:
	@echo '$($(AK_VAR))'
EOM
}
# make_in BUILDDIR ARGS...: make in a build directory, not as part of the
# make that runs the suite (its jobserver and flags stay out)
make_in() {
	local b=$1
	shift
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$b" "$@"
}
