"""Out-of-band (BMC) controls judged from `gpufence scan bmc` evidence (OOB-005 and up)."""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._bmc import (
    Verdict,
    failing,
    is_enabled,
    passing,
    per_bmc,
)
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.observed_bmc import ObservedBmc, Snmp
from gpufence.model.snapshot import Snapshot

_NSA_BMC = "https://media.defense.gov/2023/Jun/14/2003241405/-1/-1/0/CSI_HARDEN_BMCS.PDF"
_REDFISH = "https://www.dmtf.org/standards/redfish"
_CVE_54085 = "https://nvd.nist.gov/vuln/detail/CVE-2024-54085"
_IPMI_RAKP = "https://nvd.nist.gov/vuln/detail/CVE-2013-4786"
_RPV = "https://github.com/DMTF/Redfish-Protocol-Validator"
_DSP0266 = "https://www.dmtf.org/dsp/DSP0266"
_HPE_ILO = "https://www.hpe.com/support/ilo-docs"
_RFC8996 = "https://www.rfc-editor.org/rfc/rfc8996"
_SP800_63B = "https://pages.nist.gov/800-63-3/sp800-63b.html"
_CIPHER0 = "https://nvd.nist.gov/vuln/detail/CVE-2013-4784"


@control(
    id="OOB-005",
    title="BMC serves Redfish over plain HTTP",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="Basic-auth headers and session tokens sent over plain HTTP can be read by "
    "anyone on the path to the BMC, giving them the BMC's administrator account.",
    remediation="Disable the HTTP service (NetworkProtocol HTTP.ProtocolEnabled=false) or make it "
    "redirect to HTTPS, and reach Redfish only through https:// URLs.",
    references=(_RPV, _DSP0266, _NSA_BMC),
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
    references=(_RFC8996, _RPV, _NSA_BMC),
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
    references=(_RPV, _HPE_ILO, _NSA_BMC),
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
    references=(_RPV, _DSP0266),
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
    references=(_RPV, _DSP0266, _CVE_54085),
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
    references=(_DSP0266, _NSA_BMC),
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


@control(
    id="OOB-011",
    title="IPMI allows anonymous, null-user, cleartext or cipher-suite-0 login",
    plane=Plane.OOB,
    severity=Severity.CRITICAL,
    failure_mode="Cipher suite 0 skips the password check for any known user name; anonymous and "
    "null users, and IPMI 1.5 'none'/'straight password' authentication, give the BMC away too.",
    remediation="Disable IPMI over LAN; if it must stay, disable cipher suite 0, the anonymous "
    "and null users and IPMI 1.5 NONE/straight-password authentication, and set a BMC key (Kg).",
    references=(_CIPHER0, _IPMI_RAKP, _NSA_BMC),
)
def ipmi_weak_login(snap: Snapshot) -> Iterator[Outcome]:
    facts = ("bmc.ipmi.caps", "bmc.ipmi.cipher0_users", "bmc.ipmi_over_lan")

    def judge(f: ObservedBmc) -> Verdict | None:
        caps, zero = f.ipmi_caps, f.ipmi_cipher0_users
        reasons = []
        if zero:
            names = ", ".join(u or "(null user)" for u in zero)
            reasons.append(f"cipher suite 0 session opened for {names}")
        if caps is not None:
            if caps.anonymous_login:
                reasons.append("anonymous login enabled")
            if caps.null_users:
                reasons.append("null user names enabled")
            if caps.cleartext_auth:
                reasons.append("IPMI 1.5 auth " + "/".join(caps.cleartext_auth) + " allowed")
        if reasons:
            return failing("; ".join(reasons))
        if caps is not None:
            tested = "cipher 0 refused" if zero == () else "cipher 0 not tested (--intrusive)"
            return passing(f"no anonymous, null or cleartext IPMI login; {tested}")
        if f.ipmi_over_lan is False:
            return passing("IPMI over LAN is disabled")
        return None

    yield from per_bmc(snap, "the IPMI login options", facts, judge)


@control(
    id="OOB-012",
    title="BMC account lockout is disabled",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="Without lockout or a failure delay, BMC passwords can be brute-forced online at "
    "full speed.",
    remediation="Set AccountLockoutThreshold (e.g. 5) with a lockout duration and counter reset, "
    "or the vendor equivalent (iLO authentication failure delay, iDRAC IP blocking).",
    references=(_NSA_BMC, _SP800_63B),
)
def lockout_disabled(snap: Snapshot) -> Iterator[Outcome]:
    facts = (
        "bmc.account.lockout_threshold",
        "bmc.account.failure_delay",
        "bmc.account.ip_blocking",
    )

    def judge(f: ObservedBmc) -> Verdict | None:
        threshold, delay, blocking = f.lockout_threshold, f.failure_delay, f.ip_blocking
        if threshold is not None and threshold > 0:
            return passing(f"accounts lock after {threshold} failed logins")
        if delay is not None and delay.after_failures and delay.delay_s:
            return passing(
                f"no lockout, but a {delay.delay_s} s delay after "
                f"{delay.after_failures} failure(s) slows guessing"
            )
        if blocking is not None and blocking.enabled:
            return passing(f"source IPs are blocked after {blocking.fail_count} failures")
        if threshold == 0 or delay is not None or blocking is not None:
            return failing("failed logins are never locked out, delayed or blocked")
        return None

    yield from per_bmc(snap, "the lockout policy", facts, judge)


@control(
    id="OOB-013",
    title="BMC password policy is weak",
    plane=Plane.OOB,
    severity=Severity.MEDIUM,
    failure_mode="Short or simple BMC passwords fall to offline cracking of IPMI RAKP hashes and "
    "to online guessing.",
    remediation="Require at least 8 characters (NIST SP 800-63B; longer for admins) and enable "
    "the vendor's complexity rule where it offers one (iLO EnforcePasswordComplexity).",
    references=(_SP800_63B, _HPE_ILO),
)
def password_policy(snap: Snapshot) -> Iterator[Outcome]:
    facts = ("bmc.account.min_password_length", "bmc.account.password_complexity")

    def judge(f: ObservedBmc) -> Verdict | None:
        length = f.min_password_length
        reasons = []
        if length is not None and length < 8:
            reasons.append(f"minimum password length {length}")
        if f.password_complexity is False:
            reasons.append("password complexity not enforced")
        if reasons:
            return failing("; ".join(reasons))
        if length is not None:
            return passing(f"minimum password length {length}")
        return None

    yield from per_bmc(snap, "the password policy", facts, judge)


@control(
    id="OOB-014",
    title="BMC does not log authentication failures",
    plane=Plane.OOB,
    severity=Severity.MEDIUM,
    failure_mode="Without failure logging a password-guessing campaign against the BMC leaves no "
    "trace to alert on.",
    remediation="Set AuthFailureLoggingThreshold to 1-3 (iLO: Authentication Failure Logging "
    "enabled) and forward the BMC log off-box.",
    references=(_HPE_ILO, _NSA_BMC),
)
def auth_failure_logging(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        threshold = f.auth_failure_logging_threshold
        if threshold is None:
            return None
        if threshold == 0:
            return failing("authentication failures are not logged")
        return passing(f"every {threshold} authentication failure(s) are logged")

    yield from per_bmc(
        snap,
        "authentication failure logging",
        ("bmc.account.auth_failure_logging_threshold",),
        judge,
    )


@control(
    id="OOB-015",
    title="BMC accounts need a password change or hold too many administrators",
    plane=Plane.OOB,
    severity=Severity.MEDIUM,
    failure_mode="An account still flagged PasswordChangeRequired has its factory password; many "
    "administrator accounts (or IPMI-enabled admins, whose passwords are stored reversibly) "
    "multiply the ways in.",
    remediation="Change every initial password, keep few administrator accounts (use directory "
    "groups), and do not enable IPMI on administrator accounts.",
    references=(_NSA_BMC, _RPV),
)
def account_hygiene(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        if f.accounts is None:
            return None
        enabled = [a for a in f.accounts if a.enabled is not False]
        admins = [a.username for a in enabled if a.role == "Administrator"]
        reasons = [
            f"{a.username}: password change required (initial password in use)"
            for a in enabled
            if a.password_change_required is True
        ]
        if len(admins) > 4:
            reasons.append(f"{len(admins)} enabled administrator accounts")
        reasons += [
            f"{a.username}: administrator with IPMI access"
            for a in enabled
            if a.role == "Administrator" and "IPMI" in (a.account_types or ())
        ]
        if reasons:
            return failing("; ".join(reasons))
        return passing(
            f"{len(enabled)} enabled account(s), {len(admins)} administrator(s), no "
            "pending initial password"
        )

    yield from per_bmc(snap, "the BMC accounts", ("bmc.accounts",), judge)


@control(
    id="OOB-016",
    title="BMC login uses only local passwords (no directory, no MFA)",
    plane=Plane.OOB,
    severity=Severity.LOW,
    failure_mode="Local-only BMC passwords are shared, rarely rotated and survive staff changes; "
    "nothing revokes them centrally.",
    remediation="Bind BMC login to LDAP/AD (with TLS) or enable multi-factor authentication, and "
    "keep one break-glass local account.",
    references=(_NSA_BMC,),
)
def local_only_auth(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        directory, mfa = f.directory, f.mfa
        if directory is None or mfa is None:
            return None
        if directory or mfa:
            return passing("central or multi-factor login: " + ", ".join([*directory, *mfa]))
        return failing("no directory service and no multi-factor authentication enabled")

    yield from per_bmc(
        snap, "the login methods", ("bmc.account.directory", "bmc.account.mfa"), judge
    )


@control(
    id="OOB-017",
    title="BMC sessions stay open too long when idle",
    plane=Plane.OOB,
    severity=Severity.LOW,
    failure_mode="Long idle timeouts leave authenticated BMC sessions (and their tokens) usable "
    "long after the operator walked away.",
    remediation="Set SessionService SessionTimeout to 30 minutes (1800 s) or less.",
    references=(_HPE_ILO, _DSP0266),
)
def session_timeout(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        timeout, vendor = f.session_timeout_s, f.vendor_idle_timeout
        if vendor is not None:
            # The vendor's own idle timeout governs its sessions (HPE iLO: 0 = never).
            if vendor.never:
                return failing(f"idle sessions never time out ({vendor.source} = 0)")
            if vendor.seconds is not None and vendor.seconds > 1800:
                return failing(
                    f"idle session timeout is {vendor.seconds} s (more than 30 minutes; "
                    f"{vendor.source})"
                )
        if timeout is None:
            if vendor is not None and vendor.seconds is not None:
                return passing(f"idle session timeout is {vendor.seconds} s")
            return None
        if timeout > 1800:
            return failing(f"idle session timeout is {timeout} s (more than 30 minutes)")
        return passing(f"idle session timeout is {timeout} s")

    yield from per_bmc(
        snap,
        "the session timeout",
        ("bmc.session.timeout_s", "bmc.session.vendor_idle_timeout"),
        judge,
    )


@control(
    id="OOB-018",
    title="Cleartext or legacy management protocols enabled on a BMC",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="Telnet, FTP and SNMPv1/v2c send passwords and community strings in clear; "
    "default communities and SSDP advertise the BMC to anyone on the segment.",
    remediation="Disable Telnet, FTP, SNMPv1/v2c and SSDP; use SSH and SNMPv3 with "
    "authentication and privacy, and never the 'public'/'private' communities.",
    references=(_NSA_BMC, _HPE_ILO),
)
def legacy_protocols(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        protocols, snmp = f.protocols, f.snmp or Snmp()
        if protocols is None and f.snmp is None:
            return None
        high = [name for name in ("Telnet", "FTP") if is_enabled(protocols, name)]
        high += [f"SNMP{v}" for v, on in (("v1", snmp.v1), ("v2c", snmp.v2c)) if on is True]
        if snmp.default_community:
            high.append("default SNMP community")
        medium = ["SSDP"] if is_enabled(protocols, "SSDP") else []
        if high:
            return failing("enabled: " + ", ".join(high + medium))
        if medium:
            return failing("enabled: SSDP (advertises the BMC on the segment)", Severity.LOW)
        # A protocol the BMC does not report is not a protocol that is off (as OOB-003/005).
        unreported = [n for n in ("Telnet", "FTP", "SSDP") if n not in (protocols or {})]
        if snmp.v1 is None and snmp.v2c is None and snmp.enabled is not False:
            unreported.append("SNMP versions")
        if unreported:
            return Verdict(
                Status.NOT_EVALUATED,
                "cannot judge the enabled protocols: the BMC does not report "
                + ", ".join(unreported),
            )
        return passing("no Telnet, FTP, SNMPv1/v2c or SSDP enabled")

    yield from per_bmc(snap, "the enabled protocols", ("bmc.protocols", "bmc.snmp"), judge)


@control(
    id="OOB-019",
    title="BMC remote console reachable over Telnet or unencrypted",
    plane=Plane.OOB,
    severity=Severity.MEDIUM,
    failure_mode="A serial or shell console over Telnet, or unencrypted KVM/virtual media, exposes "
    "keystrokes, screens and mounted images of the host to the network.",
    remediation="Offer consoles over SSH only, enable KVM and virtual-media encryption, and turn "
    "off console services that are not used.",
    references=(_NSA_BMC, _HPE_ILO),
)
def console_exposure(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        console = f.console
        if console is None:
            return None
        # ConnectTypesSupported lists what the console can speak; with the Telnet service off
        # (NetworkProtocol or the vendor's attribute) it is not offered over Telnet.
        telnet = f.protocols.get("Telnet") if f.protocols is not None else None
        telnet_off = telnet is not None and telnet.enabled is False
        services = console.services()
        reasons = [
            f"{name} offers Telnet"
            for name in ("SerialConsole", "CommandShell")
            if (service := services.get(name)) is not None
            and service.enabled is True
            and "Telnet" in (service.connect_types or ())
            and not telnet_off
        ]
        for encrypted, label in (
            (console.virtual_media_encrypted, "virtual media"),
            (console.kvm_encrypted, "KVM"),
        ):
            if encrypted is False:
                reasons.append(f"{label} encryption off")
        if reasons:
            return failing("; ".join(reasons))
        enabled = [name for name, service in services.items() if service.enabled is True]
        return passing(
            f"consoles ({', '.join(enabled) or 'none'}) without Telnet or disabled encryption"
        )

    yield from per_bmc(snap, "the remote consoles", ("bmc.console", "bmc.protocols"), judge)


def _tenant_root_nodes(snap: Snapshot, nodes: tuple[str, ...]) -> list[str]:
    by_name = {v.node.name: v for v in snap.nodes}
    return [n for n in nodes if n in by_name and by_name[n].pool.tenant_root]


@control(
    id="OOB-020",
    title="Host OS can reach the BMC without credentials",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="A Redfish host interface with AuthNone or credential bootstrapping, or KCS/CHIF "
    "without host authentication, lets root on the host (a bare-metal tenant) reconfigure the "
    "BMC, add users or flash firmware, and so attack the next tenant of that server.",
    remediation="Disable the host interface or require credentials on it (no AuthNone, "
    "CredentialBootstrapping off); on iLO enable 'Require Host Authentication'; on iDRAC disable "
    "OS-to-iDRAC pass-through where tenants have root.",
    references=(_NSA_BMC, _HPE_ILO, _DSP0266),
)
def host_to_bmc(snap: Snapshot) -> Iterator[Outcome]:
    nodes_of = {v.resource: v.nodes for v in snap.bmcs}
    for outcome in per_bmc(
        snap, "the host-to-BMC path", ("bmc.host_interface.credential_free",), _judge_host_path
    ):
        exposed = _tenant_root_nodes(snap, nodes_of.get(outcome.resource, ()))
        if outcome.status is Status.FAIL and exposed:
            # Tenants with root on the host are exactly who must not reach the BMC.
            yield Outcome(
                outcome.status,
                outcome.resource,
                f"{outcome.message}; tenants have root on {', '.join(exposed)}",
                outcome.evidence,
                outcome.pointer,
                Severity.CRITICAL,
            )
        else:
            yield outcome


def _judge_host_path(f: ObservedBmc) -> Verdict | None:
    info = f.host_credential_free
    if info is None:
        return None
    if info.value:
        return failing("; ".join(info.paths or ("credential-free host path",)))
    return passing("no credential-free path from the host to the BMC")


@control(
    id="OOB-021",
    title="BMC shares a host NIC without a management VLAN",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="A shared (NC-SI) BMC port without its own VLAN puts the BMC on the host's data "
    "network, where the host's tenant can reach it.",
    remediation="Use the dedicated management port, or tag the shared port with a management VLAN "
    "that the host's networks do not carry.",
    references=(_NSA_BMC,),
)
def shared_nic_without_vlan(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        if f.shared_nic is None:
            return None
        if f.shared_nic is False:
            return passing("the BMC uses a dedicated management port")
        ports = f.nic_vlan or ()
        untagged = [p.id for p in ports if not p.vlan_enabled]
        if untagged or not ports:
            return failing(f"shared NIC; untagged management interfaces: {untagged or 'unknown'}")
        return passing("shared NIC, tagged with a management VLAN")

    yield from per_bmc(snap, "the BMC port placement", ("bmc.shared_nic", "bmc.nic_vlan"), judge)


@control(
    id="OOB-022",
    title="BMC sends no events or logs off the box",
    plane=Plane.OOB,
    severity=Severity.LOW,
    failure_mode="A compromised BMC can erase its own log; without events or syslog leaving the "
    "box, tampering and brute-force attempts go unseen.",
    remediation="Subscribe a collector to Redfish events (EventService) or enable remote syslog, "
    "and alert on BMC logins, user and firmware changes.",
    references=(_NSA_BMC,),
)
def no_remote_logging(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        info = f.remote_logging
        if info is None:
            return None
        if info.value:
            return passing("events/logs leave the box: " + ", ".join(info.sinks))
        return failing("no Redfish event subscription and no remote syslog")

    yield from per_bmc(snap, "off-box logging", ("bmc.remote_logging",), judge)


@control(
    id="OOB-023",
    title="BMC has no NTP time source",
    plane=Plane.OOB,
    severity=Severity.LOW,
    failure_mode="A BMC clock that drifts makes its logs useless as evidence and can break "
    "certificate validation.",
    remediation="Configure NTP servers on the BMC (NetworkProtocol NTP, or the vendor date/time "
    "service).",
    references=(_NSA_BMC,),
)
def no_ntp(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        info = f.ntp
        if info is None:
            return None
        if info.value:
            return passing("time from " + ", ".join(info.servers))
        if info.unlisted:
            return Verdict(
                Status.NOT_EVALUATED,
                "cannot judge the time source: NTP is enabled but the BMC lists no servers",
            )
        return failing("no NTP server configured")

    yield from per_bmc(snap, "the time source", ("bmc.ntp",), judge)


@control(
    id="OOB-024",
    title="BMC security override or chassis intrusion is active",
    plane=Plane.OOB,
    severity=Severity.HIGH,
    failure_mode="The security override switch disables BMC login checks; an intrusion alert means "
    "someone opened the chassis and may have tampered with firmware or hardware.",
    remediation="Set the override switch off, investigate and clear intrusion alerts, and lock "
    "the server configuration where the vendor offers it.",
    references=(_HPE_ILO, _NSA_BMC),
)
def physical_override(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        physical = f.physical
        if physical is None:
            return None
        reasons = []
        if (physical.override_switch or "").lower() == "on":
            reasons.append("security override switch is on")
        reasons += [
            f"chassis {i.chassis}: intrusion sensor {i.sensor}"
            for i in physical.intrusion
            if i.sensor not in ("Normal", None)
        ]
        if reasons:
            return failing("; ".join(reasons))
        return passing("override switch off; intrusion sensors normal")

    yield from per_bmc(snap, "the physical security state", ("bmc.physical",), judge)


@control(
    id="OOB-025",
    title="BMC vendor security dashboard reports a risk",
    plane=Plane.OOB,
    severity=Severity.MEDIUM,
    failure_mode="The vendor's own security dashboard flags a setting as a risk (or someone told "
    "it to ignore one), so the BMC runs below its vendor's hardening baseline.",
    remediation="Fix each parameter the dashboard rates 'Risk' (its RecommendedAction says how) "
    "and do not set Ignore on security parameters.",
    references=(_HPE_ILO,),
)
def vendor_dashboard(snap: Snapshot) -> Iterator[Outcome]:
    def judge(f: ObservedBmc) -> Verdict | None:
        board = f.vendor_dashboard
        if board is None:
            return None
        if board.vendor is None:
            return passing("not applicable: this BMC has no vendor security dashboard")
        risks = [f"{p.name} ({p.state})" for p in board.params if p.status == "Risk"]
        ignored = [p.name for p in board.params if p.ignored]
        if risks or ignored:
            text = f"{board.vendor}: Risk: {', '.join(risks) or 'none'}"
            return failing(text + (f"; ignored: {', '.join(ignored)}" if ignored else ""))
        return passing(f"{board.vendor}: every parameter Ok")

    yield from per_bmc(snap, "the vendor security dashboard", ("bmc.vendor_dashboard",), judge)
