"""One host's snapshot: the collection plan, and the decoded, versioned result.

Collect once, decide later: everything the detectors need from a host is asked
for in one request (one WinRM command), and the result is plain JSON that can
be saved and audited offline. Nothing here decides a cause.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import re
import secrets
import string
from datetime import datetime, timedelta, timezone
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import (
    FILE_CHUNK_BYTES, REG_KIND_TO_TYPE, Op, OpResult, RunnerError, file_data)

SCHEMA = "mailflow.snapshot/1"
MAX_PEERS = 2000  # a sanity bound on one request; fleets are far smaller


class PlanError(ValueError):
    pass


_SMTP_WORD = re.compile(r"[\x21-\x7e]{1,255}")


def _op_for(item_id: str, item: dict, since_iso: str) -> Op:
    op = item["op"]
    if op == "reg_read":
        return Op(op, (item["path"], str(item.get("depth", 0))))
    if op == "file_read":
        return Op(op, (item["path"], str(item.get("max_bytes", 1 << 20)), str(FILE_CHUNK_BYTES)))
    if op == "file_list":
        return Op(op, (item["path"], "1" if item.get("recurse") else "0", item.get("pattern", "*"), str(item.get("limit", 1000))))
    if op == "adsi_search":
        return Op(op, (item.get("base", ""), item["filter"], tuple(item.get("attrs", ()))))
    if op == "wmi_query":
        return Op(op, (item["namespace"], item["query"], tuple(item.get("props", ()))))
    if op == "eventlog":
        return Op(op, (item["log"], item.get("source", ""), tuple(str(i) for i in item.get("ids", ())), since_iso, str(item.get("max", 500))))
    if op == "service_query":
        return Op(op, (tuple(item["names"]),))
    if op == "msi_features":
        return Op(op, (like_to_wildcard(item["product_like"]),))
    if op == "tcp_connections":
        return Op(op, (str(item.get("remote_port", "")),))
    raise PlanError(f"knowledge collect.{item_id}: operation {op!r} cannot be used in a snapshot")


def probe_run_id() -> str:
    """A new probe sender's tag: 16 lower-case letters (no digits, '+' or '=' a greylister might fold away)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _unused in range(16))


