# Dot-sourced by Crash.Tests.ps1 and by tests/Soak/Invoke-KillSoak.ps1 (build.ps1 -Task Soak), in a process that has
# imported the module: runner processes to kill with SIGKILL, looks into the state database (opened as a fresh process
# opens it, which recovers the WAL), a synthetic S3 listing, and the checks that follow a kill. Checks return the problems they find as sentences; none means all is well.

# ---- Processes ----

# A pwsh of its own with the module and the state folder, its output collected as it runs: a runner to kill, a poller.
function Start-ModuleProcess {
    param([Parameter(Mandatory)][string] $Script, [Parameter(Mandatory)][string] $StateHome, [Parameter(Mandatory)][string] $ModulePath,
        [hashtable] $Environment = @{})
    # The same PowerShell that runs this: under 'dotnet pwsh' that is dotnet plus pwsh.dll.
    $hostPath = [Environment]::ProcessPath
    $info = [System.Diagnostics.ProcessStartInfo]::new($hostPath)
    if ([System.IO.Path]::GetFileNameWithoutExtension($hostPath) -eq 'dotnet') { $info.ArgumentList.Add([Environment]::GetCommandLineArgs()[0]) }
    $wrapped = "`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'; Import-Module '$ModulePath'; $Script"
    foreach ($argument in '-NoProfile', '-NonInteractive', '-Command', $wrapped) { $info.ArgumentList.Add($argument) }
    $info.Environment['OBJECTMIGRATION_HOME'] = $StateHome
    foreach ($name in $Environment.Keys) { $info.Environment[$name] = [string]$Environment[$name] }
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $process = [System.Diagnostics.Process]::Start($info)
    [pscustomobject]@{ Process = $process; Id = $process.Id; Output = $process.StandardOutput.ReadToEndAsync(); Errors = $process.StandardError.ReadToEndAsync() }
}

# SIGKILL (no cleanup runs in it), then what it wrote until then.
function Stop-ModuleProcess($Started) {
    if (-not $Started.Process.HasExited) { $Started.Process.Kill() }
    $Started.Process.WaitForExit()
    Get-ModuleProcessResult $Started
}

function Wait-ModuleProcess($Started, [int] $TimeoutSeconds = 300) {
    if (-not $Started.Process.WaitForExit($TimeoutSeconds * 1000)) {
        $null = Stop-ModuleProcess $Started
        throw "The process $($Started.Id) did not end within $TimeoutSeconds s; it was killed."
    }
    $Started.Process.WaitForExit()
    Get-ModuleProcessResult $Started
}

function Get-ModuleProcessResult($Started) {
    [pscustomobject]@{
        Id = $Started.Id; ExitCode = $Started.Process.ExitCode
        Output = $Started.Output.GetAwaiter().GetResult(); Errors = $Started.Errors.GetAwaiter().GetResult()
    }
}

# Polls until the script block returns something truthy (returned), or throws after the timeout.
function Wait-Condition([scriptblock] $Condition, [double] $TimeoutSeconds = 30, [string] $What = 'the condition', [int] $IntervalMilliseconds = 50) {
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ($true) {
        $value = & $Condition
        if ($value) { return $value }
        if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out after $TimeoutSeconds s waiting for $What." }
        Start-Sleep -Milliseconds $IntervalMilliseconds
    }
}

# ---- The state database, read as a fresh process would open it ----

# Microsoft.Data.Sqlite as the module loaded it (in its private load context): the same native SQLite the runner used.
function Get-SqliteConnectionType {
    $null = Get-MigrationJob -First 1
    $assembly = [System.AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'Microsoft.Data.Sqlite' } | Select-Object -First 1
    if (-not $assembly) { throw 'Microsoft.Data.Sqlite is not loaded: import the ObjectMigration module first.' }
    $assembly.GetType('Microsoft.Data.Sqlite.SqliteConnection', $true)
}

# Rows as objects. Not pooled, so nothing keeps the file open afterwards (a folder can be unmounted).
function Invoke-StateQuery {
    param([Parameter(Mandatory)][string] $Database, [Parameter(Mandatory)][string] $Sql, [hashtable] $Parameters = @{})
    $connection = [Activator]::CreateInstance((Get-SqliteConnectionType), @("Data Source=$Database;Pooling=False;Default Timeout=30"))
    try {
        $connection.Open()
        $command = $connection.CreateCommand()
        $command.CommandText = $Sql
        foreach ($name in $Parameters.Keys) { $null = $command.Parameters.AddWithValue($name, $Parameters[$name]) }
        $reader = $command.ExecuteReader()
        try {
            while ($reader.Read()) {
                $row = [ordered]@{}
                for ($i = 0; $i -lt $reader.FieldCount; $i++) { $row[$reader.GetName($i)] = if ($reader.IsDBNull($i)) { $null } else { $reader.GetValue($i) } }
                [pscustomobject]$row
            }
        } finally { $reader.Dispose() }
    } finally { $connection.Dispose() }
}

# SQLite's own check, and the job's counters against its rows: results and counters are written in one transaction,
# so a kill at any moment must leave them agreeing.
function Test-StateDatabase([string] $Database, [guid] $JobId) {
    $integrity = @(Invoke-StateQuery $Database 'PRAGMA integrity_check' | ForEach-Object { $_.integrity_check })
    if ($integrity -join '' -ne 'ok') { "integrity_check: $($integrity -join '; ')" }
    if ($JobId -eq [guid]::Empty) { return }
    $row = Invoke-StateQuery $Database @'
SELECT j.transferred_objects AS t, j.skipped_objects AS s, j.failed_objects AS f, j.objects_found AS found,
       (SELECT count(*) FROM objects o WHERE o.job_seq = j.seq AND o.outcome = 1) AS rt,
       (SELECT count(*) FROM objects o WHERE o.job_seq = j.seq AND o.outcome = 2) AS rs,
       (SELECT count(*) FROM objects o WHERE o.job_seq = j.seq AND o.outcome = 3) AS rf,
       (SELECT count(*) FROM objects o WHERE o.job_seq = j.seq AND o.target_only = 0) AS rows_found
FROM jobs j WHERE j.id = $id
'@ -Parameters @{ '$id' = "$JobId" }
    if (-not $row) { "The job $JobId is not in the database."; return }
    if ($row.t -ne $row.rt -or $row.s -ne $row.rs -or $row.f -ne $row.rf) {
        "Counters transferred/skipped/failed $($row.t)/$($row.s)/$($row.f), rows $($row.rt)/$($row.rs)/$($row.rf)."
    }
    if ($row.found -ne $row.rows_found) { "objects_found $($row.found), rows listed $($row.rows_found)." }
}

