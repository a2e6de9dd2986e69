BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $clients = Initialize-TestSession
    $script:SourceClient = $clients.Source
    $script:Bucket = New-TestBucket $SourceClient
    $script:Seeded = @{ 'docs/a.pdf' = 1200; 'docs/b.pdf' = 800; 'img/2024/c.jpg' = 5000; 'readme.txt' = 42 }
    foreach ($key in $Seeded.Keys) { Write-TestObject $SourceClient $Bucket $key (Get-TestBytes $Seeded[$key] 9) }
}

AfterAll { Remove-Module ObjectMigration -ErrorAction SilentlyContinue }

Describe 'Inventory and Get-MigrationJobReport' {
    It 'inventories a bucket with no target and reports it per prefix and storage class, as objects for the pipeline' {
        $job = New-MigrationJob -Type Inventory -SourceConnector src -SourceBucket $Bucket -Wait
        $job.State | Should -Be 'Completed'
        $job.Name | Should -Be "$Bucket-inventory"
        $job.Target | Should -Be ''

        $rows = Get-MigrationJobReport -Id $job.Id
        $total = $rows | Where-Object Group -eq Total
        $total.Objects | Should -Be 4
        $total.Bytes | Should -Be (($Seeded.Values | Measure-Object -Sum).Sum)
        $total.LargestKey | Should -Be 'img/2024/c.jpg'
        $prefixes = @{}; $rows | Where-Object Group -eq Prefix | ForEach-Object { $prefixes[$_.Name] = $_.Objects }
        $prefixes[''] | Should -Be 1
        $prefixes['docs/'] | Should -Be 2
        $prefixes['img/'] | Should -Be 1
        ($rows | Where-Object Group -eq StorageClass | Measure-Object -Property Objects -Sum).Sum | Should -Be 4

        @(Get-MigrationJobReport -Id $job.Id -Depth 0 | Where-Object Group -eq Prefix).Count | Should -Be 0
        (Get-MigrationJobReport -Id $job.Id -Depth 2 | Where-Object Group -eq Prefix).Name | Should -Contain 'img/2024/'
        ($rows | ConvertTo-Json | ConvertFrom-Json)[0].GroupName | Should -Be 'Total'
        $csv = Join-Path $env:OBJECTMIGRATION_HOME 'inventory.csv'
        $rows | Export-Csv $csv
        @(Import-Csv $csv).Count | Should -Be $rows.Count
        foreach ($width in 80, 120) {
            $text = $rows | Format-Table | Out-String -Width $width
            $text | Should -Match 'Group\s+Objects\s+Size\s+Largest\s+Newest\s+Name'
            $text | Should -Match '4\.9 KiB'
            foreach ($line in $text -split "`r?`n") { $line.TrimEnd().Length | Should -BeLessOrEqual $width }
        }
    }

    It 'refuses a target for an inventory, and a migration without one, naming the parameter and writing nothing' {
        $before = @(Get-MigrationJob).Count
        { New-MigrationJob -Type Inventory -SourceConnector src -SourceBucket $Bucket -TargetConnector dst -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,TargetConnector,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*reads the source only*'
        { New-MigrationJob -SourceConnector src -SourceBucket $Bucket -TargetBucket somewhere -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidArgument,TargetConnector,ObjectMigration.Commands.NewMigrationJobCommand' -ExpectedMessage '*-TargetConnector is required*'
        @(Get-MigrationJob).Count | Should -Be $before
    }
}
