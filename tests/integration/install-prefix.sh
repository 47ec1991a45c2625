#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# issue 11 item 7: `make install` writes nothing outside its prefix: the
# p11-kit .module file goes to $prefix/share/p11-kit/modules and the
# systemd unit to $prefix/lib/systemd/system unless configure was told
# otherwise (--with-p11-kit-module-dir, --with-systemdsystemunitdir); and
# a --prefix=/usr build reads /etc/attestkey, as the docs and packages say.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pkg-lib.sh"

prefix=$(make_var prefix) && [ -n "$prefix" ] || bail "cannot read prefix from the build's Makefile"
D="$T/dest"
# the build's own install, staged in DESTDIR (nothing to build: make check
# built it all)
if make_in "$top_builddir" install DESTDIR="$D" >"$T/install.log" 2>&1; then
	ok "make install DESTDIR=... (prefix $prefix)"
else
	not_ok "make install DESTDIR=... (prefix $prefix)"
	tail -n 20 "$T/install.log" | diag_stream
fi
(cd "$D" && find . ! -type d | sed 's|^\.||' | sort) >"$T/files"
check "make install installed files" test -s "$T/files"
if grep -v "^$prefix/" "$T/files" >"$T/outside"; then
	not_ok "every installed file is under $prefix"
	diag_stream <"$T/outside"
else
	ok "every installed file is under $prefix ($(wc -l <"$T/files") files)"
fi
mod="$prefix/share/p11-kit/modules/attestkey.module"
check "the p11-kit registration is $mod" test -f "$D$mod"
so=$(sed -n 's/^module: *//p' "$D$mod" 2>/dev/null)
check "its module: line names the installed module ($so)" test -f "$D$so"
check "the unit is $prefix/lib/systemd/system/attestkey-broker.service" \
	test -f "$D$prefix/lib/systemd/system/attestkey-broker.service"
check "no libtool archive for the dlopen()ed module" bash -c "! grep -q 'attestkey-pkcs11.la$' '$T/files'"
# make uninstall takes it all away again
make_in "$top_builddir" uninstall DESTDIR="$D" >"$T/uninstall.log" 2>&1
check "make uninstall leaves no file" test -z "$(find "$D" ! -type d)"

# configure's options, in a build directory of their own (configure only,
# nothing built; one cache file for the three runs)
cfg() {
	local b=$1
	shift
	mkdir -p "$b" && (cd "$b" && "$top_srcdir/configure" --cache-file="$T/config.cache" \
		"$@" >"$b.log" 2>&1)
}
# (configure refuses another build directory of a source tree configured in
# place)
[ ! -f "$top_srcdir/config.status" ] ||
	{ skip "configure's options" "$top_srcdir is configured in place"; finish; }
if cfg "$T/b1" --prefix=/usr --with-p11-kit-module-dir="$T/p11mods" --with-systemdsystemunitdir=/lib/systemd/system; then
	ok "configure --prefix=/usr --with-p11-kit-module-dir=DIR --with-systemdsystemunitdir=DIR"
	check "--prefix=/usr: sysconfdir is /etc" test "$(make_var sysconfdir "$T/b1")" = /etc
	check "--prefix=/usr: localstatedir is /var" test "$(make_var localstatedir "$T/b1")" = /var
	check "--with-p11-kit-module-dir=DIR: the .module goes to DIR" \
		test "$(make_var p11moduleconfdir "$T/b1")" = "$T/p11mods"
	check "--with-systemdsystemunitdir=DIR: the unit goes to DIR" \
		test "$(make_var systemdsystemunitdir "$T/b1")" = /lib/systemd/system
	check "configure names the built-in configuration path" \
		grep -qF "configure: module and broker configuration: /etc/attestkey/{attestkey,broker}.conf" "$T/b1.log"
	# the paths the programs and the unit were built with
	make_in "$T/b1" conf/attestkey-broker.service conf/attestkey.module >>"$T/b1.log" 2>&1
	check "the unit runs /usr/sbin/attestkey-broker -c /etc/attestkey/broker.conf" \
		grep -qx 'ExecStart=/usr/sbin/attestkey-broker -c /etc/attestkey/broker.conf' "$T/b1/conf/attestkey-broker.service"
	check "the .module names /usr/lib/pkcs11/attestkey-pkcs11.so" \
		grep -qx 'module: /usr/lib/pkcs11/attestkey-pkcs11.so' "$T/b1/conf/attestkey.module"
else
	not_ok "configure --prefix=/usr --with-p11-kit-module-dir=DIR --with-systemdsystemunitdir=DIR"
	tail -n 20 "$T/b1.log" | diag_stream
fi
if cfg "$T/b2" --prefix="$T/p" --sysconfdir=/opt/etc --with-p11-module-configs="$T/old" --without-systemdsystemunitdir; then
	ok "configure --with-p11-module-configs=DIR (the former name) --without-systemdsystemunitdir"
	check "--with-p11-module-configs=DIR still works" test "$(make_var p11moduleconfdir "$T/b2")" = "$T/old"
	check "an explicit --sysconfdir wins" test "$(make_var sysconfdir "$T/b2")" = /opt/etc
	check "--without-systemdsystemunitdir: no unit installed" \
		test -z "$(make_var systemdsystemunit_DATA "$T/b2")"
else
	not_ok "configure --with-p11-module-configs=DIR --without-systemdsystemunitdir"
	tail -n 20 "$T/b2.log" | diag_stream
fi
if cfg "$T/b3" --with-p11-kit-module-dir=no; then
	not_ok "--without-p11-kit-module-dir is refused"
else
	check "--without-p11-kit-module-dir is refused, saying why" grep -q "the .module file is how p11-kit finds the module" "$T/b3.log"
fi
finish
