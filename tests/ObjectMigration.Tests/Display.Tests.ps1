BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $env:OBJECTMIGRATION_HOME = New-TestHome
    Import-Module $ModulePath -Force
    Import-AwsSdk -ModulePath $ModulePath
    Import-Module (Join-Path $PSScriptRoot '../Fixtures/S3Fixtures.psm1') -Force
    $script:SourceClient = New-TestS3Client $Fixtures.S3rverSource
    $script:TargetClient = New-TestS3Client $Fixtures.S3rverTarget
    New-CloudConnector -Name onprem-source -Endpoint $Fixtures.S3rverSource.Endpoint -Credential (New-TestCredential $Fixtures.S3rverSource)
    New-CloudConnector -Name archive-target -Endpoint $Fixtures.S3rverTarget.Endpoint -Credential (New-TestCredential $Fixtures.S3rverTarget)
    $script:SourceBucket = New-TestBucket $SourceClient
    for ($i = 0; $i -lt 3; $i++) { Write-TestObject $SourceClient $SourceBucket "photos/$i.jpg" (Get-TestBytes (1000 * ($i + 1)) $i) -ContentType 'image/jpeg' }
    $script:TargetBucket = New-TestBucket $TargetClient
    $script:Job = New-MigrationJob -Name 'display-photos' -SourceConnector onprem-source -SourceBucket $SourceBucket -SourcePrefix photos/ `
        -TargetConnector archive-target -TargetBucket $TargetBucket -TargetPrefix 2024/ -Include '*.jpg' -MaxSize 10MB -Wait

    # Worst cases no real run gives quickly: the longest state, sizes in GiB, a rate, an ETA over a day.
    function New-LikeThis($Object) { $Object.GetType()::new() }
    $script:BigProgress = New-LikeThis (Get-MigrationJobProgress -Id $Job.Id)
    $BigProgress.Name = 'nightly-archive-of-everything'; $BigProgress.State = 'CompletedWithErrors'; $BigProgress.FailedObjects = 123456
    $BigProgress.Objects = 9876543; $BigProgress.TotalBytes = 1319413953331; $BigProgress.TransferredBytes = 1099511627776 - 1
    $BigProgress.BytesPerSecond = 1073741823; $BigProgress.PercentComplete = 99.9; $BigProgress.EstimatedTimeRemaining = [timespan]::FromHours(80.5)
    $script:BigJob = New-LikeThis $Job
    $BigJob.Name = 'nightly-archive-of-everything'; $BigJob.Type = 'Inventory'; $BigJob.State = 'CompletedWithErrors'
    $BigJob.SourceConnector = 'onprem-source'; $BigJob.SourceBucket = 'a-very-long-bucket-name-for-photos'; $BigJob.SourcePrefix = 'year=2024/'
    $BigJob.TargetConnector = 'archive-target'; $BigJob.TargetBucket = 'photos'

    # Renders a table at 80 and 120 columns: the headers stay on one line, each whole (no column is narrower than its
    # header, none is dropped), no line is wider than the screen, and the given values (numbers, states) show whole in
    # the first row. Names may end in an ellipsis at 80 columns; numbers never do.
    function Assert-TableReadsWell($InputObject, [string[]] $Headers, [string[]] $WholeValues = @()) {
        foreach ($width in 80, 120) {
            $lines = @(($InputObject | Format-Table | Out-String -Width $width) -split "`r?`n" | Where-Object { $_.Trim() })
            $dashIndex = [array]::FindIndex($lines, [Predicate[string]] { param($l) $l -match '^[- ]+$' })
            $dashIndex | Should -Be 1 -Because "the headers take one line at $width columns:`n$($lines -join "`n")"
            @($lines[0].Trim() -split '\s+') | Should -Be $Headers -Because "no header is cut or dropped at $width columns:`n$($lines -join "`n")"
            @([regex]::Matches($lines[1], '-+') | ForEach-Object Length) | Should -Be @($Headers | ForEach-Object Length)
            foreach ($line in $lines) { $line.TrimEnd().Length | Should -BeLessOrEqual $width }
            foreach ($value in $WholeValues) {
                $lines[2] | Should -Match "(^|\s)$([regex]::Escape($value))(\s|$)" -Because "'$value' shows whole at $width columns:`n$($lines -join "`n")"
            }
        }
    }
}

