# Runs every operation of the request in order; probes run together at the end
# so N peers cost one timeout, not N. An operation that throws reports an 'err'
# row and the next one still runs: one missing WMI namespace must not cost the
# whole snapshot.
[Console]::Out.WriteLine('MAILFLOW/1')
$ops = @{
    'reg_read' = 'Op-RegRead'; 'reg_write' = 'Op-RegWrite'; 'reg_delete' = 'Op-RegDelete'
    'file_read' = 'Op-FileRead'; 'file_list' = 'Op-FileList'
    'adsi_search' = 'Op-AdsiSearch'; 'adsi_write' = 'Op-AdsiWrite'; 'wmi_query' = 'Op-Wmi'
    'eventlog' = 'Op-EventLog'; 'service_query' = 'Op-ServiceQuery'; 'service_control' = 'Op-ServiceControl'
    'msi_features' = 'Op-MsiFeatures'; 'tcp_connections' = 'Op-TcpConnections'
    'file_copy' = 'Op-FileCopy'; 'run_process' = 'Op-RunProcess'
}
$probes = @()
$lines = (Dec $Request).Split([char]10)
for ($i = 0; $i -lt $lines.Length; $i++) {
    $f = $lines[$i].Split([char]9)
    $a = @(); if ($f.Length -gt 1) { $a = $f[1..($f.Length - 1)] }
    try {
        if ($f[0] -eq 'tcp_probe') {
            $probes += ,@{ 'op' = $i; 'target' = (Dec $a[0]); 'port' = [int](Dec $a[1]); 'timeout' = [int](Dec $a[2])
                'helo' = (Dec $a[3]); 'from' = (Dec $a[4]); 'rcpt_to' = (Dec $a[5]) }
        } elseif ($ops.ContainsKey($f[0])) {
            & $ops[$f[0]] $i $a
        } else {
            Row $i 'err' @('message', ('unknown operation ' + $f[0]))
        }
    } catch { Row $i 'err' @('message', $_.Exception.Message) }
}
if ($probes.Length -gt 0) {
    try { Probe-Batch $probes } catch { foreach ($p in $probes) { Row $p.op 'err' @('message', $_.Exception.Message) } }
}
[Console]::Out.WriteLine('MAILFLOW-END')