# What a job's runner has recorded, read straight from the database (a cheap read that WAL lets run beside the
# runner's writes, so it can be polled every few milliseconds).
function Read-JobRow([string] $Database, [string] $Name) {
    # The listing's checkpoint is its range's (listing_ranges) since the listing is split in ranges; a job listed by an
    # older version keeps its token on the job's row.
    Invoke-StateQuery $Database 'SELECT j.id, j.state, j.runner, j.control, j.listing_done AS listing,
        COALESCE(j.listing_token, (SELECT MAX(r.listed_through) FROM listing_ranges r WHERE r.job_seq = j.seq)) AS token,
        j.transferred_bytes AS bytes, (SELECT count(*) FROM uploads u WHERE u.job_seq = j.seq) AS uploads,
        (SELECT count(*) FROM parts p WHERE p.job_seq = j.seq) AS parts,
        (SELECT count(*) FROM objects o WHERE o.job_seq = j.seq AND o.outcome <> 0) AS done,
        (SELECT count(*) FROM objects o WHERE o.job_seq = j.seq AND o.outcome = 0 AND o.size >= 5242880) AS large
        FROM jobs j WHERE j.name = $name' -Parameters @{ '$name' = $Name }
}

# Trailing WAL frames of the current generation after the last commit frame: a transaction whose write the kill tore.
# (Layout: sqlite.org/fileformat2.html#walformat; a 32-byte header, then frames of a 24-byte header and a page.)
function Get-TornWalFrames([string] $Database) {
    $wal = "$Database-wal"
    if (-not (Test-Path $wal)) { return 0 }
    $bytes = [System.IO.File]::ReadAllBytes($wal)
    if ($bytes.Length -lt 32) { return 0 }
    $read = { param($at) ([long]$bytes[$at] -shl 24) -bor ([long]$bytes[$at + 1] -shl 16) -bor ([long]$bytes[$at + 2] -shl 8) -bor [long]$bytes[$at + 3] }
    $pageSize = & $read 8
    $salt1, $salt2 = (& $read 16), (& $read 20)
    $frames, $sinceCommit = 0, 0
    for ($at = 32; $at + 24 + $pageSize -le $bytes.Length; $at += 24 + $pageSize) {
        if ((& $read ($at + 8)) -ne $salt1 -or (& $read ($at + 12)) -ne $salt2) { break }
        $frames++
        $sinceCommit = if ((& $read ($at + 4)) -ne 0) { 0 } else { $sinceCommit + 1 }
    }
    # A frame cut short by the kill also counts as torn.
    if ($at -lt $bytes.Length -and $bytes.Length - $at -ge 24 -and (& $read ($at + 8)) -eq $salt1) { $sinceCommit++ }
    $sinceCommit
}

# ---- Test data ----

# Small objects (many result flushes) and large ones (multipart at 5 MiB parts), keys in one order with the large ones
# spread among the small, each remembered by its MD5.
function New-CrashSource {
    param([Parameter(Mandatory)] $Client, [int] $SmallObjects = 400, [int[]] $LargeMegabytes = @(12, 17), [int] $Seed = 19)
    $bucket = New-TestBucket $Client -Prefix 'om-crash'
    $random = [System.Random]::new($Seed)
    $objects = [ordered]@{}
    $md5 = [System.Security.Cryptography.MD5]::Create()
    $pending = [System.Collections.Generic.List[System.Threading.Tasks.Task]]::new()
    $put = {
        param([string] $Key, [byte[]] $Content)
        $request = [Amazon.S3.Model.PutObjectRequest]::new()
        $request.BucketName = $bucket; $request.Key = $Key; $request.UseChunkEncoding = $false
        $request.InputStream = [System.IO.MemoryStream]::new($Content)
        $pending.Add($Client.PutObjectAsync($request))
        $objects[$Key] = [pscustomobject]@{ Size = $Content.Length; Md5 = [Convert]::ToHexString($md5.ComputeHash($Content)) }
        if ($pending.Count -ge 32) { [System.Threading.Tasks.Task]::WaitAll($pending.ToArray()); $pending.Clear() }
    }
    for ($i = 0; $i -lt $SmallObjects; $i++) {
        $content = [byte[]]::new($random.Next(1, 8192))
        $random.NextBytes($content)
        & $put ('data/{0:d5}.bin' -f $i) $content
    }
    for ($i = 0; $i -lt $LargeMegabytes.Count; $i++) {
        $content = [byte[]]::new($LargeMegabytes[$i] * 1MB + $random.Next(0, 1024))
        $random.NextBytes($content)
        # Between the small keys, so the scheduler reaches them among small objects.
        & $put ('data/{0:d5}.large' -f [int](($i + 0.5) * $SmallObjects / $LargeMegabytes.Count)) $content
    }
    [System.Threading.Tasks.Task]::WaitAll($pending.ToArray())
    [pscustomobject]@{ Bucket = $bucket; Objects = $objects; Bytes = ($objects.Values | Measure-Object Size -Sum).Sum }
}

