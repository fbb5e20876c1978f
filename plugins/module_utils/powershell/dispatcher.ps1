# mailflow dispatcher/1 - PowerShell 2.0, sent on stdin after the request line.
# The request is data: base64 lines of "operation<TAB>base64 arg<TAB>...". Nothing
# in it is ever evaluated as code. Every result leaves as one ASCII line
# "op-index<TAB>row-kind<TAB>name=<type><value>..." with text base64-encoded, so
# registry data, banners or event text can never break the framing.
param([string]$Request)
$ErrorActionPreference = 'Stop'
$Utf8 = New-Object Text.UTF8Encoding($false)
$Inv = [Globalization.CultureInfo]::InvariantCulture

function Dec([string]$s) { if ($s -eq '') { return '' }; return $Utf8.GetString([Convert]::FromBase64String($s)) }
function DecList([string]$s) {
    $out = @()
    # An empty item travels as '-' so that @('') and @() differ.
    if ($s -ne '') { foreach ($p in $s.Split(',')) { if ($p -eq '-') { $out += '' } else { $out += (Dec $p) } } }
    return ,$out
}
function Enc([string]$s) { return [Convert]::ToBase64String($Utf8.GetBytes($s)) }
function Val($v) {
    if ($null -eq $v) { return 'n' }
    if ($v -is [byte[]]) { return 'b' + [Convert]::ToBase64String($v) }
    if ($v -is [DateTime]) { return 'd' + $v.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ', $Inv) }
    if ($v -is [bool]) { if ($v) { return 'i1' }; return 'i0' }
    if ($v -is [int] -or $v -is [long] -or $v -is [uint32] -or $v -is [uint64] -or $v -is [int16] -or $v -is [uint16] -or $v -is [byte]) {
        return 'i' + $v.ToString($Inv)
    }
    if ($v -is [Array]) {
        $items = @()
        foreach ($x in $v) { $e = Enc ([string]$x); if ($e -eq '') { $e = '-' }; $items += $e }
        return 'm' + ($items -join ',')
    }
    return 's' + (Enc ([string]$v))
}
function Row([int]$op, [string]$kind, [object[]]$pairs) {
    $sb = New-Object Text.StringBuilder
    [void]$sb.Append($op.ToString($Inv)).Append("`t").Append($kind)
    for ($i = 0; $i -lt $pairs.Count; $i += 2) {
        [void]$sb.Append("`t").Append($pairs[$i]).Append('=').Append((Val $pairs[$i + 1]))
    }
    [Console]::Out.WriteLine($sb.ToString())
}
function Expand([string]$p) { return [Environment]::ExpandEnvironmentVariables($p) }
function Wql([string]$s) { return $s.Replace('\', '\\').Replace("'", "\'") }

function Hive([string]$path) {
    $p = $path.Replace('/', '\').Trim('\')
    $i = $p.IndexOf('\')
    if ($i -lt 0) { $h = $p; $sub = '' } else { $h = $p.Substring(0, $i); $sub = $p.Substring($i + 1) }
    switch ($h.ToUpper()) {
        'HKLM' { return @([Microsoft.Win32.Registry]::LocalMachine, $sub) }
        'HKEY_LOCAL_MACHINE' { return @([Microsoft.Win32.Registry]::LocalMachine, $sub) }
        'HKU' { return @([Microsoft.Win32.Registry]::Users, $sub) }
        'HKEY_USERS' { return @([Microsoft.Win32.Registry]::Users, $sub) }
    }
    throw "unsupported registry hive $h"
}
function RegData($key, [string]$name) {
    return $key.GetValue($name, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
}
function RegWalk([int]$op, $key, [string]$path, [int]$depth) {
    Row $op 'key' @('path', $path)
    foreach ($n in $key.GetValueNames()) {
        Row $op 'value' @('key', $path, 'name', $n, 'type', $key.GetValueKind($n).ToString(), 'data', (RegData $key $n))
    }
    foreach ($s in $key.GetSubKeyNames()) {
        if ($depth -le 0) { Row $op 'subkey' @('key', $path, 'name', $s); continue }
        $child = $key.OpenSubKey($s, $false)
        if ($null -ne $child) { RegWalk $op $child ($path + '\' + $s) ($depth - 1); $child.Close() }
    }
}
function RegPrev([int]$op, $key, [string]$name) {
    if ($key.GetValueNames() -contains $name) {
        Row $op 'prev' @('existed', 1, 'type', $key.GetValueKind($name).ToString(), 'data', (RegData $key $name))
    } else { Row $op 'prev' @('existed', 0) }
}
function Op-RegRead([int]$op, $a) {
    $path = Dec $a[0]; $h = Hive $path
    $key = $h[0].OpenSubKey($h[1], $false)
    if ($null -eq $key) { Row $op 'missing' @('path', $path); return }
    RegWalk $op $key $path ([int](Dec $a[1])); $key.Close()
}
function Op-RegWrite([int]$op, $a) {
    $path = Dec $a[0]; $name = Dec $a[1]; $type = Dec $a[2]; $raw = Dec $a[3]
    switch ($type) {
        'DWord' { $v = [BitConverter]::ToInt32([BitConverter]::GetBytes([uint32]$raw), 0) }
        'QWord' { $v = [BitConverter]::ToInt64([BitConverter]::GetBytes([uint64]$raw), 0) }
        'MultiString' { $v = [string[]]$raw.Split([char]0) }
        'Binary' {
            $v = New-Object byte[] ($raw.Length / 2)
            for ($i = 0; $i -lt $v.Length; $i++) { $v[$i] = [Convert]::ToByte($raw.Substring($i * 2, 2), 16) }
        }
        'String' { $v = $raw }
        'ExpandString' { $v = $raw }
        default { throw "unsupported registry type $type" }
    }
    $h = Hive $path; $key = $h[0].CreateSubKey($h[1])
    RegPrev $op $key $name
    $key.SetValue($name, $v, [Microsoft.Win32.RegistryValueKind]$type); $key.Close()
    Row $op 'ok' @('path', $path, 'name', $name)
}
function Op-RegDelete([int]$op, $a) {
    $path = Dec $a[0]; $name = Dec $a[1]; $h = Hive $path
    $key = $h[0].OpenSubKey($h[1], $true)
    if ($null -eq $key) { Row $op 'missing' @('path', $path); return }
    RegPrev $op $key $name
    if ($key.GetValueNames() -contains $name) { $key.DeleteValue($name) }
    $key.Close(); Row $op 'ok' @('path', $path, 'name', $name)
}
function Op-FileRead([int]$op, $a) {
    $p = Expand (Dec $a[0]); $max = [int](Dec $a[1])
    if (-not [IO.File]::Exists($p)) { Row $op 'missing' @('path', $p); return }
    $fi = New-Object IO.FileInfo($p)
    # IIS keeps MetaBase.xml open; share read/write so we never block it.
    $fs = [IO.File]::Open($p, 'Open', 'Read', 'ReadWrite')
    try {
        $n = [int][Math]::Min($fs.Length, $max); $buf = New-Object byte[] $n
        $got = 0; while ($got -lt $n) { $r = $fs.Read($buf, $got, $n - $got); if ($r -le 0) { break }; $got += $r }
    } finally { $fs.Close() }
    Row $op 'file' @('path', $p, 'size', $fi.Length, 'mtime', $fi.LastWriteTime, 'data', $buf)
}
function Op-FileList([int]$op, $a) {
    $p = Expand (Dec $a[0]); $limit = [int](Dec $a[3])
    if (-not [IO.Directory]::Exists($p)) { Row $op 'missing' @('path', $p); return }
    $opt = [IO.SearchOption]::TopDirectoryOnly
    if ((Dec $a[1]) -eq '1') { $opt = [IO.SearchOption]::AllDirectories }
    $all = [IO.Directory]::GetFiles($p, (Dec $a[2]), $opt); $n = 0
    foreach ($f in $all) {
        if ($n -ge $limit) { Row $op 'truncated' @('total', $all.Length); break }
        $fi = New-Object IO.FileInfo($f); $n++
        Row $op 'file' @('path', $f, 'size', $fi.Length, 'mtime', $fi.LastWriteTime, 'ctime', $fi.CreationTime)
    }
}
function AdsPath([string]$dn) {
    # IIS://localhost/SMTPSVC/1 is the IIS ADSI provider (the metabase); anything else is an AD DN.
    if ($dn.StartsWith('IIS://', [StringComparison]::OrdinalIgnoreCase)) { return $dn }
    if ($dn -eq '') { $dn = [string]([ADSI]'LDAP://RootDSE').Properties['configurationNamingContext'][0] }
    return 'LDAP://' + $dn.Replace('/', '\/')
}
function Op-AdsiSearch([int]$op, $a) {
    $attrs = DecList $a[2]
    $root = New-Object -TypeName DirectoryServices.DirectoryEntry -ArgumentList (AdsPath (Dec $a[0]))
    $s = New-Object -TypeName DirectoryServices.DirectorySearcher -ArgumentList $root, (Dec $a[1])
    foreach ($x in $attrs) { [void]$s.PropertiesToLoad.Add($x) }
    $s.PageSize = 500
    foreach ($r in $s.FindAll()) {
        $pairs = @('dn', [string]$r.Properties['distinguishedname'][0])
        foreach ($x in $attrs) {
            $vals = @(); foreach ($v in $r.Properties[$x.ToLower()]) { $vals += [string]$v }
            $pairs += ('a:' + $x); $pairs += ,$vals
        }
        Row $op 'entry' $pairs
    }
}
function Op-AdsiWrite([int]$op, $a) {
    $e = New-Object -TypeName DirectoryServices.DirectoryEntry -ArgumentList (AdsPath (Dec $a[0]))
    $attr = Dec $a[1]; $vals = DecList $a[2]; $asInt = (Dec $a[3]) -eq 'int'
    $prev = @(); foreach ($v in $e.Properties[$attr]) { $prev += [string]$v }
    Row $op 'prev' @('values', $prev)
    $e.Properties[$attr].Clear()
    foreach ($v in $vals) { if ($asInt) { [void]$e.Properties[$attr].Add([int]$v) } else { [void]$e.Properties[$attr].Add($v) } }
    $e.CommitChanges()
    # IIS keeps the metabase in memory and flushes MetaBase.xml later; SaveData (IIsComputer) writes it now,
    # so the verifying read of the file sees the change.
    if ((Dec $a[0]).StartsWith('IIS://', [StringComparison]::OrdinalIgnoreCase)) { [void]([ADSI]'IIS://localhost').psbase.Invoke('SaveData') }
    Row $op 'ok' @('dn', (Dec $a[0]), 'attr', $attr)
}
function Op-Wmi([int]$op, $a) {
    $props = DecList $a[2]
    foreach ($o in @(Get-WmiObject -Namespace (Dec $a[0]) -Query (Dec $a[1]))) {
        $pairs = @()
        foreach ($p in $props) {
            try { $v = $o.psbase.Properties[$p].Value } catch { $v = $null }
            $pairs += $p; $pairs += ,$v
        }
        Row $op 'object' $pairs
    }
}
function Op-EventLog([int]$op, $a) {
    $source = Dec $a[1]; $ids = DecList $a[2]; $max = [int](Dec $a[4])
    $after = [DateTime]::Parse((Dec $a[3]), $Inv, [Globalization.DateTimeStyles]::AdjustToUniversal).ToLocalTime()
    $n = 0
    foreach ($e in @(Get-EventLog -LogName (Dec $a[0]) -After $after)) {
        $id = [int]($e.InstanceId -band 0xFFFF)
        if ($source -ne '' -and $e.Source -ne $source) { continue }
        if ($ids.Count -gt 0 -and -not ($ids -contains $id.ToString($Inv))) { continue }
        if ($n -ge $max) { Row $op 'truncated' @('max', $max); break }
        $n++
        Row $op 'event' @('time', $e.TimeGenerated, 'id', $id, 'source', $e.Source, 'type', $e.EntryType.ToString(), 'category', $e.Category, 'message', $e.Message)
    }
}
function Services() {
    $all = @{}
    foreach ($s in @(Get-WmiObject -Class Win32_Service)) { $all[$s.Name.ToLower()] = $s }
    return $all
}
function SvcRow([int]$op, [string]$kind, $s) {
    Row $op $kind @('name', $s.Name, 'display_name', $s.DisplayName, 'state', $s.State, 'start_mode', $s.StartMode)
}
function Op-ServiceQuery([int]$op, $a) {
    $all = Services
    foreach ($n in (DecList $a[0])) {
        $s = $all[$n.ToLower()]
        if ($null -eq $s) { Row $op 'missing' @('name', $n) } else { SvcRow $op 'service' $s }
    }
}
function WaitState([string]$name, [string]$want, [int]$seconds) {
    $until = [DateTime]::UtcNow.AddSeconds($seconds)
    do {
        $s = (Services)[$name.ToLower()]
        if ($s.State -eq $want) { return $s }
        Start-Sleep -Milliseconds 500
    } while ([DateTime]::UtcNow -lt $until)
    return $s
}
function Op-ServiceControl([int]$op, $a) {
    $name = Dec $a[0]; $action = Dec $a[1]; $wait = [int](Dec $a[2])
    $s = (Services)[$name.ToLower()]
    if ($null -eq $s) { Row $op 'missing' @('name', $name); return }
    SvcRow $op 'prev' $s
    $modes = @{ 'auto' = 'Automatic'; 'manual' = 'Manual'; 'disabled' = 'Disabled' }
    if ($modes.ContainsKey($action)) { $r = $s.ChangeStartMode($modes[$action]).ReturnValue }
    elseif ($action -eq 'stop' -or $action -eq 'restart') {
        $r = 0
        if ($s.State -ne 'Stopped') { $r = $s.StopService().ReturnValue; $s = WaitState $name 'Stopped' $wait }
        if ($r -eq 0 -and $action -eq 'restart') { $r = $s.StartService().ReturnValue; $s = WaitState $name 'Running' $wait }
    }
    elseif ($action -eq 'start') {
        $r = 0
        if ($s.State -ne 'Running') { $r = $s.StartService().ReturnValue; $s = WaitState $name 'Running' $wait }
    }
    else { throw "unknown service action $action" }
    if ($r -ne 0) { Row $op 'failed' @('code', [int]$r) }
    SvcRow $op 'service' ((Services)[$name.ToLower()])
}
function Op-MsiFeatures([int]$op, $a) {
    $q = "SELECT * FROM Win32_SoftwareFeature WHERE ProductName LIKE '" + (Wql (Dec $a[0])) + "'"
    foreach ($f in @(Get-WmiObject -Query $q)) {
        Row $op 'feature' @('product', $f.ProductName, 'product_code', $f.IdentifyingNumber, 'version', $f.Version,
            'name', $f.Name, 'caption', $f.Caption, 'description', $f.Description, 'state', $f.InstallState)
    }
}
function Op-TcpConnections([int]$op, $a) {
    $port = Dec $a[0]
    foreach ($c in [Net.NetworkInformation.IPGlobalProperties]::GetIPGlobalProperties().GetActiveTcpConnections()) {
        if ($port -ne '' -and $c.RemoteEndPoint.Port.ToString($Inv) -ne $port) { continue }
        Row $op 'conn' @('local', $c.LocalEndPoint.ToString(), 'remote', $c.RemoteEndPoint.ToString(), 'state', $c.State.ToString())
    }
}
function Op-FileCopy([int]$op, $a) {
    $src = Expand (Dec $a[0]); $dst = Expand (Dec $a[1]); $keep = Expand (Dec $a[2])
    if (-not [IO.File]::Exists($src)) { throw ('Could not find file ' + $src) }
    if ([IO.File]::Exists($dst)) {
        $fi = New-Object IO.FileInfo($dst)
        Row $op 'prev' @('existed', 1, 'size', $fi.Length, 'mtime', $fi.LastWriteTime, 'kept_as', $keep)
        if ($keep -ne '') { [IO.File]::Copy($dst, $keep, $true) }
    } else { Row $op 'prev' @('existed', 0) }
    [IO.File]::Copy($src, $dst, $true)
    Row $op 'ok' @('path', $dst)
}
function QuoteArg([string]$s) {
    # The argv rules of CommandLineToArgvW (and the C runtime): quote when needed, and
    # double the backslashes that precede a quote, so each item arrives as one argument.
    if ($s -ne '' -and $s -notmatch '[\s"]') { return $s }
    $sb = New-Object Text.StringBuilder; [void]$sb.Append('"'); $bs = 0
    foreach ($c in $s.ToCharArray()) {
        if ($c -eq [char]'\') { $bs++; continue }
        if ($c -eq [char]'"') { [void]$sb.Append([char]'\', 2 * $bs + 1) } elseif ($bs -gt 0) { [void]$sb.Append([char]'\', $bs) }
        [void]$sb.Append($c); $bs = 0
    }
    if ($bs -gt 0) { [void]$sb.Append([char]'\', 2 * $bs) }
    [void]$sb.Append('"'); return $sb.ToString()
}
function Op-RunProcess([int]$op, $a) {
    $exe = Expand (Dec $a[0]); $argv = DecList $a[1]; $wait = [int](Dec $a[2]); $okCodes = DecList $a[3]
    $q = @(); foreach ($x in $argv) { $q += (QuoteArg $x) }
    $psi = New-Object Diagnostics.ProcessStartInfo($exe, ($q -join ' '))
    $psi.UseShellExecute = $false; $psi.CreateNoWindow = $true; $psi.RedirectStandardOutput = $true
    $p = [Diagnostics.Process]::Start($psi)
    $out = $p.StandardOutput.ReadToEnd()
    if (-not $p.WaitForExit($wait * 1000)) { Row $op 'failed' @('code', -1, 'message', 'timed out'); return }
    if ($out.Length -gt 4000) { $out = $out.Substring($out.Length - 4000) }
    $code = $p.ExitCode
    Row $op 'exit' @('code', $code, 'output', $out)
    if (-not ($okCodes -contains $code.ToString($Inv))) { Row $op 'failed' @('code', $code) }
}
