"""Typed reads over one snapshot, so detectors say what they need, not how it is stored.

A read that cannot be answered raises Missing with the reason (the item failed
on the host, or the host was never snapshotted); detectors turn that into an
`unknown` finding. A registry key that does not exist is an answer (None), not
a Missing: the snapshot read the registry and the key was not there.
"""
from __future__ import annotations

import re
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils import metabase as mb
from ansible_collections.mailflow.exchange.plugins.module_utils.snapshot import identity


class Missing(LookupError):
    """The snapshot cannot answer this read; str(exc) is the reason."""


class HostView:
    def __init__(self, snapshot: dict):
        self.snap = snapshot
        self.items = snapshot.get("items") or {}
        self.errors = snapshot.get("errors") or {}
        self._metabase: Any = None

    @property
    def platform(self) -> dict:
        return self.snap.get("platform") or {}

    @property
    def kind(self) -> str:
        return self.platform.get("kind", "windows")

    def item(self, item_id: str) -> Any:
        if item_id in self.errors:
            raise Missing(f"{item_id} could not be read on the host: {self.errors[item_id]}")
        if item_id not in self.items:
            raise Missing(f"{item_id} is not in the snapshot (not collected)")
        return self.items[item_id]

    # -- registry

    def reg_key(self, item_id: str, suffix: str = "") -> dict | None:
        """The key `<item path><suffix>` as {"values": {name: {"type", "data"}}, "subkeys": [...]}, or None."""
        keys = self.item(item_id)
        if keys is None:
            return None
        if not suffix:
            return next(iter(keys.values()), None)
        wanted = suffix.strip("\\").lower()
        for path, entry in keys.items():
            if path.lower().endswith("\\" + wanted):
                return entry
        self._denied_below(item_id, keys, wanted)
        return None

    @staticmethod
    def _denied_below(item_id: str, keys: dict, wanted: str) -> None:
        """Missing when `wanted` lies in a subkey the host's account could not read: not there is not absent."""
        root = next(iter(keys)).lower()
        target = root + "\\" + wanted
        for path, entry in keys.items():
            for name, why in (entry.get("denied") or {}).items():
                denied = (path + "\\" + name).lower()
                if target == denied or target.startswith(denied + "\\"):
                    raise Missing(f"{item_id}: {path}\\{name} could not be read on the host: {why}")

    def reg_value(self, item_id: str, name: str, suffix: str = "") -> Any:
        key = self.reg_key(item_id, suffix)
        if key is None:
            return None
        for vname, value in key["values"].items():
            if vname.lower() == name.lower():
                return value["data"]
        return None

    def reg_subkeys(self, item_id: str) -> dict[str, dict]:
        """Every key under the item's path: {full path: entry}."""
        return self.item(item_id) or {}

    def installed_products(self) -> list[dict]:
        """[{"key", "name", "version", "publisher"}] from the Uninstall key."""
        out = []
        for path, entry in self.reg_subkeys("installed_products").items():
            values = {k.lower(): v["data"] for k, v in entry["values"].items()}
            if values.get("displayname"):
                out.append({"key": path.rsplit("\\", 1)[-1], "name": str(values["displayname"]),
                            "version": str(values.get("displayversion") or ""), "publisher": values.get("publisher")})
        return out

    # -- services, files, metabase

    def service(self, name: str) -> dict | None:
        services = self.item("services")
        for sname, svc in services.items():
            if sname.lower() == name.lower():
                return svc
        return None

    def metabase(self) -> mb.Metabase:
        """The parsed MetaBase.xml; raises mb.MetabaseError when it is corrupt, Missing when unread."""
        if self._metabase is None:
            data = self.item("metabase")
            if data is None:
                raise Missing("MetaBase.xml was not found on the host")
            if data.get("too_large"):
                raise Missing(f"MetaBase.xml is {data.get('size')} bytes, more than the {data['too_large']} read "
                              "(knowledge collect.metabase.max_bytes): too large to read, not judged")
            if data.get("text") is None:
                self._metabase = mb.MetabaseError("MetaBase.xml is not text (binary or wrongly encoded)")
            else:
                try:
                    self._metabase = mb.parse(data["text"])
                except mb.MetabaseError as exc:
                    self._metabase = exc
        if isinstance(self._metabase, Exception):
            raise self._metabase
        return self._metabase

    def ad_virtual_servers(self, computer_name: str | None = None) -> dict[str, tuple[str, dict]]:
        """This server's SMTP virtual servers in AD, {"1": (dn, {attr: [values]})}, from its own snapshot. The
        server object is named after the computer's NetBIOS name: the one the fleet decided (computer_name), else
        the one the host reports itself (snapshot.identity). Detectors and fixes both read AD through here."""
        if computer_name is None:
            computer_name = identity(self.snap, self.snap.get("host", ""))["computer_name"]
        marker = f",cn=protocols,cn={computer_name.lower()},cn=servers,"
        return {str((e["attrs"].get("cn") or [""])[0]): (e["dn"], e["attrs"])
                for e in self.item("ad_smtp_virtual_servers") or [] if marker in e["dn"].lower()}

    def routing_group_connectors(self) -> list[dict]:
        """The organisation's routing group connectors in AD, as this host read them (knowledge
        collect.ad_routing_group_connectors), each as connector_of gives it, in the order AD gave them."""
        return [connector_of(e) for e in self.item("ad_routing_group_connectors") or []]


def connector_of(entry: dict) -> dict:
    """{"name", "dn", "source": [server], "target": [server]}: a routing group connector's search entry, with the
    servers (NetBIOS names) behind its local and remote bridgehead DNs."""
    attrs = {k.lower(): v for k, v in (entry.get("attrs") or {}).items()}
    ends = {side: [s for s in (server_of_dn(dn) for dn in attrs.get(f"msexch{side}bridgeheadserversdn") or []) if s]
            for side in ("source", "target")}
    return {"name": str((attrs.get("cn") or [""])[0] or entry["dn"]), "dn": entry["dn"], **ends}


_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


def server_of_dn(dn: str) -> str | None:
    """The Exchange server a bridgehead DN names: the server object above CN=Protocols (a virtual server's DN, what
    Exchange writes), or the object right under CN=Servers (a server's own DN); None for anything else."""
    rdns = [(p.split("=", 1)[0].strip().lower(), p.split("=", 1)[1].strip() if "=" in p else "")
            for p in _UNESCAPED_COMMA.split(str(dn or ""))]
    for i, (kind, value) in enumerate(rdns[:-1]):
        if kind == "cn" and value.lower() == "protocols":
            return rdns[i + 1][1].upper() or None
    for i, (kind, value) in enumerate(rdns[1:], start=1):
        if kind == "cn" and value.lower() == "servers" and rdns[i - 1][0] == "cn":
            return rdns[i - 1][1].upper() or None
    return None
