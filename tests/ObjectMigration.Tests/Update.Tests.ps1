BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    . (Join-Path $PSScriptRoot 'CrashHarness.ps1')   # Start-/Stop-ModuleProcess: a runner to kill
    # A killed runner reads as Interrupted after this many seconds without a heartbeat (default 10).
    $env:OBJECTMIGRATION_STALE_SECONDS = '2'
    # Ceph RGW as the bucket changed in place: it keeps storage classes (the fixture adds STANDARD_IA) and drops an
    # object's tags when it is copied onto itself, so a crash between copy and tags would lose them.
    # Connector src is Ceph, dst an s3rver: the first test runs on both.
    $clients = Initialize-TestSession -SourceFixture $Fixtures.Ceph
    $script:CephClient = $clients.Source
    $script:S3rverClient = $clients.Target
    $script:Client = $CephClient

    function Set-TestTags($Bucket, $Key, [hashtable] $Tags) {
        $request = [Amazon.S3.Model.PutObjectTaggingRequest]@{ BucketName = $Bucket; Key = $Key; Tagging = [Amazon.S3.Model.Tagging]::new() }
        $request.Tagging.TagSet = [System.Collections.Generic.List[Amazon.S3.Model.Tag]]::new()
        foreach ($name in $Tags.Keys) { $request.Tagging.TagSet.Add([Amazon.S3.Model.Tag]@{ Key = $name; Value = $Tags[$name] }) }
        $null = $Client.PutObjectTaggingAsync($request).GetAwaiter().GetResult()
    }

    function Get-TestTags($Bucket, $Key) {
        $tags = @{}
        $response = $Client.GetObjectTaggingAsync([Amazon.S3.Model.GetObjectTaggingRequest]@{ BucketName = $Bucket; Key = $Key }).GetAwaiter().GetResult()
        foreach ($tag in $response.Tagging) { if ($tag.Key) { $tags[$tag.Key] = $tag.Value } }
        $tags
    }

    function New-TaggedBucket([int] $Count, [int] $Size = 2000) {
        $bucket = New-TestBucket $Client
        $seeded = @{}
        for ($i = 0; $i -lt $Count; $i++) {
            $key = 'logs/{0:d3}.log' -f $i
            $seeded[$key] = Get-TestBytes $Size (300 + $i)
            Write-TestObject $Client $bucket $key $seeded[$key] -ContentType 'text/plain' -Metadata @{ owner = 'ops' }
            Set-TestTags $bucket $key @{ keep = 'yes'; temp = '1' }
        }
        Write-TestObject $Client $bucket 'other/x.bin' (Get-TestBytes 100 1)
        [pscustomobject]@{ Bucket = $bucket; Seeded = $seeded }
    }

    function Assert-Updated($Source) {
        foreach ($key in $Source.Seeded.Keys) {
            $head = $Client.GetObjectMetadataAsync($Source.Bucket, $key).GetAwaiter().GetResult()
            $head.StorageClass.Value | Should -Be 'STANDARD_IA'
            $head.Metadata['owner'] | Should -Be 'ops'
            $head.Headers.ContentType | Should -Be 'text/plain'
            [Convert]::ToBase64String((Read-TestObject $Client $Source.Bucket $key).Content) | Should -Be ([Convert]::ToBase64String($Source.Seeded[$key]))
            $tags = Get-TestTags $Source.Bucket $key
            ($tags.Keys | Sort-Object) -join ',' | Should -Be 'keep,project'
            $tags['project'] | Should -Be 'apollo'
        }
        $other = $Client.GetObjectMetadataAsync($Source.Bucket, 'other/x.bin').GetAwaiter().GetResult()
        $other.StorageClass.Value | Should -BeIn @($null, 'STANDARD')
    }
}

AfterAll { Remove-Module ObjectMigration -ErrorAction SilentlyContinue }

