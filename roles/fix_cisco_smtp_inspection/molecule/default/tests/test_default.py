"""Verify on the lab's router with its own CLI over SSH, independently of cisco.ios and the role."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402


def inspect_lines(command):
    return [line for line in labhost.device_run("FW01", command).splitlines() if line.startswith("ip inspect name ")]


def test_the_applied_rule_inspects_esmtp_not_smtp():
    lines = inspect_lines("show running-config")
    assert "ip inspect name MAILFW esmtp" in lines
    assert not any(line.startswith("ip inspect name MAILFW smtp") for line in lines)


def test_the_rule_applied_nowhere_is_left_alone_and_the_change_is_saved():
    assert "ip inspect name LEGACY smtp" in inspect_lines("show running-config")
    assert inspect_lines("show startup-config") == inspect_lines("show running-config")
