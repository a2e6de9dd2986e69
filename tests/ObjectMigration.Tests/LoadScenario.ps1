# The load scenario of issue 19, shared by Load.Tests.ps1 (the short CI form) and bench/Measure-Load.ps1 (the long
# form, 50,000 objects): another process starts two jobs, then this session starts three (the big one at concurrency
# 64), and a third process polls Get-MigrationJobProgress and Get-MigrationJob in a loop the whole time, timing each
# call. All share one state folder. The big jobs copy from a synthetic S3 endpoint (tests/Fixtures/synthetic-s3.js:
# objects that exist as arithmetic, a target that keeps key, size and MD5 of what it is sent), so 50,000 objects need
# no seeding; the small ones copy real bytes between the s3rver pair. Invoke-LoadScenario returns what happened; the
# caller asserts or reports.
#
# Needs: the module imported in this session with OBJECTMIGRATION_HOME set to a fresh folder, and TestSetup.ps1's
# helpers (New-TestBucket, Write-TestObject, Read-TestObject, Get-TestBytes, New-TestCredential).

Import-Module (Join-Path $PSScriptRoot '../Fixtures/S3Fixtures.psm1') -Function Get-FreeTcpPort, Wait-Until

# A child pwsh (the same PowerShell that runs this: under 'dotnet pwsh', dotnet plus pwsh.dll) running a script file.
# Its output is drained by the thread pool as it comes, so a full pipe can never stall it.
function Start-LoadChild {
    param([Parameter(Mandatory)][string] $Script, [string[]] $Arguments = @())
    $startInfo = [System.Diagnostics.ProcessStartInfo]::new([Environment]::ProcessPath)
    if ([System.IO.Path]::GetFileNameWithoutExtension([Environment]::ProcessPath) -eq 'dotnet') { $startInfo.ArgumentList.Add([Environment]::GetCommandLineArgs()[0]) }
    foreach ($a in @('-NoProfile', '-NonInteractive', '-File', $Script) + $Arguments) { $startInfo.ArgumentList.Add($a) }
    $startInfo.UseShellExecute = $false
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    $process = [System.Diagnostics.Process]::Start($startInfo)
    [pscustomobject]@{ Process = $process; Output = $process.StandardOutput.ReadToEndAsync(); Errors = $process.StandardError.ReadToEndAsync() }
}

function Stop-LoadChild($Child) {
    if ($Child -and -not $Child.Process.HasExited) { $Child.Process.Kill($true); $null = $Child.Process.WaitForExit(10000) }
}

# The synthetic endpoint, on a free loopback port; stopped by Stop-LoadChild like the others.
function Start-SyntheticS3 {
    param([int] $ObjectSize = 512)
    $port = Get-FreeTcpPort
    $startInfo = [System.Diagnostics.ProcessStartInfo]::new('node')
    foreach ($a in @((Join-Path $PSScriptRoot '../Fixtures/synthetic-s3.js'), "$port", "$ObjectSize")) { $startInfo.ArgumentList.Add($a) }
    $startInfo.UseShellExecute = $false
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    $process = [System.Diagnostics.Process]::Start($startInfo)
    $child = [pscustomobject]@{ Process = $process; Output = $process.StandardOutput.ReadToEndAsync(); Errors = $process.StandardError.ReadToEndAsync(); Endpoint = "http://127.0.0.1:$port" }
    try {
        Wait-Until -What "the synthetic S3 endpoint on port $port" -TimeoutSeconds 30 -Condition {
            if ($process.HasExited) { throw "synthetic-s3.js exited with code $($process.ExitCode): $($child.Errors.Result)" }
            try { $null = Invoke-RestMethod "$($child.Endpoint)/__stats?bucket=probe" -TimeoutSec 2; $true } catch { $false }
        }
    } catch { Stop-LoadChild $child; throw }
    $child
}

