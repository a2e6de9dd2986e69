BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    . (Join-Path $PSScriptRoot 'CrashHarness.ps1')   # Start-/Stop-ModuleProcess: a runner to kill
    # A killed runner reads as Interrupted after this many seconds without a heartbeat (default 10).
    $env:OBJECTMIGRATION_STALE_SECONDS = '2'
    $clients = Initialize-TestSession
    $script:SourceClient, $script:TargetClient = $clients.Source, $clients.Target

    # A bucket whose copy takes seconds at the given bandwidth cap, so tests can act while it runs.
    function New-SlowBucket([int] $Count = 8, [int] $Size = 256KB) {
        $bucket = New-TestBucket $SourceClient
        $seeded = @{}
        for ($i = 0; $i -lt $Count; $i++) {
            $key = 'slow/{0:d3}.bin' -f $i
            $seeded[$key] = Get-TestBytes $Size (1000 + $i)
            Write-TestObject $SourceClient $bucket $key $seeded[$key]
        }
        [pscustomobject]@{ Bucket = $bucket; Seeded = $seeded }
    }

    function Start-SlowJob($Source, [long] $BytesPerSecond = 256KB, [string] $Name) {
        $target = New-TestBucket $TargetClient
        $params = @{ SourceConnector = 'src'; SourceBucket = $Source.Bucket; TargetConnector = 'dst'; TargetBucket = $target; MaxBytesPerSecond = $BytesPerSecond; Concurrency = 2 }
        if ($Name) { $params.Name = $Name }
        New-MigrationJob @params
    }

    function Wait-JobState([guid] $Id, [string[]] $State, [int] $TimeoutSeconds = 30) {
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
        do {
            $job = Get-MigrationJob -Id $Id
            if ($job.State -in $State) { return $job }
            Start-Sleep -Milliseconds 100
        } while ([DateTime]::UtcNow -lt $deadline)
        throw "Job $Id is $($job.State), not $($State -join '/') after $TimeoutSeconds s."
    }

    function Assert-TargetHolds($Job, $Source) {
        $keys = @(Get-TestKeys $TargetClient $Job.TargetBucket | Sort-Object)
        $keys | Should -Be @($Source.Seeded.Keys | Sort-Object)
        foreach ($key in $Source.Seeded.Keys) {
            $copy = Read-TestObject $TargetClient $Job.TargetBucket $key
            [System.Linq.Enumerable]::SequenceEqual([byte[]]$copy.Content, [byte[]]$Source.Seeded[$key]) | Should -BeTrue -Because $key
        }
    }
}

AfterAll {
    Get-MigrationJob | Where-Object State -in 'Running', 'Pending' | Stop-MigrationJob -Confirm:$false -ErrorAction SilentlyContinue
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
}

