# PostgreSQL for the tests of the shared state store (issue 21): Debian's PostgreSQL 15 on 127.0.0.1, in a data folder
# of its own under the temp folder, on a free port, its unix socket inside that folder. Start-PostgresFixture returns a
# fixture object like the S3 ones (Kind, Pids, WorkFolder ...); Stop-S3Fixture stops it by its PID (an immediate
# shutdown first, so its shared memory is released) and removes the folder.
#
# PostgreSQL refuses to run as root: as root (CI), initdb and the server run as the 'postgres' account the Debian
# package creates (through setpriv, so the recorded PID is the server's own), and the folder is made theirs.

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

Import-Module (Join-Path $PSScriptRoot 'S3Fixtures.psm1')

$script:MajorVersion = 15
$script:BinFolder = "/usr/lib/postgresql/$script:MajorVersion/bin"
# What goes into a template; a change here makes a new one (the cache key includes it).
# The database's default collation is ICU en-US, as on a typical production server: a store that forgets
# COLLATE "C" on object keys sorts them unlike S3 ('_x' before 'A'), and paging tests show it.
$script:InitdbArguments = @('--encoding=UTF8', '--locale=C.UTF-8', '--locale-provider=icu', '--icu-locale=en-US',
    '--username=omadmin', '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '--no-instructions',
    # 1 MB WAL segments instead of 16: each fixture copies the template, and the first segment is most of it.
    '--wal-segsize=1')
$script:TemplateSql = @(
    # The store's role is no superuser (operators will not give it one) but may create databases (a conformance test
    # class can have one of its own).
    'CREATE ROLE objectmigration LOGIN CREATEDB'
    'CREATE DATABASE objectmigration OWNER objectmigration'
)

function Test-IsRoot { [Environment]::IsPrivilegedProcess }

function Install-Postgres {
    if (Test-Path (Join-Path $script:BinFolder 'postgres')) { return }
    if (-not (Get-Command apt-get -ErrorAction SilentlyContinue)) {
        throw "PostgreSQL $script:MajorVersion is needed for the shared state store tests: install it so that $script:BinFolder/postgres exists (Debian: apt-get install postgresql-$script:MajorVersion)."
    }
    $apt = if (Test-IsRoot) { @('apt-get') } else { @('sudo', '-n', 'apt-get') }
    $aptCommand, $aptPrefix = $apt
    if (-not (Test-IsRoot)) {
        & sudo -n true 2>$null
        if ($LASTEXITCODE -ne 0) { throw "PostgreSQL $script:MajorVersion is missing and sudo asks for a password: run 'sudo apt-get install postgresql-$script:MajorVersion' once." }
    }
    # Only the binaries are wanted: the package would also create (and may start) a system cluster on port 5432.
    $dropIn = '/etc/postgresql-common/createcluster.d'
    $noCluster = "create_main_cluster = false`n"
    if (Test-IsRoot) {
        New-Item -ItemType Directory -Path $dropIn -Force | Out-Null
        Set-Content -Path "$dropIn/objectmigration-tests.conf" -Value $noCluster -NoNewline
    } else {
        & sudo -n mkdir -p $dropIn
        $noCluster | & sudo -n tee "$dropIn/objectmigration-tests.conf" > $null
    }
    Write-Host "Installing PostgreSQL $script:MajorVersion from Debian packages (once)..."
    & $aptCommand @aptPrefix update -qq | Out-Host
    $env:DEBIAN_FRONTEND = 'noninteractive'
    & $aptCommand @aptPrefix install -y -qq --no-install-recommends "postgresql-$script:MajorVersion" | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "apt-get install of postgresql-$script:MajorVersion failed (exit $LASTEXITCODE)." }
}

function Get-ServerAccount {
    # The account the server runs as: the caller, or when that is root the package's 'postgres' account.
    if (-not (Test-IsRoot)) { return $null }
    $accounts = [System.IO.File]::ReadAllLines('/etc/passwd') | ForEach-Object { $_.Split(':')[0] }
    foreach ($name in 'postgres', 'nobody') { if ($name -in $accounts) { return $name } }
    throw "PostgreSQL cannot run as root and neither a 'postgres' nor a 'nobody' account exists: create one (useradd --system postgres)."
}

