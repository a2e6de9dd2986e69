<#
.SYNOPSIS
    Runs the Pester suite against the built module in this fresh process and writes a JSON summary.
#>
param(
    [Parameter(Mandatory)][string] $PesterPath,
    [Parameter(Mandatory)][string] $ModulePath,
    [Parameter(Mandatory)][string] $SummaryPath,
    [string] $Filter = '*'
)
$ErrorActionPreference = 'Stop'
Import-Module $PesterPath -Force
$env:OBJECTMIGRATION_TEST_MODULE = $ModulePath
$configuration = New-PesterConfiguration
$configuration.Run.Path = @(Get-ChildItem $PSScriptRoot -Filter "$Filter.Tests.ps1" | ForEach-Object FullName)
$configuration.Run.PassThru = $true
$configuration.Output.Verbosity = 'Detailed'
$result = Invoke-Pester -Configuration $configuration
# What failed, a line each, for the end of the build's output (CI keeps only its tail).
$failures = @(
    foreach ($test in $result.Failed) { "$($test.ExpandedPath): $("$($test.ErrorRecord | Select-Object -First 1)" -split "`n" | Select-Object -First 3)" }
    foreach ($block in $result.FailedBlocks) { "$($block.Path -join ' '): $("$($block.ErrorRecord | Select-Object -First 1)" -split "`n" | Select-Object -First 3)" }
    foreach ($container in $result.FailedContainers) { "$($container.Item): $("$($container.ErrorRecord | Select-Object -First 1)" -split "`n" | Select-Object -First 3)" }
)
[pscustomobject]@{ Passed = $result.PassedCount; Failed = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount; Skipped = $result.SkippedCount; Failures = $failures } |
    ConvertTo-Json | Set-Content $SummaryPath
exit ($result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount)
