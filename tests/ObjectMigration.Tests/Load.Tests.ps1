# Load (issue 19), the short CI form: five jobs in two processes sharing one store (the big one 5,000 objects at
# concurrency 64), Get-MigrationJobProgress and Get-MigrationJob polled from a third process all along. The long form
# (50,000 objects) is bench/Measure-Load.ps1; both run LoadScenario.ps1.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    . (Join-Path $PSScriptRoot 'LoadScenario.ps1')
    $clients = Initialize-TestSession
    $script:Result = Invoke-LoadScenario -ModulePath $ModulePath -SourceFixture $Fixtures.S3rverSource -TargetFixture $Fixtures.S3rverTarget `
        -SourceClient $clients.Source -TargetClient $clients.Target -BigObjects 5000 -BigConcurrency 64 -MediumObjects 1000 -SmallObjects 40 -TimeoutSeconds 100
    $latency = $Result.Latency
    Write-Host ("Load: {0} jobs, big job {1:N0} objects in {2:F1} s; {3} polls from another process; Get-MigrationJobProgress p50 {4:F1} / p99 {5:F1} / max {6:F1} ms; Get-MigrationJob p50 {7:F1} / p99 {8:F1} / max {9:F1} ms; control (Get-Date) p50 {10:F1} / p99 {11:F1} / max {12:F1} ms" -f
        $Result.Jobs.Count, $Result.BigObjects, $Result.BigSeconds, $Result.Polls, $latency.ProgressP50, $latency.ProgressP99, $latency.ProgressMax, $latency.JobP50, $latency.JobP99, $latency.JobMax,
        $latency.ControlP50, $latency.ControlP99, $latency.ControlMax)
    Write-Host ("First call with rows (cold, not counted): Get-MigrationJobProgress {0:F0} ms, Get-MigrationJob {1:F0} ms" -f $latency.ProgressCold, $latency.JobCold)
    Write-Host ("Slowest polls (ms): Get-MigrationJobProgress {0}; Get-MigrationJob {1}; control {2}" -f
        (($Result.Slowest.Progress | ForEach-Object { '{0:F0}' -f $_ }) -join ' '), (($Result.Slowest.Job | ForEach-Object { '{0:F0}' -f $_ }) -join ' '), (($Result.Slowest.Control | ForEach-Object { '{0:F0}' -f $_ }) -join ' '))
}

AfterAll {
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
}

Describe 'Load: five jobs in two processes and a poller in a third, on one store' {
    It 'completes every job, its counters adding up (found = transferred + skipped + failed, nothing failed)' {
        $Result.Jobs.Count | Should -Be 5
        foreach ($progress in $Result.Progress) {
            $progress.State | Should -Be 'Completed' -Because "$($progress.Name) must complete"
            $progress.FailedObjects | Should -Be 0
            $progress.TransferredObjects + $progress.SkippedObjects + $progress.FailedObjects | Should -Be $progress.Objects -Because "$($progress.Name)'s counters must add up"
        }
        ($Result.Progress | Where-Object Name -EQ 'big-synthetic').TransferredObjects | Should -Be $Result.BigObjects
        $Result.ErrorsLogged | Should -BeNullOrEmpty
    }

    It 'ran the five at once: each started before any finished' {
        $lastStart = ($Result.Jobs | Measure-Object -Property StartedAt -Maximum).Maximum
        $firstFinish = ($Result.Jobs | Measure-Object -Property FinishedAt -Minimum).Minimum
        $lastStart | Should -BeLessThan $firstFinish
    }

    It 'leaves every object on its target once and intact' {
        foreach ($target in $Result.SyntheticTargets) {
            $target.Keys | Should -Be $target.Expected -Because "$($target.Bucket) must hold every key"
            $target.Puts | Should -Be $target.Expected -Because "$($target.Bucket) must receive each object once"
            $target.Duplicates | Should -Be 0
            $target.BadBodies | Should -Be 0
        }
        foreach ($target in $Result.S3rverTargets) {
            $target.Keys | Should -Be $target.Expected
            $target.Different | Should -Be 0 -Because "$($target.Bucket) must hold the source's bytes"
        }
    }

    It 'ends the other process and the poller cleanly, with no error anywhere (no "database is locked")' {
        $Result.OtherExitCode | Should -Be 0 -Because $Result.OtherErrors
        $Result.OtherErrors | Should -BeNullOrEmpty
        $Result.PollerExitCode | Should -Be 0
        $Result.PollerErrors | Should -BeNullOrEmpty
        @($Result.SessionFinished | Where-Object StateName -NE 'Completed') | Should -BeNullOrEmpty
    }

    It 'never shows a counter going down between two polls (no lost or torn update)' {
        $Result.Polls | Should -BeGreaterThan 20 -Because 'the poller must have run all along'
        $Result.Regressions | Should -BeNullOrEmpty
    }

    It 'answers the poller within 200 ms at the 99th percentile' {
        $Result.Latency.ProgressP99 | Should -BeLessThan 200
        $Result.Latency.JobP99 | Should -BeLessThan 200
    }
}
