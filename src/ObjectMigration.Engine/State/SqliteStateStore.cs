using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State;

/// <summary>
/// The per-user SQLite store. Each call opens a pooled connection, so the store is safe to share
/// between threads, sessions and processes; WAL lets readers go on while a runner writes.
/// </summary>
public sealed partial class SqliteStateStore : IStateStore
{
    private readonly string _connectionString;

    public string Location { get; }

    public SqliteStateStore(string databasePath) : this(databasePath, pooling: true)
    {
    }

    private SqliteStateStore(string databasePath, bool pooling)
    {
        Location = databasePath;
        // The database holds endpoints, buckets, keys and logs: this user's alone. SQLite gives its -wal and -shm files
        // the database file's mode, so a 0600 database makes them 0600 too; older ones are tightened here.
        StateLocation.PreparePrivateFolder(Path.GetDirectoryName(Path.GetFullPath(databasePath))!);
        StateLocation.CreatePrivateFile(databasePath);
        foreach (var suffix in new[] { "-wal", "-shm", "-journal" }) StateLocation.TightenFile(databasePath + suffix);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = pooling,
            // Also the busy timeout: writers from other processes wait instead of failing.
            DefaultTimeout = 30,
        }.ToString();
        SchemaMigrations.Apply(Open);
        Reserve = new StateFolderReserve(databasePath);
        // A dry run's scratch store needs no room kept for it.
        if (pooling) Reserve.Ensure();
    }

    /// <summary>Room kept beside the database for recording how a run stopped when the disk fills (see <see cref="StateFolderFullGuard"/>).</summary>
    internal StateFolderReserve Reserve { get; }

    /// <summary>
    /// A throw-away store for a dry run (no pooled handles, so its folder can be deleted at once), holding the copy
    /// records <paramref name="real"/> keeps for the target bucket: decisions that trust this module's earlier copies
    /// see them as a real run would.
    /// </summary>
    public static SqliteStateStore ForPlan(string databasePath, IStateStore real, long targetConnectorId, string targetBucket)
    {
        var plan = new SqliteStateStore(databasePath, pooling: false);
        using var connection = plan.Open();
        if (real is SqliteStateStore file)
        {
            // The real store is a file too: one statement, no rows through this process.
            using var copy = Command(connection, "ATTACH DATABASE $real AS real; INSERT INTO copies SELECT * FROM real.copies WHERE target_connector_id = $id AND target_bucket = $bucket;",
                ("$real", file.Location), ("$id", targetConnectorId), ("$bucket", targetBucket));
            copy.ExecuteNonQuery();
            using var detach = Command(connection, "DETACH DATABASE real");
            detach.ExecuteNonQuery();
            return plan;
        }
        using var tx = connection.BeginTransaction();
        using var insert = Command(connection,
            "INSERT INTO copies (target_connector_id, target_bucket, target_key, source_etag, target_etag, copied_at) VALUES ($id, $bucket, $key, $source, $target, $at)");
        insert.Parameters.AddWithValue("$id", targetConnectorId);
        insert.Parameters.AddWithValue("$bucket", targetBucket);
        var (key, source, target, at) = (insert.Parameters.Add("$key", SqliteType.Text), insert.Parameters.Add("$source", SqliteType.Text),
            insert.Parameters.Add("$target", SqliteType.Text), insert.Parameters.Add("$at", SqliteType.Text));
        foreach (var row in real.StreamCopies(targetConnectorId, targetBucket))
        {
            (key.Value, source.Value, target.Value, at.Value) = (row.TargetKey, (object?)row.SourceETag ?? DBNull.Value, row.TargetETag, Format(row.CopiedAt));
            insert.ExecuteNonQuery();
        }
        tx.Commit();
        return plan;
    }

    public IEnumerable<CopyRow> StreamCopies(long targetConnectorId, string targetBucket)
    {
        using var connection = Open();
        using var command = Command(connection,
            "SELECT target_key, source_etag, target_etag, copied_at FROM copies WHERE target_connector_id = $id AND target_bucket = $bucket ORDER BY target_key",
            ("$id", targetConnectorId), ("$bucket", targetBucket));
        using var reader = command.ExecuteReader();
        while (reader.Read()) yield return new CopyRow(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetString(2), Parse(reader.GetString(3)));
    }

    internal SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        // busy_timeout: SQLite's own wait for a lock, which retries within milliseconds; without it Microsoft.Data.Sqlite
        // retries every 150 ms, and a writer that keeps the lock busy (a run flushing results) can starve another
        // process's write until the command times out as "database is locked".
        pragma.CommandText = "PRAGMA busy_timeout=30000; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    private static string Now() => DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
    private static string Format(DateTimeOffset value) => value.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);
    private static DateTimeOffset Parse(string value) => DateTimeOffset.Parse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
    private static DateTimeOffset? ParseOrNull(object value) => value is string s ? Parse(s) : null;

    private int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var connection = Open();
        using var command = Command(connection, sql, parameters);
        return command.ExecuteNonQuery();
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    private List<T> Query<T>(string sql, Func<SqliteDataReader, T> read, params (string Name, object? Value)[] parameters)
    {
        using var connection = Open();
        using var command = Command(connection, sql, parameters);
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read()) rows.Add(read(reader));
        return rows;
    }

    private long JobSeq(SqliteConnection connection, Guid id)
    {
        using var command = Command(connection, "SELECT seq FROM jobs WHERE id = $id", ("$id", id.ToString()));
        return command.ExecuteScalar() is long seq ? seq : throw new KeyNotFoundException($"No migration job has the id {id}.");
    }

    // ---- Connectors ----

    private const string ConnectorColumns =
        "id, name, provider, endpoint, region, account_id, jurisdiction, access_key_id, proxy, path_style, chunk_encoding, created_at, updated_at, credential_source, profile_name, profile_location";

    private static CloudConnector ReadConnector(SqliteDataReader r) => new()
    {
        Id = r.GetInt64(0),
        Name = r.GetString(1),
        Provider = Enum.Parse<ConnectorProvider>(r.GetString(2)),
        Endpoint = r.GetString(3),
        Region = r.GetString(4),
        AccountId = r.IsDBNull(5) ? null : r.GetString(5),
        Jurisdiction = r.IsDBNull(6) ? null : r.GetString(6),
        AccessKeyId = r.GetString(7),
        Proxy = r.IsDBNull(8) ? null : r.GetString(8),
        PathStyle = r.GetInt64(9) != 0,
        UseChunkEncoding = r.GetInt64(10) != 0,
        CreatedAt = Parse(r.GetString(11)),
        UpdatedAt = Parse(r.GetString(12)),
        CredentialSource = Enum.Parse<CredentialSource>(r.GetString(13)),
        ProfileName = r.IsDBNull(14) ? null : r.GetString(14),
        ProfileLocation = r.IsDBNull(15) ? null : r.GetString(15),
    };

    public CloudConnector AddConnector(CloudConnector connector, byte[] protectedCredential, bool hidden = false)
    {
        var now = DateTimeOffset.UtcNow;
        using var connection = Open();
        using var command = Command(connection,
            @"INSERT INTO connectors (name, provider, endpoint, region, account_id, jurisdiction, access_key_id, proxy, path_style, chunk_encoding, credential, created_at, updated_at, hidden,
                                      credential_source, profile_name, profile_location)
              VALUES ($name, $provider, $endpoint, $region, $account, $jurisdiction, $akid, $proxy, $path, $chunk, $cred, $now, $now, $hidden, $source, $profile, $location) RETURNING id",
            ("$name", connector.Name), ("$provider", connector.Provider.ToString()), ("$endpoint", connector.Endpoint),
            ("$region", connector.Region), ("$account", connector.AccountId), ("$jurisdiction", connector.Jurisdiction),
            ("$akid", MaskedAccessKey(connector.AccessKeyId)), ("$proxy", connector.Proxy), ("$path", connector.PathStyle ? 1 : 0),
            ("$chunk", connector.UseChunkEncoding ? 1 : 0), ("$cred", protectedCredential), ("$now", Format(now)), ("$hidden", hidden ? 1 : 0),
            ("$source", connector.CredentialSource.ToString()), ("$profile", connector.ProfileName), ("$location", connector.ProfileLocation));
        try
        {
            connector.Id = (long)command.ExecuteScalar()!;
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            throw new DuplicateNameException($"A cloud connector named '{connector.Name}' already exists: choose another -Name, or change that one with Set-CloudConnector.");
        }
        connector.CreatedAt = connector.UpdatedAt = now;
        return connector;
    }

    /// <summary>The access key id is kept only inside the protected credential; the table shows its last four characters.</summary>
    internal static string MaskedAccessKey(string accessKeyId) =>
        accessKeyId.Length <= 4 ? new string('*', accessKeyId.Length) : new string('*', accessKeyId.Length - 4) + accessKeyId[^4..];

    public IReadOnlyList<CloudConnector> GetConnectors() =>
        Query($"SELECT {ConnectorColumns} FROM connectors WHERE hidden = 0 ORDER BY name COLLATE NOCASE", ReadConnector);

    public CloudConnector? FindConnector(string name) =>
        Query($"SELECT {ConnectorColumns} FROM connectors WHERE name = $name COLLATE NOCASE AND hidden = 0", ReadConnector, ("$name", name)).FirstOrDefault();

    public CloudConnector? FindConnector(long id) =>
        Query($"SELECT {ConnectorColumns} FROM connectors WHERE id = $id", ReadConnector, ("$id", id)).FirstOrDefault();

    public byte[] GetConnectorCredential(long id) =>
        Query("SELECT credential FROM connectors WHERE id = $id", r => (byte[])r.GetValue(0), ("$id", id)).FirstOrDefault()
        ?? throw new KeyNotFoundException($"No cloud connector has the id {id}.");

    public void UpdateConnector(CloudConnector connector, byte[]? protectedCredential)
    {
        connector.UpdatedAt = DateTimeOffset.UtcNow;
        try
        {
            Execute(
                @"UPDATE connectors SET name = $name, provider = $provider, endpoint = $endpoint, region = $region, account_id = $account,
                  jurisdiction = $jurisdiction, proxy = $proxy, path_style = $path, chunk_encoding = $chunk, updated_at = $now,
                  access_key_id = COALESCE($akid, access_key_id), credential = COALESCE($cred, credential),
                  credential_source = $source, profile_name = $profile, profile_location = $location WHERE id = $id",
                ("$id", connector.Id), ("$name", connector.Name), ("$provider", connector.Provider.ToString()), ("$endpoint", connector.Endpoint),
                ("$region", connector.Region), ("$account", connector.AccountId), ("$jurisdiction", connector.Jurisdiction),
                ("$proxy", connector.Proxy), ("$path", connector.PathStyle ? 1 : 0), ("$chunk", connector.UseChunkEncoding ? 1 : 0),
                ("$now", Format(connector.UpdatedAt)), ("$akid", protectedCredential is null ? null : MaskedAccessKey(connector.AccessKeyId)),
                ("$cred", protectedCredential), ("$source", connector.CredentialSource.ToString()), ("$profile", connector.ProfileName),
                ("$location", connector.ProfileLocation));
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            throw new DuplicateNameException($"A cloud connector named '{connector.Name}' already exists: choose another -NewName (Get-CloudConnector lists the names in use).");
        }
    }

    public void RemoveConnector(long id) => Execute("DELETE FROM connectors WHERE id = $id", ("$id", id));

    public IReadOnlyList<MigrationJob> GetJobsUsingConnector(long connectorId) =>
        Query($"{JobSelect} WHERE j.source_connector_id = $id OR j.target_connector_id = $id ORDER BY j.created_at DESC", ReadJob, ("$id", connectorId));

    // ---- Jobs ----

    private const string JobSelect =
        @"SELECT j.seq, j.id, j.name, j.type, j.state, j.phase, j.source_connector_id, COALESCE(CASE WHEN s.hidden = 1 THEN s.endpoint ELSE s.name END, '(removed)'), j.source_bucket, j.source_prefix,
                 j.keys_json, j.target_connector_id, CASE WHEN j.target_connector_id = 0 THEN '' ELSE COALESCE(t.name, '(removed)') END, j.target_bucket, j.target_prefix, j.overwrite, j.filter_json,
                 j.concurrency, j.max_bytes_per_second, j.multipart_threshold, j.part_size, j.created_at, j.started_at, j.finished_at, j.error, j.no_progress_timeout_seconds, j.storage_class_map,
                 j.detached, j.runner, j.verify_deep, j.verify_metadata, j.update_json, j.fixed_concurrency
          FROM jobs j LEFT JOIN connectors s ON s.id = j.source_connector_id LEFT JOIN connectors t ON t.id = j.target_connector_id";

    private static MigrationJob ReadJob(SqliteDataReader r) => new()
    {
        Seq = r.GetInt64(0),
        Id = Guid.Parse(r.GetString(1)),
        Name = r.GetString(2),
        Type = Enum.Parse<JobType>(r.GetString(3)),
        State = Enum.Parse<JobState>(r.GetString(4)),
        Phase = r.IsDBNull(5) ? null : Enum.Parse<JobPhase>(r.GetString(5)),
        SourceConnectorId = r.GetInt64(6),
        SourceConnector = r.GetString(7),
        SourceBucket = r.GetString(8),
        SourcePrefix = r.GetString(9),
        Keys = JsonSerializer.Deserialize<string[]>(r.GetString(10)) ?? [],
        TargetConnectorId = r.GetInt64(11),
        TargetConnector = r.GetString(12),
        TargetBucket = r.GetString(13),
        TargetPrefix = r.GetString(14),
        Overwrite = Enum.Parse<OverwriteMode>(r.GetString(15)),
        Filter = JsonSerializer.Deserialize<ObjectFilter>(r.GetString(16)) ?? new ObjectFilter(),
        Concurrency = r.GetInt32(17),
        MaxBytesPerSecond = r.GetInt64(18),
        MultipartThreshold = r.GetInt64(19),
        PartSize = r.GetInt64(20),
        CreatedAt = Parse(r.GetString(21)),
        StartedAt = ParseOrNull(r.GetValue(22)),
        FinishedAt = ParseOrNull(r.GetValue(23)),
        Error = r.IsDBNull(24) ? null : r.GetString(24),
        NoProgressTimeout = r.GetDouble(25) > 0 ? TimeSpan.FromSeconds(r.GetDouble(25)) : null,
        // Source class names match whatever their case, as when the job was created.
        StorageClassMap = new Dictionary<string, string>(
            r.IsDBNull(26) ? [] : JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(26)) ?? [], StringComparer.OrdinalIgnoreCase),
        Detached = r.GetInt64(27) != 0,
        Runner = r.IsDBNull(28) ? null : r.GetString(28),
        Deep = r.GetInt64(29) != 0,
        CompareMetadata = r.GetInt64(30) != 0,
        Update = r.IsDBNull(31) ? null : ObjectUpdate.FromJson(r.GetString(31)),
        FixedConcurrency = r.GetInt64(32) != 0,
    };

    public void AddJob(MigrationJob job)
    {
        using var connection = Open();
        using var command = Command(connection,
            @"INSERT INTO jobs (id, name, type, state, source_connector_id, source_bucket, source_prefix, keys_json, target_connector_id,
                target_bucket, target_prefix, overwrite, filter_json, concurrency, max_bytes_per_second, multipart_threshold, part_size, created_at, no_progress_timeout_seconds, storage_class_map, detached, verify_deep, verify_metadata, update_json, fixed_concurrency)
              VALUES ($id, $name, $type, $state, $src, $sbucket, $sprefix, $keys, $tgt, $tbucket, $tprefix, $overwrite, $filter,
                $concurrency, $bps, $threshold, $part, $created, $stall, $classes, $detached, $deep, $metadata, $update, $fixed) RETURNING seq",
            ("$id", job.Id.ToString()), ("$name", job.Name), ("$type", job.Type.ToString()), ("$state", job.State.ToString()),
            ("$src", job.SourceConnectorId), ("$sbucket", job.SourceBucket), ("$sprefix", job.SourcePrefix),
            ("$keys", JsonSerializer.Serialize(job.Keys)), ("$tgt", job.TargetConnectorId), ("$tbucket", job.TargetBucket),
            ("$tprefix", job.TargetPrefix), ("$overwrite", job.Overwrite.ToString()), ("$filter", JsonSerializer.Serialize(job.Filter)),
            ("$concurrency", job.Concurrency), ("$bps", job.MaxBytesPerSecond), ("$threshold", job.MultipartThreshold),
            ("$part", job.PartSize), ("$created", Format(job.CreatedAt)), ("$stall", job.NoProgressTimeout?.TotalSeconds ?? 0),
            ("$classes", job.StorageClassMap.Count == 0 ? null : JsonSerializer.Serialize(job.StorageClassMap)), ("$detached", job.Detached ? 1 : 0),
            ("$deep", job.Deep ? 1 : 0), ("$metadata", job.CompareMetadata ? 1 : 0), ("$update", job.Update?.ToJson()), ("$fixed", job.FixedConcurrency ? 1 : 0));
        job.Seq = (long)command.ExecuteScalar()!;
    }

    public MigrationJob? FindJob(Guid id) =>
        Query($"{JobSelect} WHERE j.id = $id", ReadJob, ("$id", id.ToString())).FirstOrDefault();

    public IReadOnlyList<MigrationJob> GetJobs() => Query($"{JobSelect} ORDER BY j.created_at DESC, j.seq DESC", ReadJob);

    public bool TryTransition(Guid id, JobState[] from, JobState to, JobPhase? phase = null, string? error = null, bool? detached = null) =>
        Transition(id, from, to, phase, error, runnerId: null, detached);

    public bool TryStartRun(Guid id, string runnerId, JobPhase phase)
    {
        // Each run starts with the reserve an earlier run may have used up, if there is room for it again.
        Reserve.Ensure();
        return Transition(id, [JobState.Pending], JobState.Running, phase, error: null, runnerId);
    }

    public bool TrySettleRun(Guid id, string runnerId, JobState to, string? error = null) =>
        Transition(id, [JobState.Running, JobState.Interrupted], to, phase: null, error, runnerId);

    /// <summary>
    /// A transition into Running claims the job for <paramref name="runnerId"/>; any other transition with a runner
    /// happens only while that runner still holds the job, so a runner that lost it cannot settle its successor's run.
    /// </summary>
    private bool Transition(Guid id, JobState[] from, JobState to, JobPhase? phase, string? error, string? runnerId, bool? detached = null)
    {
        var fromList = string.Join(",", from.Select(s => $"'{s}'"));
        // A new run starts without the error of the run before it (a Failed job resumed once its cause was fixed).
        var started = to == JobState.Running ? ", started_at = COALESCE(started_at, $now), heartbeat_at = $now, runner = $runner, error = NULL" : "";
        var finished = JobStates.IsTerminal(to) ? ", finished_at = $now" : "";
        var control = to == JobState.Running || JobStates.IsSettled(to) ? ", control = 0" : "";
        var held = runnerId is not null && to != JobState.Running ? " AND runner = $runner" : "";
        var handedOver = detached is null ? "" : ", detached = $detached";
        // A run that settles its job as Interrupted lets go of it: its heartbeat must not take the job back.
        var released = runnerId is not null && to == JobState.Interrupted ? ", runner = NULL" : "";
        return Execute(
            $"UPDATE jobs SET state = $to, phase = $phase, error = COALESCE($error, error){started}{finished}{control}{handedOver}{released} WHERE id = $id AND state IN ({fromList}){held}",
            ("$id", id.ToString()), ("$to", to.ToString()), ("$phase", phase?.ToString()), ("$error", error), ("$now", Now()), ("$runner", runnerId),
            ("$detached", detached is true ? 1 : 0)) == 1;
    }

    public void SetPhase(Guid id, JobPhase? phase) =>
        Execute("UPDATE jobs SET phase = $phase WHERE id = $id", ("$id", id.ToString()), ("$phase", phase?.ToString()));

    public void RemoveJob(Guid id)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        foreach (var table in new[] { "objects", "target_objects", "parts", "uploads", "logs", "update_intents", "batches", "job_runners", "listing_ranges" })
        {
            using var delete = Command(connection, $"DELETE FROM {table} WHERE job_seq = $seq", ("$seq", seq));
            delete.ExecuteNonQuery();
        }
        long sourceConnectorId;
        using (var source = Command(connection, "SELECT source_connector_id FROM jobs WHERE seq = $seq", ("$seq", seq))) sourceConnectorId = (long)source.ExecuteScalar()!;
        using (var deleteJob = Command(connection, "DELETE FROM jobs WHERE seq = $seq", ("$seq", seq))) deleteJob.ExecuteNonQuery();
        // A source given inline (-SourceEndpoint) is a hidden connector that belongs to its job: it goes with it, and its
        // sealed secret with it. Hidden connectors an older version left behind go too, once no job uses them (not the
        // newest ones: a job being created adds its connector just before itself).
        using (var deleteHidden = Command(connection,
            @"DELETE FROM connectors WHERE hidden = 1 AND (id = $source OR created_at < $before)
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.source_connector_id = connectors.id OR j.target_connector_id = connectors.id)",
            ("$source", sourceConnectorId), ("$before", Format(DateTimeOffset.UtcNow.AddHours(-1)))))
        {
            deleteHidden.ExecuteNonQuery();
        }
        tx.Commit();
    }

    public void SetControlRequest(Guid id, ControlRequest request) =>
        Execute("UPDATE jobs SET control = $c WHERE id = $id", ("$id", id.ToString()), ("$c", (int)request));

    public bool TrySetControlRequest(Guid id, ControlRequest request) =>
        Execute("UPDATE jobs SET control = $c WHERE id = $id AND control = 0", ("$id", id.ToString()), ("$c", (int)request)) == 1;

    public ControlRequest GetControlRequest(Guid id) =>
        Query("SELECT control FROM jobs WHERE id = $id", r => (ControlRequest)r.GetInt32(0), ("$id", id.ToString())).FirstOrDefault();

    public RunnerLease Heartbeat(Guid id, string runnerId, JobPhase? phase)
    {
        (string, object?)[] args = [("$id", id.ToString()), ("$now", Now()), ("$runner", runnerId), ("$phase", phase?.ToString())];
        if (Execute("UPDATE jobs SET heartbeat_at = $now WHERE id = $id AND state = 'Running' AND runner = $runner", args) == 1) return RunnerLease.Held;
        return Execute("UPDATE jobs SET heartbeat_at = $now, state = 'Running', phase = $phase WHERE id = $id AND state = 'Interrupted' AND runner = $runner", args) == 1
            ? RunnerLease.Reclaimed
            : RunnerLease.Lost;
    }

    public int MarkStaleJobsInterrupted(TimeSpan staleAfter, IReadOnlyCollection<Guid> alive)
    {
        // Ids are Guids formatted here, never user text, so they can be written into the statement.
        var spared = alive.Count == 0 ? "" : $" AND id NOT IN ({string.Join(",", alive.Select(id => $"'{id}'"))})";
        var stale = $"state = 'Running' AND (heartbeat_at IS NULL OR heartbeat_at < $cutoff){spared}";
        var cutoff = ("$cutoff", (object?)Format(DateTimeOffset.UtcNow - staleAfter));
        // Looked for first: every Get-MigrationJob comes here, and a read never waits for a runner's write lock in WAL
        // mode, while an UPDATE does even when it changes nothing.
        if (Query($"SELECT 1 FROM jobs WHERE {stale} LIMIT 1", r => 1, cutoff).Count == 0) return 0;
        return Execute($"UPDATE jobs SET state = 'Interrupted', phase = NULL WHERE {stale}", cutoff);
    }

    public void SetDetached(Guid id, bool detached) =>
        Execute("UPDATE jobs SET detached = $d WHERE id = $id", ("$id", id.ToString()), ("$d", detached ? 1 : 0));

    public IReadOnlyList<(Guid Id, JobState State)> GetDetachedJobsToRun(int limit) =>
        Query("SELECT id, state FROM jobs WHERE detached = 1 AND state IN ('Pending', 'Interrupted') ORDER BY created_at, seq LIMIT $limit",
            r => (Guid.Parse(r.GetString(0)), Enum.Parse<JobState>(r.GetString(1))), ("$limit", limit));

    public IReadOnlyList<(Guid Id, string Runner)> GetRunningJobRunners() =>
        Query("SELECT id, runner FROM jobs WHERE state = 'Running' AND runner IS NOT NULL", r => (Guid.Parse(r.GetString(0)), r.GetString(1)));

    public bool MarkInterrupted(Guid id, string runnerId) =>
        Execute("UPDATE jobs SET state = 'Interrupted', phase = NULL WHERE id = $id AND state = 'Running' AND runner = $runner",
            ("$id", id.ToString()), ("$runner", runnerId)) == 1;

    // ---- Workers ----

    public void AddWorker(MigrationWorker worker) =>
        Execute(@"INSERT INTO workers (id, host, process_id, runner_prefix, user_name, started_at, heartbeat_at, max_jobs, concurrency, idle_exit_seconds, log_path)
                  VALUES ($id, $host, $pid, $prefix, $user, $started, $now, $max, $concurrency, $idle, $log)",
            ("$id", worker.Id.ToString()), ("$host", worker.ComputerName), ("$pid", worker.ProcessId), ("$prefix", worker.RunnerPrefix),
            ("$user", worker.UserName), ("$started", Format(worker.StartedAt)), ("$now", Now()), ("$max", worker.MaxJobs),
            ("$concurrency", worker.Concurrency), ("$idle", worker.IdleExit?.TotalSeconds), ("$log", worker.LogPath));

    public WorkerSignal WorkerHeartbeat(Guid id)
    {
        var stop = Query("UPDATE workers SET heartbeat_at = $now WHERE id = $id RETURNING stop_requested", r => r.GetInt64(0) != 0,
            ("$id", id.ToString()), ("$now", Now()));
        return stop.Count == 0 ? WorkerSignal.Gone : stop[0] ? WorkerSignal.Stop : WorkerSignal.Run;
    }

    public bool RequestWorkerStop(Guid id) =>
        Execute("UPDATE workers SET stop_requested = 1 WHERE id = $id", ("$id", id.ToString())) == 1;

    public void RemoveWorker(Guid id) => Execute("DELETE FROM workers WHERE id = $id", ("$id", id.ToString()));

    public IReadOnlyList<MigrationWorker> GetWorkers()
    {
        var workers = Query(
            @"SELECT id, host, process_id, runner_prefix, user_name, started_at, heartbeat_at, max_jobs, concurrency, idle_exit_seconds, log_path, stop_requested
              FROM workers ORDER BY started_at",
            r => new MigrationWorker
            {
                Id = Guid.Parse(r.GetString(0)),
                ComputerName = r.GetString(1),
                ProcessId = r.GetInt32(2),
                RunnerPrefix = r.GetString(3),
                UserName = r.GetString(4),
                StartedAt = Parse(r.GetString(5)),
                LastHeartbeat = Parse(r.GetString(6)),
                MaxJobs = r.GetInt32(7),
                Concurrency = r.IsDBNull(8) ? null : r.GetInt32(8),
                IdleExit = r.IsDBNull(9) ? null : TimeSpan.FromSeconds(r.GetDouble(9)),
                LogPath = r.IsDBNull(10) ? null : r.GetString(10),
                State = r.GetInt64(11) != 0 ? WorkerState.Stopping : WorkerState.Running,
            });
        if (workers.Count == 0) return workers;
        // A run's runner id is the worker's prefix and a run number: host:pid#n.
        var running = Query(RunnerShares.RunningJobsByRunner, r => (Runner: r.GetString(0), Name: r.GetString(1)));
        foreach (var worker in workers)
        {
            worker.Jobs = running.Where(j => j.Runner.StartsWith(worker.RunnerPrefix + "#", StringComparison.Ordinal)).Select(j => j.Name).ToArray();
        }
        return workers;
    }

    // ---- Listing ----

    public (string? Token, bool Done) GetListingCheckpoint(Guid id, bool target)
    {
        var prefix = target ? "target_" : "";
        return Query($"SELECT {prefix}listing_token, {prefix}listing_done FROM jobs WHERE id = $id",
            r => (r.IsDBNull(0) ? null : r.GetString(0), r.GetInt64(1) != 0), ("$id", id.ToString())).First();
    }

    public int SaveListingPage(Guid id, IReadOnlyList<ListedObject> objects, string? continuationToken, bool done, bool target)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        var (added, addedBytes) = InsertListed(connection, seq, target ? "target_objects" : "objects", objects, targetOnly: false);
        // A batch exists exactly when its objects do.
        if (!target) CoverKeys(connection, seq, objects.Select(o => o.Key));
        var prefix = target ? "target_" : "";
        var counters = target ? "" : ", objects_found = objects_found + $added, bytes_found = bytes_found + $bytes";
        using (var checkpoint = Command(connection,
            $"UPDATE jobs SET {prefix}listing_token = $token, {prefix}listing_done = $done{counters} WHERE seq = $seq",
            ("$token", continuationToken), ("$done", done ? 1 : 0), ("$added", added), ("$bytes", addedBytes), ("$seq", seq)))
        {
            checkpoint.ExecuteNonQuery();
        }
        tx.Commit();
        return added;
    }

    /// <summary>Inserts listed objects that are new to <paramref name="table"/>; returns how many were, and their bytes.</summary>
    private static (int Added, long Bytes) InsertListed(SqliteConnection connection, long seq, string table, IReadOnlyList<ListedObject> objects, bool targetOnly)
    {
        var added = 0;
        long bytes = 0;
        var onlyColumn = targetOnly ? ", target_only" : "";
        var onlyValue = targetOnly ? ", 1" : "";
        using var insert = Command(connection,
            $"INSERT OR IGNORE INTO {table} (job_seq, key, size, etag, last_modified, storage_class{onlyColumn}) VALUES ($seq, $key, $size, $etag, $modified, $class{onlyValue})");
        var key = insert.Parameters.Add("$key", SqliteType.Text);
        var size = insert.Parameters.Add("$size", SqliteType.Integer);
        var etag = insert.Parameters.Add("$etag", SqliteType.Text);
        var modified = insert.Parameters.Add("$modified", SqliteType.Text);
        var storageClass = insert.Parameters.Add("$class", SqliteType.Text);
        insert.Parameters.AddWithValue("$seq", seq);
        insert.Prepare();
        foreach (var o in objects)
        {
            key.Value = o.Key;
            size.Value = o.Size;
            etag.Value = (object?)o.ETag ?? DBNull.Value;
            modified.Value = Format(o.LastModified);
            storageClass.Value = (object?)o.StorageClass ?? DBNull.Value;
            if (insert.ExecuteNonQuery() == 1) { added++; bytes += o.Size; }
        }
        return (added, bytes);
    }

    public IReadOnlyList<ListedObject> GetTargetOnlyObjects(Guid id, string afterKey, int limit) =>
        // The anti-join looks each target key up by the objects table's primary key: one pass, nothing held in memory.
        // Each page starts after the last key by the target table's primary key (prefix || after), not by a computed
        // substring, so a page does not scan the rows before it again.
        Query(@"SELECT substr(t.key, length(j.target_prefix) + 1), t.size, t.etag, t.last_modified, t.storage_class
                FROM jobs j JOIN target_objects t ON t.job_seq = j.seq
                WHERE j.id = $id AND t.key > j.target_prefix || $after AND substr(t.key, 1, length(j.target_prefix)) = j.target_prefix
                  AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.job_seq = j.seq AND o.key = substr(t.key, length(j.target_prefix) + 1))
                ORDER BY t.key LIMIT $limit",
            r => new ListedObject(r.GetString(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetString(2), Parse(r.GetString(3)), r.IsDBNull(4) ? null : r.GetString(4)),
            ("$id", id.ToString()), ("$after", afterKey), ("$limit", limit));

    public void SaveTargetOnlyObjects(Guid id, IReadOnlyList<ListedObject> objects)
    {
        if (objects.Count == 0) return;
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        var (added, _) = InsertListed(connection, seq, "objects", objects, targetOnly: true);
        CoverKeys(connection, seq, objects.Select(o => o.Key));
        // Counted as checked keys, not as bytes to move: the source has none of them.
        using (var counters = Command(connection, "UPDATE jobs SET objects_found = objects_found + $added WHERE seq = $seq", ("$added", added), ("$seq", seq)))
        {
            counters.ExecuteNonQuery();
        }
        tx.Commit();
    }

    public void UpdateListedObject(Guid id, ListedObject current)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        using (var update = Command(connection,
            @"UPDATE jobs SET bytes_found = bytes_found + $size - COALESCE((SELECT size FROM objects WHERE job_seq = $seq AND key = $key), $size) WHERE seq = $seq;
              UPDATE objects SET size = $size, etag = $etag, last_modified = $modified, storage_class = $class WHERE job_seq = $seq AND key = $key",
            ("$seq", seq), ("$key", current.Key), ("$size", current.Size), ("$etag", current.ETag), ("$modified", Format(current.LastModified)), ("$class", current.StorageClass)))
        {
            update.ExecuteNonQuery();
        }
        tx.Commit();
    }

    // ---- Scheduling ----

    public IReadOnlyList<PendingObject> GetPendingObjects(Guid id, string afterKey, int limit, string? throughKey = null)
    {
        // One statement: the job's target prefix and listing state come from the join, not from extra round trips.
        using var connection = Open();
        using var command = Command(connection,
            @"SELECT o.key, o.size, o.etag, o.last_modified, o.storage_class, t.size, t.etag, t.last_modified, j.target_listing_done,
                     c.source_etag, c.target_etag, o.target_only
              FROM jobs j
              JOIN objects o ON o.job_seq = j.seq
              LEFT JOIN target_objects t ON t.job_seq = j.seq AND t.key = j.target_prefix || o.key
              LEFT JOIN copies c ON c.target_connector_id = j.target_connector_id AND c.target_bucket = j.target_bucket AND c.target_key = j.target_prefix || o.key
              WHERE j.id = $id AND o.outcome = 0 AND o.key > $after AND ($through IS NULL OR o.key <= $through) ORDER BY o.key LIMIT $limit",
            ("$id", id.ToString()), ("$after", afterKey), ("$limit", limit), ("$through", throughKey));
        using var r = command.ExecuteReader();
        var rows = new List<PendingObject>(limit);
        while (r.Read())
        {
            rows.Add(new PendingObject(r.GetString(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetString(2), Parse(r.GetString(3)),
                r.IsDBNull(4) ? null : r.GetString(4),
                r.IsDBNull(5) ? null : r.GetInt64(5), r.IsDBNull(6) ? null : r.GetString(6), ParseOrNull(r.GetValue(7)), r.GetInt64(8) != 0,
                r.IsDBNull(10) ? null : new CopyRecord(r.IsDBNull(9) ? null : r.GetString(9), r.GetString(10)), r.GetInt64(11) != 0));
        }
        return rows;
    }

    public void SaveResults(Guid id, IReadOnlyList<ObjectResult> results, IReadOnlyList<LogRecord> logs, string? runner = null)
    {
        if (results.Count == 0 && logs.Count == 0) return;
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        long transferred = 0, transferredBytes = 0, skipped = 0, skippedBytes = 0, failed = 0, missing = 0, mismatched = 0, extra = 0;
        var copies = new List<ObjectResult>();
        using (var update = Command(connection,
            "UPDATE objects SET outcome = $outcome, message = $message, checksum = COALESCE($checksum, checksum), verified_by = $verified, log_type = $logType WHERE job_seq = $seq AND key = $key AND outcome <> $outcome"))
        {
            update.Parameters.AddWithValue("$seq", seq);
            var outcome = update.Parameters.Add("$outcome", SqliteType.Integer);
            var logType = update.Parameters.Add("$logType", SqliteType.Text);
            var message = update.Parameters.Add("$message", SqliteType.Text);
            var checksum = update.Parameters.Add("$checksum", SqliteType.Text);
            var verified = update.Parameters.Add("$verified", SqliteType.Text);
            var key = update.Parameters.Add("$key", SqliteType.Text);
            update.Prepare();
            foreach (var result in results)
            {
                outcome.Value = (int)result.Outcome;
                logType.Value = (object?)result.LogType?.ToString() ?? DBNull.Value;
                message.Value = (object?)result.Message ?? DBNull.Value;
                checksum.Value = (object?)result.Checksum ?? DBNull.Value;
                verified.Value = (object?)result.VerifiedBy ?? DBNull.Value;
                key.Value = result.Key;
                if (update.ExecuteNonQuery() == 0) continue;
                switch (result.Outcome)
                {
                    case ObjectOutcome.Transferred: transferred++; transferredBytes += result.Bytes; break;
                    case ObjectOutcome.Skipped: skipped++; skippedBytes += result.Bytes; break;
                    case ObjectOutcome.Failed: failed++; break;
                }
                switch (result.LogType)
                {
                    case LogType.VerifyMissing: missing++; break;
                    case LogType.VerifyMismatch: mismatched++; break;
                    case LogType.VerifyExtra: extra++; break;
                }
                // Every copy leaves its record: which version it wrote where. A later change of either side shows against
                // it, however the copy itself was checked (its report row says how).
                if (result.Outcome == ObjectOutcome.Transferred) copies.Add(result);
            }
        }
        using (var counters = Command(connection,
            @"UPDATE jobs SET transferred_objects = transferred_objects + $t, transferred_bytes = transferred_bytes + $tb,
                skipped_objects = skipped_objects + $s, skipped_bytes = skipped_bytes + $sb, failed_objects = failed_objects + $f,
                missing_objects = missing_objects + $missing, mismatched_objects = mismatched_objects + $mismatched, extra_objects = extra_objects + $extra
              WHERE seq = $seq",
            ("$t", transferred), ("$tb", transferredBytes), ("$s", skipped), ("$sb", skippedBytes), ("$f", failed),
            ("$missing", missing), ("$mismatched", mismatched), ("$extra", extra), ("$seq", seq)))
        {
            counters.ExecuteNonQuery();
        }
        if (runner is not null && transferred > 0)
        {
            // The runner's share, counted as the job's is (an object once): the runners' shares add up to the job's.
            using var share = Command(connection,
                "UPDATE job_runners SET transferred_objects = transferred_objects + $t, transferred_bytes = transferred_bytes + $tb WHERE job_seq = $seq AND runner = $runner",
                ("$t", transferred), ("$tb", transferredBytes), ("$seq", seq), ("$runner", runner));
            share.ExecuteNonQuery();
        }
        RecordCopies(connection, seq, copies);
        var resultLogs = results.Where(r => r.LogType is not null).Select(r => new LogRecord(r.LogType!.Value, r.Key, r.Message ?? ""));
        InsertLogs(connection, seq, resultLogs.Concat(logs));
        tx.Commit();
    }

    /// <summary>
    /// Keeps, per target object, the source ETag a copy read and the ETag the target gave it; a copy whose target ETag is
    /// unknown leaves no record (an older one would vouch for bytes it did not see).
    /// </summary>
    private static void RecordCopies(SqliteConnection connection, long seq, IReadOnlyList<ObjectResult> copies)
    {
        if (copies.Count == 0) return;
        using var record = Command(connection,
            @"INSERT OR REPLACE INTO copies (target_connector_id, target_bucket, target_key, source_etag, target_etag, copied_at)
              SELECT j.target_connector_id, j.target_bucket, j.target_prefix || o.key, o.etag, $etag, $now
              FROM jobs j JOIN objects o ON o.job_seq = j.seq AND o.key = $key WHERE j.seq = $seq AND $etag IS NOT NULL;
              DELETE FROM copies WHERE $etag IS NULL AND (target_connector_id, target_bucket, target_key) =
                (SELECT j.target_connector_id, j.target_bucket, j.target_prefix || $key FROM jobs j WHERE j.seq = $seq)");
        record.Parameters.AddWithValue("$seq", seq);
        record.Parameters.AddWithValue("$now", Now());
        var key = record.Parameters.Add("$key", SqliteType.Text);
        var etag = record.Parameters.Add("$etag", SqliteType.Text);
        foreach (var copy in copies)
        {
            key.Value = copy.Key;
            etag.Value = (object?)copy.TargetETag?.Trim('"').ToLowerInvariant() ?? DBNull.Value;
            record.ExecuteNonQuery();
        }
    }

    private static void InsertLogs(SqliteConnection connection, long seq, IEnumerable<LogRecord> logs)
    {
        using var insert = Command(connection,
            "INSERT INTO logs (job_seq, created_at, type, object_key, message) VALUES ($seq, $now, $type, $key, $message)");
        insert.Parameters.AddWithValue("$seq", seq);
        insert.Parameters.AddWithValue("$now", Now());
        var type = insert.Parameters.Add("$type", SqliteType.Text);
        var key = insert.Parameters.Add("$key", SqliteType.Text);
        var message = insert.Parameters.Add("$message", SqliteType.Text);
        insert.Prepare();
        foreach (var log in logs)
        {
            type.Value = log.Type.ToString();
            key.Value = (object?)log.ObjectKey ?? DBNull.Value;
            message.Value = log.Message;
            insert.ExecuteNonQuery();
        }
    }

    public void AddLogs(Guid id, IReadOnlyList<LogRecord> logs)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        InsertLogs(connection, JobSeq(connection, id), logs);
        tx.Commit();
    }

    public int ResetFailedObjects(Guid id)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        using var reset = Command(connection, "UPDATE objects SET outcome = 0, message = NULL, log_type = NULL WHERE job_seq = $seq AND outcome = 3", ("$seq", seq));
        var count = reset.ExecuteNonQuery();
        using (var reopen = Command(connection, $"UPDATE batches SET state = 0 WHERE job_seq = $seq AND state = 1 AND {HasPendingRows}", ("$seq", seq)))
        {
            reopen.ExecuteNonQuery();
        }
        // Every failed row goes back, so every Verify finding is decided again.
        using var counters = Command(connection,
            "UPDATE jobs SET failed_objects = failed_objects - $n, missing_objects = 0, mismatched_objects = 0, extra_objects = 0 WHERE seq = $seq",
            ("$n", count), ("$seq", seq));
        counters.ExecuteNonQuery();
        tx.Commit();
        return count;
    }

    // ---- Multipart ----

    public string? GetUploadId(Guid id, string key) =>
        Query("SELECT u.upload_id FROM uploads u JOIN jobs j ON j.seq = u.job_seq WHERE j.id = $id AND u.key = $key AND u.upload_id <> ''",
            r => r.GetString(0), ("$id", id.ToString()), ("$key", key)).FirstOrDefault();

    public void SaveUploadRequested(Guid id, string key, DateTimeOffset requestedAt) =>
        // Times in one format and zone compare as text: the earlier mark wins.
        Execute(@"INSERT INTO uploads (job_seq, key, upload_id, requested_at) SELECT seq, $key, '', $at FROM jobs WHERE id = $id
                  ON CONFLICT (job_seq, key) DO UPDATE SET upload_id = '', requested_at = MIN(COALESCE(requested_at, excluded.requested_at), excluded.requested_at)",
            ("$id", id.ToString()), ("$key", key), ("$at", Format(requestedAt)));

    public void ClearUploadRequested(Guid id, string key)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        foreach (var sql in new[] { "DELETE FROM uploads WHERE job_seq = $seq AND key = $key AND upload_id = ''", "UPDATE uploads SET requested_at = NULL WHERE job_seq = $seq AND key = $key" })
        {
            using var command = Command(connection, sql, ("$seq", seq), ("$key", key));
            command.ExecuteNonQuery();
        }
        tx.Commit();
    }

    public IReadOnlyList<RequestedUpload> GetRequestedUploads(Guid id) =>
        Query("SELECT u.key, u.requested_at, u.upload_id FROM uploads u JOIN jobs j ON j.seq = u.job_seq WHERE j.id = $id AND u.requested_at IS NOT NULL",
            r => new RequestedUpload(r.GetString(0), Parse(r.GetString(1)), r.GetString(2) is { Length: > 0 } recorded ? recorded : null), ("$id", id.ToString()));

    public void SaveUploadId(Guid id, string key, string uploadId) =>
        Execute(@"INSERT INTO uploads (job_seq, key, upload_id) SELECT seq, $key, $upload FROM jobs WHERE id = $id
                  ON CONFLICT (job_seq, key) DO UPDATE SET upload_id = excluded.upload_id",
            ("$id", id.ToString()), ("$key", key), ("$upload", uploadId));

    public IReadOnlyList<UploadedPart> GetUploadedParts(Guid id, string key) =>
        Query("SELECT p.part_number, p.etag, p.size FROM parts p JOIN jobs j ON j.seq = p.job_seq WHERE j.id = $id AND p.key = $key ORDER BY p.part_number",
            r => new UploadedPart(r.GetInt32(0), r.GetString(1), r.GetInt64(2)), ("$id", id.ToString()), ("$key", key));

    public void SavePart(Guid id, string key, UploadedPart part) =>
        Execute("INSERT OR REPLACE INTO parts (job_seq, key, part_number, etag, size) SELECT seq, $key, $n, $etag, $size FROM jobs WHERE id = $id",
            ("$id", id.ToString()), ("$key", key), ("$n", part.PartNumber), ("$etag", part.ETag), ("$size", part.Size));

    // ---- Update intents ----

    public void SaveUpdateIntent(Guid id, string key, string tags) =>
        Execute("INSERT OR REPLACE INTO update_intents (job_seq, key, tags) SELECT seq, $key, $tags FROM jobs WHERE id = $id",
            ("$id", id.ToString()), ("$key", key), ("$tags", tags));

    public IReadOnlyDictionary<string, string> GetUpdateIntents(Guid id) =>
        Query("SELECT u.key, u.tags FROM update_intents u JOIN jobs j ON j.seq = u.job_seq WHERE j.id = $id",
            r => (Key: r.GetString(0), Tags: r.GetString(1)), ("$id", id.ToString())).ToDictionary(i => i.Key, i => i.Tags, StringComparer.Ordinal);

    public void ForgetUpdateIntent(Guid id, string key) =>
        Execute("DELETE FROM update_intents WHERE key = $key AND job_seq = (SELECT seq FROM jobs WHERE id = $id)", ("$id", id.ToString()), ("$key", key));

        public void ForgetUpload(Guid id, string key)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        foreach (var sql in new[]
        {
            "DELETE FROM parts WHERE job_seq = $seq AND key = $key",
            "DELETE FROM uploads WHERE job_seq = $seq AND key = $key AND requested_at IS NULL",
            "UPDATE uploads SET upload_id = '' WHERE job_seq = $seq AND key = $key",
        })
        {
            using var command = Command(connection, sql, ("$seq", seq), ("$key", key));
            command.ExecuteNonQuery();
        }
        tx.Commit();
    }

    public IReadOnlyList<OpenUpload> GetOpenUploads(Guid id) =>
        Query("SELECT u.key, u.upload_id FROM uploads u JOIN jobs j ON j.seq = u.job_seq WHERE j.id = $id AND u.upload_id <> ''",
            r => new OpenUpload(r.GetString(0), r.GetString(1)), ("$id", id.ToString()));

    // ---- Reading ----

    public IEnumerable<ListedObject> StreamListedObjects(Guid id)
    {
        using var connection = Open();
        var seq = JobSeq(connection, id);
        using var command = Command(connection, "SELECT key, size, etag, last_modified, storage_class FROM objects WHERE job_seq = $seq AND target_only = 0 ORDER BY key", ("$seq", seq));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            yield return new ListedObject(reader.GetString(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetString(2),
                Parse(reader.GetString(3)), reader.IsDBNull(4) ? null : reader.GetString(4));
        }
    }

    public MigrationJobProgress GetProgress(Guid id)
    {
        var runners = GetJobRunners(id, StaleTime.Heartbeat);
        var progress = Query(
            @"SELECT id, name, state, phase, objects_found, transferred_objects, skipped_objects, failed_objects, bytes_found,
                     transferred_bytes + moving_bytes, skipped_bytes, listing_done, bytes_per_second, objects_per_second,
                     type, missing_objects, mismatched_objects, extra_objects, concurrency_level
              FROM jobs WHERE id = $id",
            r =>
            {
                var progress = new MigrationJobProgress
                {
                    Id = Guid.Parse(r.GetString(0)),
                    Name = r.GetString(1),
                    State = Enum.Parse<JobState>(r.GetString(2)),
                    Phase = r.IsDBNull(3) ? null : Enum.Parse<JobPhase>(r.GetString(3)),
                    Objects = r.GetInt64(4),
                    TransferredObjects = r.GetInt64(5),
                    SkippedObjects = r.GetInt64(6),
                    FailedObjects = r.GetInt64(7),
                    TotalBytes = r.GetInt64(8),
                    TransferredBytes = r.GetInt64(9),
                    ListingComplete = r.GetInt64(11) != 0,
                    BytesPerSecond = r.GetDouble(12),
                    ObjectsPerSecond = r.GetDouble(13),
                    ActiveConcurrency = r.GetInt32(18),
                };
                // Rates are of a run; a job no runner holds (a killed one never wrote its last zero) moves nothing.
                if (progress.State != JobState.Running) (progress.BytesPerSecond, progress.ObjectsPerSecond, progress.ActiveConcurrency) = (0, 0, 0);
                var skippedBytes = r.GetInt64(10);
                progress.PendingObjects = progress.Objects - progress.TransferredObjects - progress.SkippedObjects - progress.FailedObjects;
                if (r.GetString(14) == nameof(JobType.Verify))
                {
                    // A verify copies nothing: its skipped objects are the matching ones, its failed ones findings or errors.
                    progress.CheckedObjects = progress.Objects - progress.PendingObjects;
                    progress.MatchingObjects = progress.SkippedObjects;
                    progress.MissingObjects = r.GetInt64(15);
                    progress.MismatchedObjects = r.GetInt64(16);
                    progress.ExtraObjects = r.GetInt64(17);
                }
                RunnerShares.Add(progress, runners);
                Accounting.ProgressMath.Complete(progress, skippedBytes);
                return progress;
            },
            ("$id", id.ToString())).FirstOrDefault() ?? throw new KeyNotFoundException($"No migration job has the id {id}.");
        return progress;
    }

    /// <summary>Rates are measured by the runner in memory and stored with its periodic flush.</summary>
    public void SaveDispatchedThrough(Guid id, string key) =>
        Execute("UPDATE jobs SET dispatched_through = $key WHERE id = $id AND (dispatched_through IS NULL OR dispatched_through < $key)",
            ("$id", id.ToString()), ("$key", key));

    public string? GetDispatchedThrough(Guid id) =>
        Query("SELECT dispatched_through FROM jobs WHERE id = $id", r => r.IsDBNull(0) ? null : r.GetString(0), ("$id", id.ToString())).FirstOrDefault();

    public void SaveRates(Guid id, double bytesPerSecond, double objectsPerSecond, long movingBytes, int concurrencyLevel) =>
        Execute("UPDATE jobs SET bytes_per_second = $b, objects_per_second = $o, moving_bytes = $m, concurrency_level = $c WHERE id = $id",
            ("$id", id.ToString()), ("$b", bytesPerSecond), ("$o", objectsPerSecond), ("$m", movingBytes), ("$c", concurrencyLevel));

    public IReadOnlyList<MigrationJobLogEntry> GetLogs(Guid id, LogQuery query)
    {
        var where = "j.id = $id AND l.id > $after";
        var parameters = new List<(string, object?)> { ("$id", id.ToString()), ("$after", query.AfterSequence) };
        if (query.Types.Length > 0)
        {
            where += $" AND l.type IN ({string.Join(",", query.Types.Select((_, i) => "$type" + i))})";
            parameters.AddRange(query.Types.Select((t, i) => ("$type" + i, (object?)t.ToString())));
        }
        if (query.KeyPatterns.Length > 0)
        {
            where += $" AND ({string.Join(" OR ", query.KeyPatterns.Select((_, i) => "l.object_key GLOB $key" + i))})";
            parameters.AddRange(query.KeyPatterns.Select((p, i) => ("$key" + i, (object?)WildcardSql.ToGlob(p))));
        }
        parameters.Add(("$skip", query.Skip));
        parameters.Add(("$first", query.First == int.MaxValue ? -1 : query.First));
        return Query(
            $"SELECT l.created_at, j.id, l.type, l.object_key, l.message, l.id FROM logs l JOIN jobs j ON j.seq = l.job_seq WHERE {where} ORDER BY l.id LIMIT $first OFFSET $skip",
            r => new MigrationJobLogEntry
            {
                Sequence = r.GetInt64(5),
                CreatedAt = Parse(r.GetString(0)),
                JobId = Guid.Parse(r.GetString(1)),
                Type = Enum.TryParse<LogType>(r.GetString(2), out var type) ? type : LogType.MigrationError,
                ObjectKey = r.IsDBNull(3) ? null : r.GetString(3),
                Message = r.GetString(4),
            },
            parameters.ToArray());
    }

    /// <summary>
    /// Walks the objects' primary key (job, key) with one forward-only reader; the target listing is a primary-key
    /// lookup per row. No sort and no buffering: memory does not grow with the job.
    /// </summary>
    public IEnumerable<ObjectReportRow> StreamObjectReport(Guid id)
    {
        using var connection = Open();
        var seq = JobSeq(connection, id);
        using var command = Command(connection,
            // A target-only row (VerifyExtra) holds the target's listing: it has no source ETag.
            @"SELECT o.key, o.size, o.outcome, o.log_type, o.message, CASE WHEN o.target_only = 1 THEN NULL ELSE o.etag END, t.etag, o.verified_by, o.storage_class
              FROM objects o
              JOIN jobs j ON j.seq = o.job_seq
              LEFT JOIN target_objects t ON t.job_seq = o.job_seq AND t.key = j.target_prefix || o.key
              WHERE o.job_seq = $seq ORDER BY o.key",
            ("$seq", seq));
        using var r = command.ExecuteReader();
        while (r.Read())
        {
            yield return new ObjectReportRow(
                r.GetString(0), r.GetInt64(1), (ObjectOutcome)r.GetInt32(2),
                r.IsDBNull(3) ? null : Enum.TryParse<LogType>(r.GetString(3), out var type) ? type : null,
                r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6),
                r.IsDBNull(7) ? null : r.GetString(7), r.IsDBNull(8) ? null : r.GetString(8));
        }
    }
}

public sealed class DuplicateNameException(string message) : InvalidOperationException(message);
