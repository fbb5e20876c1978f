# Runs every operation of the request in order; probes run together at the end
# so N peers cost one timeout, not N. An operation that throws reports an 'err'
# row and the next one still runs: one missing WMI namespace must not cost the
# whole snapshot. An operation that returns ends with a 'done' row: an answer that
# lacks one for an operation was cut short, however well it is framed. The request's first line is its context (AD credentials, WMI
# timeout): it is read here and never written anywhere.
[Console]::Out.WriteLine('MAILFLOW/1')
$ops = @{
    'reg_read' = 'Op-RegRead'; 'reg_write' = 'Op-RegWrite'; 'reg_delete' = 'Op-RegDelete'; 'reg_prune' = 'Op-RegPrune'
    'file_read' = 'Op-FileRead'; 'file_list' = 'Op-FileList'; 'adsi_search' = 'Op-AdsiSearch'
    'adsi_read' = 'Op-AdsiRead'; 'adsi_write' = 'Op-AdsiWrite'; 'wmi_query' = 'Op-Wmi'
    'eventlog' = 'Op-EventLog'; 'service_query' = 'Op-ServiceQuery'; 'service_control' = 'Op-ServiceControl'
    'msi_features' = 'Op-MsiFeatures'; 'tcp_connections' = 'Op-TcpConnections'
    'file_copy' = 'Op-FileCopy'; 'run_process' = 'Op-RunProcess'; 'echo' = 'Op-Echo'; 'runtime' = 'Op-Runtime'
}
$probes = @()
$lines = (Dec $Request).Split([char]10)
$head = $lines[0].Split([char]9)
if ($head.Length -ne 4 -or $head[0] -ne 'mailflow-request/2') { [Console]::Out.WriteLine('MAILFLOW-BADREQUEST'); exit 4 }
$AdUser = Dec $head[1]; $AdPass = Dec $head[2]; $WmiTimeout = [int](Dec $head[3])
for ($i = 1; $i -lt $lines.Length; $i++) {
    $n = $i - 1
    $f = $lines[$i].Split([char]9)
    $a = @(); if ($f.Length -gt 1) { $a = $f[1..($f.Length - 1)] }
    try {
        if ($f[0] -eq 'tcp_probe') {
            $probes += ,@{ 'op' = $n; 'target' = (Dec $a[0]); 'port' = [int](Dec $a[1]); 'timeout' = [int](Dec $a[2])
                'helo' = (Dec $a[3]); 'from' = (Dec $a[4]); 'rcpt_to' = (Dec $a[5]) }
        } elseif ($ops.ContainsKey($f[0])) {
            & $ops[$f[0]] $n $a
            Row $n 'done' @()
        } else {
            Row $n 'err' @('message', ('unknown operation ' + $f[0]))
        }
    } catch { Row $n 'err' @('message', (ErrText $_)) }
}
if ($probes.Length -gt 0) {
    try { Probe-Batch $probes } catch { foreach ($p in $probes) { Row $p.op 'err' @('message', (ErrText $_)) } }
}
[Console]::Out.WriteLine('MAILFLOW-END')
