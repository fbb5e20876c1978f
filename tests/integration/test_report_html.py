"""audit.html as a person sees it: headless Chromium (Debian's chromium + chromium-driver, through Selenium).

One browser for the module. The page is a real audit of the demo's saved snapshots whose
EXCH01 -> EXCH02 probe got a banner full of markup, and whose evidence, reasons
and host errors carry more: none of it may run, all of it must read as text.
`make test` installs chromium and chromium-driver when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import reports
from ansible_collections.mailflow.exchange.plugins.module_utils.reports.html import host_anchor
from tests.unit.test_reports import HOSTILE_BANNER, build_doc, hostile_probe, make_hostile

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    doc = make_hostile(build_doc(hostile_probe))
    paths = reports.write_all(doc, str(tmp_path_factory.mktemp("report")))
    return doc, paths


@pytest.fixture(scope="module")
def browser(report, tmp_path_factory):
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: `make test` installs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tmp_path_factory.mktemp("chromium-profile")
    options.add_argument(f"--user-data-dir={profile}")
    # An explicit driver path: Selenium Manager never runs, so nothing is downloaded.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        driver.get("file://" + report[1]["html"])
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _by(driver, css):
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, css)


def _cell(driver, host, cause):
    (cell,) = _by(driver, f'#fleet-matrix td[data-host="{host}"][data-cause="{cause}"]')
    return cell


def test_the_fleet_matrix_reads_in_words(browser, report):
    doc, _ = report
    cause = doc["causes"][0]["id"]
    assert _cell(browser, "EXCH03", cause).text == "present #1"
    assert _cell(browser, "EXCH01", cause).text == "absent"
    assert _cell(browser, "EXCH55", cause).text == "unknown"
    assert _cell(browser, "EXCH01", "ims_connection_leak").text == "n/a"  # Exchange 5.5's leak, on Exchange 2003
    # colour too, not only words: a present cell is not painted like an absent one
    assert _cell(browser, "EXCH03", cause).value_of_css_property("background-color") != \
        _cell(browser, "EXCH01", cause).value_of_css_property("background-color")
    headers = [th.text for th in _by(browser, "#fleet-matrix thead th")]
    assert headers == ["host"] + [c["id"] for c in doc["causes"]]
    rows = [tr.find_elements("css selector", "th")[0].text.split("\n")[0] for tr in _by(browser, "#fleet-matrix tbody tr")]
    assert rows == list(doc["hosts"])
    legend = _by(browser, "#legend")[0].text
    for word in ("present", "absent", "n/a", "unknown"):
        assert word in legend


def test_the_smtp_grid(browser, report):
    doc, _ = report
    cols = [th.text for th in _by(browser, "#smtp-grid thead th")]
    rows = [tr.find_elements("css selector", "th")[0].text for tr in _by(browser, "#smtp-grid tbody tr")]
    assert cols[0] == "from \\ to" and "EXCH02" in cols and "EXCH55" in cols
    assert rows[0] == "EXCH01" and "EXCH55" not in rows  # unmanaged: probed, never probing
    (probe,) = [p for p in doc["peers"] if p["from"] == "EXCH01" and p["to"] == "EXCH03"]
    cell = _by(browser, "#smtp-grid tbody tr")[rows.index("EXCH01")].find_elements("css selector", "td")[cols.index("EXCH03") - 1]
    assert cell.text == f"{probe['result']} {probe['ms']} ms" and probe["result"] == "filtered"
    hostile = _by(browser, "#smtp-grid tbody tr")[rows.index("EXCH01")].find_elements("css selector", "td")[cols.index("EXCH02") - 1]
    assert hostile.text.startswith("banner ")
    assert hostile.get_attribute("title") == HOSTILE_BANNER  # the banner, whole, as text in the tooltip


def _section(driver, doc, host):
    (section,) = _by(driver, f"#{host_anchor(list(doc['hosts']).index(host) + 1, host)}")
    return section


def test_a_present_cause_links_its_kb(browser, report):
    doc, _ = report
    finding = doc["hosts"]["EXCH03"]["findings"][0]
    assert finding["status"] == "present" and finding["rank"] == 1
    items = _section(browser, doc, "EXCH03").find_elements("css selector", "li.finding")
    assert len(items) == len(doc["summary"]["present"]["EXCH03"])
    item = items[0]  # rank order: #1 first
    assert finding["title"] in item.text and "#1" in item.text and finding["fix"] in item.text
    links = {a.text: a.get_attribute("href") for a in item.find_elements("css selector", "a.source")}
    assert links["KB919091"] == "https://support.microsoft.com/kb/919091"
    assert "Symantec 2004052415562048" in item.text and "Symantec 2004052415562048" not in links  # no URL to guess
    assert "Pop3Smtp" in item.text  # evidence is on the page


def test_nothing_from_a_host_runs_and_all_of_it_reads_as_text(browser, report):
    assert browser.execute_script("return typeof window.__mailflow_pwned") == "undefined"
    assert browser.execute_script("return document.scripts.length") == 0
    assert _by(browser, "img") == []
    browser.execute_script("document.getElementById('probes').open = true")
    body = _by(browser, "body")[0].text
    assert "<script>window.__mailflow_pwned = 1</script>" in body  # the banner, in the list of every probe
    assert "<script>window.__mailflow_pwned = 3</script>" in body  # evidence, reasons, host errors
    doc, _ = report
    unknown = _section(browser, doc, "EXCH55").find_elements("css selector", "ul.unknown li")
    assert "<script>window.__mailflow_pwned = 3</script>" in unknown[0].text


def test_the_page_renders_to_a_real_picture(browser, tmp_path):
    shot = tmp_path / "audit.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