function New-VersionedBucket($Client) {
    $bucket = New-TestBucket $Client -Prefix 'om-crash'
    $request = [Amazon.S3.Model.PutBucketVersioningRequest]::new()
    $request.BucketName = $bucket
    $request.VersioningConfig = [Amazon.S3.Model.S3BucketVersioningConfig]@{ Status = 'Enabled' }
    $null = $Client.PutBucketVersioningAsync($request).GetAwaiter().GetResult()
    $bucket
}

function Get-OpenUploads($Client, [string] $Bucket) {
    $request = [Amazon.S3.Model.ListMultipartUploadsRequest]::new()
    $request.BucketName = $Bucket
    do {
        $page = $Client.ListMultipartUploadsAsync($request).GetAwaiter().GetResult()
        foreach ($upload in @($page.MultipartUploads)) { if ($upload) { $upload } }
        $request.KeyMarker, $request.UploadIdMarker = $page.NextKeyMarker, $page.NextUploadIdMarker
    } while ($page.IsTruncated)
}

function Get-ObjectVersions($Client, [string] $Bucket) {
    $request = [Amazon.S3.Model.ListVersionsRequest]::new()
    $request.BucketName = $Bucket
    do {
        $page = $Client.ListVersionsAsync($request).GetAwaiter().GetResult()
        foreach ($version in @($page.Versions)) { if ($version) { $version } }
        $request.KeyMarker, $request.VersionIdMarker = $page.NextKeyMarker, $page.NextVersionIdMarker
    } while ($page.IsTruncated)
}

# The MD5 of each object's bytes as the target serves them, read 16 at a time.
function Get-TargetDigests($Client, [string] $Bucket, [string[]] $Keys) {
    $digests = @{}
    for ($at = 0; $at -lt $Keys.Count; $at += 16) {
        $batch = @($Keys[$at..([Math]::Min($at + 15, $Keys.Count - 1))])
        $tasks = @($batch | ForEach-Object { $Client.GetObjectAsync($Bucket, $_) })
        for ($i = 0; $i -lt $batch.Count; $i++) {
            $response = $tasks[$i].GetAwaiter().GetResult()
            try {
                $md5 = [System.Security.Cryptography.MD5]::Create()
                $digests[$batch[$i]] = [Convert]::ToHexString($md5.ComputeHash($response.ResponseStream))
            } finally { $response.Dispose() }
        }
    }
    $digests
}

# ---- The kill soak ----

