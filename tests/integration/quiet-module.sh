#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# issue 11 item 5: every p11-kit program loads the module (GnuTLS tools,
# Firefox through p11-kit-proxy); with no configuration at the built-in
# path and no $ATTESTKEY_CONF it must print nothing and offer no slot,
# except one debug line when ATTESTKEY_DEBUG asks. $ATTESTKEY_CONF naming
# a missing file stays an error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pkg-lib.sh"
need pkcs11-tool p11-kit

sysconfdir=$(make_var sysconfdir) && [ -n "$sysconfdir" ] || bail "cannot read sysconfdir from the build's Makefile"
DEFAULT_CONF="$sysconfdir/attestkey/attestkey.conf"
unset ATTESTKEY_CONF ATTESTKEY_DEBUG

# The module registered alone in p11-kit's module directory (a private
# mount namespace as root, as registry() in lib.sh; a private HOME if not).
# When the built-in file exists on this machine, root hides it under an
# empty tmpfs in the same namespace; anyone else cannot, and skips.
MODDIR=$(pkg-config --variable=p11_module_configs p11-kit-1)
mkdir -p "$T/mods" "$T/home/.config/pkcs11"
sed "s|^module:.*|module: $AK_MODULE|" "$top_srcdir/conf/attestkey.module.in" >"$T/mods/attestkey.module"
ln -sfn "$T/mods" "$T/home/.config/pkcs11/modules"
hide=""
if [ -e "$DEFAULT_CONF" ]; then
	[ "$(id -u)" = 0 ] || skip_all "$DEFAULT_CONF exists and only root can hide it in a mount namespace"
	hide="mount -t tmpfs none '$(dirname "$DEFAULT_CONF")' &&"
fi
# unconfigured CMD...: run CMD (a shell command line) as a program p11-kit
# loads the module into, with no configuration anywhere
unconfigured() {
	if [ "$(id -u)" = 0 ]; then
		unshare -m sh -c "$hide mount --bind '$T/mods' '$MODDIR' && $*"
	else
		HOME="$T/home" sh -c "$*"
	fi
}

# pkcs11-tool -L: C_GetSlotList; with no slot it writes "No slots." on
# stderr itself and exits 1. Anything else there came from the module.
unconfigured "$AK_RUN pkcs11-tool --module '$AK_MODULE' --list-slots" >"$T/slots.out" 2>"$T/slots.err"
check "pkcs11-tool -L: no slot" grep -qx 'No slots.' "$T/slots.err"
if grep -vqx 'No slots.' "$T/slots.err"; then
	not_ok "pkcs11-tool -L: the module prints nothing"
	diag_stream <"$T/slots.err"
else
	ok "pkcs11-tool -L: the module prints nothing"
fi
check "pkcs11-tool -L: nothing on stdout but its heading" grep -qx 'Available slots:' "$T/slots.out"
check "... and only that" test "$(wc -l <"$T/slots.out")" = 1
# C_GetSlotList(CK_TRUE), slots with a token present: none either
unconfigured "$AK_RUN pkcs11-tool --module '$AK_MODULE' --list-token-slots" >"$T/tslots.out" 2>"$T/tslots.err"
check "pkcs11-tool --list-token-slots: no slot and nothing from the module" \
	bash -c "grep -qx 'No slots.' '$T/tslots.err' && [ \$(wc -l <'$T/tslots.err') = 1 ]"

unconfigured "$AK_RUN p11-kit list-modules" >"$T/modules.out" 2>"$T/modules.err"
rc=$?
check "p11-kit list-modules succeeds" test "$rc" = 0
check "p11-kit list-modules lists the attestkey module" grep -q '^attestkey' "$T/modules.out"
check "p11-kit list-modules: attestkey shows no token" bash -c "! grep -q 'token:' '$T/modules.out'"
if [ -s "$T/modules.err" ]; then
	not_ok "p11-kit list-modules: nothing on stderr"
	diag_stream <"$T/modules.err"
else
	ok "p11-kit list-modules: nothing on stderr"
fi

# debugging asked: one line, naming the file it looked for
unconfigured "ATTESTKEY_DEBUG=1 $AK_RUN pkcs11-tool --module '$AK_MODULE' --list-slots" >/dev/null 2>"$T/debug.err"
check "ATTESTKEY_DEBUG=1: a debug line names $DEFAULT_CONF" \
	grep -qF "attestkey: debug: $DEFAULT_CONF does not exist: no tokens" "$T/debug.err"
check "ATTESTKEY_DEBUG=1: nothing but debug lines (and pkcs11-tool's own)" \
	test "$(grep -v 'debug: ' "$T/debug.err" | grep -vcx 'No slots.')" = 0

# an explicit file that is missing stays an error, with its line
unconfigured "ATTESTKEY_CONF='$T/missing.conf' $AK_RUN pkcs11-tool --module '$AK_MODULE' --list-slots" \
	>/dev/null 2>"$T/missing.err"
rc=$?
check "ATTESTKEY_CONF naming a missing file: pkcs11-tool fails" test "$rc" != 0
check "... and the module says which file it cannot read" \
	grep -qF "cannot read the configuration $T/missing.conf: No such file or directory" "$T/missing.err"
# a present but broken file is no silent "no slot" either
printf '[module]\nbrokers = https://127.0.0.1:9\n' >"$T/broken.conf"
unconfigured "ATTESTKEY_CONF='$T/broken.conf' $AK_RUN pkcs11-tool --module '$AK_MODULE' --list-slots" \
	>/dev/null 2>"$T/broken.err"
check "a configuration without ca: the module names what is missing" \
	grep -qF "$T/broken.conf: [module] ca is missing" "$T/broken.err"
finish
