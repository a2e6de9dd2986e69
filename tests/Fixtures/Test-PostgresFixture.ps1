#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Smoke check of the PostgreSQL test fixture, without xunit: starts it, checks it through psql-free means and through
    Npgsql (PostgresSmoke), stops it, and checks that nothing is left behind. Prints the start and stop times and the
    server's memory.
.EXAMPLE
    dotnet pwsh tests/Fixtures/Test-PostgresFixture.ps1 -Cycles 5
#>
[CmdletBinding()]
param(
    # Further start/stop cycles after the checked one, for the timings only.
    [ValidateRange(0, 100)][int] $Cycles = 3,
    # Leave out the Npgsql checks (they build tests/Fixtures/PostgresSmoke first, ~10 s the first time).
    [switch] $SkipNpgsql
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$Root = Resolve-Path (Join-Path $PSScriptRoot '../..')
Import-Module (Join-Path $PSScriptRoot 'PostgresFixture.psm1') -Force

$script:Passed = 0
$script:Failed = 0
function Check([string] $What, [bool] $Ok, $Seen = $null) {
    if ($Ok) { $script:Passed++; Write-Host "ok    $What" } else { $script:Failed++; Write-Host "FAIL  $What (seen: $Seen)" }
}

function Get-ServerProcesses([int] $ServerPid) {
    # The postmaster and its children (backends and background processes).
    $children = @(Get-ChildItem /proc -Directory | Where-Object Name -Match '^\d+$' | ForEach-Object {
            try { $stat = [System.IO.File]::ReadAllText("/proc/$($_.Name)/stat") } catch { return }
            $fields = $stat.Substring($stat.LastIndexOf(')') + 2).Split(' ')
            if ([int]$fields[1] -eq $ServerPid) { [int]$_.Name }
        })
    @($ServerPid) + $children
}

function Get-MemoryKiB([int[]] $ProcessIds, [string] $Field) {
    # Pss shares each shared page among the processes that map it, so the sum is what the server costs; Rss counts
    # shared buffers once per process.
    $sum = 0
    foreach ($processId in $ProcessIds) {
        try { $rollup = [System.IO.File]::ReadAllLines("/proc/$processId/smaps_rollup") } catch { continue }
        $line = $rollup | Where-Object { $_ -match "^$($Field):" } | Select-Object -First 1
        if ($line) { $sum += [long]($line -split '\s+')[1] }
    }
    $sum
}

function Get-SharedMemory([int] $ServerPid) {
    # What a SIGKILL would leave behind: the SysV segment the postmaster created and its POSIX segments in /dev/shm.
    $sysv = @(Get-Content /proc/sysvipc/shm | Select-Object -Skip 1 | ForEach-Object {
            $f = $_.Trim() -split '\s+'
            if ([int]$f[4] -eq $ServerPid) { [int]$f[1] }
        })
    $posix = @(Get-Content "/proc/$ServerPid/maps" | ForEach-Object { if ($_ -match '(/dev/shm/PostgreSQL\.\d+)') { $Matches[1] } } | Sort-Object -Unique)
    [pscustomobject]@{ SysV = $sysv; Posix = $posix }
}

function Test-PortFree([int] $Port) {
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, $Port)
    try { $listener.Start(); $true } catch { $false } finally { $listener.Stop() }
}

$smoke = $null
if (-not $SkipNpgsql) {
    $smoke = Join-Path $Root 'out/tools/PostgresSmoke'
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    & dotnet build (Join-Path $PSScriptRoot 'PostgresSmoke/PostgresSmoke.csproj') -c Release -o $smoke --nologo -v quiet | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "Building tests/Fixtures/PostgresSmoke failed (exit $LASTEXITCODE): run the same dotnet build to see why." }
    Write-Host ("PostgresSmoke built in {0:N1} s" -f $clock.Elapsed.TotalSeconds)
}

