"""Pure extraction: what was read from a BMC -> dotted ``bmc.*`` facts, or why each is unknown.

Every fact the controls read is listed in :data:`FACTS`. A fact is *observed* when some source
gave a value, otherwise it is *not observed* with the most specific reason available (the fetch
that failed, the link that was absent, the property the resource lacked, or the scan state).
Vendor security summaries (HPE iLO SecurityParams, Dell iDRAC attributes) feed the same facts as
the DMTF properties, so the controls need not know vendors. Services and placement live in
:mod:`gpufence.collect.bmc.facts_services`.
"""

from __future__ import annotations

import datetime
from typing import Any

from gpufence.collect.bmc.facts_services import placement, services
from gpufence.collect.bmc.observations import (
    FACTS,
    Observations,
    dell_attributes,
    enabled,
    get,
    hpe_params,
)
from gpufence.collect.bmc.redfish import Json, Walk
from gpufence.collect.bmc.tls import vendor_default_certificate

__all__ = ["FACTS", "Observations", "from_anonymous", "from_walk", "hpe_params"]


_OEM_VENDORS = {
    "Hpe": "HPE",
    "Hp": "HPE",
    "Dell": "Dell",
    "Supermicro": "Supermicro",
    "Ami": "AMI",
    "Lenovo": "Lenovo",
    "Nvidia": "NVIDIA",
    "OpenBmc": "OpenBMC",
}


def from_anonymous(
    obs: Observations, root: Json, readable: list[str], scheme: str, probed: int | None = None
) -> None:
    """Facts from the unauthenticated service root and the anonymous probes.

    ``probed`` is how many resources were tried without credentials; with none tried, nothing
    is known about unauthenticated reads (an empty ``readable`` would read as a pass).
    """
    obs.set("bmc.redfish_scheme", scheme)
    if probed == 0:
        obs.miss(
            "bmc.redfish.anonymous_readable",
            "the service root links no resource (Sessions, AccountService, Systems, Managers) "
            "to probe without credentials",
        )
    else:
        obs.set("bmc.redfish.anonymous_readable", readable)
    obs.set("bmc.redfish_version", root.get("RedfishVersion"))
    leaked: dict[str, Any] = {}
    for key in ("Vendor", "Product"):
        if isinstance(root.get(key), str) and root[key]:
            leaked[key] = root[key]
    hpe = get(root, "Oem.Hpe.Manager")
    if isinstance(hpe, list) and hpe and isinstance(hpe[0], dict):
        for key in ("ManagerType", "ManagerFirmwareVersion", "FQDN", "HostName"):
            if hpe[0].get(key):
                leaked[key] = hpe[0][key]
    obs.set("bmc.root_disclosure", leaked)
    vendor = root.get("Vendor") if isinstance(root.get("Vendor"), str) else None
    if not vendor and isinstance(root.get("Oem"), dict):
        vendor = next((_OEM_VENDORS[k] for k in root["Oem"] if k in _OEM_VENDORS), None)
    if vendor:
        obs.set("bmc.vendor", vendor)
    if "ManagerFirmwareVersion" in leaked:
        obs.set_default("bmc.firmware_version", str(leaked["ManagerFirmwareVersion"]))
    if "ManagerType" in leaked:
        obs.set_default("bmc.model", str(leaked["ManagerType"]))


def from_walk(obs: Observations, walk: Walk) -> None:
    """Facts from the authenticated walk."""
    params = hpe_params(walk)
    dell = dell_attributes(walk)
    _identity(obs, walk)
    _transport(obs, walk, params, dell)
    _accounts(obs, walk, params, dell)
    services(obs, walk, params, dell)
    placement(obs, walk)
    _firmware(obs, walk, params)
    _physical(obs, walk, params, dell)


