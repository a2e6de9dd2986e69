<#
.SYNOPSIS
    Benchmarks, run by build.ps1 -Task Bench (not by CI). Writes bench/results.md and prints it.
.DESCRIPTION
    1. Whole-job memory over a synthetic bucket (issue 3).
    2. ObjectMigration against rclone copy and against a bare-SDK limit loop, at equal concurrency, on the same
       loopback endpoints: an s3rver pair, and Ceph RGW through two gateways (issue 6).
#>
param(
    [Parameter(Mandatory)][string] $ModulePath,
    [int] $Concurrency = 16,
    [ValidateSet('s3rver', 'ceph')][string[]] $Fixture = @('s3rver', 'ceph'),
    [ValidateSet('small', 'large', 'mixed')][string[]] $Workload = @('small', 'large', 'mixed'),
    # Each tool runs this many times per workload, the order reversed every other round; the table keeps each tool's
    # fastest run, so one slow moment of a shared 2-core machine does not decide a ratio.
    [ValidateRange(1, 5)][int] $Rounds = 2,
    [switch] $SkipMemory
)
$ErrorActionPreference = 'Stop'
$Root = Split-Path $PSScriptRoot
Import-Module (Join-Path $Root 'tests/Fixtures/S3Fixtures.psm1') -Force

$benchProject = Join-Path $PSScriptRoot 'ObjectMigration.Bench/ObjectMigration.Bench.csproj'
& dotnet build -c Release $benchProject --nologo -v quiet | Out-Host
if ($LASTEXITCODE -ne 0) { throw 'The benchmark tool did not build.' }
$benchDll = Join-Path $PSScriptRoot 'ObjectMigration.Bench/bin/Release/net10.0/ObjectMigration.Bench.dll'
$pwshHost = [Environment]::ProcessPath
$pwshArguments = @(if ([System.IO.Path]::GetFileNameWithoutExtension($pwshHost) -eq 'dotnet') { [Environment]::GetCommandLineArgs()[0] })

function Invoke-Bench { & dotnet $benchDll @args; if ($LASTEXITCODE -ne 0) { throw "bench tool $($args[0]) failed ($LASTEXITCODE)" } }

. (Join-Path $PSScriptRoot 'Measure-Run.ps1')