function Invoke-Server {
    <#
    Runs one of PostgreSQL's programs as the server account (directly when the caller is not root) in the fixture's
    folder (the caller's may be one the account cannot enter), with optional standard input. Returns exit code and output.
    #>
    param(
        [Parameter(Mandatory)][string] $Program,
        [string[]] $Arguments = @(),
        [AllowNull()][string] $Account,
        [Parameter(Mandatory)][string] $WorkingDirectory,
        [string] $InputText,
        [hashtable] $Environment = @{},
        [int] $TimeoutSeconds = 120
    )
    $path = Join-Path $script:BinFolder $Program
    $startInfo = if ($Account) {
        $info = [System.Diagnostics.ProcessStartInfo]::new('setpriv')
        foreach ($a in "--reuid=$Account", "--regid=$Account", '--init-groups', '--', $path) { $info.ArgumentList.Add($a) }
        $info
    } else { [System.Diagnostics.ProcessStartInfo]::new($path) }
    foreach ($a in $Arguments) { $startInfo.ArgumentList.Add($a) }
    foreach ($name in $Environment.Keys) { $startInfo.Environment[$name] = $Environment[$name] }
    $startInfo.WorkingDirectory = $WorkingDirectory
    $startInfo.UseShellExecute = $false
    $startInfo.RedirectStandardInput = $true
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    $process = [System.Diagnostics.Process]::Start($startInfo)
    try {
        $stdout = $process.StandardOutput.ReadToEndAsync()
        $stderr = $process.StandardError.ReadToEndAsync()
        if ($InputText) { $process.StandardInput.Write($InputText) }
        $process.StandardInput.Close()
        if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
            $process.Kill($true)
            throw "$Program did not finish within $TimeoutSeconds s."
        }
        $process.WaitForExit()
        [pscustomobject]@{ ExitCode = $process.ExitCode; Output = ($stdout.Result + $stderr.Result).Trim() }
    } finally { $process.Dispose() }
}

function Invoke-Psql {
    # psql is no server program: it runs as the caller, who as root reaches the socket folder too.
    param([Parameter(Mandatory)] $Fixture, [Parameter(Mandatory)][string] $Sql, [switch] $Socket, [string] $User, [string] $Database)
    $hostName = if ($Socket) { $Fixture.SocketFolder } else { $Fixture.Host }
    $arguments = @('-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', $hostName, '-p', "$($Fixture.Port)",
        '-U', ($User ? $User : $Fixture.Username), '-d', ($Database ? $Database : $Fixture.Database))
    # The password goes through the environment, never the command line.
    $environment = @{ PGPASSWORD = $Fixture.Password; PGCONNECT_TIMEOUT = '5' }
    Invoke-Server -Program psql -Arguments $arguments -Account $null -WorkingDirectory $Fixture.WorkFolder -InputText $Sql -Environment $environment
}

function Get-TemplateKey {
    # The binary itself stands for its version (an upgrade replaces it), without starting it.
    $binary = Get-Item (Join-Path $script:BinFolder 'postgres')
    $recipe = "$($binary.Length)|$($binary.LastWriteTimeUtc.Ticks)|$($script:InitdbArguments -join ' ')|$($script:TemplateSql -join ';')"
    $hash = [System.Security.Cryptography.SHA256]::HashData([System.Text.Encoding]::UTF8.GetBytes($recipe))
    [Convert]::ToHexString($hash).Substring(0, 12).ToLowerInvariant()
}

function Get-TemplateCache {
    # The user's cache folder (not the shared temp folder, where another user could plant a data folder).
    $cacheHome = if ($env:XDG_CACHE_HOME) { $env:XDG_CACHE_HOME } elseif ($env:HOME) { Join-Path $env:HOME '.cache' } else { return $null }
    $folder = Join-Path $cacheHome 'objectmigration-tests'
    try { New-Item -ItemType Directory -Path $folder -Force -ErrorAction Stop | Out-Null; $folder } catch { $null }
}