def _identity(obs: Observations, walk: Walk) -> None:
    manager = walk.first("manager")
    if manager is None:
        for fact in ("bmc.model", "bmc.firmware_version"):
            obs.miss(fact, walk.why_missing("manager"))
        return
    obs.set("bmc.model", manager.get("Model"))
    obs.set("bmc.firmware_version", manager.get("FirmwareVersion"))
    obs.set_default("bmc.vendor", manager.get("Manufacturer"))
    if isinstance(manager.get("Oem"), dict):
        oem = next((_OEM_VENDORS[k] for k in manager["Oem"] if k in _OEM_VENDORS), None)
        obs.set_default("bmc.vendor", oem)
    # The firmware entry that names this manager as its RelatedItem has its manufacturer.
    manager_path = walk.by_role["manager"][0][0].rstrip("/")
    for item in walk.all("firmware"):
        related = item.get("RelatedItem")
        if isinstance(related, list) and any(
            isinstance(r, dict) and str(r.get("@odata.id", "")).rstrip("/") == manager_path
            for r in related
        ):
            obs.set_default("bmc.vendor", item.get("Manufacturer"))
    obs.miss("bmc.vendor", "neither the service root nor the manager names a vendor")


_LEGACY_BY_NAME = {"1.0": "TLSv1", "1.1": "TLSv1.1", "TLS1_0": "TLSv1", "TLS1_1": "TLSv1.1"}


def _configured_legacy(walk: Walk, dell: dict[str, Any]) -> list[str] | None:
    found: set[str] | None = None
    for policy in walk.all("security_policy"):
        versions = get(policy, "TLS.Server.Allowed.Versions")
        if isinstance(versions, list):
            found = (found or set()) | {
                _LEGACY_BY_NAME[v] for v in versions if isinstance(v, str) and v in _LEGACY_BY_NAME
            }
    for service in walk.all("hpe_security_service"):
        tls = service.get("TLSVersion")
        if isinstance(tls, dict):
            found = (found or set()) | {
                _LEGACY_BY_NAME[k] for k, v in tls.items() if k in _LEGACY_BY_NAME and enabled(v)
            }
    protocol = dell.get("WebServer.1.TLSProtocol")
    if isinstance(protocol, str):
        text = protocol.lower()
        legacy = {"TLSv1", "TLSv1.1"} if "1.0" in text else {"TLSv1.1"} if "1.1" in text else set()
        found = (found or set()) | legacy
    return sorted(found) if found is not None else None


def _cert_problems(cert: Json, now: datetime.datetime) -> list[str]:
    problems: list[str] = []
    issuer, subject = cert.get("Issuer"), cert.get("Subject")
    text_issuer = (
        str(issuer)
        if not isinstance(issuer, dict)
        else ",".join(f"{k}={v}" for k, v in issuer.items() if isinstance(v, str))
    )
    text_subject = (
        str(subject)
        if not isinstance(subject, dict)
        else ",".join(f"{k}={v}" for k, v in subject.items() if isinstance(v, str))
    )
    label = vendor_default_certificate(text_issuer, text_subject)
    if label:
        problems.append(label)
    if isinstance(issuer, dict) and isinstance(subject, dict):
        plain = {k: v for k, v in subject.items() if k != "AlternativeNames"}
        if plain == issuer:
            problems.append("self-signed (issuer equals subject)")
    not_after = cert.get("ValidNotAfter")
    if isinstance(not_after, str):
        try:
            when = datetime.datetime.fromisoformat(not_after.replace("Z", "+00:00"))
            if when.tzinfo is not None and when < now:
                problems.append(f"expired {not_after}")
        except ValueError:
            pass
    algorithm = str(cert.get("SignatureAlgorithm") or "").lower()
    if algorithm.startswith(("sha1", "md5")):
        problems.append(f"signed with {cert['SignatureAlgorithm']}")
    return problems


