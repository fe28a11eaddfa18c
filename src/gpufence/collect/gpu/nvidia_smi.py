"""Parse saved ``nvidia-smi`` output: ``-q -x`` (XML) or ``-q`` (text), plus ``-L`` and
``conf-compute`` lines, into a :class:`~gpufence.model.observed_gpu.GpuReport`.

Files may be plain command output or several outputs concatenated (for example the capture files
of nvidia_gpu_exporter, which hold ``-q``, ``-L`` and more); exactly one ``-q`` dump is read, and
every file is scanned for ``nvidia-smi -L`` lines (MIG profile names) and ``nvidia-smi
conf-compute`` lines (CC mode, environment, ready state, multi-GPU mode).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as etree

import defusedxml.ElementTree
from defusedxml import DefusedXmlException

from gpufence.catalog import GpuModel, load_catalog, normalize_mig_profile_name
from gpufence.collect import CollectorInfo
from gpufence.collect.gpu.profiles import GiSize, derive_profiles
from gpufence.errors import GpufenceError, InputError, SourceLocation
from gpufence.model.evidence import CollectorName
from gpufence.model.observed_gpu import CcSystem, EccErrors, GpuRecord, GpuReport, MigInstance

__all__ = ["parse_nvidia_smi", "parse_nvidia_smi_text"]

COLLECTOR = CollectorInfo(
    CollectorName.NVIDIA_SMI, __name__, "node/<name>", "collect gpu --from FILE"
)
"""This module's collector (found by :func:`gpufence.collect.collectors`)."""

_NA = {"n/a", "[n/a]", "not supported", "[not supported]", "unknown error", ""}


# -- generic text tree ---------------------------------------------------------------------


@dataclass
class _Section:
    """One indented block of ``nvidia-smi -q``: ordered ``key : value`` pairs and sub-blocks."""

    entries: list[tuple[str, str | _Section]] = field(default_factory=list)

    def value(self, *path: str) -> str | None:
        node: _Section | None = self
        for part in path[:-1]:
            node = node.section(part) if node else None
        if node is None:
            return None
        for key, item in node.entries:
            if key == path[-1] and isinstance(item, str):
                return item
        return None

    def section(self, key: str) -> _Section | None:
        return next(iter(self.sections(key)), None)

    def sections(self, key: str) -> Iterator[_Section]:
        return (v for k, v in self.entries if k == key and isinstance(v, _Section))

    def pairs(self) -> Iterator[tuple[str, str]]:
        return ((k, v) for k, v in self.entries if isinstance(v, str))


_KEY_VALUE = re.compile(r"^(?P<key>\S.*?)\s+:(?: (?P<value>.*))?$")


def _text_tree(lines: Sequence[str]) -> _Section:
    root = _Section()
    stack: list[tuple[int, _Section]] = [(-1, root)]
    for raw in lines:
        line = raw.rstrip()
        if not line.strip() or set(line.strip()) == {"="}:
            continue
        indent = len(line) - len(line.lstrip(" "))
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        match = _KEY_VALUE.match(line.strip())
        if match:
            parent.entries.append((match["key"], (match["value"] or "").strip()))
        else:
            child = _Section()
            parent.entries.append((line.strip(), child))
            stack.append((indent, child))
    return root


# -- value helpers ---------------------------------------------------------------------------


def _clean(value: str | None) -> str | None:
    if value is None or value.strip().lower() in _NA:
        return None
    return value.strip()


def _mib(value: str | None) -> int | None:
    value = _clean(value)
    if value is None:
        return None
    match = re.match(r"^(\d+)\s*MiB$", value)
    return int(match[1]) if match else None