<#
Runs one Migrate job to completion through many runner processes, each killed with SIGKILL at a point chosen with a
seeded random generator: during the source listing, with a multipart upload open, after a result flush, or while a run
settles after Suspend-MigrationJob. After each kill it checks the database and resumes from a fresh process; at the end
every object must be on the target once and byte-identical, no multipart upload open, counters, report and log agreeing.
#>
function Invoke-KillSoak {
    param(
        [Parameter(Mandatory)] $SourceClient, [Parameter(Mandatory)] $TargetClient,
        [Parameter(Mandatory)][string] $SourceConnector, [Parameter(Mandatory)][string] $TargetConnector,
        [Parameter(Mandatory)][string] $ModulePath, [string] $StateHome = $env:OBJECTMIGRATION_HOME,
        [int] $Kills = 10, [int] $Seed = 19, [int] $SmallObjects = 400, [int[]] $LargeMegabytes = @(12, 17),
        [long] $MaxBytesPerSecond = 4MB, [int] $Concurrency = 4, [int] $ListPageSize = 10,
        [scriptblock] $Say = { param($Message) Write-Host $Message })
    $random = [System.Random]::new($Seed)
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    $database = Join-Path $StateHome 'state.db'
    $environment = @{ OBJECTMIGRATION_STALE_SECONDS = '2'; OBJECTMIGRATION_LIST_PAGE_SIZE = "$ListPageSize" }
    $source = New-CrashSource -Client $SourceClient -SmallObjects $SmallObjects -LargeMegabytes $LargeMegabytes -Seed $Seed
    $target = New-VersionedBucket $TargetClient
    & $Say ("Seeded {0} objects ({1:N1} MiB) in {2}; target {3} (versioned)." -f $source.Objects.Count, ($source.Bytes / 1MB), $source.Bucket, $target)
    $name = "crash-$($source.Bucket)"
    $definition = "-Name '$name' -SourceConnector '$SourceConnector' -SourceBucket '$($source.Bucket)' -TargetConnector '$TargetConnector' " +
        "-TargetBucket '$target' -MultipartThreshold 5MB -PartSize 5MB -MaxBytesPerSecond $MaxBytesPerSecond -Concurrency $Concurrency"
    $problems = [System.Collections.Generic.List[string]]::new()
    $records = [System.Collections.Generic.List[object]]::new()
    $outputs = [System.Collections.Generic.List[object]]::new()
    $job = $null
    $state = { Read-JobRow $database $name }
    $plan = 'Listing', 'Multipart', 'Flush', 'Settle'
    # Suspend-MigrationJob returns once the job has settled, so it runs beside the soak, in a runspace of its own with
    # the module loaded: the kill can then land between the request and the settled state.
    $controlSession = [initialsessionstate]::CreateDefault2()
    $controlSession.ImportPSModule($ModulePath)
    $controlRunspace = [runspacefactory]::CreateRunspace($controlSession)
    $controlRunspace.Open()

    # Only a SIGKILL that found the runner alive counts: one that came after its run had ended (a pause settled and the
    # process exited) is recorded as missed, and another run is killed in its place.
    try {
        $killed = 0
        for ($n = 1; $killed -lt $Kills -and $n -le 2 * $Kills; $n++) {
            $kind = $plan[$killed % $plan.Count]
            $command = if ($job) { "`$null = Resume-MigrationJob -Id $($job.Id) -Wait" } else { "`$null = New-MigrationJob $definition -Wait" }
            $runner = Start-ModuleProcess -Script $command -StateHome $StateHome -ModulePath $ModulePath -Environment $environment
            $record = [ordered]@{ Kill = $n; Kind = $kind; DelayMs = 0; Runner = $runner.Id; Killed = $false; ListingDone = $null; OpenUploads = $null; PartsKept = $null; Done = $null; TornFrames = 0; After = $null }
            $alive = { if ($runner.Process.HasExited) { throw "Runner $($runner.Id) ended by itself before kill $n (exit $($runner.Process.ExitCode)): $($runner.Errors.GetAwaiter().GetResult())" } }
            $suspend = $null
            try {
                # This runner holds the job: Running under a runner id that names its process.
                $now = Wait-Condition -TimeoutSeconds 90 -IntervalMilliseconds 10 -What "runner $($runner.Id) to run the job" -Condition {
                    & $alive
                    & $state | Where-Object { $_.state -eq 'Running' -and $_.runner -like "*:$($runner.Id)@*" }
                }
                if (-not $job) { $job = Get-MigrationJob -Id $now.id }
                if ($kind -eq 'Listing' -and $now.listing -ne 0) { $kind = 'Early' }
                # Paced so that the job outlives every kill: a run that would copy for a while (Multipart, Flush) is killed
                # early instead once the job is ahead of its share of 85 % of the bytes.
                $paced = ($kind -in 'Multipart', 'Flush') -and ($now.bytes -gt 0.85 * $source.Bytes * ($killed + 1) / $Kills)
                if ($paced) { $kind = 'Early' }
                if ($kind -eq 'Multipart' -and $now.listing -ne 0 -and $now.large -eq 0) { $kind = 'Flush' }
                switch ($kind) {
                    'Listing' {
                        # A page of the source listing saved and more to come: the checkpoint is mid-way.
                        $seen = Wait-Condition -TimeoutSeconds 30 -IntervalMilliseconds 10 -What 'the source listing under way' -Condition {
                            & $alive
                            & $state | Where-Object { $_.listing -ne 0 -or $null -ne $_.token }
                        }
                        if ($seen.listing -ne 0) { $kind = 'Early' }
                        $record.DelayMs = $random.Next(0, 150)
                    }
                    'Early' { $record.DelayMs = $random.Next(0, $(if ($paced) { 300 } else { 1000 })) }
                    'Multipart' {
                        # An upload recorded in the store, so parts are on their way; killed some parts later.
                        $null = Wait-Condition -TimeoutSeconds 60 -What 'an open multipart upload' -Condition { & $alive; (& $state).uploads -gt 0 }
                        $record.DelayMs = $random.Next(200, 3000)
                    }
                    'Flush' {
                        # Results are flushed every half second: killed at a random moment of that cycle after one was seen.
                        $before = (& $state).done
                        $null = Wait-Condition -TimeoutSeconds 60 -IntervalMilliseconds 20 -What 'a result flush' -Condition { & $alive; (& $state).done -gt $before }
                        $record.DelayMs = $random.Next(0, 500)
                    }
                    'Settle' {
                        # A pause makes the run cancel its work and settle (flush, rates, log, state): killed on the way. The
                        # run looks for requests every 100 ms and settles within a few hundred: the kill comes within 300 ms
                        # of the request (before the run saw it, while it settles, or just after).
                        $before = (& $state).done
                        $null = Wait-Condition -TimeoutSeconds 60 -IntervalMilliseconds 20 -What 'work under way' -Condition { & $alive; (& $state).done -gt $before }
                        $suspend = [powershell]::Create()
                        $suspend.Runspace = $controlRunspace
                        $null = $suspend.AddCommand('Suspend-MigrationJob').AddParameter('Id', $job.Id).AddParameter('ErrorAction', 'SilentlyContinue')
                        $null = $suspend.BeginInvoke()
                        $null = Wait-Condition -TimeoutSeconds 30 -IntervalMilliseconds 5 -What 'the pause request' -Condition {
                            & $state | Where-Object { $_.control -ne 0 -or $_.state -ne 'Running' }
                        }
                        $record.DelayMs = $random.Next(0, 300)
                    }
                }
                if ($record.DelayMs -gt 0) { Start-Sleep -Milliseconds $record.DelayMs }
            } finally {
                # The Suspend-MigrationJob beside the soak is stopped before the kill: waiting on, it would read the job after
                # the kill and mark it Interrupted, a write before the WAL's torn frames are counted below.
                if ($suspend) {
                    $suspend.Stop()
                    $suspend.Dispose()
                }
                $record.Killed = -not $runner.Process.HasExited
                $outputs.Add((Stop-ModuleProcess $runner))
            }
            if ($record.Killed) { $killed++ }
            # Read before anything opens the database again: the first connection recovers the WAL.
            $record.TornFrames = Get-TornWalFrames $database
            $after = & $state
            $record.ListingDone, $record.OpenUploads, $record.PartsKept, $record.Done = $after.listing, $after.uploads, $after.parts, $after.done
            $record.Kind = $kind
            # The runner's process is gone: the job reads Interrupted at once (or Paused, if its settle finished first).
            $settled = Wait-Condition -TimeoutSeconds 15 -What "the job to read Interrupted after kill $n" -Condition {
                Get-MigrationJob -Id $job.Id | Where-Object State -In 'Interrupted', 'Paused', 'Completed'
            }
            $record.After = "$($settled.State)"
            foreach ($problem in Test-StateDatabase $database $job.Id) { $problems.Add("After kill $n ($kind): $problem") }
            $records.Add([pscustomobject]$record)
            & $Say ("[{8,5:N1} s] Kill {0,2}: {1,-9} +{2,4} ms  listing {3}, uploads open {4} ({9} parts kept), objects done {5,5}, torn WAL frames {6}, then {7}{10}" -f
                $n, $kind, $record.DelayMs, $(if ($record.ListingDone) { 'done' } else { 'open' }), $record.OpenUploads, $record.Done, $record.TornFrames, $record.After,
                $clock.Elapsed.TotalSeconds, $record.PartsKept, $(if ($record.Killed) { '' } else { ' (missed: the run had ended)' }))
            if ($settled.State -eq 'Completed') { $problems.Add("The job completed before kill $n could land: give it more to copy (objects, sizes) or less bandwidth."); break }
        }
    }
    finally { $controlRunspace.Dispose() }
    if ($killed -lt $Kills) { $problems.Add("Only $killed of $Kills kills found a runner alive.") }

    # The last run, from a fresh process, unkilled.
    $final = Start-ModuleProcess -Script "(Resume-MigrationJob -Id $($job.Id) -Wait).State" -StateHome $StateHome -ModulePath $ModulePath -Environment $environment
    $last = Wait-ModuleProcess $final -TimeoutSeconds 600
    $outputs.Add($last)
    & $Say ("[{0,5:N1} s] The final run ended {1}." -f $clock.Elapsed.TotalSeconds, $last.Output.Trim())
    if ($last.Output.Trim() -ne 'Completed') { $problems.Add("The final resume ended '$($last.Output.Trim())' (exit $($last.ExitCode)): $($last.Errors)") }

    $verified = Test-KillSoakResult -Job $job -Source $source -TargetClient $TargetClient -TargetBucket $target -Database $database -StateHome $StateHome -Outputs $outputs
    foreach ($problem in $verified.Problems) { $problems.Add($problem) }
    [pscustomobject]@{
        JobId = $job.Id; Kills = $records; KillsSurvived = @($records | Where-Object { $_.Killed -and $_.After -in 'Interrupted', 'Paused' }).Count
        Missed = @($records | Where-Object { -not $_.Killed }).Count
        Objects = $source.Objects.Count; Bytes = $source.Bytes; ObjectsChecked = $verified.ObjectsChecked; ExtraVersions = $verified.ExtraVersions
        Runs = $outputs.Count; Problems = $problems
    }
}

