BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $clients = Initialize-TestSession
    $script:SourceClient, $script:TargetClient = $clients.Source, $clients.Target
    # Nothing listens on port 9 of the loopback: connections are refused at once.
    New-CloudConnector -Name nowhere -Endpoint 'http://127.0.0.1:9' -Credential (New-TestCredential $Fixtures.S3rverTarget)
    $script:Source = New-TestBucket $SourceClient
    $script:Seeded = @{}
    for ($i = 0; $i -lt 3; $i++) {
        $Seeded["c/$i.bin"] = Get-TestBytes 2048 (500 + $i)
        Write-TestObject $SourceClient $Source "c/$i.bin" $Seeded["c/$i.bin"]
    }

    function Wait-Until([scriptblock] $Condition, [int] $TimeoutSeconds = 30) {
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
        while (-not (& $Condition)) {
            if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out after $TimeoutSeconds s waiting until $Condition" }
            Start-Sleep -Milliseconds 100
        }
    }

    # The whole state as bytes: the database and its write-ahead log. A refused command must leave both as they were.
    function Get-StateFingerprint {
        $files = Get-ChildItem $env:OBJECTMIGRATION_HOME -Filter 'state.db*' | Where-Object Name -ne 'state.db-shm' | Sort-Object Name
        ($files | ForEach-Object { "$($_.Name)=$((Get-FileHash $_.FullName -Algorithm SHA256).Hash)" }) -join ';'
    }
}

AfterAll {
    Get-MigrationJob | Where-Object State -in 'Running', 'Pending' | Stop-MigrationJob -ErrorAction SilentlyContinue
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
}