def like_to_wildcard(pattern: str) -> str:
    """A WQL/SQL LIKE pattern (% _ and [x] escapes) as a PowerShell -like wildcard (* ? and [x])."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[":
            end = pattern.find("]", i + 2)
            if end > 0:
                inner = pattern[i + 1:end]
                out.append(inner if inner in ("%", "_") else f"[{inner}]")
                i = end + 1
                continue
        out.append({"%": "*", "_": "?", "*": "[*]", "?": "[?]"}.get(ch, ch))
        i += 1
    return "".join(out)


def is_address(name: str | None) -> bool:
    try:
        ipaddress.ip_address(str(name or "").strip("[]"))
        return True
    except ValueError:
        return False


def build_plan(knowledge: dict, peers: list[dict], helo: str, domain: str, now: datetime | None = None,
               run_id: str | None = None, org_reads: bool = True) -> list[tuple[str, Op]]:
    """[(item id, Op)]: every knowledge item, then one SMTP probe per peer.

    org_reads: also the items with `scope: org` (what is the same from every host, such as the org's list of
    Exchange servers in AD): a few hosts per run read them, not all (snapshot action, mailflow_ad_org_readers).

    peers: [{"name": inventory name, "target": fqdn or [ip]}]; helo: this host's FQDN; domain: its DNS domain.
    An empty helo or domain is left to the host, which fills in its own (an inventory that names hosts by
    address knows neither). run_id fills {run} in the probe's sender (default: a new one, so no earlier
    probe's triplet can have been whitelisted by a greylister).
    """
    if len(peers) > MAX_PEERS:
        raise PlanError(f"{len(peers)} peers is more than one snapshot probes ({MAX_PEERS})")
    if peers and "{run}" not in str(knowledge["probe"].get("mail_from", "")):
        raise PlanError("knowledge probe.mail_from must contain {run}: with one sender for every audit, a greylisting "
                        "peer whitelists the probe's triplet and the next audit no longer sees greylisting")
    run = run_id or probe_run_id()
    now = now or datetime.now(timezone.utc)
    plan: list[tuple[str, Op]] = []
    for item_id, item in knowledge["collect"].items():
        if item.get("scope") == "org" and not org_reads:
            continue
        days = int(item.get("days", 7))
        since = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        plan.append((item_id, _op_for(item_id, item, since)))
    probe = knowledge["probe"]
    for peer in peers:
        target = str(peer.get("target") or peer["name"])
        peer_domain = target.split(".", 1)[1] if "." in target and not is_address(target) else domain
        words = {"EHLO name": helo, "MAIL FROM": probe["mail_from"].format(domain=domain, peer_domain=peer_domain, run=run),
                 "RCPT TO": probe["rcpt_to"].format(domain=domain, peer_domain=peer_domain, run=run), "target": target}
        for what, text in words.items():
            # Each goes on an SMTP command line (or names the peer): a space or control character would end it
            # and start another command, and a read-only audit must never carry one.
            if text and not _SMTP_WORD.fullmatch(text):  # empty: left to the host, which fills in its own
                raise PlanError(f"the probe of {peer['name']}: its {what} {text[:80]!r} is not one printable word "
                                "(check mailflow_fqdn, ansible_host and knowledge probe.mail_from/rcpt_to)")
        plan.append(("probe:" + peer["name"], Op("tcp_probe", (
            target, str(peer.get("port", probe["port"])), str(peer.get("timeout_ms", probe["timeout_ms"])), helo,
            words["MAIL FROM"], words["RCPT TO"],
        ))))
    return plan


# -- decoding results into the snapshot


def reg_data(rtype: str, data: Any) -> Any:
    """Registry data as the snapshot keeps it: DWORD/QWORD unsigned, REG_BINARY as hex, REG_MULTI_SZ a list."""
    if rtype == "REG_DWORD" and isinstance(data, int):
        return data & 0xFFFFFFFF  # .NET hands DWORDs over as signed Int32
    if rtype == "REG_QWORD" and isinstance(data, int):
        return data & 0xFFFFFFFFFFFFFFFF
    if rtype == "REG_MULTI_SZ":
        return [] if data is None else list(data) if isinstance(data, list) else [str(data)]
    if rtype == "REG_BINARY":
        return "" if data is None else data.hex() if isinstance(data, (bytes, bytearray)) else str(data)
    if isinstance(data, bytes):
        return data.hex()
    return data


def _text(data: bytes) -> tuple[str | None, str]:
    """Decode a file as IIS would have written it; (text, encoding) or (None, 'binary')."""
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(enc, "replace"), enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return None, "binary"


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _decode_registry(res: OpResult) -> dict | None:
    """{key path: {"values", "subkeys"[, "denied": {subkey: why}]}}; None when the key does not exist.
    A subkey the account may not read is listed under its parent's `denied` (HostView.reg_key treats any read
    below it as unknown, never as absent)."""
    if res.first("missing") is not None:
        return None
    keys: dict[str, dict] = {}

    def entry(path: str) -> dict:
        return keys.setdefault(path, {"values": {}, "subkeys": []})

    for kind, row in res.rows:
        if kind == "key":
            entry(row["path"])
        elif kind == "value":
            rtype = REG_KIND_TO_TYPE.get(row["type"], row["type"])
            entry(row["key"])["values"][row["name"]] = {"type": rtype, "data": reg_data(rtype, row["data"])}
        elif kind == "subkey":
            entry(row["key"])["subkeys"].append(row["name"])
        elif kind == "denied":
            parent = entry(row["key"])
            parent["subkeys"].append(row["name"])
            parent.setdefault("denied", {})[row["name"]] = row.get("message") or "access denied"
    for path, found in keys.items():  # subkeys walked into are subkeys too
        prefix = path.lower() + "\\"
        for other in keys:
            if other.lower().startswith(prefix) and "\\" not in other[len(prefix):]:
                found["subkeys"].append(other[len(prefix):])
    return keys


def _decode_file(res: OpResult) -> dict | None:
    found = file_data(res)
    if found is None:
        return None
    row, data = found
    if isinstance(row.get("read"), int) and isinstance(row.get("size"), int) and row["size"] > row["read"]:
        # Read up to the item's max_bytes only: the start of a file is not the file, and must not be judged as it.
        return {"path": row["path"], "size": row["size"], "mtime": row["mtime"], "encoding": None, "text": None,
                "too_large": row["read"]}
    text, enc = _text(data)
    out = {"path": row["path"], "size": row["size"], "mtime": row["mtime"], "encoding": enc, "text": text}
    if text is None:
        out["base64"] = base64.b64encode(data).decode("ascii")
    return out


def _decode(res: OpResult) -> Any:
    op = res.op.name
    if op == "reg_read":
        return _decode_registry(res)
    if op == "file_read":
        return _decode_file(res)
    if op == "file_list":
        if res.first("missing") is not None:
            return None
        trunc = res.first("truncated")
        return {"path": res.op.args[0], "files": res.of_kind("file"), "truncated_total": trunc["total"] if trunc else None,
                "vanished": len(res.of_kind("vanished"))}
    if op in ("adsi_search", "adsi_read"):
        # An attribute the object does not have arrives as null: AD keeps no empty values, so it is [].
        return [{"dn": r["dn"], "attrs": {k[2:]: (v if v is not None else []) for k, v in r.items() if k.startswith("a:")}}
                for r in res.of_kind("entry")]
    if op == "wmi_query":
        return [{k: _jsonable(v) for k, v in r.items()} for r in res.of_kind("object")]
    if op == "eventlog":
        over = res.first("overwritten")
        return {"events": res.of_kind("event"), "truncated": res.first("truncated") is not None,
                "overwritten": over.get("message") if over else None}
    if op == "service_query":
        out = {r["name"]: {k: r[k] for k in ("display_name", "state", "start_mode")} for r in res.of_kind("service")}
        out.update({r["name"]: None for r in res.of_kind("missing")})
        return out
    if op == "msi_features":
        return res.of_kind("feature")
    if op == "tcp_connections":
        return res.of_kind("conn")
    return [dict(r, kind=k) for k, r in res.rows]


def item_error(res: OpResult) -> str | None:
    """Why an operation's result cannot stand for the item: it threw, or (msi_features) a product it matched
    could not be read, so that product's features are unknown, not absent."""
    if res.error is not None:
        return res.error
    if res.op.name == "msi_features":
        bad = res.of_kind("product_error")
        if bad:
            return "; ".join(f"{r.get('product')} {r.get('product_code')}: {r.get('message')}" for r in bad)
    return None


