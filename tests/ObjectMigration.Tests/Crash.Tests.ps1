# Kill and crash (issue 19): runners killed with SIGKILL at random points and resumed from fresh processes, the store
# under kills and under several processes at once, and a full disk under the state folder. The long forms of the first
# two run in build.ps1 -Task Soak (tests/Soak/Invoke-KillSoak.ps1); these are the short forms.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    . (Join-Path $PSScriptRoot 'CrashHarness.ps1')
    # A killed runner reads as Interrupted after this many seconds without a heartbeat (default 10); a killed runner of
    # this host is seen at once by its process id anyway.
    $env:OBJECTMIGRATION_STALE_SECONDS = '2'
    # Source: s3rver (bytes stream through the client, parts by ranged GETs); target: Ceph RGW, whose buckets keep
    # versions and list open multipart uploads.
    $clients = Initialize-TestSession -TargetFixture $Fixtures.Ceph
    $script:SourceClient, $script:TargetClient = $clients.Source, $clients.Target
    $script:Say = { param($Message) Write-Host "    $Message" }
}

AfterAll { Remove-Module ObjectMigration -ErrorAction SilentlyContinue }

Describe 'Kill and crash' {
    It 'completes one job through ten SIGKILLs at random points, every object on the target once and intact, nothing left open' {
        $result = Invoke-KillSoak -SourceClient $SourceClient -TargetClient $TargetClient -SourceConnector src -TargetConnector dst -ModulePath $ModulePath `
            -Kills 10 -Seed 19 -SmallObjects 300 -LargeMegabytes 12, 17 -MaxBytesPerSecond 3MB -Concurrency 4 -ListPageSize 3 -Say $Say
        & $Say ("Kills survived: {0} ({4} missed a run that had ended); objects checked: {1} ({2:N1} MiB); extra versions (objects written twice): {3}" -f
            $result.KillsSurvived, $result.ObjectsChecked, ($result.Bytes / 1MB), $result.ExtraVersions, $result.Missed)
        $result.Problems | Should -BeNullOrEmpty
        $result.KillsSurvived | Should -Be 10
        $result.ObjectsChecked | Should -Be $result.Objects
        # Exactly once: the versioned target holds one version of each object; what a killed run copied without recording
        # it is found there by the resume, not written again.
        $result.ExtraVersions | Should -Be 0
        # Each kind of point was reached: a checkpoint mid-listing, an upload left open, a pause being settled.
        @($result.Kills | Where-Object { $_.Killed -and $_.Kind -eq 'Listing' -and -not $_.ListingDone }).Count | Should -BeGreaterThan 0
        @($result.Kills | Where-Object { $_.Killed -and $_.Kind -eq 'Multipart' -and $_.OpenUploads -gt 0 }).Count | Should -BeGreaterThan 0
        @($result.Kills | Where-Object { $_.Kind -eq 'Settle' -and $_.Killed }).Count | Should -BeGreaterThan 0
    }

    It 'keeps the database whole when a run is killed while it writes results as fast as it can' {
        $result = Invoke-FlushKills -ModulePath $ModulePath -Kills 4 -Objects 200000 -Seed 23 -Say $Say
        & $Say ("Kills survived: {0}; kills that tore a WAL write: {1}; objects counted: {2}" -f $result.KillsSurvived, $result.TornKills, $result.Objects)
        $result.Problems | Should -BeNullOrEmpty
        $result.KillsSurvived | Should -Be 4
    }

    It 'lets several processes poll and steer one running job at once, with no "database is locked" and no lost update' {
        $result = Invoke-ConcurrentControl -ModulePath $ModulePath -Pollers 3 -Pauses 2 -Objects 30000
        & $Say ("{0} processes; {1} polls (each Get-MigrationJob, Get-MigrationJobProgress and Get-MigrationJobLog), 99th percentile {2} ms, slowest {3} ms; {4} pauses and resumes across processes" -f
            $result.Processes, $result.Polls, $result.P99PollMs, $result.SlowestPollMs, $result.Pauses)
        $result.Problems | Should -BeNullOrEmpty
        $result.Polls | Should -BeGreaterThan 0
    }

    It 'stops a job with an error naming the full state folder, keeps the database whole, and completes it on resume once there is room' {
        $mount = Join-Path ([System.IO.Path]::GetTempPath()) ('om-full-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
        $null = New-Item -ItemType Directory -Path $mount
        # A small file system of its own, so filling it disturbs nothing else: tmpfs needs root (CI runs as root).
        $said = if (Get-Command mount -ErrorAction SilentlyContinue) { & mount -t tmpfs -o size=6m tmpfs $mount 2>&1 } else { 'no mount command' }
        if ($LASTEXITCODE -ne 0 -or -not (Get-Command mount -ErrorAction SilentlyContinue)) {
            Remove-Item $mount
            Set-ItResult -Skipped -Because "a small file system cannot be mounted here (mount -t tmpfs: $said); it needs root or CAP_SYS_ADMIN"
            return
        }
        $testHome = $env:OBJECTMIGRATION_HOME
        $stateFolder = Join-Path $mount 'state'
        $filler = Join-Path $mount 'filler'
        try {
            $env:OBJECTMIGRATION_HOME = $stateFolder
            $null = New-CloudConnector -Name src -Endpoint $Fixtures.S3rverSource.Endpoint -Credential (New-TestCredential $Fixtures.S3rverSource)
            $null = New-CloudConnector -Name dst -Endpoint $Fixtures.Ceph.Endpoint -Credential (New-TestCredential $Fixtures.Ceph)
            $source = New-CrashSource -Client $SourceClient -SmallObjects 300 -LargeMegabytes @() -Seed 29
            $target = New-TestBucket $TargetClient
            $runner = Start-ModuleProcess -StateHome $stateFolder -ModulePath $ModulePath -Environment @{ OBJECTMIGRATION_STALE_SECONDS = '2' } `
                -Script "(New-MigrationJob -Name full-disk -SourceConnector src -SourceBucket $($source.Bucket) -TargetConnector dst -TargetBucket $target -MaxBytesPerSecond 150KB -Concurrency 4 -Wait).State"
            try {
                $null = Wait-Condition -TimeoutSeconds 90 -What 'the job to copy' -Condition { (Get-MigrationJob -Name full-disk | Get-MigrationJobProgress).TransferredObjects -ge 20 }
                # Mid-job, the disk fills up: every write from here on fails with ENOSPC.
                $fill = [System.IO.File]::OpenWrite($filler)
                try {
                    $block = [byte[]]::new(64KB)
                    while ($true) { $fill.Write($block, 0, $block.Length); $fill.Flush() }
                } catch [System.IO.IOException] {
                    # No space left on the device: full.
                } finally { $fill.Dispose() }
                $ended = Wait-ModuleProcess $runner -TimeoutSeconds 120
            } finally { $null = Stop-ModuleProcess $runner }

            # The runner said why, naming the folder and what to do; the job says so too, and reading works on a full disk.
            $ended.ExitCode | Should -Not -Be 0
            $ended.Errors | Should -Match ([regex]::Escape("The state folder '$stateFolder' is full"))
            $ended.Errors | Should -Match 'Resume-MigrationJob'
            $job = Get-MigrationJob -Name full-disk
            $job.State | Should -BeIn 'Failed', 'Interrupted'
            $job.Error | Should -BeLike "The state folder '$stateFolder' is full*"
            $progress = $job | Get-MigrationJobProgress
            $progress.PendingObjects | Should -BeGreaterThan 0
            $progress.FailedObjects | Should -Be 0
            Test-StateDatabase (Join-Path $stateFolder 'state.db') $job.Id | Should -BeNullOrEmpty

            # Room again: the same job completes from its checkpoint, every object intact.
            Remove-Item $filler
            $resumed = Start-ModuleProcess -StateHome $stateFolder -ModulePath $ModulePath -Script "(Resume-MigrationJob -Id $($job.Id) -Wait).State"
            (Wait-ModuleProcess $resumed -TimeoutSeconds 300).Output.Trim() | Should -Be 'Completed'
            $final = Get-MigrationJobProgress -Id $job.Id
            $final.Objects | Should -Be $source.Objects.Count
            $final.TransferredObjects + $final.SkippedObjects | Should -Be $source.Objects.Count
            $final.FailedObjects | Should -Be 0
            $digests = Get-TargetDigests $TargetClient $target @($source.Objects.Keys)
            @(Get-TestKeys $TargetClient $target).Count | Should -Be $source.Objects.Count
            foreach ($key in $source.Objects.Keys) { $digests[$key] | Should -Be $source.Objects[$key].Md5 -Because $key }
            Test-StateDatabase (Join-Path $stateFolder 'state.db') $job.Id | Should -BeNullOrEmpty
            @(Get-MigrationJobLog -Id $job.Id -Type MigrationError).Message | Should -BeLike "The state folder '$stateFolder' is full*"
        } finally {
            $env:OBJECTMIGRATION_HOME = $testHome
            # Pooled connections hold the database open: let go of them before unmounting.
            (Get-SqliteConnectionType)::ClearAllPools()
            & umount $mount 2>&1 | Out-Null
            if ($LASTEXITCODE -ne 0) { & umount -l $mount 2>&1 | Out-Null }
            Remove-Item $mount -Recurse -Force -ErrorAction SilentlyContinue
        }
    }
}
