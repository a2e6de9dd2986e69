BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $clients = Initialize-TestSession
    $script:SourceClient, $script:TargetClient = $clients.Source, $clients.Target
    $script:Reports = Join-Path $env:OBJECTMIGRATION_HOME 'reports'

    # One migration with every outcome. s3rver keeps each key as a file, so a 30-character target prefix in front of a
    # 230-character key makes a file name longer than the target's file system takes: that one object fails (after its
    # retries), the same way on every run. Five objects are on the target already (skipped), four are new.
    $script:TargetPrefix = 'c' * 30
    $script:Source = New-TestBucket $SourceClient
    $script:Target = New-TestBucket $TargetClient
    for ($i = 0; $i -lt 5; $i++) {
        $bytes = Get-TestBytes 1KB (100 + $i)
        Write-TestObject $SourceClient $Source "keep/$i.bin" $bytes
        Write-TestObject $TargetClient $Target "$TargetPrefix`keep/$i.bin" $bytes
    }
    for ($i = 0; $i -lt 3; $i++) { Write-TestObject $SourceClient $Source "new/$i.bin" (Get-TestBytes 2KB (200 + $i)) }
    Write-TestObject $SourceClient $Source '=HYPERLINK("x").bin' (Get-TestBytes 10 300)
    $script:LongKey = 'l' * 230
    Write-TestObject $SourceClient $Source $LongKey (Get-TestBytes 10 301)

    $common = @{ SourceConnector = 'src'; SourceBucket = $Source; TargetConnector = 'dst'; TargetBucket = $Target; TargetPrefix = $TargetPrefix }
    $script:Migrate = New-MigrationJob -Name report-migrate @common -Wait -ErrorAction SilentlyContinue
    $script:Verify = New-MigrationJob -Name report-verify -Type Verify @common -Wait -ErrorAction SilentlyContinue

    function Get-Counters($Job) {
        $progress = Get-MigrationJobProgress -Id $Job.Id
        [ordered]@{ Transferred = $progress.TransferredObjects; Skipped = $progress.SkippedObjects; Failed = $progress.FailedObjects; Pending = $progress.PendingObjects }
    }

    function Get-RowCounts($Rows) {
        [ordered]@{
            Transferred = @($Rows | Where-Object Outcome -eq Transferred).Count
            Skipped = @($Rows | Where-Object Outcome -eq Skipped).Count
            Failed = @($Rows | Where-Object Outcome -eq Failed).Count
            Pending = @($Rows | Where-Object Outcome -eq Pending).Count
        }
    }
}

AfterAll {
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
}