# What a DC says to a caller without credentials, and to wrong ones (DirectoryServicesCOMException HRESULTs):
# 0x80072020 "An operations error occurred." with 000004DC "... a successful bind must be completed ..."
# (LDAP as ANONYMOUS LOGON: a WinRM logon over NTLM or Kerberos without delegation has no credentials for the
# second hop), and 0x8007052E "Logon failure: unknown user name or bad password.".
AD_ITEMS_OPS = ("adsi_search", "adsi_read", "adsi_write")
_ANONYMOUS = re.compile(r"0x80072020|000004DC|successful bind must be completed", re.I)
_BAD_LOGON = re.compile(r"0x8007052E|unknown user name or bad password|user name or password is incorrect", re.I)


def ad_error_hint(message: str, explicit_bind: bool) -> str | None:
    """What to set when an AD read or write failed the way a missing or wrong AD credential makes it fail."""
    if _BAD_LOGON.search(message or ""):
        return ("the domain controller refused mailflow_ad_username / mailflow_ad_password (they default to "
                "ansible_user / ansible_password): set them to a domain account that may read the configuration partition")
    if _ANONYMOUS.search(message or ""):
        if explicit_bind:
            return "the domain controller refused the bind with mailflow_ad_username; check that account's rights"
        return ("the WinRM logon has no credentials for the domain controller (the second hop: NTLM, or Kerberos "
                "without delegation); set mailflow_ad_username and mailflow_ad_password, or use Kerberos with "
                "delegation (docs/runner.md)")
    return None


