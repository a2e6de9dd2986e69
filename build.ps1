#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Builds, tests, demonstrates and benchmarks ObjectMigration. Every task installs what it needs itself.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Package', 'Docs')]
    [string] $Task = 'Build',
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',
    # Pester tests only run the files whose names match (quicker iterations).
    [string] $PesterFilter = '*'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$ModuleOut = Join-Path $Out 'ObjectMigration'
$ToolsProject = Join-Path $Root 'tests/tools/tools.csproj'
$PesterVersion = '5.7.1'

function Invoke-Native {
    # A simple function: every argument, dashes included, passes through to the native command untouched.
    $command, $arguments = $args
    & $command @arguments
    if ($LASTEXITCODE -ne 0) { throw "$command $($arguments -join ' ') failed with exit code $LASTEXITCODE." }
}

# The PowerShell running this script, to start child processes with: under 'dotnet pwsh' that is dotnet plus pwsh.dll.
$PwshHost = [Environment]::ProcessPath
$PwshArguments = @(if ([System.IO.Path]::GetFileNameWithoutExtension($PwshHost) -eq 'dotnet') { [Environment]::GetCommandLineArgs()[0] })

function Get-ModuleVersion {
    [xml] $props = Get-Content (Join-Path $Root 'Directory.Build.props')
    ($props.Project.PropertyGroup | Where-Object { $_['Version'] } | Select-Object -First 1).Version
}

function Invoke-Build {
    $publish = Join-Path $Out 'publish'
    if (Test-Path $publish) { Remove-Item -Recurse -Force $publish }
    Invoke-Native dotnet publish (Join-Path $Root 'src/ObjectMigration/ObjectMigration.csproj') -c $Configuration -o $publish --nologo -v quiet
    if (Test-Path $ModuleOut) { Remove-Item -Recurse -Force $ModuleOut }
    $dependencies = New-Item -ItemType Directory -Path (Join-Path $ModuleOut 'dependencies') -Force
    # The cmdlet assembly sits at the root; the engine and its libraries go to dependencies/, loaded by our own
    # AssemblyLoadContext so they never clash with another module's copies.
    Copy-Item (Join-Path $publish 'ObjectMigration.dll'), (Join-Path $publish 'ObjectMigration.pdb') $ModuleOut
    Get-ChildItem $publish -File | Where-Object { $_.Name -notlike 'ObjectMigration.dll' -and $_.Name -notlike 'ObjectMigration.pdb' -and $_.Extension -in '.dll', '.pdb' } |
        Copy-Item -Destination $dependencies
    Copy-Item (Join-Path $publish 'runtimes') $dependencies -Recurse
    Copy-Item (Join-Path $Root 'src/ObjectMigration/ObjectMigration.Format.ps1xml'), (Join-Path $Root 'src/ObjectMigration/ObjectMigration.psm1') $ModuleOut
    $manifest = Get-Content (Join-Path $Root 'ObjectMigration.psd1') -Raw
    $manifest = $manifest -replace "ModuleVersion\s*=\s*'[^']*'", "ModuleVersion        = '$(Get-ModuleVersion)'"
    Set-Content -Path (Join-Path $ModuleOut 'ObjectMigration.psd1') -Value $manifest -NoNewline
    Write-Host "Built module $(Get-ModuleVersion) into $ModuleOut"
}

function Install-Pester {
    # Pester comes from NuGet (the PowerShell Gallery may be out of reach): restore it as a package download.
    Invoke-Native dotnet restore $ToolsProject --nologo -v quiet | Out-Host
    $nugetRoot = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages' }
    $manifest = Get-ChildItem (Join-Path $nugetRoot "pester/$PesterVersion") -Recurse -Filter 'Pester.psd1' | Select-Object -First 1
    if (-not $manifest) { throw "Pester $PesterVersion was restored but Pester.psd1 was not found under $nugetRoot/pester/$PesterVersion." }
    $manifest.FullName
}

function Start-TestEndpoints {
    param([switch] $WithCeph)
    Import-Module (Join-Path $Root 'tests/Fixtures/S3Fixtures.psm1') -Force
    $fixtures = [ordered]@{}
    try {
        $fixtures.S3rverSource = Start-S3rverFixture -Name source
        $fixtures.S3rverTarget = Start-S3rverFixture -Name target
        if ($WithCeph) { $fixtures.Ceph = Start-CephRgwFixture -Gateways 2 }
    } catch {
        $fixtures.Values | Stop-S3Fixture
        throw
    }
    $fixtures
}

function Write-FixtureFile($Fixtures) {
    $path = Join-Path ([System.IO.Path]::GetTempPath()) ('om-fixtures-' + [guid]::NewGuid().ToString('n') + '.json')
    $Fixtures | ConvertTo-Json -Depth 4 | Set-Content -Path $path
    $path
}

