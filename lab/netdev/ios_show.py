"""What IOS prints: `show version`, and `show ... | include|exclude|begin|section REGEX` over a config.

``show version`` carries what cisco.ios's cliconf get_device_info parses:
``Version (\\S+)`` in the first line, the model from ``Cisco 2811 (revision
...``, ``HOST uptime is``, and ``System image file is "..."``.
"""
from __future__ import annotations

import re
import time

from lab.netdev.ios_config import IosConfig

CRLF = "\r\n"
INVALID = "% Invalid input detected at '^' marker."

# Software by the config's `version` line: (platform, image, full version, model line, compiled).
_SOFTWARE = {
    "12.4": ("2800 Software (C2800NM-ADVIPSERVICESK9-M)", "c2800nm-advipservicesk9-mz.124-24.T8.bin", "12.4(24)T8",
             "Cisco 2811 (revision 53.51) with 249856K/12288K bytes of memory.", "Mon 09-Jul-12 05:39"),
    "15.1": ("C2900 Software (C2900-UNIVERSALK9-M)", "c2900-universalk9-mz.SPA.151-4.M12a.bin", "15.1(4)M12a",
             "Cisco CISCO2911/K9 (revision 1.0) with 487424K/36864K bytes of memory.", "Tue 04-Oct-16 03:03"),
}
_UP_BEFORE_LAB = 41 * 7 * 24 * 60  # minutes: routers are not rebooted when a lab starts


def abbreviates(word: str, full: str, minimum: int = 1) -> bool:
    """IOS accepts any unambiguous prefix of a keyword; minimum is the shortest one that is unambiguous."""
    return len(word) >= minimum and full.lower().startswith(word.lower())


def version(hostname: str, config: str, booted_at: float) -> str:
    m = re.search(r"^version (\S+)", config, re.M)
    platform, image, full, model, compiled = _SOFTWARE.get(m.group(1) if m else "", _SOFTWARE["12.4"])
    minutes = int((time.time() - booted_at) // 60) + _UP_BEFORE_LAB
    weeks, rest = divmod(minutes, 7 * 24 * 60)
    days, rest = divmod(rest, 24 * 60)
    hours, mins = divmod(rest, 60)
    return CRLF.join([
        f"Cisco IOS Software, {platform}, Version {full}, RELEASE SOFTWARE (fc1)",
        "Technical Support: http://www.cisco.com/techsupport",
        "Copyright (c) 1986-2012 by Cisco Systems, Inc.",
        f"Compiled {compiled} by prod_rel_team",
        "",
        "ROM: System Bootstrap, Version 12.4(13r)T, RELEASE SOFTWARE (fc1)",
        "",
        f"{hostname} uptime is {weeks} weeks, {days} days, {hours} hours, {mins} minutes",
        "System returned to ROM by power-on",
        f'System image file is "flash:{image}"',
        "",
        model,
        "Processor board ID FTX1234A5BC",
        "2 FastEthernet interfaces",
        "1 Virtual Private Network (VPN) Module",
        "DRAM configuration is 64 bits wide with parity enabled.",
        "239K bytes of non-volatile configuration memory.",
        "62720K bytes of ATA CompactFlash (Read/Write)",
        "",
        "Configuration register is 0x2102",
    ])


def filtered(header: list[str], text: str, pipe: str) -> str:
    """A config as `show` prints it: its header and lines, or (after `|`) the lines the filter keeps."""
    lines = text.rstrip("\n").split("\n")
    if not pipe:
        return CRLF.join(header + lines)
    kind, _, pattern = pipe.partition(" ")
    try:
        regex = re.compile(pattern.strip())
    except re.error:
        return INVALID
    if abbreviates(kind, "include"):
        lines = [ln for ln in lines if regex.search(ln)]
    elif abbreviates(kind, "exclude"):
        lines = [ln for ln in lines if not regex.search(ln)]
    elif abbreviates(kind, "begin"):
        start = next((i for i, ln in enumerate(lines) if regex.search(ln)), len(lines))
        lines = lines[start:]
    elif abbreviates(kind, "section"):
        lines = _section(IosConfig.parse(text), regex)
    else:
        return INVALID
    return CRLF.join(lines)


def _section(config: IosConfig, regex: re.Pattern) -> list[str]:
    """Blocks whose first line matches, whole; of the others, the first line and the children that match."""
    out = []
    for entry in config.entries:
        if entry.is_separator:
            continue
        if regex.search(entry.text):
            out += [entry.text] + [" " + c for c in entry.children]
        else:
            hits = [" " + c for c in entry.children if regex.search(c)]
            out += [entry.text] + hits if hits else []
    return out
