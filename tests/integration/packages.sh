#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# issue 11 item 5: the Debian packages. From a copy of the source tree (the
# tree itself stays clean) `dpkg-buildpackage -us -uc -b` builds
# libattestkey-pkcs11, attestkey-broker and attestkey-tools; lintian finds
# nothing but the documented overrides; the packages install with dpkg,
# p11-kit lists the module and, with a sim configuration, its token; the
# installed broker and module serve an attested login; the unit is in
# /lib/systemd/system and verifies; then the packages are purged again, so
# the machine's p11-kit registry is as it was.
#
# It installs packages system-wide, so it runs only when asked:
# AK_PACKAGE_TEST=1 (scripts/setup check and .ci/run set it), as root.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pkg-lib.sh"

[ "${AK_PACKAGE_TEST:-0}" = 1 ] ||
	skip_all "installs packages system-wide: run with AK_PACKAGE_TEST=1 as root (scripts/setup check does)"
[ "$(id -u)" = 0 ] || skip_all "dpkg -i needs root"
need dpkg-buildpackage dpkg-checkbuilddeps dh lintian p11-kit pkcs11-tool systemd-analyze
PKGS="libattestkey-pkcs11 attestkey-broker attestkey-tools"
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'installed' &&
		skip_all "$p is installed on this machine: the test would replace it, then purge it"
done
user_existed=no
getent passwd attestkey >/dev/null && user_existed=yes

# Whatever happens: the packages purged, the user the broker's postinst
# made removed again, then lib.sh's cleanup.
installed=no
pkg_cleanup() {
	if [ "$installed" = yes ]; then
		dpkg --purge $PKGS >>"$T/purge.log" 2>&1
		[ "$user_existed" = yes ] || ! getent passwd attestkey >/dev/null ||
			deluser --system attestkey >>"$T/purge.log" 2>&1
	fi
	cleanup
}
trap pkg_cleanup EXIT

# --- build, from a copy: the files git knows (tracked, or new and not
# ignored) or, in a release tarball, the whole tree
mkdir -p "$T/pkg/src"
if git -C "$top_srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top_srcdir" && { git ls-files -z; git ls-files -z -o --exclude-standard; } |
		tar -c --null -T - -f -) | tar -x -C "$T/pkg/src" || bail "cannot copy the source tree"
else
	tar -c -C "$top_srcdir" --exclude='./build*' --exclude=./_build --exclude='./attestkey-*' -f - . |
		tar -x -C "$T/pkg/src" || bail "cannot copy the source tree"
fi
check "the build dependencies of debian/control are installed" \
	sh -c "cd '$T/pkg/src' && dpkg-checkbuilddeps"
