"""What a host's SMTP software says, derived from the host's raw Windows state.

Nothing here knows about causes. The listener asks two questions: does
anything answer on port 25 (``listen_mode``), and, for one connection, what
do the banner and the EHLO reply look like (``session_profile``). Both are
answered from services, registry, MetaBase.xml, the Windows Firewall
settings and the running configs of network devices on the path, so a
detector that reads the same raw state reaches the same conclusion.

Call both under ``fleet.lock``.
"""
from __future__ import annotations

import email.utils
import enum
from dataclasses import dataclass
from datetime import datetime, timezone

from lab import firewall
from lab.metabase import MetabaseCorrupt, parse
from lab.network import segment_of
from lab.smtp.inspection import SMTP_PORT, inspects_smtp
from lab.state import EXCHANGE_SETUP_KEY, FleetState, HostState

IMS_SERVICE = "MSExchangeIMC"  # Exchange 5.5 Internet Mail Service
IIS_SMTP_SERVICE = "SMTPSVC"  # Windows SMTP, which Exchange 2000/2003 extends

VIRTUAL_SERVER = "/lm/smtpsvc/1"
SMTP_SERVICE_NODE = "/lm/smtpsvc"
# Schema default of SmtpInboundCommandSupportOptions (IIS 6 SDK ms524928).
DEFAULT_INBOUND_OPTIONS = 7697601

# Verbs that SmtpInboundCommandSupportOptions switches, in the order IIS
# advertises them (KB 257569). ENHANCEDSTATUSCODES is a bit in the product
# too, but the lab always advertises it.
_TURN, _ETRN, _DSN = 1024, 128, 64
_CHUNKING, _BINARYMIME, _8BITMIME = 1048576, 2097152, 4194304

# Extensions the Exchange 2003 transport sinks add to IIS SMTP (TechNet bb124688).
_EXCHANGE_AUTH_VERBS = ("X-EXPS GSSAPI NTLM LOGIN", "X-EXPS=LOGIN")
_EXCHANGE_ROUTING_VERBS = ("X-LINK2STATE", "XEXCH50")

IMS_EHLO_VERBS = ("XEXCH50", "HELP", "ETRN", "DSN", "SIZE 0", "AUTH LOGIN", "AUTH=LOGIN")

# smtpsvc.dll file version by Windows kernel version: what the banner shows.
_IIS_SMTP_VERSION = {"5.0": "5.0.2195.6713", "5.2": "6.0.3790.3959"}


class ListenMode(enum.Enum):
    REFUSED = "refused"  # the SMTP service is stopped: nothing listens
    FILTERED = "filtered"  # Windows Firewall drops SYNs to TCP 25
    NORMAL = "normal"


@dataclass(frozen=True)
class SessionProfile:
    """How the SMTP software on one host treats one client connection."""

    fqdn: str
    banner: str | None  # the full 220 line; None = the server never greets
    ehlo_verbs: tuple[str, ...]  # the EHLO reply lines after "Hello [ip]"
    chunking: bool  # BDAT accepted
    queue_dir: str  # where accepted messages are written
    greylist_delay: float | None  # seconds, when the host greylists
    inspected_by: tuple[str, ...]  # devices on the path doing SMTP inspection
    software_version: str  # for the Received: header
    resets_on: tuple[str, ...] = ()  # verbs answered by resetting the connection (smtp_engine.resets_on)

    @property
    def inspected(self) -> bool:
        return bool(self.inspected_by)


def is_exchange_55(host: HostState) -> bool:
    return host.service(IMS_SERVICE) is not None


def smtp_service_name(host: HostState) -> str:
    """The service that owns port 25: the IMS on Exchange 5.5, else SMTPSVC."""
    return IMS_SERVICE if is_exchange_55(host) else IIS_SMTP_SERVICE


def listen_mode(host: HostState) -> ListenMode:
    service = host.service(smtp_service_name(host))
    if service is None or service.state != "running":
        return ListenMode.REFUSED
    if not firewall.allows(host.registry, SMTP_PORT):
        return ListenMode.FILTERED
    return ListenMode.NORMAL





def read_metabase(host: HostState) -> dict[str, dict[str, str]] | None:
    """Parsed MetaBase.xml, or None when it is missing or corrupt."""
    f = host.files.read(host.metabase_path)
    if f is None:
        return None
    try:
        return parse(f.data.decode("utf-8", errors="replace"))
    except MetabaseCorrupt:
        return None


def vs_property(metabase: dict | None, name: str, inherit: bool = False) -> str | None:
    """A property of virtual server 1, optionally inherited from /LM/SmtpSvc."""
    if metabase is None:
        return None
    nodes = (VIRTUAL_SERVER, SMTP_SERVICE_NODE) if inherit else (VIRTUAL_SERVER,)
    for node in nodes:
        props = metabase.get(node) or {}
        for key, value in props.items():
            if key.lower() == name.lower():
                return value
    return None