$fixtureFile = Join-Path ([System.IO.Path]::GetTempPath()) ('om-pg-smoke-' + [guid]::NewGuid().ToString('n') + '.json')
$fixture = $null
$clock = [System.Diagnostics.Stopwatch]::StartNew()
try {
    $fixture = Start-PostgresFixture
    $startSeconds = $clock.Elapsed.TotalSeconds
    [ordered]@{ Postgres = $fixture } | ConvertTo-Json -Depth 4 | Set-Content -Path $fixtureFile
    $serverPid = $fixture.Pids[0]

    $uid = ((Get-Content "/proc/$serverPid/status" | Where-Object { $_ -match '^Uid:' }) -split '\s+')[1]
    if ([Environment]::IsPrivilegedProcess) {
        Check "started as root, the server runs as '$($fixture.ServerAccount)' (uid $uid)" ($uid -ne '0') $uid
    } else {
        Check "the server runs as the caller (uid $uid)" ($uid -eq (& id -u)) $uid
    }
    $dataMode = (Get-Item $fixture.DataFolder).UnixFileMode
    Check 'the data folder is private to the server account (0700)' ($dataMode -eq [System.IO.UnixFileMode]'UserRead, UserWrite, UserExecute') $dataMode
    Check 'the unix socket is in the data folder' (Test-Path (Join-Path $fixture.DataFolder ".s.PGSQL.$($fixture.Port)")) $fixture.DataFolder
    $listening = @(Get-Content /proc/net/tcp, /proc/net/tcp6 | Where-Object { $_ -match (':{0:X4} [0-9A-F:]+ 0A ' -f $fixture.Port) })
    Check 'the server listens on 127.0.0.1 only' ($listening.Count -eq 1 -and $listening[0] -match ' 0100007F:') ($listening -join ' | ')

    $processes = Get-ServerProcesses $serverPid
    $idlePss = Get-MemoryKiB $processes Pss
    $idleRss = Get-MemoryKiB $processes Rss
    $sharedMemory = Get-SharedMemory $serverPid

    if ($smoke) {
        $env:OBJECTMIGRATION_TEST_FIXTURES = $fixtureFile
        try { & dotnet (Join-Path $smoke 'PostgresSmoke.dll') | Out-Host } finally { Remove-Item Env:OBJECTMIGRATION_TEST_FIXTURES }
        Check 'the Npgsql checks pass (above)' ($LASTEXITCODE -eq 0) "exit $LASTEXITCODE"
    }
    $processes = Get-ServerProcesses $serverPid
    $usedPss = Get-MemoryKiB $processes Pss

    # Stopped as the tests' harness does: from the fixture file, in any process.
    $clock.Restart()
    (Get-Content $fixtureFile -Raw | ConvertFrom-Json).PSObject.Properties.Value | Stop-S3Fixture
    $stopSeconds = $clock.Elapsed.TotalSeconds
    $left = @($processes | Where-Object { Test-ProcessRunning $_ })
    Check 'every server process has ended' ($left.Count -eq 0) ($left -join ',')
    Check 'the work folder is removed' (-not (Test-Path $fixture.WorkFolder)) $fixture.WorkFolder
    Check 'the port is free again' (Test-PortFree $fixture.Port) $fixture.Port
    $sysvLeft = @(Get-Content /proc/sysvipc/shm | Select-Object -Skip 1 | ForEach-Object { [int](($_.Trim() -split '\s+')[1]) } | Where-Object { $_ -in $sharedMemory.SysV })
    $posixLeft = @($sharedMemory.Posix | Where-Object { Test-Path $_ })
    Check "no shared memory is left ($($sharedMemory.SysV.Count) SysV, $($sharedMemory.Posix.Count) POSIX segments while it ran)" ($sysvLeft.Count + $posixLeft.Count -eq 0) "$sysvLeft $posixLeft"
    $fixture = $null

    $starts = @($startSeconds); $stops = @($stopSeconds)
    foreach ($i in 1..$Cycles) {
        if ($Cycles -eq 0) { break }
        $clock.Restart(); $fixture = Start-PostgresFixture; $starts += $clock.Elapsed.TotalSeconds
        $clock.Restart(); $fixture | Stop-S3Fixture; $stops += $clock.Elapsed.TotalSeconds; $fixture = $null
    }
    $median = { param($values) $sorted = @($values | Sort-Object); $sorted[[int][math]::Floor(($sorted.Count - 1) / 2)] }
    $load = ((Get-Content /proc/loadavg) -split ' ')[0]
    Write-Host ''
    Write-Host ('PostgreSQL fixture, {0} start/stop cycles (load average {1} on {2} cores): start median {3:N2} s (first {4:N2} s, max {5:N2} s), stop median {6:N2} s (max {7:N2} s)' -f
        $starts.Count, $load, [Environment]::ProcessorCount, (& $median $starts), $starts[0], ($starts | Measure-Object -Maximum).Maximum,
        (& $median $stops), ($stops | Measure-Object -Maximum).Maximum)
    Write-Host ('Memory of the server ({0} processes): {1:N1} MiB PSS idle after start, {2:N1} MiB PSS after the Npgsql checks ({3:N1} MiB RSS summed)' -f
        $processes.Count, ($idlePss / 1024), ($usedPss / 1024), ($idleRss / 1024))
} finally {
    if ($fixture) { $fixture | Stop-S3Fixture }
    Remove-Item $fixtureFile -ErrorAction SilentlyContinue
}
Write-Host "$script:Passed passed, $script:Failed failed"
if ($script:Failed -gt 0) { exit 1 }
