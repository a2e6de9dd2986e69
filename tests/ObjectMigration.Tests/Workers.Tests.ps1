BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $env:OBJECTMIGRATION_STALE_SECONDS = '2'
    $clients = Initialize-TestSession
    $script:SourceClient, $script:TargetClient = $clients.Source, $clients.Target

    function New-SlowBucket([int] $Count = 10, [int] $Size = 200KB) {
        $bucket = New-TestBucket $SourceClient
        $seeded = @{}
        for ($i = 0; $i -lt $Count; $i++) {
            $key = 'w/{0:d3}.bin' -f $i
            $seeded[$key] = Get-TestBytes $Size (2000 + $i)
            Write-TestObject $SourceClient $bucket $key $seeded[$key]
        }
        [pscustomobject]@{ Bucket = $bucket; Seeded = $seeded }
    }

    # The New-MigrationJob line of a runbook: a bandwidth cap makes the copy take seconds, so tests act while it runs.
    function Get-JobCommand($Source, [string] $Target, [string] $Name, [string] $Rate = '300KB') {
        "New-MigrationJob -Name $Name -SourceConnector src -SourceBucket $($Source.Bucket) -TargetConnector dst -TargetBucket $Target -MaxBytesPerSecond $Rate -Concurrency 2"
    }

    # A pwsh process of its own with the module and this state folder; its output is drained so it never blocks on a full pipe.
    function Start-PwshProcess([string] $Script) {
        $host0 = [Environment]::ProcessPath
        $startInfo = [System.Diagnostics.ProcessStartInfo]::new($host0)
        if ([System.IO.Path]::GetFileNameWithoutExtension($host0) -eq 'dotnet') { $startInfo.ArgumentList.Add([Environment]::GetCommandLineArgs()[0]) }
        $wrapped = "`$ErrorActionPreference = 'Stop'; `$env:OBJECTMIGRATION_HOME = '$env:OBJECTMIGRATION_HOME'; Import-Module '$ModulePath'; $Script"
        foreach ($a in '-NoProfile', '-NonInteractive', '-Command', $wrapped) { $startInfo.ArgumentList.Add($a) }
        $startInfo.RedirectStandardOutput = $true
        $startInfo.RedirectStandardError = $true
        $process = [System.Diagnostics.Process]::Start($startInfo)
        $process | Add-Member -NotePropertyName Out -NotePropertyValue $process.StandardOutput.ReadToEndAsync()
        $process | Add-Member -NotePropertyName Err -NotePropertyValue $process.StandardError.ReadToEndAsync()
        $process
    }

    function Wait-Until([scriptblock] $Condition, [int] $TimeoutSeconds = 30, [string] $Because) {
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
        while (-not (& $Condition)) {
            if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out after $TimeoutSeconds s waiting until $Because." }
            Start-Sleep -Milliseconds 100
        }
    }

    function Wait-JobState([guid] $Id, [string[]] $State, [int] $TimeoutSeconds = 30) {
        Wait-Until { (Get-MigrationJob -Id $Id).State -in $State } -TimeoutSeconds $TimeoutSeconds -Because "job $Id is $($State -join '/')"
        Get-MigrationJob -Id $Id
    }

    function Assert-TargetHolds([string] $TargetBucket, $Source) {
        @(Get-TestKeys $TargetClient $TargetBucket | Sort-Object) | Should -Be @($Source.Seeded.Keys | Sort-Object)
        foreach ($key in $Source.Seeded.Keys) {
            $copy = Read-TestObject $TargetClient $TargetBucket $key
            [System.Linq.Enumerable]::SequenceEqual([byte[]]$copy.Content, [byte[]]$Source.Seeded[$key]) | Should -BeTrue -Because $key
        }
    }

    function Stop-AllWorkers {
        foreach ($worker in @(Get-MigrationWorker)) {
            Stop-MigrationWorker -Id $worker.Id -Timeout 30 -ErrorAction SilentlyContinue
            Stop-Process -Id $worker.ProcessId -Force -ErrorAction SilentlyContinue
        }
    }
}

AfterAll {
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
}

