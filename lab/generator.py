"""Seeded scenarios of any size, in the same format as lab/scenarios/*.yml.

``generate(hosts, seed)`` returns a plain scenario dict: mostly healthy
Exchange 2003 servers, with about one in five carrying one or two of the raw
conditions the demo shows (see lab/README.md). From ten hosts on, the fleet
also has an Exchange 5.5 server and a greylisting Windows SMTP relay, which
two of the conditions need. Like every scenario, the output holds raw state
only; which host got which condition is known to nobody but the seed.

``generate(hosts, seed, sites=N)`` spreads the fleet over N sites, each an
Exchange 2003 routing group with its bridgeheads, connectors and relay
(lab/generator_sites.py).
"""
from __future__ import annotations

import random
from typing import Callable

from lab import metabase
from lab.scenario import Templates

ORGANIZATION = {"name": "Corp", "administrative_group": "First Administrative Group", "domain_dn": "DC=corp,DC=example"}
DNS_DOMAIN = "corp.example"
CREDENTIALS = {"username": "Administrator", "password": "Lab-Passw0rd!"}

# Addresses 127.0.<x>.<y>: x from FIRST_SUBNET, y 1..HOSTS_PER_SUBNET.
FIRST_SUBNET = 20
HOSTS_PER_SUBNET = 250
MAX_HOSTS = (255 - FIRST_SUBNET) * HOSTS_PER_SUBNET

CONDITION_RATE = 0.2  # share of Exchange 2003 hosts that get a condition
SECOND_CONDITION_RATE = 0.25  # of those, share that get a second one

LEGACY_NAME, RELAY_NAME = "LEGACY55", "RELAY01"
QUEUE_DIR = "C:\\Program Files\\Exchsrvr\\Mailroot\\vsi 1\\Queue"
SMTPSVC_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\SMTPSVC"
REMOTE_LINK_IN_RETRY = 0x4 | 0x10  # Exchange_Link StateFlags: retry, remote (domain-facts §11)


def address(index: int) -> str:
    return f"127.0.{FIRST_SUBNET + index // HOSTS_PER_SUBNET}.{1 + index % HOSTS_PER_SUBNET}"


def fqdn(name: str) -> str:
    return f"{name.lower()}.{DNS_DOMAIN}"


class _Fleet:
    """What condition builders need to know about the fleet being generated."""

    def __init__(self, rng: random.Random, exchange: list[str], addresses: dict[str, str]) -> None:
        self.rng = rng
        self.exchange = exchange
        self.addresses = addresses
        self.network: dict = {"blocked": [], "devices": []}
        self.legacy = LEGACY_NAME if LEGACY_NAME in addresses else None
        self.relay = RELAY_NAME if RELAY_NAME in addresses else None
        # Multi-site fleets only (generator_sites): each server's next hops, as (same-site servers, remote
        # bridgeheads), and each server's own site relay. None: one site, every server reaches every other.
        self.next_hops: dict[str, tuple[list[str], list[str]]] | None = None
        self.relays: dict[str, str] | None = None

    def peer(self, name: str) -> str | None:
        """The server a queue of `name` would lead to. Across sites mail leaves through a bridgehead, which
        hands it to a remote bridgehead over a routing group connector: only a bridgehead has a queue to
        another site, and half of its stalls are on its connectors."""
        if self.next_hops is not None:
            local, remote = self.next_hops[name]
            if remote and (not local or self.rng.random() < 0.5):
                return self.rng.choice(remote)
            return self.rng.choice(local) if local else None
        others = [n for n in self.exchange if n != name]
        return self.rng.choice(others) if others else None

    def relay_of(self, name: str) -> str | None:
        return self.relay if self.relays is None else self.relays.get(name)

    def guid(self) -> str:
        r = self.rng.getrandbits
        return f"{{{r(32):08X}-{r(16):04X}-4{r(12):03X}-{8 | r(2):X}{r(12):03X}-{r(48):012X}}}"

    def stalled_link(self, sender: str, remote: str, hours: int, event: bool = True) -> dict:
        """Raw evidence of a queue to remote in retry: link/queue WMI objects, an old .EML, maybe Event 4006."""
        link_id, age = self.guid(), f"now-{hours}h"
        key = {"LinkId": link_id, "LinkName": fqdn(remote), "ProtocolName": "SMTP",
               "VirtualMachine": sender, "VirtualServerName": "1"}
        layer = {
            "wmi": {"root\\MicrosoftExchangeV2": {
                "Exchange_SMTPLink": [{**key, "StateFlags": REMOTE_LINK_IN_RETRY, "StateActive": False,
                                       "StateReady": False, "OldestMessage": age}],
                "Exchange_SMTPQueue": [{**key, "QueueId": self.guid(), "QueueName": fqdn(remote)}],
            }},
            "files": {f"{QUEUE_DIR}\\NTFS_{self.rng.getrandbits(96):024x}.EML": {
                "mtime": age,
                "text": f"From: user@{DNS_DOMAIN}\r\nTo: someone@{fqdn(remote)}\r\n"
                        "Subject: Report\r\n\r\nSee attached.\r\n",
            }},
        }
        if event:
            layer["events"] = [{
                "log": "Application", "source": "MSExchangeTransport", "event_id": 4006, "type": "Warning",
                "category": "Connection Manager", "time": f"now-{max(hours - 1, 0)}h",
                "message": f"The connection was dropped by the remote host {self.addresses[remote]}, {fqdn(remote)}; "
                           "the semaphore timeout period has expired.",
            }]
        return layer

    def stalled_to_peer(self, name: str, event: bool = True) -> dict:
        peer = self.peer(name)
        return self.stalled_link(name, peer, self.rng.randint(2, 9), event) if peer else {}