def _int(value: str | None) -> int | None:
    value = _clean(value)
    return int(value) if value is not None and value.isdigit() else None


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _mode(value: str | None) -> str | None:
    """'Enabled'/'Disabled' -> enabled/disabled; 'N/A' -> unsupported; absent -> None."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("enabled", "enable", "on"):
        return "enabled"
    if text in ("disabled", "disable", "off"):
        return "disabled"
    if text in _NA:
        return "unsupported"
    return None


def _pci_device(value: str | None) -> str | None:
    """'0x233010DE' / '20B210DE' -> '0x2330' (device ID; vendor 10DE)."""
    value = _clean(value)
    if value is None:
        return None
    digits = value.lower().removeprefix("0x")
    if len(digits) == 8 and digits.endswith("10de"):
        return "0x" + digits[:4].upper()
    return "0x" + digits.upper() if len(digits) == 4 else value


def _sum_counts(pairs: Sequence[tuple[str, str]]) -> tuple[int | None, int | None]:
    """(corrected, uncorrected) totals over an ECC error block, old and new nvidia-smi layouts."""
    corrected: int | None = None
    uncorrected: int | None = None
    for key, raw in pairs:
        number = _int(raw)
        if number is None:
            continue
        name = key.lower().replace("-", " ").replace("_", " ")
        if "uncorrectable" in name or "double bit" in name:
            uncorrected = (uncorrected or 0) + number
        elif "correctable" in name or "single bit" in name:
            corrected = (corrected or 0) + number
    return corrected, uncorrected


# -- -L and conf-compute lines ---------------------------------------------------------------

_L_GPU = re.compile(r"^GPU (?P<index>\d+): .*\(UUID: (?P<uuid>GPU-[^)]+)\)\s*$")
_L_MIG = re.compile(
    r"^\s+MIG (?P<profile>\S+)\s+Device\s+(?P<index>\d+): \(UUID: (?P<uuid>MIG-[^)]+)\)\s*$"
)
_CC_STATUS = re.compile(r"^\s*CC status:\s*(?P<v>ON|OFF|DEVTOOLS)\s*$", re.IGNORECASE)
_CC_ENV = re.compile(r"^\s*CC Environment:\s*(?P<v>\S+)\s*$", re.IGNORECASE)
_CC_READY = re.compile(
    r"^\s*Confidential Compute GPUs Ready state:\s*(?P<v>ready|not[- ]ready)\s*$", re.IGNORECASE
)
# The `-mgm` wording is not in a real capture we have; accept the mode names NVML uses.
_CC_MULTI = re.compile(r"^\s*(?:CC )?Multi-?GPU Mode:\s*(?P<v>.+?)\s*$", re.IGNORECASE)


@dataclass
class _ListedGpu:
    uuid: str
    mig: dict[int, tuple[str, str]] = field(default_factory=dict)
    """MIG device index -> (profile as printed, MIG UUID)."""


def _listing(lines: Sequence[str]) -> dict[int, _ListedGpu]:
    gpus: dict[int, _ListedGpu] = {}
    current: _ListedGpu | None = None
    for line in lines:
        if match := _L_GPU.match(line):
            current = gpus.setdefault(int(match["index"]), _ListedGpu(match["uuid"]))
        elif current is not None and (match := _L_MIG.match(line)):
            current.mig[int(match["index"])] = (match["profile"], match["uuid"])
        elif line.strip():
            current = None if not line.startswith(" ") else current
    return gpus


def _multi_gpu(text: str) -> str | None:
    low = text.lower()
    if "nvle" in low or "nvlink" in low:
        return "nvle"
    if "protected" in low or "ppcie" in low:
        return "protected-pcie"
    if low in ("none", "disabled", "off"):
        return "none"
    return None


def _conf_compute(lines: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        for key, pattern in (
            ("status", _CC_STATUS),
            ("environment", _CC_ENV),
            ("ready", _CC_READY),
            ("multi", _CC_MULTI),
        ):
            if match := pattern.match(line):
                found.setdefault(key, match["v"].strip())
    return found


# -- per-GPU records -------------------------------------------------------------------------


@dataclass
class _RawMig:
    index: int
    gi: int | None
    ci: int | None
    multiprocessors: int | None
    ofa: int | None
    memory_mib: int | None


def _resolve_mig(
    raw: Sequence[_RawMig],
    listed: _ListedGpu | None,
    model: GpuModel | None,
    total_mib: int | None,
) -> tuple[tuple[MigInstance, ...], str | None]:
    """MIG instances with profile names from -L, else derived; plus why names are missing."""
    names: dict[int, tuple[str | None, str | None, str]] = {}
    problem: str | None = None
    if listed and all(m.index in listed.mig for m in raw):
        for m in raw:
            printed, uuid = listed.mig[m.index]
            compute = normalize_mig_profile_name(printed)
            # "1c.3g.71gb": a compute-instance split of GI profile 3g.71gb.
            gi_profile = re.sub(r"^\d+c\.", "", compute)
            names[m.index] = (gi_profile, compute if compute != gi_profile else None, uuid)
        source = "nvidia-smi -L"
    else:
        by_gi: dict[int, list[_RawMig]] = {}
        for m in raw:
            if m.gi is not None:
                by_gi.setdefault(m.gi, []).append(m)
        sizes = [
            GiSize(
                gpu_instance_id=gi,
                memory_mib=members[0].memory_mib or 0,
                multiprocessors=sum(m.multiprocessors or 0 for m in members),
                ofa_count=members[0].ofa,
            )
            for gi, members in sorted(by_gi.items())
        ]
        derived = derive_profiles(model, total_mib, sizes) if sizes else {}
        if isinstance(derived, str):
            problem = derived
            derived = {}
        for m in raw:
            name = derived.get(m.gi) if m.gi is not None else None
            names[m.index] = (name, None, "")
        source = "derived"
    instances = tuple(
        MigInstance(
            gpu_instance_id=m.gi,
            compute_instance_id=m.ci,
            profile=names[m.index][0],
            profile_source=source if names[m.index][0] else "unknown",
            compute_profile=names[m.index][1],
            uuid=names[m.index][2] or None,
            multiprocessor_count=m.multiprocessors,
            memory_mib=m.memory_mib,
        )
        for m in raw
    )
    return instances, problem


def _catalog_model(pci_device_id: str | None, product_name: str | None) -> GpuModel | None:
    catalog = load_catalog()
    for key in (pci_device_id, product_name):
        if key:
            try:
                return catalog.lookup(key)
            except GpufenceError:
                continue
    return None


def _record(
    index: int,
    get: dict[str, str | None],
    ecc: tuple[int | None, int | None, int | None, int | None],
    raw_mig: Sequence[_RawMig],
    listed: _ListedGpu | None,
) -> GpuRecord:
    pci = _pci_device(get["pci_device_id"])
    total = _mib(get["memory_total"])
    model = _catalog_model(pci, _clean(get["product_name"]))
    instances, problem = _resolve_mig(raw_mig, listed, model, total)
    unread: dict[str, str] = {}
    if problem:
        unread["mig_instances.profile"] = problem
    return GpuRecord(
        index=index,
        product_name=_clean(get["product_name"]),
        architecture=_clean(get["architecture"]),
        pci_device_id=pci,
        pci_sub_system_id=_pci_device(get["pci_sub_system_id"]),
        pci_bus_id=_clean(get["pci_bus_id"]),
        uuid=_clean(get["uuid"]),
        serial=_clean(get["serial"]),
        vbios_version=_clean(get["vbios_version"]),
        memory_total_mib=total,
        mig_mode=_mode(get["mig_current"]),
        mig_mode_pending=_mode(get["mig_pending"]),
        mig_instances=instances,
        ecc_mode=_mode(get["ecc_current"]),
        ecc_mode_pending=_mode(get["ecc_pending"]),
        ecc_errors=EccErrors(
            volatile_corrected=ecc[0],
            volatile_uncorrected=ecc[1],
            aggregate_corrected=ecc[2],
            aggregate_uncorrected=ecc[3],
        ),
        cc_protected_memory_mib=_mib(get["cc_protected_total"]),
        dram_encryption=_mode(get["dram_encryption"]),
        compute_mode=_clean(get["compute_mode"]),
        virtualization_mode=_clean(get["virtualization_mode"]),
        unread=unread,
    )


def _gpus_from_text(root: _Section, listing: dict[int, _ListedGpu]) -> list[GpuRecord]:
    records = []
    gpu_sections = [v for k, v in root.entries if k.startswith("GPU ") and isinstance(v, _Section)]
    for index, gpu in enumerate(gpu_sections):
        raw_mig = [
            _RawMig(
                index=_or(_int(dev.value("Index")), n),
                gi=_int(dev.value("GPU Instance ID")),
                ci=_int(dev.value("Compute Instance ID")),
                multiprocessors=_int(
                    dev.value("Device Attributes", "Shared", "Multiprocessor count")
                ),
                ofa=_int(dev.value("Device Attributes", "Shared", "OFA count")),
                memory_mib=_mib(dev.value("Shared FB Memory Usage", "Total")),
            )
            for n, dev in enumerate(gpu.sections("MIG Device"))
        ]
        ecc_block = gpu.section("ECC Errors")
        vol = ecc_block.section("Volatile") if ecc_block else None
        agg = ecc_block.section("Aggregate") if ecc_block else None
        v_c, v_u = _sum_counts(list(vol.pairs())) if vol else (None, None)
        a_c, a_u = _sum_counts(list(agg.pairs())) if agg else (None, None)
        get = {
            "product_name": gpu.value("Product Name"),
            "architecture": gpu.value("Product Architecture"),
            "pci_device_id": gpu.value("PCI", "Device Id"),
            "pci_sub_system_id": gpu.value("PCI", "Sub System Id"),
            "pci_bus_id": gpu.value("PCI", "Bus Id"),
            "uuid": gpu.value("GPU UUID"),
            "serial": gpu.value("Serial Number"),
            "vbios_version": gpu.value("VBIOS Version"),
            "memory_total": gpu.value("FB Memory Usage", "Total"),
            "mig_current": gpu.value("MIG Mode", "Current"),
            "mig_pending": gpu.value("MIG Mode", "Pending"),
            "ecc_current": gpu.value("ECC Mode", "Current"),
            "ecc_pending": gpu.value("ECC Mode", "Pending"),
            "cc_protected_total": gpu.value("Conf Compute Protected Memory Usage", "Total"),
            "dram_encryption": gpu.value("DRAM Encryption Mode", "Current"),
            "compute_mode": gpu.value("Compute Mode"),
            "virtualization_mode": gpu.value("GPU Virtualization Mode", "Virtualization Mode"),
        }
        records.append(_record(index, get, (v_c, v_u, a_c, a_u), raw_mig, listing.get(index)))
    return records


def _x(elem: etree.Element, path: str) -> str | None:
    found = elem.find(path)
    return found.text if found is not None and found.text is not None else None


def _xml_counts(elem: etree.Element | None) -> tuple[int | None, int | None]:
    if elem is None:
        return None, None
    pairs = []
    for child in elem:
        if len(child):  # old layout: <single_bit><total>..</total></single_bit>
            total = child.find("total")
            if total is not None and total.text:
                pairs.append((str(child.tag), total.text))
        elif child.text:
            pairs.append((str(child.tag), child.text))
    return _sum_counts(pairs)


def _gpus_from_xml(root: etree.Element, listing: dict[int, _ListedGpu]) -> list[GpuRecord]:
    records = []
    for index, gpu in enumerate(root.findall("gpu")):
        raw_mig = [
            _RawMig(
                index=_or(_int(_x(dev, "index")), n),
                gi=_int(_x(dev, "gpu_instance_id")),
                ci=_int(_x(dev, "compute_instance_id")),
                multiprocessors=_int(_x(dev, "device_attributes/shared/multiprocessor_count")),
                ofa=_int(_x(dev, "device_attributes/shared/ofa_count")),
                memory_mib=_mib(_x(dev, "fb_memory_usage/total")),
            )
            for n, dev in enumerate(gpu.findall("mig_devices/mig_device"))
        ]
        protected = _x(gpu, "cc_protected_memory_usage/total") or _x(
            gpu, "conf_compute_protected_memory_usage/total"
        )
        dram = gpu.find("dram_encryption_mode")
        dram_current = next(
            (c.text for c in dram if "current" in str(c.tag)) if dram is not None else iter(()),
            None,
        )
        v_c, v_u = _xml_counts(gpu.find("ecc_errors/volatile"))
        a_c, a_u = _xml_counts(gpu.find("ecc_errors/aggregate"))
        get = {
            "product_name": _x(gpu, "product_name"),
            "architecture": _x(gpu, "product_architecture"),
            "pci_device_id": _x(gpu, "pci/pci_device_id"),
            "pci_sub_system_id": _x(gpu, "pci/pci_sub_system_id"),
            "pci_bus_id": _x(gpu, "pci/pci_bus_id") or gpu.get("id"),
            "uuid": _x(gpu, "uuid"),
            "serial": _x(gpu, "serial"),
            "vbios_version": _x(gpu, "vbios_version"),
            "memory_total": _x(gpu, "fb_memory_usage/total"),
            "mig_current": _x(gpu, "mig_mode/current_mig"),
            "mig_pending": _x(gpu, "mig_mode/pending_mig"),
            "ecc_current": _x(gpu, "ecc_mode/current_ecc"),
            "ecc_pending": _x(gpu, "ecc_mode/pending_ecc"),
            "cc_protected_total": protected,
            "dram_encryption": dram_current,
            "compute_mode": _x(gpu, "compute_mode"),
            "virtualization_mode": _x(gpu, "gpu_virtualization_mode/virtualization_mode"),
        }
        records.append(_record(index, get, (v_c, v_u, a_c, a_u), raw_mig, listing.get(index)))
    return records


# -- the whole report ------------------------------------------------------------------------


def _cc_system(found: dict[str, str], gpus: Sequence[GpuRecord]) -> CcSystem:
    unread: dict[str, str] = {}
    mode: str | None = None
    how: str | None = None
    if "status" in found:
        mode = found["status"].lower()
        how = "nvidia-smi conf-compute -f"
    elif gpus and all(g.cc_protected_memory_mib == 0 for g in gpus):
        # CC mode carves protected memory out of HBM at boot: 0 MiB on every GPU means CC is
        # not on. A non-zero size cannot tell 'on' from 'devtools', so that stays unobserved.
        mode = "off"
        how = "inferred: CC protected memory is 0 MiB on every GPU (nvidia-smi -q)"
    else:
        unread["mode"] = (
            "nvidia-smi -q does not print the CC mode; add `nvidia-smi conf-compute -f` output"
        )
    multi: str | None = None
    if "multi" in found:
        multi = _multi_gpu(found["multi"])
        if multi is None:
            unread["multi_gpu"] = f"unrecognised multi-GPU mode {found['multi']!r}"
    elif mode == "off":
        multi = "none"
    else:
        unread["multi_gpu"] = "add `nvidia-smi conf-compute -mgm` output"
    ready = found.get("ready")
    return CcSystem(
        mode=mode,
        multi_gpu=multi,
        environment=found.get("environment"),
        gpus_ready=None if ready is None else ready.lower() == "ready",
        how=how,
        unread=unread,
    )


_Q_START = re.compile(r"^=+NVSMI LOG=+\s*$")


def _q_section(lines: list[str]) -> list[str] | None:
    """The first ``nvidia-smi -q`` dump in ``lines`` (captures hold several command outputs)."""
    start = next((i for i, line in enumerate(lines) if _Q_START.match(line)), None)
    if start is None:
        return None
    end = len(lines)
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("####") or _Q_START.match(lines[i]):
            end = i
            break
    return lines[start + 1 : end]


def parse_nvidia_smi_text(text: str, source: str, extra: Sequence[str] = ()) -> GpuReport | None:
    """Parse one file's text; None when it holds no ``-q`` dump (it may hold -L/conf-compute)."""
    all_lines = [line for chunk in (text, *extra) for line in chunk.splitlines()]
    listing = _listing(all_lines)
    cc_found = _conf_compute(all_lines)
    stripped = text.lstrip()
    if stripped.startswith(("<?xml", "<nvidia_smi_log", "<!DOCTYPE")):
        try:
            # defusedxml: no entity declarations, no external references (XXE, expansion bombs).
            root = defusedxml.ElementTree.fromstring(text)
        except DefusedXmlException as exc:
            raise InputError(
                f"invalid nvidia-smi XML: {exc} (nvidia-smi never declares entities)",
                location=SourceLocation(source, 1),
            ) from exc
        except etree.ParseError as exc:
            line, column = exc.position
            raise InputError(
                f"invalid nvidia-smi XML: {exc}", location=SourceLocation(source, line, column + 1)
            ) from exc
        if root.tag != "nvidia_smi_log":
            raise InputError(
                f"not `nvidia-smi -q -x` output: root element is <{root.tag}>",
                location=SourceLocation(source),
            )
        gpus = _gpus_from_xml(root, listing)
        driver, cuda = _x(root, "driver_version"), _x(root, "cuda_version")
    else:
        section = _q_section(text.splitlines())
        if section is None:
            return None
        tree = _text_tree(section)
        gpus = _gpus_from_text(tree, listing)
        driver, cuda = tree.value("Driver Version"), tree.value("CUDA Version")
    if not gpus:
        raise InputError("the nvidia-smi output lists no GPU", location=SourceLocation(source))
    return GpuReport(
        collector="nvidia-smi",
        source=source,
        driver_version=_clean(driver),
        cuda_version=_clean(cuda),
        gpus=tuple(gpus),
        cc=_cc_system(cc_found, gpus),
    ).with_cc_on_gpus()


def parse_nvidia_smi(paths: Sequence[Path]) -> GpuReport:
    """Parse saved nvidia-smi output files (one ``-q``/``-q -x`` dump, any -L/conf-compute)."""
    texts: list[tuple[Path, str]] = []
    for path in paths:
        try:
            texts.append((path, path.read_text(encoding="utf-8", errors="replace")))
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    report: GpuReport | None = None
    for path, text in texts:
        others = [t for p, t in texts if p != path]
        parsed = parse_nvidia_smi_text(text, str(path), others)
        if parsed is None:
            continue
        if report is not None:
            raise InputError(
                f"{path}: a second `nvidia-smi -q` dump; give one per node",
                hint="run `gpufence collect gpu` once per node",
            )
        report = parsed
    if report is None:
        names = ", ".join(str(p) for p in paths)
        raise InputError(
            f"no `nvidia-smi -q` or `nvidia-smi -q -x` output in {names}",
            hint="save `nvidia-smi -q -x > node.xml` (add `nvidia-smi -L` and "
            "`nvidia-smi conf-compute -f -grs -mgm` output for MIG names and CC state)",
        )
    return report
