# mailflow bootstrap/1 - the only text on the command line (cmd.exe caps it at 8191 chars).
# stdin carries one line of base64 request, then the dispatcher script.
$ErrorActionPreference = 'Stop'
$mfIn = [Console]::In.ReadToEnd()
$mfAt = $mfIn.IndexOf([char]10)
$mfRequest = $mfIn.Substring(0, $mfAt).Trim()
& ([scriptblock]::Create($mfIn.Substring($mfAt + 1))) $mfRequest
