# SPDX-License-Identifier: Apache-2.0
# The key broker daemon. Everything but main() is the convenience library
# libakbroker.la so unit tests drive the handler without a socket.
noinst_LTLIBRARIES += libakbroker.la
libakbroker_la_SOURCES = \
	src/broker/broker.h \
	src/broker/brokerconf.h \
	src/broker/brokerconf.c \
	src/broker/audit.c \
	src/broker/denylist.h \
	src/broker/denylist.c \
	src/broker/epkpool.c \
	src/broker/ratelimit.c \
	src/broker/fairshare.c \
	src/broker/handler.c \
	src/broker/keystore.h \
	src/broker/keystore.c \
	src/broker/keystore_file.c \
	src/broker/keystore_vault.c \
	src/broker/keystore_pkcs11.c \
	src/broker/metrics.h \
	src/broker/metrics.c \
	src/broker/nonce.h \
	src/broker/nonce.c \
	src/broker/server.c
libakbroker_la_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(GNUTLS_CFLAGS) $(CURL_CFLAGS) $(P11KIT_CFLAGS)
libakbroker_la_LIBADD = $(MHD_LIBS) $(GNUTLS_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS) \
	$(P11KIT_LIBS)

sbin_PROGRAMS += attestkey-broker
attestkey_broker_SOURCES = src/broker/main.c
attestkey_broker_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS)
attestkey_broker_LDADD = libakbroker.la libakverify.la libakvault.la libakcommon.la \
	$(MHD_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS) $(CURL_LIBS) \
	$(P11KIT_LIBS)
