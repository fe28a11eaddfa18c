"""The ``bmc.*`` facts a BMC scan observes, typed: one definition for the scanner and the controls.

`gpufence scan bmc` writes these facts into evidence documents about ``bmc/<name>`` subjects
(:mod:`gpufence.collect.bmc`); the out-of-band and firmware controls read them back. Both go
through :meth:`ObservedBmc.read`, so the writer and the reader agree on every fact's name and
shape. A value of the wrong shape (a string where a count belongs, a list of non-objects) is not
guessed at: :meth:`ObservedBmc.read` leaves that fact out and says why, and the control that needed
it reports NOT_EVALUATED with that reason instead of judging on a misread value.

Scalars are strict (``"30"`` is not a number of seconds, ``true`` is not a count); sequences are
tuples; ``None`` means "not observed". Nested objects ignore keys they do not know, so a newer
scanner that adds detail does not make an older reader reject the whole fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

__all__ = [
    "BMC_FACTS",
    "Account",
    "BmcReading",
    "ComponentIntegrity",
    "Console",
    "ConsoleService",
    "CredentialFreePath",
    "DashboardParam",
    "FailureDelay",
    "FirmwareItem",
    "IntegrityComponent",
    "Intrusion",
    "IpBlocking",
    "IpmiCaps",
    "NicPort",
    "Ntp",
    "ObservedBmc",
    "Physical",
    "ProtocolState",
    "RemoteLogging",
    "SecureBootState",
    "Snmp",
    "System",
    "TlsCert",
    "Tpm",
    "VendorDashboard",
    "VendorIdleTimeout",
]

Text = StrictStr | None
Flag = StrictBool | None
Count = StrictInt | None
Texts = tuple[StrictStr, ...]
Setting = StrictInt | StrictStr | None
"""A vendor setting only shown in messages (iDRAC attributes may be numbers or strings)."""


class _Part(BaseModel):
    """A nested object of a fact: immutable, unknown keys ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class TlsCert(_Part):
    """``bmc.tls.cert``: the certificate the BMC presented in the TLS handshake."""

    subject: Text = None
    issuer: Text = None
    not_before: Text = None
    not_after: Text = None
    self_signed: Flag = None
    expired: Flag = None
    not_yet_valid: Flag = None
    vendor_default: Text = None
    key_type: Text = None
    key_bits: Count = None
    signature_hash: Text = None
    x509_version: Count = None
    problems: Texts = ()
    """What is wrong with it (factory default, self-signed, expired, weak key, SHA-1)."""


class FailureDelay(_Part):
    """``bmc.account.failure_delay``: a delay after failed logins (iLO)."""

    after_failures: Count = None
    delay_s: Count = None


class IpBlocking(_Part):
    """``bmc.account.ip_blocking``: blocking of source addresses after failed logins (iDRAC)."""

    enabled: Flag = None
    fail_count: Setting = None
    fail_window_s: Setting = None
    penalty_s: Setting = None


class Account(_Part):
    """One entry of ``bmc.accounts``."""

    username: StrictStr
    role: Text = None
    enabled: Flag = None
    locked: Flag = None
    password_change_required: Flag = None
    account_types: Texts | None = None


class VendorIdleTimeout(_Part):
    """``bmc.session.vendor_idle_timeout``: the vendor's own idle timeout of its sessions."""

    seconds: Count = None
    never: StrictBool = False
    """The vendor setting says sessions never time out (iLO: 0 minutes)."""
    source: Text = None


class IpmiCaps(_Part):
    """``bmc.ipmi.caps``: the decoded Get Channel Authentication Capabilities reply."""

    channel: Count = None
    auth_none: Flag = None
    auth_md2: Flag = None
    auth_md5: Flag = None
    auth_straight_password: Flag = None
    auth_oem: Flag = None
    v2_extended: Flag = None
    kg_set: Flag = None
    per_message_auth_disabled: Flag = None
    user_level_auth_disabled: Flag = None
    non_null_users: Flag = None
    null_users: Flag = None
    anonymous_login: Flag = None
    ipmi_v1_5: Flag = None
    ipmi_v2_0: Flag = None
    cleartext_auth: Texts = ()
    """IPMI 1.5 authentication types that send the password in clear (NONE, straight)."""
    asf_pong: Flag = None


