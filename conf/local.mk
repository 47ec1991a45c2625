# SPDX-License-Identifier: Apache-2.0
examplesdir = $(docdir)/examples
dist_examples_DATA = \
	conf/attestkey.conf.example \
	conf/openssl-pkcs11.cnf.example \
	conf/nginx-attestkey.conf.example
