"""Load scenario files (declarative raw Windows state) into a FleetState.

A scenario lists hosts as layers of raw state: the templates named under
``base:`` (lab/templates/<name>.yml, which may have a base of their own),
then the host's own keys on top. Layers deep-merge: mappings merge key by key
(keys match case-insensitively, as Windows names do), lists and scalars
replace, and ``null`` deletes what an earlier layer set. The format is in
lab/README.md and lab/scenario.schema.json.

The same format is the state dump: ``fleet_to_plain`` writes every field of a
running fleet as a scenario with no templates, and ``fleet_from_plain`` loads
it back through the same validation.
"""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from lab import firewall, metabase
from lab import network as lab_network
from lab.scenario_schema import ScenarioError, error_lines, raise_if_any, read_yaml, validate, validate_document
from lab.state import WINRM2_DEFAULTS, ActiveDirectory, FleetState, Filesystem, HostState, Registry, Service, normalize_key

__all__ = [
    "ScenarioError", "Templates", "deep_merge", "dump_state", "fleet_from_plain", "fleet_to_plain",
    "load_scenario", "load_scenario_data", "load_state", "server_dn",
]

LAB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = LAB_DIR / "templates"
DEMO_SCENARIO = LAB_DIR / "scenarios" / "demo.yml"

DEFAULT_PORTS = {"http": 5985, "https": 5986, "smtp": 25}

# Stand-in for MBSchema.xml. The lab never reads the schema file; real IIS
# ships a large one. Only its presence next to MetaBase.xml (and in each
# History pair) is modelled.
MBSCHEMA_TEXT = (
    '<?xml version ="1.0"?>\r\n'
    '<MetabaseConfig xmlns="urn:microsoft-catalog:XML_Metabase_V64_0">\r\n</MetabaseConfig>\r\n'
)

# A service's start mode as the SCM stores it in Services\<name>\Start.
_START_VALUE = {"auto": 2, "manual": 3, "disabled": 4}

_RELATIVE_TIME = re.compile(r"^now(?:-(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)?$")

# --------------------------------------------------------------------------- layers

def deep_merge(base: dict, overlay: dict) -> dict:
    """overlay on base: mappings merge (keys case-insensitive), lists/scalars replace, None deletes."""
    out = dict(base)
    index = {str(k).lower(): k for k in out}
    for key, value in overlay.items():
        existing = index.get(str(key).lower(), key)
        if value is None:
            out.pop(existing, None)
        elif isinstance(value, dict):
            previous = out.get(existing)
            out[existing] = deep_merge(previous if isinstance(previous, dict) else {}, value)
        else:
            out[existing] = copy.deepcopy(value)
        index[str(key).lower()] = existing
    return out


def _canonical_layer(layer: dict) -> dict:
    """Registry keys in one spelling (HKEY_LOCAL_MACHINE\\X == HKLM\\X) so layers merge on them."""
    if isinstance(layer.get("registry"), dict):
        layer = {**layer, "registry": {normalize_key(k): v for k, v in layer["registry"].items()}}
    return layer


class Templates:
    """lab/templates/<name>.yml, validated once and expanded with their own bases."""

    def __init__(self, directory: Path | str = TEMPLATE_DIR) -> None:
        self.directory = Path(directory)
        self._cache: dict[str, dict] = {}

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.yml"))

    def expand(self, name: str, stack: tuple[str, ...] = ()) -> dict:
        """The template's full layer: its bases merged in order, then its own keys."""
        if name in stack:
            raise ScenarioError(f"{self.directory / (name + '.yml')}: template cycle {' -> '.join(stack + (name,))}")
        if name not in self._cache:
            path = self.directory / f"{name}.yml"
            if not path.is_file():
                raise KeyError(name)
            raw = read_yaml(path) or {}
            validate(raw, "hostLayer", str(path))
            merged: dict = {}
            for base in raw.get("base", []):
                try:
                    merged = deep_merge(merged, self.expand(base, stack + (name,)))
                except KeyError:
                    raise ScenarioError(f"{path}: base: unknown template {base!r}") from None
            self._cache[name] = deep_merge(merged, _canonical_layer({k: v for k, v in raw.items() if k != "base"}))
        return copy.deepcopy(self._cache[name])


