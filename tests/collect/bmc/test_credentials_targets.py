"""Credentials (file, environment, lookup order, secrecy) and --target parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufence.collect.bmc.credentials import load_credentials
from gpufence.collect.bmc.targets import parse_targets, targets_from_inventory
from gpufence.errors import InputError
from gpufence.model.inventory import Inventory
from tests.inventories import base_inventory

CREDS = """\
default: {username: audit, password: default-pw}
"10.0.4.17": {username: root, password_env: PW_A17}
"https://bmc-7.example:8443": {username: url-user, password: url-pw}
"10.0.4.18:8443": {username: hostport, password: hp-pw}
"gpu-b*": {username: group-b, password: group-pw}
n1-bmc: {username: byname, password: name-pw}
"""


def _store(tmp_path: Path, text: str = CREDS, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "creds.yaml"
    path.write_text(text)
    return load_credentials(path, env if env is not None else {"PW_A17": "a17-pw"})


def test_lookup_order(tmp_path: Path) -> None:
    store = _store(tmp_path)

    def user(name: str, host: str, port: int | None = 443, url: str | None = None) -> str:
        found = store.lookup(name=name, host=host, port=port, url=url)
        assert found is not None
        return found.username

    assert user("x", "bmc-7.example", 8443, "https://bmc-7.example:8443") == "url-user"
    assert user("x", "10.0.4.18", 8443, "https://10.0.4.18:8443") == "hostport"
    assert user("x", "10.0.4.17") == "root"
    assert user("n1-bmc", "10.9.9.9") == "byname"
    assert user("gpu-b07", "10.9.9.9") == "group-b"
    assert user("other", "10.9.9.9") == "audit"
    assert (
        store.lookup(name="x", host="10.0.4.17", port=None, url=None).password.get_secret_value()
        == "a17-pw"
    )  # type: ignore[union-attr]


def test_passwords_never_in_repr(tmp_path: Path) -> None:
    store = _store(tmp_path)
    text = repr(store) + str(store.default) + repr(list(store.by_key.values()))
    for secret in ("default-pw", "a17-pw", "url-pw", "group-pw"):
        assert secret not in text
    assert set(store.secrets()) >= {"default-pw", "a17-pw", "group-pw"}


def test_environment_default(tmp_path: Path) -> None:
    store = load_credentials(None, {"GPUFENCE_BMC_USERNAME": "u", "GPUFENCE_BMC_PASSWORD": "p"})
    assert store.default is not None and store.default.username == "u"
    assert load_credentials(None, {}).default is None


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("default: {username: a}\n", "1:10", "give exactly one of password or password_env"),
        ("default: {username: a, password: b, pasword: c}\n", "1:37", "unknown key 'pasword'"),
        ("default: [a, b]\n", "1:10", "expected a mapping with username"),
        ("- a\n", "1:1", "expected a mapping: default"),
        ("default: {username: a, password_env: NOPE}\n", "1:38", "NOPE is not set"),
        ("default: {username: a, password: [x]}\n", "1:34", "password must be a string"),
    ],
)
def test_bad_files_name_file_line_column(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        _store(tmp_path, text, env={})
    diagnostics = caught.value.diagnostics()
    assert f"creds.yaml:{where}" in diagnostics
    assert message in diagnostics


def test_targets_group_by_name_and_host() -> None:
    targets = parse_targets(
        [
            "https://10.0.0.5",
            "ipmi://10.0.0.5:6230",
            "lab=https://127.0.0.1:8443",
            "lab=ipmi://127.0.0.1:9623",
            "10.0.0.9:8443",
        ]
    )
    by_name = {t.name: t for t in targets}
    assert set(by_name) == {"10.0.0.5", "lab", "10.0.0.9-8443"}
    assert by_name["10.0.0.5"].ipmi_port == 6230 and by_name["10.0.0.5"].ipmi_explicit
    assert by_name["lab"].redfish_url == "https://127.0.0.1:8443"
    assert by_name["lab"].ipmi_port == 9623
    assert by_name["10.0.0.9-8443"].ipmi_port == 623  # default probe
    assert parse_targets(["https://[fd00::1]:8443"])[0].name == "fd00--1-8443"


def test_ambiguous_ipmi_target_stands_alone() -> None:
    targets = parse_targets(
        ["https://127.0.0.1:1001", "https://127.0.0.1:1002", "ipmi://127.0.0.1:9"]
    )
    assert [t.name for t in targets] == ["127.0.0.1-1001", "127.0.0.1-1002", "127.0.0.1-9"]
    assert parse_targets(["https://h", "ipmi://h"], ipmi_probe=False)[0].ipmi_port == 623


def test_duplicate_target_is_an_error() -> None:
    with pytest.raises(InputError, match="given twice"):
        parse_targets(["a=https://h1", "a=https://h2"])


def test_inventory_targets() -> None:
    data = base_inventory()
    data["bmcs"].append({"name": "b2", "address": "https://10.1.1.1:8443", "network": "oob"})
    inventory = Inventory.model_validate(data)
    targets = targets_from_inventory(inventory, ipmi_probe=False)
    assert [(t.name, t.redfish_url, t.ipmi_port) for t in targets] == [
        ("n1-bmc", "https://10.0.0.1:443", None),
        ("b2", "https://10.1.1.1:8443", None),
    ]


# --- --targets-file ------------------------------------------------------------------------


def test_targets_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    from gpufence.collect.bmc.targets import read_targets_file

    path = tmp_path / "targets.txt"
    path.write_text(
        "# rack 12\n\nr12-n01=https://10.0.12.1\n  r12-n02=https://10.0.12.2:8443  # spare\n"
        "ipmi://10.0.12.3\n",
        encoding="utf-8",
    )
    values = read_targets_file(path)
    assert values == [
        "r12-n01=https://10.0.12.1",
        "r12-n02=https://10.0.12.2:8443",
        "ipmi://10.0.12.3",
    ]
    targets = parse_targets(values)
    assert [t.name for t in targets][:2] == ["r12-n01", "r12-n02"]


@pytest.mark.parametrize(
    "line",
    [
        "n1=https://admin:Sup3rS3cret@10.0.0.1",
        "n1=https://admin:Sup3rS3cret#x@10.0.0.1",
        "https://admin:Sup3rS3cret@bmc:notaport",
    ],
)
def test_targets_file_error_names_line_never_the_secret(tmp_path: Path, line: str) -> None:
    from gpufence.collect.bmc.targets import read_targets_file

    path = tmp_path / "targets.txt"
    path.write_text(f"# ok\nn0=https://10.0.0.9\n{line}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_targets_file(path)
    text = caught.value.diagnostics()
    assert f"{path}:3" in text
    assert "Sup3rS3cret" not in text and "S3cret" not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_target_option_message_redacts_credentials() -> None:
    with pytest.raises(InputError) as caught:
        parse_targets(["n1=https://admin:Sup3rS3cret@10.0.0.1"])
    assert "Sup3rS3cret" not in caught.value.diagnostics()
    assert "admin:***@10.0.0.1" in caught.value.diagnostics()


def test_targets_file_empty_is_an_error(tmp_path: Path) -> None:
    from gpufence.collect.bmc.targets import read_targets_file

    path = tmp_path / "targets.txt"
    path.write_text("# nothing yet\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no targets"):
        read_targets_file(path)
