# The S3 endpoints that tests, the demo and the benchmarks run against, all on 127.0.0.1.
# Each Start-* function returns a fixture object; Stop-S3Fixture stops it by the PIDs it recorded
# (and only those), so it is safe to call from a finally block whatever happened.

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$script:FixtureRoot = $PSScriptRoot

function Get-FreeTcpPort {
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

function Wait-Until {
    param(
        [Parameter(Mandatory)][scriptblock] $Condition,
        [Parameter(Mandatory)][string] $What,
        [int] $TimeoutSeconds = 60
    )
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out after $TimeoutSeconds s waiting for $What." }
        Start-Sleep -Milliseconds 100
    }
}

function Test-HttpAnswers([string] $Url) {
    try {
        $client = [System.Net.Http.HttpClient]::new()
        $client.Timeout = [TimeSpan]::FromSeconds(2)
        try {
            $response = $client.GetAsync($Url).GetAwaiter().GetResult()
            return [int]$response.StatusCode -lt 500
        } finally { $client.Dispose() }
    } catch { return $false }
}

function Install-S3rver {
    # npm ci is idempotent and applies the committed patch (patch-package) after installing.
    if (-not (Get-Command npm -ErrorAction SilentlyContinue)) {
        throw 'npm is needed for the s3rver test endpoint: install Node.js 20 and npm (apt-get install nodejs npm).'
    }
    $marker = Join-Path $script:FixtureRoot 'node_modules/.objectmigration-installed'
    $lock = Join-Path $script:FixtureRoot 'package-lock.json'
    $patch = Join-Path $script:FixtureRoot 'patches/s3rver+3.7.1.patch'
    $stamp = (Get-FileHash $lock).Hash + (Get-FileHash $patch).Hash
    if ((Test-Path $marker) -and (Get-Content $marker -Raw).Trim() -eq $stamp) { return }
    Push-Location $script:FixtureRoot
    try {
        & npm ci --no-audit --no-fund --loglevel=error | Out-Host
        if ($LASTEXITCODE -ne 0) { throw "npm ci failed in $script:FixtureRoot (exit $LASTEXITCODE)." }
    } finally { Pop-Location }
    Set-Content -Path $marker -Value $stamp
}

function Start-S3rverFixture {
    <# Starts one s3rver on a free loopback port with an empty data folder. #>
    param([string] $Name = 's3rver')
    Install-S3rver
    $port = Get-FreeTcpPort
    $work = Join-Path ([System.IO.Path]::GetTempPath()) ("om-$Name-" + [guid]::NewGuid().ToString('n').Substring(0, 8))
    New-Item -ItemType Directory -Path (Join-Path $work 'data') -Force | Out-Null
    $startInfo = [System.Diagnostics.ProcessStartInfo]::new('node')
    foreach ($a in @((Join-Path $script:FixtureRoot 'node_modules/s3rver/bin/s3rver.js'),
            '--directory', (Join-Path $work 'data'), '--address', '127.0.0.1', '--port', "$port",
            '--silent', '--no-vhost-buckets')) { $startInfo.ArgumentList.Add($a) }
    # s3rver 3.7 on Node 20 fails continuation tokens with a 500 unless the legacy OpenSSL provider is on.
    $startInfo.Environment['NODE_OPTIONS'] = '--openssl-legacy-provider'
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    $startInfo.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($startInfo)
    $process.BeginOutputReadLine(); $process.BeginErrorReadLine()
    $fixture = [pscustomobject]@{
        Kind = 's3rver'; Name = $Name; Endpoint = "http://127.0.0.1:$port"
        AccessKey = 'S3RVER'; SecretKey = 'S3RVER'; Region = 'us-east-1'
        WorkFolder = $work; Pids = @($process.Id)
    }
    try {
        Wait-Until -What "s3rver '$Name' on port $port" -TimeoutSeconds 30 -Condition {
            if ($process.HasExited) { throw "s3rver '$Name' exited with code $($process.ExitCode)." }
            Test-HttpAnswers $fixture.Endpoint
        }
    } catch { Stop-S3Fixture $fixture; throw }
    $fixture
}