function New-DataFolder {
    <#
    Makes $DataFolder a fresh cluster: a copy of the cached template (initdb takes ~2 s; a copy ~0.1 s), else initdb
    and the template's role and database, then kept as the template for the next time.
    #>
    param([string] $DataFolder, [AllowNull()][string] $Account, [string] $WorkFolder)
    $cache = Get-TemplateCache
    $template = if ($cache) { Join-Path $cache "postgres$script:MajorVersion-$(Get-TemplateKey)" }
    if ($template -and (Test-Path (Join-Path $template 'PG_VERSION'))) {
        # cp -a keeps the 0700 modes PostgreSQL insists on; a copy made as root is then given to the server account.
        & cp -a $template $DataFolder
        if ($LASTEXITCODE -ne 0) { throw "Copying the PostgreSQL template $template failed." }
        if ($Account) { & chown -R "$($Account):" $DataFolder; if ($LASTEXITCODE -ne 0) { throw "chown of $DataFolder failed." } }
        return
    }
    $initdb = Invoke-Server -Program initdb -Arguments (@('-D', $DataFolder) + $script:InitdbArguments) -Account $Account -WorkingDirectory $WorkFolder
    if ($initdb.ExitCode -ne 0) { throw "initdb failed (exit $($initdb.ExitCode)): $($initdb.Output)" }
    # Single-user mode: the role and the database exist before the server ever listens.
    $single = Invoke-Server -Program postgres -Arguments @('--single', '-D', $DataFolder, '-c', 'fsync=off', 'postgres') -Account $Account `
        -WorkingDirectory $WorkFolder -InputText (($script:TemplateSql -join "`n") + "`n")
    if ($single.ExitCode -ne 0 -or $single.Output -match '\bERROR:') { throw "Preparing the PostgreSQL template failed: $($single.Output)" }
    if (-not $template) { return }
    # Another process may make the same template at the same time: each copies under its own name, the first rename wins.
    $partial = "$template.$PID.$([guid]::NewGuid().ToString('n').Substring(0, 8))"
    & cp -a $DataFolder $partial
    try {
        if ($LASTEXITCODE -eq 0) { [System.IO.Directory]::Move($partial, $template) }
    } catch [System.IO.IOException] { Write-Verbose "template $template made by another process" }
    finally { if (Test-Path $partial) { Remove-Item -Recurse -Force $partial -ErrorAction SilentlyContinue } }
    # Templates of an earlier PostgreSQL build or recipe are no use any more (~35 MB each).
    Get-ChildItem $cache -Directory | Where-Object { $_.Name -match "^postgres$script:MajorVersion-[0-9a-f]{12}$" -and $_.FullName -ne $template } |
        Remove-Item -Recurse -Force -ErrorAction SilentlyContinue
}

function Read-PostmasterStatus([string] $DataFolder) {
    # postmaster.pid: line 1 the PID, line 8 the state ('starting', 'ready', 'stopping'), as pg_ctl -w reads it.
    $file = Join-Path $DataFolder 'postmaster.pid'
    try { $lines = [System.IO.File]::ReadAllLines($file) } catch { return $null }
    if ($lines.Count -lt 1 -or -not $lines[0].Trim()) { return $null }
    [pscustomobject]@{ Pid = [int]$lines[0].Trim(); Status = if ($lines.Count -ge 8) { $lines[7].Trim() } else { '' } }
}

function Start-PostgresFixture {
    <#
    .SYNOPSIS
        Starts PostgreSQL 15 on 127.0.0.1 for one test run; returns a fixture whose ConnectionString Npgsql takes.
    .DESCRIPTION
        Own data folder under the temp folder, a free port, fsync off, password logins over TCP only (scram-sha-256,
        a password made for this fixture), the unix socket in the data folder. Database 'objectmigration' belongs to
        the role 'objectmigration' (no superuser, may create databases); AdminConnectionString is the superuser's.
        Stop it with Stop-S3Fixture.
    #>
    [CmdletBinding()]
    param([string] $Name = 'postgres', [ValidateRange(10, 10000)][int] $MaxConnections = 100)
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    Install-Postgres
    $account = Get-ServerAccount
    $work = Join-Path ([System.IO.Path]::GetTempPath()) ("om-$Name-" + [guid]::NewGuid().ToString('n').Substring(0, 8))
    New-Item -ItemType Directory -Path $work | Out-Null
    $data = Join-Path $work 'data'
    $port = Get-FreeTcpPort
    $password = [System.Security.Cryptography.RandomNumberGenerator]::GetHexString(32, $true)
    $fixture = [pscustomobject]@{
        Kind = 'postgres'; Name = $Name; Version = $script:MajorVersion
        Host = '127.0.0.1'; Port = $port; Username = 'objectmigration'; Password = $password; Database = 'objectmigration'
        ConnectionString = "Host=127.0.0.1;Port=$port;Username=objectmigration;Password=$password;Database=objectmigration"
        AdminUsername = 'omadmin'
        AdminConnectionString = "Host=127.0.0.1;Port=$port;Username=omadmin;Password=$password;Database=postgres"
        ServerAccount = if ($account) { $account } else { [Environment]::UserName }
        WorkFolder = $work; DataFolder = $data; SocketFolder = $data; LogPath = (Join-Path $work 'postgres.log')
        # An immediate shutdown (SIGQUIT) ends the backends and releases shared memory; a SIGKILL would leave both.
        StopSignal = 'QUIT'; Pids = @()
    }
    try {
        # 0700 and the server account's: PostgreSQL refuses a data folder others can read.
        & chmod 700 $work
        if ($account) {
            & chown "$($account):" $work
            # Every folder above must let the account through (a TMPDIR under /root would not).
            for ($parent = Split-Path $work; $parent; $parent = Split-Path $parent) {
                if (-not ((Get-Item $parent).UnixFileMode -band [System.IO.UnixFileMode]::OtherExecute)) {
                    throw "The '$account' account that runs PostgreSQL cannot enter ${parent}: set TMPDIR to a folder others may enter, such as /tmp."
                }
            }
        }
        New-DataFolder -DataFolder $data -Account $account -WorkFolder $work
        Write-Verbose "PostgreSQL fixture: data folder ready at $($clock.ElapsedMilliseconds) ms"
        $settings = @(
            '', '# objectmigration test fixture'
            "listen_addresses = '127.0.0.1'", "port = $port", "unix_socket_directories = '$($data -replace "'", "''")'"
            # Nothing here needs to survive a crash of the machine.
            'fsync = off', 'synchronous_commit = off', 'full_page_writes = off'
            "max_connections = $MaxConnections"
        )
        Add-Content -Path (Join-Path $data 'postgresql.conf') -Value $settings
        # pg_ctl -W returns at once; the postmaster (detached, its output in the log) is waited for below.
        $started = Invoke-Server -Program pg_ctl -Arguments @('start', '-W', '-D', $data, '-l', $fixture.LogPath) -Account $account -WorkingDirectory $work
        if ($started.ExitCode -ne 0) { throw "pg_ctl start failed (exit $($started.ExitCode)): $($started.Output)" }
        Write-Verbose "PostgreSQL fixture: pg_ctl start returned at $($clock.ElapsedMilliseconds) ms"
        Wait-Until -What "PostgreSQL on port $port (log: $($fixture.LogPath))" -TimeoutSeconds 60 -Condition {
            $status = Read-PostmasterStatus $data
            if ($status -and $fixture.Pids.Count -eq 0) { $fixture.Pids = @($status.Pid) }
            $exited = $fixture.Pids.Count -gt 0 -and -not (Test-ProcessRunning $fixture.Pids[0])
            if ($exited -or (-not $status -and (Test-Path $fixture.LogPath) -and (Select-String -Path $fixture.LogPath -Pattern 'FATAL|PANIC' -Quiet))) {
                throw "PostgreSQL did not start: $((Get-Content $fixture.LogPath -Tail 5 -ErrorAction SilentlyContinue) -join ' | ')"
            }
            $status -and $status.Status -eq 'ready'
        }
        Write-Verbose "PostgreSQL fixture: server ready at $($clock.ElapsedMilliseconds) ms"
        # The passwords are set through the socket (trust, reachable only by the server account and root): until
        # then no role can log in over TCP. The same psql then does what the tests will do: a password login over
        # TCP and a query.
        $tcp = "host=127.0.0.1 port=$port user=objectmigration dbname=objectmigration"
        $check = Invoke-Psql -Fixture $fixture -Socket -User omadmin -Database postgres -Sql (
            "ALTER ROLE omadmin PASSWORD '$password';`nALTER ROLE objectmigration PASSWORD '$password';`n" +
            "\connect '$tcp'`nSELECT current_user || '@' || current_database();`n")
        if ($check.ExitCode -ne 0 -or $check.Output -ne 'objectmigration@objectmigration') {
            throw "PostgreSQL does not answer a password login over TCP: $($check.Output)"
        }
    } catch { Stop-S3Fixture $fixture; throw }
    Write-Verbose "PostgreSQL fixture: logged in over TCP at $($clock.ElapsedMilliseconds) ms"
    $fixture
}

# A fresh database of the fixture's role for one test (its own schema, nothing shared with other tests); returns the
# connection string to give as -StateStore or OBJECTMIGRATION_STATE. The fixture (a JSON copy is enough) must be running.
function New-PostgresTestDatabase {
    param([Parameter(Mandatory)] $Fixture, [string] $Prefix = 'om_test')
    $name = '{0}_{1}' -f $Prefix, [guid]::NewGuid().ToString('n').Substring(0, 12)
    $created = Invoke-Psql -Fixture $Fixture -Sql "CREATE DATABASE $name;"
    if ($created.ExitCode -ne 0) { throw "CREATE DATABASE $name failed on the PostgreSQL fixture: $($created.Output)" }
    "Host=$($Fixture.Host);Port=$($Fixture.Port);Username=$($Fixture.Username);Password=$($Fixture.Password);Database=$name"
}

# Stop-S3Fixture stops this fixture too; exported here so one import is enough.
Export-ModuleMember -Function Start-PostgresFixture, Stop-S3Fixture, Test-ProcessRunning, New-PostgresTestDatabase