Describe 'Migration workers' {
    AfterEach {
        Get-MigrationJob | Where-Object State -in 'Running', 'Pending' | Stop-MigrationJob -ErrorAction SilentlyContinue
        Stop-AllWorkers
    }

    Context 'New-MigrationJob -Detached' {
        It 'hands the job to a worker that outlives the session: another process sees it Running, then Completed, byte-identical' {
            $source = New-SlowBucket
            $target = New-TestBucket $TargetClient
            $starter = Start-PwshProcess "$(Get-JobCommand $source $target 'detached-copy') -Detached | Out-Null"
            $starter.WaitForExit(60000) | Should -BeTrue
            $starter.ExitCode | Should -Be 0 -Because $starter.Err.Result

            # The session that created it is gone; this process sees the worker run it.
            $job = Wait-JobState (Get-MigrationJob -Name detached-copy).Id Running
            $job.Detached | Should -BeTrue
            $worker = @(Get-MigrationWorker)
            $worker.Count | Should -Be 1
            $worker[0].Jobs | Should -Be @('detached-copy')
            $worker[0].ProcessId | Should -Not -Be $starter.Id
            $worker[0].LogPath | Should -BeLike "$env:OBJECTMIGRATION_HOME*worker-*.log"

            (Wait-MigrationJob -Id $job.Id -Timeout 60).State | Should -Be 'Completed'
            Assert-TargetHolds $target $source
            Get-Content $worker[0].LogPath -Raw | Should -Match "Job 'detached-copy' \(.*\) is Completed"
        }

        It 'survives SIGKILL of its worker: Resume-MigrationJob -Detached from a new process finishes it, intact, and never starts a second worker while one lives' {
            $source = New-SlowBucket -Count 12
            $target = New-TestBucket $TargetClient
            $job = Invoke-Expression "$(Get-JobCommand $source $target 'killed-worker') -Detached"
            Wait-Until { ($job | Get-MigrationJobProgress).TransferredObjects -ge 3 } -Because 'three objects are copied'
            $worker = Get-MigrationWorker
            Stop-Process -Id $worker.ProcessId -Force   # SIGKILL: no cleanup runs in the worker
            (Wait-JobState $job.Id Interrupted -TimeoutSeconds 10).State | Should -Be 'Interrupted'
            @(Get-MigrationWorker).Count | Should -Be 0
            { Wait-MigrationJob -Id $job.Id -ErrorAction Stop } | Should -Throw -ErrorId 'MigrationJobInterrupted,ObjectMigration.Commands.WaitMigrationJobCommand' -ExpectedMessage '*Resume-MigrationJob*-Detached*'

            $resumer = Start-PwshProcess "Resume-MigrationJob -Id $($job.Id) -Detached | Out-Null"
            $resumer.WaitForExit(60000) | Should -BeTrue
            $resumer.ExitCode | Should -Be 0 -Because $resumer.Err.Result
            $second = @(Get-MigrationWorker)
            $second.Count | Should -Be 1
            $second[0].ProcessId | Should -Not -Be $worker.ProcessId

            # While that worker lives, handing it more work starts no other.
            $again = Start-PwshProcess "New-MigrationJob -Name extra -SourceConnector src -SourceBucket $($source.Bucket) -TargetConnector dst -TargetBucket $(New-TestBucket $TargetClient) -Detached | Out-Null"
            $again.WaitForExit(60000) | Should -BeTrue
            $again.ExitCode | Should -Be 0 -Because $again.Err.Result
            @(Get-MigrationWorker).ProcessId | Should -Be @($second[0].ProcessId)

            (Wait-MigrationJob -Id $job.Id -Timeout 90).State | Should -Be 'Completed'
            Assert-TargetHolds $target $source
            $progress = $job | Get-MigrationJobProgress
            $progress.Objects | Should -Be 12
            ($progress.TransferredObjects + $progress.SkippedObjects) | Should -Be 12
            (Wait-MigrationJob -Id (Get-MigrationJob -Name extra).Id -Timeout 60).State | Should -Be 'Completed'
        }

        It 'starts one worker for three sessions that hand over jobs at the same moment' {
            $source = New-SlowBucket -Count 3
            $logs = Join-Path $env:OBJECTMIGRATION_HOME 'workers'
            $logsBefore = @(Get-ChildItem $logs -Filter 'worker-*.log' -ErrorAction SilentlyContinue).Count
            $starters = foreach ($i in 1..3) {
                Start-PwshProcess "New-MigrationJob -Name at-once-$i -SourceConnector src -SourceBucket $($source.Bucket) -TargetConnector dst -TargetBucket $(New-TestBucket $TargetClient) -Detached | Out-Null"
            }
            foreach ($starter in $starters) {
                $starter.WaitForExit(90000) | Should -BeTrue
                $starter.ExitCode | Should -Be 0 -Because $starter.Err.Result
            }
            @(Get-MigrationWorker).Count | Should -Be 1
            foreach ($i in 1..3) { (Wait-MigrationJob -Id (Get-MigrationJob -Name at-once-$i).Id -Timeout 60).State | Should -Be 'Completed' }
            @(Get-ChildItem $logs -Filter 'worker-*.log').Count | Should -Be ($logsBefore + 1) -Because 'one worker was started'
        }

        It 'goes on when the terminal session that started it hangs up or gets Ctrl+C' -Skip:(-not (Test-Path /usr/bin/setsid)) {
            $source = New-SlowBucket -Count 10
            $target = New-TestBucket $TargetClient
            # The starting session leads a process group of its own, as a login shell over SSH does; it waits on the job.
            $host0 = [Environment]::ProcessPath
            $startInfo = [System.Diagnostics.ProcessStartInfo]::new('/usr/bin/setsid')
            $startInfo.ArgumentList.Add($host0)
            if ([System.IO.Path]::GetFileNameWithoutExtension($host0) -eq 'dotnet') { $startInfo.ArgumentList.Add([Environment]::GetCommandLineArgs()[0]) }
            $script = "`$env:OBJECTMIGRATION_HOME = '$env:OBJECTMIGRATION_HOME'; Import-Module '$ModulePath'; `$j = $(Get-JobCommand $source $target 'hung-up') -Detached; Wait-MigrationJob -Id `$j.Id"
            foreach ($a in '-NoProfile', '-NonInteractive', '-Command', $script) { $startInfo.ArgumentList.Add($a) }
            $startInfo.RedirectStandardOutput = $true
            $session = [System.Diagnostics.Process]::Start($startInfo)
            $drain = $session.StandardOutput.ReadToEndAsync()
            Wait-Until { (Get-MigrationJob -Name hung-up -ErrorAction SilentlyContinue).State -eq 'Running' } -Because 'the worker runs the job'
            $worker = Get-MigrationWorker

            # What a dropped connection and a Ctrl+C do to every process of that terminal's group.
            & kill -HUP -- "-$($session.Id)"
            & kill -INT -- "-$($session.Id)"
            $session.WaitForExit(30000) | Should -BeTrue -Because 'the session itself ends on the hang-up'

            (Wait-MigrationJob -Id (Get-MigrationJob -Name hung-up).Id -Timeout 90).State | Should -Be 'Completed'
            Assert-TargetHolds $target $source
            (Get-MigrationJobLog -Id (Get-MigrationJob -Name hung-up).Id -Type MigrationResume, MigrationPause) | Should -BeNullOrEmpty -Because 'the run was never interrupted'
            (Get-MigrationWorker).ProcessId | Should -Be $worker.ProcessId
        }

        It 'keeps a detached job with its workers when a re-run leaves -Detached out, says where it runs and which settings it keeps; a job whose connector was removed is refused' {
            $source = New-SlowBucket -Count 8
            $target = New-TestBucket $TargetClient
            $command = Get-JobCommand $source $target 'stays-detached' '100KB'
            $job = Invoke-Expression "$command -Detached"
            $null = Wait-JobState $job.Id Running
            Stop-Process -Id (Get-MigrationWorker).ProcessId -Force
            $null = Wait-JobState $job.Id Interrupted -TimeoutSeconds 10

            $again = Invoke-Expression "$($command -replace '100KB', '1MB') -WarningVariable said -WarningAction SilentlyContinue"
            $again.Id | Should -Be $job.Id
            $again.Detached | Should -BeTrue
            "$said" | Should -Match 'continued from its checkpoint in a worker process'
            "$said" | Should -Match '-MaxBytesPerSecond stays 102400 \(given 1048576\)'
            @(Get-MigrationWorker).Count | Should -Be 1
            $null = Suspend-MigrationJob -Id $job.Id

            # Its source connector removed: resuming says so, and no worker is started for it.
            Stop-AllWorkers
            New-CloudConnector -Name doomed -Endpoint $Fixtures.S3rverSource.Endpoint -Credential (New-TestCredential $Fixtures.S3rverSource)
            $orphan = New-MigrationJob -Name orphaned -SourceConnector doomed -SourceBucket $source.Bucket -TargetConnector dst -TargetBucket $target -MaxBytesPerSecond 10KB
            $null = Suspend-MigrationJob -Id $orphan.Id
            Remove-CloudConnector -Name doomed -Force -Confirm:$false
            { Resume-MigrationJob -Id $orphan.Id -Detached -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidJobState,ObjectMigration.Commands.ResumeMigrationJobCommand' -ExpectedMessage '*source connector*was removed*'
            (Get-MigrationJob -Id $orphan.Id).SourceConnector | Should -Be '(removed)'
            Get-MigrationWorker | Should -BeNullOrEmpty
        }

        It 'is suspended, resumed and stopped from another process within two seconds' {
            $source = New-SlowBucket -Count 12
            $target = New-TestBucket $TargetClient
            $job = Invoke-Expression "$(Get-JobCommand $source $target 'steered' '128KB') -Detached"
            $null = Wait-JobState $job.Id Running
            # This test process is not the worker: its requests reach the worker through the store.
            $clock = [System.Diagnostics.Stopwatch]::StartNew()
            (Suspend-MigrationJob -Id $job.Id -PassThru).State | Should -Be 'Paused'
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 2
            @(Get-MigrationWorker)[0].Jobs | Should -BeNullOrEmpty

            (Resume-MigrationJob -Id $job.Id -Detached).Detached | Should -BeTrue
            $null = Wait-JobState $job.Id Running
            $clock.Restart()
            (Stop-MigrationJob -Id $job.Id -PassThru).State | Should -Be 'Cancelled'
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 2
        }
    }

    Context 'A runbook restarted from the top, with -Detached' {
        It 'yields one job, continued, whether it runs or was interrupted; after completion the same script is a new run that copies nothing again' {
            $source = New-SlowBucket -Count 10
            $target = New-TestBucket $TargetClient
            # 100 KB/s: the job runs about 20 s, so it is still running when the second process (a few seconds to start) runs the runbook.
            $runbook = "$(Get-JobCommand $source $target 'runbook-copy' '100KB') -Detached -WarningAction SilentlyContinue | Out-Null"

            $first = Start-PwshProcess $runbook
            $first.WaitForExit(60000) | Should -BeTrue
            $job = Wait-JobState (Get-MigrationJob -Name runbook-copy).Id Running

            # Restart while it runs: the same job, nothing new started.
            $second = Start-PwshProcess $runbook
            $second.WaitForExit(60000) | Should -BeTrue
            $second.ExitCode | Should -Be 0 -Because $second.Err.Result
            @(Get-MigrationJob -Name runbook-copy).Id | Should -Be @($job.Id)
            @(Get-MigrationWorker).Count | Should -Be 1

            # The host dies (worker killed): the restarted runbook continues the same job from its checkpoint.
            Wait-Until { ($job | Get-MigrationJobProgress).TransferredObjects -ge 2 } -Because 'two objects are copied'
            Stop-Process -Id (Get-MigrationWorker).ProcessId -Force
            $null = Wait-JobState $job.Id Interrupted -TimeoutSeconds 10
            $third = Start-PwshProcess $runbook
            $third.WaitForExit(60000) | Should -BeTrue
            $third.ExitCode | Should -Be 0 -Because $third.Err.Result
            (Wait-MigrationJob -Id $job.Id -Timeout 90).State | Should -Be 'Completed'
            @(Get-MigrationJob -Name runbook-copy).Id | Should -Be @($job.Id)
            Assert-TargetHolds $target $source
            (Get-MigrationJobLog -Id $job.Id -Type MigrationResume | Measure-Object).Count | Should -BeGreaterOrEqual 1

            # Completed: the documented result is a new run of the same definition, which finds everything copied.
            $fourth = Start-PwshProcess $runbook
            $fourth.WaitForExit(60000) | Should -BeTrue
            $next = @(Get-MigrationJob -Name runbook-copy | Where-Object Id -ne $job.Id)
            $next.Count | Should -Be 1
            (Wait-MigrationJob -Id $next[0].Id -Timeout 60).State | Should -Be 'Completed'
            ($next[0] | Get-MigrationJobProgress).SkippedObjects | Should -Be 10
        }
    }

    Context 'Start-MigrationWorker' {
        It 'runs in the foreground, takes the jobs handed to workers (New-MigrationJob -Detached reuses it), and exits after -IdleExit with nothing to do' {
            $worker = Start-PwshProcess 'Start-MigrationWorker -IdleExit 3 -MaxJobs 2'
            Wait-Until { @(Get-MigrationWorker).Count -eq 1 } -Because 'the worker registered'
            (Get-MigrationWorker).ProcessId | Should -Be $worker.Id
            (Get-MigrationWorker).IdleExit | Should -Be ([timespan]::FromSeconds(3))

            $source = New-SlowBucket -Count 4
            $target = New-TestBucket $TargetClient
            $job = Invoke-Expression "$(Get-JobCommand $source $target 'foreground' '1MB') -Detached"
            @(Get-MigrationWorker).ProcessId | Should -Be @($worker.Id)
            (Wait-MigrationJob -Id $job.Id -Timeout 60).State | Should -Be 'Completed'
            Assert-TargetHolds $target $source

            $worker.WaitForExit(30000) | Should -BeTrue -Because 'an idle worker exits after -IdleExit'
            $worker.ExitCode | Should -Be 0
            $worker.Out.Result | Should -Match "Running job 'foreground'"
            $worker.Out.Result | Should -Match 'Nothing to do for 00:00:03: the worker exits'
            Get-MigrationWorker | Should -BeNullOrEmpty
        }

        It 'Stop-MigrationWorker pauses its jobs and ends it; SIGTERM leaves them Interrupted and the next worker continues them' {
            $source = New-SlowBucket -Count 12
            $target = New-TestBucket $TargetClient
            $worker = Start-PwshProcess 'Start-MigrationWorker'
            Wait-Until { @(Get-MigrationWorker).Count -eq 1 } -Because 'the worker registered'
            $job = Invoke-Expression "$(Get-JobCommand $source $target 'service-job' '200KB') -Detached"
            $null = Wait-JobState $job.Id Running

            Get-MigrationWorker | Stop-MigrationWorker
            $worker.WaitForExit(30000) | Should -BeTrue
            (Get-MigrationJob -Id $job.Id).State | Should -Be 'Paused'
            Get-MigrationWorker | Should -BeNullOrEmpty

            # A service manager's stop (SIGTERM): the job stops at a checkpoint as Interrupted, for the next worker.
            $service = Start-PwshProcess 'Start-MigrationWorker'
            Wait-Until { @(Get-MigrationWorker).Count -eq 1 } -Because 'the second worker registered'
            $null = Resume-MigrationJob -Id $job.Id -Detached
            $null = Wait-JobState $job.Id Running
            & kill -TERM $service.Id
            $service.WaitForExit(30000) | Should -BeTrue
            $service.ExitCode | Should -Be 0
            (Get-MigrationJob -Id $job.Id).State | Should -Be 'Interrupted'

            $next = Start-PwshProcess 'Start-MigrationWorker -IdleExit 1'
            $next.WaitForExit(90000) | Should -BeTrue -Because 'the next worker finishes the job and then has nothing to do'
            (Get-MigrationJob -Id $job.Id).State | Should -Be 'Completed'
            Assert-TargetHolds $target $source
        }

        It 'runs as the systemd unit in docs/examples starts it, and SIGTERM (systemctl stop) ends it cleanly' {
            $unit = Get-Content (Join-Path $PSScriptRoot '../../docs/examples/objectmigration-worker.service')
            $execStart = @($unit | Where-Object { $_ -like 'ExecStart=*' })
            $execStart.Count | Should -Be 1
            $parsed = [regex]::Match($execStart[0], '^ExecStart=/usr/bin/pwsh (?<options>-NoProfile -NonInteractive) -Command "(?<command>[^"]+)"$')
            $parsed.Success | Should -BeTrue -Because $execStart[0]
            @($unit | Where-Object { $_ -eq 'KillSignal=SIGTERM' }).Count | Should -Be 1

            # The unit's own command, with this PowerShell for /usr/bin/pwsh and the built module where Import-Module finds it by name.
            $host0 = [Environment]::ProcessPath
            $startInfo = [System.Diagnostics.ProcessStartInfo]::new($host0)
            if ([System.IO.Path]::GetFileNameWithoutExtension($host0) -eq 'dotnet') { $startInfo.ArgumentList.Add([Environment]::GetCommandLineArgs()[0]) }
            foreach ($a in @($parsed.Groups['options'].Value -split ' ') + '-Command', $parsed.Groups['command'].Value) { $startInfo.ArgumentList.Add($a) }
            $startInfo.Environment['PSModulePath'] = (Split-Path (Split-Path $ModulePath)) + [System.IO.Path]::PathSeparator + $env:PSModulePath
            $startInfo.Environment['OBJECTMIGRATION_HOME'] = $env:OBJECTMIGRATION_HOME
            $startInfo.RedirectStandardOutput = $true
            $service = [System.Diagnostics.Process]::Start($startInfo)
            $output = $service.StandardOutput.ReadToEndAsync()
            Wait-Until { @(Get-MigrationWorker | Where-Object ProcessId -eq $service.Id).Count -eq 1 } -Because 'the unit''s worker registered'
            (Get-MigrationWorker).MaxJobs | Should -Be 4
            & kill -TERM $service.Id
            $service.WaitForExit(30000) | Should -BeTrue
            $service.ExitCode | Should -Be 0
            $output.Result | Should -Match 'The worker shut down'
            Get-MigrationWorker | Should -BeNullOrEmpty
        }

        It 'refuses to start when the stored secrets are not this user''s, and says so' {
            $home2 = New-TestHome
            $setup = "New-CloudConnector -Name s -Endpoint $($Fixtures.S3rverSource.Endpoint) -Credential ([pscredential]::new('AK', (ConvertTo-SecureString 'SECRETVALUE' -AsPlainText -Force))) | Out-Null"
            $null = Invoke-InNewProcess -StateHome $home2 -Script $setup
            # Another user's key file: the secrets were sealed with a key this worker does not hold.
            [System.IO.File]::WriteAllBytes((Join-Path $home2 'secret.key'), [byte[]]::new(32))
            $output = Invoke-InNewProcess -StateHome $home2 -Script "try { Start-MigrationWorker -IdleExit 1 } catch { 'ERROR ' + `$_.FullyQualifiedErrorId + ' ' + `$_.Exception.Message }"
            "$output" | Should -Match 'ERROR .*cannot be read by'
            "$output" | Should -Match 'Run the worker as that user'
            "$output" | Should -Not -Match 'SECRETVALUE'
        }
    }

    Context 'Worker parameters' {
        It 'refuses -Detached with -AsJob, naming both' {
            $before = @(Get-MigrationJob).Count
            { New-MigrationJob -SourceConnector src -SourceBucket a -TargetConnector dst -TargetBucket b -Detached -AsJob -ErrorAction Stop } |
                Should -Throw -ErrorId 'InvalidArgument,Detached,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*-AsJob*'
            @(Get-MigrationJob).Count | Should -Be $before -Because 'nothing is written'
            Get-MigrationWorker | Should -BeNullOrEmpty -Because 'no worker is started'
        }

        It 'Stop-MigrationWorker and Get-MigrationWorker name an unknown worker' {
            $id = [guid]::NewGuid()
            { Get-MigrationWorker -Id $id -ErrorAction Stop } | Should -Throw -ErrorId 'NotFound,ObjectMigration.Commands.GetMigrationWorkerCommand'
            { Stop-MigrationWorker -Id $id -ErrorAction Stop } | Should -Throw -ErrorId 'NotFound,ObjectMigration.Commands.StopMigrationWorkerCommand'
        }
    }
}
