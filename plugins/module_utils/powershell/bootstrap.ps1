# mailflow bootstrap/2 - the only text on the command line (cmd.exe caps it at 8191 chars).
# stdin carries one line of base64 request, then the dispatcher script. PowerShell 2.0's
# console host reads redirected stdin itself and hands it over as $input, one string a line
# ([Console]::In finds it drained); 3.0+ does so when the command names $input.
$ErrorActionPreference = 'Stop'
$mfLines = @($input)
if ($mfLines.Length -lt 2) { [Console]::Out.WriteLine('MAILFLOW-NOINPUT ' + $mfLines.Length); exit 3 }
$mfScript = [string]::Join("`n", [string[]]$mfLines, 1, $mfLines.Length - 1)
$mfRequest = ([string]$mfLines[0]).Trim()
& ([scriptblock]::Create($mfScript)) $mfRequest
