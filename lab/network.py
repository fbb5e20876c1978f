"""The network between hosts: blocked pairs and devices, as a scenario gives them.

A device sits on host pairs. A scenario names them directly (``paths``) or
gives the cabling (``segments``: interface -> hosts behind it), and then the
device is on the path between every two hosts behind different interfaces.
The segments also say which interface a connection enters and leaves by,
which is what an interface-bound rule (``ip inspect X in`` on one
interface) needs to apply to one direction only.
"""
from __future__ import annotations

import copy
import ipaddress

DEFAULT_SSH_PORT = 22


def loopback_problem(address) -> str | None:
    """Why an address cannot be a lab listener's (every host and device binds 127.x.y.z), or None."""
    try:
        if not ipaddress.IPv4Address(address).is_loopback:
            return f"{address} is not a 127.x.y.z loopback address"
    except ValueError:
        return f"{address!r} is not an IPv4 address"
    return None


def serves_ssh(device: dict) -> bool:
    """An IOS device with an address has an SSH command line; the others are known by their config alone."""
    return str(device.get("kind", "")).lower() == "ios" and bool(device.get("address"))


def paths_from_segments(segments: dict[str, list[str]]) -> list[list[str]]:
    names = list(segments)
    return [[a, b] for i, left in enumerate(names) for right in names[i + 1:]
            for a in segments[left] for b in segments[right]]


def segment_of(device: dict, host: str) -> str | None:
    """The interface the host sits behind, when the device's segments say."""
    for interface, hosts in (device.get("segments") or {}).items():
        if host.lower() in (h.lower() for h in hosts):
            return interface
    return None


def build(network: dict) -> dict:
    """The network as the running lab keeps it: every device with paths, startup_config and (with an
    address) its SSH port filled in."""
    network = copy.deepcopy(network or {})
    network.setdefault("blocked", [])
    for device in network.setdefault("devices", []):
        if "paths" not in device:
            device["paths"] = paths_from_segments(device.get("segments") or {})
        device.setdefault("startup_config", device["config"])
        if device.get("address"):
            device["ports"] = {"ssh": DEFAULT_SSH_PORT, **(device.get("ports") or {})}
    return network


def check(network: dict, host_names: dict[str, str], addresses: dict[str, str]) -> list[str]:
    """What the schema cannot say: known hosts on every pair and segment, unique names and addresses.
    host_names: lower-case name -> name; addresses: address -> host name (both of the hosts)."""
    problems = []
    pairs = [("network.blocked", i, pair) for i, pair in enumerate(network.get("blocked", []))]
    devices: dict[str, str] = {}
    for d, device in enumerate(network.get("devices", [])):
        where = f"network.devices[{d}]"
        pairs += [(f"{where}.paths", i, pair) for i, pair in enumerate(device.get("paths", []))]
        name = device["name"]
        if name.lower() in devices or name.lower() in host_names:
            problems.append(f"{where}.name: {name!r} is already the name of "
                            f"{'device' if name.lower() in devices else 'host'} {devices.get(name.lower()) or host_names[name.lower()]}")
        devices.setdefault(name.lower(), name)
        seen: dict[str, str] = {}
        for interface, hosts in (device.get("segments") or {}).items():
            for host in hosts:
                if host.lower() not in host_names:
                    problems.append(f"{where}.segments[{interface!r}]: unknown host {host!r}")
                elif host.lower() in seen and seen[host.lower()] != interface:
                    problems.append(f"{where}.segments[{interface!r}]: host {host!r} is also behind {seen[host.lower()]!r}")
                seen.setdefault(host.lower(), interface)
        address = device.get("address")
        if address:
            if (why := loopback_problem(address)):
                problems.append(f"{where}.address: {why}")
            if address in addresses:
                problems.append(f"{where}.address: {address} is already used by {addresses[address]}")
            addresses[address] = f"device {name}"
    for where, i, pair in pairs:
        for end in pair:
            if end.lower() not in host_names:
                problems.append(f"{where}[{i}]: unknown host {end!r}")
        if pair[0].lower() == pair[1].lower():
            problems.append(f"{where}[{i}]: a pair needs two different hosts")
    return problems
