"""The lab's SMTP listener, blackhole and prober, over real loopback sockets.

Every behaviour is set up as raw Windows state (services, registry,
MetaBase.xml, firewall, device configs) and observed on the wire, with
smtplib as an independent client where possible.
"""
from __future__ import annotations

import itertools
import smtplib
import socket
import time

import pytest

from lab import firewall
from lab.metabase import render
from lab.runtime import Metrics
from lab.smtp import Blackhole, SmtpListener, probe_many
from lab.smtp.behaviour import ListenMode
from lab.smtp.inspection import asa_esmtp, ios_cbac_smtp, pix_mailguard
from lab.state import ActiveDirectory, FleetState, Filesystem, HostState, Registry, Service

EXCHANGE_SETUP = r"HKLM\SOFTWARE\Microsoft\Exchange\Setup"
TIMEOUT_MS = 600
_octets = itertools.count(10)


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def make_host(name: str, *, kind: str = "exchange2003", metabase: dict | None = None,
              metabase_text: str | None = None, smtp_engine: dict | None = None) -> HostState:
    """A Windows 2003 host: Exchange 2003 (default), Exchange 5.5 IMS, or plain Windows."""
    address = f"127.0.88.{next(_octets)}"
    registry, files = Registry(), Filesystem()
    services = {}
    if kind == "exchange55":
        registry.set(EXCHANGE_SETUP, "ServicePackBuild", "REG_DWORD", 2653)
        services["MSExchangeIMC"] = Service("MSExchangeIMC", "Microsoft Exchange Internet Mail Service")
    else:
        if kind == "exchange2003":
            registry.set(EXCHANGE_SETUP, "ServicePackBuild", "REG_DWORD", 7638)
        services["SMTPSVC"] = Service("SMTPSVC", "Simple Mail Transfer Protocol (SMTP)")
    host = HostState(
        name=name, fqdn=f"{name.lower()}.corp.example", address=address, username="lab", password="lab",
        os={"caption": "Microsoft(R) Windows(R) Server 2003, Standard Edition", "version": "5.2.3790",
            "build": "3790", "service_pack": "Service Pack 2", "computer_name": name, "domain": "corp.example"},
        registry=registry, files=files, services=services, events=[], wmi={}, tcp_connections=[],
        smtp_engine=smtp_engine or {},
        ports={"http": 5985, "https": 5986, "smtp": free_port(address)},
    )
    if metabase_text is None:
        metabase_text = render({"/LM/SmtpSvc": {}, "/LM/SmtpSvc/1": {}, **(metabase or {})})
    files.write(host.metabase_path, metabase_text, "2026-11-20T10:00:00Z")
    return host


def make_fleet(*hosts: HostState, blocked=(), devices=()) -> FleetState:
    return FleetState(hosts={h.name: h for h in hosts}, ad=ActiveDirectory(),
                      network={"blocked": [list(p) for p in blocked], "devices": list(devices)})


@pytest.fixture
def lab():
    """Start listeners for a fleet; stop them all afterwards."""
    listeners = []

    def start(fleet: FleetState, metrics: Metrics | None = None) -> dict[str, SmtpListener]:
        metrics = metrics or Metrics()
        started = {}
        for name in fleet.hosts:
            listener = SmtpListener(fleet, metrics, name)
            listener.start()
            listeners.append(listener)
            started[name] = listener
        return started

    yield start
    for listener in listeners:
        listener.stop()


def probe(fleet, src, target, **extra) -> dict:
    spec = {"target": target, "port": 25, "timeout_ms": TIMEOUT_MS, "helo": "src.corp.example",
            "mail_from": "postmaster@corp.example", "rcpt_to": "postmaster@corp.example", **extra}
    return probe_many(fleet, src, [spec])[0]


def smtp_client(host: HostState, source: HostState) -> tuple[smtplib.SMTP, str]:
    """A connected smtplib client and the banner text it was greeted with."""
    smtp = smtplib.SMTP(timeout=2, source_address=(source.address, 0))
    code, banner = smtp.connect(host.address, host.ports["smtp"])
    assert code == 220
    return smtp, banner.decode()


# -- banner and EHLO


