BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $env:OBJECTMIGRATION_HOME = New-TestHome
    Import-Module $ModulePath -Force
    Import-AwsSdk -ModulePath $ModulePath
    $script:Rgw = $Fixtures.Ceph
    $script:RgwClient = New-TestS3Client $Rgw
    $script:Bucket = New-TestBucket $RgwClient
    for ($i = 0; $i -lt 12; $i++) { Write-TestObject $RgwClient $Bucket "seed/$i.bin" (Get-TestBytes (100 * $i) $i) }
    $script:SeededBytes = (0..11 | ForEach-Object { 100 * $_ } | Measure-Object -Sum).Sum
    New-CloudConnector -Name rgw -Endpoint $Rgw.Endpoint -Credential (New-TestCredential $Rgw)

    function Get-ClosedPort {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop(); $port
    }
}

AfterAll { Remove-Module ObjectMigration -ErrorAction SilentlyContinue }

Describe 'New-CloudConnector' {
    It 'derives the endpoint each provider fixes' {
        $secret = ConvertTo-SecureString 'x' -AsPlainText -Force
        $cred = [pscredential]::new('AKTEST', $secret)
        (New-CloudConnector -Name aws1 -Provider AWS -Region eu-west-2 -Credential $cred -PassThru).Endpoint | Should -Be 'https://s3.eu-west-2.amazonaws.com'
        (New-CloudConnector -Name r2eu -Provider R2 -AccountId abc123 -Jurisdiction eu -Credential $cred -PassThru).Endpoint | Should -Be 'https://abc123.eu.r2.cloudflarestorage.com'
        (New-CloudConnector -Name gcs1 -Provider GCS -Credential $cred -PassThru).Endpoint | Should -Be 'https://storage.googleapis.com'
        (New-CloudConnector -Name wasabi1 -Provider Wasabi -Region ap-northeast-1 -Credential $cred -PassThru).Endpoint | Should -Be 'https://s3.ap-northeast-1.wasabisys.com'
        'aws1', 'r2eu', 'gcs1', 'wasabi1' | Remove-CloudConnector -Confirm:$false
    }

    It 'refuses an R2 connector without an account id, naming the parameter, and stores nothing' {
        { New-CloudConnector -Name r2bad -Provider R2 -Credential (New-TestCredential $Rgw) -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,AccountId,ObjectMigration.Commands.NewCloudConnectorCommand'
        Get-CloudConnector -Name r2bad -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'takes credentials from an AWS shared-credentials profile' {
        $file = Join-Path $env:OBJECTMIGRATION_HOME 'aws-credentials'
        Set-Content $file "[migration]`naws_access_key_id = $($Rgw.AccessKey)`naws_secret_access_key = $($Rgw.SecretKey)"
        $env:AWS_SHARED_CREDENTIALS_FILE = $file
        try {
            New-CloudConnector -Name from-profile -Endpoint $Rgw.Endpoint -ProfileName migration
            (Get-CloudConnector from-profile).AccessKeyId | Should -Be $Rgw.AccessKey
            (Test-CloudConnector from-profile -Bucket $Bucket -SkipStatistics).Name | Should -Be $Bucket
        } finally { Remove-Item Env:AWS_SHARED_CREDENTIALS_FILE }
    }
}

Describe 'Test-CloudConnector' {
    It 'returns one CloudBucket per bucket with counts and sizes that match what was seeded' {
        $result = Get-CloudConnector rgw | Test-CloudConnector -Bucket $Bucket
        $result.GetType().Name | Should -Be 'CloudBucket'
        $result.Connector | Should -Be 'rgw'
        $result.ObjectCount | Should -Be 12
        $result.TotalBytes | Should -Be $SeededBytes
    }

    It 'lists every bucket and skips the counting with -SkipStatistics' {
        $all = Test-CloudConnector -Name rgw -SkipStatistics
        $all.Name | Should -Contain $Bucket
        ($all | Where-Object Name -eq $Bucket).ObjectCount | Should -BeNullOrEmpty
    }

    It 'checks an unsaved connector given by its parameters' {
        (Test-CloudConnector -Provider S3 -Endpoint $Rgw.Endpoint -Credential (New-TestCredential $Rgw) -Bucket $Bucket).ObjectCount | Should -Be 12
    }

    It 'runs as a background job with -AsJob' {
        $job = Test-CloudConnector -Name rgw -Bucket $Bucket -AsJob
        $null = $job | Wait-Job -Timeout 60
        $job.State | Should -Be 'Completed'
        (Receive-Job $job).ObjectCount | Should -Be 12
    }

    It 'reports a wrong secret as AuthenticationError, naming the connector and endpoint' {
        $wrong = [pscredential]::new($Rgw.AccessKey, (ConvertTo-SecureString 'definitely-wrong' -AsPlainText -Force))
        New-CloudConnector -Name rgw-wrong -Endpoint $Rgw.Endpoint -Credential $wrong
        Test-CloudConnector -Name rgw-wrong -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure[0].FullyQualifiedErrorId | Should -Be 'AuthenticationError,ObjectMigration.Commands.TestCloudConnectorCommand'
        $failure[0].CategoryInfo.Category | Should -Be 'AuthenticationError'
        $failure[0].Exception.Message | Should -Match "rgw-wrong"
        $failure[0].Exception.Message | Should -Match ([regex]::Escape($Rgw.Endpoint))
    }

    It 'reports a closed port as ConnectionError' {
        $port = Get-ClosedPort
        Test-CloudConnector -Provider S3 -Endpoint "http://127.0.0.1:$port" -Credential (New-TestCredential $Rgw) -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure[0].FullyQualifiedErrorId | Should -Be 'ConnectionError,ObjectMigration.Commands.TestCloudConnectorCommand'
    }

    It 'reports a server that never answers as Timeout' {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start()
        try {
            Test-CloudConnector -Provider S3 -Endpoint "http://127.0.0.1:$($listener.LocalEndpoint.Port)" -Credential (New-TestCredential $Rgw) -TimeoutSec 1 -ErrorVariable failure -ErrorAction SilentlyContinue
            $failure[0].FullyQualifiedErrorId | Should -Be 'Timeout,ObjectMigration.Commands.TestCloudConnectorCommand'
        } finally { $listener.Stop() }
    }
}

Describe 'Secrets' {
    It 'never appear in any of the six streams, in errors or in the database' {
        $secretText = 'sup3r-s3cret-' + [guid]::NewGuid().ToString('n')
        $cred = [pscredential]::new('AKSECRETTEST', (ConvertTo-SecureString $secretText -AsPlainText -Force))
        $all = & {
            New-CloudConnector -Name leaky -Endpoint $Rgw.Endpoint -Credential $cred -PassThru -Verbose -Debug
            Get-CloudConnector -Name leaky -Verbose -Debug | Format-List * | Out-String
            Test-CloudConnector -Name leaky -Verbose -Debug -ErrorAction Continue
            Set-CloudConnector -Name leaky -Region us-east-1 -Verbose -Debug -PassThru | Format-List * | Out-String
            Write-Information 'marker' -InformationAction Continue
        } *>&1 | Out-String
        $all | Should -Match 'leaky'
        $all | Should -Not -Match ([regex]::Escape($secretText))
        ($Error | Out-String) | Should -Not -Match ([regex]::Escape($secretText))
        $database = [System.Text.Encoding]::UTF8.GetString([System.IO.File]::ReadAllBytes((Join-Path $env:OBJECTMIGRATION_HOME 'state.db')))
        $database | Should -Not -Match ([regex]::Escape($secretText))
        $database | Should -Not -Match 'AKSECRETTEST'
        (Get-CloudConnector leaky -IncludeSecret).Credential.GetNetworkCredential().Password | Should -Be $secretText
    }
}

Describe 'Set-CloudConnector and Remove-CloudConnector' {
    BeforeAll {
        New-CloudConnector -Name src-s3rver -Endpoint $Fixtures.S3rverSource.Endpoint -Credential (New-TestCredential $Fixtures.S3rverSource)
        $script:SourceClient = New-TestS3Client $Fixtures.S3rverSource
        $script:SourceBucket = New-TestBucket $SourceClient
        for ($i = 0; $i -lt 5; $i++) { Write-TestObject $SourceClient $SourceBucket "r/$i" (Get-TestBytes 10 $i) }
    }

    It 'renames a connector and its jobs follow the new name' {
        $job = New-MigrationJob -SourceConnector src-s3rver -SourceBucket $SourceBucket -TargetConnector rgw -TargetBucket (New-TestBucket $RgwClient) -Wait
        Set-CloudConnector -Name src-s3rver -NewName src-renamed
        (Get-MigrationJob -Id $job.Id).SourceConnector | Should -Be 'src-renamed'
        (Get-CloudConnector -Name src-renamed).Endpoint | Should -Be $Fixtures.S3rverSource.Endpoint
        Set-CloudConnector -Name src-renamed -NewName src-s3rver
    }

    It 'adds the unsaved-source job without listing its connector' {
        $before = @(Get-CloudConnector).Count
        $job = New-MigrationJob -SourceEndpoint $Fixtures.S3rverSource.Endpoint -SourceRegion us-east-1 -SourceCredential (New-TestCredential $Fixtures.S3rverSource) `
            -SourceBucket $SourceBucket -SourcePrefix r/ -TargetConnector rgw -TargetBucket (New-TestBucket $RgwClient) -Wait
        $job.State | Should -Be 'Completed'
        $job.SourceConnector | Should -Be $Fixtures.S3rverSource.Endpoint
        ($job | Get-MigrationJobProgress).TransferredObjects | Should -Be 5
        @(Get-CloudConnector).Count | Should -Be $before
    }

    It 'refuses to remove a connector that an unfinished job uses, unless -Force' {
        New-CloudConnector -Name holder -Endpoint $Fixtures.S3rverSource.Endpoint -Credential (New-TestCredential $Fixtures.S3rverSource)
        Write-TestObject $SourceClient $SourceBucket 'slow/big.bin' (Get-TestBytes 2MB 1)
        $job = New-MigrationJob -SourceConnector holder -SourceBucket $SourceBucket -SourcePrefix slow/ -TargetConnector rgw -TargetBucket (New-TestBucket $RgwClient) -MaxBytesPerSecond 256KB
        $job | Suspend-MigrationJob
        (Get-MigrationJob -Id $job.Id).State | Should -Be 'Paused'
        { Remove-CloudConnector -Name holder -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidJobState,ObjectMigration.Commands.RemoveCloudConnectorCommand'
        Get-CloudConnector -Name holder | Should -Not -BeNullOrEmpty
        Remove-CloudConnector -Name holder -Force -Confirm:$false
        Get-CloudConnector -Name holder -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}
