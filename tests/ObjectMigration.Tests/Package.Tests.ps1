# The module as users get it: the built module folder published with Publish-PSResource to a file-system repository,
# installed with Install-PSResource into an empty module folder, imported by name in a new pwsh and used for a migration.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $docs = Join-Path $PSScriptRoot '../../docs/ObjectMigration'
    # Native SQLite ships for the platforms PowerShell 7 runs on, and for no other.
    $allowedRuntimes = 'linux-arm64', 'linux-musl-x64', 'linux-x64', 'osx-arm64', 'osx-x64', 'win-arm64', 'win-x64'

    $work = New-TestHome
    $repository = (New-Item -ItemType Directory (Join-Path $work 'repository')).FullName
    # On Linux and macOS, Install-PSResource -Scope CurrentUser installs under $HOME/.local/share/powershell/Modules
    # and keeps its list of repositories under $XDG_DATA_HOME: with both in an empty folder the children touch nothing
    # of the user's. On Windows it installs under Documents, which no variable moves, so Save-PSResource (the same
    # package in the same layout) puts it into the empty folder instead.
    # The folders must exist: .NET gives an empty path for a special folder that does not, and PSResourceGet and NuGet
    # then write relative to the working directory.
    $userHome = (New-Item -ItemType Directory (Join-Path $work 'home')).FullName
    $dataHome = (New-Item -ItemType Directory (Join-Path $userHome '.local/share')).FullName
    $configHome = (New-Item -ItemType Directory (Join-Path $userHome '.config')).FullName
    $modules = Join-Path $dataHome 'powershell/Modules'
    $stateHome = (New-Item -ItemType Directory (Join-Path $work 'state')).FullName

    function Invoke-PackageChild([string] $Script, [string[]] $Arguments) {
        $path = Join-Path $work ([guid]::NewGuid().ToString('n') + '.ps1')
        Set-Content $path $Script
        $pwsh = [Environment]::ProcessPath
        $prefix = @(if ([System.IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { [Environment]::GetCommandLineArgs()[0] })
        $saved = @{}
        foreach ($name in 'HOME', 'XDG_DATA_HOME', 'XDG_CONFIG_HOME', 'PSModulePath', 'OBJECTMIGRATION_HOME') { $saved[$name] = [Environment]::GetEnvironmentVariable($name) }
        Push-Location $work
        try {
            if (-not $IsWindows) { $env:HOME = $userHome }
            $env:XDG_DATA_HOME = $dataHome
            $env:XDG_CONFIG_HOME = $configHome
            $env:PSModulePath = $modules
            $env:OBJECTMIGRATION_HOME = $stateHome
            $output = & $pwsh @prefix -NoProfile -NonInteractive -File $path @Arguments 2>&1
            if ($LASTEXITCODE -ne 0) { throw "The child pwsh failed (exit $LASTEXITCODE): $($output -join "`n")" }
        } finally {
            Pop-Location
            foreach ($name in $saved.Keys) {
                if ($null -eq $saved[$name]) { Remove-Item "env:$name" -ErrorAction SilentlyContinue } else { Set-Item "env:$name" $saved[$name] }
            }
        }
        $output | Select-Object -Last 1 | ConvertFrom-Json
    }

    $published = Invoke-PackageChild -Arguments (Split-Path $ModulePath), $repository, $modules -Script @'
param($ModuleFolder, $Repository, $Modules)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$name = 'ObjectMigration-test-' + [guid]::NewGuid().ToString('n').Substring(0, 8)
Register-PSResourceRepository -Name $name -Uri $Repository -Trusted
try {
    Publish-PSResource -Path $ModuleFolder -Repository $name
    if ($IsWindows) { Save-PSResource -Name ObjectMigration -Repository $name -Path $Modules -TrustRepository -IncludeXml -Quiet }
    else {
        Install-PSResource -Name ObjectMigration -Repository $name -Scope CurrentUser -TrustRepository -Quiet
        # Should PSResourceGet ever install elsewhere, the test takes the module back out of the user's folder.
        $location = (Get-InstalledPSResource -Name ObjectMigration -Scope CurrentUser).InstalledLocation
        if (-not "$location".StartsWith($Modules)) {
            Uninstall-PSResource -Name ObjectMigration -Scope CurrentUser
            throw "Install-PSResource installed into $location, not into the test's folder $Modules."
        }
    }
} finally {
    Unregister-PSResourceRepository -Name $name
}
[pscustomobject]@{ Package = (Get-ChildItem $Repository -Filter 'ObjectMigration.*.nupkg').FullName } | ConvertTo-Json -Compress
'@
    $installed = Get-ChildItem (Join-Path $modules 'ObjectMigration') -Directory | Select-Object -First 1
    $packageBytes = (Get-Item $published.Package).Length
    $installedBytes = (Get-ChildItem $installed -Recurse -File | Measure-Object Length -Sum).Sum
    Write-Host ('Package {0:N1} MiB, installed {1:N1} MiB' -f ($packageBytes / 1MB), ($installedBytes / 1MB))

    # A source bucket with objects of a few sizes, read and written with a plain SDK client, not the module.
    $source = $Fixtures.S3rverSource; $target = $Fixtures.S3rverTarget
    Import-AwsSdk -ModulePath $ModulePath
    $sourceClient = New-TestS3Client $source
    $targetClient = New-TestS3Client $target
    $sourceBucket = New-TestBucket $sourceClient
    $targetBucket = New-TestBucket $targetClient
    $objects = [ordered]@{ 'empty' = [byte[]]@(); 'a.txt' = [System.Text.Encoding]::UTF8.GetBytes('package test'); 'dir/b.bin' = (Get-TestBytes 300000 7) }
    foreach ($key in $objects.Keys) { Write-TestObject $sourceClient $sourceBucket $key $objects[$key] }

    $run = Invoke-PackageChild -Arguments $source.Endpoint, $target.Endpoint, $source.AccessKey, $source.SecretKey, $target.AccessKey, $target.SecretKey, $sourceBucket, $targetBucket -Script @'
param($SourceEndpoint, $TargetEndpoint, $SourceKey, $SourceSecret, $TargetKey, $TargetSecret, $SourceBucket, $TargetBucket)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module ObjectMigration
$module = Get-Module ObjectMigration
$null = New-CloudConnector -Name src -Endpoint $SourceEndpoint -Credential ([pscredential]::new($SourceKey, (ConvertTo-SecureString $SourceSecret -AsPlainText -Force)))
$null = New-CloudConnector -Name dst -Endpoint $TargetEndpoint -Credential ([pscredential]::new($TargetKey, (ConvertTo-SecureString $TargetSecret -AsPlainText -Force)))
$job = New-MigrationJob -SourceConnector src -SourceBucket $SourceBucket -TargetConnector dst -TargetBucket $TargetBucket -Wait
$about = try { Get-Help about_ObjectMigration -ErrorAction Stop | Out-String } catch { '' }
[pscustomobject]@{
    ModuleBase  = $module.ModuleBase
    Version     = "$($module.Version)"
    State       = "$($job.State)"
    Transferred = (Get-MigrationJobProgress -Id $job.Id).TransferredObjects
    About       = $about
} | ConvertTo-Json -Compress
'@
}

AfterAll {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'The published package' {
    It 'installs into the empty module folder, and Import-Module ObjectMigration loads it from there' {
        $installed | Should -Not -BeNullOrEmpty
        $run.ModuleBase | Should -Be $installed.FullName
        $run.Version | Should -Be (Import-PowerShellDataFile $ModulePath).ModuleVersion
        Split-Path $published.Package -Leaf | Should -Be "ObjectMigration.$($run.Version).nupkg"
    }

    It 'migrates a bucket, byte for byte' {
        $run.State | Should -Be 'Completed'
        $run.Transferred | Should -Be $objects.Count
        foreach ($key in $objects.Keys) {
            $copy = Read-TestObject $targetClient $targetBucket $key
            [Convert]::ToBase64String($copy.Content) | Should -Be ([Convert]::ToBase64String($objects[$key])) -Because $key
        }
    }

    It 'holds no .pdb, no tests, and native SQLite only for the platforms PowerShell 7 runs on' {
        Get-ChildItem $installed -Recurse -File -Filter '*.pdb' | Should -BeNullOrEmpty
        Get-ChildItem $installed -Recurse -File | Where-Object { $_.Name -like '*.Tests.ps1' -or $_.Extension -in '.md', '.json', '.cs' } | Should -BeNullOrEmpty
        $runtimes = Get-ChildItem (Join-Path $installed 'dependencies/runtimes') -Directory | ForEach-Object Name | Sort-Object
        $runtimes | Should -Be $allowedRuntimes
        foreach ($rid in $runtimes) {
            Get-ChildItem (Join-Path $installed "dependencies/runtimes/$rid/native") -File | Should -Not -BeNullOrEmpty -Because "$rid needs its native SQLite"
        }
    }

    It 'ships its license and names every third-party assembly it ships in THIRD-PARTY-NOTICES.txt' {
        Join-Path $installed 'LICENSE' | Should -Exist
        $notices = Get-Content (Join-Path $installed 'THIRD-PARTY-NOTICES.txt') -Raw
        foreach ($assembly in Get-ChildItem (Join-Path $installed 'dependencies') -Filter '*.dll' | Where-Object BaseName -NE 'ObjectMigration.Engine') {
            $notices | Should -Match ([regex]::Escape($assembly.BaseName)) -Because "$($assembly.Name) is shipped"
        }
    }

    It 'has a complete manifest: license and project addresses, release notes from CHANGELOG.md' {
        $manifest = Test-ModuleManifest (Join-Path $installed 'ObjectMigration.psd1')
        $manifest.CompatiblePSEditions | Should -Be @('Core')
        $manifest.PowerShellVersion | Should -Not -BeNullOrEmpty
        $manifest.ExportedFormatFiles | Should -Not -BeNullOrEmpty
        $manifest.LicenseUri.IsAbsoluteUri | Should -BeTrue
        $manifest.ProjectUri.IsAbsoluteUri | Should -BeTrue
        $manifest.ReleaseNotes | Should -Not -BeNullOrEmpty
        $manifest.ReleaseNotes | Should -Not -Be 'See CHANGELOG.md.' -Because 'the build puts the CHANGELOG.md section of this version there'
        $changelog = Get-Content (Join-Path $PSScriptRoot '../../CHANGELOG.md') -Raw
        $changelog.Replace("`r`n", "`n").Contains($manifest.ReleaseNotes.Replace("`r`n", "`n")) | Should -BeTrue -Because 'the release notes are a section of CHANGELOG.md'
    }

    It 'answers Get-Help about_ObjectMigration once docs/ObjectMigration/about_ObjectMigration.md exists' {
        if (-not (Test-Path (Join-Path $docs 'about_ObjectMigration.md'))) {
            Set-ItResult -Skipped -Because 'docs/ObjectMigration/about_ObjectMigration.md is not written yet'
            return
        }
        $run.About | Should -Match 'about_ObjectMigration'
        $run.About | Should -Match 'SHORT DESCRIPTION'
    }
}