def test_exchange_2003_banner_and_ehlo_seen_by_smtplib(lab):
    exch, client = make_host("EXCH01"), make_host("CLIENT", kind="windows")
    metrics = Metrics()
    lab(make_fleet(exch, client), metrics)
    smtp, banner = smtp_client(exch, client)
    with smtp:
        code, _ = smtp.ehlo("client.corp.example")
        features, raw_reply = smtp.esmtp_features, smtp.ehlo_resp.decode()
    assert banner.startswith("exch01.corp.example Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at ")
    assert code == 250
    for verb in ("x-exps", "x-link2state", "xexch50", "binarymime", "chunking", "8bitmime",
                 "pipelining", "enhancedstatuscodes", "auth", "dsn", "etrn", "turn"):
        assert verb in features, verb
    assert "\nAUTH GSSAPI NTLM LOGIN\n" in raw_reply and raw_reply.endswith("\nOK")
    assert metrics.host("EXCH01").smtp_sessions == 1


def test_connect_response_replaces_the_banner(lab):
    exch = make_host("EXCH01", metabase={"/LM/SmtpSvc/1": {"ConnectResponse": "mail.corp.example ESMTP"}})
    fleet = make_fleet(exch, make_host("SRC"))
    lab(fleet)
    result = probe(fleet, "SRC", "EXCH01")
    assert result["banner"] == "220 mail.corp.example ESMTP"
    assert result["ehlo"].startswith(f"250-exch01.corp.example Hello [{fleet.host('SRC').address}]")
    assert result["mail"] == "250 2.1.0 postmaster@corp.example....Sender OK"
    assert result["rcpt"] == "250 2.1.5 postmaster@corp.example"
    assert result["error"] == ""


def test_empty_connect_response_means_no_banner_at_all(lab):
    exch = make_host("EXCH01", metabase={"/LM/SmtpSvc/1": {"ConnectResponse": "  "}})
    fleet = make_fleet(exch, make_host("SRC"))
    lab(fleet)
    result = probe(fleet, "SRC", "exch01.corp.example")
    assert result["connect"] == "ok"
    assert (result["banner"], result["banner_ms"]) == ("", -1)
    assert result["error"] == "timeout waiting for banner"
    assert TIMEOUT_MS - 50 <= result["total_ms"] < TIMEOUT_MS + 300


def test_corrupt_metabase_drops_exchange_verbs_but_keeps_the_banner(lab):
    exch = make_host("EXCH01", metabase_text="<configuration><MBProperty><IIsSmtpServer")
    fleet = make_fleet(exch, make_host("SRC"))
    lab(fleet)
    result = probe(fleet, "SRC", "EXCH01")
    assert "Microsoft ESMTP MAIL Service" in result["banner"]
    assert "250-CHUNKING" in result["ehlo"]  # IIS defaults still apply
    for verb in ("X-EXPS", "X-LINK2STATE", "XEXCH50"):
        assert verb not in result["ehlo"]


def test_windows_smtp_without_exchange_has_no_exchange_verbs(lab):
    fleet = make_fleet(make_host("RELAY", kind="windows"), make_host("SRC"))
    lab(fleet)
    ehlo = probe(fleet, "SRC", "RELAY")["ehlo"]
    assert "XEXCH50" not in ehlo and "250-AUTH GSSAPI NTLM LOGIN" in ehlo


def test_inbound_command_options_switch_binarymime_and_chunking_off(lab):
    options = 7697601 - 1048576 - 2097152
    exch = make_host("EXCH01", metabase={"/LM/SmtpSvc/1": {"SmtpInboundCommandSupportOptions": str(options)}})
    fleet = make_fleet(exch, make_host("SRC"))
    lab(fleet)
    lines = probe(fleet, "SRC", "EXCH01")["ehlo"].split("\n")
    assert "250-BINARYMIME" not in lines and "250-CHUNKING" not in lines
    assert "250-8bitmime" in lines and "250-XEXCH50" in lines and lines[-1] == "250 OK"


def test_exchange_55_ims_banner_and_ehlo(lab):
    ims = make_host("EX55", kind="exchange55")
    fleet = make_fleet(ims, make_host("SRC"))
    lab(fleet)
    result = probe(fleet, "SRC", "EX55")
    assert result["banner"] == "220 ex55.corp.example ESMTP Server (Microsoft Exchange Internet Mail Service 5.5.2653) ready"
    assert result["ehlo"].split("\n") == [
        f"250-ex55.corp.example Hello [{fleet.host('SRC').address}]", "250-XEXCH50", "250-HELP", "250-ETRN",
        "250-DSN", "250-SIZE 0", "250-AUTH LOGIN", "250 AUTH=LOGIN"]


