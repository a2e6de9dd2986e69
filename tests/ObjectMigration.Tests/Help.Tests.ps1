# The help users read with Get-Help, built by tools/HelpBuilder from docs/ObjectMigration: there for every cmdlet and
# true to it. Needs no S3 endpoint: build.ps1 -Task Docs runs this file alone.
BeforeDiscovery {
    $cmdlets = (Import-PowerShellDataFile $env:OBJECTMIGRATION_TEST_MODULE).CmdletsToExport | ForEach-Object { @{ Name = $_ } }
}

BeforeAll {
    $ModulePath = $env:OBJECTMIGRATION_TEST_MODULE
    . (Join-Path $PSScriptRoot 'HelpChecks.ps1')
    Import-Module $ModulePath -Force -Global

    # Another pwsh, so a second copy of the module (with other help) can be imported; its last line is JSON.
    function Invoke-HelpChild([string] $ScriptPath, [string[]] $Arguments) {
        $pwsh = [Environment]::ProcessPath
        $prefix = @(if ([System.IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { [Environment]::GetCommandLineArgs()[0] })
        $output = & $pwsh @prefix -NoProfile -NonInteractive -File $ScriptPath @Arguments 2>&1
        if ($LASTEXITCODE -ne 0) { throw "The child pwsh failed (exit $LASTEXITCODE): $($output -join "`n")" }
        $output | Select-Object -Last 1 | ConvertFrom-Json
    }

    function Get-HelpBuilderPath {
        $path = if ($env:OBJECTMIGRATION_HELPBUILDER) { $env:OBJECTMIGRATION_HELPBUILDER }
        else { Join-Path (Split-Path (Split-Path $ModulePath)) 'tools/HelpBuilder/HelpBuilder.dll' }
        if (-not (Test-Path $path)) { throw "No HelpBuilder at ${path}: build.ps1 -Task Build builds it next to the module." }
        $path
    }
}

AfterAll {
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
}

Describe 'Get-Help <Name>' -ForEach $cmdlets {
    It 'has a synopsis and a description' {
        Test-HelpSummary $Name | Should -BeNullOrEmpty
    }

    It 'describes every parameter' {
        Test-HelpParameter $Name | Should -BeNullOrEmpty
    }

    It 'names no parameter the cmdlet does not have' {
        Test-HelpNamesRealParameter $Name | Should -BeNullOrEmpty
    }

    It 'has at least two examples, each valid PowerShell that calls the cmdlets with their parameters' {
        Test-HelpExample $Name | Should -BeNullOrEmpty
    }
}

Describe 'Get-Help New-MigrationJob -Examples' {
    It 'shows the examples, titles and code' {
        $help = Get-Help New-MigrationJob -Examples
        $examples = @($help.examples.example | Where-Object { $_ })
        $examples.Count | Should -BeGreaterOrEqual 2
        $text = $help | Out-String -Width 250
        $firstLine = ($examples[0].code -split "`n")[0]
        $firstLine | Should -Match '^PS> '
        $text | Should -Match ([regex]::Escape($firstLine))
        $text | Should -Match 'Example 1'
    }
}

Describe 'The help converter on the sample pages in HelpSamples' {
    BeforeAll {
        $samples = Join-Path $PSScriptRoot 'HelpSamples'
        $names = @(Get-ChildItem $samples -Filter '*.md' | Where-Object Name -NotLike 'about_*' | ForEach-Object BaseName)
        $builder = Get-HelpBuilderPath
        $work = Join-Path ([System.IO.Path]::GetTempPath()) ('om-help-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
        $moduleCopy = Join-Path $work 'ObjectMigration'
        Copy-Item (Split-Path $ModulePath) $moduleCopy -Recurse
        $helpFolder = Join-Path $moduleCopy 'en-US'
        Remove-Item $helpFolder -Recurse -Force -ErrorAction SilentlyContinue

        $buildOutput = & dotnet $builder --docs $samples --out $helpFolder --strict --commands ($names -join ',') 2>&1
        if ($LASTEXITCODE -ne 0) { throw "HelpBuilder --strict failed on the samples: $($buildOutput -join "`n")" }

        $childScript = Join-Path $work 'check.ps1'
        Set-Content $childScript @'
param($Module, $Checks, $Names)
$ErrorActionPreference = 'Stop'
Import-Module $Module
. $Checks
[pscustomobject]@{
    Problems = @($Names -split ',' | ForEach-Object { Get-HelpProblem $_ })
    Examples = (Get-Help ($Names -split ',')[0] -Examples | Out-String -Width 250)
    About    = try { Get-Help about_ObjectMigration -ErrorAction Stop | Out-String -Width 250 } catch { '' }
} | ConvertTo-Json -Compress
'@
        $checks = Join-Path $PSScriptRoot 'HelpChecks.ps1'
        $result = Invoke-HelpChild $childScript @((Join-Path $moduleCopy 'ObjectMigration.psd1'), $checks, ($names -join ','))

        # The same sample with faults the checks must catch: a parameter without its description, a parameter the
        # cmdlet does not have, an example with a misspelt parameter and one that does not parse.
        $broken = Join-Path $work 'broken'
        New-Item -ItemType Directory $broken | Out-Null
        $page = Get-Content (Join-Path $samples 'Get-MigrationJob.md') -Raw
        $page = $page.Replace("Leaves out this many jobs from the start of the list.`n", '')
        $page = $page.Replace('### CommonParameters', "### -Bogus`nNot a parameter of the cmdlet.`n`n### CommonParameters")
        $page = $page.Replace('PS> Get-MigrationJob -State Paused', 'PS> Get-MigrationJob -Status Paused')
        $page = $page.Replace('    $interrupted | Resume-MigrationJob -Detached', '    $interrupted | Resume-MigrationJob -Detached (')
        Set-Content (Join-Path $broken 'Get-MigrationJob.md') $page -NoNewline
        $strictOutput = & dotnet $builder --docs $broken --out $helpFolder --strict --commands Get-MigrationJob 2>&1
        $strictExit = $LASTEXITCODE
        $null = & dotnet $builder --docs $broken --out $helpFolder --commands Get-MigrationJob
        $brokenResult = Invoke-HelpChild $childScript @((Join-Path $moduleCopy 'ObjectMigration.psd1'), $checks, 'Get-MigrationJob')
    }

    AfterAll {
        Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'has sample pages to convert' {
        $names.Count | Should -BeGreaterThan 0
    }

    It 'turns them into help that passes every check above' {
        $result.Problems | Should -BeNullOrEmpty
    }

    It 'shows their examples with Get-Help -Examples' {
        $result.Examples | Should -Match 'Example 1: See the jobs that need attention'
        $result.Examples | Should -Match ([regex]::Escape('PS> Get-MigrationJob -State Paused, Interrupted, CompletedWithErrors'))
        $result.Examples | Should -Match 'Hands every interrupted job back to a worker process'
    }

    It 'turns the about page into a topic Get-Help finds' {
        $result.About | Should -Match 'SHORT DESCRIPTION'
        $result.About | Should -Match 'Moves buckets between S3-compatible object stores'
    }

    It 'fails a page with a parameter without description, a parameter the cmdlet lacks, a misspelt parameter in an example or an example that does not parse' {
        $brokenResult.Problems | Should -Contain 'Get-MigrationJob -Skip has no description.'
        $brokenResult.Problems | Should -Contain 'Get-MigrationJob help names -Bogus, which Get-MigrationJob does not have.'
        ($brokenResult.Problems -match "'Example 2: Resume every interrupted job from a scheduled runbook' does not parse") | Should -Not -BeNullOrEmpty
        $brokenResult.Problems | Should -Contain "Get-MigrationJob 'Example 1: See the jobs that need attention' calls Get-MigrationJob with -Status, which it does not have."
    }

    It 'makes HelpBuilder --strict fail on that page, naming the faults' {
        $strictExit | Should -Be 1
        ($strictOutput -join "`n") | Should -Match '-Skip has no description'
        ($strictOutput -join "`n") | Should -Match '-Bogus has a section under PARAMETERS but is in no syntax line'
    }
}