function Get-Percentile([double[]] $Values, [double] $Percent) {
    if ($Values.Count -eq 0) { return $null }
    $sorted = [double[]]($Values | Sort-Object)
    # Nearest rank: the smallest value with at least Percent % of the values at or below it.
    $sorted[[Math]::Max(0, [int][Math]::Ceiling($Percent / 100 * $sorted.Count) - 1)]
}

# The poller: both cmdlets in a loop every IntervalMs until the stop file appears, each call timed. It also checks that
# no counter of a job ever goes down between two polls (an update lost or read torn), and keeps every error.
$script:PollerScript = @'
param([string] $ModulePath, [string] $StateHome, [string] $StopFile, [string] $ReadyFile, [string] $ResultFile, [int] $IntervalMs)
$ErrorActionPreference = 'Stop'
$env:OBJECTMIGRATION_HOME = $StateHome
Import-Module $ModulePath
$progressMs = [System.Collections.Generic.List[double]]::new()
$jobMs = [System.Collections.Generic.List[double]]::new()
$controlMs = [System.Collections.Generic.List[double]]::new()
$errors = [System.Collections.Generic.List[string]]::new()
$regressions = [System.Collections.Generic.List[string]]::new()
$last = @{}
$polls = 0
$coldProgressMs = $coldJobMs = $null
# The first round loads the engine and opens the store: it is the module's start-up, not a poll, and is not timed.
$null = @(Get-MigrationJobProgress); $null = @(Get-MigrationJob)
Set-Content -Path $ReadyFile -Value 'ready'
$clock = [System.Diagnostics.Stopwatch]::new()
while (-not (Test-Path $StopFile)) {
    try {
        # The first call of each that returns rows runs their reading code for the first time in this process (JIT):
        # it is kept apart as the cold call, the others are the polls.
        $clock.Restart()
        $progress = @(Get-MigrationJobProgress)
        if ($progress.Count -gt 0 -and $null -eq $coldProgressMs) { $coldProgressMs = $clock.Elapsed.TotalMilliseconds } else { $progressMs.Add($clock.Elapsed.TotalMilliseconds) }
        $clock.Restart()
        $jobs = @(Get-MigrationJob)
        if ($jobs.Count -gt 0 -and $null -eq $coldJobMs) { $coldJobMs = $clock.Elapsed.TotalMilliseconds } else { $jobMs.Add($clock.Elapsed.TotalMilliseconds) }
        # A control: a cmdlet that touches no store, timed the same way. What it takes is the machine (scheduling,
        # garbage collection), not the store.
        $clock.Restart()
        $null = Get-Date
        $controlMs.Add($clock.Elapsed.TotalMilliseconds)
        $polls++
        foreach ($p in $progress) {
            $now = @{ Objects = $p.Objects; Transferred = $p.TransferredObjects; Skipped = $p.SkippedObjects; Failed = $p.FailedObjects }
            if ($last[$p.Id]) {
                foreach ($name in $now.Keys) {
                    if ($now[$name] -lt $last[$p.Id][$name]) { $regressions.Add("$($p.Name): $name went from $($last[$p.Id][$name]) to $($now[$name])") }
                }
            }
            $last[$p.Id] = $now
            if ($p.TransferredObjects + $p.SkippedObjects + $p.FailedObjects -gt $p.Objects -and $p.Objects -gt 0) {
                $regressions.Add("$($p.Name): $($p.TransferredObjects) + $($p.SkippedObjects) + $($p.FailedObjects) done of $($p.Objects) found")
            }
        }
    } catch {
        $errors.Add("$($_.FullyQualifiedErrorId): $($_.Exception.Message)")
    }
    Start-Sleep -Milliseconds $IntervalMs   # the polling interval of a dashboard, not a wait for a condition
}
[pscustomobject]@{ Polls = $polls; ColdProgressMs = $coldProgressMs; ColdJobMs = $coldJobMs; ProgressMs = $progressMs; JobMs = $jobMs; ControlMs = $controlMs; Errors = $errors; Regressions = $regressions } |
    ConvertTo-Json -Depth 3 -Compress | Set-Content -Path $ResultFile