# Everything on the target once and intact, nothing left open, and the job's own account agreeing with it.
function Test-KillSoakResult($Job, $Source, $TargetClient, [string] $TargetBucket, [string] $Database, [string] $StateHome, $Outputs) {
    $problems = [System.Collections.Generic.List[string]]::new()
    $keys = @($Source.Objects.Keys)
    $versions = @(Get-ObjectVersions $TargetClient $TargetBucket)
    $byKey = $versions | Group-Object Key -AsHashTable -AsString
    $missing = @($keys | Where-Object { -not $byKey -or -not $byKey.ContainsKey($_) })
    $extraKeys = @($byKey.Keys | Where-Object { -not $Source.Objects.Contains($_) })
    if ($missing) { $problems.Add("$($missing.Count) objects missing on the target, e.g. $($missing[0]).") }
    if ($extraKeys) { $problems.Add("$($extraKeys.Count) keys on the target that the source lacks, e.g. $($extraKeys[0]).") }
    if (@($versions | Where-Object IsDeleteMarker)) { $problems.Add('Delete markers on the target.') }
    # A version more than one per key is an object written again after a kill lost its recorded result: the latest
    # version must still be whole; the count is reported.
    $extraVersions = $versions.Count - @($byKey.Keys).Count
    $digests = Get-TargetDigests $TargetClient $TargetBucket ($keys | Where-Object { $byKey -and $byKey.ContainsKey($_) })
    $damaged = @($keys | Where-Object { $digests.ContainsKey($_) -and $digests[$_] -ne $Source.Objects[$_].Md5 })
    if ($damaged) { $problems.Add("$($damaged.Count) objects differ from the source, e.g. $($damaged[0]).") }
    $open = @(Get-OpenUploads $TargetClient $TargetBucket)
    if ($open) { $problems.Add("$($open.Count) multipart uploads left open on the target: $(($open | ForEach-Object Key) -join ', ').") }
    $stored = Invoke-StateQuery $Database 'SELECT (SELECT count(*) FROM uploads u JOIN jobs j ON u.job_seq = j.seq WHERE j.id = $id) AS uploads,
        (SELECT count(*) FROM parts p JOIN jobs j ON p.job_seq = j.seq WHERE j.id = $id) AS parts' -Parameters @{ '$id' = "$($Job.Id)" }
    if ($stored.uploads -or $stored.parts) { $problems.Add("The store still holds $($stored.uploads) uploads and $($stored.parts) parts of the finished job.") }
    foreach ($problem in Test-StateDatabase $Database $Job.Id) { $problems.Add("Final: $problem") }

    $progress = Get-MigrationJobProgress -Id $Job.Id
    if ($progress.Objects -ne $keys.Count) { $problems.Add("Progress counts $($progress.Objects) objects, the source holds $($keys.Count).") }
    if ($progress.TransferredObjects + $progress.SkippedObjects + $progress.FailedObjects -ne $progress.Objects) {
        $problems.Add("Objects $($progress.Objects) <> transferred $($progress.TransferredObjects) + skipped $($progress.SkippedObjects) + failed $($progress.FailedObjects).")
    }
    if ($progress.FailedObjects -ne 0 -or $progress.PendingObjects -ne 0) { $problems.Add("$($progress.FailedObjects) failed and $($progress.PendingObjects) pending objects.") }
    $report = Join-Path $StateHome "crash-report-$($Job.Id).csv"
    $null = Export-MigrationJobReport -Id $Job.Id -Path $report
    $rows = @(Import-Csv $report)
    $rowKeys = $rows | Group-Object Key
    if ($rows.Count -ne $keys.Count -or @($rowKeys | Where-Object Count -gt 1)) { $problems.Add("The report has $($rows.Count) rows for $($keys.Count) objects.") }
    $outcomes = @($rows | Where-Object Outcome -NotIn 'Transferred', 'Skipped')
    if ($outcomes) { $problems.Add("Report rows neither transferred nor skipped: $(($outcomes | Select-Object -First 3 | ForEach-Object { "$($_.Key): $($_.Outcome)" }) -join ', ').") }
    $log = @(Get-MigrationJobLog -Id $Job.Id)
    $count = { param($Type) @($log | Where-Object { "$($_.Type)" -eq $Type }).Count }
    if ((& $count 'MigrationStart') -ne 1) { $problems.Add("The log has $(& $count 'MigrationStart') MigrationStart entries.") }
    if ((& $count 'MigrationComplete') -ne 1) { $problems.Add("The log has $(& $count 'MigrationComplete') MigrationComplete entries.") }
    $errors = @($log | Where-Object { "$($_.Type)" -in 'MigrationError', 'ImportErrorRetryExhaustion', 'MigrationErrorFailedContinuation' })
    if ($errors) { $problems.Add("Error entries in the log: $(($errors | Select-Object -First 3 | ForEach-Object Message) -join ' | ')") }
    foreach ($output in $Outputs) {
        if ("$($output.Output)$($output.Errors)" -match 'locked') { $problems.Add("Process $($output.Id) said 'locked': $($output.Errors)") }
    }
    [pscustomobject]@{ Problems = $problems; ObjectsChecked = $digests.Count; ExtraVersions = $extraVersions }
}