start=$(date +%s)
if (cd "$T/pkg/src" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=2" \
	dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - start)) s)"
else
	not_ok "dpkg-buildpackage -us -uc -b"
	tail -n 40 "$T/build.log" | diag_stream
	finish
fi
debs=""
for p in $PKGS; do
	f=$(ls "$T/pkg/${p}_"*.deb 2>/dev/null)
	check "$p was built" test -f "$f"
	debs="$debs $f"
done
check "libattestkey-pkcs11 holds the module and its p11-kit registration" sh -c "
	dpkg-deb -c $T/pkg/libattestkey-pkcs11_*.deb >'$T/lib.list' &&
	grep -q ' ./usr/lib/[^ ]*/pkcs11/attestkey-pkcs11.so$' '$T/lib.list' &&
	grep -q ' ./usr/share/p11-kit/modules/attestkey.module$' '$T/lib.list'"
check "attestkey-broker holds the daemon, the unit, the examples and the AMD and Intel roots" sh -c "
	dpkg-deb -c $T/pkg/attestkey-broker_*.deb >'$T/broker.list' &&
	grep -q ' ./usr/sbin/attestkey-broker$' '$T/broker.list' &&
	grep -q ' ./lib/systemd/system/attestkey-broker.service$' '$T/broker.list' &&
	grep -q ' ./usr/share/doc/attestkey-broker/examples/broker.conf.example$' '$T/broker.list' &&
	grep -q ' ./usr/share/attestkey/amd/ark-milan.pem$' '$T/broker.list' &&
	grep -q ' ./usr/share/attestkey/intel/Intel_SGX_Root_CA.pem$' '$T/broker.list'"
check "attestkey-tools holds the CLI" sh -c "dpkg-deb -c $T/pkg/attestkey-tools_*.deb | grep -q ' ./usr/bin/attestkey$'"
# lintian: a warning or an error not overridden (each override in
# debian/*.lintian-overrides says why) fails
if lintian --fail-on error,warning "$T/pkg/"attestkey_*.changes >"$T/lintian.log" 2>&1; then
	ok "lintian: nothing but the documented overrides"
else
	not_ok "lintian: nothing but the documented overrides"
	grep -v 'running with root privileges' "$T/lintian.log" | diag_stream
fi

# --- install
# shellcheck disable=SC2086
if dpkg -i $debs >"$T/install.log" 2>&1; then
	installed=yes
	ok "dpkg -i the three packages"
else
	installed=yes # half-installed: purge it all the same
	not_ok "dpkg -i the three packages"
	tail -n 30 "$T/install.log" | diag_stream
	finish
fi
check "the unit is /lib/systemd/system/attestkey-broker.service" test -f /lib/systemd/system/attestkey-broker.service
check "systemd-analyze verify on the installed unit" sh -c \
	"systemd-analyze verify --man=no /lib/systemd/system/attestkey-broker.service >'$T/verify.log' 2>&1 && ! [ -s '$T/verify.log' ]"
for doc in $(sed -n 's/^Documentation=//p' /lib/systemd/system/attestkey-broker.service); do
	check "the unit's Documentation= $doc exists" test -f "${doc#file:}"
done
check "the postinst made the system user attestkey" getent passwd attestkey
check "attestkey --help runs" sh -c "/usr/bin/attestkey --help | grep -q '^Usage: attestkey'"
check "attestkey-broker --version runs" sh -c "/usr/sbin/attestkey-broker --version | grep -q '^attestkey-broker '"

# p11-kit, through the installed registration: with no configuration the
# module is listed, says nothing and shows no token ...
unset ATTESTKEY_CONF
if [ -e /etc/attestkey/attestkey.conf ]; then
	skip "p11-kit list-modules without a configuration" "/etc/attestkey/attestkey.conf exists here"
else
	p11-kit list-modules >"$T/mods0.out" 2>"$T/mods0.err"
	check "p11-kit list-modules lists the attestkey module (no configuration)" grep -q '^attestkey' "$T/mods0.out"
	check "... without a token, and the module prints nothing" sh -c \
		"! sed -n '/^attestkey/,/^[^ ]/p' '$T/mods0.out' | grep -q 'token:' && ! grep -q attestkey '$T/mods0.err'"
fi
# ... and with a sim configuration and the installed broker, its token,
# and an attested login through the installed module
MODULE_SO=$(sed -n 's/^module: *//p' /usr/share/p11-kit/modules/attestkey.module)
check "the registration names the installed module ($MODULE_SO)" test -f "$MODULE_SO"
AK_TOOL=/usr/bin/attestkey
AK_BROKER=/usr/sbin/attestkey-broker
AK_RUN=""
setup_world
start_broker
p11-kit list-modules >"$T/mods.out" 2>"$T/mods.err"
check "p11-kit list-modules shows the attestkey module and its token web" sh -c \
	"sed -n '/^attestkey/,/^[^ ]/p' '$T/mods.out' | grep -q 'token: web'"
pkcs11-tool --module "$MODULE_SO" --login --pin 1234 -O >"$T/objects.txt" 2>&1
check "the installed module logs in against the installed broker: a private key" \
	grep -q "Private Key Object" "$T/objects.txt"
check "the broker recorded the release" test "$(releases)" -ge 1
stop_broker

# --- purge: the registration and the unit are gone
dpkg --purge $PKGS >"$T/purge.log" 2>&1
rc=$?
installed=no
[ "$user_existed" = yes ] || deluser --system attestkey >>"$T/purge.log" 2>&1
check "dpkg --purge the three packages" test "$rc" = 0
check "the p11-kit registration is gone" test ! -e /usr/share/p11-kit/modules/attestkey.module
check "the unit is gone" test ! -e /lib/systemd/system/attestkey-broker.service
check "p11-kit list-modules no longer lists attestkey" sh -c "! p11-kit list-modules 2>/dev/null | grep -q '^attestkey'"
finish