class ProtocolState(_Part):
    """One entry of ``bmc.protocols`` (Telnet, SSH, IPMI, SSDP, ...)."""

    enabled: Flag = None
    port: Setting = None


class Snmp(_Part):
    """``bmc.snmp``: the SNMP agent; a version not reported stays None."""

    enabled: Flag = None
    v1: Flag = None
    v2c: Flag = None
    v3: Flag = None
    default_community: Flag = None


class ConsoleService(_Part):
    """One remote console of ``bmc.console`` (graphical, serial, command shell)."""

    enabled: Flag = None
    connect_types: Texts | None = None


class Console(_Part):
    """``bmc.console``: the remote consoles and whether their media are encrypted."""

    graphical: ConsoleService | None = Field(default=None, alias="GraphicalConsole")
    serial: ConsoleService | None = Field(default=None, alias="SerialConsole")
    shell: ConsoleService | None = Field(default=None, alias="CommandShell")
    virtual_media_encrypted: Flag = None
    kvm_encrypted: Flag = None

    def services(self) -> dict[str, ConsoleService]:
        """The reported consoles by their Redfish names (``SerialConsole``), in that order."""
        named = (
            ("GraphicalConsole", self.graphical),
            ("SerialConsole", self.serial),
            ("CommandShell", self.shell),
        )
        return {name: service for name, service in named if service is not None}


class CredentialFreePath(_Part):
    """``bmc.host_interface.credential_free``: ways from the host to the BMC without a login."""

    value: StrictBool
    paths: Texts = ()


class NicPort(_Part):
    """One management interface of ``bmc.nic_vlan``."""

    id: Text = None
    vlan_enabled: Flag = None
    vlan_id: Count = None
    type: Text = None


class RemoteLogging(_Part):
    """``bmc.remote_logging``: event subscriptions and remote syslog."""

    value: StrictBool
    sinks: Texts = ()


class Ntp(_Part):
    """``bmc.ntp``: the BMC's time source."""

    value: StrictBool
    servers: Texts = ()
    unlisted: StrictBool = False
    """NTP is enabled but the BMC lists no servers."""


class FirmwareItem(_Part):
    """One entry of ``bmc.firmware_inventory``."""

    id: Text = None
    name: Text = None
    version: Text = None
    manufacturer: Text = None
    updateable: Flag = None


class SecureBootState(_Part):
    """The Secure Boot state of one system (``None`` enabled: unknown)."""

    enabled: Flag = None
    enable_setting: Flag = None
    current_boot: Text = None
    mode: Text = None


class Tpm(_Part):
    """One trusted module of a system."""

    type: Text = None
    state: Text = None
    firmware: Text = None


class System(_Part):
    """One entry of ``bmc.systems``: a computer system the BMC manages."""

    id: Text = None
    host_name: Text = None
    model: Text = None
    manufacturer: Text = None
    bios_version: Text = None
    secure_boot: SecureBootState | None = None
    tpm: tuple[Tpm, ...] | None = None
    """None: the BMC does not say which TPMs there are (not: there are none)."""


class IntegrityComponent(_Part):
    """One component of ``bmc.component_integrity``."""

    id: Text = None
    type: Text = None
    enabled: Flag = None
    verification: Text = None
    target: Text = None


class ComponentIntegrity(_Part):
    """``bmc.component_integrity``: SPDM component checks and the vendor's global policy."""

    components: tuple[IntegrityComponent, ...] = ()
    global_policy: Text = None


class Intrusion(_Part):
    """One chassis intrusion sensor of ``bmc.physical``."""

    chassis: Text = None
    sensor: Text = None