function Install-CephRgw {
    if ((Get-Command radosgw -ErrorAction SilentlyContinue) -and (Get-Command ceph-osd -ErrorAction SilentlyContinue)) { return }
    if (-not (Get-Command apt-get -ErrorAction SilentlyContinue)) {
        throw 'Ceph RADOS Gateway is needed for the real-S3 test suite: install ceph-mon, ceph-osd, radosgw and ceph-common.'
    }
    # As root apt-get runs directly; otherwise through sudo. ('& @()' is not a command, so the prefix is a name.)
    $apt = if ((& id -u) -eq '0') { @('apt-get') } else { @('sudo', 'apt-get') }
    $aptCommand, $aptPrefix = $apt
    Write-Host 'Installing Ceph RADOS Gateway from Debian packages (about a minute, once)...'
    & $aptCommand @aptPrefix update -qq | Out-Host
    $env:DEBIAN_FRONTEND = 'noninteractive'
    & $aptCommand @aptPrefix install -y -qq --no-install-recommends ceph-mon ceph-osd radosgw ceph-common | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "apt-get install of Ceph failed (exit $LASTEXITCODE)." }
}

function Invoke-Ceph {
    param([string] $Conf, [Parameter(ValueFromRemainingArguments)][string[]] $Arguments)
    # Some ceph CLI calls hang without a mgr: always bound them.
    $output = & timeout 20 ceph -c $Conf @Arguments 2>&1
    [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output | Out-String) }
}

function Start-CephGateways {
    # Starts the named RADOS gateways of a fixture and waits until each answers HTTP.
    param([Parameter(Mandatory)] $Fixture, [Parameter(Mandatory)][string[]] $Names)
    $work = $Fixture.WorkFolder
    foreach ($name in $Names) {
        & radosgw -c $Fixture.Conf -n "client.rgw.$name" *> $null
        Wait-Until -What "radosgw $name pid file" -TimeoutSeconds 30 -Condition { Test-Path (Join-Path $work "run/client.rgw.$name.pid") }
        $Fixture.Pids += Read-PidFile (Join-Path $work "run/client.rgw.$name.pid")
    }
    foreach ($endpoint in $Fixture.Endpoints) {
        Wait-Until -What "radosgw at $endpoint" -TimeoutSeconds 120 -Condition { Test-HttpAnswers $endpoint }
    }
}

