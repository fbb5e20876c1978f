# SMTP probes of many peers at once (PowerShell 2.0 has no jobs we can rely on
# over WinRS, so one loop drives every socket without blocking). Each target has
# its own deadline and its own name lookup (asynchronous, so a slow DNS answer
# for one peer costs no other peer its time), and anything one target throws (a
# connection an inspecting firewall resets) ends that target only. The
# conversation stops before DATA: connect, banner, EHLO, MAIL FROM, RCPT TO,
# RSET, QUIT. Raw replies are returned; the controller classifies them.
function Probe-Reply([string]$buf) {
    if (-not $buf.EndsWith("`r`n")) { return $null }
    $lines = $buf.TrimEnd("`r", "`n").Split([string[]]@("`r`n"), [StringSplitOptions]::None)
    $last = $lines[$lines.Length - 1]
    if ($last -match '^\d{3}( |$)') { return ($lines -join "`n") }
    return $null
}
function Probe-Send($t, [string]$line) {
    $b = [Text.Encoding]::ASCII.GetBytes($line + "`r`n"); $t.stream.Write($b, 0, $b.Length)
}
function Probe-Finish($t, [string]$why) {
    if ($why -ne '' -and $t.error -eq '') { $t.error = $why }
    if ($null -ne $t.client) { try { $t.client.Close() } catch { } }
    $t.total_ms = [int]$t.sw.ElapsedMilliseconds; $t.step = 'done'
}
function Probe-Self() {
    # This host's own FQDN and DNS domain, for a HELO or an address the controller left to the host.
    $g = [Net.NetworkInformation.IPGlobalProperties]::GetIPGlobalProperties()
    if ($g.DomainName -eq '') { return @($g.HostName, $g.HostName) }
    return @(($g.HostName + '.' + $g.DomainName), $g.DomainName)
}
function Probe-Step($t, $buf) {
    $ms = [int]$t.sw.ElapsedMilliseconds
    if ($ms -ge $t.timeout) {
        if ($t.step -eq 'resolve') { $t.connect = 'unresolved'; Probe-Finish $t ('timeout resolving ' + $t.target) }
        elseif ($t.step -eq 'connect') { $t.connect = 'timeout'; Probe-Finish $t 'timeout connecting' }
        else { Probe-Finish $t ('timeout waiting for ' + $t.step) }
        return
    }
    if ($t.step -eq 'resolve') {
        if (-not $t.pending.IsCompleted) { return }
        $ip = $null
        try {
            foreach ($x in [Net.Dns]::EndGetHostAddresses($t.pending)) { if ($x.AddressFamily -eq 'InterNetwork') { $ip = $x; break } }
        } catch { $t.connect = 'unresolved'; Probe-Finish $t (ErrText $_); return }
        if ($null -eq $ip) { $t.connect = 'unresolved'; Probe-Finish $t 'no IPv4 address'; return }
        $t.address = $ip.ToString(); $t.connect_start = $ms; $t.step = 'connect'
        $t.client = New-Object Net.Sockets.TcpClient
        $t.pending = $t.client.BeginConnect($ip, $t.port, $null, $null)
        return
    }
    if ($t.step -eq 'connect') {
        if (-not $t.pending.IsCompleted) { return }
        try {
            $t.client.EndConnect($t.pending); $t.connect = 'ok'; $t.connect_ms = $ms - $t.connect_start
            $t.stream = $t.client.GetStream(); $t.step = 'banner'
        } catch {
            $inner = $_.Exception.InnerException
            if ($null -ne $inner -and $inner.ErrorCode -eq 10061) { $t.connect = 'refused' } else { $t.connect = 'error' }
            Probe-Finish $t (ErrText $_)
        }
        return
    }
    $closed = $false
    while ($t.client.Available -gt 0) {
        $n = $t.stream.Read($buf, 0, $buf.Length)
        $t.buffer += [Text.Encoding]::ASCII.GetString($buf, 0, $n)
    }
    if ($t.client.Client.Poll(0, [Net.Sockets.SelectMode]::SelectRead) -and $t.client.Available -eq 0) { $closed = $true }
    $reply = Probe-Reply $t.buffer
    if ($null -eq $reply) {
        if ($closed) { Probe-Finish $t ('connection closed waiting for ' + $t.step) }
        return
    }
    $t.buffer = ''; $ok = $reply.StartsWith('250')
    switch ($t.step) {
        'banner' {
            $t.banner = $reply; $t.banner_ms = $ms - $t.connect_start
            if ($reply.StartsWith('220')) { Probe-Send $t ('EHLO ' + $t.helo); $t.step = 'ehlo' }
            else { Probe-Send $t 'QUIT'; Probe-Finish $t '' }
        }
        'ehlo' {
            $t.ehlo = $reply
            if ($ok) { Probe-Send $t ('MAIL FROM:<' + $t.from + '>'); $t.step = 'mail' }
            else { Probe-Send $t 'QUIT'; Probe-Finish $t '' }
        }
        'mail' {
            $t.mail = $reply
            if ($ok) { Probe-Send $t ('RCPT TO:<' + $t.rcpt_to + '>'); $t.step = 'rcpt' }
            else { Probe-Send $t 'QUIT'; Probe-Finish $t '' }
        }
        'rcpt' { $t.rcpt = $reply; Probe-Send $t 'RSET'; Probe-Send $t 'QUIT'; Probe-Finish $t '' }
    }
}
function Probe-Batch($batch) {
    $buf = New-Object byte[] 8192
    $self = Probe-Self
    foreach ($t in $batch) {
        if ($t.helo -eq '') { $t.helo = $self[0] }
        if ($t.from.EndsWith('@')) { $t.from += $self[1] }
        if ($t.rcpt_to.EndsWith('@')) { $t.rcpt_to += $self[1] }
        $t.sw = [Diagnostics.Stopwatch]::StartNew(); $t.step = 'resolve'; $t.buffer = ''; $t.connect_start = 0
        $t.connect = ''; $t.connect_ms = -1; $t.banner = ''; $t.banner_ms = -1; $t.ehlo = ''
        $t.mail = ''; $t.rcpt = ''; $t.error = ''; $t.address = ''; $t.client = $null
        try { $t.pending = [Net.Dns]::BeginGetHostAddresses($t.target.Trim('[', ']'), $null, $null) }
        catch { $t.connect = 'unresolved'; Probe-Finish $t (ErrText $_) }
    }
    do {
        $open = 0
        foreach ($t in $batch) {
            if ($t.step -eq 'done') { continue }
            $open++
            try { Probe-Step $t $buf }
            catch {
                # What one target throws (a peer or a firewall resetting the connection) ends that target only.
                if ($t.step -eq 'connect' -or $t.step -eq 'resolve') { $t.connect = 'error' }
                Probe-Finish $t ($t.step + ': ' + (ErrText $_))
            }
        }
        if ($open -gt 0) { Start-Sleep -Milliseconds 10 }
    } while ($open -gt 0)
    foreach ($t in $batch) {
        Row $t.op 'probe' @('target', $t.target, 'port', $t.port, 'address', $t.address, 'connect', $t.connect,
            'connect_ms', $t.connect_ms, 'banner', $t.banner, 'banner_ms', $t.banner_ms, 'ehlo', $t.ehlo,
            'mail', $t.mail, 'rcpt', $t.rcpt, 'total_ms', $t.total_ms, 'error', $t.error)
    }
}
