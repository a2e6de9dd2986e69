<#
.SYNOPSIS
    Scale-out figures (issue 21), not run by CI: one job run by 1, 2 and 4 worker processes that share its state store,
    against Ceph RGW (two gateways, memstore); and the listing of a 1,000,000-key synthetic bucket split across 1, 2 and
    4 workers.
.DESCRIPTION
    Each round seeds nothing new: one source bucket of -Objects objects of -Size bytes is copied by a fresh job into a
    fresh target bucket, by N workers started beforehand (Start-MigrationWorker in processes of their own). The job's
    own StartedAt..FinishedAt is the figure; speed-up is over the 1-worker round. Rounds alternate worker counts.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Build; dotnet pwsh -NoProfile -File bench/Measure-ScaleOut.ps1 -ModulePath ./out/ObjectMigration/ObjectMigration.psd1 -Store Postgres
#>
param(
    [Parameter(Mandatory)][string] $ModulePath,
    [ValidateSet('Sqlite', 'Postgres')][string] $Store = 'Postgres',
    [int[]] $Workers = @(1, 2, 4),
    [ValidateRange(1, 5)][int] $Rounds = 1,
    [int] $Objects = 3000,
    [int] $Size = 16KB,
    [int] $Concurrency = 32,
    # Keys of the synthetic bucket whose listing is split across the workers (0: skip).
    [int] $ListingObjects = 1000000,
    # Worker counts for the listing runs.
    [int[]] $ListingWorkers = @(1, 2, 4),
    # How long the synthetic server takes to answer each listing page (a distant server's listing is latency-bound).
    [int] $ListingPageDelay = 0
)
$ErrorActionPreference = 'Stop'
$Root = Split-Path $PSScriptRoot