# -- listen modes


def test_stopped_service_refuses_and_restart_serves_again(lab):
    exch = make_host("EXCH01")
    fleet = make_fleet(exch, make_host("SRC"))
    listener = lab(fleet)["EXCH01"]
    with fleet.lock:
        exch.service("SMTPSVC").state = "stopped"
    listener.refresh()
    assert listener.mode is ListenMode.REFUSED
    assert probe(fleet, "SRC", "EXCH01")["connect"] == "refused"
    with fleet.lock:
        exch.service("SMTPSVC").state = "running"
    listener.refresh()
    assert probe(fleet, "SRC", "EXCH01")["banner"].startswith("220 exch01.corp.example Microsoft ESMTP")


def test_firewall_without_port_25_filters(lab):
    exch = make_host("EXCH01")
    rdp = {"port": 3389, "protocol": "TCP", "scope": "*", "name": "RDP"}
    firewall.set_firewall(exch.registry, True, [rdp])
    fleet = make_fleet(exch, make_host("SRC"))
    listener = lab(fleet)["EXCH01"]
    assert listener.mode is ListenMode.FILTERED
    result = probe(fleet, "SRC", "EXCH01")
    assert (result["connect"], result["banner"]) == ("timeout", "")
    assert result["connect_ms"] >= TIMEOUT_MS - 50
    # An independent client sees the same: no RST, no accept, just silence.
    with socket.socket() as s:
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.connect((exch.address, exch.ports["smtp"]))
    with fleet.lock:
        # Opening the port where Windows keeps it (the registry) is what un-filters it.
        firewall.set_firewall(exch.registry, True, [rdp, {"port": 25, "protocol": "TCP", "scope": "*", "name": "SMTP"}])
    listener.refresh()
    assert probe(fleet, "SRC", "EXCH01")["connect"] == "ok"


def test_blackhole_times_out_rather_than_refusing():
    with Blackhole("127.0.88.250") as hole, socket.socket() as s:
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.connect((hole.address, hole.port))


def test_blocked_pair_times_out_while_another_source_gets_the_banner(lab):
    exch, cut_off, fine = make_host("EXCH01"), make_host("BRANCH"), make_host("HUB")
    fleet = make_fleet(exch, cut_off, fine, blocked=[("branch", "EXCH01")])
    lab(fleet)
    blocked = probe(fleet, "BRANCH", "EXCH01")
    assert (blocked["connect"], blocked["address"]) == ("timeout", exch.address)
    with Blackhole("127.0.88.251") as hole:  # the lab's shared blackhole, passed in
        spec = {"target": "EXCH01", "timeout_ms": 300}
        assert probe_many(fleet, "BRANCH", [spec], blackhole=hole)[0]["connect"] == "timeout"
    assert probe(fleet, "HUB", "EXCH01")["banner"].startswith("220 exch01")


# -- SMTP inspection on the path

PIX_CONFIG = "PIX Version 6.3(5)\nhostname fw1\nfixup protocol ftp 21\nfixup protocol smtp 25\n"


def test_pix_mailguard_masks_banner_and_refuses_ehlo_on_its_path_only(lab):
    exch, branch, hub = make_host("EXCH01"), make_host("BRANCH"), make_host("HUB")
    pix = {"name": "fw1", "kind": "pix", "config": PIX_CONFIG, "paths": [["BRANCH", "EXCH01"]]}
    fleet = make_fleet(exch, branch, hub, devices=[pix])
    lab(fleet)
    behind = probe(fleet, "BRANCH", "EXCH01")
    assert behind["banner"].startswith("220 ****")
    assert set(behind["banner"]) <= set("20 *")
    assert behind["ehlo"] == "500 5.5.1 Command unrecognized"
    assert behind["mail"] == "" and behind["error"] == ""
    with smtp_client(exch, branch)[0] as smtp:  # basic SMTP still passes Mailguard
        assert smtp.helo("branch")[0] == 250
        assert smtp.mail("a@corp.example")[0] == 250
    assert probe(fleet, "HUB", "EXCH01")["banner"].startswith("220 exch01.corp.example Microsoft ESMTP")


