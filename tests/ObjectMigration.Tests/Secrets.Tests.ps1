BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $env:OBJECTMIGRATION_HOME = New-TestHome
    Import-Module $ModulePath -Force
    Import-AwsSdk -ModulePath $ModulePath

    function New-Secret([string] $Label) { "OMSEC-$Label-" + [guid]::NewGuid().ToString('n') }
    function New-Cred([string] $UserName, [string] $Secret) { [pscredential]::new($UserName, (ConvertTo-SecureString $Secret -AsPlainText -Force)) }
}

AfterAll { Remove-Module ObjectMigration -ErrorAction SilentlyContinue }

Describe 'Found in review' {
    It 'refuses a password in -Endpoint or -Proxy without repeating it, pointing to -Credential or -ProxyCredential, and stores nothing' {
        $secret = New-Secret url
        $cred = New-Cred AKURL (New-Secret key)
        New-CloudConnector -Name url-endpoint -Endpoint "https://AKURL:$secret@s3.example.com" -Credential $cred -ErrorVariable endpointError -ErrorAction SilentlyContinue
        $endpointError[0].FullyQualifiedErrorId | Should -Be 'InvalidArgument,Endpoint,ObjectMigration.Commands.NewCloudConnectorCommand'
        $endpointError[0].Exception.Message | Should -BeLike '*-Credential*'
        New-CloudConnector -Name url-proxy -Endpoint https://s3.example.com -Proxy "http://proxyuser:$secret@proxy.example.com:3128" -Credential $cred -ErrorVariable proxyError -ErrorAction SilentlyContinue
        $proxyError[0].FullyQualifiedErrorId | Should -Be 'InvalidArgument,Proxy,ObjectMigration.Commands.NewCloudConnectorCommand'
        $proxyError[0].Exception.Message | Should -BeLike '*-ProxyCredential*'
        Get-CloudConnector -Name url-* | Should -BeNullOrEmpty

        New-CloudConnector -Name url-set -Endpoint https://s3.example.com -Credential $cred
        Set-CloudConnector url-set -Proxy "http://proxyuser:$secret@proxy.example.com" -ErrorVariable setError -ErrorAction SilentlyContinue
        $setError[0].FullyQualifiedErrorId | Should -Be 'InvalidArgument,Proxy,ObjectMigration.Commands.SetCloudConnectorCommand'
        (Get-CloudConnector url-set).Proxy | Should -BeNullOrEmpty
        ($endpointError + $proxyError + $setError | Out-String) | Should -Not -BeLike "*$secret*"
        Remove-CloudConnector url-set -Confirm:$false
    }

    It 'keeps -ProxyCredential sealed and shows only its user name; removing the proxy removes it' {
        $secret = New-Secret proxy
        $connector = New-CloudConnector -Name proxied -Endpoint https://s3.example.com -Credential (New-Cred AKPROXIED (New-Secret key)) `
            -Proxy http://127.0.0.1:3128 -ProxyCredential (New-Cred proxyuser $secret) -PassThru
        $connector.ProxyUserName | Should -Be 'proxyuser'
        $shown = Get-CloudConnector proxied -IncludeSecret
        $shown.ProxyUserName | Should -Be 'proxyuser'
        ($shown | Format-List * | Out-String) + ($shown | ConvertTo-Json -Depth 4 -WarningAction SilentlyContinue) | Should -Not -BeLike "*$secret*"
        (Set-CloudConnector proxied -ProxyCredential ([pscredential]::Empty) -PassThru).ProxyUserName | Should -BeNullOrEmpty
        (Set-CloudConnector proxied -ProxyCredential (New-Cred other $secret) -PassThru).ProxyUserName | Should -Be 'other'
        (Set-CloudConnector proxied -Proxy '' -PassThru).ProxyUserName | Should -BeNullOrEmpty
        Set-CloudConnector proxied -ProxyCredential (New-Cred other $secret) -ErrorVariable noProxy -ErrorAction SilentlyContinue
        $noProxy[0].FullyQualifiedErrorId | Should -Be 'InvalidArgument,ProxyCredential,ObjectMigration.Commands.SetCloudConnectorCommand'
        Remove-CloudConnector proxied -Confirm:$false
    }

    It 'warns once per connector of plain http:// off this machine, never of loopback or https' {
        $cred = New-Cred AKHTTP (New-Secret key)
        New-CloudConnector -Name plain -Endpoint http://s3.example.com:9000 -Credential $cred -WarningVariable created -WarningAction SilentlyContinue
        @($created).Count | Should -Be 1
        "$created" | Should -BeLike '*plain http://*s3.example.com:9000*altered in transit*'
        Set-CloudConnector plain -Region eu-west-1 -WarningVariable unchanged -WarningAction SilentlyContinue
        @($unchanged).Count | Should -Be 0
        Set-CloudConnector plain -Endpoint http://other.example.com -WarningVariable moved -WarningAction SilentlyContinue
        @($moved).Count | Should -Be 1
        New-CloudConnector -Name loopback -Endpoint http://127.0.0.1:9000 -Credential $cred -WarningVariable quiet -WarningAction SilentlyContinue
        New-CloudConnector -Name tls -Endpoint https://s3.example.com -Credential $cred -WarningVariable quietToo -WarningAction SilentlyContinue
        @($quiet).Count + @($quietToo).Count | Should -Be 0
        'plain', 'loopback', 'tls' | Remove-CloudConnector -Confirm:$false
    }

    It 'shows Test-CloudConnector -AsJob in Get-Job by cmdlet and connector, never by the line that started it' {
        # Typed inline, as at a prompt: the secret is in the invocation line itself.
        $secret = New-Secret inline
        $job = Invoke-Expression "Test-CloudConnector -Provider S3 -Endpoint $($Fixtures.Ceph.Endpoint) -Credential ([pscredential]::new('$($Fixtures.Ceph.AccessKey)', (ConvertTo-SecureString '$secret' -AsPlainText -Force))) -AsJob"
        $null = Wait-Job $job -Timeout 60
        (Get-Job -Id $job.Id).Command | Should -Be "Test-CloudConnector $($Fixtures.Ceph.Endpoint)"
        $received = Receive-Job $job -Keep -ErrorAction SilentlyContinue -ErrorVariable jobErrors
        $jobErrors[0].FullyQualifiedErrorId | Should -BeLike 'AuthenticationError*'
        (Get-Job -Id $job.Id | Format-List * -Force | Out-String) + ($received + $jobErrors | Out-String) | Should -Not -BeLike "*$secret*"
        Remove-Job $job
    }

    It 'refuses a secret.key that others can read, naming the file and chmod 600' -Skip:$IsWindows {
        $stateHome = New-TestHome
        $null = Invoke-InNewProcess -StateHome $stateHome -Script "New-CloudConnector -Name keyed -Endpoint http://127.0.0.1:9 -Credential ([pscredential]::new('AKKEY', (ConvertTo-SecureString 'k' -AsPlainText -Force)))"
        $key = Join-Path $stateHome 'secret.key'
        [System.IO.File]::GetUnixFileMode($key) | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
        chmod 0644 $key
        $saved = $env:OBJECTMIGRATION_HOME
        try {
            $env:OBJECTMIGRATION_HOME = $stateHome
            { Get-CloudConnector -ErrorAction Stop } | Should -Throw -ErrorId 'StateNotPrivate,ObjectMigration.Commands.GetCloudConnectorCommand' -ExpectedMessage "*'$key'*chmod 600 '$key'*"
        } finally { $env:OBJECTMIGRATION_HOME = $saved }
    }
}

