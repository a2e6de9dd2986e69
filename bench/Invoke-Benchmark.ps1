<#
.SYNOPSIS
    Benchmarks, run by build.ps1 -Task Bench (not by CI). Prints the tables and writes bench/results.md.
#>
param([Parameter(Mandatory)][string] $ModulePath)
$ErrorActionPreference = 'Stop'
$rows = foreach ($count in 10000, 100000, 300000) {
    $row = & dotnet run -c Release --project (Join-Path $PSScriptRoot 'ListingMemory/ListingMemory.csproj') -- $count | Select-Object -Last 1
    if ($LASTEXITCODE -ne 0) { throw "ListingMemory $count failed: $row" }
    $row
}
$machine = "$([Environment]::ProcessorCount) cores, .NET $([Environment]::Version), $(Get-Date -Format 'yyyy-MM-dd')"
$table = @(
    '## Whole-job memory over a synthetic bucket (issue 3)'
    ''
    "Synthetic lister of 1 KiB objects into a discarding target: listing, SQLite state, scheduling and copies all run. $machine."
    ''
    '| objects | state | transferred | wall | objects/s | peak working set |'
    '|---:|---|---:|---:|---:|---:|'
    $rows
)
$table | Write-Host
Set-Content -Path (Join-Path $PSScriptRoot 'results.md') -Value (@('# Benchmark results', '') + $table)
