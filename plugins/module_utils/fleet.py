"""The fleet as detectors see it: every inventory host, its snapshot (or why there is none),
and the SMTP probes between them.

Cross-host causes (a silent banner, a blocked port, a peer that is down, a
legacy peer) are decided here on the controller by combining the hosts'
snapshots; no detector contacts a host.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator

from ansible_collections.mailflow.exchange.plugins.module_utils.firewalls import Firewall
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from ansible_collections.mailflow.exchange.plugins.module_utils.snapshot import (
    exchange_from_serial, greeting_name, identity, kind_of_version,
)

# PIX Mailguard turns every banner character except "2", "0" and spaces into "*"
# (KB 295725: "220 *********0****...****2****"; KB 320027 shows it with no space after
# "220"); ASA's ESMTP inspection masks it too. "Old versions of PIX or ASA" answer
# "220 SMTP/cmap_____..._____ read" instead (KB 320027).
_MASKED_BANNER = re.compile(r"^220[ *0-2]*\*{3,}[ *0-2]*$|^220[ -]SMTP/cmap_{3,}\s*read\b", re.I)
_IMS_BANNER = re.compile(r"Microsoft Exchange Internet Mail Service (?P<ver>5\.\d)\.(?P<build>[\d.]+)", re.I)

PROBE_RESULTS = ("banner", "no_banner", "refused", "filtered", "masked", "greylisted", "rejected", "unresolved", "error")


GREYLIST_CODES = ("450", "451")  # knowledge detect.greylist_reply_codes overrides it for a fleet


def greylist_reply(p: dict, codes: tuple[str, ...] = GREYLIST_CODES) -> str | None:
    """The temporary MAIL/RCPT reply a greylisting peer deferred the probe with (KB 950757 "Temporary Error (4.7.1)")."""
    return next((p.get(s) for s in ("mail", "rcpt") if str(p.get(s) or "").startswith(codes)), None)


def classify_probe(p: dict, greylist_codes: tuple[str, ...] = GREYLIST_CODES) -> str:
    """One probe's outcome in the words of the report."""
    connect = p.get("connect") or ""
    if connect == "refused":
        return "refused"
    if connect == "timeout":
        return "filtered"
    if connect == "unresolved":
        return "unresolved"
    if connect != "ok":
        return "error"
    banner = (p.get("banner") or "").split("\n", 1)[0].strip()
    if not banner:
        return "no_banner"
    ehlo = (p.get("ehlo") or "").strip()
    if _MASKED_BANNER.match(banner) or ehlo.startswith("500"):
        return "masked"
    if not banner.startswith("220"):
        return "rejected"
    if greylist_reply(p, greylist_codes):
        return "greylisted"
    return "banner"


def ehlo_verbs(p: dict) -> set[str]:
    """EHLO keywords the peer advertised, upper-cased ('250-BINARYMIME' -> 'BINARYMIME')."""
    verbs = set()
    for line in (p.get("ehlo") or "").splitlines()[1:]:
        word = line[4:].strip().split(" ", 1)[0].split("=", 1)[0]
        if word:
            verbs.add(word.upper())
    return verbs


@dataclass
class Probe:
    source: str          # inventory name of the probing host
    target: str          # inventory name (or the probed name when it is not in the inventory)
    raw: dict
    result: str

    @property
    def ms(self) -> int:
        return int(self.raw.get("total_ms") or 0)


@dataclass
class HostEntry:
    name: str
    managed: bool = True
    fqdn: str | None = None
    address: str | None = None
    snapshot: dict | None = None
    error: str | None = None                   # why there is no snapshot
    declared: dict[str, Any] = field(default_factory=dict)  # inventory hints: platform, greylisting
    greeting: str | None = None  # the FQDN its SMTP greeting gave a peer's probe (set by Fleet for hosts without a snapshot)

    @cached_property
    def view(self) -> HostView | None:
        # One view per host per audit: the view caches what it parses (MetaBase.xml), and every detector asks.
        return HostView(self.snapshot) if self.snapshot is not None else None

    @property
    def identity(self) -> dict:
        """Who the host is (snapshot.identity): what it reported, else the inventory's names, labelled."""
        return identity(self.snapshot, self.name, self.fqdn, self.greeting)

    @property
    def computer_name(self) -> str:
        return self.identity["computer_name"]