# ---- A synthetic bucket of any size, for runs that do nothing but write the state ----

# Answers ListObjectsV2 (all an Inventory job asks; continuation-token and start-after) for a bucket of $Objects keys
# k/0000000 ... that exist nowhere, on a free loopback port, from a runspace of its own; signatures are not checked. A
# listing of hundreds of thousands of keys costs no seeding, and the run it feeds is all state writes: pages of listed
# rows, then results flushed 512 at a time.
# A delay per page makes a job last a known minimum time (with a small page size) whatever the machine's speed.
function Start-SyntheticListing([int] $Objects = 100000, [int] $PageDelayMilliseconds = 0) {
    $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $probe.Start(); $port = $probe.LocalEndpoint.Port; $probe.Stop()
    $listener = [System.Net.HttpListener]::new()
    $listener.Prefixes.Add("http://127.0.0.1:$port/")
    $listener.Start()
    $shell = [powershell]::Create()
    $null = $shell.AddScript({
        param($Listener, [int] $Count, [int] $Delay)
        while ($Listener.IsListening) {
            try { $context = $Listener.GetContext() } catch { break }
            if ($Delay -gt 0) { Start-Sleep -Milliseconds $Delay }
            $query = $context.Request.QueryString
            $max = if ($query['max-keys']) { [int]$query['max-keys'] } else { 1000 }
            $first = if ($query['continuation-token']) { [int]$query['continuation-token'] } else { 0 }
            if (-not $query['continuation-token'] -and $query['start-after']) {
                # The first key past start-after, found in the keys' order (ordinal: k/0000000 ...).
                $after = $query['start-after']; $low = 0; $high = $Count
                while ($low -lt $high) {
                    $mid = [int][Math]::Floor(($low + $high) / 2)
                    if ([string]::CompareOrdinal('k/' + $mid.ToString('d7'), $after) -le 0) { $low = $mid + 1 } else { $high = $mid }
                }
                $first = $low
            }
            $last = [Math]::Min($Count, $first + $max)
            $xml = [System.Text.StringBuilder]::new('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>synthetic</Name><EncodingType>url</EncodingType>')
            for ($i = $first; $i -lt $last; $i++) {
                $null = $xml.Append('<Contents><Key>k/').Append($i.ToString('d7')).Append('</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>"0123456789abcdef0123456789abcdef"</ETag><Size>').Append($i).Append('</Size><StorageClass>STANDARD</StorageClass></Contents>')
            }
            $more = $last -lt $Count
            $null = $xml.Append("<KeyCount>$($last - $first)</KeyCount><MaxKeys>$max</MaxKeys><IsTruncated>$($more.ToString().ToLowerInvariant())</IsTruncated>")
            if ($more) { $null = $xml.Append("<NextContinuationToken>$last</NextContinuationToken>") }
            $body = [System.Text.Encoding]::UTF8.GetBytes($xml.Append('</ListBucketResult>').ToString())
            $context.Response.ContentType = 'application/xml'
            $context.Response.ContentLength64 = $body.Length
            try { $context.Response.OutputStream.Write($body, 0, $body.Length); $context.Response.Close() } catch { $context.Response.Abort() }
        }
    }).AddArgument($listener).AddArgument($Objects).AddArgument($PageDelayMilliseconds)
    $handle = $shell.BeginInvoke()
    [pscustomobject]@{ Endpoint = "http://127.0.0.1:$port"; Objects = $Objects; Listener = $listener; Shell = $shell; Handle = $handle }
}

function Stop-SyntheticListing($Listing) {
    $Listing.Listener.Stop()
    $Listing.Listener.Close()
    $null = $Listing.Handle.AsyncWaitHandle.WaitOne(5000)
    $Listing.Shell.Dispose()
}

# A connector to a synthetic listing (the keys are not secret: the listing checks no signature).
function New-SyntheticConnector($Listing) {
    $name = 'synthetic-' + [guid]::NewGuid().ToString('n').Substring(0, 8)
    $credential = [pscredential]::new('AKIDSYNTHETIC', (ConvertTo-SecureString 'synthetic-listing' -AsPlainText -Force))
    $null = New-CloudConnector -Name $name -Endpoint $Listing.Endpoint -Credential $credential
    $name
}