Describe 'New-MigrationJob checks everything it can before the job is written' {
    It 'refuses <Case> with error id <ErrorId> and leaves the state database unchanged' -ForEach @(
        @{ Case = 'an invalid source bucket name'; ErrorId = 'InvalidArgument,SourceBucket'; Arguments = @{ SourceBucket = 'Bad_Bucket!!' }; Message = '*not a valid S3 bucket name*' }
        @{ Case = 'an invalid target bucket name'; ErrorId = 'InvalidArgument,TargetBucket'; Arguments = @{ TargetBucket = 'Bad_Bucket' }; Message = '*3 to 63 lower-case letters*' }
        @{ Case = 'a target bucket name like an IP address'; ErrorId = 'InvalidArgument,TargetBucket'; Arguments = @{ TargetBucket = '192.168.1.1' }; Message = '*not a valid S3 bucket name*' }
        @{ Case = 'a missing source bucket'; ErrorId = 'BucketNotFound,SourceBucket'; Arguments = @{ SourceBucket = 'no-such-bucket-here' }; Message = "*source bucket 'no-such-bucket-here' does not exist*-Force*" }
        @{ Case = 'a missing target bucket'; ErrorId = 'BucketNotFound,TargetBucket'; Arguments = @{ TargetBucket = 'no-such-target-here' }; Message = "*target bucket 'no-such-target-here' does not exist*" }
        @{ Case = 'an unreachable target endpoint'; ErrorId = 'ConnectionError,TargetConnector'; Arguments = @{ TargetConnector = 'nowhere'; TargetBucket = 'anything' }; Message = "*'nowhere' could not be checked*Test-CloudConnector*" }
        @{ Case = 'a copy onto itself (same bucket, no prefixes)'; ErrorId = 'InvalidArgument,TargetPrefix'; Arguments = @{ TargetConnector = 'src'; TargetBucket = '<source>' }; Message = '*The target is the source*' }
        @{ Case = 'a target prefix inside the source prefix'; ErrorId = 'InvalidArgument,TargetPrefix'; Arguments = @{ TargetConnector = 'src'; TargetBucket = '<source>'; SourcePrefix = 'c/'; TargetPrefix = 'c/copy/' }; Message = '*-TargetPrefix outside -SourcePrefix*' }
        @{ Case = 'a target prefix with a .. segment'; ErrorId = 'InvalidArgument,TargetPrefix'; Arguments = @{ TargetPrefix = 'a/../b/' }; Message = "*'..' segment*" }
        @{ Case = 'a target prefix with a leading slash'; ErrorId = 'InvalidArgument,TargetPrefix'; Arguments = @{ TargetPrefix = '/data/' }; Message = '*leading slash*' }
        @{ Case = 'an empty -Name'; ErrorId = 'InvalidArgument,Name'; Arguments = @{ Name = '' }; Message = '*-Name is empty*' }
        @{ Case = 'an over-long -Name'; ErrorId = 'InvalidArgument,Name'; Arguments = @{ Name = 'n' * 129 }; Message = '*at most 128*' }
        @{ Case = 'an unknown connector'; ErrorId = 'ConnectorNotFound,SourceConnector'; Arguments = @{ SourceConnector = 'nobody' }; Message = "*No cloud connector is named 'nobody'*" }
    ) {
        $target = New-TestBucket $TargetClient
        $parameters = @{ SourceConnector = 'src'; SourceBucket = $Source; TargetConnector = 'dst'; TargetBucket = $target }
        foreach ($name in $Arguments.Keys) { $parameters[$name] = if ($Arguments[$name] -eq '<source>') { $Source } else { $Arguments[$name] } }
        $before = Get-StateFingerprint
        $jobsBefore = @(Get-MigrationJob).Count

        { New-MigrationJob @parameters -ErrorAction Stop } | Should -Throw -ErrorId "$ErrorId,ObjectMigration.Commands.NewMigrationJobCommand" -ExpectedMessage $Message

        @(Get-MigrationJob).Count | Should -Be $jobsBefore
        Get-StateFingerprint | Should -Be $before
    }

    It 'copies within one bucket to a prefix outside the source prefix' {
        $job = New-MigrationJob -SourceConnector src -SourceBucket $Source -SourcePrefix 'c/' -TargetConnector src -TargetBucket $Source -TargetPrefix 'backup/' -Wait
        $job.State | Should -Be 'Completed'
        foreach ($key in $Seeded.Keys) {
            [System.Linq.Enumerable]::SequenceEqual([byte[]](Read-TestObject $SourceClient $Source "backup/$key").Content, [byte[]]$Seeded[$key]) | Should -BeTrue
        }
    }

    It '-Force skips the reachability checks (not the rules): the job fails when it runs, and Resume-MigrationJob continues it once the bucket exists' {
        $later = 'later-' + [guid]::NewGuid().ToString('n').Substring(0, 12)
        { New-MigrationJob -SourceConnector src -SourceBucket $Source -TargetConnector dst -TargetBucket 'Not_Valid!' -Force -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,TargetBucket,ObjectMigration.Commands.NewMigrationJobCommand'

        $job = New-MigrationJob -Name made-before-its-bucket -SourceConnector src -SourceBucket $Source -SourcePrefix c/ -TargetConnector dst -TargetBucket $later -Force -Wait -ErrorAction SilentlyContinue -ErrorVariable failed
        $job.State | Should -Be 'Failed'
        "$failed" | Should -Match "target bucket '$later' does not exist"

        $null = $TargetClient.PutBucketAsync($later).GetAwaiter().GetResult()
        $resumed = Resume-MigrationJob -Id $job.Id -Wait
        $resumed.State | Should -Be 'Completed'
        $resumed.Id | Should -Be $job.Id
        @(Get-TestKeys $TargetClient $later | Sort-Object) | Should -Be @($Seeded.Keys | Sort-Object)
    }
}

Describe 'One PowerShell job per migration job in a session' {
    It 'keeps one Get-Job entry through three resumes, and Remove-MigrationJob removes it' {
        $bucket = New-TestBucket $SourceClient
        for ($i = 0; $i -lt 8; $i++) { Write-TestObject $SourceClient $bucket ('p/{0}.bin' -f $i) (Get-TestBytes 200KB (700 + $i)) }
        $job = New-MigrationJob -Name one-ps-job -SourceConnector src -SourceBucket $bucket -TargetConnector dst -TargetBucket (New-TestBucket $TargetClient) -MaxBytesPerSecond 100KB -Concurrency 2
        foreach ($round in 1..3) {
            Wait-Until { (Get-MigrationJob -Id $job.Id).State -eq 'Running' }
            $null = Suspend-MigrationJob -Id $job.Id
            $null = Resume-MigrationJob -Id $job.Id
        }
        @(Get-Job -Name one-ps-job).Count | Should -Be 1
        (Get-Job -Name one-ps-job).State | Should -Be 'Running'
        (Wait-MigrationJob -Id $job.Id -Timeout 60).State | Should -Be 'Completed'

        Remove-MigrationJob -Id $job.Id -Confirm:$false
        Get-Job -Name one-ps-job -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'stopping a -Wait (Ctrl+C) stops the wait, not the job' {
        $bucket = New-TestBucket $SourceClient
        for ($i = 0; $i -lt 6; $i++) { Write-TestObject $SourceClient $bucket ('q/{0}.bin' -f $i) (Get-TestBytes 200KB (800 + $i)) }
        $runspace = [runspacefactory]::CreateRunspace()
        $runspace.Open()
        $shell = [powershell]::Create($runspace)
        try {
            $null = $shell.AddScript("`$env:OBJECTMIGRATION_HOME = '$env:OBJECTMIGRATION_HOME'; Import-Module '$ModulePath'; New-MigrationJob -Name waited-on -SourceConnector src -SourceBucket $bucket -TargetConnector dst -TargetBucket $(New-TestBucket $TargetClient) -MaxBytesPerSecond 200KB -Concurrency 2 -Wait")
            $pending = $shell.BeginInvoke()
            Wait-Until { (Get-MigrationJob -Name waited-on -ErrorAction SilentlyContinue).State -eq 'Running' }
            $shell.Stop()   # what Ctrl+C does: StopProcessing on the waiting cmdlet
            $pending.IsCompleted | Should -BeTrue
            (Get-MigrationJob -Name waited-on).State | Should -Be 'Running'
            (Wait-MigrationJob -Id (Get-MigrationJob -Name waited-on).Id -Timeout 60).State | Should -Be 'Completed'
        } finally {
            $shell.Dispose()
            $runspace.Dispose()
        }
    }
}

Describe 'Verify says what it found' {
    It 'reports a clean verify as matched, and points findings to the verify log types, not to -RetryFailed' {
        $target = New-TestBucket $TargetClient
        $null = New-MigrationJob -SourceConnector src -SourceBucket $Source -SourcePrefix c/ -TargetConnector dst -TargetBucket $target -Wait
        $clean = New-MigrationJob -Type Verify -SourceConnector src -SourceBucket $Source -SourcePrefix c/ -TargetConnector dst -TargetBucket $target -Wait
        $clean.State | Should -Be 'Completed'
        (Get-MigrationJobLog -Id $clean.Id -Type MigrationComplete).Message | Should -Match '^3 matched, 0 missing or different'

        $null = $TargetClient.DeleteObjectAsync($target, 'c/1.bin').GetAwaiter().GetResult()
        $found = New-MigrationJob -Type Verify -SourceConnector src -SourceBucket $Source -SourcePrefix c/ -TargetConnector dst -TargetBucket $target -Wait -ErrorVariable said -ErrorAction SilentlyContinue
        $found.State | Should -Be 'CompletedWithErrors'
        "$said" | Should -Match 'VerifyMissing, VerifyMismatch'
        "$said" | Should -Not -Match 'RetryFailed|ImportErrorRetryExhaustion'
        (Get-MigrationJobLog -Id $found.Id -Type MigrationComplete).Message | Should -Match '^2 matched, 1 missing or different'
    }
}
