<#
.SYNOPSIS
    Worker figures (issue 15), not run by CI: how long a detached job takes to be picked up, by a running worker and by
    one that -Detached starts, and what an idle worker holds in memory and CPU.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Build; dotnet pwsh -NoProfile -File bench/Measure-Workers.ps1 -ModulePath ./out/ObjectMigration/ObjectMigration.psd1
#>
param(
    [Parameter(Mandatory)][string] $ModulePath,
    [ValidateRange(1, 20)][int] $Rounds = 5
)
$ErrorActionPreference = 'Stop'
$Root = Split-Path $PSScriptRoot
$ModulePath = (Resolve-Path $ModulePath).Path
Import-Module (Join-Path $Root 'tests/Fixtures/S3Fixtures.psm1') -Force
Import-Module (Join-Path $Root 'tests/Fixtures/S3TestData.psm1') -Force
$env:OBJECTMIGRATION_HOME = Join-Path ([System.IO.Path]::GetTempPath()) ('om-bench-workers-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
Import-Module $ModulePath -Force
Import-AwsSdk -ModulePath $ModulePath

function Get-ProcessFigures([int] $ProcessId) {
    $status = Get-Content "/proc/$ProcessId/status"
    $stat = (Get-Content "/proc/$ProcessId/stat" -Raw) -replace '^.*\) ', ''
    $fields = $stat -split ' '
    [pscustomobject]@{
        RssMB      = [double](($status | Where-Object { $_ -like 'VmRSS:*' }) -replace '\D', '') / 1024
        CpuSeconds = ([double]$fields[11] + [double]$fields[12]) / 100   # utime + stime, in clock ticks of 1/100 s
    }
}

function Wait-Running([guid] $Id) {
    while ((Get-MigrationJob -Id $Id).State -notin 'Running', 'Completed') { Start-Sleep -Milliseconds 10 }
}

function Get-Median([double[]] $Values) { ($Values | Sort-Object)[[int][math]::Floor($Values.Count / 2)] }

$fixtures = @{ Source = Start-S3rverFixture -Name bench-workers-source; Target = Start-S3rverFixture -Name bench-workers-target }
try {
    foreach ($side in 'Source', 'Target') {
        $cred = [pscredential]::new($fixtures[$side].AccessKey, (ConvertTo-SecureString $fixtures[$side].SecretKey -AsPlainText -Force))
        $null = New-CloudConnector -Name $side.ToLower() -Endpoint $fixtures[$side].Endpoint -Credential $cred
    }
    $sourceClient = New-TestS3Client $fixtures.Source
    $targetClient = New-TestS3Client $fixtures.Target
    $bucket = New-TestBucket $sourceClient
    1..20 | ForEach-Object { Write-TestObject $sourceClient $bucket "k$_" (Get-TestBytes 64KB $_) }

    # The clock runs from the call until the job runs; cold rounds first stop every worker, so -Detached starts one.
    function Measure-Pickup([string] $Kind, [switch] $Cold) {
        foreach ($round in 1..$Rounds) {
            if ($Cold) { Get-MigrationWorker | Stop-MigrationWorker }
            $clock = [System.Diagnostics.Stopwatch]::StartNew()
            $job = New-MigrationJob -SourceConnector source -SourceBucket $bucket -TargetConnector target -TargetBucket (New-TestBucket $targetClient) -Name "$Kind-$round" -Detached
            $returned = $clock.Elapsed.TotalSeconds
            Wait-Running $job.Id
            [pscustomobject]@{ Returned = $returned; Running = $clock.Elapsed.TotalSeconds }
            $null = Wait-MigrationJob -Id $job.Id
        }
    }
    $cold = Measure-Pickup cold -Cold
    $warm = Measure-Pickup warm
    $busyWorker = Get-MigrationWorker
    Start-Sleep -Seconds 5
    $afterJobs = Get-ProcessFigures $busyWorker.ProcessId
    Get-MigrationWorker | Stop-MigrationWorker

    # Idle: a fresh foreground worker that has run nothing; memory once it settled, CPU over 30 s of idling.
    $pwshHost = [Environment]::ProcessPath
    $pwshArguments = @(if ([System.IO.Path]::GetFileNameWithoutExtension($pwshHost) -eq 'dotnet') { [Environment]::GetCommandLineArgs()[0] })
    $idle = Start-Process -FilePath $pwshHost -ArgumentList ($pwshArguments + @('-NoProfile', '-NonInteractive', '-Command', "Import-Module '$ModulePath'; Start-MigrationWorker")) -PassThru -RedirectStandardOutput ([System.IO.Path]::GetTempFileName())
    while (-not (Get-MigrationWorker)) { Start-Sleep -Milliseconds 100 }
    Start-Sleep -Seconds 10
    $settled = Get-ProcessFigures $idle.Id
    Start-Sleep -Seconds 30
    $later = Get-ProcessFigures $idle.Id
    Get-MigrationWorker | Stop-MigrationWorker

    $lines = @(
        "| figure | median of $Rounds | range |"
        '|---|---|---|'
        "| -Detached, no worker running: call returns | $('{0:0.00}' -f (Get-Median $cold.Returned)) s | $('{0:0.00}' -f ($cold.Returned | Measure-Object -Minimum).Minimum)-$('{0:0.00}' -f ($cold.Returned | Measure-Object -Maximum).Maximum) s |"
        "| -Detached, no worker running: job Running | $('{0:0.00}' -f (Get-Median $cold.Running)) s | $('{0:0.00}' -f ($cold.Running | Measure-Object -Minimum).Minimum)-$('{0:0.00}' -f ($cold.Running | Measure-Object -Maximum).Maximum) s |"
        "| -Detached, worker running: call returns | $('{0:0.000}' -f (Get-Median $warm.Returned)) s | $('{0:0.000}' -f ($warm.Returned | Measure-Object -Minimum).Minimum)-$('{0:0.000}' -f ($warm.Returned | Measure-Object -Maximum).Maximum) s |"
        "| -Detached, worker running: job Running | $('{0:0.000}' -f (Get-Median $warm.Running)) s | $('{0:0.000}' -f ($warm.Running | Measure-Object -Minimum).Minimum)-$('{0:0.000}' -f ($warm.Running | Measure-Object -Maximum).Maximum) s |"
        "| idle worker, fresh: resident memory | $('{0:0}' -f $settled.RssMB) MB | |"
        "| idle worker, after $($Rounds) jobs: resident memory | $('{0:0}' -f $afterJobs.RssMB) MB | |"
        "| idle worker: CPU over 30 s | $('{0:0.00}' -f ($later.CpuSeconds - $settled.CpuSeconds)) s | |"
    )
    $lines -join "`n"
} finally {
    Get-MigrationWorker -ErrorAction SilentlyContinue | ForEach-Object { Stop-Process -Id $_.ProcessId -Force -ErrorAction SilentlyContinue }
    foreach ($fixture in $fixtures.Values) { Stop-S3Fixture $fixture }
    Remove-Item -Recurse -Force $env:OBJECTMIGRATION_HOME -ErrorAction SilentlyContinue
}
