BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
}

AfterAll {
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
}

Describe 'The built module' {
    It 'loads its engine in a private load context even when another AWSSDK.Core is already loaded, and still migrates' {
        $stateHome = New-TestHome
        $source = $Fixtures.S3rverSource; $target = $Fixtures.S3rverTarget
        # This child process loads the module's AWSSDK copy into the default context first (as another module would),
        # then imports ObjectMigration and runs a migration.
        $script = @"
Remove-Module ObjectMigration
Import-Module '$(Join-Path $PSScriptRoot '../Fixtures/S3TestData.psm1')'
Import-AwsSdk -ModulePath '$ModulePath'
`$client = New-TestS3Client ([pscustomobject]@{ Endpoint = '$($source.Endpoint)'; AccessKey = '$($source.AccessKey)'; SecretKey = '$($source.SecretKey)' })
`$bucket = New-TestBucket `$client
Write-TestObject `$client `$bucket 'a.txt' ([byte[]](1,2,3)) -ContentType 'text/plain'
Import-Module '$ModulePath'
`$cred = [pscredential]::new('S3RVER', (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force))
`$null = New-CloudConnector -Name s -Endpoint '$($source.Endpoint)' -Credential `$cred
`$null = New-CloudConnector -Name t -Endpoint '$($target.Endpoint)' -Credential `$cred
`$targetClient = New-TestS3Client ([pscustomobject]@{ Endpoint = '$($target.Endpoint)'; AccessKey = 'S3RVER'; SecretKey = 'S3RVER' })
`$targetBucket = New-TestBucket `$targetClient
`$job = New-MigrationJob -SourceConnector s -SourceBucket `$bucket -TargetConnector t -TargetBucket `$targetBucket -Wait
`$defaultCore = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'AWSSDK.Core' } |
    ForEach-Object { [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$_).Name }
"`$(`$job.State);`$((`$defaultCore | Sort-Object -Unique) -join ',')"
"@
        $output = Invoke-InNewProcess -Script $script -StateHome $stateHome
        $state, $contexts = ($output | Select-Object -Last 1) -split ';'
        $state | Should -Be 'Completed'
        $contexts -split ',' | Should -Contain 'Default'
        $contexts -split ',' | Should -Contain 'ObjectMigration.Dependencies'
    }

    It 'keeps its cmdlets when imported again with -Force (after an update), and after Remove-Module' {
        $output = Invoke-InNewProcess -StateHome (New-TestHome) -Script @"
`$first = (Import-Module '$ModulePath' -Force -PassThru).ExportedCmdlets.Count
`$second = (Import-Module '$ModulePath' -Force -PassThru).ExportedCmdlets.Count
Remove-Module ObjectMigration
`$third = (Import-Module '$ModulePath' -PassThru).ExportedCmdlets.Count
"`$first;`$second;`$third;`$([bool](Get-Command New-MigrationJob -ErrorAction SilentlyContinue))"
"@
        $counts = ($output | Select-Object -Last 1) -split ';'
        $expected = (Import-PowerShellDataFile $ModulePath).CmdletsToExport.Count
        $counts | Should -Be @("$expected", "$expected", "$expected", 'True')
    }

    It 'exports exactly the cmdlets its manifest lists' {
        $manifest = Import-PowerShellDataFile $ModulePath
        $module = Import-Module $ModulePath -PassThru -Force
        ($module.ExportedCmdlets.Keys | Sort-Object) | Should -Be ($manifest.CmdletsToExport | Sort-Object)
        $manifest.CompatiblePSEditions | Should -Be @('Core')
        $manifest.PowerShellVersion | Should -Be '7.4'
    }
}
