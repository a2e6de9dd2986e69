<#
.SYNOPSIS
    Load, the long form (issue 19), not run by CI: a 50,000-object job at concurrency 64 and four more jobs in two
    processes on one store, Get-MigrationJobProgress and Get-MigrationJob polled from a third process all along. Prints
    the poller's latency (p50, p99, max) and checks what Load.Tests.ps1 checks; exits 1 when a check fails, so a soak
    task can run it. The short form is tests/ObjectMigration.Tests/Load.Tests.ps1; both run LoadScenario.ps1.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Build; dotnet pwsh -NoProfile -File bench/Measure-Load.ps1 -ModulePath ./out/ObjectMigration/ObjectMigration.psd1
#>
param(
    [Parameter(Mandatory)][string] $ModulePath,
    [ValidateRange(1000, 1000000)][int] $BigObjects = 50000,
    [ValidateRange(1, 256)][int] $BigConcurrency = 64,
    [ValidateRange(100, 1000000)][int] $MediumObjects = 10000,
    [ValidateRange(1, 10000)][int] $SmallObjects = 100,
    [ValidateRange(60, 86400)][int] $TimeoutSeconds = 1800
)
$ErrorActionPreference = 'Stop'
$Root = Split-Path $PSScriptRoot
$ModulePath = (Resolve-Path $ModulePath).Path
Import-Module (Join-Path $Root 'tests/Fixtures/S3Fixtures.psm1') -Force

# Not $fixtures: TestSetup.ps1 sets $Fixtures (names ignore case) to what it reads back from the file.
$started = [ordered]@{ S3rverSource = Start-S3rverFixture -Name load-source; S3rverTarget = Start-S3rverFixture -Name load-target }
$fixtureFile = Join-Path ([System.IO.Path]::GetTempPath()) ('om-load-fixtures-' + [guid]::NewGuid().ToString('n').Substring(0, 8) + '.json')
try {
    $started | ConvertTo-Json -Depth 4 | Set-Content $fixtureFile
    $env:OBJECTMIGRATION_TEST_FIXTURES = $fixtureFile
    $env:OBJECTMIGRATION_TEST_MODULE = $ModulePath
    . (Join-Path $Root 'tests/ObjectMigration.Tests/TestSetup.ps1')
    . (Join-Path $Root 'tests/ObjectMigration.Tests/LoadScenario.ps1')
    $clients = Initialize-TestSession
    # The s3rver jobs last about as long as the big one: their bytes over the big job's expected time (~500 objects/s).
    $smallRate = [long][Math]::Max(4KB, $SmallObjects * 4096 / [Math]::Max(10, $BigObjects / 500))
    $r = Invoke-LoadScenario -ModulePath $ModulePath -SourceFixture $Fixtures.S3rverSource -TargetFixture $Fixtures.S3rverTarget `
        -SourceClient $clients.Source -TargetClient $clients.Target -BigObjects $BigObjects -BigConcurrency $BigConcurrency `
        -MediumObjects $MediumObjects -SmallObjects $SmallObjects -SmallBytesPerSecond $smallRate -TimeoutSeconds $TimeoutSeconds

    $checks = [ordered]@{
        'every job Completed, counters adding up'    = @($r.Progress | Where-Object { $_.State -ne 'Completed' -or $_.FailedObjects -ne 0 -or $_.TransferredObjects + $_.SkippedObjects + $_.FailedObjects -ne $_.Objects }).Count -eq 0 -and $r.Jobs.Count -eq 5
        'the five ran at once'                       = ($r.Jobs | Measure-Object StartedAt -Maximum).Maximum -lt ($r.Jobs | Measure-Object FinishedAt -Minimum).Minimum
        'every synthetic object arrived once, intact' = @($r.SyntheticTargets | Where-Object { $_.Keys -ne $_.Expected -or $_.Puts -ne $_.Expected -or $_.Duplicates -or $_.BadBodies }).Count -eq 0
        'every s3rver object arrived, byte-identical' = @($r.S3rverTargets | Where-Object { $_.Keys -ne $_.Expected -or $_.Different }).Count -eq 0
        'no error in any process or job log'         = -not $r.ErrorsLogged -and -not $r.PollerErrors -and -not $r.OtherErrors -and $r.OtherExitCode -eq 0 -and $r.PollerExitCode -eq 0
        'no counter went down between polls'         = -not $r.Regressions
        'poller p99 under 200 ms'                    = $r.Latency.ProgressP99 -lt 200 -and $r.Latency.JobP99 -lt 200
    }
    $l = $r.Latency
    $big = $r.Progress | Where-Object Name -EQ 'big-synthetic'
    "## Load: $($BigObjects.ToString('N0'))-object job at concurrency $BigConcurrency, $(@($r.Jobs).Count) jobs in two processes, a poller in a third"
    ''
    "- big job: $($big.TransferredObjects.ToString('N0')) objects in $($r.BigSeconds.ToString('F1')) s ($(($big.TransferredObjects / [Math]::Max(0.001, $r.BigSeconds)).ToString('N0')) objects/s); all jobs $($r.JobsSeconds.ToString('F1')) s; whole run $($r.TotalSeconds.ToString('F1')) s"
    "- polls: $($r.Polls) (each both cmdlets), errors $(@($r.PollerErrors).Count), counters going down $(@($r.Regressions).Count)"
    ''
    '| call | p50 ms | p99 ms | max ms | first call with rows (cold) ms |'
    '|---|---|---|---|---|'
    '| Get-MigrationJobProgress | {0:F1} | {1:F1} | {2:F1} | {3:F0} |' -f $l.ProgressP50, $l.ProgressP99, $l.ProgressMax, $l.ProgressCold
    '| Get-MigrationJob | {0:F1} | {1:F1} | {2:F1} | {3:F0} |' -f $l.JobP50, $l.JobP99, $l.JobMax, $l.JobCold
    '| control (Get-Date, no store) | {0:F1} | {1:F1} | {2:F1} | |' -f $l.ControlP50, $l.ControlP99, $l.ControlMax
    ''
    foreach ($check in $checks.GetEnumerator()) { "- [$(if ($check.Value) { 'x' } else { ' ' })] $($check.Key)" }
    if ($checks.Values -contains $false) {
        $r | Select-Object Progress, SyntheticTargets, S3rverTargets, ErrorsLogged, PollerErrors, OtherErrors, Regressions | ConvertTo-Json -Depth 4 | Write-Host
        exit 1
    }
} finally {
    $started.Values | Stop-S3Fixture
    Remove-Item $fixtureFile -ErrorAction SilentlyContinue
    if ($env:OBJECTMIGRATION_HOME -and (Test-Path $env:OBJECTMIGRATION_HOME)) { Remove-Item -Recurse -Force $env:OBJECTMIGRATION_HOME -ErrorAction SilentlyContinue }
}
