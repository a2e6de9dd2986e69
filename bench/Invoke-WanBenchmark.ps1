<#
.SYNOPSIS
    The WAN benchmark (issue 20), run by build.ps1 -Task Bench -Scenario Wan (not by CI): ObjectMigration and rclone
    copying between two Ceph RGW gateways, each behind the bench tool's latency relay, at several round-trip times.
.DESCRIPTION
    One relay process sits in front of each gateway (source and target); its settings change between RTT levels. At
    RTT > 0 each direction of each relay is also capped (-Mbit), as a WAN link is. Per RTT and workload, the tools run
    once each, one after the other, the order reversed every other cell: ours with default settings, ours at fixed
    concurrency (-Sweep; the fastest is 'ours-best'), rclone with its defaults, and rclone with --transfers and
    --checkers at our best concurrency (so it runs after the sweep). After a tool's copy of the small set, ours-default
    and both rclone rows copy it again into the complete target: the no-op re-run. Ratios compare rows of the same run.
    Before the runs, the relay's own cost is measured (relay-cost: an echo server and a relay in one process) and the
    relay is probed against the real gateways (relay-probe). Each row also has the relay's and the gateways' CPU, and the
    requests by method and the connections each side saw (counted by the relays), so per-object round trips show.
.EXAMPLE
    dotnet pwsh bench/Invoke-WanBenchmark.ps1 -ModulePath out/ObjectMigration/ObjectMigration.psd1 -Quick
.EXAMPLE
    dotnet pwsh -c '& bench/Invoke-WanBenchmark.ps1 -ModulePath out/ObjectMigration/ObjectMigration.psd1 -Rtt 50 -Workload small,rerun -Tool ours-default,rclone-default -ResultsPath /tmp/wan.md'

    A subset, to iterate on one figure (lists need -c: a script run with -File takes each argument as one string).