Describe 'Migration jobs as PowerShell jobs' {
    It 'Get-Job lists the job by name; suspend, resume and Receive-Job work on it' {
        $source = New-SlowBucket
        $job = Start-SlowJob $source -Name 'ps-job-cmdlets'
        $psJob = Get-Job -Name 'ps-job-cmdlets'
        $psJob.PSJobTypeName | Should -Be 'MigrationJob'
        # Suspend-Job and Resume-Job exist on Windows only; elsewhere the same Job2 methods are called directly.
        if (Get-Command Suspend-Job -ErrorAction Ignore) { $psJob | Suspend-Job } else { $psJob.SuspendJob() }
        (Wait-JobState $job.Id Paused).State | Should -Be 'Paused'
        $psJob.State | Should -Be 'Suspended'
        if (Get-Command Resume-Job -ErrorAction Ignore) { $psJob | Resume-Job } else { $psJob.ResumeJob() }
        $null = $psJob | Wait-Job -Timeout 120
        $psJob.State | Should -Be 'Completed'
        (Get-MigrationJob -Id $job.Id).State | Should -Be 'Completed'
        $log = Receive-Job $psJob
        $log.Type | Should -Contain 'MigrationStart'
        $log.Type | Should -Contain 'MigrationPause'
        $log.Type | Should -Contain 'MigrationResume'
        $log.Type | Should -Contain 'MigrationComplete'
        Assert-TargetHolds (Get-MigrationJob -Id $job.Id) $source
        $psJob | Remove-Job
        Get-Job -Name 'ps-job-cmdlets' -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'Receive-Job holds a bounded number of unread log entries and names where the whole log is' {
        $source = New-SlowBucket -Count 12 -Size 1KB
        $target = New-TestBucket $TargetClient
        $copy = @{ SourceConnector = 'src'; SourceBucket = $source.Bucket; TargetConnector = 'dst'; TargetBucket = $target }
        (New-MigrationJob @copy -Wait).State | Should -Be 'Completed'

        # Every object of a second copy is skipped and logged: 12 skips between start and complete.
        $bound = [ObjectMigration.Jobs.MigrationPSJob].GetField('s_maxUnreadLogEntries', [System.Reflection.BindingFlags]'NonPublic, Static')
        $bound.SetValue($null, 5)
        try {
            $job = New-MigrationJob @copy -Name 'ps-log-bound'
            $psJob = Get-Job -Name 'ps-log-bound'
            $null = $psJob | Wait-Job -Timeout 60
            $psJob.State | Should -Be 'Completed'
            $received = @(Receive-Job $psJob -WarningVariable warnings -WarningAction SilentlyContinue)
        } finally {
            $bound.SetValue($null, 10000)
        }
        $received.Count | Should -Be 5
        $received[0].Type | Should -Be 'MigrationStart'
        "$warnings" | Should -BeLike "*at most 5 unread log entries*Get-MigrationJobLog -Id $($job.Id)*"
        $log = @(Get-MigrationJobLog -Id $job.Id)
        $log.Count | Should -Be 14
        @($log | Where-Object Type -eq 'ImportSkippedExists').Count | Should -Be 12
        $psJob | Remove-Job

        # Under the bound Receive-Job gets the whole log. With batches of 2, the 14 entries take several batches, most of
        # them after the run ended (it skips a dozen objects in well under the pump's 500 ms): the final pump drains them all.
        $batch = [ObjectMigration.Jobs.MigrationPSJob].GetField('s_logPumpBatch', [System.Reflection.BindingFlags]'NonPublic, Static')
        $batch.SetValue($null, 2)
        try {
            $job = New-MigrationJob @copy -Name 'ps-log-whole'
            $psJob = Get-Job -Name 'ps-log-whole'
            $null = $psJob | Wait-Job -Timeout 60
        } finally {
            $batch.SetValue($null, 1000)
        }
        $received = @(Receive-Job $psJob -WarningVariable warnings)
        $received.Count | Should -Be 14
        $received.Sequence | Should -Be @(Get-MigrationJobLog -Id $job.Id).Sequence
        $warnings | Should -BeNullOrEmpty
        $psJob | Remove-Job
    }

    It 'Stop-Job cancels the migration job' {
        $source = New-SlowBucket
        $job = Start-SlowJob $source -Name 'ps-stop-job'
        Get-Job -Name 'ps-stop-job' | Stop-Job
        (Wait-JobState $job.Id Cancelled).State | Should -Be 'Cancelled'
        (Get-Job -Name 'ps-stop-job').State | Should -Be 'Stopped'
    }
}

Describe 'Control from another process' {
    It 'suspends, resumes and stops a job running in this session from a second pwsh process, within two seconds' {
        $source = New-SlowBucket -Count 10
        $job = Start-SlowJob $source -BytesPerSecond 128KB
        $null = Wait-JobState $job.Id Running
        $null = Invoke-InNewProcess -StateHome $env:OBJECTMIGRATION_HOME -Script "Suspend-MigrationJob -Id $($job.Id)"
        $clock = [System.Diagnostics.Stopwatch]::StartNew()
        $null = Wait-JobState $job.Id Paused -TimeoutSeconds 5
        $clock.Elapsed.TotalSeconds | Should -BeLessThan 2

        # Resumed by the other process, which runs it there to the end.
        $finished = Invoke-InNewProcess -StateHome $env:OBJECTMIGRATION_HOME -Script "(Resume-MigrationJob -Id $($job.Id) -Wait).State"
        ($finished | Select-Object -Last 1) | Should -Be 'Completed'
        Assert-TargetHolds (Get-MigrationJob -Id $job.Id) $source

        $other = Start-SlowJob (New-SlowBucket) -BytesPerSecond 64KB
        $null = Wait-JobState $other.Id Running
        $null = Invoke-InNewProcess -StateHome $env:OBJECTMIGRATION_HOME -Script "Stop-MigrationJob -Id $($other.Id)"
        (Wait-JobState $other.Id Cancelled -TimeoutSeconds 5).State | Should -Be 'Cancelled'
    }

    It 'resumes from a new process after kill -9 of the process that ran the job, with every object intact exactly once' {
        $source = New-SlowBucket -Count 12 -Size 200KB
        $target = New-TestBucket $TargetClient
        $script = "New-MigrationJob -Name killed-runner -SourceConnector src -SourceBucket $($source.Bucket) -TargetConnector dst -TargetBucket $target -MaxBytesPerSecond 300KB -Concurrency 2 -Wait"
        $runner = Start-ModuleProcess -Script "$script" -StateHome $env:OBJECTMIGRATION_HOME -ModulePath $ModulePath
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            do {
                Start-Sleep -Milliseconds 100
                $job = Get-MigrationJob -Name killed-runner
                $progress = if ($job) { $job | Get-MigrationJobProgress }
            } until (($progress -and $progress.TransferredObjects -ge 3) -or [DateTime]::UtcNow -gt $deadline)
            $progress.TransferredObjects | Should -BeLessThan 12
        } finally {
            $null = Stop-ModuleProcess $runner   # SIGKILL: no cleanup runs in the runner
        }
        (Wait-JobState $job.Id Interrupted -TimeoutSeconds 15).State | Should -Be 'Interrupted'

        $finished = Invoke-InNewProcess -StateHome $env:OBJECTMIGRATION_HOME -Script "(Get-MigrationJob -State Interrupted | Resume-MigrationJob -Wait).State"
        ($finished | Select-Object -Last 1) | Should -Be 'Completed'
        $done = Get-MigrationJob -Id $job.Id
        Assert-TargetHolds $done $source
        $final = $done | Get-MigrationJobProgress
        $final.Objects | Should -Be 12
        ($final.TransferredObjects + $final.SkippedObjects) | Should -Be 12
        $final.FailedObjects | Should -Be 0
    }
}