'@

# The other process: creates its two jobs, says so, and waits for both.
$script:OtherScript = @'
param([string] $ModulePath, [string] $StateHome, [string] $JobsJson, [string] $StartedFile, [string] $ResultFile, [int] $TimeoutSeconds)
$ErrorActionPreference = 'Stop'
$env:OBJECTMIGRATION_HOME = $StateHome
Import-Module $ModulePath
$jobs = foreach ($definition in ($JobsJson | ConvertFrom-Json -AsHashtable)) { New-MigrationJob @definition }
Set-Content -Path $StartedFile -Value 'started'
$finished = $jobs | ForEach-Object { Wait-MigrationJob -Id $_.Id -Timeout $TimeoutSeconds }
$finished | Select-Object Id, Name, StateName | ConvertTo-Json -Compress | Set-Content -Path $ResultFile
'@

function Invoke-LoadScenario {
    param(
        [Parameter(Mandatory)][string] $ModulePath,
        [Parameter(Mandatory)] $SourceFixture,
        [Parameter(Mandatory)] $TargetFixture,
        [Parameter(Mandatory)] $SourceClient,
        [Parameter(Mandatory)] $TargetClient,
        # The big job of this session, at -BigConcurrency; the other process's synthetic job has -MediumObjects.
        [int] $BigObjects = 5000,
        [int] $BigConcurrency = 64,
        [int] $MediumObjects = 1000,
        # Each s3rver job copies -SmallObjects of -SmallSize bytes at -SmallBytesPerSecond, so that all five jobs run at once.
        [int] $SmallObjects = 40,
        [int] $SmallSize = 4096,
        [long] $SmallBytesPerSecond = 12KB,
        [int] $PollIntervalMs = 50,
        [int] $TimeoutSeconds = 300
    )
    $work = Join-Path ([System.IO.Path]::GetTempPath()) ('om-load-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
    $null = New-Item -ItemType Directory -Path $work
    $files = @{}
    foreach ($name in 'poller.ps1', 'other.ps1', 'stop', 'ready', 'started', 'poller.json', 'other.json') { $files[$name] = Join-Path $work $name }
    Set-Content -Path $files['poller.ps1'] -Value $PollerScript
    Set-Content -Path $files['other.ps1'] -Value $OtherScript
    $synthetic = $poller = $other = $null
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        $synthetic = Start-SyntheticS3
        $null = New-CloudConnector -Name syn-source -Endpoint $synthetic.Endpoint -Credential ([pscredential]::new('AKSYNTHSOURCE', (ConvertTo-SecureString 'synthetic-source' -AsPlainText -Force)))
        # Other keys for the target, so the copy is a GET and a PUT per object, not a server-side copy.
        $null = New-CloudConnector -Name syn-target -Endpoint $synthetic.Endpoint -Credential ([pscredential]::new('AKSYNTHTARGET', (ConvertTo-SecureString 'synthetic-target' -AsPlainText -Force)))
        $null = New-CloudConnector -Name load-src -Endpoint $SourceFixture.Endpoint -Credential (New-TestCredential $SourceFixture)
        $null = New-CloudConnector -Name load-dst -Endpoint $TargetFixture.Endpoint -Credential (New-TestCredential $TargetFixture)

        $smallSource = New-TestBucket $SourceClient
        $seeded = @{}
        for ($i = 0; $i -lt $SmallObjects; $i++) {
            $key = 'small/{0:d4}.bin' -f $i
            $seeded[$key] = Get-TestBytes $SmallSize (7000 + $i)
            Write-TestObject $SourceClient $smallSource $key $seeded[$key]
        }
        $smallTargets = 1..3 | ForEach-Object { New-TestBucket $TargetClient }
        $small = @{ SourceConnector = 'load-src'; SourceBucket = $smallSource; TargetConnector = 'load-dst'; MaxBytesPerSecond = $SmallBytesPerSecond; Concurrency = 4 }
        $definitions = [ordered]@{
            'other-synthetic' = @{ Name = 'other-synthetic'; SourceConnector = 'syn-source'; SourceBucket = "src-$MediumObjects"; TargetConnector = 'syn-target'; TargetBucket = 'other-synthetic'; Concurrency = 16 }
            'other-s3rver'    = $small + @{ Name = 'other-s3rver'; TargetBucket = $smallTargets[0] }
            'big-synthetic'   = @{ Name = 'big-synthetic'; SourceConnector = 'syn-source'; SourceBucket = "src-$BigObjects"; TargetConnector = 'syn-target'; TargetBucket = 'big-synthetic'; Concurrency = $BigConcurrency; FixedConcurrency = $true }
            'session-s3rver-1' = $small + @{ Name = 'session-s3rver-1'; TargetBucket = $smallTargets[1] }
            'session-s3rver-2' = $small + @{ Name = 'session-s3rver-2'; TargetBucket = $smallTargets[2] }
        }

        $poller = Start-LoadChild $files['poller.ps1'] @($ModulePath, $env:OBJECTMIGRATION_HOME, $files['stop'], $files['ready'], $files['poller.json'], "$PollIntervalMs")
        Wait-Until -What 'the poller to start' -TimeoutSeconds 120 -Condition {
            if ($poller.Process.HasExited) { throw "The poller exited: $($poller.Errors.Result) $($poller.Output.Result)" }
            Test-Path $files['ready']
        }
        $otherJobs = ConvertTo-Json -Compress -Depth 3 @($definitions['other-synthetic'], $definitions['other-s3rver'])
        $other = Start-LoadChild $files['other.ps1'] @($ModulePath, $env:OBJECTMIGRATION_HOME, $otherJobs, $files['started'], $files['other.json'], "$TimeoutSeconds")
        Wait-Until -What 'the other process to start its jobs' -TimeoutSeconds 120 -Condition {
            if ($other.Process.HasExited) { throw "The other process exited: $($other.Errors.Result) $($other.Output.Result)" }
            Test-Path $files['started']
        }
        $started = [System.Diagnostics.Stopwatch]::StartNew()
        $sessionJobs = foreach ($name in 'big-synthetic', 'session-s3rver-1', 'session-s3rver-2') {
            $definition = $definitions[$name]
            New-MigrationJob @definition
        }
        $sessionFinished = $sessionJobs | ForEach-Object { Wait-MigrationJob -Id $_.Id -Timeout $TimeoutSeconds }
        $bigSeconds = ((Get-MigrationJob -Name big-synthetic).FinishedAt - (Get-MigrationJob -Name big-synthetic).StartedAt).TotalSeconds
        if (-not $other.Process.WaitForExit($TimeoutSeconds * 1000)) { throw "The other process did not end within $TimeoutSeconds s." }
        $jobsSeconds = $started.Elapsed.TotalSeconds
        Set-Content -Path $files['stop'] -Value 'stop'
        if (-not $poller.Process.WaitForExit(60000)) { throw 'The poller did not stop within 60 s of being asked.' }

        $polled = Get-Content $files['poller.json'] -Raw | ConvertFrom-Json
        $jobs = @(Get-MigrationJob | Sort-Object Name)
        $progress = @($jobs | ForEach-Object { Get-MigrationJobProgress -Id $_.Id })
        $errorsLogged = @($jobs | ForEach-Object { Get-MigrationJobLog -Id $_.Id -Type MigrationError, ImportErrorRetryExhaustion })
        # What each target holds: the synthetic endpoint's own count (every key once, every body the source's), and
        # the s3rver buckets read back and compared byte for byte.
        $syntheticTargets = foreach ($bucket in 'big-synthetic', 'other-synthetic') {
            $stats = Invoke-RestMethod "$($synthetic.Endpoint)/__stats?bucket=$bucket"
            [pscustomobject]@{ Bucket = $bucket; Expected = $(if ($bucket -eq 'big-synthetic') { $BigObjects } else { $MediumObjects }); Keys = $stats.keys; Puts = $stats.puts; Duplicates = $stats.duplicates; BadBodies = $stats.badBodies }
        }
        $s3rverTargets = foreach ($bucket in $smallTargets) {
            $keys = @(Get-TestKeys $TargetClient $bucket | Sort-Object)
            $different = @($seeded.Keys | Where-Object { $_ -notin $keys -or -not [System.Linq.Enumerable]::SequenceEqual([byte[]](Read-TestObject $TargetClient $bucket $_).Content, [byte[]]$seeded[$_]) })
            [pscustomobject]@{ Bucket = $bucket; Expected = $SmallObjects; Keys = $keys.Count; Different = $different.Count }
        }
        $all = [double[]]@($polled.ProgressMs) + [double[]]@($polled.JobMs)
        [pscustomobject]@{
            Jobs              = $jobs
            Progress          = $progress
            ErrorsLogged      = $errorsLogged
            SyntheticTargets  = @($syntheticTargets)
            S3rverTargets     = @($s3rverTargets)
            OtherExitCode     = $other.Process.ExitCode
            OtherErrors       = $other.Errors.Result
            PollerExitCode    = $poller.Process.ExitCode
            PollerErrors      = @($polled.Errors) + @(if ($poller.Errors.Result) { $poller.Errors.Result })
            Regressions       = @($polled.Regressions)
            Polls             = $polled.Polls
            # The slowest calls, to tell the store's waits (Microsoft.Data.Sqlite sleeps 150 ms a time when busy) from the machine's.
            Slowest           = [ordered]@{ Progress = @($polled.ProgressMs | Sort-Object -Descending | Select-Object -First 10); Job = @($polled.JobMs | Sort-Object -Descending | Select-Object -First 10); Control = @($polled.ControlMs | Sort-Object -Descending | Select-Object -First 10) }
            Latency           = [ordered]@{
                ProgressP50 = Get-Percentile $polled.ProgressMs 50; ProgressP99 = Get-Percentile $polled.ProgressMs 99; ProgressMax = ($polled.ProgressMs | Measure-Object -Maximum).Maximum
                JobP50      = Get-Percentile $polled.JobMs 50; JobP99 = Get-Percentile $polled.JobMs 99; JobMax = ($polled.JobMs | Measure-Object -Maximum).Maximum
                ProgressCold = $polled.ColdProgressMs; JobCold = $polled.ColdJobMs
                ControlP50  = Get-Percentile $polled.ControlMs 50; ControlP99 = Get-Percentile $polled.ControlMs 99; ControlMax = ($polled.ControlMs | Measure-Object -Maximum).Maximum
                AllP50      = Get-Percentile $all 50; AllP99 = Get-Percentile $all 99; AllMax = ($all | Measure-Object -Maximum).Maximum
            }
            BigObjects        = $BigObjects
            BigSeconds        = $bigSeconds
            JobsSeconds       = $jobsSeconds
            TotalSeconds      = $clock.Elapsed.TotalSeconds
            SessionFinished   = @($sessionFinished)
        }
    } finally {
        if ($poller -and -not $poller.Process.HasExited) { Set-Content -Path $files['stop'] -Value 'stop'; $null = $poller.Process.WaitForExit(10000) }
        Stop-LoadChild $poller
        Stop-LoadChild $other
        Stop-LoadChild $synthetic
        Get-MigrationJob -ErrorAction SilentlyContinue | Where-Object State -in 'Running', 'Pending' | Stop-MigrationJob -ErrorAction SilentlyContinue
        Remove-Item -Recurse -Force $work -ErrorAction SilentlyContinue
    }
}