function Invoke-Test {
    Invoke-Build
    $pester = Install-Pester
    $fixtures = Start-TestEndpoints -WithCeph
    $fixtureFile = Write-FixtureFile $fixtures
    $env:OBJECTMIGRATION_TEST_FIXTURES = $fixtureFile
    $results = Join-Path $Out 'test-results'
    if (Test-Path $results) { Remove-Item -Recurse -Force $results }
    New-Item -ItemType Directory -Path $results | Out-Null
    $totals = @{ Passed = 0; Failed = 0; Skipped = 0 }
    try {
        # xunit: the engine against both S3 implementations.
        & dotnet test (Join-Path $Root 'tests/ObjectMigration.Engine.Tests/ObjectMigration.Engine.Tests.csproj') -c $Configuration --nologo `
            --logger "trx;LogFileName=engine.trx" --results-directory $results --logger 'console;verbosity=normal'
        $xunitExit = $LASTEXITCODE
        $trx = Get-ChildItem $results -Filter 'engine.trx' -Recurse | Select-Object -First 1
        if (-not $trx) { throw "The xunit run produced no results (exit $xunitExit)." }
        $counters = ([xml](Get-Content $trx.FullName)).TestRun.ResultSummary.Counters
        $totals.Passed += [int]$counters.passed
        $totals.Failed += [int]$counters.failed + [int]$counters.error + [int]$counters.timeout
        $totals.Skipped += [int]$counters.notExecuted
        if ($xunitExit -ne 0 -and [int]$counters.failed -eq 0) { $totals.Failed++ }

        # Pester: the built module, loaded the way users load it, in a fresh process.
        $summary = Join-Path $results 'pester.json'
        # A bare '*' passed to a native command is expanded by PowerShell on Unix; pass the filter only when it narrows.
        $pesterFilterArguments = @(if ($PesterFilter -ne '*') { '-Filter', $PesterFilter })
        & $PwshHost @PwshArguments -NoProfile -NonInteractive -File (Join-Path $Root 'tests/ObjectMigration.Tests/Invoke-ModuleTests.ps1') `
            -PesterPath $pester -ModulePath (Join-Path $ModuleOut 'ObjectMigration.psd1') -SummaryPath $summary @pesterFilterArguments
        $pesterExit = $LASTEXITCODE
        if (-not (Test-Path $summary)) { throw "The Pester run produced no summary (exit $pesterExit)." }
        $p = Get-Content $summary -Raw | ConvertFrom-Json
        $totals.Passed += $p.Passed; $totals.Failed += $p.Failed; $totals.Skipped += $p.Skipped
        if ($pesterExit -ne 0 -and $p.Failed -eq 0) { $totals.Failed++ }
    } finally {
        $fixtures.Values | Stop-S3Fixture
        Remove-Item $fixtureFile -ErrorAction SilentlyContinue
        Remove-Item Env:OBJECTMIGRATION_TEST_FIXTURES -ErrorAction SilentlyContinue
    }
    Write-Host ''
    Write-Host "$($totals.Passed) passed, $($totals.Failed) failed, $($totals.Skipped) skipped"
    if ($totals.Failed -gt 0 -or $totals.Passed -eq 0) { exit 1 }
}

function Invoke-Demo {
    Invoke-Build
    $fixtures = Start-TestEndpoints
    $fixtureFile = Write-FixtureFile $fixtures
    try {
        & $PwshHost @PwshArguments -NoProfile -NonInteractive -File (Join-Path $Root 'tests/Fixtures/Invoke-Demo.ps1') `
            -ModulePath (Join-Path $ModuleOut 'ObjectMigration.psd1') -FixtureFile $fixtureFile
        if ($LASTEXITCODE -ne 0) { throw "The demo failed (exit $LASTEXITCODE)." }
    } finally {
        $fixtures.Values | Stop-S3Fixture
        Remove-Item $fixtureFile -ErrorAction SilentlyContinue
    }
}

function Invoke-Bench {
    Invoke-Build
    & $PwshHost @PwshArguments -NoProfile -File (Join-Path $Root 'bench/Invoke-Benchmark.ps1') -ModulePath (Join-Path $ModuleOut 'ObjectMigration.psd1')
    if ($LASTEXITCODE -ne 0) { throw "The benchmark failed (exit $LASTEXITCODE)." }
}

function Invoke-Package {
    Invoke-Build
    Write-Host "The module folder $ModuleOut is what Publish-PSResource takes."
}

function Invoke-Docs {
    # PlatyPS is not installable here (no PowerShell Gallery); docs/ObjectMigration is written by hand and checked
    # against the module: every exported cmdlet must have its page.
    Invoke-Build
    $names = (Import-PowerShellDataFile (Join-Path $ModuleOut 'ObjectMigration.psd1')).CmdletsToExport
    $missing = $names | Where-Object { -not (Test-Path (Join-Path $Root "docs/ObjectMigration/$_.md")) }
    if ($missing) { throw "Cmdlets without a page in docs/ObjectMigration: $($missing -join ', ')" }
    Write-Host "Every exported cmdlet has its page."
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    'Demo' { Invoke-Demo }
    'Bench' { Invoke-Bench }
    'Package' { Invoke-Package }
    'Docs' { Invoke-Docs }
}