Describe 'A runbook restarted from the top' {
    It 'gets its unfinished job back while it runs and after it was interrupted, refuses another definition under that name, and runs anew once it completed' {
        $source = New-SlowBucket -Count 10 -Size 200KB
        $target = New-TestBucket $TargetClient
        $command = "New-MigrationJob -Name nightly-copy -SourceConnector src -SourceBucket $($source.Bucket) -TargetConnector dst -TargetBucket $target -MaxBytesPerSecond 300KB -Concurrency 2"
        $first = Start-ModuleProcess -Script "$command -Wait" -StateHome $env:OBJECTMIGRATION_HOME -ModulePath $ModulePath
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            do {
                Start-Sleep -Milliseconds 100
                $job = Get-MigrationJob -Name nightly-copy
                $progress = if ($job) { $job | Get-MigrationJobProgress }
            } until (($progress -and $progress.TransferredObjects -ge 2) -or [DateTime]::UtcNow -gt $deadline)
            $job.State | Should -Be 'Running'

            # Restarted while the first run still copies: the same job comes back, with a warning, and nothing new starts.
            $again = Invoke-Expression "$command -WarningVariable said -WarningAction SilentlyContinue"
            $again.Id | Should -Be $job.Id
            "$said" | Should -Match 'unfinished \(Running\)'
            { Invoke-Expression "$command -TargetPrefix elsewhere/ -ErrorAction Stop" } |
                Should -Throw -ErrorId 'InvalidArgument,Name,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage "*-TargetPrefix was (none), now 'elsewhere/'*"
        } finally {
            $null = Stop-ModuleProcess $first   # the runbook's host unloads it: SIGKILL, no cleanup
        }
        (Wait-JobState $job.Id Interrupted -TimeoutSeconds 15).State | Should -Be 'Interrupted'

        # Restarted after the interruption: the same job continues from its checkpoint and completes.
        $continued = Invoke-Expression "$command -Wait -WarningAction SilentlyContinue"
        $continued.Id | Should -Be $job.Id
        $continued.State | Should -Be 'Completed'
        Assert-TargetHolds $continued $source
        @(Get-MigrationJob -Name nightly-copy).Count | Should -Be 1

        # Once it completed, the same command is a new run: it copies what is new (here nothing) and skips the rest.
        $next = Invoke-Expression "$command -Wait"
        $next.Id | Should -Not -Be $job.Id
        ($next | Get-MigrationJobProgress).SkippedObjects | Should -Be 10
        @(Get-MigrationJob -Name nightly-copy).Count | Should -Be 2
    }
}

