"""IIS 6 MetaBase.xml as text, the way the lab stores it.

The lab keeps the metabase as the file a Windows Server 2003 box has at
%SystemRoot%\\system32\\inetsrv\\MetaBase.xml. Scenarios may describe it as
locations and properties (rendered here) or give the raw text (which may be
corrupt on purpose). Readers parse it the way IIS would refuse it: text that
is not well-formed XML, or has no /LM/SmtpSvc node, is corrupt.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

NS = "urn:microsoft-catalog:XML_Metabase_V64_0"

# Tag names IIS 6 uses for the locations the lab cares about.
_TAG_BY_DEPTH = {
    "/lm": "IIsComputer",
    "/lm/smtpsvc": "IIsSmtpService",
}


def _tag_for(location: str) -> str:
    low = location.lower().rstrip("/")
    if low in _TAG_BY_DEPTH:
        return _TAG_BY_DEPTH[low]
    parts = low.split("/")
    if len(parts) == 4 and parts[2] == "smtpsvc":
        return "IIsSmtpServer"
    return "IIsConfigObject"


def render(locations: dict[str, dict], major_version: int = 1) -> str:
    """MetaBase.xml text for {location: {property: value}}."""
    lines = [
        '<?xml version ="1.0"?>',
        f'<configuration xmlns="{NS}">',
        "<MBProperty>",
        f'<IIS_Global Location ="." HistoryMajorVersionNumber="{major_version}" SessionKey="lab" />',
    ]
    for location in sorted(locations, key=str.lower):
        props = locations[location] or {}
        attrs = "".join(f"\n\t\t{k}={quoteattr(str(v))}" for k, v in props.items())
        lines.append(f"<{_tag_for(location)}\tLocation ={quoteattr(location)}{attrs}\n\t>")
        lines.append(f"</{_tag_for(location)}>")
    lines += ["</MBProperty>", "</configuration>", ""]
    return "\r\n".join(lines)


class MetabaseCorrupt(ValueError):
    pass


def parse(text: str) -> dict[str, dict[str, str]]:
    """{location (lower case): {property: value, '_tag': tag, '_location': original}}."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise MetabaseCorrupt(f"MetaBase.xml is not well-formed: {exc}") from exc
    out: dict[str, dict[str, str]] = {}
    for el in root.iter():
        loc = el.attrib.get("Location")
        if loc is None:
            continue
        loc = loc.strip()
        props = {k: v for k, v in el.attrib.items() if k != "Location"}
        props["_tag"] = el.tag.split("}", 1)[-1]
        props["_location"] = loc
        out[loc.lower()] = props
    if "/lm/smtpsvc" not in out:
        raise MetabaseCorrupt("MetaBase.xml has no /LM/SmtpSvc node")
    return out


def set_property(text: str, location: str, prop: str, value: str | None) -> str:
    """Return new MetaBase.xml text with one property set (None removes it)."""
    # "." is IIS_Global (history bookkeeping), which render() writes itself.
    locations = {v["_location"]: {k: p for k, p in v.items() if not k.startswith("_")}
                 for v in parse(text).values() if v["_location"] != "."}
    key = next((k for k in locations if k.lower() == location.lower()), location)
    props = locations.setdefault(key, {})
    existing = next((k for k in props if k.lower() == prop.lower()), None)
    if value is None:
        if existing:
            del props[existing]
    else:
        props[existing or prop] = value
    major = 1
    try:
        root = ET.fromstring(text)
        for el in root.iter():
            if el.attrib.get("Location", "").strip() == ".":
                major = int(el.attrib.get("HistoryMajorVersionNumber", "1")) + 1
    except (ET.ParseError, ValueError):
        pass
    return render(locations, major_version=major)
