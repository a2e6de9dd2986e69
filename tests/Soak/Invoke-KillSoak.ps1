<#
.SYNOPSIS
    The long form of the kill and crash tests (issue 19), run by build.ps1 -Task Soak: one Migrate job through -Kills
    SIGKILLs at random points, an inventory killed -FlushKills times while it writes its state as fast as it can, and
    several processes polling and steering one job. Crash.Tests.ps1 runs the short forms in CI.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Soak -Kills 50 -FlushKills 20
#>
param(
    [Parameter(Mandatory)][string] $ModulePath,
    [Parameter(Mandatory)][string] $FixtureFile,
    [ValidateRange(1, 10000)][int] $Kills = 50,
    [ValidateRange(1, 10000)][int] $FlushKills = 20,
    [int] $Seed = 19
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$env:OBJECTMIGRATION_TEST_FIXTURES = $FixtureFile
$env:OBJECTMIGRATION_TEST_MODULE = $ModulePath
. (Join-Path $PSScriptRoot '../ObjectMigration.Tests/TestSetup.ps1')
. (Join-Path $PSScriptRoot '../ObjectMigration.Tests/CrashHarness.ps1')
$env:OBJECTMIGRATION_STALE_SECONDS = '2'
$clients = Initialize-TestSession -TargetFixture $Fixtures.Ceph
$clock = [System.Diagnostics.Stopwatch]::StartNew()
$problems = @()

# Larger than the CI form, and more large objects as the kills grow; the harness paces the kills so the job outlives them.
$largeCount = [Math]::Clamp([int]($Kills / 8), 2, 12)
$large = @(0..($largeCount - 1) | ForEach-Object { 12 + (($_ * 3) % 9) })
$soak = Invoke-KillSoak -SourceClient $clients.Source -TargetClient $clients.Target -SourceConnector src -TargetConnector dst -ModulePath $ModulePath `
    -Kills $Kills -Seed $Seed -SmallObjects ([Math]::Clamp(30 * $Kills, 300, 3000)) -LargeMegabytes $large -MaxBytesPerSecond 8MB -Concurrency 4 -ListPageSize 5
$problems += $soak.Problems
$flush = Invoke-FlushKills -ModulePath $ModulePath -Kills $FlushKills -Objects ([Math]::Max(100000, 25000 * $FlushKills)) -Seed ($Seed + 4)
$problems += $flush.Problems
$concurrent = Invoke-ConcurrentControl -ModulePath $ModulePath -Pollers 4 -Pauses 5 -Objects 60000
$problems += $concurrent.Problems

Write-Host ''
$kinds = ($soak.Kills | Where-Object Killed | Group-Object Kind | ForEach-Object { "$($_.Name) $($_.Count)" }) -join ', '
Write-Host ("Migrate job: {0} kills survived ({1}; {4} more came after the run had ended); {2} objects ({3:N1} MiB) checked byte for byte on the target, each key once; " -f
    $soak.KillsSurvived, $kinds, $soak.ObjectsChecked, ($soak.Bytes / 1MB), $soak.Missed) -NoNewline
Write-Host ("{0} objects written a second time after a kill lost their recorded result (extra versions)." -f $soak.ExtraVersions)
if ($soak.ExtraVersions -gt 0) { $problems += "$($soak.ExtraVersions) objects were written a second time (extra versions on the target)." }
Write-Host ("Inventory: {0} kills survived while writing state, {1} of them tore a WAL write; {2} objects counted once; integrity_check ok after each." -f
    $flush.KillsSurvived, $flush.TornKills, $flush.Objects)
Write-Host ("Concurrency: {0} processes, {1} polls, 99th percentile {2} ms, slowest {3} ms, {4} pauses and resumes across processes; no 'database is locked'." -f
    $concurrent.Processes, $concurrent.Polls, $concurrent.P99PollMs, $concurrent.SlowestPollMs, $concurrent.Pauses)
Write-Host ("Soak took {0:N0} s." -f $clock.Elapsed.TotalSeconds)
if ($problems) {
    $problems | ForEach-Object { Write-Host "PROBLEM: $_" }
    exit 1
}
