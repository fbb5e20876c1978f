"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

PRODUCT_CODE = "{5A8E4C1D-7E2B-4C59-A3F1-0B9D6E2F4A17}"  # SAV CE 9.0, lab/templates/symantec_antivirus_ce9.yml


def features():
    """{feature Name: {property: value}} of the SAV product, from `wmic ... /format:list`."""
    where = f"IdentifyingNumber='{PRODUCT_CODE}'"
    out = labhost.host("EXCH03").run(
        f'wmic path Win32_SoftwareFeature where "{where}" get Name,Caption,InstallState /format:list')
    assert out.rc == 0, out.stderr
    found, current = {}, {}
    # wmic ends its lines with CR CR LF when not writing to a console: split at LF only, or each line looks
    # followed by a blank one (the instance separator).
    for line in out.stdout.split("\n"):
        line = line.strip()
        if "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
        elif current:
            found[current["Name"]], current = current, {}
    if current:
        found[current["Name"]] = current
    return found


def test_internet_email_auto_protect_is_absent():
    pop3smtp = features()["Pop3Smtp"]
    assert pop3smtp["Caption"] == "Internet E-mail Auto-Protect"
    assert pop3smtp["InstallState"] == "2"  # Absent (was 3, Local)


def test_the_rest_of_the_product_kept_its_state():
    states = {name: f["InstallState"] for name, f in features().items()}
    assert states == {"SAVMain": "3", "Pop3Smtp": "2", "OutlookSnapin": "2"}


def test_symantec_antivirus_still_runs():
    assert "RUNNING" in labhost.host("EXCH03").run('sc query "Symantec AntiVirus"').stdout
