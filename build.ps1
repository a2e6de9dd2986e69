#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Builds, tests, demonstrates and benchmarks ObjectMigration. Every task installs what it needs itself.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Soak -Kills 100 -FlushKills 30
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Bench -Scenario Wan -Quick
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Package', 'Docs', 'Soak')]
    [string] $Task = 'Build',
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',
    # Pester tests only run the files whose names match (quicker iterations).
    [string] $PesterFilter = '*',
    # Soak: SIGKILLs of one migration's runners, and of an inventory writing its state (Crash.Tests.ps1 runs 10 and 5).
    [ValidateRange(1, 10000)][int] $Kills = 50,
    [ValidateRange(1, 10000)][int] $FlushKills = 20,
    # Bench: Loopback compares the tools on loopback (bench/Invoke-Benchmark.ps1); Wan runs them behind the latency
    # relay at several round-trip times (bench/Invoke-WanBenchmark.ps1).
    [ValidateSet('Loopback', 'Wan')][string] $Scenario = 'Loopback',
    # Bench -Scenario Wan: the quick form (smaller sets at 50 ms, a few minutes).
    [switch] $Quick
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

# Native SQLite for the platforms PowerShell 7 runs on. The other runtime folders NuGet brings (browser-wasm, win-x86,
# linux-arm, linux-musl-arm64, maccatalyst ...) are left out of the module.
$NativeRuntimes = 'win-x64', 'win-arm64', 'linux-x64', 'linux-arm64', 'linux-musl-x64', 'osx-x64', 'osx-arm64'

function Get-ReleaseNotes {
    # The CHANGELOG.md section of this version: from its '## <version>' heading to the next '## '.
    $version = Get-ModuleVersion
    $lines = Get-Content (Join-Path $Root 'CHANGELOG.md')
    $start = @($lines | Select-String -Pattern "^## \[?$([regex]::Escape($version))\]?(\s|$)")[0]
    if (-not $start) { throw "CHANGELOG.md has no '## $version' section; add what this version brings there (Version in Directory.Build.props is $version)." }
    $section = foreach ($line in $lines | Select-Object -Skip $start.LineNumber) {
        if ($line -match '^## ') { break }
        $line
    }
    ($section -join "`n").Trim()
}

function Invoke-Build {
    $publish = Join-Path $Out 'publish'
    if (Test-Path $publish) { Remove-Item -Recurse -Force $publish }
    Invoke-Native dotnet publish (Join-Path $Root 'src/ObjectMigration/ObjectMigration.csproj') -c $Configuration -o $publish --nologo -v quiet
    if (Test-Path $ModuleOut) { Remove-Item -Recurse -Force $ModuleOut }
    $dependencies = New-Item -ItemType Directory -Path (Join-Path $ModuleOut 'dependencies') -Force
    # The cmdlet assembly sits at the root; the engine and its libraries go to dependencies/, loaded by our own
    # AssemblyLoadContext so they never clash with another module's copies. The module folder is what the package
    # holds, so it has no .pdb: a debugger finds the symbols by the path each assembly records (its project's obj/).
    Copy-Item (Join-Path $publish 'ObjectMigration.dll') $ModuleOut
    Get-ChildItem $publish -File -Filter '*.dll' | Where-Object Name -NE 'ObjectMigration.dll' | Copy-Item -Destination $dependencies
    $runtimes = New-Item -ItemType Directory -Path (Join-Path $dependencies 'runtimes')
    foreach ($rid in $NativeRuntimes) {
        $native = Join-Path $publish "runtimes/$rid"
        if (-not (Test-Path $native)) { throw "The published module has no runtimes/$rid (native SQLite): did SQLitePCLRaw change its layout?" }
        Copy-Item $native $runtimes -Recurse
    }
    Copy-Item (Join-Path $Root 'src/ObjectMigration/ObjectMigration.Format.ps1xml'), (Join-Path $Root 'src/ObjectMigration/ObjectMigration.psm1'),
        (Join-Path $Root 'LICENSE'), (Join-Path $Root 'THIRD-PARTY-NOTICES.txt') $ModuleOut
    $manifest = Get-Content (Join-Path $Root 'ObjectMigration.psd1') -Raw
    $manifest = $manifest -replace "ModuleVersion\s*=\s*'[^']*'", "ModuleVersion        = '$(Get-ModuleVersion)'"
    $releaseNotes = (Get-ReleaseNotes) -replace "'", "''"
    # A script block, so a '$' in the notes is not taken for a substitution.
    $manifest = $manifest -replace "ReleaseNotes\s*=\s*'[^']*'", { "ReleaseNotes = '$releaseNotes'" }
    Set-Content -Path (Join-Path $ModuleOut 'ObjectMigration.psd1') -Value $manifest -NoNewline
    $null = Build-Help
    Write-Host "Built module $(Get-ModuleVersion) into $ModuleOut"
}

