"""BMC scan controls on who can log in and how (OOB-011 .. OOB-017): IPMI login options, lockout,
password policy, failure logging, accounts, directory/MFA, session timeout.
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
    CIPHER0,
    DSP0266,
    HPE_ILO,
    IPMI_RAKP,
    NSA_BMC,
    RPV,
    SP800_63B,
)
from gpufence.model.findings import Plane, Severity
from gpufence.model.observed_bmc import ObservedBmc
from gpufence.model.snapshot import Snapshot


@control(
    id="OOB-011",
    title="IPMI allows anonymous, null-user, cleartext or cipher-suite-0 login",
    plane=Plane.OOB,
    severity=Severity.CRITICAL,
    failure_mode="Cipher suite 0 skips the password check for any known user name; anonymous and "
    "null users, and IPMI 1.5 'none'/'straight password' authentication, give the BMC away too.",
    remediation="Disable IPMI over LAN; if it must stay, disable cipher suite 0, the anonymous "
    "and null users and IPMI 1.5 NONE/straight-password authentication, and set a BMC key (Kg).",
    references=(CIPHER0, IPMI_RAKP, NSA_BMC),
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
    references=(NSA_BMC, SP800_63B),
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
    references=(SP800_63B, HPE_ILO),
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
    references=(HPE_ILO, NSA_BMC),
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
    references=(NSA_BMC, RPV),
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
    references=(NSA_BMC,),
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
    references=(HPE_ILO, DSP0266),
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
