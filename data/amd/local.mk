# SPDX-License-Identifier: Apache-2.0
# AMD's SEV-SNP roots (ARK, ASK, ASVK for Milan, Genoa, Turin), the default
# trust of the broker and of `attestkey snp verify` (data/amd/README.md).
amddir = $(datadir)/attestkey/amd
dist_amd_DATA = \
	data/amd/ark-milan.pem data/amd/ask-milan.pem data/amd/asvk-milan.pem \
	data/amd/ark-genoa.pem data/amd/ask-genoa.pem data/amd/asvk-genoa.pem \
	data/amd/ark-turin.pem data/amd/ask-turin.pem data/amd/asvk-turin.pem
EXTRA_DIST += data/amd/README.md
