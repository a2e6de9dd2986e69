<#
.SYNOPSIS
    The main job, end to end: two local S3 endpoints, a seeded source bucket, two connectors, one migration
    with a progress bar, then the finished job and its progress. Run by build.ps1 -Task Demo.
#>
param([Parameter(Mandatory)][string] $ModulePath, [Parameter(Mandatory)][string] $FixtureFile)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$fixtures = Get-Content $FixtureFile -Raw | ConvertFrom-Json
$env:OBJECTMIGRATION_HOME = Join-Path ([System.IO.Path]::GetTempPath()) ('om-demo-' + [guid]::NewGuid().ToString('n').Substring(0, 8))

Import-Module (Join-Path $PSScriptRoot 'S3TestData.psm1')
Import-AwsSdk -ModulePath $ModulePath
$sourceClient = New-TestS3Client $fixtures.S3rverSource
$targetClient = New-TestS3Client $fixtures.S3rverTarget
$sourceBucket = New-TestBucket $sourceClient -Prefix 'demo-source'
$targetBucket = New-TestBucket $targetClient -Prefix 'demo-target'

Write-Host "Seeding $sourceBucket on $($fixtures.S3rverSource.Endpoint) ..."
$random = [System.Random]::new(42)
$seededBytes = 0
$types = 'text/plain', 'application/json', 'image/png', 'application/octet-stream'
for ($i = 0; $i -lt 300; $i++) {
    # Mostly small objects with a few larger ones: a few MiB in all.
    $size = if ($i % 50 -eq 0) { 512KB + $random.Next(0, 256KB) } else { $random.Next(0, 16KB) }
    $key = 'reports/{0:d2}/object-{1:d4}.bin' -f ($i % 12), $i
    Write-TestObject $sourceClient $sourceBucket $key (Get-TestBytes $size $i) -ContentType $types[$i % 4] -Metadata @{ 'seq' = "$i" }
    $seededBytes += $size
}
Write-Host ("Seeded 300 objects, {0:N1} MiB." -f ($seededBytes / 1MB))

Import-Module $ModulePath
$secret = { param($text) ConvertTo-SecureString $text -AsPlainText -Force }
New-CloudConnector -Name demo-source -Provider S3 -Endpoint $fixtures.S3rverSource.Endpoint `
    -Credential ([pscredential]::new($fixtures.S3rverSource.AccessKey, (& $secret $fixtures.S3rverSource.SecretKey))) -PassThru | Format-Table
New-CloudConnector -Name demo-target -Provider S3 -Endpoint $fixtures.S3rverTarget.Endpoint `
    -Credential ([pscredential]::new($fixtures.S3rverTarget.AccessKey, (& $secret $fixtures.S3rverTarget.SecretKey))) -PassThru | Format-Table

$ProgressPreference = 'Continue'
$job = New-MigrationJob -SourceConnector demo-source -SourceBucket $sourceBucket -TargetConnector demo-target -TargetBucket $targetBucket -Wait
$job | Format-List Id, Name, Type, State, SourceConnector, SourceBucket, TargetConnector, TargetBucket, StartedAt, FinishedAt
Get-MigrationJobProgress -Id $job.Id | Format-List State, Objects, TransferredObjects, SkippedObjects, FailedObjects, TotalBytes, TransferredBytes, PercentComplete

$copied = @(Get-TestKeys $targetClient $targetBucket).Count
Write-Host "The target bucket now holds $copied objects."
Remove-Item -Recurse -Force $env:OBJECTMIGRATION_HOME -ErrorAction SilentlyContinue
if ($job.State -ne 'Completed' -or $copied -ne 300) { Write-Error "The demo migration did not complete: $($job.State), $copied of 300 objects."; exit 1 }