<#
Kills an Inventory job of a synthetic bucket again and again while it writes nothing but state (pages of listed rows,
results flushed 512 at a time), each time after a seeded random delay: after each kill SQLite's integrity_check and the
job's counters against its rows; at the end a fresh run completes the job with every object counted once. TornFrames
counts the kills that cut a write of the WAL itself (frames written after the last commit).
#>
function Invoke-FlushKills {
    param([Parameter(Mandatory)][string] $ModulePath, [string] $StateHome = $env:OBJECTMIGRATION_HOME,
        [int] $Kills = 5, [int] $Objects = 100000, [int] $Seed = 19, [scriptblock] $Say = { param($Message) Write-Host $Message })
    $random = [System.Random]::new($Seed)
    $database = Join-Path $StateHome 'state.db'
    $listing = Start-SyntheticListing -Objects $Objects
    $problems = [System.Collections.Generic.List[string]]::new()
    $records = [System.Collections.Generic.List[object]]::new()
    $outputs = [System.Collections.Generic.List[object]]::new()
    $environment = @{ OBJECTMIGRATION_STALE_SECONDS = '2' }
    try {
        $connector = New-SyntheticConnector $listing
        $name = "flush-$connector"
        $job = $null
        for ($n = 1; $n -le $Kills; $n++) {
            $command = if ($job) { "`$null = Resume-MigrationJob -Id $($job.Id) -Wait" } else { "`$null = New-MigrationJob -Type Inventory -Name '$name' -SourceConnector '$connector' -SourceBucket synthetic -Wait" }
            $runner = Start-ModuleProcess -Script $command -StateHome $StateHome -ModulePath $ModulePath -Environment $environment
            try {
                $now = Wait-Condition -TimeoutSeconds 90 -IntervalMilliseconds 10 -What "runner $($runner.Id) to run the job" -Condition {
                    if ($runner.Process.HasExited) { throw "Runner $($runner.Id) ended by itself before kill $n (exit $($runner.Process.ExitCode)): $($runner.Errors.GetAwaiter().GetResult())" }
                    Read-JobRow $database $name | Where-Object { $_.state -eq 'Running' -and $_.runner -like "*:$($runner.Id)@*" }
                }
                if (-not $job) { $job = Get-MigrationJob -Id $now.id }
                # Results are being written: this run has reached its flushing.
                $null = Wait-Condition -TimeoutSeconds 60 -IntervalMilliseconds 10 -What 'results written' -Condition { (Read-JobRow $database $name).done -gt $now.done }
                # Paced so that the inventory outlives every kill: ahead of its share of 80 % of the objects, killed at once.
                $ahead = (Read-JobRow $database $name).done -gt 0.8 * $Objects * $n / $Kills
                $delay = if ($ahead) { 0 } else { $random.Next(0, 1500) }
                if ($delay -gt 0) { Start-Sleep -Milliseconds $delay }
            } finally {
                $outputs.Add((Stop-ModuleProcess $runner))
            }
            $torn = Get-TornWalFrames $database
            foreach ($problem in Test-StateDatabase $database $job.Id) { $problems.Add("After kill $n`: $problem") }
            $row = Read-JobRow $database $name
            $settled = Wait-Condition -TimeoutSeconds 15 -What "the job to read Interrupted after kill $n" -Condition { Get-MigrationJob -Id $job.Id | Where-Object State -In 'Interrupted', 'Completed' }
            $records.Add([pscustomobject]@{ Kill = $n; DelayMs = $delay; Done = $row.done; TornFrames = $torn; After = "$($settled.State)" })
            & $Say ("Flush kill {0,2}: +{1,4} ms, {2,6} objects recorded, torn WAL frames {3}, then {4}" -f $n, $delay, $row.done, $torn, $settled.State)
            if ($settled.State -eq 'Completed') { $problems.Add("The inventory completed before kill $n could land: give it more objects."); break }
        }
        $final = Wait-ModuleProcess (Start-ModuleProcess -Script "(Resume-MigrationJob -Id $($job.Id) -Wait).State" -StateHome $StateHome -ModulePath $ModulePath -Environment $environment) -TimeoutSeconds 600
        $outputs.Add($final)
        if ($final.Output.Trim() -ne 'Completed') { $problems.Add("The final run ended '$($final.Output.Trim())' (exit $($final.ExitCode)): $($final.Errors)") }
        foreach ($problem in Test-StateDatabase $database $job.Id) { $problems.Add("Final: $problem") }
        $progress = Get-MigrationJobProgress -Id $job.Id
        if ($progress.Objects -ne $Objects -or $progress.SkippedObjects -ne $Objects) { $problems.Add("The inventory counted $($progress.Objects) objects ($($progress.SkippedObjects) inventoried) of $Objects.") }
        $total = Get-MigrationJobReport -Id $job.Id | Where-Object Group -eq Total
        # Sizes are 0 .. Objects-1: every object counted once, none twice.
        $bytes = [long]$Objects * ($Objects - 1) / 2
        if ($total.Objects -ne $Objects -or $total.Bytes -ne $bytes) { $problems.Add("The inventory report totals $($total.Objects) objects and $($total.Bytes) bytes; expected $Objects and $bytes.") }
        foreach ($output in $outputs) {
            if ("$($output.Output)$($output.Errors)" -match 'locked') { $problems.Add("Process $($output.Id) said 'locked': $($output.Errors)") }
        }
    } finally {
        Stop-SyntheticListing $listing
    }
    [pscustomobject]@{ JobId = $job.Id; Kills = $records; KillsSurvived = @($records | Where-Object After -eq 'Interrupted').Count
        TornKills = @($records | Where-Object TornFrames -gt 0).Count; Objects = $Objects; Problems = $problems }
}