def _transport(
    obs: Observations, walk: Walk, params: dict[str, Json], dell: dict[str, Any]
) -> None:
    protocol = walk.first("network_protocol")
    if protocol is not None:
        obs.set("bmc.http_enabled", enabled(get(protocol, "HTTP.ProtocolEnabled")))
    else:
        obs.miss("bmc.http_enabled", walk.why_missing("network_protocol"))
    legacy = _configured_legacy(walk, dell)
    if legacy is not None:
        obs.set("bmc.tls.configured_legacy", legacy)
    else:
        obs.miss(
            "bmc.tls.configured_legacy",
            "no TLS version settings (SecurityPolicy, iLO "
            "SecurityService or iDRAC WebServer attributes) were readable",
        )
    for service in walk.all("hpe_security_service"):
        weak = enabled(service.get("DisableWeakCiphers"))
        if weak is not None:
            obs.set("bmc.tls.weak_ciphers", not weak)
    now = datetime.datetime.now(datetime.UTC)
    problems: list[str] = []
    seen_cert = False
    for cert in walk.all("https_certificate"):
        seen_cert = True
        problems += _cert_problems(cert, now)
    for cert in walk.all("hpe_https_cert"):
        info = cert.get("X509CertificateInformation")
        if isinstance(info, dict):
            seen_cert = True
            problems += _cert_problems(info, now)
    default_param = params.get("Default SSL Certificate In Use")
    if default_param is not None:
        seen_cert = True
        if enabled(default_param.get("State")) or default_param.get("SecurityStatus") == "Risk":
            problems.append("iLO dashboard: Default SSL Certificate In Use")
    if seen_cert:
        obs.set("bmc.tls.reported_cert_problems", sorted(set(problems)))
    else:
        obs.miss("bmc.tls.reported_cert_problems", walk.why_missing("https_certificate"))


def _accounts(obs: Observations, walk: Walk, params: dict[str, Json], dell: dict[str, Any]) -> None:
    service = walk.first("account_service")
    sessions = walk.first("session_service")
    if sessions is not None:
        obs.set("bmc.session.timeout_s", sessions.get("SessionTimeout"))
    obs.miss("bmc.session.timeout_s", walk.why_missing("session_service"))
    # HPE iLO: the idle timeout of every iLO session (web, REST, remote console) is a manager
    # setting in minutes, 0 meaning "never"; the SessionService value does not cover it.
    idle = get(walk.first("manager"), "Oem.Hpe.IdleConnectionTimeoutMinutes")
    if isinstance(idle, int) and not isinstance(idle, bool) and idle >= 0:
        obs.set(
            "bmc.session.vendor_idle_timeout",
            {
                "seconds": idle * 60 if idle else None,
                "never": idle == 0,
                "source": "Managers Oem.Hpe.IdleConnectionTimeoutMinutes",
            },
        )
    obs.miss("bmc.session.vendor_idle_timeout", "the manager reports no vendor idle timeout")
    if service is None:
        why = walk.why_missing("account_service")
        for fact in FACTS:
            if fact.startswith("bmc.account"):
                obs.miss(fact, why)
    hpe = get(service, "Oem.Hpe") or {}
    obs.set("bmc.account.lockout_threshold", get(service, "AccountLockoutThreshold"))
    obs.set("bmc.account.lockout_duration_s", get(service, "AccountLockoutDuration"))
    obs.set("bmc.account.lockout_reset_after_s", get(service, "AccountLockoutCounterResetAfter"))
    if isinstance(hpe.get("AuthFailuresBeforeDelay"), int):
        obs.set(
            "bmc.account.failure_delay",
            {
                "after_failures": hpe["AuthFailuresBeforeDelay"],
                "delay_s": hpe.get("AuthFailureDelayTimeSeconds"),
            },
        )
    if "IPBlocking.1.BlockEnable" in dell:
        obs.set(
            "bmc.account.ip_blocking",
            {
                "enabled": enabled(dell.get("IPBlocking.1.BlockEnable")),
                "fail_count": dell.get("IPBlocking.1.FailCount"),
                "fail_window_s": dell.get("IPBlocking.1.FailWindow"),
                "penalty_s": dell.get("IPBlocking.1.PenaltyTime"),
            },
        )
    obs.set(
        "bmc.account.min_password_length",
        get(service, "MinPasswordLength") or hpe.get("MinPasswordLength"),
    )
    complexity = enabled(hpe.get("EnforcePasswordComplexity"))
    if complexity is None and "Password Complexity" in params:
        complexity = enabled(params["Password Complexity"].get("State"))
    obs.set("bmc.account.password_complexity", complexity)
    logging_threshold = get(service, "AuthFailureLoggingThreshold")
    if logging_threshold is None:
        logging_threshold = hpe.get("AuthFailureLoggingThreshold")
    if logging_threshold is None and "Authentication Failure Logging" in params:
        state = enabled(params["Authentication Failure Logging"].get("State"))
        logging_threshold = None if state is None else (1 if state else 0)
    obs.set("bmc.account.auth_failure_logging_threshold", logging_threshold)
    if service is not None:
        providers = [
            name
            for name in ("LDAP", "ActiveDirectory", "OAuth2", "TACACSplus")
            if enabled(get(service, f"{name}.ServiceEnabled"))
        ]
        obs.set("bmc.account.directory", providers)
        mfa = [
            kind
            for kind, value in (get(service, "MultiFactorAuth") or {}).items()
            if isinstance(value, dict) and enabled(value.get("Enabled"))
        ]
        if enabled(hpe.get("TwoFactorAuth")):
            mfa.append("HpeTwoFactorAuth")
        obs.set("bmc.account.mfa", mfa)
    for fact, prop in (
        ("bmc.account.lockout_threshold", "AccountLockoutThreshold"),
        ("bmc.account.min_password_length", "MinPasswordLength"),
        ("bmc.account.password_complexity", "password complexity setting"),
        ("bmc.account.auth_failure_logging_threshold", "AuthFailureLoggingThreshold"),
        ("bmc.account.lockout_duration_s", "AccountLockoutDuration"),
        ("bmc.account.lockout_reset_after_s", "AccountLockoutCounterResetAfter"),
        ("bmc.account.failure_delay", "authentication failure delay"),
        ("bmc.account.ip_blocking", "IP blocking settings"),
    ):
        obs.miss(fact, f"AccountService has no {prop}")
    accounts = []
    for account in walk.all("account"):
        name = account.get("UserName")
        if not name:
            continue  # empty slots (iDRAC lists 16)
        accounts.append(
            {
                "username": name,
                "role": account.get("RoleId"),
                "enabled": enabled(account.get("Enabled")),
                "locked": account.get("Locked"),
                "password_change_required": account.get("PasswordChangeRequired"),
                "account_types": account.get("AccountTypes"),
            }
        )
    if "account" in walk.by_role or walk.counts.get("accounts") == 0:
        obs.set("bmc.accounts", accounts)
    obs.miss("bmc.accounts", walk.why_missing("accounts"))


