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

    It 'lets an AWS connector leave the region out, and says in the table that it is found per bucket' {
        $cred = [pscredential]::new('AKTEST', (ConvertTo-SecureString 'x' -AsPlainText -Force))
        $aws = New-CloudConnector -Name aws-any -Provider AWS -Credential $cred -PassThru
        ($aws.Region, $aws.Endpoint) | Should -Be @('', 'https://s3.us-east-1.amazonaws.com')
        (Get-CloudConnector aws-any | Format-Table | Out-String -Width 120) | Should -Match '\(per bucket\)'
        (Set-CloudConnector aws-any -Region eu-north-1 -PassThru).Endpoint | Should -Be 'https://s3.eu-north-1.amazonaws.com'
        Remove-CloudConnector aws-any -Confirm:$false
    }

    It 'refuses an R2 connector without an account id, naming the parameter, and stores nothing' {
        { New-CloudConnector -Name r2bad -Provider R2 -Credential (New-TestCredential $Rgw) -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,AccountId,ObjectMigration.Commands.NewCloudConnectorCommand'
        Get-CloudConnector -Name r2bad -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'takes credentials from an AWS profile when it signs, never storing a copy of the keys' {
        $file = Join-Path $env:OBJECTMIGRATION_HOME 'aws-credentials'
        Set-Content $file "[migration]`naws_access_key_id = $($Rgw.AccessKey)`naws_secret_access_key = definitely-wrong"
        New-CloudConnector -Name from-profile -Endpoint $Rgw.Endpoint -ProfileName migration -ProfileLocation $file
        $connector = Get-CloudConnector from-profile
        $connector.CredentialSource | Should -Be 'Profile'
        $connector.ProfileName | Should -Be 'migration'
        $connector.ProfileLocation | Should -Be $file
        $connector.AccessKeyId | Should -BeNullOrEmpty
        Test-CloudConnector from-profile -Bucket $Bucket -SkipStatistics -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure[0].FullyQualifiedErrorId | Should -Be 'AuthenticationError,ObjectMigration.Commands.TestCloudConnectorCommand'
        # The connector keeps where its keys come from, not the keys: the corrected file is what it signs with now.
        Set-Content $file "[migration]`naws_access_key_id = $($Rgw.AccessKey)`naws_secret_access_key = $($Rgw.SecretKey)"
        (Test-CloudConnector from-profile -Bucket $Bucket -SkipStatistics).Name | Should -Be $Bucket
        (Get-CloudConnector from-profile -IncludeSecret).Credential | Should -BeNullOrEmpty
        $database = [System.Text.Encoding]::UTF8.GetString([System.IO.File]::ReadAllBytes((Join-Path $env:OBJECTMIGRATION_HOME 'state.db')))
        $database | Should -Not -Match ([regex]::Escape($Rgw.SecretKey))
    }

    It 'finds the profile through AWS_SHARED_CREDENTIALS_FILE when no -ProfileLocation is given' {
        $file = Join-Path $env:OBJECTMIGRATION_HOME 'env-credentials'
        Set-Content $file "[viaenv]`naws_access_key_id = $($Rgw.AccessKey)`naws_secret_access_key = $($Rgw.SecretKey)"
        $env:AWS_SHARED_CREDENTIALS_FILE = $file
        try {
            New-CloudConnector -Name via-env-file -Endpoint $Rgw.Endpoint -ProfileName viaenv
            (Test-CloudConnector via-env-file -Bucket $Bucket -SkipStatistics).Name | Should -Be $Bucket
        } finally { Remove-Item Env:AWS_SHARED_CREDENTIALS_FILE }
    }

    It 'assumes a role from a profile with the module''s own AWSSDK.SecurityToken, loaded by name into its private context' {
        # A stand-in STS on 127.0.0.1 hands out the gateway's keys as the role's temporary keys.
        $listener = [System.Net.HttpListener]::new()
        $port = Get-ClosedPort
        $listener.Prefixes.Add("http://127.0.0.1:$port/")
        $listener.Start()
        $sts = Start-ThreadJob -ArgumentList $listener, $Rgw.AccessKey, $Rgw.SecretKey -ScriptBlock {
            param($listener, $key, $secret)
            $context = $listener.GetContext()
            $body = [System.IO.StreamReader]::new($context.Request.InputStream).ReadToEnd()
            $expires = [DateTime]::UtcNow.AddHours(1).ToString('yyyy-MM-ddTHH:mm:ssZ')
            $xml = "<AssumeRoleResponse xmlns=`"https://sts.amazonaws.com/doc/2011-06-15/`"><AssumeRoleResult><Credentials><AccessKeyId>$key</AccessKeyId>" +
                "<SecretAccessKey>$secret</SecretAccessKey><SessionToken>role-session</SessionToken><Expiration>$expires</Expiration></Credentials>" +
                "<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/migrator/om</Arn><AssumedRoleId>AROAEXAMPLE:om</AssumedRoleId></AssumedRoleUser>" +
                "</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>"
            $bytes = [System.Text.Encoding]::UTF8.GetBytes($xml)
            $context.Response.ContentType = 'text/xml'
            $context.Response.OutputStream.Write($bytes, 0, $bytes.Length)
            $context.Response.Close()
            $body
        }
        $folder = Join-Path $env:OBJECTMIGRATION_HOME 'assume'
        New-Item -ItemType Directory $folder | Out-Null
        Set-Content (Join-Path $folder 'credentials') "[base]`naws_access_key_id = AKBASE`naws_secret_access_key = base-secret"
        Set-Content (Join-Path $folder 'config') "[profile migrator]`nrole_arn = arn:aws:iam::123456789012:role/migrator`nsource_profile = base`nregion = us-east-1"
        # Another AWS module imported after ours brings its own AWSSDK.SecurityToken into the default context.
        Add-Type -Path (Join-Path (Split-Path $ModulePath) 'dependencies/AWSSDK.SecurityToken.dll')
        $env:AWS_ENDPOINT_URL_STS = "http://127.0.0.1:$port"
        try {
            New-CloudConnector -Name by-role -Endpoint $Rgw.Endpoint -ProfileName migrator -ProfileLocation (Join-Path $folder 'credentials')
            (Test-CloudConnector by-role -Bucket $Bucket -SkipStatistics).Name | Should -Be $Bucket
        } finally {
            Remove-Item Env:AWS_ENDPOINT_URL_STS
            $listener.Stop()
        }
        $request = $sts | Wait-Job -Timeout 10 | Receive-Job
        $request | Should -Match 'Action=AssumeRole'
        $contexts = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'AWSSDK.SecurityToken' } |
            ForEach-Object { [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name }
        $contexts | Should -Contain 'ObjectMigration.Dependencies'
        $contexts | Should -Contain 'Default'
    }

    It 'refuses a profile that does not exist, naming -ProfileName, and stores nothing' {
        $file = Join-Path $env:OBJECTMIGRATION_HOME 'aws-credentials'
        { New-CloudConnector -Name no-profile -Endpoint $Rgw.Endpoint -ProfileName absent -ProfileLocation $file -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,ProfileName,ObjectMigration.Commands.NewCloudConnectorCommand'
        Get-CloudConnector -Name no-profile -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'refuses a connector without a credential source, naming the four parameters' {
        New-CloudConnector -Name no-source -Endpoint $Rgw.Endpoint -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure[0].FullyQualifiedErrorId | Should -Be 'InvalidArgument,Credential,ObjectMigration.Commands.NewCloudConnectorCommand'
        foreach ($parameter in '-Credential', '-ProfileName', '-UseEnvironmentCredentials', '-UseInstanceRole') {
            $failure[0].Exception.Message | Should -BeLike "*$parameter*"
        }
        Get-CloudConnector -Name no-source -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'takes one credential source only: two at once is a binding error' {
        { New-CloudConnector -Name two -Endpoint $Rgw.Endpoint -Credential (New-TestCredential $Rgw) -ProfileName migration -ErrorAction Stop } |
            Should -Throw -ErrorId 'AmbiguousParameterSet,ObjectMigration.Commands.NewCloudConnectorCommand'
        { New-CloudConnector -Name two -Endpoint $Rgw.Endpoint -UseEnvironmentCredentials -UseInstanceRole -ErrorAction Stop } |
            Should -Throw -ErrorId 'AmbiguousParameterSet,ObjectMigration.Commands.NewCloudConnectorCommand'
        { Set-CloudConnector -Name rgw -Credential (New-TestCredential $Rgw) -UseEnvironmentCredentials -ErrorAction Stop } |
            Should -Throw -ErrorId 'AmbiguousParameterSet,ObjectMigration.Commands.SetCloudConnectorCommand'
        { Test-CloudConnector -Provider S3 -Endpoint $Rgw.Endpoint -ProfileName migration -UseInstanceRole -ErrorAction Stop } |
            Should -Throw -ErrorId 'AmbiguousParameterSet,ObjectMigration.Commands.TestCloudConnectorCommand'
        Get-CloudConnector -Name two -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'reads the environment variables when it signs, not when it is created' {
        New-CloudConnector -Name from-env -Endpoint $Rgw.Endpoint -UseEnvironmentCredentials
        (Get-CloudConnector from-env).CredentialSource | Should -Be 'Environment'
        $env:AWS_ACCESS_KEY_ID = $Rgw.AccessKey; $env:AWS_SECRET_ACCESS_KEY = $Rgw.SecretKey
        try {
            (Test-CloudConnector from-env -Bucket $Bucket -SkipStatistics).Name | Should -Be $Bucket
        } finally { Remove-Item Env:AWS_ACCESS_KEY_ID, Env:AWS_SECRET_ACCESS_KEY -ErrorAction SilentlyContinue }
        Test-CloudConnector from-env -Bucket $Bucket -SkipStatistics -ErrorVariable missing -ErrorAction SilentlyContinue
        $missing[0].FullyQualifiedErrorId | Should -Be 'AuthenticationError,ObjectMigration.Commands.TestCloudConnectorCommand'
        $missing[0].Exception.Message | Should -Match 'AWS_ACCESS_KEY_ID'
    }

    It 'shows each connector''s credential source, and Set-CloudConnector switches it' {
        New-CloudConnector -Name on-role -Endpoint $Rgw.Endpoint -UseInstanceRole
        $all = Get-CloudConnector
        ($all | Where-Object Name -eq 'rgw').CredentialSource | Should -Be 'Stored'
        ($all | Where-Object Name -eq 'on-role').CredentialSource | Should -Be 'InstanceRole'
        $list = Get-CloudConnector on-role | Format-List | Out-String
        $list | Should -Match 'CredentialSource\s*:\s*InstanceRole'
        $table = Get-CloudConnector | Format-Table | Out-String -Width 80
        $table | Should -Match 'on-role .*InstanceRole'
        $table | Should -Match 'from-profile .*profile migration'
        $table | Should -Match "rgw .*$([regex]::Escape($Rgw.AccessKey.Substring($Rgw.AccessKey.Length - 4)))"
        ($table -split '\r?\n' | Measure-Object -Property Length -Maximum).Maximum | Should -BeLessOrEqual 80
        Set-CloudConnector -Name on-role -Credential (New-TestCredential $Rgw)
        (Get-CloudConnector on-role).CredentialSource | Should -Be 'Stored'
        (Get-CloudConnector on-role -IncludeSecret).Credential.UserName | Should -Be $Rgw.AccessKey
        (Test-CloudConnector on-role -Bucket $Bucket -SkipStatistics).Name | Should -Be $Bucket
        Set-CloudConnector -Name on-role -UseEnvironmentCredentials -Region us-east-1
        (Get-CloudConnector on-role).CredentialSource | Should -Be 'Environment'
        (Get-CloudConnector on-role -IncludeSecret).Credential | Should -BeNullOrEmpty
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

    It 'lists every bucket with -ListBuckets and skips the counting with -SkipStatistics' {
        $all = Test-CloudConnector -Name rgw -ListBuckets -SkipStatistics
        $all.Name | Should -Contain $Bucket
        ($all | Where-Object Name -eq $Bucket).ObjectCount | Should -BeNullOrEmpty
    }

    It 'checks an unsaved connector given by its parameters' {
        (Test-CloudConnector -Provider S3 -Endpoint $Rgw.Endpoint -Credential (New-TestCredential $Rgw) -Bucket $Bucket).ObjectCount | Should -Be 12
    }

    It 'checks an unsaved connector whose keys come from a profile or the environment' {
        $file = Join-Path $env:OBJECTMIGRATION_HOME 'unsaved-credentials'
        Set-Content $file "[unsaved]`naws_access_key_id = $($Rgw.AccessKey)`naws_secret_access_key = $($Rgw.SecretKey)"
        (Test-CloudConnector -Provider S3 -Endpoint $Rgw.Endpoint -ProfileName unsaved -ProfileLocation $file -Bucket $Bucket).ObjectCount | Should -Be 12
        $env:AWS_ACCESS_KEY_ID = $Rgw.AccessKey; $env:AWS_SECRET_ACCESS_KEY = $Rgw.SecretKey
        try {
            (Test-CloudConnector -Provider S3 -Endpoint $Rgw.Endpoint -UseEnvironmentCredentials -Bucket $Bucket).ObjectCount | Should -Be 12
        } finally { Remove-Item Env:AWS_ACCESS_KEY_ID, Env:AWS_SECRET_ACCESS_KEY }
        { Test-CloudConnector -Provider S3 -Endpoint $Rgw.Endpoint -ProfileName absent -ProfileLocation $file -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,ProfileName,ObjectMigration.Commands.TestCloudConnectorCommand'
        { Test-CloudConnector -Provider S3 -Endpoint $Rgw.Endpoint -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,Credential,ObjectMigration.Commands.TestCloudConnectorCommand'
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