# CPU seconds (utime + stime) of a process or thread from its /proc stat file; 0 once it is gone. Defined here and in
# each measured pwsh process, which reads its own tier-1 compiler thread.
$statCpuFunction = "function Get-StatCpu([string] `$Path) { `$s = Get-Content `$Path -Raw -ErrorAction SilentlyContinue; if (-not `$s) { return 0 }
  `$f = `$s.Substring(`$s.LastIndexOf(')') + 2) -split ' '; ([long]`$f[11] + [long]`$f[12]) / $([double](& getconf CLK_TCK)) }"
. ([scriptblock]::Create($statCpuFunction))

# ObjectMigration in a fresh pwsh process, as a user runs it; uses the fixture, workload and buckets of the calling loop.
function Measure-Ours {
    param([string] $Target, [int] $ExpectTransferred, [string] $WarmUpTarget)
    # Like R2 Super Slurper, a migration job copies into an existing bucket.
    foreach ($bucket in @($Target, $WarmUpTarget) | Where-Object { $_ -and $_ -notin $created }) {
        Invoke-Bench mkbucket $f.TargetEndpoint $dst.AccessKey $dst.SecretKey $bucket | Out-Null; $created.Add($bucket)
    }
    # Fixed: the same number in flight as the other tools (the adaptive level is measured by Invoke-WanBenchmark.ps1).
    $migrate = "New-MigrationJob -SourceConnector src -SourceBucket $sourceBucket -TargetConnector dst -Concurrency $Concurrency -FixedConcurrency -Wait -TargetBucket"
    $script = @"
`$env:OBJECTMIGRATION_HOME = '$home0'; Import-Module '$ModulePath'
if (-not (Get-CloudConnector -Name src -ErrorAction SilentlyContinue)) {
  New-CloudConnector -Name src -Endpoint '$($f.SourceEndpoint)' -Credential ([pscredential]::new('$($src.AccessKey)', (ConvertTo-SecureString '$($src.SecretKey)' -AsPlainText -Force)))
  New-CloudConnector -Name dst -Endpoint '$($f.TargetEndpoint)' -Credential ([pscredential]::new('$($dst.AccessKey)', (ConvertTo-SecureString '$($dst.SecretKey)' -AsPlainText -Force)))
}
`$ProgressPreference = 'SilentlyContinue'
$(if ($WarmUpTarget) { "`$null = $migrate $WarmUpTarget" })
# CPU seconds of the runtime's background tier-1 compiler thread(s): optimising JIT, a lower bound of all JIT CPU.
$statCpuFunction
function Get-TieringCpu { (Get-ChildItem /proc/self/task | Where-Object { (Get-Content "`$(`$_.FullName)/comm") -like '.NET Tiered*' } |
  ForEach-Object { Get-StatCpu "`$(`$_.FullName)/stat" } | Measure-Object -Sum).Sum }
`$cpu = [Diagnostics.Process]::GetCurrentProcess().TotalProcessorTime; `$jit = Get-TieringCpu
`$job = $migrate $Target
if (`$job.State -ne 'Completed') { Write-Error "job `$(`$job.State)"; exit 1 }
'JOBSECONDS ' + (`$job.FinishedAt - `$job.StartedAt).TotalSeconds
'JOBCPU ' + ([Diagnostics.Process]::GetCurrentProcess().TotalProcessorTime - `$cpu).TotalSeconds
'JIT ' + $(if ($WarmUpTarget) { "[Math]::Max(0, (Get-TieringCpu) - `$jit)" } else { "(Get-TieringCpu)" })
`$progress = Get-MigrationJobProgress -Id `$job.Id
'TRANSFERRED ' + `$progress.TransferredObjects
'PROGRESS objects {0} skipped {1} failed {2} listed {3}' -f `$progress.Objects, `$progress.SkippedObjects, `$progress.FailedObjects, `$progress.ListingComplete
"@
    $run = Measure-Run $pwshHost ($pwshArguments + @('-NoProfile', '-NonInteractive', '-Command', $script))
    # A fast job that copied less than it should is no result: a fresh target gets every object, a complete one none.
    $transferred = [int](($run.Output | Where-Object { "$_" -like 'TRANSFERRED *' } | Select-Object -Last 1) -replace 'TRANSFERRED ', '')
    if ($transferred -ne $ExpectTransferred) {
        throw "ObjectMigration transferred $transferred objects into $Target, expected $ExpectTransferred. Its output:`n$($run.Output | Select-Object -Last 20 | Out-String)"
    }
    if ($WarmUpTarget) {
        # The row is the measured job alone: its time and the process CPU it used.
        $jobSeconds = [double](($run.Output | Where-Object { "$_" -like 'JOBSECONDS *' } | Select-Object -Last 1) -replace 'JOBSECONDS ', '')
        $run.Wall = $jobSeconds
        $run.Cpu = [double](($run.Output | Where-Object { "$_" -like 'JOBCPU *' } | Select-Object -Last 1) -replace 'JOBCPU ', '')
    }
    $run
}
# CPU seconds the fixture's server processes have used so far.
function Get-ServerCpu([int[]] $Pids) { ($Pids | ForEach-Object { Get-StatCpu "/proc/$_/stat" } | Measure-Object -Sum).Sum }