class Fleet:
    def __init__(self, entries: list[HostEntry], settings: dict | None = None, firewalls: list[dict] | None = None,
                 probe_plan: dict | None = None):
        self.entries = {e.name: e for e in entries}
        self.settings = settings or {}
        # Which pairs this run was to probe and why (probe_plan.plan); None when not recorded (older snapshots).
        self.probe_plan = probe_plan
        # Network devices between the servers (firewalls.facts_from_config), for causes on the path.
        self.firewalls = [Firewall(f) for f in firewalls or []]
        self._names = self._name_index()
        self.greylist_codes = tuple(str(c) for c in self.settings.get("greylist_reply_codes", {}).get("value", GREYLIST_CODES))
        self._probes = self._collect_probes()
        # A host without a snapshot (unmanaged, unreachable) still names itself in its SMTP greeting to its peers.
        for p in self._probes:
            e = self.entries.get(p.target)
            if e is not None and e.snapshot is None and e.greeting is None:
                e.greeting = greeting_name(p.raw.get("banner"))
        self._names = self._name_index()
        # Every detector asks "who probed X" for every host: index once, not N x N^2 scans.
        self._by_target: dict[str, list[Probe]] = {}
        self._by_source: dict[str, list[Probe]] = {}
        for p in self._probes:
            self._by_target.setdefault(p.target, []).append(p)
            self._by_source.setdefault(p.source, []).append(p)
        self._pairs = {(p.source, p.target) for p in self._probes}
        self._ad = self._org_servers()
        self._derived: dict[tuple[str, str], Any] = {}

    def derived(self, what: str, name: str, compute: Callable[[], Any]) -> Any:
        """A fact derived from one host's snapshot (its symptoms, say), computed once per fleet."""
        key = (what, name)
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def __iter__(self) -> Iterator[HostEntry]:
        return iter(self.entries.values())

    def __getitem__(self, name: str) -> HostEntry:
        return self.entries[name]

    def setting(self, name: str) -> Any:
        if name not in self.settings:
            raise KeyError(f"knowledge detect.{name} is not set")
        return self.settings[name]["value"] if isinstance(self.settings[name], dict) and "value" in self.settings[name] else self.settings[name]

    def confidence(self, name: str) -> str:
        s = self.settings.get(name)
        return s.get("confidence", "confirmed") if isinstance(s, dict) else "confirmed"

    # -- names

    def _name_index(self) -> dict[str, str]:
        """Every name a host goes by -> its inventory name (first host wins, in inventory order)."""
        index: dict[str, str] = {}
        for e in self:
            who = e.identity
            for alias in (e.name, e.fqdn, e.address, who["computer_name"], who["fqdn"]):
                if alias:
                    index.setdefault(alias.lower(), e.name)
        return index

    def resolve(self, text: str | None) -> str | None:
        """An inventory name for a host name, FQDN, computer name or IP address; None if not ours."""
        if not text:
            return None
        return self._names.get(str(text).strip().strip("[]").rstrip(".").lower())

    # -- probes

    def _collect_probes(self) -> list[Probe]:
        out = []
        for e in self:
            for raw in (e.snapshot or {}).get("probes") or []:
                target = self.resolve(raw.get("peer")) or self.resolve(raw.get("target")) or raw.get("peer") or raw.get("target")
                out.append(Probe(e.name, target, raw, classify_probe(raw, self.greylist_codes)))
        return out

    @property
    def probes(self) -> list[Probe]:
        return self._probes

    def probes_to(self, name: str) -> list[Probe]:
        return self._by_target.get(name, [])

    def probes_from(self, name: str) -> list[Probe]:
        return self._by_source.get(name, [])

    def probed(self, source: str, target: str) -> bool:
        """Whether a probe from source to target came back (whatever its result)."""
        return (source, target) in self._pairs

    # -- what each host is, from its own snapshot, the org's AD, the inventory, or its banner

    def _org_servers(self) -> dict[str, dict]:
        """{COMPUTER: {"version", "build", "service_pack"}} from the Exchange server objects in AD.

        A few snapshots per run read the whole organisation's list (ad_org_exchange_servers; older snapshots read
        it into ad_exchange_servers on every host): the newest such list answers for the organisation. Every
        Exchange snapshot adds its own server object (ad_exchange_servers), so the servers that were read stay
        known when no list was.
        """
        def newest(item):
            return sorted((e.snapshot for e in self if e.snapshot and (e.snapshot.get("items") or {}).get(item)),
                          key=lambda s: s.get("collected_at") or "", reverse=True)

        out: dict[str, dict] = {}
        lists = 0
        for snap, item in [(s, "ad_org_exchange_servers") for s in newest("ad_org_exchange_servers")[:1]] \
                + [(s, "ad_exchange_servers") for s in newest("ad_exchange_servers")]:
            if len(snap["items"][item]) > 1:  # a whole list (an older snapshot's): the newest answers, once
                lists += 1
                if lists > 1:
                    continue
            for entry in snap["items"][item]:
                cn = str((entry["attrs"].get("cn") or [""])[0]).upper()
                found = exchange_from_serial(entry["attrs"], f"AD serialNumber (read by {snap['host']})")
                if cn and found and cn not in out:
                    out[cn] = found
        return out

    def exchange_of(self, name: str) -> dict | None:
        """The Exchange version of a host: its snapshot, else AD, else its SMTP banner."""
        e = self.entries[name]
        own = (e.snapshot or {}).get("platform", {}).get("exchange")
        if own and own.get("version"):
            return own
        if e.computer_name.upper() in self._ad:
            return self._ad[e.computer_name.upper()]
        for p in self.probes_to(name):
            m = _IMS_BANNER.search(p.raw.get("banner") or "")
            if m:
                return {"version": m["ver"], "build": m["build"], "service_pack": None,
                        "source": f"SMTP banner seen by {p.source}"}
        return own  # a build without a version (registry ServicePackBuild only), or None

    def kind_of(self, name: str) -> tuple[str | None, str]:
        """(kind, how we know): exchange2003, exchange2000, exchange55, smtp_relay, windows, or None."""
        e = self.entries[name]
        if e.snapshot:
            return e.snapshot["platform"]["kind"], "snapshot"
        declared = e.declared.get("platform")
        if declared:
            return str(declared), "inventory mailflow_platform"
        ex = self.exchange_of(name)
        if ex and ex.get("version"):
            return kind_of_version(ex["version"]), ex["source"]
        return None, "no snapshot, no inventory mailflow_platform and no Exchange server object in AD"