function Build-Help {
    # Get-Help's files from docs/ObjectMigration (PlatyPS markdown) by tools/HelpBuilder, which is not part of the module.
    # PlatyPS reads the same pages where it is installed; it cannot be installed here (no PowerShell Gallery).
    # Returns whether the pages follow the layout; a page that strays is still converted as far as it goes.
    param([switch] $Strict)
    $tool = Join-Path $Out 'tools/HelpBuilder'
    Invoke-Native dotnet build (Join-Path $Root 'tools/HelpBuilder/HelpBuilder.csproj') -c Release -o $tool --nologo -v quiet | Out-Host
    $cmdlets = (Import-PowerShellDataFile (Join-Path $Root 'ObjectMigration.psd1')).CmdletsToExport -join ','
    $arguments = @('--docs', (Join-Path $Root 'docs/ObjectMigration'), '--out', (Join-Path $ModuleOut 'en-US'), '--commands', $cmdlets)
    if ($Strict) { $arguments += '--strict' }
    & dotnet (Join-Path $tool 'HelpBuilder.dll') @arguments | Out-Host
    if ($LASTEXITCODE -gt 1) { throw "HelpBuilder failed (exit $LASTEXITCODE)." }
    $LASTEXITCODE -eq 0
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
    param([switch] $WithCeph, [switch] $WithPostgres)
    Import-Module (Join-Path $Root 'tests/Fixtures/S3Fixtures.psm1') -Force
    $fixtures = [ordered]@{}
    try {
        $fixtures.S3rverSource = Start-S3rverFixture -Name source
        $fixtures.S3rverTarget = Start-S3rverFixture -Name target
        if ($WithPostgres) {
            # The shared state store's tests: ~1 s from a cached template (~3 s the first time on a machine), ~20 MiB.
            Import-Module (Join-Path $Root 'tests/Fixtures/PostgresFixture.psm1') -Force
            $fixtures.Postgres = Start-PostgresFixture
        }
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

# Each failed xunit test with the first lines of its message, and why the run itself failed if it did. Read by local
# name with XPath: elements a TRX leaves out when there is nothing to say (RunInfos, Output) must not throw in strict mode.
function Get-XunitFailure([string] $TrxPath, [int] $ExitCode) {
    $trx = [xml](Get-Content $TrxPath -Raw)
    foreach ($result in $trx.SelectNodes("//*[local-name()='UnitTestResult']")) {
        $outcome = $result.GetAttribute('outcome')
        if ($outcome -in 'Passed', 'NotExecuted') { continue }
        $message = $result.SelectSingleNode(".//*[local-name()='ErrorInfo']/*[local-name()='Message']")
        $lines = @(if ($message) { $message.InnerText -split "`n" | Select-Object -First 4 })
        "xunit: $($result.GetAttribute('testName')) ($outcome, $($result.GetAttribute('duration'))): $($lines -join ' | ')"
    }
    foreach ($info in $trx.SelectNodes("//*[local-name()='RunInfo']")) {
        if ($info.GetAttribute('outcome') -ne 'Error') { continue }
        $text = $info.SelectSingleNode("*[local-name()='Text']")
        "xunit run: $(@(if ($text) { $text.InnerText -split "`n" | Select-Object -First 6 }) -join ' | ')"
    }
    $counters = $trx.SelectSingleNode("//*[local-name()='Counters']")
    if ($ExitCode -ne 0 -and (-not $counters -or [int]$counters.GetAttribute('failed') -eq 0)) {
        "xunit: dotnet test exited $ExitCode with no failed test in its results (the test host crashed or the run was aborted; see its output above)."
    }
}

function Invoke-Test {
    Invoke-Build
    $pester = Install-Pester
    $fixtures = Start-TestEndpoints -WithCeph -WithPostgres
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
        $failures = [System.Collections.Generic.List[string]]::new()
        $failures.AddRange([string[]]@(Get-XunitFailure -TrxPath $trx.FullName -ExitCode $xunitExit))

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
        foreach ($failure in @($p.Failures)) { if ($failure) { $failures.Add("Pester: $failure") } }
    } finally {
        $fixtures.Values | Stop-S3Fixture
        Remove-Item $fixtureFile -ErrorAction SilentlyContinue
        Remove-Item Env:OBJECTMIGRATION_TEST_FIXTURES -ErrorAction SilentlyContinue
    }
    Write-Host ''
    # Repeated at the end: CI keeps only the tail of the output.
    if ($failures.Count -gt 0) {
        Write-Host 'What failed:'
        foreach ($failure in $failures) { Write-Host "  $failure" }
    }
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
    $module = Join-Path $ModuleOut 'ObjectMigration.psd1'
    if ($Scenario -eq 'Wan') {
        $quickArgument = @(if ($Quick) { '-Quick' })
        & $PwshHost @PwshArguments -NoProfile -File (Join-Path $Root 'bench/Invoke-WanBenchmark.ps1') -ModulePath $module @quickArgument
    } else {
        & $PwshHost @PwshArguments -NoProfile -File (Join-Path $Root 'bench/Invoke-Benchmark.ps1') -ModulePath $module
    }
    if ($LASTEXITCODE -ne 0) { throw "The benchmark failed (exit $LASTEXITCODE)." }
}

function Invoke-Soak {
    # The long form of the kill and crash tests: runners killed at random points and resumed, the store under kills and
    # under several processes at once (tests/Soak/Invoke-KillSoak.ps1). Against s3rver and Ceph RGW, like the tests.
    Invoke-Build
    $fixtures = Start-TestEndpoints -WithCeph
    $fixtureFile = Write-FixtureFile $fixtures
    try {
        & $PwshHost @PwshArguments -NoProfile -NonInteractive -File (Join-Path $Root 'tests/Soak/Invoke-KillSoak.ps1') `
            -ModulePath (Join-Path $ModuleOut 'ObjectMigration.psd1') -FixtureFile $fixtureFile -Kills $Kills -FlushKills $FlushKills
        if ($LASTEXITCODE -ne 0) { throw "The soak found problems (exit $LASTEXITCODE): see PROBLEM lines above." }
    } finally {
        $fixtures.Values | Stop-S3Fixture
        Remove-Item $fixtureFile -ErrorAction SilentlyContinue
    }
}

function Invoke-Package {
    Invoke-Build
    $null = Test-ModuleManifest (Join-Path $ModuleOut 'ObjectMigration.psd1')
    $packages = Join-Path $Out 'packages'
    if (Test-Path $packages) { Remove-Item -Recurse -Force $packages }
    $null = New-Item -ItemType Directory -Path $packages
    # Publish-PSResource to a file-system repository: the package is what the Gallery would get. The repository is
    # registered under a name of its own for this run only.
    $repository = 'ObjectMigration-build-' + [guid]::NewGuid().ToString('n').Substring(0, 8)
    $installed = New-Item -ItemType Directory -Path (Join-Path ([System.IO.Path]::GetTempPath()) $repository)
    Register-PSResourceRepository -Name $repository -Uri $packages -Trusted
    try {
        Publish-PSResource -Path $ModuleOut -Repository $repository
        # Saved as Install-PSResource lays it out, to measure what a user gets.
        Save-PSResource -Name ObjectMigration -Repository $repository -Path $installed -TrustRepository -IncludeXml
    } finally {
        Unregister-PSResourceRepository -Name $repository
    }
    $package = Get-Item (Join-Path $packages "ObjectMigration.$(Get-ModuleVersion).nupkg")
    $files = Get-ChildItem $installed -Recurse -File
    $installedBytes = ($files | Measure-Object Length -Sum).Sum
    Remove-Item $installed -Recurse -Force
    Write-Host ('Package {0}: {1:N1} MiB ({2:N0} bytes); installed: {3:N1} MiB ({4:N0} bytes) in {5} files' -f
        $package.FullName, ($package.Length / 1MB), $package.Length, ($installedBytes / 1MB), $installedBytes, $files.Count)
}

function Invoke-Docs {
    # The pages in the layout of docs/ObjectMigration (PlatyPS markdown, schema 2.0.0) turned into Get-Help's files,
    # then Get-Help checked against the built module (Help.Tests.ps1, which needs no S3 endpoint).
    Invoke-Build
    $problems = @()
    if (-not (Build-Help -Strict)) { $problems += 'The help pages stray from the layout (the errors above).' }
    foreach ($topic in 'about_ObjectMigration', 'about_ObjectMigration_Troubleshooting') {
        if (-not (Test-Path (Join-Path $Root "docs/ObjectMigration/$topic.md"))) { $problems += "No docs/ObjectMigration/$topic.md." }
    }
    $pester = Install-Pester
    $summary = Join-Path $Out 'help-tests.json'
    if (Test-Path $summary) { Remove-Item $summary }
    & $PwshHost @PwshArguments -NoProfile -NonInteractive -File (Join-Path $Root 'tests/ObjectMigration.Tests/Invoke-ModuleTests.ps1') `
        -PesterPath $pester -ModulePath (Join-Path $ModuleOut 'ObjectMigration.psd1') -SummaryPath $summary -Filter Help
    if (-not (Test-Path $summary) -or (Get-Content $summary -Raw | ConvertFrom-Json).Failed -gt 0) { $problems += 'The help tests failed (above).' }
    if ($problems) { throw ($problems -join ' ') }
    Write-Host 'Every exported cmdlet has its help, and Get-Help shows it.'
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    'Demo' { Invoke-Demo }
    'Bench' { Invoke-Bench }
    'Package' { Invoke-Package }
    'Docs' { Invoke-Docs }
    'Soak' { Invoke-Soak }
}
