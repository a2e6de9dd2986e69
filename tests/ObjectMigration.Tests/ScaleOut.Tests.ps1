# Scale-out (issue 21): one job run by several worker processes that share its state store. The first worker leads the
# job (lists, settles it); the others join it and copy batches of its objects under leases. Each test runs twice: with
# the workers sharing a state folder (SQLite) on one host, and sharing a PostgreSQL store as workers on many hosts do
# (with the key that seals connector secrets given to all of them, as an operator gives it).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    . (Join-Path $PSScriptRoot 'CrashHarness.ps1')
    Import-Module (Join-Path $PSScriptRoot '../Fixtures/PostgresFixture.psm1') -Force
    # A killed worker's heartbeat and batch leases count as gone after this many seconds (default 10).
    $env:OBJECTMIGRATION_STALE_SECONDS = '2'
    # Source: s3rver; target: Ceph RGW with versioning, so an object written twice shows as a second version.
    $clients = Initialize-TestSession -TargetFixture $Fixtures.Ceph
    $script:SourceClient, $script:TargetClient = $clients.Source, $clients.Target
    # Small listing pages make many small batches, so three workers share the job and a kill lands mid-batch.
    $script:WorkerEnvironment = @{ OBJECTMIGRATION_STALE_SECONDS = '2'; OBJECTMIGRATION_LIST_PAGE_SIZE = '8' }

    function New-ScaleSource([int] $Count, [int] $Size) {
        $bucket = New-TestBucket $SourceClient
        $objects = [ordered]@{}
        $md5 = [System.Security.Cryptography.MD5]::Create()
        for ($i = 0; $i -lt $Count; $i++) {
            $key = 'part-{0:d2}/obj-{1:d4}.bin' -f ($i % 7), $i
            $content = Get-TestBytes $Size (5000 + $i)
            Write-TestObject $SourceClient $bucket $key $content
            $objects[$key] = [Convert]::ToHexString($md5.ComputeHash($content))
        }
        [pscustomobject]@{ Bucket = $bucket; Objects = $objects }
    }

    function Start-Workers([int] $Count, [hashtable] $Environment = $WorkerEnvironment) {
        $started = @(1..$Count | ForEach-Object {
                Start-ModuleProcess -Script 'Start-MigrationWorker -MaxJobs 1' -StateHome $env:OBJECTMIGRATION_HOME -ModulePath $ModulePath -Environment $Environment
            })
        $null = Wait-Condition { @(Get-MigrationWorker).Count -eq $Count } -TimeoutSeconds 60 -What "$Count workers registered"
        $started
    }

    function Wait-JobSettled([guid] $Id) {
        Wait-Condition { Get-MigrationJob -Id $Id | Where-Object State -in 'Completed', 'CompletedWithErrors', 'Failed' } -TimeoutSeconds 120 -What 'the job to settle'
    }

    function Get-ActiveRunners([guid] $Id) {
        @((Get-MigrationJobProgress -Id $Id).Workers | Where-Object Active)
    }

    function Stop-Workers($Started) {
        foreach ($worker in @(Get-MigrationWorker)) { Stop-MigrationWorker -Id $worker.Id -Timeout 30 -ErrorAction SilentlyContinue }
        foreach ($process in $Started) { $null = Stop-ModuleProcess $process }
    }

    function Assert-CopiedOnce($Source, [string] $TargetBucket) {
        $keys = @($Source.Objects.Keys)
        $digests = Get-TargetDigests $TargetClient $TargetBucket $keys
        foreach ($key in $keys) { $digests[$key] | Should -Be $Source.Objects[$key] -Because "$key is on the target intact" }
        # Exactly once: one version per key on the versioned target, nothing else there, no upload left open.
        $versions = @(Get-ObjectVersions $TargetClient $TargetBucket)
        $versions.Count | Should -Be $keys.Count -Because 'each object is written once'
        @(Get-OpenUploads $TargetClient $TargetBucket).Count | Should -Be 0
    }
}