def _merge_host(name: str, layer: dict, defaults: dict, templates: Templates, source: str) -> dict:
    merged = _canonical_layer(copy.deepcopy(defaults))
    for base in layer.get("base", []):
        try:
            merged = deep_merge(merged, templates.expand(base))
        except KeyError:
            raise ScenarioError(
                f"{source}: host {name}: base: unknown template {base!r} (have: {', '.join(templates.names())})"
            ) from None
    merged = deep_merge(merged, _canonical_layer({k: v for k, v in layer.items() if k != "base"}))
    merged.pop("description", None)
    return merged


# --------------------------------------------------------------------------- times

def _resolve_time(text: str, now: datetime, dmtf: bool = False) -> str:
    match = _RELATIVE_TIME.match(text)
    if not match:
        return text
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    moment = now - timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    # WMI datetimes are CIM_DATETIME (DMTF) strings; files and events use ISO 8601 UTC.
    return moment.strftime("%Y%m%d%H%M%S.000000+000") if dmtf else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _resolve_times(host: dict, now: datetime) -> None:
    """Turn every relative time (now-5h) in a merged host into an absolute one, in place."""
    for spec in (host.get("files") or {}).values():
        spec["mtime"] = _resolve_time(spec["mtime"], now)
    mb = host.get("metabase") or {}
    for spec in [mb] + list(mb.get("history") or []):
        if "mtime" in spec:
            spec["mtime"] = _resolve_time(spec["mtime"], now)
    for event in host.get("events") or []:
        event["time"] = _resolve_time(event["time"], now)
    for log in (host.get("event_logs") or {}).values():
        if log and "oldest" in log:
            log["oldest"] = _resolve_time(log["oldest"], now)
    for classes in (host.get("wmi") or {}).values():
        for instances in classes.values():
            for inst in instances:
                for prop, value in inst.items():
                    if isinstance(value, str) and value.startswith("now"):
                        inst[prop] = _resolve_time(value, now, dmtf=True)


# --------------------------------------------------------------------------- building

def load_scenario(path: Path | str, now: datetime | None = None, template_dir: Path | str = TEMPLATE_DIR,
                  address_block: int | None = None) -> FleetState:
    """Read, validate and build a scenario file. Relative times resolve against now (default: current UTC).
    address_block N moves every host and device from 127.x.y.z to 127.N.y.z, so several labs of one scenario
    can run at once."""
    data = read_yaml(path)
    if address_block is not None:
        data = relocate(data, address_block)
    return load_scenario_data(data, str(path), now=now, template_dir=template_dir)


def relocate(data: Any, block: int) -> Any:
    if not 1 <= int(block) <= 254:
        raise ScenarioError(f"address block {block}: must be 1 to 254 (127.<block>.y.z)")
    data = copy.deepcopy(data)
    network = data.get("network") if isinstance(data.get("network"), dict) else {}
    for item in [*(data.get("hosts") or {}).values(), *(network.get("devices") or [])]:
        if isinstance(item, dict) and isinstance(item.get("address"), str):
            item["address"] = re.sub(r"^127\.\d+\.", f"127.{int(block)}.", item["address"])
    return data


def load_scenario_data(
    data: Any, source: str, now: datetime | None = None, template_dir: Path | str = TEMPLATE_DIR
) -> FleetState:
    """Validate and build a scenario given as plain data; source names it in error messages."""
    validate_document(data, source)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    templates = Templates(template_dir)
    organization = data.get("organization")
    merged = {
        name: _merge_host(name, layer or {}, data.get("defaults") or {}, templates, source)
        for name, layer in data["hosts"].items()
    }
    raise_if_any([
        line for name, host in merged.items() for line in error_lines(host, "host", f"{source}: host {name}")
    ])
    for host in merged.values():
        _resolve_times(host, now)
    dns_domain = _dns_domain(organization)
    _check_fleet(merged, data.get("network") or {}, organization, source)

    hosts = {name: _build_host(name, spec, dns_domain) for name, spec in merged.items()}
    ad = ActiveDirectory()
    for dn, attrs in (data.get("ad_objects") or {}).items():
        ad.put(dn, _clean_attrs(attrs))
    for name, spec in merged.items():
        _add_host_ad(ad, name, spec.get("ad") or {}, organization, f"{source}: host {name}")
    return FleetState(hosts=hosts, ad=ad, network=lab_network.build(data.get("network") or {}),
                      time_factor=float(data.get("time_factor", 1.0)))