function Start-CephRgwFixture {
    <#
    Starts a single-node Ceph cluster in memory (mon + memstore osd) with $Gateways RADOS gateways,
    each on its own free port, and one S3 user. Returns one fixture with Endpoints (one per gateway).
    #>
    param([int] $Gateways = 2, [long] $MemstoreBytes = 6GB)
    Install-CephRgw
    $work = Join-Path ([System.IO.Path]::GetTempPath()) ('om-ceph-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
    New-Item -ItemType Directory -Path $work -Force | Out-Null
    $fsid = [guid]::NewGuid().ToString()
    $monV2 = Get-FreeTcpPort; $monV1 = Get-FreeTcpPort
    $monAddr = "[v2:127.0.0.1:$($monV2),v1:127.0.0.1:$($monV1)]"
    $conf = Join-Path $work 'ceph.conf'
    $gatewayPorts = @(1..$Gateways | ForEach-Object { Get-FreeTcpPort })
    $lines = @(
        '[global]'
        "fsid = $fsid"
        "mon_host = $monAddr"
        'auth_cluster_required = none', 'auth_service_required = none', 'auth_client_required = none'
        # With auth none, the default secure messenger mode to the monitor fails (EACCES, then a long hang).
        'ms_mon_client_mode = crc secure', 'ms_client_mode = crc secure'
        'ms_mon_service_mode = crc secure', 'ms_mon_cluster_mode = crc secure'
        'osd_pool_default_size = 1', 'osd_pool_default_min_size = 1', 'mon_allow_pool_size_one = true'
        'osd_crush_chooseleaf_type = 0', 'osd_pool_default_pg_num = 8', 'osd_pool_default_pgp_num = 8'
        'osd_pool_default_pg_autoscale_mode = off', 'mon_max_pg_per_osd = 1000'
        'osd_objectstore = memstore', "memstore_device_bytes = $MemstoreBytes"
        "run_dir = $work/run", "admin_socket = $work/run/`$name.asok"
        "log_file = $work/log/`$name.log", "pid_file = $work/run/`$name.pid"
        "mon_data = $work/mon/`$cluster-`$id", "osd_data = $work/osd/`$cluster-`$id"
        'rgw_enable_usage_log = false', 'rgw_dns_name = 127.0.0.1'
        ''
    )
    $index = 0
    foreach ($port in $gatewayPorts) {
        $gatewayName = [char]([int][char]'a' + $index++)
        $lines += "[client.rgw.$gatewayName]", "rgw_frontends = beast endpoint=127.0.0.1:$port", ''
    }
    Set-Content -Path $conf -Value $lines
    foreach ($d in 'run', 'log', 'mon/ceph-a') { New-Item -ItemType Directory -Path (Join-Path $work $d) -Force | Out-Null }
    $fixture = [pscustomobject]@{
        Kind = 'ceph-rgw'; Name = 'ceph'; Endpoints = @($gatewayPorts | ForEach-Object { "http://127.0.0.1:$_" })
        Endpoint = "http://127.0.0.1:$($gatewayPorts[0])"
        AccessKey = 'OMTESTACCESSKEY'; SecretKey = 'om-test-' + [guid]::NewGuid().ToString('n'); Region = 'us-east-1'
        WorkFolder = $work; Conf = $conf; Pids = @()
    }
    try {
        $monmap = Join-Path $work 'monmap'
        & monmaptool --create --fsid $fsid --addv a $monAddr $monmap *> $null
        if ($LASTEXITCODE -ne 0) { throw 'monmaptool failed.' }
        & ceph-mon -c $conf --mkfs -i a --monmap $monmap *> (Join-Path $work 'log/mkfs-mon.out')
        if ($LASTEXITCODE -ne 0) { throw 'ceph-mon --mkfs failed; see ' + $work }
        & ceph-mon -c $conf -i a *> $null
        $fixture.Pids += Read-PidFile (Join-Path $work 'run/mon.a.pid')
        Wait-Until -What 'the Ceph monitor' -TimeoutSeconds 60 -Condition { (Invoke-Ceph $conf mon stat).ExitCode -eq 0 }

        $osdUuid = [guid]::NewGuid().ToString()
        $osdId = ((Invoke-Ceph $conf osd new $osdUuid).Output).Trim()
        New-Item -ItemType Directory -Path (Join-Path $work "osd/ceph-$osdId") -Force | Out-Null
        & ceph-osd -c $conf -i $osdId --mkfs --osd-uuid $osdUuid *> (Join-Path $work 'log/mkfs-osd.out')
        if ($LASTEXITCODE -ne 0) { throw 'ceph-osd --mkfs failed; see ' + $work }
        & ceph-osd -c $conf -i $osdId *> $null
        $fixture.Pids += Read-PidFile (Join-Path $work "run/osd.$osdId.pid")
        Wait-Until -What "osd.$osdId up" -TimeoutSeconds 60 -Condition { (Invoke-Ceph $conf osd dump).Output -match "osd\.$osdId up" }

        $gatewayNames = @(0..($gatewayPorts.Count - 1) | ForEach-Object { [string][char]([int][char]'a' + $_) })
        Start-CephGateways -Fixture $fixture -Names $gatewayNames
        $userOut = & timeout 60 radosgw-admin -c $conf -n client.admin user create --uid test --display-name test `
            --access-key $fixture.AccessKey --secret $fixture.SecretKey 2>&1
        if ($LASTEXITCODE -ne 0) { throw "radosgw-admin user create failed: $($userOut | Select-Object -First 3)" }
        # A storage class beyond STANDARD, as providers offer (Update's -SetStorageClass is tested against a server
        # that keeps it). The zone exists once a gateway has run; a gateway reads its placement when it starts.
        foreach ($scope in @(@('zonegroup', '--rgw-zonegroup', 'default'), @('zone', '--rgw-zone', 'default', '--data-pool', 'default.rgw.buckets.data'))) {
            $placementOut = & timeout 60 radosgw-admin -c $conf -n client.admin $scope[0] placement add @($scope | Select-Object -Skip 1) `
                --placement-id default-placement --storage-class STANDARD_IA 2>&1
            if ($LASTEXITCODE -ne 0) { throw "radosgw-admin $($scope[0]) placement add failed: $($placementOut | Select-Object -First 3)" }
        }
        foreach ($name in $gatewayNames) {
            $gatewayPid = Read-PidFile (Join-Path $work "run/client.rgw.$name.pid")
            Stop-Process -Id $gatewayPid -ErrorAction SilentlyContinue
            Wait-Until -What "radosgw $name to stop" -TimeoutSeconds 30 -Condition { -not (Get-Process -Id $gatewayPid -ErrorAction SilentlyContinue) }
            $fixture.Pids = @($fixture.Pids | Where-Object { $_ -ne $gatewayPid })
            Remove-Item (Join-Path $work "run/client.rgw.$name.pid") -ErrorAction SilentlyContinue
        }
        Start-CephGateways -Fixture $fixture -Names $gatewayNames
    } catch { Stop-S3Fixture $fixture; throw }
    $fixture
}