AfterAll { Remove-Module ObjectMigration -ErrorAction SilentlyContinue }

Describe 'Default views' {
    It 'Get-MigrationJob reads well at 80 and 120 columns, Source and Target included' {
        Assert-TableReadsWell (Get-MigrationJob -Id $Job.Id) 'Name', 'Type', 'State', 'Source', 'Target' 'Completed', 'Migrate'
        Assert-TableReadsWell $BigJob 'Name', 'Type', 'State', 'Source', 'Target' 'CompletedWithErrors', 'Inventory'
    }

    It 'Get-MigrationJobProgress shows sizes, rate, percent and ETA whole at 80 and 120 columns' {
        Assert-TableReadsWell (Get-MigrationJobProgress -Id $Job.Id) 'State', 'Failed', 'Transferred', 'Rate', '%', 'ETA', 'Name' 'Completed', '5.9 KiB', '100.0'
        Assert-TableReadsWell $BigProgress 'State', 'Failed', 'Transferred', 'Rate', '%', 'ETA', 'Name' 'CompletedWithErrors', '123456', '1024.0 GiB', '1024.0 MiB/s', '99.9', '3d 08h'
    }

    It 'Get-CloudConnector, Test-CloudConnector and its buckets read well at 80 and 120 columns' {
        Assert-TableReadsWell (Get-CloudConnector onprem-source) 'Name', 'Provider', 'Endpoint', 'Region', 'Credentials' 'onprem-source', 'S3', 'us-east-1'
        $result = Test-CloudConnector onprem-source
        Assert-TableReadsWell $result 'Connector', 'Endpoint', 'Reachable', 'Authenticated', 'Latency', 'Buckets' 'True', "$($result.LatencyMs) ms", "$($result.BucketCount)"
        Assert-TableReadsWell (Test-CloudConnector onprem-source -Bucket $SourceBucket) 'Location', 'Created', 'Objects', 'Size', 'Name' '3', '5.9 KiB', $SourceBucket
    }

    It 'Get-MigrationWorker reads well at 80 and 120 columns, and its JSON names the state' {
        # A real worker, run in a runspace of this process.
        $runspace = [runspacefactory]::CreateRunspace()
        $runspace.Open()
        $shell = [powershell]::Create($runspace)
        try {
            $null = $shell.AddScript("`$env:OBJECTMIGRATION_HOME = '$env:OBJECTMIGRATION_HOME'; Import-Module '$ModulePath'; Start-MigrationWorker -MaxJobs 3")
            $null = $shell.BeginInvoke()
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while (-not (Get-MigrationWorker) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            $worker = Get-MigrationWorker
            Assert-TableReadsWell $worker 'Worker', 'State', 'Started', 'Heartbeat', 'Jobs', 'Running' 'Running', '0/3'
            ($worker | ConvertTo-Json | ConvertFrom-Json).StateName | Should -Be 'Running'
            $busy = New-LikeThis $worker
            $busy.ComputerName = 'a-rather-long-host-name.example.internal'; $busy.ProcessId = 4194304; $busy.State = 'Stopping'
            $busy.StartedAt = [DateTimeOffset]::UtcNow.AddDays(-3); $busy.LastHeartbeat = [DateTimeOffset]::UtcNow.AddSeconds(-9.5)
            $busy.Jobs = @('nightly-archive-of-everything', 'photos-2024'); $busy.MaxJobs = 64
            Assert-TableReadsWell $busy 'Worker', 'State', 'Started', 'Heartbeat', 'Jobs', 'Running' 'Stopping', '2/64'
            Get-MigrationWorker | Stop-MigrationWorker
        } finally {
            $shell.Dispose()
            $runspace.Dispose()
        }
    }

    It 'log entries and the -WhatIf preview read well at 80 and 120 columns' {
        Assert-TableReadsWell (Get-MigrationJobLog -Id $Job.Id -Type MigrationStart) 'Time', 'Type', 'Message' 'MigrationStart'
        # The job already ran into that target: the dry run says all three are there.
        $plan = New-MigrationJob -SourceConnector onprem-source -SourceBucket $SourceBucket -SourcePrefix photos/ -TargetConnector archive-target -TargetBucket $TargetBucket -TargetPrefix 2024/ -WhatIf
        Assert-TableReadsWell $plan 'Action', 'Objects', 'Size', 'Reason' 'Skip', '3', '5.9 KiB', 'ImportSkippedExists'
        ($plan | ConvertTo-Json | ConvertFrom-Json).ActionName | Should -Be 'Skip'
    }

    It 'Get-MigrationJobProgress shows the level of a running job, in the list and for each worker, and none once it ended' {
        $bucket = New-TestBucket $SourceClient
        for ($i = 0; $i -lt 8; $i++) { Write-TestObject $SourceClient $bucket ('level/{0}.bin' -f $i) (Get-TestBytes 200KB (900 + $i)) }
        $running = New-MigrationJob -Name level-shown -SourceConnector onprem-source -SourceBucket $bucket -TargetConnector archive-target -TargetBucket (New-TestBucket $TargetClient) -MaxBytesPerSecond 100KB -Concurrency 3
        try {
            Wait-Until { ($script:progress = Get-MigrationJobProgress -Id $running.Id).State -eq 'Running' -and $progress.ActiveConcurrency -gt 0 } -What 'the job running at a level'
            # Three at most: the level starts at 16 or the ceiling if lower, and only goes down from there.
            $progress.ActiveConcurrency | Should -BeIn (1..3)
            $level = $progress.ActiveConcurrency
            ($progress | Format-List | Out-String -Width 120) | Should -Match "ActiveConcurrency\s+: up to $level transfers? at once now"
            $worker = $progress.Workers | Where-Object Active
            $worker.ActiveConcurrency | Should -Be $level
            Assert-TableReadsWell $worker 'Role', 'Active', 'Objects', 'Transferred', 'Rate', 'Concurrency', 'Heartbeat', 'Worker' 'Lead', "$level"
        } finally {
            $null = Stop-MigrationJob -Id $running.Id -Confirm:$false
        }
        Wait-Until { (Get-MigrationJobProgress -Id $running.Id).State -notin 'Running', 'Pending' } -What 'the stopped job to settle'
        $ended = Get-MigrationJobProgress -Id $running.Id | Format-List | Out-String -Width 120
        $ended | Should -Match 'ActiveConcurrency\s+: not running'
        $ended | Should -Match 'BytesPerSecond\s+: 0 B/s'
    }

    It 'Format-List shows the details, the filter as the rules it holds' {
        $list = Get-MigrationJob -Id $Job.Id | Format-List | Out-String -Width 120
        $list | Should -Match 'Filter\s+: Include \*\.jpg; MaxSize 10\.0 MiB'
        $list | Should -Match "Target\s+: archive-target/$TargetBucket/2024/"
        $list | Should -Match 'PartSize\s+: 8\.0 MiB'
        (Get-MigrationJobProgress -Id $Job.Id | Format-List | Out-String) | Should -Match 'TransferredBytes\s+: 5\.9 KiB \(6000 bytes\)'
        (Test-CloudConnector onprem-source | Format-List | Out-String) | Should -Match "Buckets\s+: .*$SourceBucket"
    }
}

Describe 'Objects in the pipeline' {
    It 'MigrationJob has Source and Target as connector/bucket/prefix, and Filter prints its rules' {
        $selected = Get-MigrationJob -Id $Job.Id | Select-Object Source, Target, Filter
        $selected.Source | Should -Be "onprem-source/$SourceBucket/photos/"
        $selected.Target | Should -Be "archive-target/$TargetBucket/2024/"
        "$($selected.Filter)" | Should -Be 'Include *.jpg; MaxSize 10.0 MiB'
    }

    It 'ConvertTo-Json of each output type shows state, type and provider names' {
        $jobJson = Get-MigrationJob -Id $Job.Id | ConvertTo-Json -Depth 3 | ConvertFrom-Json
        $jobJson.StateName | Should -Be 'Completed'
        $jobJson.TypeName | Should -Be 'Migrate'
        $jobJson.OverwriteName | Should -Be 'IfDifferent'
        $jobJson.Source | Should -Be "onprem-source/$SourceBucket/photos/"
        (Get-MigrationJobProgress -Id $Job.Id | ConvertTo-Json | ConvertFrom-Json).StateName | Should -Be 'Completed'
        $connectorJson = Get-CloudConnector onprem-source | ConvertTo-Json | ConvertFrom-Json
        $connectorJson.ProviderName | Should -Be 'S3'
        $connectorJson.CredentialSourceName | Should -Be 'Stored'
        (Get-MigrationJobLog -Id $Job.Id -Type MigrationComplete | ConvertTo-Json | ConvertFrom-Json).TypeName | Should -Be 'MigrationComplete'
        (Test-CloudConnector onprem-source | ConvertTo-Json -Depth 3 | ConvertFrom-Json).Authenticated | Should -BeTrue
    }
}

Describe 'Test-CloudConnector on a healthy endpoint with no buckets' {
    BeforeAll {
        $script:Empty = Start-S3rverFixture -Name empty16
        New-CloudConnector -Name empty -Endpoint $Empty.Endpoint -Credential (New-TestCredential $Empty)
    }
    AfterAll { Stop-S3Fixture $Empty }

    It 'returns a result that is true in an if, with no buckets' {
        $result = Test-CloudConnector empty
        if ($result) { $healthy = $true } else { $healthy = $false }
        $healthy | Should -BeTrue
        $result.Reachable | Should -BeTrue
        $result.Authenticated | Should -BeTrue
        $result.BucketCount | Should -Be 0
        $result.LatencyMs | Should -BeGreaterOrEqual 0
        @(Test-CloudConnector empty -ListBuckets).Count | Should -Be 0
        Test-CloudConnector empty -Quiet | Should -BeTrue
    }

    It 'says $false with -Quiet for an endpoint that does not answer, writing no error' {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop()
        Test-CloudConnector -Provider S3 -Endpoint "http://127.0.0.1:$port" -Credential (New-TestCredential $Empty) -Quiet -ErrorVariable failure | Should -BeFalse
        $failure | Should -BeNullOrEmpty
    }
}

Describe 'Conventions' {
    It 'Remove-CloudConnector and Remove-MigrationJob ask for confirmation (ConfirmImpact High); -Confirm:$false removes' {
        foreach ($name in 'Remove-CloudConnector', 'Remove-MigrationJob') {
            $attribute = (Get-Command $name).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0]
            $attribute.ConfirmImpact | Should -Be 'High'
        }
        New-CloudConnector -Name doomed -Endpoint $Fixtures.S3rverSource.Endpoint -Credential (New-TestCredential $Fixtures.S3rverSource)
        # With the default $ConfirmPreference (High), -WhatIf shows the change and makes none.
        Remove-CloudConnector doomed -WhatIf
        Get-CloudConnector doomed | Should -Not -BeNullOrEmpty
        Remove-CloudConnector doomed -Confirm:$false
        Get-CloudConnector doomed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'completes -SourceBucket and -TargetBucket from the connector named in the command, and job names' {
        $line = "New-MigrationJob -SourceConnector onprem-source -SourceBucket $($SourceBucket.Substring(0, 4))"
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Contain $SourceBucket
        $line = 'New-MigrationJob -SourceConnector onprem-source -SourceBucket x -TargetConnector archive-target -TargetBucket '
        $targets = (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText
        $targets | Should -Contain $TargetBucket
        $targets | Should -Not -Contain $SourceBucket
        $line = 'Get-MigrationJob -Name disp'
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be 'display-photos'
    }

    It 'offers no bucket names, quietly and within a few seconds, when the connector does not answer' {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start()
        try {
            New-CloudConnector -Name silent -Endpoint "http://127.0.0.1:$($listener.LocalEndpoint.Port)" -Credential (New-TestCredential $Fixtures.S3rverSource)
            $line = 'New-MigrationJob -SourceConnector silent -SourceBucket '
            $clock = [System.Diagnostics.Stopwatch]::StartNew()
            $matches = (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 6
            @($matches | Where-Object ResultType -eq 'ParameterValue') | Should -BeNullOrEmpty
        } finally { $listener.Stop(); Remove-CloudConnector silent -Confirm:$false }
    }

    It 'Get-MigrationJob | Stop-MigrationJob skips finished jobs with a warning instead of an error' {
        Get-MigrationJob -Id $Job.Id | Stop-MigrationJob -Confirm:$false -ErrorVariable failures -WarningVariable skipped -WarningAction SilentlyContinue
        $failures | Should -BeNullOrEmpty
        "$skipped" | Should -Match "Skipped 'display-photos'.*already Completed"
        (Get-MigrationJob -Id $Job.Id).State | Should -Be 'Completed'
    }
}