# --------------------------------------------------------------------------- conditions
# Each returns a raw-state layer for host `name` (and may add to fleet.network).

def _antivirus_internet_mail(fleet: _Fleet, name: str) -> dict:
    return _combine({"base": ["symantec_antivirus_ce9"]}, fleet.stalled_to_peer(name))


def _mail_security_heuristics(fleet: _Fleet, name: str) -> dict:
    return _combine({"base": ["symantec_mail_security_45"]}, fleet.stalled_to_peer(name))


def _sends_to_exchange55(fleet: _Fleet, name: str) -> dict:
    return fleet.stalled_link(name, fleet.legacy, fleet.rng.randint(2, 9))


def _mute_banner(fleet: _Fleet, name: str) -> dict:
    return {"metabase": {"locations": {"/LM/SmtpSvc/1": {"ConnectResponse": ""}}}}


def _smtp_inspection_on_path(fleet: _Fleet, name: str) -> dict:
    peer = fleet.peer(name)
    if peer is None:
        return {}
    devices = fleet.network["devices"]
    if not devices:
        devices.append({"name": "PIX01", "kind": "pix", "paths": [], "config": _PIX_CONFIG})
    devices[0]["paths"].append([name, peer])
    return fleet.stalled_link(name, peer, fleet.rng.randint(2, 9))


