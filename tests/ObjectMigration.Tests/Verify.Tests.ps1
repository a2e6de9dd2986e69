BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $clients = Initialize-TestSession
    $script:SourceClient, $script:TargetClient = $clients.Source, $clients.Target

    # A source of four objects under v/, migrated to a fresh target; returns the target bucket.
    function New-MigratedPair {
        $script:Source = New-TestBucket $SourceClient
        for ($i = 0; $i -lt 4; $i++) { Write-TestObject $SourceClient $Source "v/$i.bin" (Get-TestBytes 3000 (700 + $i)) -ContentType 'image/png' -Metadata @{ owner = "team$i" } }
        $target = New-TestBucket $TargetClient
        $null = New-MigrationJob -SourceConnector src -SourceBucket $Source -TargetConnector dst -TargetBucket $target -Wait
        $target
    }

    function Find-Verify([string] $Target, [switch] $Deep, [switch] $CompareMetadata) {
        New-MigrationJob -Type Verify -SourceConnector src -SourceBucket $Source -TargetConnector dst -TargetBucket $Target -Deep:$Deep -CompareMetadata:$CompareMetadata `
            -Wait -ErrorAction SilentlyContinue -ErrorVariable script:said
    }

    function Get-Finding([guid] $Id, [string] $Type) { @(Get-MigrationJobLog -Id $Id -Type $Type | ForEach-Object ObjectKey | Sort-Object) }
}

AfterAll {
    Remove-Module ObjectMigration -Force -ErrorAction SilentlyContinue
}

Describe 'Verify and -FromVerify' {
    It 'finds missing, mismatched and extra keys, points to -FromVerify, and -FromVerify repairs exactly the missing and mismatched ones' {
        $target = New-MigratedPair
        $null = $TargetClient.DeleteObjectAsync($target, 'v/0.bin').GetAwaiter().GetResult()
        Write-TestObject $TargetClient $target 'v/1.bin' (Get-TestBytes 3000 9999) -ContentType 'image/png' -Metadata @{ owner = 'team1' }
        Write-TestObject $TargetClient $target 'v/extra.bin' (Get-TestBytes 10 1)

        $found = Find-Verify $target
        $found.State | Should -Be 'CompletedWithErrors'
        Get-Finding $found.Id VerifyMissing | Should -Be @('v/0.bin')
        Get-Finding $found.Id VerifyMismatch | Should -Be @('v/1.bin')
        Get-Finding $found.Id VerifyExtra | Should -Be @('v/extra.bin')
        "$said" | Should -Match 'VerifyMissing, VerifyMismatch, VerifyExtra'
        "$said" | Should -Match "New-MigrationJob -FromVerify $($found.Id)"
        $progress = Get-MigrationJobProgress -Id $found.Id
        ($progress.CheckedObjects, $progress.MatchingObjects, $progress.MissingObjects, $progress.MismatchedObjects, $progress.ExtraObjects) | Should -Be @(5, 2, 1, 1, 1)
        (Get-MigrationJobLog -Id $found.Id -Type MigrationComplete).Message | Should -Match '^2 matched, 2 missing or different .* 1 only on the target'

        $repair = New-MigrationJob -FromVerify $found.Id -Wait
        $repair.State | Should -Be 'Completed'
        $repair.Type | Should -Be 'Migrate'
        $repair.Overwrite | Should -Be 'Always'
        @($repair.Keys | Sort-Object) | Should -Be @('v/0.bin', 'v/1.bin')
        (Get-MigrationJobProgress -Id $repair.Id).TransferredObjects | Should -Be 2
        foreach ($key in 'v/0.bin', 'v/1.bin') {
            (Read-TestObject $TargetClient $target $key).Content | Should -Be (Read-TestObject $SourceClient $Source $key).Content
        }

        $again = Find-Verify $target
        Get-Finding $again.Id VerifyMissing | Should -BeNullOrEmpty
        Get-Finding $again.Id VerifyMismatch | Should -BeNullOrEmpty
        Get-Finding $again.Id VerifyExtra | Should -Be @('v/extra.bin')
        Get-TestKeys $TargetClient $target | Should -Contain 'v/extra.bin'
    }

    It 'refuses -FromVerify with what the verify defines, and with a job that is no verify, naming the parameter' {
        $target = New-MigratedPair
        $verify = Find-Verify $target
        { New-MigrationJob -FromVerify $verify.Id -Overwrite Never -ErrorAction Stop } | Should -Throw -ExpectedMessage '*-Overwrite cannot be given with -FromVerify*'
        $migrate = Get-MigrationJob | Where-Object Type -eq 'Migrate' | Select-Object -First 1
        { New-MigrationJob -FromVerify $migrate.Id -ErrorAction Stop } | Should -Throw -ExpectedMessage '*a Migrate job: give the id of a Verify job*'
        { New-MigrationJob -FromVerify $verify.Id -ErrorAction Stop } | Should -Throw -ExpectedMessage '*found nothing missing or mismatched*'
        { New-MigrationJob -SourceConnector src -SourceBucket $Source -TargetConnector dst -TargetBucket $target -Deep -ErrorAction Stop } |
            Should -Throw -ExpectedMessage '*-Deep applies to Verify jobs only*'
    }

    It 'compares content type, metadata and tags only with -CompareMetadata, and says which differ' {
        $target = New-MigratedPair
        # The same bytes with another content type and owner: the content matches.
        Write-TestObject $TargetClient $target 'v/2.bin' (Get-TestBytes 3000 702) -ContentType 'text/plain' -Metadata @{ owner = 'someone' }

        (Find-Verify $target).State | Should -Be 'Completed'
        $strict = Find-Verify $target -CompareMetadata
        $strict.State | Should -Be 'CompletedWithErrors'
        $entry = Get-MigrationJobLog -Id $strict.Id -Type VerifyMismatch
        $entry.ObjectKey | Should -Be 'v/2.bin'
        $entry.Message | Should -Match "content type: source 'image/png', target 'text/plain'"
        $entry.Message | Should -Match "metadata: owner 'team2' vs 'someone'"
    }

    It 'reads both sides with -Deep, so a clean copy matches by its bytes and other bytes are a mismatch' {
        $target = New-MigratedPair
        $deep = Find-Verify $target -Deep
        $deep.State | Should -Be 'Completed'
        (Get-MigrationJobProgress -Id $deep.Id).MatchingObjects | Should -Be 4

        Write-TestObject $TargetClient $target 'v/3.bin' (Get-TestBytes 3000 4242) -ContentType 'image/png' -Metadata @{ owner = 'team3' }
        $found = Find-Verify $target -Deep
        $found.State | Should -Be 'CompletedWithErrors'
        $entry = Get-MigrationJobLog -Id $found.Id -Type VerifyMismatch
        $entry.ObjectKey | Should -Be 'v/3.bin'
        $entry.Message | Should -Match 'content: both read'
    }
}
