"""Sources the out-of-band controls cite."""

from __future__ import annotations

NSA_BMC = "https://media.defense.gov/2023/Jun/14/2003241405/-1/-1/0/CSI_HARDEN_BMCS.PDF"
REDFISH = "https://www.dmtf.org/standards/redfish"
CVE_54085 = "https://nvd.nist.gov/vuln/detail/CVE-2024-54085"
IPMI_RAKP = "https://nvd.nist.gov/vuln/detail/CVE-2013-4786"
RPV = "https://github.com/DMTF/Redfish-Protocol-Validator"
DSP0266 = "https://www.dmtf.org/dsp/DSP0266"
HPE_ILO = "https://www.hpe.com/support/ilo-docs"
RFC8996 = "https://www.rfc-editor.org/rfc/rfc8996"
SP800_63B = "https://pages.nist.gov/800-63-3/sp800-63b.html"
CIPHER0 = "https://nvd.nist.gov/vuln/detail/CVE-2013-4784"
