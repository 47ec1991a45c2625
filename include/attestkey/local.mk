# SPDX-License-Identifier: Apache-2.0
noinst_HEADERS += \
	include/attestkey/common.h \
	include/attestkey/secmem.h \
	include/attestkey/protocol.h \
	include/attestkey/jwe.h \
	include/attestkey/envelope.h \
	include/attestkey/pkey.h \
	include/attestkey/snp.h \
	include/attestkey/evidence.h \
	include/attestkey/verify.h \
	include/attestkey/tdx.h \
	include/attestkey/vault.h \
	include/attestkey/observe.h \
	include/attestkey/hsmenv.h \
	include/attestkey/azure.h