def _dns_domain(organization: dict | None) -> str | None:
    if not organization:
        return None
    return ".".join(part.split("=", 1)[1] for part in organization["domain_dn"].split(","))


def _check_fleet(hosts: dict[str, dict], network: dict, organization: dict | None, source: str) -> None:
    """What the schema cannot say: uniqueness across hosts and references between them."""
    problems = []
    by_lower: dict[str, str] = {}
    addresses: dict[str, str] = {}
    fqdns: dict[str, str] = {}
    for name, host in hosts.items():
        if name.lower() in by_lower:
            problems.append(f"host {name}: same name as host {by_lower[name.lower()]} (names are case-insensitive)")
        by_lower[name.lower()] = name
        address = host["address"]
        if (why := lab_network.loopback_problem(address)):
            problems.append(f"host {name}: address: {why}")
        if address in addresses:
            problems.append(f"host {name}: address: {address} is already used by host {addresses[address]}")
        addresses.setdefault(address, name)
        fqdn = (host.get("fqdn") or "").lower()
        if fqdn and fqdn in fqdns:
            problems.append(f"host {name}: fqdn: {fqdn} is already used by host {fqdns[fqdn]}")
        fqdns.setdefault(fqdn, name)
        if not fqdn and organization is None:
            problems.append(f"host {name}: fqdn: required when the scenario has no organization to derive it from")
        if host.get("winrm") is False and {"http", "https"} & set(host.get("ports") or {}):
            problems.append(f"host {name}: ports: a host with winrm: false has no WinRM listener ports")
        if host.get("ad") and organization is None:
            problems.append(f"host {name}: ad: needs a top-level organization to place its objects")
        problems += _start_mode_mismatches(name, host)
    problems += lab_network.check(network, by_lower, {a: f"host {n}" for a, n in addresses.items()})
    for d, device in enumerate(network.get("devices") or []):
        if "features" in device and str(device.get("kind")).lower() != "ios":
            problems.append(f"network.devices[{d}].features: IOS image features; device {device['name']} is "
                            f"kind {device.get('kind')}, not ios")
    if problems:
        raise ScenarioError("\n".join(f"{source}: {p}" for p in problems))


def _start_mode_mismatches(name: str, host: dict) -> list[str]:
    """A service's start mode and its registry Start value are one fact; they must agree."""
    keys = {k.lower(): v for k, v in (host.get("registry") or {}).items()}
    out = []
    for svc_name, svc in (host.get("services") or {}).items():
        key = f"HKLM\\SYSTEM\\CurrentControlSet\\Services\\{svc_name}"
        start = next((v for k, v in (keys.get(key.lower()) or {}).items() if k.lower() == "start"), None)
        mode = svc.get("start_mode", "auto")
        if start is not None and start.get("data") != _START_VALUE[mode]:
            out.append(f"host {name}: registry[{key!r}]['Start']: {start.get('data')} disagrees with "
                       f"services[{svc_name!r}].start_mode {mode!r} (expected {_START_VALUE[mode]})")
    return out


