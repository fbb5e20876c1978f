"""Where a queued message goes next, decided from raw state: AD, the metabase, the lab's DNS.

A queue file carries no envelope the lab can read (IIS keeps a queued
message's envelope in NTFS properties, which the lab does not model), so the
sender is the From: header and the recipients are the To: and Cc: headers.

A recipient's mailbox server is found the way Exchange's categorizer finds it
in Active Directory: an object whose ``mail`` or ``proxyAddresses``
(``SMTP:``/``smtp:``) is the address names its home server in
``msExchHomeServerName`` (``.../cn=Servers/cn=EXCH02``). A recipient whose
domain is a host's own FQDN (``someone@exch02.corp.example``) is on that host.

The next hop:

- An Exchange sender hands mail for a server of its own organisation (an
  msExchExchangeServer object in AD, Exchange 5.5 included) straight to that
  server: "Within a routing group, Exchange servers can exchange messages
  directly". The virtual server's smart host is for "outgoing messages for
  remote domains" (KB 821911), so it plays no part here.
- Mail for anything else goes over the first SMTP connector
  (msExchRoutingSMTPConnector) whose address space (``routingList``
  ``SMTP:*.example;1``) takes the domain, to the connector's smart host
  (``msExchSmtpSmartHost``, which ExBPA reads on connectors); a connector
  that uses DNS, or no connector, leaves it to the virtual server's smart
  host when ``SmartHostType`` says so (2 always, 1 when DNS fails; metabase
  reference cc739348); without one, to what the lab's DNS finds. Source
  bridgeheads and costs are not modelled: every server uses the connector. A Windows SMTP relay
  has no AD routing: its smart host, else the lab's DNS.
- Smart host entries follow KB 821911: ``;``-separated, an IP address only in
  brackets (``[10.1.1.1]``, "the DNS lookup is bypassed"), anything else is a
  name looked up in DNS, so ``10.9.9.9`` without brackets resolves to nothing.
- The lab's DNS knows its hosts' names and FQDNs, and, standing in for the
  MX records an organisation publishes, the mailbox servers of the recipients
  in AD. It has no records for the outside world: mail for a domain no lab
  host serves has no route and waits in the queue until it expires.

Call everything here under ``fleet.lock``.
"""
from __future__ import annotations

import email.parser
import email.utils
import ipaddress
import re
from dataclasses import dataclass

from lab.smtp.behaviour import is_exchange_55, vs_directory, vs_property
from lab.state import EXCHANGE_SETUP_KEY, FleetState, HostState

EXCHANGE_SERVER_CLASS = "msExchExchangeServer"
SMTP_CONNECTOR_CLASS = "msExchRoutingSMTPConnector"
_HEADERS = email.parser.BytesHeaderParser()


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class NextHop:
    """Where one recipient's copy goes from this sender."""

    name: str  # the link's name: the next hop's FQDN, or the smart host entry as configured
    host: str | None  # the lab host that answers there; None when nothing in the lab does
    address: str | None  # where to connect; None when the name does not resolve
    local: bool = False  # the recipient's mailbox (or drop folder) is on the sender itself

    @property
    def routable(self) -> bool:
        return self.address is not None or self.local


def envelope(message: bytes) -> Envelope:
    headers = _HEADERS.parsebytes(message)
    sender = next((a for _, a in email.utils.getaddresses(headers.get_all("From", []))), "")
    recipients = [a for _, a in email.utils.getaddresses(headers.get_all("To", []) + headers.get_all("Cc", [])) if "@" in a]
    return Envelope(sender, tuple(dict.fromkeys(recipients)))


def is_exchange_2003(host: HostState) -> bool:
    """Exchange 2000/2003 on IIS SMTP (Exchange 5.5 has the Setup key too, but its IMS instead of SMTPSVC)."""
    return host.registry.key_exists(EXCHANGE_SETUP_KEY) and not is_exchange_55(host)


def _server_name(legacy_dn: str) -> str:
    """cn=EXCH02 at the end of /o=Corp/ou=.../cn=Servers/cn=EXCH02."""
    return legacy_dn.rstrip("/").rsplit("/", 1)[-1].partition("=")[2]