class Physical(_Part):
    """``bmc.physical``: override switch, access panel, configuration lock, intrusion sensors."""

    override_switch: Text = None
    access_panel: Text = None
    config_lock: JsonValue = None
    """As the vendor reports it (a word, or an object); shown, never judged."""
    intrusion: tuple[Intrusion, ...] = ()


class DashboardParam(_Part):
    """One parameter of a vendor security dashboard."""

    name: StrictStr
    state: Text = None
    status: Text = None
    ignored: StrictBool = False


class VendorDashboard(_Part):
    """``bmc.vendor_dashboard``; ``vendor`` None: the BMC has no such dashboard."""

    vendor: Text = None
    overall: Text = None
    params: tuple[DashboardParam, ...] = ()


class ObservedBmc(BaseModel):
    """Every ``bmc.*`` fact of a BMC scan, typed; None: not observed (or not asked for)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    vendor: Annotated[Text, Field(alias="bmc.vendor")] = None
    model: Annotated[Text, Field(alias="bmc.model")] = None
    firmware_version: Annotated[Text, Field(alias="bmc.firmware_version")] = None
    redfish_version: Annotated[Text, Field(alias="bmc.redfish_version")] = None
    root_disclosure: Annotated[dict[str, JsonValue] | None, Field(alias="bmc.root_disclosure")] = (
        None
    )
    redfish_scheme: Annotated[Text, Field(alias="bmc.redfish_scheme")] = None
    http_enabled: Annotated[Flag, Field(alias="bmc.http_enabled")] = None
    tls1_0: Annotated[Flag, Field(alias="bmc.tls.tls1_0")] = None
    tls1_1: Annotated[Flag, Field(alias="bmc.tls.tls1_1")] = None
    tls_negotiated: Annotated[Text, Field(alias="bmc.tls.negotiated")] = None
    tls_configured_legacy: Annotated[Texts | None, Field(alias="bmc.tls.configured_legacy")] = None
    tls_weak_ciphers: Annotated[Flag, Field(alias="bmc.tls.weak_ciphers")] = None
    tls_cert: Annotated[TlsCert | None, Field(alias="bmc.tls.cert")] = None
    tls_cert_trusted: Annotated[Flag, Field(alias="bmc.tls.cert_trusted")] = None
    tls_reported_cert_problems: Annotated[
        Texts | None, Field(alias="bmc.tls.reported_cert_problems")
    ] = None
    anonymous_readable: Annotated[Texts | None, Field(alias="bmc.redfish.anonymous_readable")] = (
        None
    )
    anonymous_write: Annotated[Flag, Field(alias="bmc.redfish.anonymous_write")] = None
    default_credentials: Annotated[Flag, Field(alias="bmc.default_credentials")] = None
    lockout_threshold: Annotated[Count, Field(alias="bmc.account.lockout_threshold")] = None
    lockout_duration_s: Annotated[Count, Field(alias="bmc.account.lockout_duration_s")] = None
    lockout_reset_after_s: Annotated[Count, Field(alias="bmc.account.lockout_reset_after_s")] = None
    failure_delay: Annotated[FailureDelay | None, Field(alias="bmc.account.failure_delay")] = None
    ip_blocking: Annotated[IpBlocking | None, Field(alias="bmc.account.ip_blocking")] = None
    min_password_length: Annotated[Count, Field(alias="bmc.account.min_password_length")] = None
    password_complexity: Annotated[Flag, Field(alias="bmc.account.password_complexity")] = None
    auth_failure_logging_threshold: Annotated[
        Count, Field(alias="bmc.account.auth_failure_logging_threshold")
    ] = None
    directory: Annotated[Texts | None, Field(alias="bmc.account.directory")] = None
    mfa: Annotated[Texts | None, Field(alias="bmc.account.mfa")] = None
    accounts: Annotated[tuple[Account, ...] | None, Field(alias="bmc.accounts")] = None
    session_timeout_s: Annotated[Count, Field(alias="bmc.session.timeout_s")] = None
    vendor_idle_timeout: Annotated[
        VendorIdleTimeout | None, Field(alias="bmc.session.vendor_idle_timeout")
    ] = None
    ipmi_over_lan: Annotated[Flag, Field(alias="bmc.ipmi_over_lan")] = None
    ipmi_caps: Annotated[IpmiCaps | None, Field(alias="bmc.ipmi.caps")] = None
    ipmi_cipher0_users: Annotated[
        tuple[StrictStr, ...] | None, Field(alias="bmc.ipmi.cipher0_users")
    ] = None
    protocols: Annotated[dict[str, ProtocolState] | None, Field(alias="bmc.protocols")] = None
    snmp: Annotated[Snmp | None, Field(alias="bmc.snmp")] = None
    console: Annotated[Console | None, Field(alias="bmc.console")] = None
    host_credential_free: Annotated[
        CredentialFreePath | None, Field(alias="bmc.host_interface.credential_free")
    ] = None
    shared_nic: Annotated[Flag, Field(alias="bmc.shared_nic")] = None
    nic_vlan: Annotated[tuple[NicPort, ...] | None, Field(alias="bmc.nic_vlan")] = None
    remote_logging: Annotated[RemoteLogging | None, Field(alias="bmc.remote_logging")] = None
    ntp: Annotated[Ntp | None, Field(alias="bmc.ntp")] = None
    firmware_inventory: Annotated[
        tuple[FirmwareItem, ...] | None, Field(alias="bmc.firmware_inventory")
    ] = None
    systems: Annotated[tuple[System, ...] | None, Field(alias="bmc.systems")] = None
    secure_boot: Annotated[Flag, Field(alias="bmc.secure_boot")] = None
    component_integrity: Annotated[
        ComponentIntegrity | None, Field(alias="bmc.component_integrity")
    ] = None
    verify_update_server: Annotated[Flag, Field(alias="bmc.update.verify_remote_cert")] = None
    physical: Annotated[Physical | None, Field(alias="bmc.physical")] = None
    vendor_dashboard: Annotated[VendorDashboard | None, Field(alias="bmc.vendor_dashboard")] = None

    @classmethod
    def read(cls, observed: Mapping[str, object]) -> BmcReading:
        """The one way in: the ``bmc.*`` facts of ``observed`` (an evidence document's
        ``observed``, or the newest observation of each fact), typed.

        Keys that are not BMC scan facts are ignored. A fact whose value has the wrong shape is
        left out and named in :attr:`BmcReading.unreadable` with where and why; it never raises.
        """
        values = {key: value for key, value in observed.items() if key in _FIELD_OF}
        unreadable: dict[str, str] = {}
        while True:
            try:
                return BmcReading(cls.model_validate(values), unreadable)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    fact = str(error["loc"][0]) if error["loc"] else ""
                    if fact in values and fact not in unreadable:
                        inner = ".".join(str(part) for part in error["loc"][1:])
                        unreadable[fact] = f"{inner}: {error['msg']}" if inner else error["msg"]
                if not unreadable.keys() & values.keys():
                    raise  # an error not tied to one fact: a bug here, not bad evidence
                values = {k: v for k, v in values.items() if k not in unreadable}


_FIELD_OF: dict[str, str] = {
    str(info.alias): name for name, info in ObservedBmc.model_fields.items()
}

BMC_FACTS: tuple[str, ...] = tuple(_FIELD_OF)
"""Every ``bmc.*`` fact a BMC scan reports, in the order the scanner lists them."""


@dataclass(frozen=True)
class BmcReading:
    """What :meth:`ObservedBmc.read` made of a set of observed facts."""

    facts: ObservedBmc
    unreadable: Mapping[str, str]
    """Fact -> why its value was not usable (``accounts.0.username: Input should be ...``)."""
