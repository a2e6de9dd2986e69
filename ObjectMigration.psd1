@{
    RootModule           = 'ObjectMigration.psm1'
    # Stamped by build.ps1 from Directory.Build.props, the one place the version is defined.
    ModuleVersion        = '0.0.0'
    GUID                 = '5b0f7c1e-3a57-4d52-9a8e-0b9f3c6d2e41'
    Author               = 'ObjectMigration contributors'
    Copyright            = '(c) ObjectMigration contributors. MIT License.'
    Description          = 'Moves buckets between S3-compatible object stores as managed, resumable migration jobs.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('ObjectMigration.Format.ps1xml')
    CmdletsToExport      = @(
        'New-CloudConnector', 'Get-CloudConnector', 'Set-CloudConnector', 'Remove-CloudConnector', 'Test-CloudConnector',
        'New-MigrationJob', 'Get-MigrationJob', 'Get-MigrationJobProgress', 'Get-MigrationJobLog',
        'Suspend-MigrationJob', 'Resume-MigrationJob', 'Stop-MigrationJob', 'Wait-MigrationJob', 'Remove-MigrationJob', 'Export-MigrationJobReport', 'Get-MigrationJobReport',
        'Start-MigrationWorker', 'Get-MigrationWorker', 'Stop-MigrationWorker'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('S3', 'Migration', 'ObjectStorage', 'R2', 'MinIO', 'Ceph', 'Wasabi', 'GCS', 'Backup', 'PSEdition_Core', 'Windows', 'Linux', 'MacOS')
            # Placeholders until the project has its public home: the owner puts the real addresses here.
            LicenseUri   = 'https://github.com/OWNER/ObjectMigration/blob/main/LICENSE'
            ProjectUri   = 'https://github.com/OWNER/ObjectMigration'
            # Stamped by build.ps1 with this version's section of CHANGELOG.md.
            ReleaseNotes = 'See CHANGELOG.md.'
        }
    }
}