def _firmware(obs: Observations, walk: Walk, params: dict[str, Json]) -> None:
    if "firmware" in walk.by_role:
        obs.set(
            "bmc.firmware_inventory",
            [
                {
                    "id": f.get("Id"),
                    "name": f.get("Name"),
                    "version": f.get("Version"),
                    "manufacturer": f.get("Manufacturer"),
                    "updateable": f.get("Updateable"),
                }
                for f in walk.all("firmware")
            ],
        )
    obs.miss("bmc.firmware_inventory", walk.why_missing("firmware_inventory"))
    secure_boot = dict(walk.by_role.get("secure_boot", []))
    systems: list[Json] = []
    for path, system in walk.by_role.get("system", []):
        sb_doc = next((d for p, d in secure_boot.items() if p.startswith(path.rstrip("/"))), None)
        sb = None
        if sb_doc is not None:
            current = sb_doc.get("SecureBootCurrentBoot")
            on = (
                enabled(current) if current is not None else enabled(sb_doc.get("SecureBootEnable"))
            )
            if sb_doc.get("SecureBootMode") == "SetupMode":
                on = False  # no platform key: nothing is enforced
            sb = {
                "enabled": on,
                "enable_setting": sb_doc.get("SecureBootEnable"),
                "current_boot": current,
                "mode": sb_doc.get("SecureBootMode"),
            }
        # An entry that names neither an interface type nor a state says nothing about a TPM
        # (some BMCs report `TrustedModules: [{}]`): it is left out, never read as "no TPM".
        tpms = [
            {
                "type": t.get("InterfaceType"),
                "state": get(t, "Status.State"),
                "firmware": t.get("FirmwareVersion"),
            }
            for t in system.get("TrustedModules") or []
            if isinstance(t, dict) and (t.get("InterfaceType") or get(t, "Status.State"))
        ]
        tpm_known = isinstance(system.get("TrustedModules"), list) and (
            bool(tpms) or not system["TrustedModules"]
        )
        systems.append(
            {
                "id": system.get("Id"),
                "host_name": system.get("HostName"),
                "model": system.get("Model"),
                "manufacturer": system.get("Manufacturer"),
                "bios_version": system.get("BiosVersion"),
                "secure_boot": sb,
                "tpm": tpms if tpm_known else None,
            }
        )
    if systems:
        obs.set("bmc.systems", systems)
        states = {s["secure_boot"]["enabled"] for s in systems if s["secure_boot"]}
        if len(states) == 1 and None not in states:
            obs.set("bmc.secure_boot", states.pop())
        else:
            obs.miss(
                "bmc.secure_boot",
                walk.why_missing("secure_boot")
                if not states
                else "the systems of this BMC disagree on Secure Boot",
            )
    obs.miss("bmc.systems", walk.why_missing("systems"))
    obs.miss("bmc.secure_boot", walk.why_missing("systems"))
    if "Secure Boot" in params:
        obs.set_default("bmc.secure_boot", enabled(params["Secure Boot"].get("State")))
    components = [
        {
            "id": c.get("Id"),
            "type": c.get("ComponentIntegrityType"),
            "enabled": enabled(c.get("ComponentIntegrityEnabled")),
            "verification": get(
                c, "SPDM.IdentityAuthentication.ResponderAuthentication.VerificationStatus"
            )
            or get(c, "SPDM.IdentityAuthentication.VerificationStatus"),
            "target": c.get("TargetComponentURI"),
        }
        for c in walk.all("component_integrity")
    ]
    policy = next(
        (
            s.get("GlobalComponentIntegrity")
            for s in walk.all("hpe_security_service")
            if s.get("GlobalComponentIntegrity")
        ),
        None,
    )
    if components or policy:
        obs.set("bmc.component_integrity", {"components": components, "global_policy": policy})
    obs.miss("bmc.component_integrity", walk.why_missing("component_integrity_collection"))
    update = walk.first("update_service")
    if update is not None:
        obs.set("bmc.update.verify_remote_cert", update.get("VerifyRemoteServerCertificate"))
        obs.miss(
            "bmc.update.verify_remote_cert", "UpdateService has no VerifyRemoteServerCertificate"
        )
    obs.miss("bmc.update.verify_remote_cert", walk.why_missing("update_service"))