_SERIAL = re.compile(r"Version\s+(?P<ver>[\d.]+)\s+\(Build\s+(?P<build>[\d.]+)(?::\s*(?P<sp>[^)]*))?\)", re.I)


def exchange_from_serial(attrs: dict, source: str) -> dict | None:
    """{"version", "build", "service_pack", "source"} from an Exchange server object's serialNumber in AD
    ("Version 6.5 (Build 7638.2: Service Pack 2)"), or None. The one reader of it (snapshot and fleet)."""
    m = _SERIAL.search(" ".join(str(v) for v in attrs.get("serialNumber") or []))
    if not m:
        return None
    return {"version": m["ver"], "build": m["build"], "service_pack": (m["sp"] or "").strip() or None, "source": source}


def kind_of_version(version) -> str:
    """The kind an Exchange version names: 5.x exchange55, 6.0 exchange2000, 6.5 exchange2003, else exchange."""
    v = str(version or "")
    return "exchange55" if v.startswith("5.") else {"6.5": "exchange2003", "6.0": "exchange2000"}.get(v, "exchange")


_GREETING = re.compile(r"^2\d\d[ -](?P<name>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?:\s|$)")


def greeting_name(banner: str | None) -> str | None:
    """The FQDN a server names itself with in its SMTP greeting ("220 exch55.corp.example ..."), if it does."""
    m = _GREETING.match((banner or "").split("\n", 1)[0].strip())
    return m["name"].rstrip(".").lower() if m and not is_address(m["name"]) else None


def identity(snap: dict | None, inventory_name: str, fqdn: str | None = None, greeting: str | None = None) -> dict:
    """Who a host is: {"computer_name", "fqdn", "dns_domain", "source"}. The one place this is decided.

    What the host reports about itself decides: Win32_ComputerSystem Name and Domain (knowledge item
    `computer`), else, for a host without a snapshot, the FQDN its own SMTP greeting names (greeting_name of a
    peer's probe). Only then do the inventory's names stand in, labelled as such: mailflow_fqdn, then the
    inventory name, and only a DNS name; an inventory that names hosts by address or by an alias says nothing
    about the computer behind it."""
    items = (snap or {}).get("items") or {}
    rows = items.get("computer") or []
    row = rows[0] if rows and isinstance(rows[0], dict) else {}
    name = str(row.get("Name") or "").strip()
    if name:
        domain = str(row.get("Domain") or "").strip().lower()
        domain = domain if "." in domain else ""  # a workgroup name is no DNS domain
        return {"computer_name": name.upper(), "fqdn": f"{name.lower()}.{domain}" if domain else None,
                "dns_domain": domain or None, "source": "host (Win32_ComputerSystem)"}
    for hint, label in ((greeting, "host (its SMTP greeting)"), (fqdn, "inventory mailflow_fqdn"),
                        (inventory_name, "inventory name")):
        if hint and not is_address(hint):
            hint = str(hint).rstrip(".")
            return {"computer_name": hint.split(".", maxsplit=1)[0].upper(), "fqdn": hint.lower() if "." in hint else None,
                    "dns_domain": hint.split(".", 1)[1].lower() if "." in hint else None,
                    "source": label if label.startswith("host") else f"{label} (the host did not report its name)"}
    return {"computer_name": str(inventory_name).upper(), "fqdn": None, "dns_domain": None,
            "source": "inventory name, an address (the host did not report its name)"}


