"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell.

`type` shows MetaBase.xml, its History pair and the kept damaged copy. The kept copy's name carries the UTC
time of the run and the lab's cmd has no `dir`, so its name is taken from the fix's backup record on the
controller; its content is compared with the damaged file the demo scenario starts from.
"""
import glob
import json
import os
import sys
import xml.etree.ElementTree as ET

import yaml

REPO = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..")
sys.path.insert(0, os.path.join(REPO, "tests", "molecule"))
import labhost  # noqa: E402

INETSRV = r"%SystemRoot%\system32\inetsrv"
PAIR = "0000000005_0000000000"  # the newest of the demo's usable History pairs (4 and 5)


def type_file(path):
    out = labhost.host("EXCH07").run(f'type "{path}"')
    assert out.rc == 0, out.stderr
    return out.stdout


def parse(text):
    return ET.fromstring(text.lstrip("\ufeff"))


def smtp_locations(root):
    return {node.get("Location") for node in root.iter() if node.tag.split("}")[-1] in ("IIsSmtpService", "IIsSmtpServer")}


def test_metabase_parses_and_is_the_history_pair():
    live = type_file(INETSRV + r"\MetaBase.xml")
    root = parse(live)  # was cut off mid-element: ParseError
    assert {"/LM/SmtpSvc", "/LM/SmtpSvc/1"} <= smtp_locations(root)
    assert live == type_file(rf"{INETSRV}\History\MetaBase_{PAIR}.xml")
    assert type_file(INETSRV + r"\MBSchema.xml") == type_file(rf"{INETSRV}\History\MBSchema_{PAIR}.xml")
    for name in ("IISADMIN", "W3SVC", "RESvc"):  # stopped around the copy, started again
        assert "RUNNING" in labhost.host("EXCH07").run(f"sc query {name}").stdout, name


def test_the_damaged_metabase_was_kept():
    backups = glob.glob(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "backups", "*", "EXCH07",
                                     "metabase_corrupt.json"))
    assert backups, "no metabase_corrupt backup record: nothing was restored"
    with open(max(backups, key=os.path.getmtime), encoding="utf-8") as fh:  # this run's (the newest)
        (change,) = [c for c in json.load(fh)["changes"] if c["target"]["path"].endswith("\\MetaBase.xml")]
    kept = change["target"]["keep_as"]
    assert kept.rsplit("\\", 1)[-1].startswith("MetaBase.corrupt-")
    with open(os.path.join(REPO, "lab", "scenarios", "demo.yml"), encoding="utf-8") as fh:
        damaged = yaml.safe_load(fh)["hosts"]["EXCH07"]["metabase"]["text"]
    text = type_file(kept)
    assert text.replace("\r\n", "\n") == damaged.replace("\r\n", "\n")
    try:
        parse(text)
    except ET.ParseError:
        pass
    else:
        raise AssertionError(f"{kept} parses: not the damaged file")