Describe 'Export-MigrationJobReport' {
    It 'arranges a job with transferred, skipped and failed objects' {
        $Migrate.State | Should -Be 'CompletedWithErrors'
        $counters = Get-Counters $Migrate
        "$($counters.Values)" | Should -Be '4 5 1 0'
    }

    It 'writes one row per object whose outcomes equal the job''s counters, with every column' {
        $path = Join-Path $Reports 'migrate.csv'
        $file = Export-MigrationJobReport -Id $Migrate.Id -Path $path
        $file | Should -BeOfType System.IO.FileInfo
        $file.FullName | Should -Be $path

        $rows = Import-Csv $path
        $rows.Count | Should -Be (Get-MigrationJobProgress -Id $Migrate.Id).Objects
        (Get-RowCounts $rows).Values | Should -Be (Get-Counters $Migrate).Values
        $rows[0].PSObject.Properties.Name | Should -Be Job, JobId, Key, Size, Outcome, LogType, Reason, SourceETag, TargetETag, VerifiedBy, StorageClass
        $rows.Job | Sort-Object -Unique | Should -Be 'report-migrate'
        $rows.JobId | Sort-Object -Unique | Should -Be "$($Migrate.Id)"

        $failed = $rows | Where-Object Outcome -eq Failed
        $failed.Key | Should -Be $LongKey
        $failed.LogType | Should -Be 'ImportErrorRetryExhaustion'
        $failed.Reason | Should -Not -BeNullOrEmpty
        $failed.TargetETag | Should -BeNullOrEmpty
        $skipped = @($rows | Where-Object Outcome -eq Skipped)
        $skipped.LogType | Sort-Object -Unique | Should -Be 'ImportSkippedExists'
        # Listed on the target before the copy: the same bytes, so the same ETag on both sides.
        foreach ($row in $skipped) { $row.TargetETag | Should -Be $row.SourceETag }
        $transferred = @($rows | Where-Object Outcome -eq Transferred)
        $transferred.LogType | Sort-Object -Unique | Should -Be 'ImportTransferred'
        $transferred.VerifiedBy | Sort-Object -Unique | Should -Match 'Content-MD5'
        ($rows | Where-Object Key -eq 'new/0.bin').Size | Should -Be 2048
        # A key a spreadsheet would run as a formula gets a leading apostrophe in CSV.
        $rows.Key | Should -Contain '''=HYPERLINK("x").bin'
    }

    It 'writes JSON Lines with keys exactly as stored, and .json as one array' {
        $lines = Join-Path $Reports 'migrate.jsonl'
        $array = Join-Path $Reports 'migrate.json'
        $Migrate | Export-MigrationJobReport -Path $lines | Out-Null
        $Migrate | Export-MigrationJobReport -Path $array | Out-Null

        $rows = Get-Content $lines | ForEach-Object { $_ | ConvertFrom-Json }
        (Get-RowCounts $rows).Values | Should -Be (Get-Counters $Migrate).Values
        $rows.Key | Should -Contain '=HYPERLINK("x").bin'
        @(Get-Content $array -Raw | ConvertFrom-Json).Count | Should -Be $rows.Count
    }

    It 'writes the jobs of one pipeline to one file, each row naming its job' {
        $path = Join-Path $Reports 'both.csv'
        $files = @($Migrate, $Verify | Export-MigrationJobReport -Path $path)

        $files.Count | Should -Be 1
        $rows = Import-Csv $path
        $rows.Count | Should -Be ((Get-MigrationJobProgress -Id $Migrate.Id).Objects + (Get-MigrationJobProgress -Id $Verify.Id).Objects)
        foreach ($job in $Migrate, $Verify) {
            (Get-RowCounts ($rows | Where-Object Job -eq $job.Name)).Values | Should -Be (Get-Counters $job).Values
            @($rows | Where-Object JobId -eq "$($job.Id)").Count | Should -Be (Get-MigrationJobProgress -Id $job.Id).Objects
        }
        # A verify job's rows: the missing object with its log type, the others matched.
        $missing = $rows | Where-Object { $_.Job -eq 'report-verify' -and $_.Outcome -eq 'Failed' }
        $missing.Key | Should -Be $LongKey
        $missing.LogType | Should -Be 'VerifyMissing'
    }

    It 'writes one file per job where -Path holds {Name}, and refuses two jobs that would share one' {
        $files = @(Get-MigrationJob -Name report-* | Export-MigrationJobReport -Path (Join-Path $Reports 'each-{Name}.jsonl'))

        $files.Name | Sort-Object | Should -Be 'each-report-migrate.jsonl', 'each-report-verify.jsonl'
        foreach ($job in $Migrate, $Verify) {
            $rows = Get-Content (Join-Path $Reports "each-$($job.Name).jsonl") | ForEach-Object { $_ | ConvertFrom-Json }
            (Get-RowCounts $rows).Values | Should -Be (Get-Counters $job).Values
        }

        $twin = New-MigrationJob -Name report-migrate -Type Verify -SourceConnector src -SourceBucket $Source -SourcePrefix keep/ -TargetConnector dst `
            -TargetBucket $Target -TargetPrefix $TargetPrefix -Wait
        $twin.Id | Should -Not -Be $Migrate.Id
        $written = @($Migrate, $twin | Export-MigrationJobReport -Path (Join-Path $Reports 'twins-{Name}.csv') -ErrorVariable refused -ErrorAction SilentlyContinue)
        $written.Count | Should -Be 1
        $refused.FullyQualifiedErrorId | Should -Be 'InvalidArgument,Path,ObjectMigration.Commands.ExportMigrationJobReportCommand'
        "$refused" | Should -Match '\{Id\}'
        (Import-Csv $written[0].FullName).JobId | Sort-Object -Unique | Should -Be "$($Migrate.Id)"
        Remove-MigrationJob -Id $twin.Id -Confirm:$false
    }

    It 'refuses to replace a file unless -Force, naming -Path and -Force' {
        $path = Join-Path $Reports 'exists.csv'
        Set-Content -Path $path -Value 'keep me'

        { Export-MigrationJobReport -Id $Migrate.Id -Path $path -ErrorAction Stop } |
            Should -Throw -ErrorId 'ReportFileExists,Path,ObjectMigration.Commands.ExportMigrationJobReportCommand' -ExpectedMessage '*-Force*-Path*'
        Get-Content $path | Should -Be 'keep me'

        Export-MigrationJobReport -Id $Migrate.Id -Path $path -Force | Out-Null
        @(Import-Csv $path).Count | Should -Be (Get-MigrationJobProgress -Id $Migrate.Id).Objects
    }

    It 'writes nothing with -WhatIf' {
        $single = Join-Path $Reports 'whatif.csv'
        $perJob = Join-Path $Reports 'whatif-{Id}.jsonl'

        $output = @($Migrate, $Verify | Export-MigrationJobReport -Path $single -WhatIf) + @($Migrate | Export-MigrationJobReport -Path $perJob -WhatIf)

        $output.Count | Should -Be 0
        Get-ChildItem $Reports -Filter 'whatif*' | Should -BeNullOrEmpty
        # Nor anything half-written.
        Get-ChildItem $Reports -Filter '*.partial' | Should -BeNullOrEmpty
    }

    It 'rejects another extension before writing, naming -Path and the formats' {
        { Export-MigrationJobReport -Id $Migrate.Id -Path (Join-Path $Reports 'report.xlsx') -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,Path,ObjectMigration.Commands.ExportMigrationJobReportCommand' -ExpectedMessage '*.csv*.jsonl*'
        Join-Path $Reports 'report.xlsx' | Should -Not -Exist
    }
}