def platform_of(items: dict[str, Any], computer_name: str, errors: dict[str, str] | None = None) -> dict:
    """What the host is, from raw data: Windows version, Exchange version and kind."""
    errors = errors or {}
    os_rows = items.get("os") or []
    os_info = os_rows[0] if os_rows else {}
    services = items.get("services") or {}
    exchange = None
    for entry in items.get("ad_exchange_servers") or []:
        if str((entry["attrs"].get("cn") or [""])[0]).lower() == computer_name.lower():
            exchange = exchange_from_serial(entry["attrs"], "ad:serialNumber") or exchange
    setup = (items.get("exchange_setup") or {})
    setup_values = next(iter(setup.values()), {}).get("values", {}) if setup else {}
    if exchange is None and setup_values:
        build = (setup_values.get("ServicePackBuild") or {}).get("data")
        exchange = {"version": None, "build": str(build) if build is not None else None, "service_pack": None, "source": "registry:ServicePackBuild"}
    note = None
    if services.get("MSExchangeIMC") and (exchange is None or str(exchange.get("version") or "").startswith("5.")):
        kind = "exchange55"
    elif exchange is not None:
        kind = kind_of_version(exchange.get("version"))
        if kind == "exchange" and "ad_exchange_servers" in errors:
            note = f"its version is read from AD (ad_exchange_servers), which failed: {errors['ad_exchange_servers']}"
        elif kind == "exchange" and "ad_exchange_servers" in items:
            note = f"AD has no Exchange server object named {computer_name} with a version in serialNumber"
    elif services.get("SMTPSVC"):
        kind = "smtp_relay"
    else:
        kind = "windows"
    out = {
        "computer_name": computer_name,
        "os": {"caption": os_info.get("Caption"), "version": os_info.get("Version"), "build": os_info.get("BuildNumber"),
               "service_pack": os_info.get("CSDVersion"), "service_pack_major": os_info.get("ServicePackMajorVersion")},
        "exchange": exchange,
        "kind": kind,
    }
    if note:
        out["kind_note"] = note
    return out


def assemble(host: str, plan: list[tuple[str, Op]], results: list[OpResult], *, collected_at: str, duration_ms: int,
             transport: dict, fqdn: str | None = None) -> dict:
    """The snapshot of `host` from its plan's results. fqdn: the inventory's mailflow_fqdn, used for the host's
    identity only when the host did not report its own (identity())."""
    items: dict[str, Any] = {}
    errors: dict[str, str] = {}
    probes = []
    explicit_bind = bool(transport.get("ad_bind") == "explicit")
    for (item_id, _unused), res in zip(plan, results):
        if res.op.name == "tcp_probe":
            if res.error is not None:
                errors[item_id] = res.error
            else:
                probes.append(dict(res.first("probe") or {}, peer=item_id.split(":", 1)[1]))
            continue
        why = item_error(res)
        if why is None:
            try:
                items[item_id] = _decode(res)
            except RunnerError as exc:  # a file whose chunks did not all arrive
                why = str(exc)
        if why is not None:
            hint = ad_error_hint(why, explicit_bind) if res.op.name in AD_ITEMS_OPS else None
            errors[item_id] = f"{why} -- {hint}" if hint else why
    snap = {
        "schema": SCHEMA,
        "host": host,
        "collected_at": collected_at,
        "duration_ms": duration_ms,
        "transport": transport,
        "items": items,
        "probes": probes,
        "errors": errors,
    }
    who = identity(snap, host, fqdn)
    snap["platform"] = dict(platform_of(items, who["computer_name"], errors), fqdn=who["fqdn"],
                            dns_domain=who["dns_domain"], identity_source=who["source"])
    return snap


def load(path: str | None) -> dict | None:
    """A snapshot saved on the controller (the snapshot action's dest), or None when there is none to read: no
    path, no file, not UTF-8 JSON, or JSON that is not an object. What a missing one means is the caller's call."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return doc if isinstance(doc, dict) else None
