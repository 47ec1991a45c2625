# SPDX-License-Identifier: Apache-2.0
dist_doc_DATA += docs/attestation.md docs/protocol.md docs/architecture.md docs/pin.md docs/snp.md docs/tdx-sim.md docs/attestkey-broker.8.md docs/attestkey.1.md docs/conformance.md docs/performance.md docs/security.md docs/vault.md docs/hsm.md docs/operations.md docs/threat-model.md
# issue 11 item 7: from install to nginx (every command run by setup-sim.sh)
dist_doc_DATA += docs/quickstart.md
# issue 12: leases, renewal, revocation, grace, rotation, fork
dist_doc_DATA += docs/lifecycle.md
# issue 14: Azure confidential VMs (vTPM evidence)
dist_doc_DATA += docs/azure.md