Describe 'Job cmdlets' {
    It 'Wait-MigrationJob -Timeout returns the job as it is when the time is up' {
        $job = Start-SlowJob (New-SlowBucket) -BytesPerSecond 64KB
        $waited = Wait-MigrationJob -Id $job.Id -Timeout 1
        $waited.State | Should -BeIn 'Pending', 'Running'
        Stop-MigrationJob -Id $job.Id
    }

    It 'Stop-MigrationJob -All cancels every unfinished job' {
        $a = Start-SlowJob (New-SlowBucket) -BytesPerSecond 64KB
        $b = Start-SlowJob (New-SlowBucket) -BytesPerSecond 64KB
        Stop-MigrationJob -All -Confirm:$false
        (Get-MigrationJob -Id $a.Id).State | Should -Be 'Cancelled'
        (Get-MigrationJob -Id $b.Id).State | Should -Be 'Cancelled'
        @(Get-MigrationJob -State Running, Pending).Count | Should -Be 0
    }

    It 'Get-MigrationJob -State Paused | Resume-MigrationJob -Wait finishes paused jobs through the pipeline' {
        $source = New-SlowBucket -Count 4
        $job = Start-SlowJob $source
        $job | Suspend-MigrationJob
        $resumed = Get-MigrationJob -State Paused | Where-Object Id -eq $job.Id | Resume-MigrationJob -Wait
        $resumed.State | Should -Be 'Completed'
        Assert-TargetHolds $resumed $source
    }

    It 'refuses to suspend a cancelled job, and to remove a running one without -Force' {
        $job = Start-SlowJob (New-SlowBucket) -BytesPerSecond 64KB
        { Remove-MigrationJob -Id $job.Id -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidJobState,ObjectMigration.Commands.RemoveMigrationJobCommand'
        Remove-MigrationJob -Id $job.Id -Force -Confirm:$false
        { Get-MigrationJob -Id $job.Id -ErrorAction Stop } | Should -Throw -ErrorId 'NotFound,ObjectMigration.Commands.GetMigrationJobCommand'
        $stopped = Start-SlowJob (New-SlowBucket) -BytesPerSecond 64KB
        Stop-MigrationJob -Id $stopped.Id
        { Suspend-MigrationJob -Id $stopped.Id -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidJobState,ObjectMigration.Commands.SuspendMigrationJobCommand'
    }

    It 'Get-MigrationJobProgress -Wait streams records until the job ends' {
        $job = Start-SlowJob (New-SlowBucket -Count 4) -BytesPerSecond 512KB
        $records = @(Get-MigrationJobProgress -Id $job.Id -Wait)
        $records.Count | Should -BeGreaterThan 1
        $records[-1].State | Should -Be 'Completed'
        $records[-1].PercentComplete | Should -Be 100
    }

    It 'Export-MigrationJobReport writes one row per object to CSV and JSON' {
        $source = New-SlowBucket -Count 5 -Size 1KB
        $job = Start-SlowJob $source -BytesPerSecond 0 | Wait-MigrationJob
        $csv = Join-Path $env:OBJECTMIGRATION_HOME 'report.csv'
        $json = Join-Path $env:OBJECTMIGRATION_HOME 'report.json'
        Export-MigrationJobReport -Id $job.Id -Path $csv | Should -Not -BeNullOrEmpty
        $job | Export-MigrationJobReport -Path $json | Out-Null
        $rows = Import-Csv $csv
        $rows.Count | Should -Be 5
        ($rows.Outcome | Sort-Object -Unique) | Should -Be 'Transferred'
        # How each object was checked: s3rver's plain ETags are MD5s, so they went up as Content-MD5.
        ($rows.VerifiedBy | Sort-Object -Unique) | Should -Match 'Content-MD5'
        ($rows.Key | Sort-Object) | Should -Be @($source.Seeded.Keys | Sort-Object)
        (Get-Content $json -Raw | ConvertFrom-Json).Count | Should -Be 5
        { Export-MigrationJobReport -Id $job.Id -Path (Join-Path $env:OBJECTMIGRATION_HOME 'report.txt') -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,Path,ObjectMigration.Commands.ExportMigrationJobReportCommand'
    }
}
