"""The lab's IOS device (FW01 in the demo): its CLI as a state machine, with no socket in between.

The CLI is checked against what cisco.ios itself parses (its cliconf's
get_device_info, its terminal plugin's error patterns). The SSH server, the
user's known_hosts and ansible-playbook over it: test_netdev_ssh.
"""
from __future__ import annotations

import re

import pytest

from ansible_collections.cisco.ios.plugins.cliconf.ios import Cliconf
from ansible_collections.cisco.ios.plugins.terminal.ios import TerminalModule
from lab.netdev.ios import IosCli
from lab.scenario import ScenarioError, dump_state, load_scenario_data, load_state
from lab.smtp.inspection import inspects_smtp
from tests.conftest import demo_data
from tests.lab.netdev_scenario import fw01, fw01_data


def is_error(text: str) -> bool:
    """What cisco.ios's terminal plugin treats as a failed command."""
    return any(regex.search(text.encode()) for regex in TerminalModule.terminal_stderr_re)


def session(device: dict | None = None) -> tuple[IosCli, dict]:
    device = device or fw01()
    return IosCli(device, user="netadmin"), device


def type_lines(cli: IosCli, *lines: str) -> list[str]:
    return [cli.handle(line) for line in lines]


# -- the command line


def test_a_login_lands_at_privilege_15_and_each_mode_has_its_prompt():
    cli, _ = session()
    assert cli.login_text().endswith("\r\nFW01#")
    prompts = []
    for line in ("enable", "configure terminal", "interface FastEthernet0/1", "exit", "int fa0/0", "end",
                 "show privilege"):
        out = cli.handle(line)
        prompts.append(out.rsplit("\r\n", 1)[-1])
    assert prompts == ["FW01#", "FW01(config)#", "FW01(config-if)#", "FW01(config)#", "FW01(config-if)#", "FW01#",
                       "FW01#"]
    assert "Current privilege level is 15" in out
    assert all(TerminalModule.terminal_stdout_re[0].search(p.encode()) for p in prompts)
    assert re.match(TerminalModule.terminal_config_prompt, "FW01(config-if)#")


def test_disable_drops_to_user_level_and_enable_asks_for_the_password():
    cli, device = session()
    assert cli.handle("disable").endswith("\r\nFW01>")
    assert is_error(cli.handle("show running-config")) and is_error(cli.handle("configure terminal"))
    assert cli.handle("enable") == "\r\nPassword: " and not cli.echo
    assert cli.handle("cisco") == "\r\n% Bad secrets\r\nFW01>" and is_error("% Bad secrets")
    cli.handle("enable")
    assert cli.handle(device["password"]) == "\r\nFW01#" and cli.echo
    assert "Current privilege level is 15" in cli.handle("show privilege")


def test_show_version_is_what_cisco_ios_get_device_info_parses():
    cli, _ = session()
    cliconf = Cliconf.__new__(Cliconf)  # its parsing only: no connection behind it
    cliconf._device_info = {}
    cliconf._update_cli_prompt_context = lambda **kw: None

    def get(command=None, **kw):
        out = cli.run_exec(command)
        if is_error(out):
            raise ConnectionError(out)
        return out
    cliconf.get = get
    assert cliconf.get_device_info() == {
        "network_os": "ios", "network_os_version": "12.4(24)T8", "network_os_model": "2811",
        "network_os_hostname": "FW01", "network_os_image": "flash:c2800nm-advipservicesk9-mz.124-24.T8.bin",
        "network_os_type": "L3",  # `show vlan` is not a router command
    }


def test_invalid_input_puts_the_caret_under_the_bad_word():
    cli, _ = session()
    out = cli.handle("show vlan")
    assert out == "\r\n          ^\r\n% Invalid input detected at '^' marker.\r\n\r\nFW01#"
    assert len("FW01#show ") == out.split("\r\n")[1].index("^")
    assert is_error(out) and is_error(cli.handle("frobnicate"))
    cli.handle("configure terminal")
    assert is_error(cli.handle("show running-config"))  # exec commands need `do` in config mode
    assert not is_error(cli.handle("do show running-config | include hostname"))