def _build_host(name: str, spec: dict, dns_domain: str | None) -> HostState:
    fqdn = spec.get("fqdn") or f"{name.lower()}.{dns_domain}"
    os_info = dict(spec["os"])
    os_info.setdefault("computer_name", name)
    os_info.setdefault("domain", fqdn.partition(".")[2])
    system_root = spec.get("system_root", "C:\\WINDOWS")
    files = Filesystem()
    for path, file_spec in _metabase_files(spec.get("metabase") or {}, system_root).items():
        files.write(path, file_spec["text"], file_spec["mtime"])
    for path, file_spec in (spec.get("files") or {}).items():  # after the metabase, so explicit files win
        data = bytes.fromhex(file_spec["hex"]) if "hex" in file_spec else file_spec.get("text", "")
        files.write(path, data, file_spec["mtime"], bool(file_spec.get("transient")))
    host = HostState(
        name=name,
        fqdn=fqdn,
        address=spec["address"],
        username=spec["username"],
        password=spec["password"],
        os=os_info,
        registry=Registry.from_plain(_with_firewall(spec)),
        files=files,
        services={
            key: Service(key, svc["display_name"], svc.get("state", "running"), svc.get("start_mode", "auto"),
                         list(svc.get("depends_on", [])), svc.get("stop_seconds", 0))
            for key, svc in (spec.get("services") or {}).items()
        },
        events=copy.deepcopy(spec.get("events") or []),
        wmi=copy.deepcopy(spec.get("wmi") or {}),
        tcp_connections=copy.deepcopy(spec.get("tcp_connections") or []),
        smtp_engine=copy.deepcopy(spec.get("smtp_engine") or {}),
        system_root=system_root,
        ports={**DEFAULT_PORTS, **(spec.get("ports") or {})},
        winrm_config={**WINRM2_DEFAULTS, **(spec.get("winrm_config") or {})},
        windows_components=dict(spec.get("windows_components") or {}),
        event_logs=copy.deepcopy({k: v for k, v in (spec.get("event_logs") or {}).items() if v}),
        registry_unreadable=list(spec.get("registry_unreadable") or []),
        wmi_unresponsive=list(spec.get("wmi_unresponsive") or []),
    )
    host.winrm = spec.get("winrm", True)
    if not host.winrm:
        host.ports = {k: v for k, v in host.ports.items() if k not in ("http", "https")}
    return host


def _with_firewall(spec: dict) -> dict:
    """The host's registry with its `firewall:` block written where Windows keeps it."""
    registry = copy.deepcopy(spec.get("registry") or {})
    for key, values in firewall.to_registry(spec.get("firewall")).items():
        registry.setdefault(key, {}).update(values)
    return registry


def _metabase_files(spec: dict, system_root: str) -> dict[str, dict]:
    """MetaBase.xml, MBSchema.xml and the History pairs described by a metabase: section."""
    if not spec:
        return {}
    inetsrv = f"{system_root}\\system32\\inetsrv"
    locations = spec.get("locations") or {}
    history = sorted(spec.get("history") or [], key=lambda h: (h["major"], h.get("minor", 0)))
    mtime = spec.get("mtime") or (history[-1]["mtime"] if history else "2000-01-01T00:00:00Z")
    current_major = history[-1]["major"] if history else 1
    text = spec["text"] if spec.get("text") is not None else metabase.render(locations, major_version=current_major)
    out = {
        f"{inetsrv}\\MetaBase.xml": {"text": text, "mtime": mtime},
        f"{inetsrv}\\MBSchema.xml": {"text": MBSCHEMA_TEXT, "mtime": mtime},
    }
    # History file names: MetaBase_<major>_<minor>.xml, both zero-padded to 10 digits (TechNet cc782923).
    for pair in history:
        suffix = f"{pair['major']:010d}_{pair.get('minor', 0):010d}.xml"
        copy_text = metabase.render(locations, major_version=pair["major"])
        out[f"{inetsrv}\\History\\MetaBase_{suffix}"] = {"text": copy_text, "mtime": pair["mtime"]}
        out[f"{inetsrv}\\History\\MBSchema_{suffix}"] = {"text": MBSCHEMA_TEXT, "mtime": pair["mtime"]}
    return out


def _clean_attrs(attrs: dict | None) -> dict[str, list]:
    return {k: (list(v) if isinstance(v, list) else [v]) for k, v in (attrs or {}).items() if v is not None}