def _physical(obs: Observations, walk: Walk, params: dict[str, Json], dell: dict[str, Any]) -> None:
    physical: dict[str, Any] = {}
    if "Security Override Switch" in params:
        physical["override_switch"] = params["Security Override Switch"].get("State")
    if "Access Panel Status" in params:
        physical["access_panel"] = params["Access Panel Status"].get("State")
    for board in walk.all("hpe_dashboard"):
        if board.get("ServerConfigurationLockStatus"):
            physical["config_lock"] = board["ServerConfigurationLockStatus"]
    intrusion = [
        {"chassis": c.get("Id"), "sensor": get(c, "PhysicalSecurity.IntrusionSensor")}
        for c in walk.all("chassis")
        if get(c, "PhysicalSecurity.IntrusionSensor")
    ]
    if intrusion:
        physical["intrusion"] = intrusion
    if "Lockdown.1.SystemLockdown" in dell:
        physical["config_lock"] = dell["Lockdown.1.SystemLockdown"]
    if physical:
        obs.set("bmc.physical", physical)
    obs.miss("bmc.physical", "no chassis intrusion sensor or vendor physical-security state")
    dashboard = walk.first("hpe_dashboard")
    if dashboard is not None or params:
        obs.set(
            "bmc.vendor_dashboard",
            {
                "vendor": "HPE iLO Security Dashboard",
                "overall": get(dashboard, "OverallSecurityStatus"),
                "params": [
                    {
                        "name": name,
                        "state": p.get("State"),
                        "status": p.get("SecurityStatus"),
                        "ignored": bool(p.get("Ignore")),
                    }
                    for name, p in sorted(params.items())
                ],
            },
        )
    elif (
        "manager" in walk.by_role
        and not walk.stopped
        and not any(r in walk.failed for r in ("hpe_security_service", "hpe_dashboard"))
    ):
        # The manager was read in full and links no vendor dashboard: there is none.
        obs.set("bmc.vendor_dashboard", {"vendor": None, "overall": None, "params": []})
    obs.miss("bmc.vendor_dashboard", walk.why_missing("hpe_dashboard"))
