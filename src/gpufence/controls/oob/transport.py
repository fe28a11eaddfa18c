"""BMC scan controls on how Redfish is reached (OOB-005 .. OOB-010): plain HTTP, TLS versions and
ciphers, the certificate, unauthenticated reads and writes, what the service root discloses.
"""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._bmc import (
    Verdict,
    failing,
    passing,
    per_bmc,
)
from gpufence.controls.engine import Outcome, control
from gpufence.controls.oob._references import (
    CVE_54085,
    DSP0266,
    HPE_ILO,
    NSA_BMC,
    RFC8996,
    RPV,
)
from gpufence.model.findings import Plane, Severity
from gpufence.model.observed_bmc import ObservedBmc
from gpufence.model.snapshot import Snapshot


@control(
    id="OOB-005",
    title="BMC serves Redfish over plain HTTP",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="Basic-auth headers and session tokens sent over plain HTTP can be read by "
    "anyone on the path to the BMC, giving them the BMC's administrator account.",
    remediation="Disable the HTTP service (NetworkProtocol HTTP.ProtocolEnabled=false) or make it "
    "redirect to HTTPS, and reach Redfish only through https:// URLs.",
    references=(RPV, DSP0266, NSA_BMC),
)
def redfish_plain_http(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        if f.redfish_scheme == "http":
            return failing("the scanned Redfish URL is plain http:// and the BMC answered on it")
        if f.http_enabled is None:
            return None
        if f.http_enabled is True:
            return failing(
                "NetworkProtocol reports HTTP enabled: clients that use http:// send credentials "
                "in clear unless the BMC redirects them",
                Severity.MEDIUM,
            )
        return passing("HTTP is disabled; Redfish is HTTPS only")

    yield from per_bmc(
        snap, "whether plain HTTP is served", ("bmc.redfish_scheme", "bmc.http_enabled"), judge
    )


@control(
    id="OOB-006",
    title="BMC accepts TLS 1.0/1.1 or weak cipher suites",
    plane=Plane.OOB,
    severity=Severity.MEDIUM,
    failure_mode="TLS 1.0/1.1 and legacy suites (CBC-SHA1, RSA key exchange) allow downgrade and "
    "decryption attacks on the BMC's admin sessions and credentials.",
    remediation="Allow only TLS 1.2 and 1.3 with AEAD suites (iLO: TLSVersion TLS1_0/TLS1_1 "
    "Disabled and DisableWeakCiphers; iDRAC: WebServer.1.TLSProtocol 'TLS 1.2 and Higher'; "
    "Redfish SecurityPolicy TLS.Server.Allowed.Versions).",
    references=(RFC8996, RPV, NSA_BMC),
)
def weak_tls(snap: Snapshot) -> Iterator[Outcome]:
    facts = (
        "bmc.tls.tls1_0",
        "bmc.tls.tls1_1",
        "bmc.tls.configured_legacy",
        "bmc.tls.weak_ciphers",
        "bmc.redfish_scheme",
    )

    def judge(f: ObservedBmc) -> Verdict | None:
        reasons = [
            f"accepts {v} (handshake)"
            for accepted, v in ((f.tls1_0, "TLS 1.0"), (f.tls1_1, "TLS 1.1"))
            if accepted is True
        ]
        reasons += [f"configured to allow {v}" for v in f.tls_configured_legacy or ()]
        if f.tls_weak_ciphers is True:
            reasons.append("weak cipher suites not disabled")
        if reasons:
            return failing("; ".join(reasons))
        probed = f.tls1_0 is not None and f.tls1_1 is not None
        if probed or f.tls_configured_legacy is not None:
            how = "handshakes refused" if probed else "per its configuration"
            return passing(f"TLS 1.0 and 1.1 not accepted ({how})")
        return None

    yield from per_bmc(snap, "which TLS versions are accepted", facts, judge)


@control(
    id="OOB-007",
    title="BMC HTTPS certificate is a factory default, self-signed or expired",
    plane=Plane.OOB,
    severity=Severity.MEDIUM,
    failure_mode="With a factory or self-signed certificate nobody can tell the BMC from an "
    "impostor; operators click through warnings and hand their BMC password to whoever answers.",
    remediation="Replace the certificate with one from your CA (Redfish CertificateService "
    "ReplaceCertificate, or automatic enrollment), RSA >= 2048 or ECDSA, SHA-256 or better, and "
    "renew before expiry; pass that CA to gpufence with --ca-bundle.",
    references=(RPV, HPE_ILO, NSA_BMC),
)
def default_certificate(snap: Snapshot) -> Iterator[Outcome]:
    facts = ("bmc.tls.cert", "bmc.tls.reported_cert_problems", "bmc.tls.cert_trusted")

    def judge(f: ObservedBmc) -> Verdict | None:
        cert = f.tls_cert
        reasons = [f"presented certificate: {p}" for p in cert.problems] if cert is not None else []
        reasons += [f"BMC reports: {p}" for p in f.tls_reported_cert_problems or ()]
        if f.tls_cert_trusted is False:
            reasons.append("presented certificate does not chain to the trusted CAs")
        if reasons:
            return failing("; ".join(reasons))
        if cert is not None:
            return passing(f"certificate issued by {cert.issuer}, valid until {cert.not_after}")
        return None

    yield from per_bmc(snap, "the HTTPS certificate", facts, judge)


@control(
    id="OOB-008",
    title="BMC serves Redfish resources without authentication",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="Anything beyond the service root that answers without credentials leaks the "
    "inventory, accounts or sessions of the server to anyone on the network.",
    remediation="Require authentication for every resource except /redfish, /redfish/v1, "
    "/redfish/v1/odata and /redfish/v1/$metadata; update firmware that does not.",
    references=(RPV, DSP0266),
)
def anonymous_read(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        readable = f.anonymous_readable
        if readable is None:
            return None
        if readable:
            return failing(f"readable without credentials: {', '.join(readable)}")
        return passing("non-root resources refuse unauthenticated reads")

    yield from per_bmc(
        snap, "unauthenticated read access", ("bmc.redfish.anonymous_readable",), judge
    )


@control(
    id="OOB-009",
    title="BMC accepts unauthenticated Redfish writes",
    plane=Plane.OOB,
    severity=Severity.CRITICAL,
    failure_mode="A write accepted without credentials lets anyone on the network change "
    "accounts, boot settings or firmware of the server.",
    remediation="Update the BMC firmware; until then isolate the BMC network completely.",
    references=(RPV, DSP0266, CVE_54085),
)
def anonymous_write(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        if f.anonymous_write is True:
            return failing("an unauthenticated PATCH (empty body) was accepted")
        return passing("an unauthenticated PATCH was refused")

    yield from per_bmc(
        snap, "unauthenticated write access", ("bmc.redfish.anonymous_write",), judge
    )


@control(
    id="OOB-010",
    title="BMC service root discloses firmware and host identity without login",
    plane=Plane.OOB,
    severity=Severity.LOW,
    failure_mode="A firmware version and host name readable without credentials let an attacker "
    "pick the exploit for exactly this build (e.g. iLO's ManagerFirmwareVersion).",
    remediation="Keep BMCs on an isolated management network; where the vendor allows it, hide "
    "OEM details from the unauthenticated service root.",
    references=(DSP0266, NSA_BMC),
)
def root_disclosure(snap: Snapshot) -> Iterator[Outcome]:
    sensitive = ("ManagerFirmwareVersion", "FQDN", "HostName")

    def judge(f: ObservedBmc) -> Verdict | None:
        leaked = f.root_disclosure
        if leaked is None:
            return None
        bad = {k: v for k, v in leaked.items() if k in sensitive}
        if bad:
            return failing(
                "unauthenticated service root shows "
                + ", ".join(f"{k}={v}" for k, v in bad.items())
            )
        return passing("the unauthenticated service root shows no firmware version or host name")

    yield from per_bmc(snap, "what the service root discloses", ("bmc.root_disclosure",), judge)
