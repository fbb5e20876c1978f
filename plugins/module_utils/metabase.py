"""Read an IIS 6 MetaBase.xml the way a detector needs it: locations and their properties.

IIS 6 writes one element per metabase key (IIsSmtpServer, IIsComputer, ...)
with a Location attribute and the key's properties as attributes; properties
without a friendly schema name are <Custom Name=".." Value=".."/> children
(TechNet "Metabase entries that apply to the SMTP service"; Windows Server 2003 Metabase Property Reference).
A file that is not well-formed XML is what KB 843093 calls a corrupt metabase.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

_SMTP_SERVER = re.compile(r"^/lm/smtpsvc/(\d+)$", re.I)


class MetabaseError(ValueError):
    pass


@dataclass
class Metabase:
    locations: dict[str, dict[str, str]] = field(default_factory=dict)  # lower-cased location -> properties
    classes: dict[str, str] = field(default_factory=dict)               # lower-cased location -> element name

    def get(self, location: str) -> dict[str, str] | None:
        return self.locations.get(location.lower())

    def smtp_virtual_servers(self) -> dict[str, dict[str, str]]:
        """{"1": props, ...} for every /LM/SmtpSvc/<n> instance, in instance order."""
        out = {}
        for loc, props in self.locations.items():
            m = _SMTP_SERVER.match(loc)
            if m:
                out[m.group(1)] = props
        return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(text: str) -> Metabase:
    """Parse MetaBase.xml text; MetabaseError says where it is broken."""
    if text is None or not text.strip():
        raise MetabaseError("MetaBase.xml is empty")
    try:
        root = ET.fromstring(text.lstrip("\ufeff"))
    except ET.ParseError as exc:
        raise MetabaseError(f"MetaBase.xml is not well-formed XML: {exc}") from None
    mb = Metabase()
    for elem in root.iter():
        loc = elem.attrib.get("Location")
        if loc is None:
            continue
        key = loc.strip().lower()
        props = {k: v for k, v in elem.attrib.items() if k != "Location"}
        for child in elem:
            if _local(child.tag) == "Custom" and "Name" in child.attrib:
                props[child.attrib["Name"]] = child.attrib.get("Value", "")
        mb.locations.setdefault(key, {}).update(props)
        mb.classes[key] = _local(elem.tag)
    if not mb.locations:
        raise MetabaseError("MetaBase.xml has no metabase keys (no element with a Location)")
    return mb