Describe 'A full session' {
    It 'leaves none of its secret keys in any output stream, exported file, worker log or file of the state folder' {
        # A state folder of its own; the exports elsewhere, so each place is counted once.
        $stateHome = New-TestHome
        $exports = New-TestHome
        $env:OBJECTMIGRATION_HOME = $stateHome
        # As an older version left them: a worker folder, log and lock file that others can read (and the folder itself).
        if (-not $IsWindows) {
            $workers = New-Item -ItemType Directory (Join-Path $stateHome 'workers')
            Set-Content (Join-Path $workers 'worker-20250101-000000-old.log') 'an older worker'
            Set-Content (Join-Path $stateHome 'worker-start.lock') ''
            chmod 0755 $stateHome $workers
            chmod 0644 (Join-Path $workers 'worker-20250101-000000-old.log') (Join-Path $stateHome 'worker-start.lock')
        }
        # s3rver takes any secret; Ceph only its own. Each is distinct, so a hit says which leaked.
        $secrets = [ordered]@{
            Source = New-Secret source; Target = New-Secret target; Ceph = $Fixtures.Ceph.SecretKey; Wrong = New-Secret wrong
            Inline = New-Secret inline; Unsaved = New-Secret unsaved; Proxy = New-Secret proxy; DetachedTarget = New-Secret detached
        }
        $outputs = [System.Collections.Generic.List[object]]::new()
        # Everything a command writes, on every stream, as a person or a log would see it: default views, every property, JSON.
        function Invoke-Captured([string] $Label, [scriptblock] $Command) {
            # Failures are part of the session: written, captured, searched; never a reason to stop here.
            $ErrorActionPreference = 'Continue'
            $items = @(& $Command *>&1)
            $text = foreach ($item in $items) {
                $item | Out-String -Width 400
                if ($item -is [System.Management.Automation.ErrorRecord]) {
                    $item | Format-List * -Force | Out-String -Width 400
                    for ($e = $item.Exception; $e; $e = $e.InnerException) { $e | Format-List * -Force | Out-String -Width 400 }
                } elseif ($item -isnot [string]) {
                    $item | Format-List * -Force | Out-String -Width 400
                    try { $item | ConvertTo-Json -Depth 3 -WarningAction SilentlyContinue } catch { "(not JSON: $($_.Exception.Message))" }
                }
            }
            $outputs.Add([pscustomobject]@{ Label = $Label; Text = $text -join "`n" })
            $items | Where-Object { $_ -isnot [System.Management.Automation.ErrorRecord] -and $_ -isnot [System.Management.Automation.InformationalRecord] -and $_ -isnot [System.Management.Automation.InformationRecord] }
        }
        # -Debug alone would make each error and warning a prompt ("Continue with this operation?"), as in PowerShell 5.
        $all = @{ Verbose = $true; Debug = $true; ErrorAction = 'Continue'; WarningAction = 'Continue' }

        $sourceClient = New-TestS3Client $Fixtures.S3rverSource
        $targetClient = New-TestS3Client $Fixtures.S3rverTarget
        $cephClient = New-TestS3Client $Fixtures.Ceph
        $sourceBucket = New-TestBucket $sourceClient
        for ($i = 0; $i -lt 6; $i++) { Write-TestObject $sourceClient $sourceBucket "data/$i.bin" (Get-TestBytes (1KB * ($i + 1)) $i) -Metadata @{ origin = "seed $i" } }
        $targetBucket = New-TestBucket $targetClient
        $cephBucket = New-TestBucket $cephClient
        Write-TestObject $cephClient $cephBucket 'ceph/only.bin' (Get-TestBytes 3KB 40)

        # Connectors, each with its own secret; one through a proxy with a credential.
        $null = Invoke-Captured 'New-CloudConnector' {
            New-CloudConnector -Name src -Endpoint $Fixtures.S3rverSource.Endpoint -Credential (New-Cred S3RVER $secrets.Source) @all
            New-CloudConnector -Name dst -Endpoint $Fixtures.S3rverTarget.Endpoint -Credential (New-Cred S3RVER $secrets.Target) -PassThru @all
            New-CloudConnector -Name ceph -Endpoint $Fixtures.Ceph.Endpoint -Credential (New-Cred $Fixtures.Ceph.AccessKey $secrets.Ceph) -PassThru @all
            New-CloudConnector -Name ceph-wrong -Endpoint $Fixtures.Ceph.Endpoint -Credential (New-Cred $Fixtures.Ceph.AccessKey $secrets.Wrong) @all
            New-CloudConnector -Name proxied -Endpoint https://s3.example.com -Proxy http://proxy.example.com:3128 -ProxyCredential (New-Cred proxyuser $secrets.Proxy) `
                -Credential (New-Cred AKPROXIED $secrets.Source) -PassThru @all
            New-CloudConnector -Name dst-detached -Endpoint $Fixtures.S3rverTarget.Endpoint -Credential (New-Cred S3RVER $secrets.DetachedTarget) @all
            Set-CloudConnector -Name proxied -Region eu-west-1 -PassThru @all
        }

        # Tests, saved and unsaved, good and bad, and as jobs.
        $null = Invoke-Captured 'Test-CloudConnector' {
            Test-CloudConnector src @all
            Test-CloudConnector dst -ListBuckets @all
            Test-CloudConnector ceph -Bucket $cephBucket @all
            Test-CloudConnector ceph-wrong @all
            Test-CloudConnector -Provider S3 -Endpoint $Fixtures.Ceph.Endpoint -Credential (New-Cred $Fixtures.Ceph.AccessKey $secrets.Unsaved) @all
            Test-CloudConnector -Provider S3 -Endpoint $Fixtures.Ceph.Endpoint -Credential (New-Cred $Fixtures.Ceph.AccessKey $secrets.Ceph) -Quiet @all
        }
        $testJobs = @(
            Test-CloudConnector ceph -AsJob
            Test-CloudConnector ceph-wrong -AsJob
            Test-CloudConnector -Provider S3 -Endpoint $Fixtures.Ceph.Endpoint -Credential (New-Cred $Fixtures.Ceph.AccessKey $secrets.Unsaved) -AsJob
        )
        $null = Wait-Job $testJobs -Timeout 60

        # Migrations: a good one, one from Ceph, one from a source given inline (then removed), two that fail on purpose.
        $good = Invoke-Captured 'New-MigrationJob good' { New-MigrationJob -Name good -SourceConnector src -SourceBucket $sourceBucket -TargetConnector dst -TargetBucket $targetBucket -Wait @all }
        $good.State | Should -Be 'Completed'
        $fromCeph = Invoke-Captured 'New-MigrationJob from-ceph' { New-MigrationJob -Name from-ceph -SourceConnector ceph -SourceBucket $cephBucket -TargetConnector dst -TargetBucket $targetBucket -TargetPrefix 'ceph/' -Wait @all }
        $fromCeph.State | Should -Be 'Completed'
        $inline = Invoke-Captured 'New-MigrationJob inline' {
            New-MigrationJob -Name inline -SourceEndpoint $Fixtures.S3rverSource.Endpoint -SourceCredential (New-Cred S3RVER $secrets.Inline) -SourceBucket $sourceBucket `
                -TargetConnector dst -TargetBucket $targetBucket -TargetPrefix 'inline/' -Wait @all
        }
        $inline.State | Should -Be 'Completed'
        $wrongKey = Invoke-Captured 'New-MigrationJob wrong-key' { New-MigrationJob -Name wrong-key -SourceConnector ceph-wrong -SourceBucket $cephBucket -TargetConnector dst -TargetBucket $targetBucket -Force -Wait @all }
        $wrongKey.State | Should -Be 'Failed'
        $missing = Invoke-Captured 'New-MigrationJob missing-bucket' { New-MigrationJob -Name missing-bucket -SourceConnector ceph -SourceBucket 'om-missing-bucket' -TargetConnector dst -TargetBucket $targetBucket -Force -Wait @all }
        $missing.State | Should -Be 'Failed'
        $null = Invoke-Captured 'New-MigrationJob refused' { New-MigrationJob -Name refused -SourceConnector ceph-wrong -SourceBucket $cephBucket -TargetConnector dst -TargetBucket $targetBucket @all }
        $inventory = Invoke-Captured 'New-MigrationJob inventory' { New-MigrationJob -Name inventory -Type Inventory -SourceConnector ceph -SourceBucket $cephBucket -Wait @all }

        # Detached: a worker runs one job that works and one that fails, so its log holds both.
        $detached = Invoke-Captured 'New-MigrationJob -Detached' {
            New-MigrationJob -Name detached -SourceConnector src -SourceBucket $sourceBucket -TargetConnector dst-detached -TargetBucket $targetBucket -TargetPrefix 'detached/' -Detached @all
            New-MigrationJob -Name detached-wrong -SourceConnector ceph-wrong -SourceBucket $cephBucket -TargetConnector dst-detached -TargetBucket $targetBucket -Force -Detached @all
        }
        $settled = Invoke-Captured 'Wait-MigrationJob' { $detached | Wait-MigrationJob -Timeout 120 @all }
        @($settled.State | Sort-Object) | Should -Be @('Completed', 'Failed')

        # Reports, every Get-*, the PowerShell jobs.
        foreach ($job in Get-MigrationJob) {
            $null = Invoke-Captured "Export $($job.Name)" {
                Export-MigrationJobReport -Id $job.Id -Path (Join-Path $exports "$($job.Name).csv") @all
                Export-MigrationJobReport -Id $job.Id -Path (Join-Path $exports "$($job.Name).jsonl") @all
            }
        }
        $null = Invoke-Captured 'Get-*' {
            Get-CloudConnector @all
            Get-CloudConnector -IncludeSecret @all
            Get-MigrationJob @all
            Get-MigrationJob | Get-MigrationJobProgress @all
            Get-MigrationJob | Get-MigrationJobLog @all
            Get-MigrationJobReport -Id $inventory.Id @all
            Get-MigrationWorker @all
            Get-Job | Select-Object *
            Get-Job | Receive-Job -Keep
        }
        $null = Invoke-Captured 'Remove' {
            Remove-MigrationJob -Id $inline.Id -Confirm:$false @all
            Get-MigrationWorker | ForEach-Object { Stop-MigrationWorker -Id $_.Id -Timeout 30 @all }
        }
        $null = Invoke-Captured '$Error' { $Error | ForEach-Object { $_ } }
        Get-Job | Remove-Job -Force

        # Search: every captured text, every exported file, the worker logs and every file under the state folder, as
        # UTF-8 and UTF-16 (both byte orders).
        $workerLogs = @(Get-ChildItem (Join-Path $stateHome 'workers') -Filter '*.log' -File)
        $workerLogs.Count | Should -BeGreaterThan 0
        $places = [System.Collections.Generic.List[object]]::new()
        # Bytes as Latin-1 text (one character per byte), so a byte search is an ordinal string search.
        $latin1 = [System.Text.Encoding]::Latin1
        foreach ($output in $outputs) { $places.Add([pscustomobject]@{ Place = "output of $($output.Label)"; Bytes = $latin1.GetString([System.Text.Encoding]::UTF8.GetBytes($output.Text)) }) }
        $files = @(Get-ChildItem $exports, $stateHome -Recurse -File -Force)
        foreach ($file in $files) {
            # Opened as SQLite and a worker may still hold them.
            $stream = [System.IO.FileStream]::new($file.FullName, 'Open', 'Read', 'ReadWrite, Delete')
            try {
                $bytes = [byte[]]::new($stream.Length); $read = 0
                while ($read -lt $bytes.Length -and ($n = $stream.Read($bytes, $read, $bytes.Length - $read)) -gt 0) { $read += $n }
            } finally { $stream.Dispose() }
            $places.Add([pscustomobject]@{ Place = $file.FullName; Bytes = $latin1.GetString($bytes) })
        }
        $encodings = [System.Text.Encoding]::UTF8, [System.Text.Encoding]::Unicode, [System.Text.Encoding]::BigEndianUnicode
        $hits = foreach ($place in $places) {
            foreach ($name in $secrets.Keys) {
                foreach ($encoding in $encodings) {
                    if ($place.Bytes.IndexOf($latin1.GetString($encoding.GetBytes($secrets[$name])), [System.StringComparison]::Ordinal) -ge 0) {
                        "$name ($($encoding.WebName)) in $($place.Place)"
                    }
                }
            }
        }
        Write-Host ("Secrets search: {0} secrets x {1} encodings in {2} places ({3} output captures, {4} files of which {5} worker logs, {6} exports); {7} hit(s)" -f
            $secrets.Count, $encodings.Count, $places.Count, $outputs.Count, $files.Count, $workerLogs.Count, @(Get-ChildItem $exports -File).Count, @($hits).Count)
        # Everything the session left in the state folder is its user's alone.
        if (-not $IsWindows) {
            $open = @(Get-ChildItem $stateHome -Recurse -Force) + (Get-Item $stateHome) | Where-Object {
                $_.UnixFileMode -ne $(if ($_.PSIsContainer) { [System.IO.UnixFileMode]'UserRead, UserWrite, UserExecute' } else { [System.IO.UnixFileMode]'UserRead, UserWrite' })
            } | ForEach-Object { "$($_.FullName) $($_.UnixFileMode)" }
            $open | Should -BeNullOrEmpty
        }
        # Sanity: the search finds what is there (the access key ids are printed on purpose).
        ($places | Where-Object { $_.Bytes.Contains($Fixtures.Ceph.AccessKey) }) | Should -Not -BeNullOrEmpty
        @($hits) | Should -BeNullOrEmpty
    }
}
