"""Shared fixtures: labs on their own loopback blocks, started and always stopped."""
from __future__ import annotations

import copy
import itertools
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "lab", "scenarios", "demo.yml")
# 127.<block>.x.y: one block per running lab, so labs never share an address. Each pytest-xdist worker has
# its own range (gw0: 101-177, gw1: 178-254); within it the PID spreads concurrent test runs apart. Blocks are
# reused round-robin (a test's labs are stopped before the next test starts), all but the shared demo lab's.
# MAILFLOW_TEST_BLOCKS=LO-HI gives this run its own range instead (two checkouts tested at once on one
# machine); it is split between the two workers the same way.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0) % 2


def _block_range() -> tuple[int, int, int]:
    """(first block of this worker, how many, spread offset)."""
    spec = os.environ.get("MAILFLOW_TEST_BLOCKS")
    if not spec:
        return 101 + _WORKER * 77, 77, os.getpid() % 7 * 11
    lo, _, hi = spec.partition("-")
    lo, hi = int(lo), int(hi)
    if not 1 <= lo < hi <= 254:
        raise ValueError(f"MAILFLOW_TEST_BLOCKS={spec!r}: want LO-HI within 1-254")
    size = max(1, (hi - lo + 1) // 2)
    return lo + _WORKER * size, size, 0


_FIRST, _SIZE, _SPREAD = _block_range()
_ROUND_ROBIN = (_FIRST + (_SPREAD + n) % _SIZE for n in itertools.count())
_HELD: set[int] = set()  # blocks a session-scoped lab keeps for the whole run: never handed out again


def _blocks():
    for block in _ROUND_ROBIN:
        if block not in _HELD:
            yield block


_BLOCKS = _blocks()


def relocate(data: dict, hold: bool = False) -> dict:
    """The same scenario on a fresh 127.<n>.x.y block (hosts and network devices); hold: the block stays this
    lab's for the whole session (a session-scoped lab), so the round robin skips it."""
    data = copy.deepcopy(data)
    block = next(_BLOCKS)
    if hold:
        _HELD.add(block)
    for item in [*data["hosts"].values(), *((data.get("network") or {}).get("devices") or [])]:
        if "address" in item:
            item["address"] = re.sub(r"^127\.\d+\.", f"127.{block}.", item["address"])
    return data


def demo_data() -> dict:
    with open(DEMO, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture
def lab_factory(tmp_path):
    """start(data, mail_flow=False) -> a running Lab for that scenario data (relocated).

    Mail flow (lab/smtp/delivery.py) is opt-in here: most tests compare the fleet's state before and after
    something that must not change it, and delivery changes queues, links and events on its own."""
    from lab.core import Lab
    from lab.scenario import load_scenario_data

    started = []

    def start(data: dict, relocate_addresses: bool = True, mail_flow: bool = False):
        data = relocate(data) if relocate_addresses else data
        fleet = load_scenario_data(data, source="<test>")
        # Ansible drives these labs' IOS devices over libssh, which checks host keys against ~/.ssh/known_hosts only.
        lab_ = Lab(fleet, str(tmp_path / f"lab{len(started)}"), user_known_hosts=True, mail_flow=mail_flow).start()
        started.append(lab_)
        return lab_

    yield start
    for lab_ in started:
        lab_.stop()


@pytest.fixture(scope="session")
def demo_lab(tmp_path_factory):
    """The demo fleet, shared by tests that only read from it."""
    from lab.core import Lab
    from lab.scenario import load_scenario_data

    fleet = load_scenario_data(relocate(demo_data(), hold=True), source=DEMO)
    # As lab_factory; its state must not move under the tests that read it, so no mail flows.
    lab_ = Lab(fleet, str(tmp_path_factory.mktemp("demo-lab")), user_known_hosts=True, mail_flow=False).start()
    yield lab_
    lab_.stop()


@pytest.fixture(scope="session")
def demo_case():
    """The demo's golden case (tests/fixtures/snapshots/demo, `make golden`): its hosts and firewall facts, no lab."""
    from tests.support import golden
    return golden.load_case("demo")


@pytest.fixture
def demo_fleet():
    """fleet(edit=None, knowledge=None, declared=None, firewalls=False) -> a Fleet of the demo's golden snapshots,
    optionally edited (tests.support.golden.edited_fleet)."""
    from tests.support import golden

    def build(edit=None, knowledge=None, declared=None, firewalls=False):
        return golden.edited_fleet("demo", edit, knowledge, declared, firewalls)
    return build


@pytest.fixture(scope="session")
def demo_addresses(demo_case):
    """{host: its address} in the golden case."""
    return {h["name"]: h["address"] for h in demo_case[0]}
