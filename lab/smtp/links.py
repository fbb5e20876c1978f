"""What an Exchange 2003 server shows of its outgoing queues: Exchange_SMTPLink/Exchange_SMTPQueue and Event 4006.

The delivery engine keeps these raw objects in step with its links, as the
queue provider and the transport would, so a snapshot reads them the way it
reads a real server's:

- ``root\\MicrosoftExchangeV2`` ``Exchange_SMTPLink``, one per next hop with
  mail: the keys (LinkId, LinkName, ProtocolName, VirtualMachine,
  VirtualServerName; SDK aa143720), StateFlags with the bits StateActive 0x1
  (aa144705), StateReady 0x2 (aa144708), StateRetry 0x4 and StateRemote 0x10
  (ExchangeLink, domain-facts section 11) and their boolean properties,
  NumberOfMessages, OldestMessage (aa144700) and NextScheduledConnection
  (CIM_DATETIME). The last two names and StateRetry on the V2 class are
  inferred, not confirmed. ExtendedStateInfo ("Additional queue information")
  is never written: which property carries that text is not confirmed.
- ``Exchange_SMTPQueue``, one per link with the same LinkId (aa143751).
- A link whose mail has all left is removed with its queue. Links a scenario
  declares for a next hop the engine never had mail for are left as they are.
- Event 4006, MSExchangeTransport, Connection Manager, Warning, with KB
  919091's text: "The connection was dropped by the remote host <IP>,
  <name>; the semaphore timeout period has expired." It is written when a
  connected session's reply wait runs out, the failure that text names; a
  refused or timed-out connect, a name that does not resolve or a 4xx reply
  are other failures and log no 4006.

Call everything here under ``fleet.lock``.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from lab.smtp.schedule import cim, iso
from lab.state import HostState

NAMESPACE = "root\\MicrosoftExchangeV2"
STATE_ACTIVE, STATE_READY, STATE_RETRY, STATE_REMOTE = 0x1, 0x2, 0x4, 0x10
EVENT_4006 = ("The connection was dropped by the remote host {address}, {name}; "
              "the semaphore timeout period has expired.")


def _guid() -> str:
    return "{" + str(uuid.uuid4()).upper() + "}"


def _classes(host: HostState) -> dict[str, list[dict]]:
    name = next((k for k in host.wmi if k.lower() == NAMESPACE.lower()), NAMESPACE)
    ns = host.wmi.setdefault(name, {})
    for cls in ("Exchange_SMTPLink", "Exchange_SMTPQueue"):
        if not any(k.lower() == cls.lower() for k in ns):
            ns[cls] = []
    return {cls: next(v for k, v in ns.items() if k.lower() == cls.lower())
            for cls in ("Exchange_SMTPLink", "Exchange_SMTPQueue")}


def _find(instances: list[dict], link_name: str) -> dict | None:
    return next((i for i in instances if str(i.get("LinkName", "")).lower() == link_name.lower()), None)


def show_link(host: HostState, name: str, *, messages: int, oldest: datetime, retry: bool, active: bool,
              next_attempt: datetime | None) -> None:
    classes = _classes(host)
    link = _find(classes["Exchange_SMTPLink"], name)
    if link is None:
        link = {"LinkId": _guid(), "LinkName": name, "ProtocolName": "SMTP", "VirtualMachine": host.name,
                "VirtualServerName": "1"}
        classes["Exchange_SMTPLink"].append(link)
    if _find(classes["Exchange_SMTPQueue"], name) is None:
        classes["Exchange_SMTPQueue"].append({
            "LinkId": link["LinkId"], "LinkName": name, "ProtocolName": "SMTP", "QueueId": _guid(), "QueueName": name,
            "VirtualMachine": host.name, "VirtualServerName": link.get("VirtualServerName", "1")})
    flags = STATE_REMOTE | (STATE_RETRY if retry else STATE_READY) | (STATE_ACTIVE if active else 0)
    link.update(StateFlags=flags, StateActive=active, StateReady=not retry, StateRetry=retry,
                NumberOfMessages=messages, OldestMessage=cim(oldest))
    if retry and next_attempt is not None:
        link["NextScheduledConnection"] = cim(next_attempt)
    else:
        link.pop("NextScheduledConnection", None)
    queue = _find(classes["Exchange_SMTPQueue"], name)
    queue["NumberOfMessages"] = messages


def shows_retry(host: HostState, name: str) -> bool:
    link = _find(_classes(host)["Exchange_SMTPLink"], name)
    return link is not None and isinstance(link.get("StateFlags"), int) and bool(link["StateFlags"] & STATE_RETRY)


def drop_link(host: HostState, name: str) -> None:
    classes = _classes(host)
    for cls in classes.values():
        cls[:] = [i for i in cls if str(i.get("LinkName", "")).lower() != name.lower()]


def log_4006(host: HostState, address: str, name: str, when: datetime) -> None:
    host.events.append({"log": "Application", "source": "MSExchangeTransport", "event_id": 4006, "type": "Warning",
                        "category": "Connection Manager", "time": iso(when),
                        "message": EVENT_4006.format(address=address, name=name)})