def _corrupt_metabase(fleet: _Fleet, name: str) -> dict:
    good = _exchange_metabase_text()
    cut = fleet.rng.randint(len(good) // 3, len(good) - 40)  # before </configuration>: never well-formed
    return {"metabase": {"text": good[:cut], "mtime": "now-1d"}}


def _network_block(fleet: _Fleet, name: str) -> dict:
    peer = fleet.peer(name)
    if peer is None:
        return {}
    fleet.network["blocked"].append([name, peer])
    return fleet.stalled_link(name, peer, fleet.rng.randint(2, 9), event=False)


def _firewall_without_smtp(fleet: _Fleet, name: str) -> dict:
    return {"firewall": {"enabled": True, "open_ports": [
        {"port": 3389, "protocol": "TCP", "scope": "*", "name": "Remote Desktop"},
        {"port": 5985, "protocol": "TCP", "scope": "*", "name": "Windows Remote Management"},
        {"port": 5986, "protocol": "TCP", "scope": "*", "name": "Windows Remote Management (HTTPS)"},
    ]}}


def _unusable_smart_host(fleet: _Fleet, name: str) -> dict:
    # KB 821911: an IP smart host needs brackets; a name must resolve.
    host = fleet.rng.choice([f"10.9.{fleet.rng.randint(0, 255)}.{fleet.rng.randint(1, 254)}", f"smtpgw.{DNS_DOMAIN}"])
    return {
        "metabase": {"locations": {"/LM/SmtpSvc/1": {"SmartHost": host, "SmartHostType": 2}}},
        "ad": {"smtp_virtual_servers": {"1": {"msExchSmtpSmartHost": host, "msExchSmtpSmartHostType": 2}}},
    }


def _smtp_service_disabled(fleet: _Fleet, name: str) -> dict:
    return {
        "services": {"SMTPSVC": {"display_name": "Simple Mail Transfer Protocol (SMTP)",
                                 "state": "stopped", "start_mode": "disabled"}},
        "registry": {SMTPSVC_KEY: {"Start": {"type": "REG_DWORD", "data": 4}}},
    }


def _short_glitch_retry(fleet: _Fleet, name: str) -> dict:
    seconds = fleet.rng.choice([15, 30, 45])  # all below a 300 s greylisting delay
    layer = {"registry": {SMTPSVC_KEY + "\\Queuing": {"GlitchRetrySeconds": {"type": "REG_DWORD", "data": seconds}}}}
    return _combine(layer, fleet.stalled_link(name, fleet.relay_of(name), fleet.rng.randint(1, 6), event=False))


# (builder, needs) — needs: "" always possible, "legacy"/"relay" only when that host exists.
CONDITIONS: list[tuple[Callable[[_Fleet, str], dict], str]] = [
    (_antivirus_internet_mail, ""), (_mail_security_heuristics, ""), (_sends_to_exchange55, "legacy"),
    (_mute_banner, ""), (_smtp_inspection_on_path, ""), (_corrupt_metabase, ""), (_network_block, ""),
    (_firewall_without_smtp, ""), (_unusable_smart_host, ""), (_smtp_service_disabled, ""),
    (_short_glitch_retry, "relay"),
]


# --------------------------------------------------------------------------- the fleet

def generate(hosts: int, seed: int, sites: int = 1) -> dict:
    """A valid scenario of `hosts` hosts over `sites` sites, the same for the same arguments."""
    if not 1 <= hosts <= MAX_HOSTS:
        raise ValueError(f"hosts must be between 1 and {MAX_HOSTS}, got {hosts}")
    if sites != 1:
        from lab.generator_sites import generate_sites  # it builds on this module
        return generate_sites(hosts, seed, sites)
    rng = random.Random(seed)
    special = [LEGACY_NAME, RELAY_NAME] if hosts >= 10 else []
    exchange = [f"EXCH{i:04d}" for i in range(1, hosts - len(special) + 1)]
    names = exchange + special
    addresses = {name: address(i) for i, name in enumerate(names)}
    fleet = _Fleet(rng, exchange, addresses)
    available = [build for build, needs in CONDITIONS if needs == "" or getattr(fleet, needs)]
    # The first two stay healthy so every fleet has known-good peers.
    layers = exchange_layers(fleet, set(exchange[:2]) if hosts >= 3 else set(), lambda _name: available)
    if fleet.legacy:
        layers[LEGACY_NAME] = _legacy_host(fleet)
    if fleet.relay:
        layers[RELAY_NAME] = relay_host(addresses[RELAY_NAME])
    return {
        "description": f"generated by lab.generator: {hosts} hosts, seed {seed}",
        "organization": dict(ORGANIZATION),
        "defaults": dict(CREDENTIALS),
        "hosts": layers,
        "network": fleet.network,
    }


def exchange_layers(fleet: _Fleet, healthy: set[str], available: Callable[[str], list]) -> dict[str, dict]:
    """Each Exchange 2003 server's layer, in fleet.exchange's order: its hotfixes and, for about one in five of
    those not in `healthy`, one or two of the conditions available(name) allows."""
    rng, layers = fleet.rng, {}
    for name in fleet.exchange:
        layer: dict = {"base": ["exchange2003_sp2"], "address": fleet.addresses[name]}
        if rng.random() < 0.5:
            layer["wmi"] = {"root\\cimv2": {"Win32_QuickFixEngineering": _hotfixes("KB950757")}}
        if name not in healthy and rng.random() < CONDITION_RATE:
            count = 2 if rng.random() < SECOND_CONDITION_RATE else 1
            for build in rng.sample(available(name), count):
                layer = _combine(layer, build(fleet, name))
        layers[name] = layer
    return layers


def relay_host(own: str) -> dict:
    """A Windows Server 2003 SMTP relay that greylists (a 300 s delay)."""
    return {"base": ["smtp_relay_w2003"], "address": own, "smtp_engine": {"greylisting": {"delay_seconds": 300}}}


def _legacy_host(fleet: _Fleet) -> dict:
    """Exchange 5.5 SP3 whose IMS leaks connections to port 25 (Q175982)."""
    own = fleet.addresses[LEGACY_NAME]
    remotes = [fleet.addresses[fleet.rng.choice(fleet.exchange)] for _ in range(fleet.rng.randint(2, 5))]
    return {
        "base": ["exchange55_sp4"],
        "address": own,
        "registry": {"HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup": {
            "ServicePackBuild": {"type": "REG_DWORD", "data": 2650}}},  # SP3, below SP4's 2653
        "ad": {"administrative_group": "LEGACY",
               "server": {"serialNumber": "Version 5.5 (Build 2650.21: Service Pack 3)"}},
        "tcp_connections": [{"local": f"{own}:{1030 + n}", "remote": f"{remote}:25", "state": "ESTABLISHED"}
                            for n, remote in enumerate(remotes)],
    }


def _hotfixes(*extra: str) -> list[dict]:
    base = ["KB925902", "KB938127", "KB958644"]  # as in templates/windows2003_sp2.yml
    return [{"HotFixID": kb, "Description": "Security Update"} for kb in base] + [
        {"HotFixID": kb, "Description": "Hotfix"} for kb in extra]


def _combine(a: dict, b: dict) -> dict:
    """Two condition layers on one host: mappings merge, lists concatenate (both links stay)."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _combine(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + value
        else:
            out[key] = value
    return out


_METABASE_TEXT: list[str] = []


def _exchange_metabase_text() -> str:
    """A good Exchange 2003 MetaBase.xml (from the template) to cut short."""
    if not _METABASE_TEXT:
        locations = Templates().expand("exchange2003_sp2")["metabase"]["locations"]
        _METABASE_TEXT.append(metabase.render(locations, major_version=5))
    return _METABASE_TEXT[0]


_PIX_CONFIG = """\
PIX Version 6.3(5)
interface ethernet0 auto
interface ethernet1 100full
nameif ethernet0 outside security0
nameif ethernet1 inside security100
hostname PIX01
domain-name corp.example
fixup protocol ftp 21
fixup protocol http 80
fixup protocol smtp 25
fixup protocol sqlnet 1521
access-list outside_in permit tcp any any eq smtp
access-group outside_in in interface outside
route outside 0.0.0.0 0.0.0.0 192.0.2.1 1
: end
"""