#>
param(
    [Parameter(Mandatory)][string] $ModulePath,
    # Round trips in ms; each relay holds every chunk for half of it in each direction.
    [ValidateRange(0, 1000)][int[]] $Rtt = @(0, 20, 50, 100),
    # small: 5,000 x 16 KiB; medium: 200 x 4 MiB; large: 4 x 256 MiB; rerun: a copy of the small set into its complete
    # target (needs small's copies, which then run whether or not 'small' is listed).
    [ValidateSet('small', 'medium', 'large', 'rerun')][string[]] $Workload = @('small', 'medium', 'large', 'rerun'),
    [ValidateSet('ours-default', 'ours-sweep', 'rclone-default', 'rclone-best')][string[]] $Tool = @('ours-default', 'ours-sweep', 'rclone-default', 'rclone-best'),
    # The fixed concurrency levels of 'ours-sweep' (New-MigrationJob -Concurrency N -FixedConcurrency, 1-1024).
    [ValidateRange(1, 1024)][int[]] $Sweep = @(4, 16, 64, 256),
    # rclone-best's --transfers/--checkers when no sweep ran in the cell.
    [ValidateRange(1, 1024)][int] $RcloneConcurrency = 64,
    # Cap per direction of each relay at RTT > 0, Mbit/s; 0: none.
    [ValidateRange(0, 100000)][int] $Mbit = 200,
    # Round trips a new connection waits before its first byte (TCP + TLS 1.3 handshakes of an HTTPS provider).
    [ValidateRange(0, 10)][int] $HandshakeRtts = 2,
    # Smaller sets (small 500, medium 20, large 1) at 50 ms only unless -Rtt is given: a few minutes.
    [switch] $Quick,
    # Times each cell's tools run, the order reversed every other round (and cell); the ratios use each tool's fastest
    # run, so the first run after seeding or a burst of noise does not decide a figure alone.
    [ValidateRange(1, 5)][int] $Rounds = 1,
    # Where the section "## Across a WAN (issue 20)" is written; each run adds a subsection at its top.
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md')
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$Root = Split-Path $PSScriptRoot
Import-Module (Join-Path $Root 'tests/Fixtures/S3Fixtures.psm1') -Force
$ModulePath = (Resolve-Path $ModulePath).Path
if ($Quick -and -not $PSBoundParameters.ContainsKey('Rtt')) { $Rtt = @(50) }
$counts = if ($Quick) { @{ small = 500; medium = 20; large = 1 } } else { @{ small = 5000; medium = 200; large = 4 } }
$objectSize = @{ small = 16KB; medium = 4MB; large = 256MB }

$benchProject = Join-Path $PSScriptRoot 'ObjectMigration.Bench/ObjectMigration.Bench.csproj'
& dotnet build -c Release $benchProject --nologo -v quiet | Out-Host
if ($LASTEXITCODE -ne 0) { throw 'The benchmark tool did not build.' }
$benchDll = Join-Path $PSScriptRoot 'ObjectMigration.Bench/bin/Release/net10.0/ObjectMigration.Bench.dll'
$pwshHost = [Environment]::ProcessPath
$pwshArguments = @(if ([System.IO.Path]::GetFileNameWithoutExtension($pwshHost) -eq 'dotnet') { [Environment]::GetCommandLineArgs()[0] })
$cores = [Environment]::ProcessorCount
$clockTicks = [double](& getconf CLK_TCK)

function Invoke-Bench { & dotnet $benchDll @args; if ($LASTEXITCODE -ne 0) { throw "bench tool $($args[0]) failed ($LASTEXITCODE)" } }

# CPU seconds (utime + stime) of a process from its /proc stat file; 0 once it is gone.
function Get-StatCpu([int] $ProcessId) {
    $s = Get-Content "/proc/$ProcessId/stat" -Raw -ErrorAction SilentlyContinue
    if (-not $s) { return 0 }
    $f = $s.Substring($s.LastIndexOf(')') + 2) -split ' '
    ([long]$f[11] + [long]$f[12]) / $clockTicks
}

. (Join-Path $PSScriptRoot 'Measure-Run.ps1')

function Get-Tagged($Output, [string] $Tag) {
    $line = $Output | Where-Object { "$_" -like "$Tag *" } | Select-Object -Last 1
    if ($line) { "$line".Substring($Tag.Length + 1) }
}

# The relay process: one relay per gateway, its settings set through its stdin, one answer line per command.
function Start-Relay([string[]] $Upstreams) {
    $startInfo = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
    foreach ($a in @($benchDll, 'relay') + ($Upstreams | ForEach-Object { '--upstream', ([uri]$_).Authority })) { $startInfo.ArgumentList.Add($a) }
    # Socket completions run on the epoll thread, not handed to the thread pool, and its idle workers do not spin: each
    # hop and spin costs more CPU than relaying the chunk (0.25 instead of 0.5 CPU-ms per request at 50 ms).
    $startInfo.Environment['DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS'] = '1'
    $startInfo.Environment['DOTNET_ThreadPool_UnfairSemaphoreSpinLimit'] = '0'
    $startInfo.RedirectStandardInput = $true
    $startInfo.RedirectStandardOutput = $true
    $startInfo.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($startInfo)
    $ports = (($process.StandardOutput.ReadLine()) -replace '^PORTS ', '') -split ' '
    # The link's timing should not suffer from the machine's load: the relay runs ahead of the other processes where
    # this user may raise a priority (root); otherwise as it is.
    & renice -n -5 -p $process.Id *> $null
    [pscustomobject]@{ Process = $process; Endpoints = @($ports | ForEach-Object { "http://127.0.0.1:$_" }) }
}
function Send-Relay($Relay, [string] $Command) {
    $Relay.Process.StandardInput.WriteLine($Command)
    $answer = $Relay.Process.StandardOutput.ReadLine()
    if ($answer -notlike 'OK *') { throw "The relay refused '$Command': $answer" }
    $answer
}
# Per relay (source, target): connections accepted and requests by method so far.
function Get-RelayCounts($Relay) {
    $parts = (Send-Relay $Relay 'stats') -split ' \| ' | Select-Object -Skip 1
    foreach ($part in $parts) {
        $words = $part -split ' '
        $counts = @{}
        for ($i = 0; $i + 1 -lt $words.Count; $i += 2) { $counts[$words[$i]] = [long]$words[$i + 1] }
        $counts
    }
}
function Format-Requests($Before, $After) {
    $letters = [ordered]@{ GET = 'G'; PUT = 'P'; HEAD = 'H'; POST = 'Po'; DELETE = 'D' }
    $parts = foreach ($method in $letters.Keys) { $n = $After[$method] - $Before[$method]; if ($n) { "$($letters[$method]) $n" } }
    (@($parts) -join ' ') + " ($($After.connections - $Before.connections) conn.)"
}
function Set-Relay($Relay, [int] $RttMs, [int] $CapMbit) {
    $null = Send-Relay $Relay "set rtt-ms $RttMs"
    $null = Send-Relay $Relay "set mbit $CapMbit"
    Send-Relay $Relay "set handshake-rtts $HandshakeRtts"
}

$rows = [System.Collections.Generic.List[object]]::new()
$checks = [ordered]@{}
$started = Get-Date
$commit = (& git -C $Root rev-parse --short HEAD 2>$null)
# The engine measured: the last commit that changed src/ (the module is built from the worktree as it is).
$engineCommit = (& git -C $Root log -1 --format=%h -- src 2>$null)
$engineDirty = if (& git -C $Root status --porcelain -- src 2>$null) { ' + uncommitted changes' } else { '' }
# What was measured is the module as built, which may be older than src/: its engine's hash and build time say which.
$engineDll = Get-Item (Join-Path (Split-Path $ModulePath) 'dependencies/ObjectMigration.Engine.dll') -ErrorAction SilentlyContinue
$engineBuilt = if ($engineDll) { '; module engine built {0:HH:mm}, md5 {1}' -f $engineDll.LastWriteTime, (Get-FileHash $engineDll.FullName -Algorithm MD5).Hash.Substring(0, 8).ToLowerInvariant() } else { '' }

Write-Host '[relay] its own cost (echo server and relay in one process) ...'
foreach ($line in (Invoke-Bench relay-cost 2000)) { if ($line -match '^CHECK (\S+) (\S+)') { $checks["cost $($Matches[1])"] = [double]$Matches[2] } }

$ceph = $null; $relay = $null
try {
    # Room for the seeded sources and one run's copies (large: 1 GiB each); every purge is followed by RGW garbage
    # collection, so what the runs wrote does not pile up.
    $ceph = Start-CephRgwFixture -Gateways 2 -MemstoreBytes 8GB
    $key = $ceph.AccessKey; $secret = $ceph.SecretKey
    $direct = @{ Source = $ceph.Endpoints[0]; Target = $ceph.Endpoints[1] }
    $relay = Start-Relay $ceph.Endpoints
    $relayed = @{ Source = $relay.Endpoints[0]; Target = $relay.Endpoints[1] }
    $relayPid = $relay.Process.Id
    $serverCpu = { ($ceph.Pids | ForEach-Object { Get-StatCpu $_ } | Measure-Object -Sum).Sum }

    $rcloneEnv = @{
        RCLONE_CONFIG_SRC_TYPE = 's3'; RCLONE_CONFIG_SRC_PROVIDER = 'Other'; RCLONE_CONFIG_SRC_ENDPOINT = $relayed.Source
        RCLONE_CONFIG_SRC_ACCESS_KEY_ID = $key; RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY = $secret; RCLONE_CONFIG_SRC_REGION = 'us-east-1'
        RCLONE_CONFIG_DST_TYPE = 's3'; RCLONE_CONFIG_DST_PROVIDER = 'Other'; RCLONE_CONFIG_DST_ENDPOINT = $relayed.Target
        RCLONE_CONFIG_DST_ACCESS_KEY_ID = $key; RCLONE_CONFIG_DST_SECRET_ACCESS_KEY = $secret; RCLONE_CONFIG_DST_REGION = 'us-east-1'
        # Debian's rclone refuses a custom CA bundle with its HTTP transport; these endpoints are plain HTTP anyway.
        AWS_CA_BUNDLE = ''
    }
    if (-not (Get-Command rclone -ErrorAction SilentlyContinue)) {
        Write-Host 'Installing rclone from Debian packages...'
        & apt-get install -y -qq --no-install-recommends rclone | Out-Host
    }

    # ObjectMigration in a fresh pwsh process per run, as a user runs it; connectors made beforehand in the cell's home.
    function Measure-Ours([string] $SourceBucket, [string] $Target, [int] $Expect, [int] $Concurrency) {
        # A sweep level is fixed; the default finds its own (adaptive, issue 20).
        $concurrencyArgument = if ($Concurrency -gt 0) { " -Concurrency $Concurrency -FixedConcurrency" } else { '' }
        $script = @"
`$env:OBJECTMIGRATION_HOME = '$home0'; Import-Module '$ModulePath'; `$ProgressPreference = 'SilentlyContinue'
`$job = New-MigrationJob -SourceConnector src -SourceBucket $SourceBucket -TargetConnector dst -TargetBucket $Target$concurrencyArgument -Wait
if (`$job.State -ne 'Completed') { Write-Error "job `$(`$job.State)"; exit 1 }
'JOBSECONDS ' + (`$job.FinishedAt - `$job.StartedAt).TotalSeconds
`$progress = Get-MigrationJobProgress -Id `$job.Id
'TRANSFERRED ' + `$progress.TransferredObjects
# The adaptive level: how high the run went and where it ended, from its log (issue 20).
`$note = Get-MigrationJobLog -Id `$job.Id -Type MigrationNotice | Where-Object Message -like 'Adaptive concurrency*' | Select-Object -Last 1
if (`$note -and `$note.Message -match 'up to (\d+) transfers? at once and ended at (\d+)') { 'LEVEL ' + `$Matches[1] + '/' + `$Matches[2] }
"@
        $run = Measure-Run $pwshHost ($pwshArguments + @('-NoProfile', '-NonInteractive', '-Command', $script))
        $transferred = [int](Get-Tagged $run.Output 'TRANSFERRED')
        if ($transferred -ne $Expect) {
            throw "ObjectMigration transferred $transferred objects into $Target, expected $Expect. Its output:`n$($run.Output | Select-Object -Last 20 | Out-String)"
        }
        $run | Add-Member -NotePropertyName Job -NotePropertyValue ([double](Get-Tagged $run.Output 'JOBSECONDS'))
        $run | Add-Member -NotePropertyName Level -NotePropertyValue (Get-Tagged $run.Output 'LEVEL') -PassThru
    }
    function Measure-Rclone([string] $SourceBucket, [string] $Target, [int] $Concurrency) {
        $arguments = @('copy', "src:$SourceBucket", "dst:$Target")
        if ($Concurrency -gt 0) { $arguments += '--transfers', "$Concurrency", '--checkers', "$Concurrency" }
        $run = Measure-Run rclone $arguments $rcloneEnv
        $run | Add-Member -NotePropertyName Job -NotePropertyValue $null
        $run | Add-Member -NotePropertyName Level -NotePropertyValue $null -PassThru
    }

    # One measured run into a row, with the servers' and the relay's CPU over the same time.
    function Measure-Row([string] $Name, [string] $Load, [int] $Concurrency, [scriptblock] $Action, [int] $Objects, [double] $Bytes) {
        Write-Host "[$rttMs ms/$Load] $Name ..."
        $serverBefore = & $serverCpu; $relayBefore = Get-StatCpu $relayPid; $countsBefore = @(Get-RelayCounts $relay)
        $run = & $Action
        $countsAfter = @(Get-RelayCounts $relay)
        $requests = 0
        foreach ($side in 0, 1) { foreach ($method in 'GET', 'PUT', 'HEAD', 'POST', 'DELETE') { $requests += $countsAfter[$side][$method] - $countsBefore[$side][$method] } }
        $rows.Add([pscustomobject]@{
            Rtt = $rttMs; Cap = $cap; Workload = $Load; Tool = $Name; Round = $round; Concurrency = $Concurrency; Wall = $run.Wall; Job = $run.Job
            Objects = $Objects; Bytes = $Bytes; Cpu = $run.Cpu; PeakMB = $run.PeakMB; Level = $run.Level
            ServerCpu = (& $serverCpu) - $serverBefore; RelayCpu = (Get-StatCpu $relayPid) - $relayBefore
            Requests = $requests; SourceRequests = Format-Requests $countsBefore[0] $countsAfter[0]; TargetRequests = Format-Requests $countsBefore[1] $countsAfter[1]
        })
        $rows[-1]
    }

    $loads = @(foreach ($load in 'small', 'medium', 'large') {
            if ($load -in $Workload -or ($load -eq 'small' -and 'rerun' -in $Workload)) { $load }
        })
    $cell = 0
    $probed = $false
    foreach ($load in $loads) {
        $sourceBucket = "wan-src-$load"
        $spec = "${load}:$($counts[$load])"
        Write-Host "[$load] seeding $sourceBucket ($spec) ..."
        Invoke-Bench seed $direct.Source $key $secret $sourceBucket $spec
        # Read once, unmeasured: the gateways' first reads of fresh objects cost the first run of a cell up to 25 %.
        Invoke-Bench warm $direct.Source $key $secret $sourceBucket
        if (-not $probed -and $load -ne 'large') {
            $probed = $true
            $probeSize = if ($load -eq 'small') { '16 KiB' } else { '4 MiB' }
            # The relay against the real gateway, GETs of one object on a warm connection: direct vs relayed at 0 and 50 ms.
            foreach ($probeRtt in 0, 50) {
                $null = Set-Relay $relay $probeRtt 0
                $probeKey = if ($load -eq 'small') { 'small/00000.bin' } else { 'medium/0000.bin' }
                foreach ($line in (Invoke-Bench relay-probe $direct.Source $relayed.Source $key $secret $sourceBucket $probeKey 100)) {
                    if ($line -match '^CHECK (\S+) (\S+)') { $checks["probe rtt$probeRtt $($Matches[1])"] = [double]$Matches[2] }
                }
            }
        }
        $objects = $counts[$load]
        $bytes = [double]$objects * $objectSize[$load]
        foreach ($rttMs in $Rtt) {
            $cap = if ($rttMs -gt 0) { $Mbit } else { 0 }
            $null = Set-Relay $relay $rttMs $cap
            $home0 = Join-Path ([System.IO.Path]::GetTempPath()) ('om-wan-home-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
            & $pwshHost @pwshArguments -NoProfile -NonInteractive -Command @"
`$env:OBJECTMIGRATION_HOME = '$home0'; Import-Module '$ModulePath'
New-CloudConnector -Name src -Endpoint '$($relayed.Source)' -Credential ([pscredential]::new('$key', (ConvertTo-SecureString '$secret' -AsPlainText -Force))) | Out-Null
New-CloudConnector -Name dst -Endpoint '$($relayed.Target)' -Credential ([pscredential]::new('$key', (ConvertTo-SecureString '$secret' -AsPlainText -Force))) | Out-Null
"@
            if ($LASTEXITCODE -ne 0) { throw "Creating the connectors in $home0 failed (exit $LASTEXITCODE)." }

            # The runs of this cell, each round in the other order; rclone-best needs the sweep's result, so in the first
            # round it runs last (later rounds: first in the even ones).
            $base = [System.Collections.Generic.List[object]]::new()
            if ('ours-default' -in $Tool) { $base.Add(@{ Name = 'ours-default'; Concurrency = 0 }) }
            if ('rclone-default' -in $Tool) { $base.Add(@{ Name = 'rclone-default'; Concurrency = 0 }) }
            if ('ours-sweep' -in $Tool) { foreach ($level in $Sweep) { $base.Add(@{ Name = "ours-$level"; Concurrency = $level }) } }
            $firstOrder = $cell++
            # One copy by ours at a fixed 16 before the measured ones, unmeasured: the first run of a cell was still up
            # to 20 % slower than the same run later (the gateways' first writes after the seeding), whichever tool it was.
            $warmTarget = "wan-dst-warm-$load"
            Invoke-Bench mkbucket $direct.Target $key $secret $warmTarget | Out-Null
            Write-Host "[$rttMs ms/$load] warm-up (ours-16, unmeasured) ..."
            $null = Measure-Ours $sourceBucket $warmTarget $objects 16
            Invoke-Bench purge $direct.Target $key $secret $warmTarget
            Clear-CephGarbage $ceph
            for ($round = 1; $round -le $Rounds; $round++) {
            $plan = [System.Collections.Generic.List[object]]::new($base)
            if (($firstOrder + $round - 1) % 2 -eq 1) { $plan.Reverse() }
            if ('rclone-best' -in $Tool) { $plan.Insert($(if ($round % 2 -eq 0) { 0 } else { $plan.Count }), @{ Name = 'rclone-best'; Concurrency = -1 }) }

            foreach ($step in $plan) {
                $name = $step.Name; $concurrency = $step.Concurrency
                if ($concurrency -lt 0) {
                    $sweepRows = @($rows | Where-Object { $_.Rtt -eq $rttMs -and $_.Workload -eq $load -and $_.Tool -match '^ours-\d+$' })
                    $concurrency = if ($sweepRows) { ($sweepRows | Sort-Object Wall | Select-Object -First 1).Concurrency } else { $RcloneConcurrency }
                }
                $target = "wan-dst-$name-$load"
                Invoke-Bench mkbucket $direct.Target $key $secret $target | Out-Null
                $isOurs = $name -like 'ours-*'
                $copy = if ($isOurs) { { Measure-Ours $sourceBucket $target $objects $concurrency } } else { { Measure-Rclone $sourceBucket $target $concurrency } }
                $null = Measure-Row $name $load $concurrency $copy $objects $bytes
                if ($load -eq 'small' -and 'rerun' -in $Workload -and $name -in 'ours-default', 'rclone-default', 'rclone-best') {
                    $again = if ($isOurs) { { Measure-Ours $sourceBucket $target 0 $concurrency } } else { $copy }
                    $null = Measure-Row $name 'rerun' $concurrency $again $objects 0
                }
                Invoke-Bench purge $direct.Target $key $secret $target
                Clear-CephGarbage $ceph
            }
            }
            Remove-Item -Recurse -Force $home0 -ErrorAction SilentlyContinue
        }
        Invoke-Bench purge $direct.Source $key $secret $sourceBucket
        Clear-CephGarbage $ceph
    }
    $relayTotalCpu = Get-StatCpu $relayPid
} finally {
    if ($relay) { try { $relay.Process.StandardInput.WriteLine('quit'); $null = $relay.Process.WaitForExit(5000) } catch { Write-Verbose 'relay gone' }; if (-not $relay.Process.HasExited) { $relay.Process.Kill() } }
    if ($ceph) { $ceph | Stop-S3Fixture }
}

# ---- The report ---------------------------------------------------------------------------------------------------
function Format-Ratio([double] $Value) { if ($Value) { '{0:N2}x' -f $Value } else { 'n/a' } }
# A tool's figure in a cell: its fastest run over the rounds.
function Get-Row([int] $RttMs, [string] $Load, [string] $Name) { $rows | Where-Object { $_.Rtt -eq $RttMs -and $_.Workload -eq $Load -and $_.Tool -eq $Name } | Sort-Object Wall | Select-Object -First 1 }
function Get-Best([int] $RttMs, [string] $Load) {
    $rows | Where-Object { $_.Rtt -eq $RttMs -and $_.Workload -eq $Load -and $_.Tool -match '^ours-\d+$' } | Sort-Object Wall | Select-Object -First 1
}
$form = if ($Quick) { "quick (small $($counts.small), medium $($counts.medium), large $($counts.large))" } else { 'full-size' }
$form += " run of RTT $($Rtt -join '/') ms, $($Workload -join '/')$(if ($Tool.Count -lt 4) { ', ' + ($Tool -join '/') })$(if ($Rounds -gt 1) { ", $Rounds rounds (#N: the round; targets from each tool's fastest)" })"
$lines = @(
    "### $(Get-Date -Format 'yyyy-MM-dd HH:mm'), $form at commit $commit (engine: src/ at $engineCommit$engineDirty$engineBuilt), $([math]::Round(((Get-Date) - $started).TotalMinutes)) min"
    ''
    "Ceph RGW (memstore, two gateways) behind one relay process; RTT $($Rtt -join ', ') ms; at RTT > 0 each direction of each relay capped at $Mbit Mbit/s; a new"
    "connection waits $HandshakeRtts round trips before its first byte; window 4 MiB per connection. rclone $((rclone version 2>$null | Select-Object -First 1) -replace 'rclone ', ''); $cores cores shared"
    "(load average at the end: $((Get-Content /proc/loadavg) -split ' ' | Select-Object -First 3))."
    ''
    "The relay's own cost (relay-cost, echo server, one warm connection, 300 B request / 16 KiB response):"
    ''
    '| figure | value |'
    '|---|---:|'
    ('| added per round trip at RTT 0 (median / p90 of 2,000) | {0:N2} / {1:N2} ms |' -f $checks['cost rtt0-added-median-ms'], $checks['cost rtt0-added-p90-ms'])
    ('| measured minus set, RTT 20 (median / p90) | {0:N1} / {1:N1} ms |' -f $checks['cost rtt20-error-median-ms'], $checks['cost rtt20-error-p90-ms'])
    ('| measured minus set, RTT 50 (median / p90) | {0:N1} / {1:N1} ms |' -f $checks['cost rtt50-error-median-ms'], $checks['cost rtt50-error-p90-ms'])
    ('| new connection, first exchange at RTT 50 (handshake 2 RTT + request) | {0:N0} ms |' -f $checks['cost rtt50-new-connection-median-ms'])
    ('| one connection through the relay at RTT 0, no cap | {0:N0} MB/s |' -f $checks['cost rtt0-bulk-mbyte-per-s'])
    ('| one connection, 256 MiB at RTT 100 behind 200 Mbit/s | {0:N1} Mbit/s |' -f $checks['cost rtt100-cap200-bulk-mbit'])
)
if ($checks.Contains('probe rtt0 warm-direct-median-ms')) {
    $lines += ('| Ceph GET of {3}, warm connection, median: direct / relay at 0 / relay at 50 | {0:N1} / {1:N1} / {2:N1} ms |' -f
        $checks['probe rtt0 warm-direct-median-ms'], $checks['probe rtt0 warm-relayed-median-ms'], $checks['probe rtt50 warm-relayed-median-ms'], $probeSize)
}
$totalCpu = ($rows | ForEach-Object { $_.Cpu + $_.ServerCpu + $_.RelayCpu } | Measure-Object -Sum).Sum
$lines += @(
    ('| relay CPU over the whole run / all measured CPU (client + servers + relay) | {0:N1} / {1:N1} s |' -f $relayTotalCpu, $totalCpu)
    ''
    "Rows: 'wall' is the process (for ours: pwsh start, module import and the job; the ratios use it); 'job' is the job's own"
    "StartedAt..FinishedAt. 'relay CPU' and 'server CPU' are the relay process's and the gateways' CPU during the row; 'busy' is all"
    "three with the client's over wall x $cores cores. 'vs best' is ours-best's wall over this row's (>= 0.90: within 10 %)."
    "Requests, counted by the relays: G GET (objects, ranges and listings), P PUT (objects and parts), H HEAD, Po POST (multipart"
    "start and completion), D DELETE, and the connections each side opened; 'req/obj' is both sides' requests over the objects."
    ''
    '| RTT ms | workload | tool | conc. | wall s | job s | objects/s | Mbit/s | CPU s | peak MB | relay CPU s | server CPU s | busy | vs best | vs rclone-default | req/obj | source requests | target requests |'
    '|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|'
)
foreach ($row in $rows) {
    $best = Get-Best $row.Rtt $row.Workload
    $rcloneDefault = Get-Row $row.Rtt $row.Workload 'rclone-default'
    $vsBest = if ($best -and $row.Tool -like 'ours-*') { '{0:N2}' -f ($best.Wall / $row.Wall) } else { '' }
    $vsRclone = if ($rcloneDefault -and $row -ne $rcloneDefault) { Format-Ratio ($rcloneDefault.Wall / $row.Wall) } else { '' }
    $conc = if ($row.Concurrency -gt 0) { "$($row.Concurrency)" } elseif ($row.Level) { "def. ($($row.Level))" } else { 'def.' }
    $mbits = if ($row.Bytes) { '{0:N0}' -f ($row.Bytes * 8 / 1e6 / $row.Wall) } else { '' }
    $lines += '| {0} | {1} | {2} | {3} | {4:N1} | {5} | {6:N0} | {7} | {8:N1} | {9:N0} | {10:N1} | {11:N1} | {12:P0} | {13} | {14} | {15:N2} | {16} | {17} |' -f $row.Rtt, $row.Workload,
        $(if ($Rounds -gt 1) { "$($row.Tool) #$($row.Round)" } else { $row.Tool }), $conc, $row.Wall, $(if ($row.Job) { '{0:N1}' -f $row.Job } else { '' }), ($row.Objects / $row.Wall), $mbits, $row.Cpu, $row.PeakMB,
        $row.RelayCpu, $row.ServerCpu, (($row.Cpu + $row.ServerCpu + $row.RelayCpu) / ($row.Wall * $cores)), $vsBest, $vsRclone,
        ($row.Requests / $row.Objects), $row.SourceRequests, $row.TargetRequests
}

# The issue's targets, each from rows of this run.
$target = [System.Collections.Generic.List[string]]::new()
$small50 = Get-Row 50 'small' 'ours-default'
if ($small50) {
    $rd = Get-Row 50 'small' 'rclone-default'; $rb = Get-Row 50 'small' 'rclone-best'
    # Wall against wall; in brackets our job's own time against rclone's wall (rclone starts in ~0.1 s, pwsh and the module in seconds).
    if ($rd) { $target.Add(('| 50 ms small, ours-default vs rclone-default | >= 4x | {0} ({1:N1} vs {2:N1} s; job {3}) |' -f (Format-Ratio ($rd.Wall / $small50.Wall)), $small50.Wall, $rd.Wall, (Format-Ratio ($rd.Wall / $small50.Job)))) }
    if ($rb) { $target.Add(('| 50 ms small, ours-default vs rclone at our best ({0}) | >= 1.2x | {1} ({2:N1} vs {3:N1} s; job {4}) |' -f $rb.Concurrency, (Format-Ratio ($rb.Wall / $small50.Wall)), $small50.Wall, $rb.Wall, (Format-Ratio ($rb.Wall / $small50.Job)))) }
}
foreach ($group in $rows | Where-Object Tool -EQ 'ours-default' | Where-Object Workload -NE 'rerun' | Sort-Object Rtt, Workload -Unique | ForEach-Object { Get-Row $_.Rtt $_.Workload 'ours-default' }) {
    $best = Get-Best $group.Rtt $group.Workload
    if ($best) { $target.Add(('| {0} ms {1}, ours-default vs ours-best ({2}) | >= 0.90 | {3:N2} ({4:N1} vs {5:N1} s) |' -f $group.Rtt, $group.Workload, $best.Concurrency, ($best.Wall / $group.Wall), $group.Wall, $best.Wall)) }
}
foreach ($large in $rows | Where-Object { $_.Rtt -eq 100 -and $_.Workload -eq 'large' -and $_.Cap -gt 0 } | Sort-Object Tool -Unique | ForEach-Object { Get-Row 100 'large' $_.Tool }) {
    $seconds = if ($large.Job) { $large.Job } else { $large.Wall }
    $target.Add(('| 100 ms large behind {0} Mbit/s, {1} | >= 90 % of the cap | {2:P0} ({3:N0} Mbit/s over {4}) |' -f $large.Cap, $large.Tool,
        ($large.Bytes * 8 / 1e6 / $seconds / $large.Cap), ($large.Bytes * 8 / 1e6 / $seconds), $(if ($large.Job) { 'the job' } else { 'the wall' })))
}
$rerun50 = Get-Row 50 'rerun' 'ours-default'
foreach ($peer in 'rclone-default', 'rclone-best') {
    $r = Get-Row 50 'rerun' $peer
    if ($rerun50 -and $r) { $target.Add(('| 50 ms no-op re-run, ours-default vs {0} | >= 3x | {1} ({2:N1} vs {3:N1} s; job {4}) |' -f $peer, (Format-Ratio ($r.Wall / $rerun50.Wall)), $rerun50.Wall, $r.Wall, (Format-Ratio ($r.Wall / $rerun50.Job)))) }
}
$ours = @($rows | Where-Object Tool -Like 'ours-*')
if ($ours) { $target.Add(('| peak memory of our process, any row | < 250 MB | {0:N0} MB (max; min {1:N0}) |' -f ($ours | Measure-Object PeakMB -Maximum).Maximum, ($ours | Measure-Object PeakMB -Minimum).Minimum)) }
if ($target.Count) { $lines += @('', 'Targets of issue 20 from this run:', '', '| target | goal | this run |', '|---|---|---|') + $target }

$lines | Write-Host

# Into results.md: the section keeps its older runs below the new one; the other sections stay as they are.
$heading = '## Across a WAN (issue 20)'
$intro = @(
    $heading, ''
    'bench/Invoke-WanBenchmark.ps1 (`build.ps1 -Task Bench -Scenario Wan`; -Quick, -Rtt, -Workload, -Tool for a subset; -Rounds). Each Ceph'
    'gateway sits behind the bench tool''s latency relay (`relay`, bench/ObjectMigration.Bench/LatencyRelay.cs): every chunk waits half'
    'the round trip in each direction in a delay line (due times and a queue, so a long link carries a full window), an optional'
    'bottleneck per direction shared by all connections, a 4 MiB window per connection, and a new connection''s first byte held for'
    'the handshake''s round trips. No slow start, loss or reordering. The relay acknowledges at once (TCP_QUICKACK): RGW sends a'
    'response''s headers and body in two writes with Nagle on, and a receiver that delays its ACK (40 ms) stalls every request on a'
    'warm connection, which a provider across a WAN does not do. Since 2026-12-02 15:20 each seeded source is read once,'
    'unmeasured, before its cells: the gateways'' first reads of fresh objects made the first run of a cell up to 25 % slower.'
    'Since 2026-12-02 20:52 each cell also starts with one unmeasured copy by ours at a fixed 16: the first measured run of a'
    'cell was still up to 20 % slower than the same run later, whichever tool it was.'
    'Newest run first.'
)
$text = if (Test-Path $ResultsPath) { Get-Content $ResultsPath -Raw } else { "# Benchmark results`n" }
$runs = ''
$match = [regex]::Match($text, '(?ms)^' + [regex]::Escape($heading) + '\s*$(.*?)(?=^## |\z)')
if ($match.Success) {
    $previousRuns = [regex]::Match($match.Groups[1].Value, '(?ms)^### .*')
    if ($previousRuns.Success) { $runs = $previousRuns.Value.TrimEnd() }
    $text = $text.Remove($match.Index, $match.Length)
}
$section = (($intro + '' + $lines) -join "`n") + $(if ($runs) { "`n`n" + $runs } else { '' })
$text = $text.TrimEnd() + "`n`n" + $section + "`n"
Set-Content -Path $ResultsPath -Value $text -NoNewline
Write-Host "Written to $ResultsPath"
