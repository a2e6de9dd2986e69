# Dot-sourced by every test file: the fixtures the harness started, a private state folder, the test data helpers.
$script:Fixtures = Get-Content $env:OBJECTMIGRATION_TEST_FIXTURES -Raw | ConvertFrom-Json
$script:ModulePath = $env:OBJECTMIGRATION_TEST_MODULE
Import-Module (Join-Path $PSScriptRoot '../Fixtures/S3TestData.psm1') -Force

function New-TestHome {
    $path = Join-Path ([System.IO.Path]::GetTempPath()) ('om-pester-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
    New-Item -ItemType Directory -Path $path | Out-Null
    $path
}

function New-TestCredential($Fixture) {
    [pscredential]::new($Fixture.AccessKey, (ConvertTo-SecureString $Fixture.SecretKey -AsPlainText -Force))
}

# Runs a script in a separate pwsh process with the module, so several sessions share one state folder.
function Invoke-InNewProcess {
    param([Parameter(Mandatory)][string] $Script, [Parameter(Mandatory)][string] $StateHome)
    # The same PowerShell that runs this test: under 'dotnet pwsh' that is dotnet plus pwsh.dll.
    $host0 = [Environment]::ProcessPath
    $arguments = @(if ([System.IO.Path]::GetFileNameWithoutExtension($host0) -eq 'dotnet') { [Environment]::GetCommandLineArgs()[0] })
    $wrapped = "`$ErrorActionPreference = 'Stop'; `$env:OBJECTMIGRATION_HOME = '$StateHome'; Import-Module '$script:ModulePath'; $Script"
    & $host0 @arguments -NoProfile -NonInteractive -Command $wrapped
}

# A fresh state folder with the module, connectors to the given fixtures (src and dst: the s3rver pair by default) and
# a plain SDK client for each, to seed and read buckets independently of the module.
function Initialize-TestSession {
    param($SourceFixture = $Fixtures.S3rverSource, $TargetFixture = $Fixtures.S3rverTarget, [string] $SourceName = 'src', [string] $TargetName = 'dst')
    $env:OBJECTMIGRATION_HOME = New-TestHome
    Import-Module $ModulePath -Force -Global
    Import-AwsSdk -ModulePath $ModulePath
    $null = New-CloudConnector -Name $SourceName -Endpoint $SourceFixture.Endpoint -Credential (New-TestCredential $SourceFixture)
    $null = New-CloudConnector -Name $TargetName -Endpoint $TargetFixture.Endpoint -Credential (New-TestCredential $TargetFixture)
    [pscustomobject]@{ Source = New-TestS3Client $SourceFixture; Target = New-TestS3Client $TargetFixture }
}