@pytest.mark.parametrize("check, config, expected", [
    (pix_mailguard, PIX_CONFIG, True),
    (pix_mailguard, PIX_CONFIG + "no fixup protocol smtp 25\n", False),
    (pix_mailguard, "fixup protocol smtp 20-30\n", True),
    (ios_cbac_smtp, "ip inspect name fw smtp timeout 3600\ninterface Ethernet0\n ip inspect fw in\n", True),
    (ios_cbac_smtp, "ip inspect name fw smtp\ninterface Ethernet0\n ip address 10.0.0.1 255.0.0.0\n", False),
    (ios_cbac_smtp, "ip inspect name fw esmtp\ninterface Ethernet0\n ip inspect fw in\n", False),
    (ios_cbac_smtp, "ip inspect name fw smtp\nno ip inspect name fw smtp\ninterface E0\n ip inspect fw out\n", False),
    # IOS rule names are case-sensitive: the rule Mail inspects smtp, an interface applying MAIL does not apply it
    (ios_cbac_smtp, "ip inspect name Mail smtp\ninterface Ethernet0\n ip inspect MAIL in\n", False),
    (ios_cbac_smtp, "ip inspect name Mail smtp\ninterface Ethernet0\n ip inspect Mail in\n", True),
    (ios_cbac_smtp, "ip inspect name Mail smtp\nip inspect name MAIL tcp\ninterface Ethernet0\n ip inspect MAIL in\n",
     False),
    (asa_esmtp, "policy-map global_policy\n class inspection_default\n  inspect esmtp\n"
                "service-policy global_policy global\n", True),
    (asa_esmtp, "policy-map global_policy\n class inspection_default\n  inspect esmtp\n", False),
    (asa_esmtp, "policy-map global_policy\n class inspection_default\n  no inspect esmtp\n"
                "service-policy global_policy global\n", False),
])
def test_inspection_read_from_running_config(check, config, expected):
    assert check(config) is expected


def test_ios_cbac_smtp_on_path_masks_the_banner(lab):
    exch, branch = make_host("EXCH01"), make_host("BRANCH")
    router = {"name": "rtr1", "kind": "ios", "paths": [["BRANCH", "EXCH01"]],
              "config": "ip inspect name ethernetin smtp timeout 3600\n!\ninterface Ethernet0\n ip inspect ethernetin in\n"}
    fleet = make_fleet(exch, branch, devices=[router])
    lab(fleet)
    assert probe(fleet, "BRANCH", "EXCH01")["ehlo"] == "500 5.5.1 Command unrecognized"


def test_ios_cbac_rule_names_are_case_sensitive(lab):
    exch, branch = make_host("EXCH01"), make_host("BRANCH")
    router = {"name": "rtr1", "kind": "ios", "paths": [["BRANCH", "EXCH01"]],
              "config": "ip inspect name Mail smtp\n!\ninterface Ethernet0\n ip inspect MAIL in\n"}
    fleet = make_fleet(exch, branch, devices=[router])
    lab(fleet)
    assert probe(fleet, "BRANCH", "EXCH01")["ehlo"].startswith("250-exch01.corp.example Hello")  # MAIL is no rule
    router["config"] = router["config"].replace(" ip inspect MAIL in", " ip inspect Mail in")
    assert probe(fleet, "BRANCH", "EXCH01")["ehlo"] == "500 5.5.1 Command unrecognized"


def test_ios_cbac_applies_in_the_direction_its_interface_says(lab):
    exch, branch = make_host("EXCH01"), make_host("BRANCH")
    router = {"name": "rtr1", "kind": "ios", "paths": [["BRANCH", "EXCH01"]],
              "segments": {"Ethernet0": ["BRANCH"], "Ethernet1": ["EXCH01"]},
              "config": "ip inspect name fw smtp\n!\ninterface Ethernet0\n ip inspect fw in\n"}
    fleet = make_fleet(exch, branch, devices=[router])
    lab(fleet)
    assert probe(fleet, "BRANCH", "EXCH01")["ehlo"] == "500 5.5.1 Command unrecognized"  # enters by Ethernet0
    assert probe(fleet, "EXCH01", "BRANCH")["ehlo"].startswith("250-branch.corp.example Hello")
    router["config"] = router["config"].replace(" ip inspect fw in", " ip inspect fw out")  # now leaving to BRANCH
    assert probe(fleet, "EXCH01", "BRANCH")["ehlo"] == "500 5.5.1 Command unrecognized"
    assert probe(fleet, "BRANCH", "EXCH01")["ehlo"].startswith("250-exch01.corp.example Hello")