# One measured run of a tool into a row; with the servers' CPU over the same time, so the table shows when the
# servers, not the client, set the pace. (A warm row's process also ran the warm-up job: no server figure.)
function Measure-Tool([string] $Tool, [string] $Target, [int] $Expect, [string] $Workload, [double] $Bytes) {
    $serverBefore = Get-ServerCpu $f.ServerPids
    $run = & $tools[$Tool] $Target $Expect
    $serverCpu = if ($Tool -eq 'ours-warm') { $null } else { (Get-ServerCpu $f.ServerPids) - $serverBefore }
    $jobSeconds = ($run.Output | Where-Object { "$_" -like 'JOBSECONDS *' } | Select-Object -Last 1) -replace 'JOBSECONDS ', ''
    $jit = ($run.Output | Where-Object { "$_" -like 'JIT *' } | Select-Object -Last 1) -replace 'JIT ', ''
    $rows.Add([pscustomobject]@{ Fixture = $name; Workload = $Workload; Tool = $Tool; Wall = $run.Wall; Job = $jobSeconds; Objects = $objects; Bytes = $Bytes
        Cpu = $run.Cpu; Jit = $jit; PeakMB = $run.PeakMB; ServerCpu = $serverCpu })
}

$rows = [System.Collections.Generic.List[object]]::new()
$lines = @('# Benchmark results', '')

if (-not $SkipMemory) {
    $memoryRows = foreach ($count in 10000, 100000, 300000) { Invoke-Bench listing-memory $count | Select-Object -Last 1 }
    $lines += @(
        '## Whole-job memory over a synthetic bucket (issue 3)', ''
        "Synthetic lister of 1 KiB objects into a discarding target: listing, SQLite state, scheduling and copies all run. $([Environment]::ProcessorCount) cores."
        '', '| objects | state | transferred | wall | objects/s | peak working set |', '|---:|---|---:|---:|---:|---:|'
    ) + $memoryRows + ''
}

if (-not (Get-Command rclone -ErrorAction SilentlyContinue)) {
    Write-Host 'Installing rclone from Debian packages...'
    & apt-get install -y -qq --no-install-recommends rclone | Out-Host
}

# What a fresh pwsh process costs before any job: start, import the module, open its state (fastest of three).
$hostStart = 1..3 | ForEach-Object {
    Measure-Run $pwshHost ($pwshArguments + @('-NoProfile', '-NonInteractive', '-Command', "`$env:OBJECTMIGRATION_HOME = '$(Join-Path ([System.IO.Path]::GetTempPath()) 'om-bench-start')'; Import-Module '$ModulePath'; `$null = Get-MigrationJob"))
} | Sort-Object Cpu | Select-Object -First 1 | ForEach-Object { 'wall {0:N1} s, CPU {1:N1} s' -f $_.Wall, $_.Cpu }

