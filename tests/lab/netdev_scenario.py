"""FW01, the demo's IOS device, in a scenario of its own: shared by test_netdev_cli and test_netdev_ssh."""
from __future__ import annotations

from lab.scenario import load_scenario_data
from tests.conftest import demo_data


def fw01_data(**fields) -> dict:
    """A scenario of the demo's EXCH01 and EXCH05 with FW01 between them; fields added to FW01."""
    data = demo_data()
    data["hosts"] = {n: data["hosts"][n] for n in ("EXCH01", "EXCH05")}
    data["network"] = {"devices": [dict(d, **fields) for d in data["network"]["devices"] if d["name"] == "FW01"]}
    return data


def fw01(**fields) -> dict:
    """The demo's FW01 as the running lab keeps it (with fields added)."""
    return load_scenario_data(fw01_data(**fields), "<fw01>").network["devices"][0]
