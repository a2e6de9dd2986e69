# Shared by the bench scripts (dot-sourced).

# Wall time, CPU seconds and peak resident memory of one external command, by GNU time.
function Measure-Run {
    param([string] $Command, [string[]] $Arguments, [hashtable] $Environment = @{})
    $timing = [System.IO.Path]::GetTempFileName()
    $saved = @{}
    foreach ($name in $Environment.Keys) { $saved[$name] = [Environment]::GetEnvironmentVariable($name); [Environment]::SetEnvironmentVariable($name, $Environment[$name]) }
    try {
        $output = & /usr/bin/time -f '%e %U %S %M' -o $timing $Command @Arguments 2>&1
        $exit = $LASTEXITCODE
    } finally {
        foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
    }
    $fields = (Get-Content $timing | Select-Object -Last 1) -split ' '
    Remove-Item $timing
    if ($exit -ne 0) { throw "$Command failed ($exit): $($output | Select-Object -Last 8 | Out-String)" }
    [pscustomobject]@{ Wall = [double]$fields[0]; Cpu = [double]$fields[1] + [double]$fields[2]; PeakMB = [double]$fields[3] / 1024; Output = $output }
}