def server_dn(organization: dict, server: str, administrative_group: str | None = None) -> str:
    """CN=<server>,CN=Servers,CN=<AG>,CN=Administrative Groups,CN=<Org>,CN=Microsoft Exchange,... (config NC)."""
    group = administrative_group or organization["administrative_group"]
    return (f"CN={server},CN=Servers,CN={group},CN=Administrative Groups,CN={organization['name']},"
            f"CN=Microsoft Exchange,CN=Services,CN=Configuration,{organization['domain_dn']}")


def _add_host_ad(ad: ActiveDirectory, name: str, spec: dict, organization: dict | None, where: str) -> None:
    """The host's Exchange server object, its SMTP virtual servers and any extra objects it brings."""
    objects: dict[str, dict] = {}
    if spec.get("server") is not None or spec.get("smtp_virtual_servers"):
        dn = server_dn(organization, name, spec.get("administrative_group"))
        server_classes = ["top", "server", "msExchExchangeServer"]
        objects[dn] = {"objectClass": server_classes, "cn": name, **(spec.get("server") or {})}
        vs_classes = ["top", "protocolCfg", "protocolCfgSMTP", "protocolCfgSMTPServer"]
        for number, attrs in (spec.get("smtp_virtual_servers") or {}).items():
            vs_dn = f"CN={number},CN=SMTP,CN=Protocols,{dn}"
            objects[vs_dn] = {"objectClass": vs_classes, "cn": str(number), **(attrs or {})}
    objects.update(spec.get("objects") or {})
    for dn, attrs in objects.items():
        if ad.get(dn) is not None:
            raise ScenarioError(f"{where}: ad: object {dn!r} is defined twice")
        ad.put(dn, _clean_attrs(attrs))


# --------------------------------------------------------------------------- plain round trip

def fleet_to_plain(fleet: FleetState) -> dict:
    """Every field of the fleet as a template-free scenario (what `dump` writes)."""
    with fleet.lock:
        hosts = {
            h.name: {
                "fqdn": h.fqdn, "address": h.address, "username": h.username, "password": h.password,
                "winrm": h.winrm, "ports": dict(h.ports), "os": copy.deepcopy(h.os),
                "system_root": h.system_root,
                "registry": h.registry.to_plain(), "files": h.files.to_plain(),
                "services": {key: {"display_name": s.display_name, "state": s.state, "start_mode": s.start_mode,
                                   "depends_on": list(s.depends_on),
                                   **({"stop_seconds": s.stop_seconds} if s.stop_seconds else {})}
                             for key, s in h.services.items()},
                **copy.deepcopy({"events": h.events, "wmi": h.wmi, "tcp_connections": h.tcp_connections,
                                 "smtp_engine": h.smtp_engine, "winrm_config": h.winrm_config,
                                 "windows_components": h.windows_components, "event_logs": h.event_logs,
                                 "registry_unreadable": h.registry_unreadable, "wmi_unresponsive": h.wmi_unresponsive}),
            }
            for h in fleet.hosts.values()
        }
        return {"hosts": hosts, "network": copy.deepcopy(fleet.network), "ad_objects": fleet.ad.to_plain(),
                "time_factor": fleet.time_factor}


def fleet_from_plain(plain: dict, source: str = "<state>") -> FleetState:
    """Inverse of fleet_to_plain; validated like any scenario."""
    return load_scenario_data(plain, source)


def dump_state(fleet: FleetState, path: Path | str) -> None:
    """Write the fleet's state: JSON, or YAML when the file name ends in .yml/.yaml."""
    plain = fleet_to_plain(fleet)
    with open(path, "w", encoding="utf-8") as fh:
        if str(path).endswith((".yml", ".yaml")):
            yaml.safe_dump(plain, fh, sort_keys=False, allow_unicode=True)
        else:
            json.dump(plain, fh, indent=1)


def load_state(path: Path | str) -> FleetState:
    if str(path).endswith((".yml", ".yaml")):
        return fleet_from_plain(read_yaml(path), str(path))
    try:
        with open(path, encoding="utf-8") as fh:
            plain = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read state: {exc}") from exc
    return fleet_from_plain(plain, str(path))
