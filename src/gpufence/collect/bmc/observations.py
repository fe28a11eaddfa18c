"""The ``bmc.*`` facts a BMC scan can report, and the builder that collects them (pure).

Every fact the controls read is listed in :data:`FACTS`. A fact is *observed* when some source
gave a value, otherwise it is *not observed* with the most specific reason available.
"""

from __future__ import annotations

from typing import Any

from pydantic import JsonValue

from gpufence.collect.bmc.redfish import Json, Walk

__all__ = ["FACTS", "Observations", "dell_attributes", "enabled", "get", "hpe_params"]

FACTS: tuple[str, ...] = (
    "bmc.vendor",
    "bmc.model",
    "bmc.firmware_version",
    "bmc.redfish_version",
    "bmc.root_disclosure",
    "bmc.redfish_scheme",
    "bmc.http_enabled",
    "bmc.tls.tls1_0",
    "bmc.tls.tls1_1",
    "bmc.tls.negotiated",
    "bmc.tls.configured_legacy",
    "bmc.tls.weak_ciphers",
    "bmc.tls.cert",
    "bmc.tls.cert_trusted",
    "bmc.tls.reported_cert_problems",
    "bmc.redfish.anonymous_readable",
    "bmc.redfish.anonymous_write",
    "bmc.default_credentials",
    "bmc.account.lockout_threshold",
    "bmc.account.lockout_duration_s",
    "bmc.account.lockout_reset_after_s",
    "bmc.account.failure_delay",
    "bmc.account.ip_blocking",
    "bmc.account.min_password_length",
    "bmc.account.password_complexity",
    "bmc.account.auth_failure_logging_threshold",
    "bmc.account.directory",
    "bmc.account.mfa",
    "bmc.accounts",
    "bmc.session.timeout_s",
    "bmc.session.vendor_idle_timeout",
    "bmc.ipmi_over_lan",
    "bmc.ipmi.caps",
    "bmc.ipmi.cipher0_users",
    "bmc.protocols",
    "bmc.snmp",
    "bmc.console",
    "bmc.host_interface.credential_free",
    "bmc.shared_nic",
    "bmc.nic_vlan",
    "bmc.remote_logging",
    "bmc.ntp",
    "bmc.firmware_inventory",
    "bmc.systems",
    "bmc.secure_boot",
    "bmc.component_integrity",
    "bmc.update.verify_remote_cert",
    "bmc.physical",
    "bmc.vendor_dashboard",
)


class Observations:
    """Facts with values, and reasons for the ones without (first reason wins)."""

    def __init__(self) -> None:
        self.observed: dict[str, JsonValue] = {}
        self.missing: dict[str, str] = {}

    def set(self, fact: str, value: Any) -> None:
        """Record an observed fact."""
        if value is None:
            return
        self.observed[fact] = value
        self.missing.pop(fact, None)

    def set_default(self, fact: str, value: Any) -> None:
        """Set only when no other source gave a value (lower-precedence sources)."""
        if fact not in self.observed:
            self.set(fact, value)

    def miss(self, fact: str, reason: str) -> None:
        """Record that a fact could not be observed, and why."""
        if fact not in self.observed:
            self.missing.setdefault(fact, reason)

    def finish(self, reason: str) -> None:
        """Every fact of FACTS that nothing observed gets ``reason`` unless it has one."""
        for fact in FACTS:
            self.miss(fact, reason)


def get(doc: Json | None, dotted: str) -> Any:
    """The value at a dotted path in a Redfish document, None when absent."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def enabled(value: Any) -> bool | None:
    """Redfish/OEM spellings of on/off -> bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("enabled", "enable", "on", "true", "yes"):
            return True
        if text in ("disabled", "disable", "off", "false", "no"):
            return False
    return None


def hpe_params(walk: Walk) -> dict[str, Json]:
    """HPE iLO Security Dashboard parameters by name."""
    return {str(p.get("Name")): p for p in walk.all("hpe_security_param") if p.get("Name")}


class AttributeMap(dict[str, Any]):
    """Vendor attributes by name, looked up without regard to case.

    iDRAC spells its attribute keys as its registry does ("SysLog.1.SysLogEnable"), guides and
    firmware generations differ in case; a case-sensitive lookup missed remote syslog.
    """

    def __init__(self, items: dict[str, Any] | None = None) -> None:
        super().__init__()
        for key, value in (items or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key.casefold(), value)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.casefold())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.casefold())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.casefold(), default)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        for key, value in dict(other, **kwargs).items():
            self[key] = value


def dell_attributes(walk: Walk) -> AttributeMap:
    """iDRAC attributes from every DellAttributes document, keys case-insensitive."""
    merged = AttributeMap()
    for doc in walk.all("dell_attributes"):
        attrs = doc.get("Attributes")
        if isinstance(attrs, dict):
            merged.update(attrs)
    return merged