function Clear-CephGarbage {
    <#
    Frees what deleted objects still hold now rather than after RGW's garbage-collection delay (hours), so a
    memstore sized for one workload is enough for many runs that each purge what they wrote.
    #>
    param([Parameter(Mandatory)] $Fixture)
    $output = & timeout 300 radosgw-admin -c $Fixture.Conf -n client.admin gc process --include-all 2>&1
    if ($LASTEXITCODE -ne 0) { throw "radosgw-admin gc process failed: $($output | Select-Object -First 3)" }
}

function Read-PidFile([string] $Path) {
    Wait-Until -What "pid file $Path" -TimeoutSeconds 30 -Condition { (Test-Path $Path) -and (Get-Content $Path -Raw) }
    [int](Get-Content $Path -Raw).Trim()
}

function Test-ProcessRunning([int] $ProcessId) {
    # A zombie counts as stopped: a daemon's parent is an init that may reap it a second or more later.
    if (-not (Test-Path '/proc/self/stat')) { return [bool](Get-Process -Id $ProcessId -ErrorAction SilentlyContinue) }
    try { $stat = [System.IO.File]::ReadAllText("/proc/$ProcessId/stat") } catch { return $false }
    # The state follows the command name, which is in parentheses and may itself hold ') '.
    $stat.Substring($stat.LastIndexOf(')') + 2, 1) -notin 'Z', 'X'
}

function Stop-S3Fixture {
    param([Parameter(ValueFromPipeline)] $Fixture)
    process {
        if (-not $Fixture) { return }
        # Gateways first, the monitor last, each by the PID this fixture recorded.
        $pids = @($Fixture.Pids)
        [array]::Reverse($pids)
        # A fixture that names a signal is asked with it first (PostgreSQL: SIGQUIT, an immediate shutdown that
        # releases its shared memory, which a SIGKILL would leave behind); a few seconds, then the kill below.
        $signal = if ($Fixture.PSObject.Properties['StopSignal']) { $Fixture.StopSignal }
        if ($signal) {
            $kill = (Get-Command kill -CommandType Application | Select-Object -First 1).Source
            foreach ($processId in $pids) { if (Test-ProcessRunning $processId) { & $kill -s $signal $processId 2>$null } }
            try {
                Wait-Until -What "$($Fixture.Kind) to stop" -TimeoutSeconds 10 -Condition { -not @($pids | Where-Object { Test-ProcessRunning $_ }) }
            } catch { Write-Verbose "$($Fixture.Kind) did not stop on SIG$($signal): killed" }
        }
        foreach ($processId in $pids) {
            if (-not (Test-ProcessRunning $processId)) { continue }
            $process = Get-Process -Id $processId -ErrorAction SilentlyContinue
            if ($process) {
                try { $process.Kill($true) } catch { Write-Verbose "pid $processId already gone" }
                try { Wait-Until -What "pid $processId to end" -TimeoutSeconds 10 -Condition { -not (Test-ProcessRunning $processId) } } catch { Write-Verbose $_ }
            }
        }
        if ($Fixture.WorkFolder -and (Test-Path $Fixture.WorkFolder)) {
            Remove-Item -Recurse -Force $Fixture.WorkFolder -ErrorAction SilentlyContinue
        }
    }
}

Export-ModuleMember -Function Start-S3rverFixture, Start-CephRgwFixture, Clear-CephGarbage, Stop-S3Fixture, Get-FreeTcpPort, Wait-Until, Test-ProcessRunning