$fixtures = @{}
try {
    if ('s3rver' -in $Fixture) {
        $a = Start-S3rverFixture -Name bench-source; $b = Start-S3rverFixture -Name bench-target
        $fixtures.s3rver = [pscustomobject]@{ Source = $a; Target = $b; SourceEndpoint = $a.Endpoint; TargetEndpoint = $b.Endpoint; Stop = @($a, $b); ServerPids = $a.Pids + $b.Pids }
    }
    if ('ceph' -in $Fixture) {
        # Room for the seeded sources and the largest run's copies (large: 1 GiB each, two for ours-warm); every
        # purge is followed by RGW garbage collection, so what the runs wrote does not pile up across rounds.
        $c = Start-CephRgwFixture -Gateways 2 -MemstoreBytes 8GB
        $fixtures.ceph = [pscustomobject]@{ Source = $c; Target = $c; SourceEndpoint = $c.Endpoints[0]; TargetEndpoint = $c.Endpoints[1]; Stop = @($c); ServerPids = $c.Pids }
    }
    foreach ($name in $Fixture) {
        $f = $fixtures[$name]
        $src = $f.Source; $dst = $f.Target
        $rcloneEnv = @{
            RCLONE_CONFIG_SRC_TYPE = 's3'; RCLONE_CONFIG_SRC_PROVIDER = 'Other'; RCLONE_CONFIG_SRC_ENDPOINT = $f.SourceEndpoint
            RCLONE_CONFIG_SRC_ACCESS_KEY_ID = $src.AccessKey; RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY = $src.SecretKey; RCLONE_CONFIG_SRC_REGION = 'us-east-1'
            RCLONE_CONFIG_DST_TYPE = 's3'; RCLONE_CONFIG_DST_PROVIDER = 'Other'; RCLONE_CONFIG_DST_ENDPOINT = $f.TargetEndpoint
            RCLONE_CONFIG_DST_ACCESS_KEY_ID = $dst.AccessKey; RCLONE_CONFIG_DST_SECRET_ACCESS_KEY = $dst.SecretKey; RCLONE_CONFIG_DST_REGION = 'us-east-1'
            # Debian's rclone refuses a custom CA bundle with its HTTP transport; these endpoints are plain HTTP anyway.
            AWS_CA_BUNDLE = ''
        }
        foreach ($load in $Workload) {
            $sourceBucket = "bench-src-$load"
            Write-Host "[$name/$load] seeding $sourceBucket ..."
            Invoke-Bench seed $f.SourceEndpoint $src.AccessKey $src.SecretKey $sourceBucket $load
            $objects = switch ($load) { 'small' { 5000 } 'large' { 4 } 'mixed' { 2000 } }
            $bytes = [double](& dotnet $benchDll seed-size $load 2>$null | Select-Object -Last 1)
            $home0 = Join-Path ([System.IO.Path]::GetTempPath()) ('om-bench-home-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
            $tools = [ordered]@{
                ours   = { param($target, $expect) Measure-Ours $target $expect }
                # A second job in the same pwsh process, once an identical first one has warmed the runtime (JIT,
                # tiering): its own time and CPU are what each further job in a session, or each object of a long
                # migration, costs. The first job goes to a bucket of its own.
                'ours-warm' = { param($target, $expect) Measure-Ours $target $expect -WarmUpTarget "$target-w0" }
                rclone = { param($target) Measure-Run rclone @('copy', "src:$sourceBucket", "dst:$target", '--transfers', "$Concurrency", '--checkers', "$Concurrency") $rcloneEnv }
                limit  = { param($target) Measure-Run dotnet @($benchDll, 'limit', $f.SourceEndpoint, $src.AccessKey, $src.SecretKey, $sourceBucket, $f.TargetEndpoint, $dst.AccessKey, $dst.SecretKey, $target, "$Concurrency") }
            }
            $created = [System.Collections.Generic.List[string]]::new()
            foreach ($round in 1..$Rounds) {
                $order = @($tools.Keys)
                if ($round % 2 -eq 0) { [array]::Reverse($order) }
                foreach ($tool in $order) {
                    $target = "bench-dst-$tool-$load"
                    Write-Host "[$name/$load] round $round $tool ..."
                    Measure-Tool $tool $target $objects $load $bytes
                    if ($load -eq 'small' -and $tool -in 'ours', 'rclone') {
                        Write-Host "[$name/re-run] round $round $tool ..."
                        Measure-Tool $tool $target 0 're-run' 0
                    }
                    # Purging deletes the bucket too: the next round creates it again.
                    Invoke-Bench purge $f.TargetEndpoint $dst.AccessKey $dst.SecretKey $target
                    if ("$target-w0" -in $created) { Invoke-Bench purge $f.TargetEndpoint $dst.AccessKey $dst.SecretKey "$target-w0" }
                    $null = $created.Remove($target); $null = $created.Remove("$target-w0")
                    if ($name -eq 'ceph') { Clear-CephGarbage $c }
                }
            }
            Invoke-Bench purge $f.SourceEndpoint $src.AccessKey $src.SecretKey $sourceBucket
            if ($name -eq 'ceph') { Clear-CephGarbage $c }
            Remove-Item -Recurse -Force $home0 -ErrorAction SilentlyContinue
        }
    }
} finally {
    foreach ($f in $fixtures.Values) { $f.Stop | Stop-S3Fixture }
}

$table = @(
    "## ObjectMigration vs rclone vs the limit (issue 6)", ''
    "Concurrency $Concurrency for all three (rclone: --transfers and --checkers). Wall includes process start (pwsh + module import for ours);"
    "'job' is the migration job's own StartedAt..FinishedAt. 'ours-warm' is a second, identical job in the same pwsh process after a first one"
    "warmed the runtime (JIT): its wall and CPU are that job's own, what each further job or object costs once the process runs."
    "Ratios are of objects/s (re-run: of wall time, inverted). rclone $((rclone version 2>$null | Select-Object -First 1) -replace 'rclone ', ''), $([Environment]::ProcessorCount) cores, $(Get-Date -Format 'yyyy-MM-dd')."
    "'server CPU s' is what the S3 server processes used during the run; 'busy' is client + server CPU over wall x $([Environment]::ProcessorCount) cores."
    "'JIT s' is the CPU of the runtime's tier-1 compiler thread (optimising JIT of code that became hot; a lower bound of all JIT CPU, as"
    "first compiles run on the calling threads): the whole process's for 'ours', the measured job's for 'ours-warm'."
    "Starting pwsh, importing the module and opening its state, with no job: $hostStart."
    "$Rounds rounds, tools alternating and the order reversed every other round; each row is the tool's fastest run ('runs': every run's wall s)."
    '', '| fixture | workload | tool | wall s | runs | job s | objects/s | MB/s | CPU s | JIT s | CPU ms/object | peak MB | server CPU s | busy | ours/rclone | ours/limit |'
    '|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
)
# Each tool's fastest run per workload, with every run's wall time beside it.
$groups = [ordered]@{}
foreach ($row in $rows) { $groups["$($row.Fixture)|$($row.Workload)|$($row.Tool)"] += @($row) }
$best = foreach ($group in $groups.Values) {
    $fastest = $group | Sort-Object Wall | Select-Object -First 1
    $fastest | Add-Member -NotePropertyName Runs -NotePropertyValue (($group | ForEach-Object { '{0:N1}' -f $_.Wall }) -join ' / ') -PassThru
}
foreach ($row in $best) {
    $ops = $row.Objects / $row.Wall
    $mbs = $row.Bytes / 1MB / $row.Wall
    $peer = { param($tool) $best | Where-Object { $_.Fixture -eq $row.Fixture -and $_.Workload -eq $row.Workload -and $_.Tool -eq $tool } | Select-Object -First 1 }
    $vsRclone = ''; $vsLimit = ''
    if ($row.Tool -like 'ours*') {
        $r = & $peer 'rclone'; $l = & $peer 'limit'
        if ($r) { $vsRclone = '{0:N2}' -f ($r.Wall / $row.Wall) }
        if ($l) { $vsLimit = '{0:N2}' -f ($l.Wall / $row.Wall) }
    }
    $server = if ($null -ne $row.ServerCpu) { '{0:N1}' -f $row.ServerCpu } else { '' }
    $busy = if ($null -ne $row.ServerCpu) { '{0:P0}' -f (($row.Cpu + $row.ServerCpu) / ($row.Wall * [Environment]::ProcessorCount)) } else { '' }
    $jit = if ($row.Jit) { '{0:N1}' -f [double]$row.Jit } else { '' }
    $table += '| {0} | {1} | {2} | {3:N1} | {4} | {5} | {6:N0} | {7:N1} | {8:N1} | {9} | {10:N2} | {11:N0} | {12} | {13} | {14} | {15} |' -f $row.Fixture, $row.Workload, $row.Tool, $row.Wall,
        $row.Runs, ($(if ($row.Job) { '{0:N1}' -f [double]$row.Job } else { '' })), $ops, $mbs, $row.Cpu, $jit, (1000 * $row.Cpu / $row.Objects), $row.PeakMB, $server, $busy, $vsRclone, $vsLimit
}
$lines += $table
$lines | Write-Host
$history = Join-Path $PSScriptRoot 'results.md'
$previous = if (Test-Path $history) { (Get-Content $history -Raw) -split '(?m)^## History\s*$', 2 } else { @('', '') }
$historyText = if ($previous.Count -gt 1) { $previous[1].Trim() } else { '' }
Set-Content -Path $history -Value (($lines + '', '## History', '', $historyText) -join [Environment]::NewLine)
