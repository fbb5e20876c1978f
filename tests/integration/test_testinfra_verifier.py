"""An independent verifier (pytest-testinfra's winrm backend, cmd-level commands) sees lab state."""
import testinfra


def winrm_host(lab, name):
    h = lab.fleet.host(name)
    return testinfra.get_host(f"winrm://{h.username}:{h.password}@{h.address}:{h.ports['http']}?no_ssl=true")


def test_reg_query_sc_and_type_agree_with_lab_state(demo_lab):
    ex5 = winrm_host(demo_lab, "EXCH05")
    out = ex5.run(r'reg query "HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing" /v GlitchRetrySeconds')
    assert out.rc == 0 and "REG_DWORD" in out.stdout and "0x1e" in out.stdout  # 30 seconds
    missing = ex5.run(r'reg query "HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing" /v NoSuchValue')
    assert missing.rc == 1

    ex7 = winrm_host(demo_lab, "EXCH07")
    sc = ex7.run("sc query SMTPSVC")
    assert "STOPPED" in sc.stdout
    metabase = ex7.run(r"type %SystemRoot%\system32\inetsrv\MetaBase.xml")
    host = demo_lab.fleet.host("EXCH07")
    assert metabase.stdout.strip() == host.files.read(host.metabase_path).data.decode().strip()
