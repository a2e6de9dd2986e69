<#
.SYNOPSIS
    Scale-out figures (issue 21), not run by CI: one job run by 1, 2 and 4 worker processes that share its state store,
    against Ceph RGW (two gateways, memstore); and the lead's listing of a large synthetic bucket.
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
    # Keys of the synthetic bucket whose listing the lead saves (0: skip).
    [int] $ListingObjects = 1000000,
    # Workers for the listing run (the lead lists; the others copy batches as the pages arrive).
    [int] $ListingWorkers = 2
)
$ErrorActionPreference = 'Stop'
$Root = Split-Path $PSScriptRoot
$ModulePath = (Resolve-Path $ModulePath).Path
Import-Module (Join-Path $Root 'tests/Fixtures/S3Fixtures.psm1') -Force
Import-Module (Join-Path $Root 'tests/Fixtures/PostgresFixture.psm1') -Force
Import-Module (Join-Path $Root 'tests/Fixtures/S3TestData.psm1') -Force
. (Join-Path $Root 'tests/ObjectMigration.Tests/CrashHarness.ps1')
$env:OBJECTMIGRATION_HOME = Join-Path ([System.IO.Path]::GetTempPath()) ('om-bench-scale-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
$started = [ordered]@{}
try {
    $started.Ceph = Start-CephRgwFixture -Gateways 2
    if ($Store -eq 'Postgres') {
        $started.Postgres = Start-PostgresFixture
        $env:OBJECTMIGRATION_STATE = $started.Postgres.ConnectionString
        $env:OBJECTMIGRATION_SECRET_KEY = [Convert]::ToBase64String([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(32))
    }
    Import-Module $ModulePath -Force
    Import-AwsSdk -ModulePath $ModulePath
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

    if ($ListingObjects -gt 0) {
        # The listing of a large bucket into the shared store: an Inventory job (it lists and records each object, no
        # copies) of a synthetic bucket, led by one worker while the others take its batches as they are saved.
        $listing = Start-SyntheticListing -Objects $ListingObjects
        $processes = @(1..$ListingWorkers | ForEach-Object {
                Start-ModuleProcess -Script 'Start-MigrationWorker -MaxJobs 1' -StateHome $env:OBJECTMIGRATION_HOME -ModulePath $ModulePath
            })
        try {
            $null = Wait-Condition { @(Get-MigrationWorker).Count -eq $ListingWorkers } -TimeoutSeconds 120 -What "$ListingWorkers workers"
            $connector = New-SyntheticConnector $listing
            $job = New-MigrationJob -Type Inventory -Name 'scale-listing' -SourceConnector $connector -SourceBucket synthetic -Detached
            $listed = $null
            while (($state = Get-MigrationJob -Id $job.Id).State -notin 'Completed', 'CompletedWithErrors', 'Failed', 'Cancelled') {
                if (-not $listed -and (Get-MigrationJobProgress -Id $job.Id).ListingComplete) { $listed = [DateTimeOffset]::UtcNow }
                Start-Sleep -Milliseconds 500
            }
            $progress = Get-MigrationJobProgress -Id $job.Id
            $listSeconds = (($listed ?? $state.FinishedAt) - $state.StartedAt).TotalSeconds
            $jobSeconds = ($state.FinishedAt - $state.StartedAt).TotalSeconds
            Write-Host ''
            Write-Host ("Listing {0:N0} synthetic keys ({1}): listed in {2:N1} s ({3:N0} keys/s) by the lead, job {4} in {5:N1} s; objects recorded per runner: {6}" -f
                $ListingObjects, $Store, $listSeconds, ($ListingObjects / $listSeconds), $state.State, $jobSeconds, (($progress.Workers | ForEach-Object { $_.TransferredObjects + 0 }) -join ' / '))
        }
        finally {
            foreach ($worker in @(Get-MigrationWorker)) { Stop-MigrationWorker -Id $worker.Id -Timeout 30 -ErrorAction SilentlyContinue }
            foreach ($process in $processes) { $null = Stop-ModuleProcess $process }
            Stop-SyntheticListing $listing
        }
    }
}
finally {
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
    $started.Values | Stop-S3Fixture
    Remove-Item $env:OBJECTMIGRATION_HOME -Recurse -Force -ErrorAction SilentlyContinue
}