# tests/Fixtures/synthetic-s3.js on a free loopback port: source buckets src-N of N keys that exist only as arithmetic.
function Start-SyntheticS3Endpoint([int] $PageDelay) {
    $port = Get-FreeTcpPort
    $startInfo = [System.Diagnostics.ProcessStartInfo]::new('node')
    foreach ($a in @((Join-Path $Root 'tests/Fixtures/synthetic-s3.js'), "$port", '512', "$PageDelay")) { $startInfo.ArgumentList.Add($a) }
    $startInfo.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($startInfo)
    $endpoint = "http://127.0.0.1:$port"
    Wait-Until -What "the synthetic S3 endpoint on port $port" -TimeoutSeconds 30 -Condition {
        try { $null = Invoke-RestMethod "$endpoint/__stats?bucket=probe" -TimeoutSec 2; $true } catch { $false }
    }
    [pscustomobject]@{ Process = $process; Endpoint = $endpoint }
}
$ModulePath = (Resolve-Path $ModulePath).Path
Import-Module (Join-Path $Root 'tests/Fixtures/S3Fixtures.psm1') -Force
Import-Module (Join-Path $Root 'tests/Fixtures/PostgresFixture.psm1') -Force
Import-Module (Join-Path $Root 'tests/Fixtures/S3TestData.psm1') -Force
. (Join-Path $Root 'tests/ObjectMigration.Tests/CrashHarness.ps1')
$env:OBJECTMIGRATION_HOME = Join-Path ([System.IO.Path]::GetTempPath()) ('om-bench-scale-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
$started = [ordered]@{}
try {
    # -Objects 0: the listing figures alone.
    if ($Objects -gt 0) { $started.Ceph = Start-CephRgwFixture -Gateways 2 }
    if ($Store -eq 'Postgres') {
        $started.Postgres = Start-PostgresFixture
        $env:OBJECTMIGRATION_STATE = $started.Postgres.ConnectionString
        $env:OBJECTMIGRATION_SECRET_KEY = [Convert]::ToBase64String([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(32))
    }
    Import-Module $ModulePath -Force
    Import-AwsSdk -ModulePath $ModulePath
    if ($Objects -gt 0) {
        $ceph = $started.Ceph
        $credential = [pscredential]::new($ceph.AccessKey, (ConvertTo-SecureString $ceph.SecretKey -AsPlainText -Force))
        $null = New-CloudConnector -Name src -Endpoint $ceph.Endpoints[0] -Credential $credential
        $null = New-CloudConnector -Name dst -Endpoint $ceph.Endpoints[1] -Credential $credential
        $client = New-TestS3Client $ceph -Endpoint $ceph.Endpoints[0]
        $source = New-TestBucket $client -Prefix 'om-scale'
        $content = Get-TestBytes $Size 21
        $pending = [System.Collections.Generic.List[System.Threading.Tasks.Task]]::new()
        for ($i = 0; $i -lt $Objects; $i++) {
            $request = [Amazon.S3.Model.PutObjectRequest]::new()
            $request.BucketName = $source; $request.Key = 'p{0:d2}/o{1:d6}' -f ($i % 16), $i; $request.UseChunkEncoding = $false
            $request.InputStream = [System.IO.MemoryStream]::new($content)
            $pending.Add($client.PutObjectAsync($request))
            if ($pending.Count -ge 64) { [System.Threading.Tasks.Task]::WaitAll($pending.ToArray()); $pending.Clear() }
        }
        [System.Threading.Tasks.Task]::WaitAll($pending.ToArray())

        $rows = [System.Collections.Generic.List[object]]::new()
        for ($round = 1; $round -le $Rounds; $round++) {
            foreach ($count in $Workers) {
                $processes = @(1..$count | ForEach-Object {
                        Start-ModuleProcess -Script 'Start-MigrationWorker -MaxJobs 1' -StateHome $env:OBJECTMIGRATION_HOME -ModulePath $ModulePath
                    })
                try {
                    $null = Wait-Condition { @(Get-MigrationWorker).Count -eq $count } -TimeoutSeconds 120 -What "$count workers"
                    $target = New-TestBucket $client -Prefix 'om-scale-t'
                    $job = New-MigrationJob -Name "scale-$count-$round" -SourceConnector src -SourceBucket $source -TargetConnector dst -TargetBucket $target -Detached -Concurrency $Concurrency
                    $peak = 0
                    while (($state = Get-MigrationJob -Id $job.Id).State -notin 'Completed', 'CompletedWithErrors', 'Failed', 'Cancelled') {
                        $peak = [Math]::Max($peak, @((Get-MigrationJobProgress -Id $job.Id).Workers | Where-Object Active).Count)
                        Start-Sleep -Milliseconds 250
                    }
                    $seconds = ($state.FinishedAt - $state.StartedAt).TotalSeconds
                    $shares = ((Get-MigrationJobProgress -Id $job.Id).Workers | ForEach-Object TransferredObjects) -join ' / '
                    $rows.Add([pscustomobject]@{ Round = $round; Workers = $count; State = $state.State; Seconds = $seconds; ObjectsPerSecond = $Objects / $seconds; Peak = $peak; Shares = $shares })
                    Write-Host ("round {0}: {1} worker(s): {2} in {3:N1} s, {4:N0} objects/s, {5} took part, shares {6}" -f $round, $count, $state.State, $seconds, ($Objects / $seconds), $peak, $shares)
                }
                finally {
                    foreach ($worker in @(Get-MigrationWorker)) { Stop-MigrationWorker -Id $worker.Id -Timeout 30 -ErrorAction SilentlyContinue }
                    foreach ($process in $processes) { $null = Stop-ModuleProcess $process }
                }
            }
        }
        $base = ($rows | Where-Object Workers -eq $Workers[0] | Measure-Object Seconds -Average).Average
        Write-Host ''
        Write-Host ("| workers | job s (mean of {0}) | objects/s | speed-up | took part | objects per worker (last round) |" -f $Rounds)
        Write-Host '|---:|---:|---:|---:|---:|---|'
        foreach ($count in $Workers) {
            $mine = @($rows | Where-Object Workers -eq $count)
            $mean = ($mine | Measure-Object Seconds -Average).Average
            Write-Host ("| {0} | {1:N1} | {2:N0} | {3:N2}x | {4} | {5} |" -f $count, $mean, ($Objects / $mean), ($base / $mean), ($mine | Measure-Object Peak -Maximum).Maximum, $mine[-1].Shares)
        }
    }

    if ($ListingObjects -gt 0) {
        # The listing of a large bucket, split across the workers: an Inventory job (it lists and records each object,
        # no copies) of a synthetic bucket (tests/Fixtures/synthetic-s3.js: keys data/00000000.bin ..., nothing on disk).
        # The first worker leads; the others join once it lists, cut ranges off its listing and list them at once.
        $synthetic = Start-SyntheticS3Endpoint -PageDelay $ListingPageDelay
        try {
            $listingRows = [System.Collections.Generic.List[object]]::new()
            foreach ($count in $ListingWorkers) {
                $processes = @(1..$count | ForEach-Object {
                        Start-ModuleProcess -Script 'Start-MigrationWorker -MaxJobs 1' -StateHome $env:OBJECTMIGRATION_HOME -ModulePath $ModulePath
                    })
                try {
                    $null = Wait-Condition { @(Get-MigrationWorker).Count -eq $count } -TimeoutSeconds 120 -What "$count workers"
                    $connector = "synthetic-$count"
                    $null = New-CloudConnector -Name $connector -Endpoint $synthetic.Endpoint -Credential ([pscredential]::new('AKIDSYNTHETIC', (ConvertTo-SecureString 'synthetic' -AsPlainText -Force)))
                    $job = New-MigrationJob -Type Inventory -Name "scale-listing-$count" -SourceConnector $connector -SourceBucket "src-$ListingObjects" -Detached
                    $listed = $null
                    $peak = 0
                    while (($state = Get-MigrationJob -Id $job.Id).State -notin 'Completed', 'CompletedWithErrors', 'Failed', 'Cancelled') {
                        $progress = Get-MigrationJobProgress -Id $job.Id
                        $peak = [Math]::Max($peak, @($progress.Workers | Where-Object Active).Count)
                        if (-not $listed -and $progress.ListingComplete) { $listed = [DateTimeOffset]::UtcNow }
                        Start-Sleep -Milliseconds 250
                    }
                    $progress = Get-MigrationJobProgress -Id $job.Id
                    $listSeconds = (($listed ?? $state.FinishedAt) - $state.StartedAt).TotalSeconds
                    $cuts = @(Get-MigrationJobLog -Id $job.Id -Type MigrationNotice | Where-Object Message -Match 'cut from range').Count
                    # A figure counts only for a listing that found every key once.
                    if ($progress.Objects -ne $ListingObjects -or $progress.PendingObjects -ne 0) {
                        throw "The listing with $count worker(s) found $($progress.Objects) keys ($($progress.PendingObjects) pending) of $ListingObjects."
                    }
                    $listingRows.Add([pscustomobject]@{ Workers = $count; State = $state.State; Objects = $progress.Objects; ListSeconds = $listSeconds
                            JobSeconds = ($state.FinishedAt - $state.StartedAt).TotalSeconds; Peak = $peak; Cuts = $cuts })
                    Write-Host ("listing with {0} worker(s): {1} objects, listed in {2:N1} s, job {3} in {4:N1} s, {5} cuts, {6} took part" -f
                        $count, $progress.Objects, $listSeconds, $state.State, $listingRows[-1].JobSeconds, $cuts, $peak)
                }
                finally {
                    foreach ($worker in @(Get-MigrationWorker)) { Stop-MigrationWorker -Id $worker.Id -Timeout 30 -ErrorAction SilentlyContinue }
                    foreach ($process in $processes) { $null = Stop-ModuleProcess $process }
                }
            }
            $base = ($listingRows | Select-Object -First 1).ListSeconds
            Write-Host ''
            Write-Host ("Listing {0:N0} synthetic keys ({1}, {2} ms a page):" -f $ListingObjects, $Store, $ListingPageDelay)
            Write-Host '| workers | listed in s | keys/s | speed-up | ranges cut | took part | job s |'
            Write-Host '|---:|---:|---:|---:|---:|---:|---:|'
            foreach ($row in $listingRows) {
                Write-Host ("| {0} | {1:N1} | {2:N0} | {3:N2}x | {4} | {5} | {6:N1} |" -f $row.Workers, $row.ListSeconds, ($ListingObjects / $row.ListSeconds), ($base / $row.ListSeconds), $row.Cuts, $row.Peak, $row.JobSeconds)
            }
        }
        finally {
            if (-not $synthetic.Process.HasExited) { $synthetic.Process.Kill($true); $null = $synthetic.Process.WaitForExit(10000) }
        }
    }
}
finally {
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
    $started.Values | Stop-S3Fixture
    Remove-Item $env:OBJECTMIGRATION_HOME -Recurse -Force -ErrorAction SilentlyContinue
}