AfterAll { Remove-Module ObjectMigration -ErrorAction SilentlyContinue }

Describe 'One job on many workers (<Store>)' -ForEach @(@{ Store = 'SQLite' }, @{ Store = 'PostgreSQL' }) {
    BeforeAll {
        if ($Store -eq 'PostgreSQL') {
            if (-not $Fixtures.Postgres) { throw 'The PostgreSQL fixture is missing from OBJECTMIGRATION_TEST_FIXTURES: build.ps1 -Task Test starts it.' }
            # Workers inherit both from this process's environment, as a service's or pod's environment gives them.
            $env:OBJECTMIGRATION_STATE = New-PostgresTestDatabase -Fixture $Fixtures.Postgres -Prefix om_scale
            $env:OBJECTMIGRATION_SECRET_KEY = [Convert]::ToBase64String([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(32))
            $null = New-CloudConnector -Name src -Endpoint $Fixtures.S3rverSource.Endpoint -Credential (New-TestCredential $Fixtures.S3rverSource)
            $null = New-CloudConnector -Name dst -Endpoint $Fixtures.Ceph.Endpoint -Credential (New-TestCredential $Fixtures.Ceph)
        }
    }
    AfterAll {
        Remove-Item Env:OBJECTMIGRATION_STATE, Env:OBJECTMIGRATION_SECRET_KEY -ErrorAction SilentlyContinue
    }

    It 'shares one job among three workers; one killed with SIGKILL mid-batch only delays its batches, which another takes over; every object once and intact, counters add up' {
        $source = New-ScaleSource -Count 96 -Size 48KB
        $target = New-VersionedBucket $TargetClient
        $workers = Start-Workers 3
        try {
            # A cap per runner keeps the job running long enough to see three runners at work and kill one mid-batch.
            $job = New-MigrationJob -Name "scale-kill-$Store" -SourceConnector src -SourceBucket $source.Bucket -TargetConnector dst -TargetBucket $target `
                -Detached -Concurrency 2 -MaxBytesPerSecond 200KB
            $victim = Wait-Condition {
                Get-ActiveRunners $job.Id | Where-Object { $_.Role -eq 'Joined' -and $_.HeldBatches -gt 0 -and $_.TransferredObjects -gt 0 } | Select-Object -First 1
            } -TimeoutSeconds 60 -What 'a joined runner that holds a batch and has recorded objects'
            @(Get-ActiveRunners $job.Id).Count | Should -Be 3 -Because 'every worker takes part in the job'
            @(Get-MigrationWorker | Where-Object Jobs -Contains "scale-kill-$Store").Count | Should -Be 3 -Because 'a worker lists the jobs it joined as well as those it leads'
            $killed = $workers | Where-Object Id -eq $victim.ProcessId
            $null = Stop-ModuleProcess $killed

            $done = Wait-JobSettled $job.Id
            $done.State | Should -Be 'Completed'
            Assert-CopiedOnce $source $target

            $progress = Get-MigrationJobProgress -Id $job.Id
            $progress.TransferredObjects | Should -Be $source.Objects.Count
            $progress.FailedObjects | Should -Be 0
            # Each runner's share is counted as the job's is, in the same write: the shares add up to the job, the
            # killed runner's included (what it recorded before it died).
            ($progress.Workers | Measure-Object TransferredObjects -Sum).Sum | Should -Be $source.Objects.Count
            ($progress.Workers | Where-Object Runner -eq $victim.Runner).TransferredObjects | Should -BeGreaterThan 0
            $log = @(Get-MigrationJobLog -Id $job.Id -Type MigrationNotice)
            @($log | Where-Object Message -like '*took over batch*').Count | Should -BeGreaterThan 0 -Because 'the killed runner held a batch'
            @($log | Where-Object Message -like '*joined the run*').Count | Should -BeGreaterOrEqual 2
        }
        finally { Stop-Workers $workers }
    }

    It 'goes on when the lead is killed: the job is Interrupted, another worker leads it from its checkpoint, every object once and intact' {
        $source = New-ScaleSource -Count 64 -Size 48KB
        $target = New-VersionedBucket $TargetClient
        $workers = Start-Workers 3
        try {
            $job = New-MigrationJob -Name "scale-lead-$Store" -SourceConnector src -SourceBucket $source.Bucket -TargetConnector dst -TargetBucket $target `
                -Detached -Concurrency 2 -MaxBytesPerSecond 200KB
            $lead = Wait-Condition {
                $runners = Get-ActiveRunners $job.Id
                if (@($runners).Count -ge 2 -and ($runners | Measure-Object TransferredObjects -Sum).Sum -gt 0) { $runners | Where-Object Role -eq 'Lead' }
            } -TimeoutSeconds 60 -What 'a lead with a joined runner beside it, objects recorded'
            $null = Stop-ModuleProcess ($workers | Where-Object Id -eq $lead.ProcessId)

            $done = Wait-JobSettled $job.Id
            $done.State | Should -Be 'Completed'
            Assert-CopiedOnce $source $target
            $progress = Get-MigrationJobProgress -Id $job.Id
            $progress.TransferredObjects | Should -Be $source.Objects.Count
            ($progress.Workers | Measure-Object TransferredObjects -Sum).Sum | Should -Be $source.Objects.Count
            # A second lead: the one that continued the job after the first was killed.
            @($progress.Workers | Where-Object Role -eq 'Lead').Count | Should -Be 2
            # The killed lead shows as gone once its heartbeat is older than this session's stale time (it never left).
            $null = Wait-Condition { -not ((Get-MigrationJobProgress -Id $job.Id).Workers | Where-Object Runner -eq $lead.Runner).Active } -TimeoutSeconds 30 -What 'the killed lead shown as gone'
            ((Get-MigrationJobProgress -Id $job.Id).Workers | Where-Object Runner -eq $lead.Runner).BytesPerSecond | Should -Be 0
        }
        finally { Stop-Workers $workers }
    }

    It 'lists the source on every worker at once; a worker killed with SIGKILL while it lists a range leaves it to another; every key recorded once' {
        # A synthetic bucket listed slowly (a pause per page, small pages) by an Inventory job, which records each key:
        # the lead starts listing, the others join, cut ranges off its listing and list them at once.
        $listing = Start-SyntheticListing -Objects 12000 -PageDelayMilliseconds 25
        $workers = Start-Workers 3 -Environment @{ OBJECTMIGRATION_STALE_SECONDS = '2'; OBJECTMIGRATION_LIST_PAGE_SIZE = '50' }
        try {
            $connector = New-SyntheticConnector $listing
            $job = New-MigrationJob -Type Inventory -Name "scale-listing-$Store" -SourceConnector $connector -SourceBucket synthetic -Detached
            $cut = Wait-Condition {
                Get-MigrationJobLog -Id $job.Id -Type MigrationNotice | Where-Object Message -like '*cut from range*' | Select-Object -First 1
            } -TimeoutSeconds 60 -What 'a worker cutting a range off the listing' -IntervalMilliseconds 20
            # The runner that cut the range lists it now: its id is host:pid@scope#n.
            $victimPid = [int]($cut.Message -replace '^[^:]+:(\d+).*$', '$1')
            $null = Stop-ModuleProcess ($workers | Where-Object Id -eq $victimPid)

            $done = Wait-JobSettled $job.Id
            $done.State | Should -Be 'Completed'
            # Every key once: the job found exactly the bucket's keys (counted as they are first saved) and recorded each; the
            # sizes are 0, 1, 2, ..., so the bytes found say no key was counted twice or left out.
            $progress = Get-MigrationJobProgress -Id $job.Id
            $progress.Objects | Should -Be 12000
            $progress.TotalBytes | Should -Be (12000L * 11999 / 2)
            $progress.SkippedObjects | Should -Be 12000 -Because 'an Inventory records each key it lists'
            $progress.PendingObjects | Should -Be 0
            $log = @(Get-MigrationJobLog -Id $job.Id -Type MigrationNotice)
            @($log | Where-Object Message -like '*continues the listing of range*where a runner left it*').Count | Should -BeGreaterThan 0 -Because 'the killed worker held a range'
        }
        finally {
            Stop-Workers $workers
            Stop-SyntheticListing $listing
        }
    }

    # Only a shared store has a shared key (the data of -ForEach is there at discovery, so the test exists only for it).
    if ($Store -eq 'PostgreSQL') {
    It 'seals connector secrets only with the key the hosts share: a session without it, or with another, saves none' {
        $shared = $env:OBJECTMIGRATION_SECRET_KEY
        $credential = New-TestCredential $Fixtures.S3rverSource
        try {
            Remove-Item Env:OBJECTMIGRATION_SECRET_KEY
            { New-CloudConnector -Name keyless -Endpoint $Fixtures.S3rverSource.Endpoint -Credential $credential } |
                Should -Throw -ExpectedMessage '*shared by hosts*OBJECTMIGRATION_SECRET_KEY*'
            $env:OBJECTMIGRATION_SECRET_KEY = [Convert]::ToBase64String([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(32))
            { New-CloudConnector -Name otherkey -Endpoint $Fixtures.S3rverSource.Endpoint -Credential $credential } |
                Should -Throw -ExpectedMessage "*connector '*' in the shared state store*cannot be read on this host*would lock the other hosts out*"
        }
        finally { $env:OBJECTMIGRATION_SECRET_KEY = $shared }
        @(Get-CloudConnector | Where-Object Name -In 'keyless', 'otherkey').Count | Should -Be 0 -Because 'nothing was saved'
        (Get-CloudConnector -Name src).Name | Should -Be 'src' -Because 'the connectors sealed with the shared key still open'
    }
    }

    It 'reaches all three workers with Suspend-, Resume- and Stop-MigrationJob within two seconds' {
        $source = New-ScaleSource -Count 64 -Size 48KB
        $target = New-TestBucket $TargetClient
        $workers = Start-Workers 3
        try {
            $job = New-MigrationJob -Name "scale-control-$Store" -SourceConnector src -SourceBucket $source.Bucket -TargetConnector dst -TargetBucket $target `
                -Detached -Concurrency 2 -MaxBytesPerSecond 100KB
            $null = Wait-Condition { (Get-ActiveRunners $job.Id).Count -eq 3 } -TimeoutSeconds 60 -What 'three runners in the job'

            # The lead settles the job only once the runners that joined it are out: Paused means nobody copies.
            # Reached: the job settled and no runner is in it any more (one that was joining as the request came leaves
            # at its next heartbeat).
            $clock = [System.Diagnostics.Stopwatch]::StartNew()
            (Suspend-MigrationJob -Id $job.Id -PassThru).State | Should -Be 'Paused'
            $null = Wait-Condition { (Get-ActiveRunners $job.Id).Count -eq 0 } -TimeoutSeconds 10 -What 'every runner out of the paused job' -IntervalMilliseconds 20
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 2 -Because 'a pause reaches every worker within two seconds' 
            (Get-MigrationJobProgress -Id $job.Id).TransferredObjects | Should -BeLessThan $source.Objects.Count

            $null = Resume-MigrationJob -Id $job.Id -Detached
            $null = Wait-Condition { (Get-ActiveRunners $job.Id).Count -eq 3 } -TimeoutSeconds 60 -What 'three runners in the resumed job'
            $clock.Restart()
            (Stop-MigrationJob -Id $job.Id -PassThru).State | Should -Be 'Cancelled'
            $null = Wait-Condition { (Get-ActiveRunners $job.Id).Count -eq 0 } -TimeoutSeconds 10 -What 'every runner out of the stopped job' -IntervalMilliseconds 20
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 2 -Because 'a stop reaches every worker within two seconds' 
            (Get-MigrationJobProgress -Id $job.Id).TransferredObjects | Should -BeLessThan $source.Objects.Count
        }
        finally { Stop-Workers $workers }
    }
}