<#
One job read and steered by several processes at once while it writes its state as fast as it can: pollers run
Get-MigrationJob, Get-MigrationJobProgress and Get-MigrationJobLog in a loop; a steering process suspends the job and
resumes it (so it runs on in that process) again and again. Nothing may fail, nothing may say 'locked', and the job
completes with every object counted once. Returns the polls made and the slowest, for the record.
#>
function Invoke-ConcurrentControl {
    param([Parameter(Mandatory)][string] $ModulePath, [string] $StateHome = $env:OBJECTMIGRATION_HOME,
        [int] $Pollers = 3, [int] $Pauses = 3, [int] $Objects = 30000)
    # Pages of 100 keys, 50 ms each: the job lasts at least Objects / 2000 seconds, so the pauses land while it runs.
    $listing = Start-SyntheticListing -Objects $Objects -PageDelayMilliseconds 50
    $problems = [System.Collections.Generic.List[string]]::new()
    # No kills here: the default staleness (10 s), so a heartbeat late on a loaded machine is not taken for a dead runner.
    $environment = @{ OBJECTMIGRATION_STALE_SECONDS = '10'; OBJECTMIGRATION_LIST_PAGE_SIZE = '100' }
    try {
        $connector = New-SyntheticConnector $listing
        $name = "concurrent-$connector"
        $runner = Start-ModuleProcess -StateHome $StateHome -ModulePath $ModulePath -Environment $environment `
            -Script "(New-MigrationJob -Type Inventory -Name '$name' -SourceConnector '$connector' -SourceBucket synthetic -Wait).State"
        $job = Wait-Condition -TimeoutSeconds 90 -What 'the job to run' -Condition { Get-MigrationJob -Name $name | Where-Object State -eq 'Running' }
        $final = "'Completed', 'CompletedWithErrors', 'Failed', 'Cancelled'"
        $poll = @"
`$times = [System.Collections.Generic.List[long]]::new(); `$deadline = [DateTime]::UtcNow.AddSeconds(300)
do {
    `$clock = [System.Diagnostics.Stopwatch]::StartNew()
    `$job = Get-MigrationJob -Id $($job.Id)
    `$null = Get-MigrationJobProgress -Id $($job.Id)
    `$null = Get-MigrationJobLog -Id $($job.Id) -First 5
    `$times.Add(`$clock.ElapsedMilliseconds)
} until (`$job.State -in $final -or [DateTime]::UtcNow -gt `$deadline)
`$times.Sort()
"`$(`$times.Count) `$(`$times[[int][Math]::Floor(0.99 * (`$times.Count - 1))]) `$(`$times[-1])"
"@
        # Each pause waits for fresh results first, so the job is at work when it is suspended; each resume runs it here.
        $steer = @"
for (`$i = 0; `$i -lt $Pauses; `$i++) {
    `$before = (Get-MigrationJobProgress -Id $($job.Id)).SkippedObjects
    do {
        `$now = Get-MigrationJobProgress -Id $($job.Id)
        if (`$now.State -in $final) { throw "The job ended `$(`$now.State) before pause `$(`$i + 1) of $Pauses`: give it more objects." }
        Start-Sleep -Milliseconds 50
    } until (`$now.State -eq 'Running' -and `$now.SkippedObjects -gt `$before)
    Suspend-MigrationJob -Id $($job.Id)
    `$null = Wait-MigrationJob -Id $($job.Id) -Timeout 60
    Resume-MigrationJob -Id $($job.Id) | Out-Null
}
(Wait-MigrationJob -Id $($job.Id) -Timeout 300).State
"@
        $started = @(1..$Pollers | ForEach-Object { Start-ModuleProcess -Script $poll -StateHome $StateHome -ModulePath $ModulePath -Environment $environment })
        $steering = Start-ModuleProcess -Script $steer -StateHome $StateHome -ModulePath $ModulePath -Environment $environment
        $results = @(@($steering) + $started + @($runner) | ForEach-Object { Wait-ModuleProcess $_ -TimeoutSeconds 400 })
        foreach ($result in $results) {
            if ($result.ExitCode -ne 0) { $problems.Add("Process $($result.Id) failed (exit $($result.ExitCode)): $($result.Errors)") }
            if ("$($result.Output)$($result.Errors)" -match 'locked') { $problems.Add("Process $($result.Id) said 'locked': $($result.Output) $($result.Errors)") }
        }
        # The steering process's last line is the final state (warnings of the pauses come before it).
        $ended = @($results[0].Output.Trim() -split "`r?`n")[-1]
        if ($ended -ne 'Completed') { $problems.Add("The steered job ended '$ended'.") }
        $polled = @($results[1..$Pollers] | ForEach-Object { $polls, $p99, $slowest = $_.Output.Trim() -split ' '; [pscustomobject]@{ Polls = [int]$polls; P99Ms = [int]$p99; SlowestMs = [int]$slowest } })
        $progress = Get-MigrationJobProgress -Id $job.Id
        if ($progress.Objects -ne $Objects -or $progress.SkippedObjects -ne $Objects) { $problems.Add("The job counted $($progress.Objects) objects ($($progress.SkippedObjects) inventoried) of $Objects.") }
        foreach ($problem in Test-StateDatabase (Join-Path $StateHome 'state.db') $job.Id) { $problems.Add($problem) }
        $pauses = @(Get-MigrationJobLog -Id $job.Id -Type MigrationPause).Count
        if ($pauses -ne $Pauses) { $problems.Add("The log has $pauses pauses, not $Pauses.") }
    } finally {
        Stop-SyntheticListing $listing
    }
    [pscustomobject]@{ JobId = $job.Id; Polls = ($polled | Measure-Object Polls -Sum).Sum; SlowestPollMs = ($polled | Measure-Object SlowestMs -Maximum).Maximum
        P99PollMs = ($polled | Measure-Object P99Ms -Maximum).Maximum
        Pauses = $Pauses; Processes = $results.Count; Problems = $problems }
}
