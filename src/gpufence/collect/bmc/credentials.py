"""BMC credentials: from a YAML file or environment variables; never printed, logged or written.

File format (``--credentials FILE``)::

    default: {username: audit, password_env: BMC_PASSWORD}   # or password: "..."
    "10.0.4.17": {username: root, password_env: BMC_A17}     # by host
    "https://bmc-7.example:8443": {username: ro, password: "..."}   # by URL
    "gpu-b*": {username: ro-b, password_env: BMC_POOL_B}      # a group: glob on BMC name or host

Lookup order for a BMC: exact URL, ``host:port``, host, BMC name, the first glob that matches the
name or host (file order), then ``default``. Without a file, ``GPUFENCE_BMC_USERNAME`` and
``GPUFENCE_BMC_PASSWORD`` give the default. Passwords are kept as ``SecretStr`` so a repr, a log
line or a model dump shows ``**********``.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from gpufence._yaml import LocatedDocument, Pointer, load_yaml
from gpufence.errors import InputError

__all__ = [
    "ENV_PASSWORD",
    "ENV_USERNAME",
    "VENDOR_DEFAULTS",
    "Credential",
    "CredentialStore",
    "load_credentials",
]

ENV_USERNAME = "GPUFENCE_BMC_USERNAME"
ENV_PASSWORD = "GPUFENCE_BMC_PASSWORD"  # noqa: S105 - the variable's name, not a password

_ENTRY_KEYS = frozenset({"username", "username_env", "password", "password_env"})

VENDOR_DEFAULTS: tuple[tuple[str, str, str], ...] = (
    # (vendor, username, password): public factory defaults (NSA/CISA BMC guidance, vendor
    # guides, CVE-2022-40242). Tried only with --intrusive, within the lockout budget.
    ("Dell", "root", "calvin"),
    ("Supermicro", "ADMIN", "ADMIN"),
    ("Lenovo", "USERID", "PASSW0RD"),
    ("OpenBMC", "root", "0penBmc"),
    ("AMI", "admin", "admin"),
    ("Generic", "admin", "password"),
)


@dataclass(frozen=True)
class Credential:
    """A username and its password; the password never appears in str/repr."""

    username: str
    password: SecretStr
    origin: str
    """Where it came from (file:line:column or the variable name), for messages."""

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, password=**********, origin={self.origin})"

    __str__ = __repr__


@dataclass(frozen=True)
class CredentialStore:
    """BMC credentials by BMC name, host or URL, with a default (never printed)."""

    default: Credential | None
    by_key: Mapping[str, Credential]
    """Exact keys: URL, host:port, host or BMC name."""
    groups: tuple[tuple[str, Credential], ...] = ()
    """(glob, credential) in file order."""

    def lookup(
        self, *, name: str, host: str, port: int | None, url: str | None
    ) -> Credential | None:
        """The credential for a BMC: by URL, host:port, host or name, then by glob group, else the
        default.
        """
        keys = [url.rstrip("/") if url else None, f"{host}:{port}" if port else None, host, name]
        for key in keys:
            if key and key in self.by_key:
                return self.by_key[key]
        for pattern, credential in self.groups:
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(host, pattern):
                return credential
        return self.default

    def secrets(self) -> tuple[str, ...]:
        """Every password held (for scrubbing text before it leaves the process)."""
        found = [c.password.get_secret_value() for c in self.by_key.values()]
        found += [c.password.get_secret_value() for _, c in self.groups]
        if self.default:
            found.append(self.default.password.get_secret_value())
        return tuple(s for s in dict.fromkeys(found) if s)


def _env_value(
    doc: LocatedDocument, pointer: Pointer, variable: object, environ: Mapping[str, str]
) -> str:
    if not isinstance(variable, str) or not variable:
        raise InputError(
            "expected the name of an environment variable", location=doc.locate(pointer)
        )
    value = environ.get(variable)
    if value is None:
        raise InputError(
            f"environment variable {variable} is not set", location=doc.locate(pointer)
        )
    return value


def _entry(doc: LocatedDocument, key: str, raw: object, environ: Mapping[str, str]) -> Credential:
    pointer: Pointer = (key,)
    if not isinstance(raw, dict):
        raise InputError(
            "expected a mapping with username and password (or password_env)",
            location=doc.locate(pointer),
        )
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise InputError(
            f"unknown key {unknown[0]!r} (expected username, username_env, password, password_env)",
            location=doc.locate((*pointer, unknown[0]), key=True),
        )
    values: dict[str, str] = {}
    for field in ("username", "password"):
        direct, via_env = raw.get(field), raw.get(f"{field}_env")
        if (direct is None) == (via_env is None):
            raise InputError(
                f"give exactly one of {field} or {field}_env", location=doc.locate(pointer)
            )
        if via_env is not None:
            values[field] = _env_value(doc, (*pointer, f"{field}_env"), via_env, environ)
        elif isinstance(direct, str | int) and not isinstance(direct, bool):
            values[field] = str(direct)
        else:
            raise InputError(f"{field} must be a string", location=doc.locate((*pointer, field)))
    where = doc.locate(pointer)
    return Credential(values["username"], SecretStr(values["password"]), str(where))


def load_credentials(
    path: Path | None, environ: Mapping[str, str] | None = None
) -> CredentialStore:
    """Read the credentials file (or the environment when ``path`` is None)."""
    env = os.environ if environ is None else environ
    if path is None:
        user, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
        if user and password:
            return CredentialStore(Credential(user, SecretStr(password), f"${ENV_PASSWORD}"), {})
        return CredentialStore(None, {})
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError(
            "expected a mapping: default: {username: ..., password: ...} and per-BMC entries",
            location=doc.locate(()),
        )
    default: Credential | None = None
    by_key: dict[str, Credential] = {}
    groups: list[tuple[str, Credential]] = []
    for key, raw in doc.data.items():
        credential = _entry(doc, str(key), raw, env)
        if key == "default":
            default = credential
        elif any(ch in str(key) for ch in "*?["):
            groups.append((str(key), credential))
        else:
            by_key[str(key).rstrip("/")] = credential
    return CredentialStore(default, by_key, tuple(groups))