def mailbox_server(fleet: FleetState, address: str) -> HostState | None:
    """The lab host holding the recipient: its home server in AD, or the host whose FQDN is its domain."""
    low = address.lower()
    for _dn, attrs in fleet.ad.search(""):
        mails = [str(m).lower() for m in attrs.get("mail", [])]
        proxies = [str(p).lower()[5:] for p in attrs.get("proxyAddresses", []) if str(p).lower().startswith("smtp:")]
        home = attrs.get("msExchHomeServerName")
        if home and low in mails + proxies:
            return fleet.host_by_name_or_fqdn(_server_name(str(home[0])))
    return fleet.host_by_name_or_fqdn(low.rpartition("@")[2])


def exchange_servers(fleet: FleetState) -> set[str]:
    """Lower-case names of the organisation's Exchange servers (cn of each msExchExchangeServer object)."""
    return {str(attrs.get("cn", [""])[0]).lower() for _dn, attrs in fleet.ad.search("", EXCHANGE_SERVER_CLASS)}


def _domain_matches(space: str, domain: str) -> bool:
    space = space.lower()
    if space == "*":
        return True
    if space.startswith("*."):
        return domain == space[2:] or domain.endswith(space[1:])
    return domain == space


def connector_smart_host(fleet: FleetState, domain: str) -> tuple[bool, str | None]:
    """(a connector takes the domain, its smart host or None for DNS)."""
    for _dn, attrs in fleet.ad.search("", SMTP_CONNECTOR_CLASS):
        for entry in attrs.get("routingList", []):
            kind, _, rest = str(entry).partition(":")
            if kind.upper() == "SMTP" and _domain_matches(rest.split(";")[0].strip(), domain):
                smart = attrs.get("msExchSmtpSmartHost")
                return True, (str(smart[0]) if smart else None)
    return False, None


def _lab_dns(fleet: FleetState, name: str) -> HostState | None:
    return fleet.host_by_name_or_fqdn(name.rstrip("."))


def resolve_smart_host(fleet: FleetState, value: str) -> NextHop:
    """The first entry of a smart host setting that resolves (KB 821911's syntax)."""
    entries = [e.strip() for e in re.split(r"[;,]", value) if e.strip()]
    for entry in entries:
        if entry.startswith("[") and entry.endswith("]"):
            literal = entry[1:-1]
            try:
                ipaddress.ip_address(literal)
            except ValueError:
                continue
            host = fleet.host_by_address(literal)
            return NextHop(entry, host.name if host else None, literal)
        host = _lab_dns(fleet, entry)  # an unbracketed IP address is a name here, and resolves to nothing
        if host is not None:
            return NextHop(entry, host.name, host.address)
    return NextHop(entries[0] if entries else value, None, None)


def local_folder(host: HostState, metabase: dict | None, recipient: str) -> str:
    """Where mail for a recipient on this very host ends: an Exchange server's store, which the lab keeps as a
    folder per mailbox (a stand-in for priv1.edb that no snapshot reads), or a Windows SMTP server's DropDirectory."""
    if is_exchange_2003(host):
        value = host.registry.get(EXCHANGE_SETUP_KEY, "Services")
        root = str(value.data) if value is not None else r"C:\Program Files\Exchsrvr"
        return f"{root}\\mdbdata\\Mailbox Store ({host.name})\\{recipient.partition('@')[0]}"
    return vs_directory(host, metabase, "DropDirectory")


def _direct(host: HostState) -> NextHop:
    return NextHop(host.fqdn, host.name, host.address)


def next_hop(fleet: FleetState, sender: HostState, metabase: dict | None, recipient: str) -> NextHop:
    domain = recipient.rpartition("@")[2].lower()
    final = mailbox_server(fleet, recipient)
    if final is sender:
        return NextHop(sender.fqdn, sender.name, sender.address, local=True)
    if is_exchange_2003(sender):
        if final is not None and final.name.lower() in exchange_servers(fleet):
            return _direct(final)
        _found, smart = connector_smart_host(fleet, domain)
        if smart:
            return resolve_smart_host(fleet, smart)
    smart_host = vs_property(metabase, "SmartHost", inherit=True)
    smart_type = str(vs_property(metabase, "SmartHostType", inherit=True) or "0").strip()
    if smart_host and smart_type == "2":
        return resolve_smart_host(fleet, smart_host)
    if final is not None:
        return _direct(final)
    if smart_host and smart_type == "1":  # "direct delivery through DNS lookup first; if DNS fails ... the smart host"
        return resolve_smart_host(fleet, smart_host)
    return NextHop(domain, None, None)