Describe 'New-MigrationJob -Type Update' {
    It 'counts with -WhatIf, then changes storage class and tags of the prefix in place, and a second run changes nothing (<Fixture>)' -ForEach @(
        @{ Fixture = 'ceph'; Connector = 'src' }, @{ Fixture = 's3rver'; Connector = 'dst' }
    ) {
        $script:Client = if ($Fixture -eq 'ceph') { $CephClient } else { $S3rverClient }
        $source = New-TaggedBucket -Count 4
        $params = @{ Type = 'Update'; SourceConnector = $Connector; SourceBucket = $source.Bucket; SourcePrefix = 'logs/'; SetStorageClass = 'STANDARD_IA'; AddTags = @{ project = 'apollo' }; RemoveTags = 'temp' }

        $plan = New-MigrationJob @params -WhatIf
        $plan.ActionName | Should -Be 'Update'
        $plan.Objects | Should -Be 4

        $job = New-MigrationJob @params -Wait
        $job.State | Should -Be 'Completed'
        $job.Name | Should -Be "$($source.Bucket)-update"
        Assert-Updated $source
        $log = @(Get-MigrationJobLog -Id $job.Id -Type ObjectUpdated)
        $log.Count | Should -Be 4
        $log[0].Message | Should -BeLike '*storage class STANDARD -> STANDARD_IA*bytes unchanged (size and ETag)*'

        $second = New-MigrationJob @params -Wait
        $second.State | Should -Be 'Completed'
        $progress = $second | Get-MigrationJobProgress
        $progress.SkippedObjects | Should -Be 4
        $progress.TransferredObjects | Should -Be 0
    }

    It 'resumes after kill -9 of the process running it, changing each object once and losing no tag' {
        $script:Client = $CephClient
        $source = New-TaggedBucket -Count 10 -Size 150KB
        # Versioned: each change of an object makes a version, so the versions count the changes the job made.
        $versioning = [Amazon.S3.Model.PutBucketVersioningRequest]@{ BucketName = $source.Bucket; VersioningConfig = [Amazon.S3.Model.S3BucketVersioningConfig]@{ Status = 'Enabled' } }
        $null = $Client.PutBucketVersioningAsync($versioning).GetAwaiter().GetResult()
        $before = @{}
        $listing = $Client.ListVersionsAsync([Amazon.S3.Model.ListVersionsRequest]@{ BucketName = $source.Bucket; Prefix = 'logs/' }).GetAwaiter().GetResult()
        foreach ($version in $listing.Versions) { $before[$version.Key] = 1 + [int]$before[$version.Key] }
        $command = "New-MigrationJob -Type Update -Name killed-update -SourceConnector src -SourceBucket $($source.Bucket) -SourcePrefix logs/ " +
            "-SetStorageClass STANDARD_IA -AddTags @{ project = 'apollo' } -RemoveTags temp -MaxBytesPerSecond 300KB -Concurrency 2 -Wait"
        $runner = Start-ModuleProcess -Script "$command" -StateHome $env:OBJECTMIGRATION_HOME -ModulePath $ModulePath
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            do {
                Start-Sleep -Milliseconds 100
                $job = Get-MigrationJob -Name killed-update
                $progress = if ($job) { $job | Get-MigrationJobProgress }
            } until (($progress -and $progress.TransferredObjects -ge 3) -or [DateTime]::UtcNow -gt $deadline)
            $progress.TransferredObjects | Should -BeLessThan 10
        } finally {
            $null = Stop-ModuleProcess $runner   # SIGKILL: no cleanup runs in the runner
        }
        $deadline = [DateTime]::UtcNow.AddSeconds(15)
        while ((Get-MigrationJob -Id $job.Id).State -ne 'Interrupted' -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
        (Get-MigrationJob -Id $job.Id).State | Should -Be 'Interrupted'

        $finished = Invoke-InNewProcess -StateHome $env:OBJECTMIGRATION_HOME -Script "(Get-MigrationJob -State Interrupted | Resume-MigrationJob -Wait).State"
        ($finished | Select-Object -Last 1) | Should -Be 'Completed'
        Assert-Updated $source
        $final = Get-MigrationJob -Id $job.Id | Get-MigrationJobProgress
        ($final.TransferredObjects + $final.SkippedObjects) | Should -Be 10
        $final.FailedObjects | Should -Be 0
        # Changed once each: one version more per key than before the job, whatever the kill interrupted.
        $after = @{}
        $listing = $Client.ListVersionsAsync([Amazon.S3.Model.ListVersionsRequest]@{ BucketName = $source.Bucket; Prefix = 'logs/' }).GetAwaiter().GetResult()
        foreach ($version in $listing.Versions) { $after[$version.Key] = 1 + [int]$after[$version.Key] }
        foreach ($key in $source.Seeded.Keys) { "$key $($after[$key])" | Should -Be "$key $($before[$key] + 1)" }
    }

    It 'refuses bad changes naming the parameter, and writes nothing' {
        $script:Client = $CephClient
        $before = @(Get-MigrationJob).Count
        $bucket = New-TestBucket $Client
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket $bucket -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,Type,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*needs something to change*'
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket $bucket -SetTags @{ a = '1' } -AddTags @{ b = '2' } -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,SetTags,ObjectMigration.Commands.NewMigrationJobCommand'
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket $bucket -SetStorageClass 'standard-ia' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,SetStorageClass,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*upper case*'
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket $bucket -SetMetadata @{ 'Content-Length' = '5' } -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,SetMetadata,ObjectMigration.Commands.NewMigrationJobCommand'
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket $bucket -TargetConnector dst -SetStorageClass STANDARD_IA -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,TargetConnector,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*in place*'
        { New-MigrationJob -SourceConnector src -SourceBucket $bucket -TargetConnector dst -TargetBucket other -AddTags @{ a = '1' } -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,AddTags,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*Update jobs only*'
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket $bucket -StorageClass STANDARD_IA -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,StorageClass,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*use -SetStorageClass*'
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket $bucket -SetStorageClass STANDARD_IA -Overwrite Never -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,Overwrite,ObjectMigration.Commands.NewMigrationJobCommand'
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket $bucket -SetMetadata @{ note = 'héllo' } -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,SetMetadata,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*ASCII*'
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket $bucket -SetMetadata @{ 'x-amz-meta-owner' = 'a'; owner = 'b' } -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,SetMetadata,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*twice*'
        # A dry run of a bucket that does not exist says so the way the real command does.
        { New-MigrationJob -Type Update -SourceConnector src -SourceBucket 'no-such-bucket-om' -SetStorageClass STANDARD_IA -WhatIf -ErrorAction Stop } |
            Should -Throw -ErrorId 'BucketNotFound,SourceBucket,ObjectMigration.Commands.NewMigrationJobCommand'
        @(Get-MigrationJob).Count | Should -Be $before
    }

    It 'fails an object whose tags would go over ten, in the dry run and the job, and changes nothing on it' {
        $script:Client = $CephClient
        $bucket = New-TestBucket $Client
        Write-TestObject $Client $bucket 'many.txt' (Get-TestBytes 100 3)
        Set-TestTags $bucket 'many.txt' @{ a = '1'; b = '2'; c = '3' }
        $params = @{ Type = 'Update'; SourceConnector = 'src'; SourceBucket = $bucket; AddTags = @{ t1 = 1; t2 = 2; t3 = 3; t4 = 4; t5 = 5; t6 = 6; t7 = 7; t8 = 8 } }
        (New-MigrationJob @params -WhatIf).ActionName | Should -Be 'Fail'
        $job = New-MigrationJob @params -Wait -ErrorAction SilentlyContinue
        $job.State | Should -Be 'CompletedWithErrors'
        (Get-MigrationJobLog -Id $job.Id -Type MigrationError).Message | Should -BeLike '*has 3 tags; with this update it would have 11*'
        @((Get-TestTags $bucket 'many.txt').Keys).Count | Should -Be 3
    }
}
