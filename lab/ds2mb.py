"""Exchange 2003 DS2MB: copy SMTP virtual server settings from AD to the metabase.

On an Exchange server the SMTP virtual server settings live in Active
Directory; System Attendant's DS2MB process copies them into the IIS
metabase when SMTP starts, overwriting whatever was edited in the metabase
directly (research: domain-facts.md section 1c, quoting the ExBPA rule "In
Exchange Server 2003, the DS2MB process is responsible for updating the
values in the metabase by copying the values from Active Directory", and
section 4). A metabase-only edit of an AD-owned property therefore reverts
at the next SMTP service start; properties AD does not own survive.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from lab import metabase
from lab.state import EXCHANGE_SETUP_KEY, FleetState, HostState


# AD attribute on the protocolCfgSMTPServer object -> metabase property at
# /LM/SmtpSvc/<n>. Sources, all in domain-facts.md:
#   SmartHost, SmartHostType: section 4 (metabase reference IDs 36906/36905;
#     ExBPA reads msExchSmtpSmartHost; that DS2MB copies these two is inferred
#     there, stated for the directories).
#   SmtpInboundCommandSupportOptions: section 1c (KB 257569, techtarget tip,
#     ExBPA rule on DS2MB).
#   Queue/BadMail/Pickup directories: section 4 (Exchange 2000 Operations
#     guide: System Attendant copies the VS paths from AD into the metabase)
#     and section 13 (attribute names).
AD_TO_METABASE: dict[str, str] = {
    "msExchSmtpSmartHost": "SmartHost",
    "msExchSmtpSmartHostType": "SmartHostType",
    "msExchSmtpInboundCommandSupportOptions": "SmtpInboundCommandSupportOptions",
    "msExchSmtpQueueDirectory": "QueueDirectory",
    "msExchSmtpBadMailDirectory": "BadMailDirectory",
    "msExchSmtpPickupDirectory": "PickupDirectory",
}

SMTP_VS_CLASS = "protocolCfgSMTPServer"

# Lab assumption: the source (MSExchangeMU, the metabase update agent named in
# domain-facts.md section 4) is real; this event id and text are invented for
# the lab, no real DS2MB failure event was found.
DS2MB_FAILED_EVENT_ID = 1029

_MAJOR_VERSION = re.compile(r'<IIS_Global\b[^>]*\bHistoryMajorVersionNumber="(\d+)"')


def is_exchange_2003(host: HostState) -> bool:
    # Exchange 5.5 has this key too (Q147374), but no protocolCfgSMTPServer
    # objects in AD, so DS2MB finds nothing to copy there.
    return host.registry.key_exists(EXCHANGE_SETUP_KEY)


def smtp_virtual_servers(fleet: FleetState, host: HostState) -> dict[str, dict[str, list]]:
    """{instance number: AD attributes} for the host's SMTP virtual servers.

    Their DNs read CN=<n>,CN=SMTP,CN=Protocols,CN=<server>,CN=Servers,...
    under the configuration naming context of the forest root, taken to be
    the host's own domain (a single-domain forest, as in the lab).
    """
    # The server object's CN is the computer name; the inventory name is
    # accepted too, as lab scenarios name server objects after it.
    server_names = {host.name.lower(), str(host.os.get("computer_name") or host.name).lower()}
    found = {}
    for dn, attrs in fleet.ad.search(_forest_root_dn(host), SMTP_VS_CLASS):
        # DNs here carry no escaped commas (Exchange names them plainly).
        rdns = [part.strip() for part in dn.split(",")]
        if len(rdns) < 5:
            continue
        names = [rdn.partition("=")[2] for rdn in rdns[:5]]
        kinds = [name.lower() for name in names[1:5]]
        if kinds[0] == "smtp" and kinds[1] == "protocols" and kinds[2] in server_names and kinds[3] == "servers":
            found[names[0]] = attrs
    return found


def run_ds2mb(fleet: FleetState, host: HostState) -> bool:
    """Copy AD-owned SMTP settings into the host's MetaBase.xml.

    Returns True when MetaBase.xml was rewritten. Does nothing on a host
    without Exchange 2003. A missing or corrupt MetaBase.xml is left as it is
    and an Application event is logged, since DS2MB cannot write it.
    """
    with fleet.lock:
        if not is_exchange_2003(host):
            return False
        servers = smtp_virtual_servers(fleet, host)
        if not servers:
            return False
        current = host.files.read(host.metabase_path)
        try:
            if current is None:
                raise metabase.MetabaseCorrupt("MetaBase.xml is missing")
            text = current.data.decode("utf-8")
            locations = metabase.parse(text)
        except (metabase.MetabaseCorrupt, UnicodeDecodeError) as exc:
            _log_failure(host, str(exc))
            return False

        changed = False
        for instance, attrs in sorted(servers.items()):
            props = _properties_at(locations, f"/LM/SmtpSvc/{instance}")
            for attribute, prop in AD_TO_METABASE.items():
                changed |= _apply(props, prop, _ad_value(attrs, attribute))
        if not changed:
            return False  # IIS writes MetaBase.xml only when something changed

        major = _major_version(text)
        now = _timestamp()
        # IIS 6 history (domain-facts.md section 5): the replaced file is kept
        # as History\MetaBase_<major>_<minor>.xml, both zero-padded to 10
        # digits. The lab keeps one minor version and does not prune to
        # MaxHistoryFiles (default 10); no MBSchema.xml pair is written.
        history = f"{host.system_root}\\system32\\inetsrv\\History\\MetaBase_{major:010d}_0000000000.xml"
        host.files.write(history, current.data, current.mtime)
        # One render for the whole run, so one save means one new major
        # version (metabase.set_property re-renders, and bumps, per property).
        plain = {loc["_location"]: _without_bookkeeping(loc) for key, loc in locations.items() if key != "."}
        host.files.write(host.metabase_path, metabase.render(plain, major_version=major + 1), now)
        return True


def _forest_root_dn(host: HostState) -> str:
    domain = host.os.get("domain") or host.fqdn.partition(".")[2]
    return ",".join(f"DC={label}" for label in domain.split(".") if label)


def _ad_value(attrs: dict[str, list], attribute: str) -> str | None:
    """The single value of a (single-valued) AD attribute, as metabase text."""
    values = next((v for k, v in attrs.items() if k.lower() == attribute.lower()), None)
    if not values:
        return None
    return str(values[0])


def _properties_at(locations: dict[str, dict[str, str]], location: str) -> dict[str, str]:
    """The property dict of a location, created when DS2MB adds a new VS."""
    key = location.lower()
    if key not in locations:
        locations[key] = {"_tag": "IIsSmtpServer", "_location": location}
    return locations[key]


def _apply(props: dict[str, str], prop: str, value: str | None) -> bool:
    """Set (or with None, remove) prop, matching its name case-insensitively."""
    existing = next((k for k in props if k.lower() == prop.lower()), None)
    if value is None:
        if existing is None:
            return False
        del props[existing]
        return True
    if existing is not None and props[existing] == value:
        return False
    props[existing or prop] = value
    return True


def _without_bookkeeping(props: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in props.items() if not k.startswith("_")}


def _major_version(text: str) -> int:
    match = _MAJOR_VERSION.search(text)
    return int(match.group(1)) if match else 1


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log_failure(host: HostState, reason: str) -> None:
    host.events.append(
        {
            "log": "Application",
            "source": "MSExchangeMU",
            "event_id": DS2MB_FAILED_EVENT_ID,
            "type": "Error",
            "category": "General",
            "time": _timestamp(),
            "message": (
                "The metabase update agent could not write the SMTP virtual server "
                f"settings to {host.metabase_path}: {reason}"
            ),
        }
    )