# Where virtual server 1 keeps its folders when the metabase does not say: Exchange moves them under
# Exchsrvr\Mailroot\vsi 1 (ESM help "Mailroot Directory and Default Directories"), Windows SMTP keeps
# them under Inetpub\mailroot (KB 934709).
_EXCHANGE_MAILROOT = r"C:\Program Files\Exchsrvr\Mailroot\vsi 1"
_IIS_MAILROOT = r"C:\Inetpub\mailroot"
_FOLDERS = {"QueueDirectory": "Queue", "BadMailDirectory": "BadMail", "DropDirectory": "Drop",
            "PickupDirectory": "PickUp"}


def vs_directory(host: HostState, metabase: dict | None, name: str) -> str:
    """Virtual server 1's QueueDirectory, BadMailDirectory, DropDirectory or PickupDirectory."""
    root = _EXCHANGE_MAILROOT if host.registry.key_exists(EXCHANGE_SETUP_KEY) else _IIS_MAILROOT
    return (vs_property(metabase, name) or root + "\\" + _FOLDERS[name]).rstrip("\\")


def _inbound_options(metabase: dict | None) -> int:
    raw = vs_property(metabase, "SmtpInboundCommandSupportOptions", inherit=True)
    try:
        return int(raw, 0) if raw is not None else DEFAULT_INBOUND_OPTIONS
    except ValueError:
        return DEFAULT_INBOUND_OPTIONS


def _rfc822_now() -> str:
    return email.utils.format_datetime(datetime.now(timezone.utc))


def _iis_profile(host: HostState) -> dict:
    metabase = read_metabase(host)
    version = _IIS_SMTP_VERSION.get(str(host.os.get("version", "5.2"))[:3], _IIS_SMTP_VERSION["5.2"])
    custom = vs_property(metabase, "ConnectResponse")
    if custom is None:
        banner = f"220 {host.fqdn} Microsoft ESMTP MAIL Service, Version: {version} ready at {_rfc822_now()}"
    else:
        # KB 281224: an empty ConnectResponse leaves the server mute.
        banner = f"220 {custom}" if custom.strip() else None

    options = _inbound_options(metabase)
    exchange = host.registry.key_exists(EXCHANGE_SETUP_KEY)
    # Exchange's SMTP sinks register through the metabase; when it does not
    # parse they are not loaded and their verbs vanish (TechNet bb124688).
    sinks_loaded = exchange and metabase is not None

    def bit(mask: int, verb: str) -> tuple[str, ...]:
        return (verb,) if options & mask else ()

    verbs = (
        *bit(_TURN, "TURN"), "SIZE", *bit(_ETRN, "ETRN"), "PIPELINING", *bit(_DSN, "DSN"),
        "ENHANCEDSTATUSCODES", *bit(_8BITMIME, "8bitmime"), *bit(_BINARYMIME, "BINARYMIME"),
        *bit(_CHUNKING, "CHUNKING"), "VRFY",
        *(_EXCHANGE_AUTH_VERBS if sinks_loaded else ()),
        "AUTH GSSAPI NTLM LOGIN", "AUTH=LOGIN",
        *(_EXCHANGE_ROUTING_VERBS if sinks_loaded else ()),
        "OK",
    )
    return {
        "banner": banner,
        "ehlo_verbs": verbs,
        "chunking": bool(options & _CHUNKING),
        "queue_dir": vs_directory(host, metabase, "QueueDirectory"),
        "software_version": f"Microsoft SMTPSVC({version})",
    }


def _ims_profile(host: HostState) -> dict:
    value = host.registry.get(EXCHANGE_SETUP_KEY, "ServicePackBuild")
    build = value.data if value is not None else host.os.get("build", "2653")
    return {
        "banner": f"220 {host.fqdn} ESMTP Server (Microsoft Exchange Internet Mail Service 5.5.{build}) ready",
        "ehlo_verbs": IMS_EHLO_VERBS,
        "chunking": False,
        # The IMS works on inbound mail in its own IMCData folder, not an IIS queue.
        "queue_dir": r"C:\exchsrvr\IMCData\In",
        "software_version": f"Internet Mail Service (5.5.{build})",
    }


def _greylist_delay(host: HostState) -> float | None:
    config = (host.smtp_engine or {}).get("greylisting")
    if not config:
        return None
    return float(config.get("delay_seconds", 300))


def session_profile(fleet: FleetState, host: HostState, client_ip: str) -> SessionProfile:
    software = _ims_profile(host) if is_exchange_55(host) else _iis_profile(host)
    client = fleet.host_by_address(client_ip)
    devices = fleet.devices_on_path(client.name, host.name) if client is not None else []
    return SessionProfile(
        fqdn=host.fqdn,
        greylist_delay=_greylist_delay(host),
        resets_on=tuple(str(v).upper() for v in (host.smtp_engine or {}).get("resets_on") or ()),
        inspected_by=tuple(dev.get("name", "?") for dev in devices
                           if inspects_smtp(dev, segment_of(dev, client.name), segment_of(dev, host.name))),
        **software,
    )