def test_show_running_config_and_the_filters_cisco_ios_uses():
    cli, device = session()
    full = cli.run_exec("show running-config")
    assert full.startswith("Building configuration...\r\n\r\nCurrent configuration : ")
    assert full.endswith("\r\nscheduler allocate 20000 1000\r\nend")
    assert cli.run_exec("show running-config | include ^ip inspect name MAILFW").split("\r\n") == [
        "ip inspect name MAILFW smtp", "ip inspect name MAILFW tcp", "ip inspect name MAILFW udp"]
    section = cli.run_exec("show running-config | section ^interface").split("\r\n")
    assert section[0] == "interface FastEthernet0/0" and " ip inspect MAILFW in" in section and "!" not in section
    assert cli.run_exec("show run | begin ^line").split("\r\n")[0] == "line con 0"
    assert "access-list" not in cli.run_exec("sh run | exclude access-list")
    assert cli.run_exec("show startup-config").startswith("Using ")
    assert not is_error(full)  # nothing in a config may look like an error to the terminal plugin


def test_smtp_and_esmtp_cannot_share_a_rule():
    cli, device = session()
    before = device["config"]
    cli.handle("configure terminal")
    refused = cli.handle("ip inspect name MAILFW esmtp")
    assert refused.startswith("\r\n%Error: esmtp inspection cannot be configured together with smtp") and is_error(refused)
    assert device["config"] == before
    type_lines(cli, "no ip inspect name MAILFW smtp", "ip inspect name MAILFW esmtp")
    assert "ip inspect name MAILFW esmtp" in device["config"] and "MAILFW smtp" not in device["config"]
    assert is_error(cli.handle("ip inspect name MAILFW smtp timeout 3600"))
    assert is_error(cli.handle("ip inspect name MAILFW smtpx"))  # not a protocol: % Invalid input


def test_no_of_a_line_that_is_not_there_is_accepted_silently():
    cli, device = session()
    before = device["config"]
    outs = type_lines(cli, "configure terminal", "no ip inspect name NOPE smtp", "no ip inspect name LEGACY esmtp",
                      "no access-list 199", "interface FastEthernet0/1", "no ip inspect MAILFW in", "end")
    assert outs[1:] == ["\r\nFW01(config)#", "\r\nFW01(config)#", "\r\nFW01(config)#", "\r\nFW01(config-if)#",
                        "\r\nFW01(config-if)#", "\r\nFW01#"]
    assert device["config"] == before


def test_interface_lines_one_inspection_per_direction_and_fall_through_to_global():
    cli, device = session()
    type_lines(cli, "conf t", "interface FastEthernet0/0", "ip inspect LEGACY in", "description Branch LAN",
               "ip inspect name AUDIT http")  # a global line typed in interface mode: IOS leaves the interface
    assert cli.prompt == "FW01(config)#"
    text = device["config"]
    block = text.split("interface FastEthernet0/0\n")[1].split("!\n")[0]
    assert block.splitlines() == [" description Branch LAN", " ip address 10.20.5.1 255.255.255.0",
                                  " ip access-group 101 in", " ip inspect LEGACY in", " ip virtual-reassembly",
                                  " duplex auto", " speed auto"]
    assert "ip inspect name LEGACY ftp\nip inspect name AUDIT http\n!\n" in text  # with the other rules
    assert is_error(cli.handle("interface FastEthernet0/7"))  # no such port on a 2811
    type_lines(cli, "interface Loopback0", "ip address 10.255.0.1 255.255.255.255", "end")
    assert "!\ninterface Loopback0\n ip address 10.255.0.1 255.255.255.255\n!\nip forward-protocol nd" in device["config"]


def test_removing_a_rule_keeps_the_config_in_ios_order():
    cli, device = session()
    type_lines(cli, "configure terminal", "no ip inspect name LEGACY", "no ip inspect name MAILFW",
               "access-list 102 permit tcp any any established", "end")
    text = device["config"]
    assert "ip domain name corp.example\n!\nmultilink bundle-name authenticated\n" in text  # one separator left
    assert "access-list 102 deny   ip any any log\naccess-list 102 permit tcp any any established\n!\n" in text
    assert text.endswith("scheduler allocate 20000 1000\nend\n")
    assert re.search(r"^! Last configuration change at .* by netadmin$", text, re.M)


def test_write_memory_and_copy_running_config_save_to_startup():
    cli, device = session()
    type_lines(cli, "configure terminal", "no ip inspect name MAILFW smtp", "end")
    assert "MAILFW smtp" in device["startup_config"] and "MAILFW smtp" not in device["config"]
    assert cli.handle("copy running-config startup-config") == "\r\nDestination filename [startup-config]? "
    assert cli.handle("") == "\r\nBuilding configuration...\r\n[OK]\r\nFW01#"
    assert device["startup_config"] == device["config"]
    type_lines(cli, "conf t", "hostname EDGE01", "end")
    assert cli.prompt == "EDGE01#" and "hostname FW01" in device["startup_config"]
    assert cli.handle("write memory").endswith("[OK]\r\nEDGE01#") and "hostname EDGE01" in device["startup_config"]