# -- transactions


def test_greylisting_defers_a_new_triplet_until_the_delay_passes(lab):
    peer = make_host("PEER", kind="windows", smtp_engine={"greylisting": {"delay_seconds": 1}})
    fleet = make_fleet(peer, make_host("SRC"))
    lab(fleet)
    first = probe(fleet, "SRC", "PEER")
    assert first["rcpt"] == "450 4.7.1 <postmaster@corp.example>: Recipient address rejected: Greylisted, try again later"
    assert probe(fleet, "SRC", "PEER")["rcpt"].startswith("450 4.7.1")  # retry too early
    assert probe(fleet, "SRC", "PEER", rcpt_to="other@corp.example")["rcpt"].startswith("450")  # new triplet
    time.sleep(1.05)
    assert probe(fleet, "SRC", "PEER")["rcpt"] == "250 2.1.5 postmaster@corp.example"


def test_data_lands_in_the_queue_folder(lab):
    queue = r"D:\Mailroot\vsi 1\Queue"
    exch, src = make_host("EXCH01", metabase={"/LM/SmtpSvc/1": {"QueueDirectory": queue}}), make_host("SRC")
    fleet = make_fleet(exch, src)
    lab(fleet)
    with smtp_client(exch, src)[0] as smtp:
        smtp.sendmail("a@corp.example", ["b@corp.example"], "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n")
    with fleet.lock:
        queued = exch.files.listdir(queue)
    assert len(queued) == 1
    name, f = queued[0]
    assert name.rsplit("\\", 1)[1].startswith("NTFS_") and name.endswith(".EML")
    text = f.data.decode()
    assert text.startswith("Received: from ") and "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n" in text


def test_unknown_verb_is_rejected(lab):
    exch, src = make_host("EXCH01"), make_host("SRC")
    lab(make_fleet(exch, src))
    with smtp_client(exch, src)[0] as smtp:
        assert smtp.docmd("FROB") == (500, b"5.3.3 Unrecognized command")
        assert smtp.rset()[0] == 250


# -- prober


def test_probe_many_runs_targets_concurrently_and_keeps_order(lab):
    mute = {"/LM/SmtpSvc/1": {"ConnectResponse": ""}}
    slow = [make_host(f"SLOW{i}", metabase=mute) for i in range(4)]
    fleet = make_fleet(*slow, make_host("FAST"), make_host("SRC"))
    lab(fleet)
    targets = [{"target": h.fqdn, "port": 25, "timeout_ms": TIMEOUT_MS} for h in slow]
    targets += [{"target": "FAST", "timeout_ms": TIMEOUT_MS, "helo": "x"}, {"target": "nosuch.corp.example"}]
    started = time.monotonic()
    results = probe_many(fleet, "SRC", targets)
    elapsed = time.monotonic() - started
    assert elapsed < 2 * TIMEOUT_MS / 1000
    assert [r["target"] for r in results] == [t["target"] for t in targets]
    assert all(r["error"] == "timeout waiting for banner" for r in results[:4])
    assert results[4]["banner"].startswith("220 fast.corp.example")
    assert (results[5]["connect"], results[5]["address"]) == ("unresolved", "")
    for r in results:
        assert set(r) == {"target", "port", "address", "connect", "connect_ms", "banner", "banner_ms",
                          "ehlo", "mail", "rcpt", "total_ms", "error"}
        assert all(isinstance(r[k], int) for k in ("port", "connect_ms", "banner_ms", "total_ms"))


def test_stop_is_fast_and_frees_the_port(lab):
    exch, src = make_host("EXCH01"), make_host("SRC")
    listener = lab(make_fleet(exch, src))["EXCH01"]
    idle = socket.create_connection((exch.address, exch.ports["smtp"]), timeout=1)
    started = time.monotonic()
    listener.stop()
    assert time.monotonic() - started < 0.5
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((exch.address, exch.ports["smtp"]))
    idle.close()
