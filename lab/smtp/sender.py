"""The SMTP client side of a lab host: what its software does to an outgoing session, from raw state.

Every behaviour here is read off the sender's own registry, WMI and
``smtp_engine`` the way behaviour.py reads the receiver's, and every one of
them breaks the session the way KB 919091 says: the end of the message never
reaches the peer as a line of its own, the peer waits, and the sender's reply
wait runs out ("the semaphore timeout period has expired").

- Symantec AntiVirus Internet E-mail Auto-Protect (KB 919091 cause 1): a
  Win32_SoftwareFeature of a Symantec AntiVirus product captioned "Internet
  E-mail Auto-Protect" with InstallState 3 (local) or 4 (source) proxies the
  server's own SMTP ("should never be run on any SMTP based Email servers").
  The lab does not know how the proxy breaks the session; it holds back the
  end of the message. After ``msiexec REMOVE=`` (InstallState 2) it is gone;
  the reboot the filter driver would want is not modelled.
- Symantec Mail Security heuristics (KB 919091 cause 3: "causes the
  terminating period to appear at the end of the message text"): with
  ``HKLM\\SOFTWARE\\Symantec\\SMSMSE\\<version>\\Server\\EnableBloodhound`` = 1
  (the lab's assumption of where SMSMSE keeps it, as in its template) the
  final "." is sent on the last text line.
- Summary TNEF (KB 919091 cause 2): Exchange 2003 renders mail for a server
  of its organisation as S-TNEF, sent as BODY=BINARYMIME over BDAT where the
  peer offers BINARYMIME and CHUNKING (KB 323483, KB 259890). A peer that
  offers neither (an Exchange 5.5 IMS) gets the binary body over DATA, which
  "do[es] not follow the CRLF.CRLF line termination semantics" (KB 323483):
  the lab sends it without a line of its own for the ".". What KB 254089
  changes to force TNEF instead is not known (its registry entries were never
  found), so a scenario names it: ``smtp_engine.tnef_forced_by``, a list of
  registry values (``{key, name, data}``) or AD attributes (``{dn, attribute,
  value}``) that must all hold, as the inventory's ``mailflow_stnef_setting``
  names them for the collection. Without it nothing forces TNEF.
"""
from __future__ import annotations

from dataclasses import dataclass

from lab.smtp.routing import exchange_servers, is_exchange_2003
from lab.state import FleetState, HostState

SAV_PRODUCT_PREFIXES = ("symantec antivirus", "norton antivirus")
SAV_EMAIL_FEATURE = "internet e-mail auto-protect"
_INSTALLED = (3, 4)  # Win32_SoftwareFeature.InstallState Local, Source (MSDN aa394458)
SMSMSE_ROOT = r"HKLM\SOFTWARE\Symantec\SMSMSE"


@dataclass(frozen=True)
class SenderProfile:
    """What the sender's software does to one session toward one next hop."""

    helo: str
    stnef: bool  # renders S-TNEF for this peer (an Exchange server of the organisation), TNEF not forced
    holds_end_of_data: bool  # a local proxy (SAV Internet E-mail Auto-Protect) keeps the end of the message
    period_on_last_line: bool  # SMSMSE heuristics: the terminating period ends the last text line
    logs_4006: bool  # Exchange's transport logs MSExchangeTransport 4006 (a plain Windows SMTP relay does not)


def _sav_email_proxy(host: HostState) -> bool:
    cimv2 = next((v for k, v in host.wmi.items() if k.lower() == "root\\cimv2"), {})
    features = next((v for k, v in cimv2.items() if k.lower() == "win32_softwarefeature"), [])
    return any(str(f.get("Caption", "")).lower() == SAV_EMAIL_FEATURE
               and str(f.get("ProductName", "")).lower().startswith(SAV_PRODUCT_PREFIXES)
               and f.get("InstallState") in _INSTALLED for f in features)


def _smsmse_heuristics(host: HostState) -> bool:
    for version in host.registry.subkeys(SMSMSE_ROOT):
        value = host.registry.get(f"{SMSMSE_ROOT}\\{version}\\Server", "EnableBloodhound")
        if value is not None and value.type == "REG_DWORD" and int(value.data) != 0:
            return True
    return False


def _entry_holds(fleet: FleetState, host: HostState, entry: dict) -> bool:
    if "dn" in entry:
        attrs = fleet.ad.get(entry["dn"]) or {}
        values = next((v for k, v in attrs.items() if k.lower() == str(entry.get("attribute", "")).lower()), None)
        want = entry.get("value")
        return values is not None and [str(v) for v in values] == [str(v) for v in (want if isinstance(want, list) else [want])]
    value = host.registry.get(entry.get("key", ""), entry.get("name", ""))
    return value is not None and str(value.data) == str(entry.get("data"))


def tnef_forced(fleet: FleetState, host: HostState) -> bool:
    entries = (host.smtp_engine or {}).get("tnef_forced_by") or []
    return bool(entries) and all(_entry_holds(fleet, host, e) for e in entries)


def profile(fleet: FleetState, host: HostState, peer: str | None) -> SenderProfile:
    """Call under fleet.lock."""
    exchange = is_exchange_2003(host)
    org_peer = peer is not None and peer.lower() in exchange_servers(fleet)
    return SenderProfile(
        helo=host.fqdn,
        stnef=exchange and org_peer and not tnef_forced(fleet, host),
        holds_end_of_data=_sav_email_proxy(host),
        period_on_last_line=_smsmse_heuristics(host),
        logs_4006=exchange,
    )
