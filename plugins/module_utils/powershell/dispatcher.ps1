# mailflow dispatcher/2 - PowerShell 2.0 on .NET 2.0, sent on stdin after the request line.
# The request is data: base64 lines of "operation<TAB>base64 arg<TAB>...". Nothing
# in it is ever evaluated as code. Every result leaves as one ASCII line
# "op-index<TAB>row-kind<TAB>name=<type><value>..." with text base64-encoded, so
# registry data, banners or event text can never break the framing.
# The traps this avoids are catalogued in docs/runner.md (and checked by tests/ps2_gate.py).
param([string]$Request)
$ErrorActionPreference = 'Stop'
$Utf8 = New-Object Text.UTF8Encoding($false)
$Inv = [Globalization.CultureInfo]::InvariantCulture
$AdUser = ''; $AdPass = ''; $WmiTimeout = 30  # the request's context; main.ps1 sets them

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
    for ($i = 0; $i -lt $pairs.Length; $i += 2) {
        [void]$sb.Append("`t").Append($pairs[$i]).Append('=').Append((Val $pairs[$i + 1]))
    }
    [Console]::Out.WriteLine($sb.ToString())
}
function ErrText($err) {
    # The message, plus what COM and ADSI keep underneath it: the error code and the directory's own words
    # (000004DC ... "a successful bind must be completed" is a DC refusing an anonymous caller).
    $ex = $err.Exception; $text = $ex.Message.Trim()
    while ($null -ne $ex) {
        if ($ex -is [Runtime.InteropServices.ExternalException]) {
            $text += ' (0x' + $ex.ErrorCode.ToString('X8', $Inv) + ')'
            if ($ex.GetType().Name -eq 'DirectoryServicesCOMException' -and $ex.ExtendedErrorMessage) { $text += ' ' + $ex.ExtendedErrorMessage.Trim() }
            break
        }
        $ex = $ex.InnerException
    }
    return $text
}
function Expand([string]$p) { return [Environment]::ExpandEnvironmentVariables($p) }
function Wql([string]$s) { return $s.Replace('\', '\\').Replace("'", "\'") }

# -- registry
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
    # The comma keeps a byte[] or string[] one object: a bare return unrolls it (REG_BINARY into
    # numbers, a one-item REG_MULTI_SZ into a string), and backups would restore them corrupted.
    return ,$key.GetValue($name, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
}
function RegWalk([int]$op, $key, [string]$path, [int]$depth) {
    Row $op 'key' @('path', $path)
    foreach ($n in $key.GetValueNames()) {
        Row $op 'value' @('key', $path, 'name', $n, 'type', $key.GetValueKind($n).ToString(), 'data', (RegData $key $n))
    }
    foreach ($s in $key.GetSubKeyNames()) {
        if ($depth -le 0) { Row $op 'subkey' @('key', $path, 'name', $s); continue }
        # One subkey this account may not read costs that subkey, not the whole walk.
        try { $child = $key.OpenSubKey($s, $false) } catch { Row $op 'denied' @('key', $path, 'name', $s, 'message', (ErrText $_)); continue }
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
    $path = Dec $a[0]; $name = Dec $a[1]; $type = Dec $a[2]; $raw = [string](Dec $a[3])
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
    $h = Hive $path; $new = RegFirstMissing $h[0] $h[1]
    $key = $h[0].CreateSubKey($h[1])
    # A key this write creates is named, so that undoing it can take the key away again (reg_prune).
    if ($new -ne '') { Row $op 'prev' @('existed', 0, 'created', ((RegHiveName $path) + '\' + $new)) } else { RegPrev $op $key $name }
    $key.SetValue($name, $v, [Microsoft.Win32.RegistryValueKind]$type); $key.Close()
    Row $op 'ok' @('path', $path, 'name', $name)
}
function RegHiveName([string]$path) { return $path.Replace('/', '\').Trim('\').Split('\')[0] }
function RegFirstMissing($root, [string]$sub) {
    # The outermost key of $sub that does not exist yet, '' when all do. A key this account may not open exists.
    $at = ''
    foreach ($part in $sub.Split('\')) {
        if ($at -eq '') { $at = $part } else { $at = $at + '\' + $part }
        try { $k = $root.OpenSubKey($at, $false) } catch { continue }
        if ($null -eq $k) { return $at }
        $k.Close()
    }
    return ''
}
function Op-RegPrune([int]$op, $a) {
    # Deletes the keys a write created, from $path out to $top, each only while it holds no value and no
    # subkey: an undo takes back the empty keys it made, never a key something has been written to since.
    $path = (Dec $a[0]).Replace('/', '\').Trim('\'); $top = (Dec $a[1]).Replace('/', '\').Trim('\')
    $inside = $path.Equals($top, [StringComparison]::OrdinalIgnoreCase) -or $path.StartsWith($top + '\', [StringComparison]::OrdinalIgnoreCase)
    if (-not $inside -or $top.IndexOf('\') -lt 0) { throw "$top does not hold $path" }
    $h = Hive $path; $root = $h[0]; $sub = $h[1]; $stop = (Hive $top)[1]; $hive = RegHiveName $path
    while ($sub.Length -ge $stop.Length -and $sub.IndexOf('\') -gt 0) {
        $key = $root.OpenSubKey($sub, $false)
        $i = $sub.LastIndexOf('\'); $parent = $sub.Substring(0, $i)
        if ($null -eq $key) { Row $op 'missing' @('path', ($hive + '\' + $sub)); $sub = $parent; continue }
        $held = ($key.ValueCount -gt 0) -or ($key.SubKeyCount -gt 0); $key.Close()
        if ($held) { Row $op 'kept' @('path', ($hive + '\' + $sub)); return }
        $up = $root.OpenSubKey($parent, $true)
        try { $up.DeleteSubKey($sub.Substring($i + 1), $false) } finally { $up.Close() }
        Row $op 'deleted' @('path', ($hive + '\' + $sub))
        $sub = $parent
    }
}
function Op-RegDelete([int]$op, $a) {
    $path = Dec $a[0]; $name = Dec $a[1]; $h = Hive $path
    $key = $h[0].OpenSubKey($h[1], $true)
    if ($null -eq $key) { Row $op 'missing' @('path', $path); return }
    RegPrev $op $key $name
    if ($key.GetValueNames() -contains $name) { $key.DeleteValue($name) }
    $key.Close(); Row $op 'ok' @('path', $path, 'name', $name)
}

# -- files
function Op-FileRead([int]$op, $a) {
    $p = Expand (Dec $a[0]); $max = [long](Dec $a[1]); $chunk = [long](Dec $a[2])
    if (-not [IO.File]::Exists($p)) { Row $op 'missing' @('path', $p); return }
    # IIS keeps MetaBase.xml open; share read/write so we never block it.
    $fs = [IO.File]::Open($p, 'Open', 'Read', 'ReadWrite')
    try {
        $fi = New-Object IO.FileInfo($p)
        $n = [Math]::Min($fs.Length, $max)
        Row $op 'file' @('path', $p, 'size', $fs.Length, 'mtime', $fi.LastWriteTime, 'read', $n)
        # A chunk at a time: a whole 8 MiB file as one base64 row needs 10-16x its size in memory,
        # past WinRM 2.0's MaxMemoryPerShellMB (150).
        $buf = New-Object byte[] ([int][Math]::Max([long]1, [Math]::Min($chunk, $n)))
        $off = [long]0
        while ($off -lt $n) {
            $got = $fs.Read($buf, 0, [int][Math]::Min([long]$buf.Length, $n - $off))
            if ($got -le 0) { break }
            if ($got -lt $buf.Length) { $part = New-Object byte[] $got; [Array]::Copy($buf, $part, $got) } else { $part = $buf }
            Row $op 'chunk' @('offset', $off, 'data', $part)
            $off += $got
        }
    } finally { $fs.Close() }
}
function Op-FileList([int]$op, $a) {
    $p = Expand (Dec $a[0]); $limit = [int](Dec $a[3])
    if (-not [IO.Directory]::Exists($p)) { Row $op 'missing' @('path', $p); return }
    $opt = [IO.SearchOption]::TopDirectoryOnly
    if ((Dec $a[1]) -eq '1') { $opt = [IO.SearchOption]::AllDirectories }
    $all = [IO.Directory]::GetFiles($p, (Dec $a[2]), $opt); $n = 0
    foreach ($f in $all) {
        if ($n -ge $limit) { Row $op 'truncated' @('total', $all.Length); break }
        # A queue file delivered between the listing and this read is gone: it costs its own row only.
        try {
            $fi = New-Object IO.FileInfo($f)
            Row $op 'file' @('path', $f, 'size', $fi.Length, 'mtime', $fi.LastWriteTime, 'ctime', $fi.CreationTime)
            $n++
        } catch { Row $op 'vanished' @('path', $f, 'message', (ErrText $_)) }
    }
}

# -- Active Directory and the IIS metabase (ADSI)
function AdEntry([string]$path) {
    # An explicit-credential bind when the request carries AD credentials: a process WinRM started over
    # NTLM (or Kerberos without delegation) has no credentials for the DC, the "second hop", and LDAP
    # would run as ANONYMOUS LOGON, which a DC refuses.
    if ($AdUser -ne '' -and $path.StartsWith('LDAP://', [StringComparison]::OrdinalIgnoreCase)) {
        return ,(New-Object -TypeName DirectoryServices.DirectoryEntry -ArgumentList $path, $AdUser, $AdPass, ([DirectoryServices.AuthenticationTypes]::Secure))
    }
    return ,(New-Object -TypeName DirectoryServices.DirectoryEntry -ArgumentList $path)
}
function AdsPath([string]$dn) {
    # IIS://localhost/SMTPSVC/1 is the IIS ADSI provider (the metabase); anything else is an AD DN.
    if ($dn.StartsWith('IIS://', [StringComparison]::OrdinalIgnoreCase)) { return $dn }
    if ($dn -eq '') {
        $nc = AttrValues (AdEntry 'LDAP://RootDSE').Properties 'configurationNamingContext'
        if ($null -eq $nc) { throw 'RootDSE has no configurationNamingContext' }
        $dn = $nc[0]
    }
    return 'LDAP://' + $dn.Replace('/', '\/')
}
function AttrValues($props, [string]$name) {
    # $null for an attribute the entry does not have. PowerShell 2.0 runs a foreach over $null once,
    # which would make an absent attribute [""]. Search results keep their names in lower case.
    $k = $name.ToLower()
    if (-not $props.Contains($k)) { return $null }
    $vals = @(); foreach ($v in $props[$k]) { $vals += [string]$v }
    return ,$vals
}
function LdapComputer() {
    # This computer's NetBIOS name (what Exchange names its server object after), escaped for an LDAP
    # filter (RFC 4515: backslash first, then * ( )). .NET's replacement strings treat backslash literally.
    return ($env:COMPUTERNAME -replace '\\', '\5c' -replace '\*', '\2a' -replace '\(', '\28' -replace '\)', '\29')
}
function Op-AdsiSearch([int]$op, $a) {
    $attrs = DecList $a[2]
    # {computer} in the filter is this computer's name; the base {computer-server} is its Exchange server
    # object, so a host reads its own part of the organisation, not every server's (issue 16: that grew as N^2).
    $filter = (Dec $a[1]).Replace('{computer}', (LdapComputer))
    $base = Dec $a[0]
    if ($base -eq '{computer-server}') {
        $own = New-Object -TypeName DirectoryServices.DirectorySearcher -ArgumentList (AdEntry (AdsPath '')), ('(&(objectClass=msExchExchangeServer)(cn=' + (LdapComputer) + '))')
        [void]$own.PropertiesToLoad.Add('distinguishedName')
        $own.SizeLimit = 1
        $base = $null
        # Disposed, as every search here: a SearchResultCollection's unmanaged memory is not freed by the GC
        # (DirectorySearcher.FindAll, Remarks).
        $hits = $own.FindAll()
        try {
            foreach ($r in $hits) { $dn = AttrValues $r.Properties 'distinguishedName'; if ($null -ne $dn) { $base = $dn[0] } }
        } finally { $hits.Dispose() }
        if ($null -eq $base) { return }  # AD has no Exchange server object for this computer: nothing under it
    }
    $s = New-Object -TypeName DirectoryServices.DirectorySearcher -ArgumentList (AdEntry (AdsPath $base)), $filter
    # Only ADsPath comes back unasked; distinguishedName must be asked for like any other attribute.
    [void]$s.PropertiesToLoad.Add('distinguishedName')
    foreach ($x in $attrs) { [void]$s.PropertiesToLoad.Add($x) }
    $s.PageSize = 500
    $found = $s.FindAll()
    try {
        foreach ($r in $found) {
            $dn = AttrValues $r.Properties 'distinguishedName'
            if ($null -eq $dn) { $dn = @($r.Path) }
            $pairs = @('dn', $dn[0])
            foreach ($x in $attrs) { $pairs += ('a:' + $x); $pairs += ,(AttrValues $r.Properties $x) }
            Row $op 'entry' $pairs
        }
    } finally { $found.Dispose() }
}
function Op-AdsiRead([int]$op, $a) {
    $path = Dec $a[0]; $e = AdEntry (AdsPath $path)
    $pairs = @('dn', $path)
    foreach ($x in (DecList $a[1])) { $pairs += ('a:' + $x); $pairs += ,(AttrValues $e.Properties $x) }
    Row $op 'entry' $pairs
}
function Op-AdsiWrite([int]$op, $a) {
    $e = AdEntry (AdsPath (Dec $a[0]))
    $attr = Dec $a[1]; $vals = DecList $a[2]; $asInt = (Dec $a[3]) -eq 'int'
    $prev = AttrValues $e.Properties $attr
    if ($null -eq $prev) { $prev = @() }
    Row $op 'prev' @('values', $prev)
    $e.Properties[$attr].Clear()
    foreach ($v in $vals) { if ($asInt) { [void]$e.Properties[$attr].Add([int]$v) } else { [void]$e.Properties[$attr].Add($v) } }
    $e.CommitChanges()
    # IIS keeps the metabase in memory and flushes MetaBase.xml later; SaveData (IIsComputer) writes it now,
    # so the verifying read of the file sees the change.
    if ((Dec $a[0]).StartsWith('IIS://', [StringComparison]::OrdinalIgnoreCase)) { [void]([ADSI]'IIS://localhost').psbase.Invoke('SaveData') }
    Row $op 'ok' @('dn', (Dec $a[0]), 'attr', $attr)
}

# -- WMI, with a timeout on every wait
function WmiQuery([string]$ns, [string]$wql) {
    # Get-WmiObject has no timeout, and a wedged provider (Exchange's queue provider) would hang the whole
    # command. Semisynchronous enumeration with EnumerationOptions.Timeout bounds each wait for an object.
    $opt = New-Object Management.EnumerationOptions
    $opt.Timeout = New-Object TimeSpan(0, 0, $WmiTimeout); $opt.ReturnImmediately = $true; $opt.Rewindable = $false
    $scope = New-Object Management.ManagementScope($ns); $query = New-Object Management.ObjectQuery($wql)
    $s = New-Object Management.ManagementObjectSearcher($scope, $query, $opt)
    return ,$s.Get()
}
function Op-Wmi([int]$op, $a) {
    $props = DecList $a[2]
    foreach ($o in (WmiQuery (Dec $a[0]) (Dec $a[1]))) {
        $pairs = @()
        foreach ($p in $props) {
            try { $v = $o.psbase.Properties[$p].Value } catch { $v = $null }
            $pairs += $p; $pairs += ,$v
        }
        Row $op 'object' $pairs
    }
}

# -- event log
function Op-EventLog([int]$op, $a) {
    $source = Dec $a[1]; $ids = [string[]](DecList $a[2]); $max = [int](Dec $a[4])
    $after = [DateTime]::Parse((Dec $a[3]), $Inv, [Globalization.DateTimeStyles]::AdjustToUniversal)
    # Newest first, stopping at the first entry older than $after. Get-EventLog -After reads the whole
    # log, tens of thousands of entries on a busy server, and fails outright when the log wraps under it.
    $log = New-Object Diagnostics.EventLog((Dec $a[0]))
    try {
        $entries = $log.Entries; $i = $entries.Count - 1; $n = 0; $scanned = 0
        while ($i -ge 0) {
            # An entry overwritten while we read (the log is full and wraps) ends the read here, with what we have.
            try { $e = $entries[$i] } catch { Row $op 'overwritten' @('scanned', $scanned, 'message', (ErrText $_)); break }
            $i--; $scanned++
            if ($e.TimeGenerated.ToUniversalTime() -lt $after) { break }
            $id = [int]($e.InstanceId -band 0xFFFF)
            if ($source -ne '' -and $e.Source -ne $source) { continue }
            if ($ids.Length -gt 0 -and -not ($ids -contains $id.ToString($Inv))) { continue }
            if ($n -ge $max) { Row $op 'truncated' @('max', $max); break }
            $n++
            Row $op 'event' @('time', $e.TimeGenerated, 'id', $id, 'source', $e.Source, 'type', $e.EntryType.ToString(), 'category', $e.Category, 'message', $e.Message)
        }
    } finally { $log.Dispose() }
}

# -- services
function Service([string]$name) {
    foreach ($s in (WmiQuery 'root\cimv2' ("SELECT * FROM Win32_Service WHERE Name='" + (Wql $name) + "'"))) { return $s }
    return $null
}
function SvcRow([int]$op, [string]$kind, $s) {
    Row $op $kind @('name', $s.Name, 'display_name', $s.DisplayName, 'state', $s.State, 'start_mode', $s.StartMode)
}
function Op-ServiceQuery([int]$op, $a) {
    foreach ($n in (DecList $a[0])) {
        $s = Service $n
        if ($null -eq $s) { Row $op 'missing' @('name', $n) } else { SvcRow $op 'service' $s }
    }
}
function WaitState([string]$name, [string]$want, [int]$seconds) {
    $until = [DateTime]::UtcNow.AddSeconds($seconds)
    do {
        if ((Service $name).State -eq $want) { return $true }
        Start-Sleep -Milliseconds 500
    } while ([DateTime]::UtcNow -lt $until)
    return $false
}
function Op-ServiceControl([int]$op, $a) {
    $name = Dec $a[0]; $action = Dec $a[1]; $wait = [int](Dec $a[2])
    $s = Service $name
    if ($null -eq $s) { Row $op 'missing' @('name', $name); return }
    SvcRow $op 'prev' $s
    $modes = @{ 'auto' = 'Automatic'; 'manual' = 'Manual'; 'disabled' = 'Disabled' }
    $r = 0; $reached = $true; $want = ''
    if ($modes.ContainsKey($action)) { $r = $s.ChangeStartMode($modes[$action]).ReturnValue }
    elseif ($action -eq 'stop' -or $action -eq 'restart') {
        if ($s.State -ne 'Stopped') { $r = $s.StopService().ReturnValue; if ($r -eq 0) { $want = 'Stopped'; $reached = WaitState $name 'Stopped' $wait } }
        if ($r -eq 0 -and $reached -and $action -eq 'restart') {
            $r = $s.StartService().ReturnValue; if ($r -eq 0) { $want = 'Running'; $reached = WaitState $name 'Running' $wait }
        }
    }
    elseif ($action -eq 'start') {
        if ($s.State -ne 'Running') { $r = $s.StartService().ReturnValue; if ($r -eq 0) { $want = 'Running'; $reached = WaitState $name 'Running' $wait } }
    }
    else { throw "unknown service action $action" }
    $now = Service $name
    if ($r -ne 0) { Row $op 'failed' @('code', [int]$r) }
    elseif (-not $reached) {
        # A wait that expires is a failure: what comes next (a metabase copy) must not run on a running IIS.
        Row $op 'failed' @('code', -1, 'message', ('still ' + $now.State + ' after ' + $wait + ' s waiting for ' + $want))
    }
    SvcRow $op 'service' $now
}

# -- Windows Installer features
function ComGet($o, [string]$name, [object[]]$argv) { return $o.GetType().InvokeMember($name, [Reflection.BindingFlags]::GetProperty, $null, $o, $argv) }
function ComCall($o, [string]$name, [object[]]$argv) { return $o.GetType().InvokeMember($name, [Reflection.BindingFlags]::InvokeMethod, $null, $o, $argv) }
function Op-MsiFeatures([int]$op, $a) {
    # Windows Installer's own automation object, for the products the Uninstall keys name by product code:
    # Win32_SoftwareFeature needs the optional WMI Windows Installer Provider and enumerates every product.
    # Titles and descriptions come from the product's cached package, states from Installer.FeatureState.
    $pattern = Dec $a[0]
    $un = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey('SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall', $false)
    if ($null -eq $un) { return }
    $inst = New-Object -ComObject WindowsInstaller.Installer
    try {
        foreach ($code in $un.GetSubKeyNames()) {
            if ($code -notmatch '^\{[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}$') { continue }
            try { $k = $un.OpenSubKey($code, $false) } catch { Row $op 'product_error' @('product', '', 'product_code', $code, 'message', (ErrText $_)); continue }
            if ($null -eq $k) { continue }
            try { $name = [string]$k.GetValue('DisplayName', ''); $ver = [string]$k.GetValue('DisplayVersion', '') } finally { $k.Close() }
            if (-not ($name -like $pattern)) { continue }
            try {
                $db = ComCall $inst 'OpenDatabase' @((ComGet $inst 'ProductInfo' @($code, 'LocalPackage')), 0)
                $view = ComCall $db 'OpenView' @('SELECT `Feature`, `Title`, `Description` FROM `Feature`')
                [void](ComCall $view 'Execute' @())
                while ($true) {
                    $rec = ComCall $view 'Fetch' @()
                    if ($null -eq $rec) { break }
                    $f = [string](ComGet $rec 'StringData' @(1))
                    Row $op 'feature' @('product', $name, 'product_code', $code, 'version', $ver, 'name', $f,
                        'caption', [string](ComGet $rec 'StringData' @(2)), 'description', [string](ComGet $rec 'StringData' @(3)),
                        'state', [int](ComGet $inst 'FeatureState' @($code, $f)))
                }
                [void](ComCall $view 'Close' @())
            } catch { Row $op 'product_error' @('product', $name, 'product_code', $code, 'message', (ErrText $_)) }
        }
    } finally { $un.Close() }
}

# -- network, files, programs
function Op-TcpConnections([int]$op, $a) {
    $port = Dec $a[0]
    foreach ($c in [Net.NetworkInformation.IPGlobalProperties]::GetIPGlobalProperties().GetActiveTcpConnections()) {
        if ($port -ne '' -and $c.RemoteEndPoint.Port.ToString($Inv) -ne $port) { continue }
        Row $op 'conn' @('local', $c.LocalEndPoint.ToString(), 'remote', $c.RemoteEndPoint.ToString(), 'state', $c.State.ToString())
    }
}
function Op-FileCopy([int]$op, $a) {
    $src = Expand (Dec $a[0]); $dst = Expand (Dec $a[1]); $keep = Expand (Dec $a[2])
    foreach ($n in (DecList $a[3])) {
        $svc = Service $n
        if ($null -ne $svc -and $svc.State -ne 'Stopped') { throw ('not copied: ' + $n + ' is ' + $svc.State + ', not Stopped') }
    }
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
    # ReadToEnd() before WaitForExit(ms) waits as long as the program runs, so the timeout never applied.
    # The output is read asynchronously (BeginRead runs on a .NET thread, no PowerShell callback) against
    # a deadline; a program still running then is killed.
    $until = [DateTime]::UtcNow.AddSeconds($wait)
    $stream = $p.StandardOutput.BaseStream; $buf = New-Object byte[] 4096; $out = New-Object IO.MemoryStream
    $ar = $null; $eof = $false
    while (-not $eof) {
        if ($null -eq $ar) { $ar = $stream.BeginRead($buf, 0, $buf.Length, $null, $null) }
        $left = [int][Math]::Max(0, ($until - [DateTime]::UtcNow).TotalMilliseconds)
        # WaitOne(int, bool): the one-argument overload is missing from .NET 2.0 before its service packs.
        if (-not $ar.AsyncWaitHandle.WaitOne([Math]::Min($left, 1000), $false)) { if ($left -le 0) { break }; continue }
        $got = $stream.EndRead($ar); $ar = $null
        if ($got -le 0) { $eof = $true } elseif ($out.Length -lt 1048576) { $out.Write($buf, 0, $got) }
    }
    $left = [int][Math]::Max(0, ($until - [DateTime]::UtcNow).TotalMilliseconds)
    if (-not $eof -or -not $p.WaitForExit($left)) {
        try { $p.Kill() } catch { }
        Row $op 'failed' @('code', -1, 'message', ('timed out after ' + $wait + ' s; the program was stopped'))
        return
    }
    $text = $p.StandardOutput.CurrentEncoding.GetString($out.ToArray())
    if ($text.Length -gt 4000) { $text = $text.Substring($text.Length - 4000) }
    $code = $p.ExitCode
    Row $op 'exit' @('code', $code, 'output', $text)
    if (-not ($okCodes -contains $code.ToString($Inv))) { Row $op 'failed' @('code', $code) }
}

# -- the self-test's own
function Op-Echo([int]$op, $a) { $t = [string](Dec $a[0]); Row $op 'echo' @('data', $t, 'length', $t.Length) }
function Op-Runtime([int]$op, $a) {
    $me = [Security.Principal.WindowsIdentity]::GetCurrent(); $proc = [Diagnostics.Process]::GetCurrentProcess()
    Row $op 'runtime' @('ps_version', $PSVersionTable.PSVersion.ToString(), 'clr_version', [Environment]::Version.ToString(),
        'os_version', [Environment]::OSVersion.Version.ToString(), 'user', $me.Name, 'auth_type', $me.AuthenticationType,
        'computer', [Environment]::MachineName, 'working_set', $proc.WorkingSet64, 'peak_working_set', $proc.PeakWorkingSet64)
}
