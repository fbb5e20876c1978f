"""Symptom parsing: WMI DMTF times with their UTC offsets, and Event 4006 counted per remote host with its reason."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import symptoms


@pytest.mark.parametrize("text, utc", [
    ("20261123073508.000000+000", "2026-11-23T07:35:08"),
    ("20261123083508.000000+060", "2026-11-23T07:35:08"),   # CET: local 08:35 is 07:35 UTC
    ("20261123023508.000000-300", "2026-11-23T07:35:08"),   # EST
    ("20261123000000.000000+330", "2026-11-22T18:30:00"),   # offsets are minutes, not hours
    ("2026-11-23T07:35:08Z", "2026-11-23T07:35:08"),
])
def test_dmtf_times_honour_their_utc_offset(text, utc):
    assert symptoms.parse_time(text) == datetime.fromisoformat(utc).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["", None, "20261123.000000+000", "yyyymmddHHMMSS.mmmmmmsUUU", "2026-13-45T99:00:00"])
def test_unreadable_times_are_none(text):
    assert symptoms.parse_time(text) is None


def test_events_4006_count_every_wording_and_group_by_host(demo_addresses, demo_fleet):
    relay = demo_addresses["RELAY01"]  # the golden case's address of it

    def edit(s):
        events = s["EXCH03"]["items"]["events_4006"]["events"]
        events.append({"time": "2026-11-23T01:00:00Z", "message": f"Message delivery to the host '{relay}' failed "
                       "while delivering to the remote domain 'partner.example' for the following reason: The remote "
                       "SMTP service rejected AUTH negotiation."})
        events.append({"time": "2026-11-23T02:00:00Z", "message": "An SMTP protocol error occurred."})
    fleet = demo_fleet(edit=edit)
    ev = symptoms.events_4006(fleet, fleet["EXCH03"])
    per = {r["host"]: r for r in ev["per_remote"]}
    assert ev["count"] == 4 and ev["remote_hosts"] == ["EXCH02", "RELAY01"]
    assert per["EXCH02"]["reasons"] == {"connection_dropped": 2}
    assert per["RELAY01"]["reasons"] == {"auth_rejected": 1} and per["RELAY01"]["address"] == relay
    assert per[None]["reasons"] == {"smtp_error": 1} and per[None]["remote"] is None


def test_queue_retry_reads_no_undocumented_property(demo_fleet):
    fleet = demo_fleet()
    retry = symptoms.queue_retry(fleet, fleet["EXCH05"])
    assert retry["observed"] and all("error_text" not in link for link in retry["links"])
