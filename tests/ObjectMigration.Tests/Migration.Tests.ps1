BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $clients = Initialize-TestSession -TargetFixture $Fixtures.Ceph -SourceName pester-source -TargetName pester-target
    $script:SourceClient, $script:TargetClient = $clients.Source, $clients.Target
}

AfterAll {
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
}

Describe 'Cloud connectors' {
    It 'stores a connector and lists it sorted by name, with wildcards and paging' {
        New-CloudConnector -Name 'zeta' -Endpoint 'http://127.0.0.1:9' -Credential ([pscredential]::new('AKZETA', (ConvertTo-SecureString 'zeta-secret' -AsPlainText -Force))) | Out-Null
        $all = Get-CloudConnector
        $all.Name | Should -Be @('pester-source', 'pester-target', 'zeta')
        (Get-CloudConnector -Name 'pester-*').Count | Should -Be 2
        (Get-CloudConnector -First 1 -Skip 1).Name | Should -Be 'pester-target'
        (Get-CloudConnector -Name zeta).AccessKeyId | Should -Be 'AKZETA'
        (Get-CloudConnector -Name zeta).PathStyle | Should -BeTrue
    }

    It 'returns the secret only with -IncludeSecret, and keeps it out of the database file' {
        $connector = Get-CloudConnector -Name zeta -IncludeSecret
        $connector.Credential.GetNetworkCredential().Password | Should -Be 'zeta-secret'
        (Get-CloudConnector -Name zeta).PSObject.Properties.Name | Should -Not -Contain 'Credential'
        $database = [System.IO.File]::ReadAllBytes((Join-Path $env:OBJECTMIGRATION_HOME 'state.db'))
        $text = [System.Text.Encoding]::UTF8.GetString($database)
        $text | Should -Not -Match 'zeta-secret'
        $text | Should -Not -Match 'AKZETA'
    }

    It 'rejects a second connector with the same name, case-insensitively, naming the problem' {
        { New-CloudConnector -Name 'ZETA' -Endpoint 'http://127.0.0.1:9' -Credential (New-TestCredential $Fixtures.Ceph) -ErrorAction Stop } |
            Should -Throw -ErrorId 'NameAlreadyExists,ObjectMigration.Commands.NewCloudConnectorCommand'
    }

    It 'rejects a malformed endpoint before anything is stored' {
        { New-CloudConnector -Name 'bad' -Endpoint 'not a url' -Credential (New-TestCredential $Fixtures.Ceph) -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,Endpoint,ObjectMigration.Commands.NewCloudConnectorCommand'
        Get-CloudConnector -Name 'bad' -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}

Describe 'A migration job, end to end' {
    BeforeAll {
        $script:SourceBucket = New-TestBucket $SourceClient
        $script:TargetBucket = New-TestBucket $TargetClient
        $script:Seeded = @{}
        for ($i = 0; $i -lt 200; $i++) {
            $key = 'photos/{0:d3}/img {1}.jpg' -f ($i % 7), $i
            $bytes = Get-TestBytes (($i * 37) % 5000) $i
            Write-TestObject $SourceClient $SourceBucket $key $bytes -ContentType 'image/jpeg' -Metadata @{ 'album' = "a$($i % 3)" }
            $Seeded[$key] = $bytes
        }
        $script:Job = New-MigrationJob -SourceConnector pester-source -SourceBucket $SourceBucket -TargetConnector pester-target -TargetBucket $TargetBucket -Wait -Concurrency 8
    }

    It 'ends Completed and returns the MigrationJob' {
        $Job.GetType().FullName | Should -Be 'ObjectMigration.Engine.Model.MigrationJob'
        $Job.State | Should -Be 'Completed'
        $Job.Name | Should -Be "$SourceBucket-to-$TargetBucket"
        $Job.FinishedAt | Should -Not -BeNullOrEmpty
    }

    It 'copies every object byte for byte with its content type and metadata' {
        foreach ($key in $Seeded.Keys) {
            $copy = Read-TestObject $TargetClient $TargetBucket $key
            [System.Linq.Enumerable]::SequenceEqual([byte[]]$copy.Content, [byte[]]$Seeded[$key]) | Should -BeTrue -Because $key
            $copy.ContentType | Should -Be 'image/jpeg'
            $copy.Metadata['album'] | Should -Match '^a[012]$'
        }
        @(Get-TestKeys $TargetClient $TargetBucket).Count | Should -Be 200
    }

    It 'reports counters that match what was copied' {
        $progress = Get-MigrationJobProgress -Id $Job.Id
        $progress.State | Should -Be 'Completed'
        $progress.Objects | Should -Be 200
        $progress.TransferredObjects | Should -Be 200
        $progress.FailedObjects | Should -Be 0
        $progress.PendingObjects | Should -Be 0
        $progress.TransferredBytes | Should -Be ($Seeded.Values | Measure-Object -Property Length -Sum).Sum
        $progress.PercentComplete | Should -Be 100
    }

    It 'is listed by Get-MigrationJob, by id, by name and by state, and binds from the pipeline' {
        (Get-MigrationJob -Id $Job.Id).Id | Should -Be $Job.Id
        (Get-MigrationJob -Name "$SourceBucket-*").Id | Should -Be $Job.Id
        (Get-MigrationJob -State Completed).Id | Should -Contain $Job.Id
        ($Job | Get-MigrationJobProgress).TransferredObjects | Should -Be 200
        (Get-MigrationJobLog -Id $Job.Id -Type MigrationStart, MigrationComplete).Type | Should -Be @('MigrationStart', 'MigrationComplete')
    }

    It 'skips every object on a second run (IfDifferent) and copies nothing' {
        $again = New-MigrationJob -SourceConnector pester-source -SourceBucket $SourceBucket -TargetConnector pester-target -TargetBucket $TargetBucket -Wait
        $progress = $again | Get-MigrationJobProgress
        $progress.SkippedObjects | Should -Be 200
        $progress.TransferredObjects | Should -Be 0
        $again.State | Should -Be 'Completed'
    }

    It 'lists with -WhatIf what would be copied and creates nothing' {
        $before = @(Get-MigrationJob).Count
        $plan = New-MigrationJob -SourceConnector pester-source -SourceBucket $SourceBucket -TargetConnector pester-target -TargetBucket $TargetBucket -Include '*/000/*' -WhatIf
        # The job above already copied them all: the 29 selected objects are there, the rest left out by -Include.
        ($plan | Where-Object Action -eq Skip).Reason | Should -Be 'ImportSkippedExists'
        ($plan | Where-Object Action -eq Skip).Objects | Should -Be 29
        ($plan | Where-Object Action -eq Exclude).Reason | Should -Be 'Filter'
        @(Get-MigrationJob).Count | Should -Be $before
    }

    It 'runs as a PowerShell job that Get-Job lists by the migration job''s name' {
        $psJob = New-MigrationJob -Name 'as-a-job' -SourceConnector pester-source -SourceBucket $SourceBucket -TargetConnector pester-target -TargetBucket $TargetBucket -AsJob
        (Get-Job -Name 'as-a-job').Id | Should -Be $psJob.Id
        $null = $psJob | Wait-Job -Timeout 120
        $psJob.State | Should -Be 'Completed'
        (Receive-Job $psJob).Type | Should -Contain 'MigrationComplete'
        (Get-MigrationJob -Name 'as-a-job').State | Should -Be 'Completed'
    }
}

Describe 'Errors' {
    It 'names the connector that does not exist and writes nothing' {
        $before = @(Get-MigrationJob).Count
        { New-MigrationJob -SourceConnector nope -SourceBucket aaa -TargetConnector pester-target -TargetBucket bbb -ErrorAction Stop } |
            Should -Throw -ErrorId 'ConnectorNotFound,SourceConnector,ObjectMigration.Commands.NewMigrationJobCommand'
        @(Get-MigrationJob).Count | Should -Be $before
    }

    It 'fails a job whose source bucket is missing at run time (-Force skips the check up front), as a non-terminating error a runbook can stop on' {
        $job = New-MigrationJob -SourceConnector pester-source -SourceBucket 'missing-bucket-xyz' -TargetConnector pester-target -TargetBucket (New-TestBucket $TargetClient) -Force -Wait -ErrorVariable problems -ErrorAction SilentlyContinue
        $job.State | Should -Be 'Failed'
        $problems[0].FullyQualifiedErrorId | Should -Be 'MigrationJobFailed,ObjectMigration.Commands.NewMigrationJobCommand'
        $job.Error | Should -Match 'missing-bucket-xyz'
    }

    It 'refuses a bad -NoProgressTimeout or -StorageClass before anything is written, naming the parameter' {
        $before = @(Get-MigrationJob).Count
        { New-MigrationJob -SourceConnector pester-source -SourceBucket aaa -TargetConnector pester-target -TargetBucket bbb -NoProgressTimeout 0 -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,NoProgressTimeout,ObjectMigration.Commands.NewMigrationJobCommand'
        { New-MigrationJob -SourceConnector pester-source -SourceBucket aaa -TargetConnector pester-target -TargetBucket bbb -NoProgressTimeout '2.00:00:00' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,NoProgressTimeout,ObjectMigration.Commands.NewMigrationJobCommand'
        { New-MigrationJob -SourceConnector pester-source -SourceBucket aaa -TargetConnector pester-target -TargetBucket bbb -StorageClass 'cold storage' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,StorageClass,ObjectMigration.Commands.NewMigrationJobCommand'
        { New-MigrationJob -SourceConnector pester-source -SourceBucket aaa -TargetConnector pester-target -TargetBucket bbb -StorageClass 42 -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,StorageClass,ObjectMigration.Commands.NewMigrationJobCommand'
        @(Get-MigrationJob).Count | Should -Be $before
    }

    It 'takes -NoProgressTimeout as seconds or a TimeSpan and keeps the default on the job' {
        $source = New-TestBucket $SourceClient
        Write-TestObject $SourceClient $source 'one.txt' ([byte[]](7, 8, 9))
        $target = New-TestBucket $TargetClient
        (New-MigrationJob -SourceConnector pester-source -SourceBucket $source -TargetConnector pester-target -TargetBucket $target -NoProgressTimeout 90 -Wait).NoProgressTimeout |
            Should -Be ([timespan]::FromSeconds(90))
        (New-MigrationJob -SourceConnector pester-source -SourceBucket $source -TargetConnector pester-target -TargetBucket $target -NoProgressTimeout '00:02:00' -Wait).NoProgressTimeout |
            Should -Be ([timespan]::FromMinutes(2))
        (New-MigrationJob -SourceConnector pester-source -SourceBucket $source -TargetConnector pester-target -TargetBucket $target -Wait).NoProgressTimeout |
            Should -Be ([timespan]::FromSeconds(60))
    }

    It 'resumes a Failed job once its cause is fixed' {
        $bucket = 'later-' + [guid]::NewGuid().ToString('n').Substring(0, 12)
        $target = New-TestBucket $TargetClient
        $failed = New-MigrationJob -SourceConnector pester-source -SourceBucket $bucket -TargetConnector pester-target -TargetBucket $target -Force -Wait -ErrorAction SilentlyContinue
        $failed.State | Should -Be 'Failed'
        $SourceClient.PutBucketAsync($bucket).GetAwaiter().GetResult() | Out-Null
        Write-TestObject $SourceClient $bucket 'late.txt' ([byte[]](1, 2, 3))
        $resumed = $failed | Resume-MigrationJob -Wait
        $resumed.State | Should -Be 'Completed'
        (Get-MigrationJobProgress -Id $failed.Id).TransferredObjects | Should -Be 1
    }

    It 'refuses to resume a completed job with a clear error id' {
        $done = Get-MigrationJob -State Completed | Select-Object -First 1
        { $done | Resume-MigrationJob -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidJobState,ObjectMigration.Commands.ResumeMigrationJobCommand'
    }

    It 'answers an unknown id with ObjectNotFound' {
        { Get-MigrationJob -Id ([guid]::NewGuid()) -ErrorAction Stop } | Should -Throw -ErrorId 'NotFound,ObjectMigration.Commands.GetMigrationJobCommand'
    }
}