def test_the_smtp_side_reads_the_rewritten_config_per_direction():
    cli, device = session()
    branch, office = "FastEthernet0/0", "FastEthernet0/1"  # EXCH05's side, EXCH01's side
    assert inspects_smtp(device, branch, office) and not inspects_smtp(device, office, branch)
    type_lines(cli, "configure terminal", "no ip inspect name MAILFW smtp")
    assert not inspects_smtp(device, branch, office)
    type_lines(cli, "interface Fa0/1", "ip inspect LEGACY out")  # leaving towards EXCH01: EXCH05 -> EXCH01 again
    assert inspects_smtp(device, branch, office) and not inspects_smtp(device, office, branch)


def test_a_state_dump_keeps_what_the_cli_changed(tmp_path):
    data = demo_data()
    fleet = load_scenario_data(data, "<demo>")
    device = next(d for d in fleet.network["devices"] if d["name"] == "FW01")
    type_lines(IosCli(device, lock=fleet.lock), "conf t", "no ip inspect name MAILFW smtp", "end")
    dump_state(fleet, tmp_path / "state.json")
    again = next(d for d in load_state(tmp_path / "state.json").network["devices"] if d["name"] == "FW01")
    assert again["config"] == device["config"] and "MAILFW smtp" not in again["config"]
    assert "MAILFW smtp" in again["startup_config"]  # not saved: a reload would bring it back


def test_an_image_without_esmtp_inspection_refuses_the_keyword_like_any_unknown_word():
    device = fw01(features={"esmtp_inspection": False})
    cli, _ = session(device)
    before = device["config"]
    cli.handle("configure terminal")
    for line in ("ip inspect name MAILFW esmtp", "no ip inspect name MAILFW esmtp", "ip inspect  name NEW   ESMTP timeout 60"):
        out = cli.handle(line)
        caret = len("FW01(config)#") + line.lower().rindex("esmtp")
        assert out == "\r\n" + " " * caret + "^\r\n% Invalid input detected at '^' marker.\r\n\r\nFW01(config)#", line
        assert is_error(out)
    assert device["config"] == before
    outs = type_lines(cli, "no ip inspect name MAILFW smtp", "ip inspect name MAILFW smtp timeout 3600")  # smtp it has
    assert not any(is_error(o) for o in outs) and "ip inspect name MAILFW smtp timeout 3600" in device["config"]
    cli, device = session(fw01(features={"esmtp_inspection": True}))  # as without features: the keyword is known
    type_lines(cli, "configure terminal", "ip inspect name NEW esmtp")
    assert "ip inspect name NEW esmtp" in device["config"]


def test_features_are_validated_and_kept_in_a_state_dump(tmp_path):
    with pytest.raises(ScenarioError, match="features"):
        fw01(features={"esmtp_inspection": "no"})
    with pytest.raises(ScenarioError, match="features"):
        fw01(features={"esmtp": False})
    data = demo_data()
    pix = next(d for d in data["network"]["devices"] if d["kind"] == "pix")
    pix["features"] = {"esmtp_inspection": False}
    with pytest.raises(ScenarioError, match=r"network\.devices\[\d\]\.features: IOS image features; device PIX01 is kind pix"):
        load_scenario_data(data, "<demo>")
    fleet = load_scenario_data(fw01_data(features={"esmtp_inspection": False}), "<fw01>")
    dump_state(fleet, tmp_path / "state.json")
    assert load_state(tmp_path / "state.json").network["devices"][0]["features"] == {"esmtp_inspection": False}


def test_rule_names_are_case_sensitive():
    cli, device = session()
    branch, office = "FastEthernet0/0", "FastEthernet0/1"  # EXCH05's side, EXCH01's side
    type_lines(cli, "configure terminal", "ip inspect name Mail smtp", "ip inspect name MAIL tcp",
               "interface FastEthernet0/1", "ip inspect MAIL in", "end")
    assert [line for line in device["config"].splitlines() if line.startswith(("ip inspect name Mail ", "ip inspect name MAIL "))] \
        == ["ip inspect name Mail smtp", "ip inspect name MAIL tcp"]  # two rules, not one
    assert not inspects_smtp(device, office, branch)  # MAIL (tcp) is applied, not Mail (smtp)
    type_lines(cli, "configure terminal", "interface FastEthernet0/1", "ip inspect Mail in", "end")
    assert inspects_smtp(device, office, branch)
    type_lines(cli, "configure terminal", "no ip inspect name MAIL", "end")
    assert "ip inspect name Mail smtp" in device["config"] and "ip inspect name MAIL " not in device["config"]
