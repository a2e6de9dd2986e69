using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State.Postgres;

public sealed partial class PostgresStateStore
{
    // ---- Jobs ----

    private const string JobSelect =
        @"SELECT j.seq, j.id, j.name, j.type, j.state, j.phase, j.source_connector_id, COALESCE(CASE WHEN s.hidden THEN s.endpoint ELSE s.name END, '(removed)'), j.source_bucket, j.source_prefix,
                 j.keys_json, j.target_connector_id, CASE WHEN j.target_connector_id = 0 THEN '' ELSE COALESCE(t.name, '(removed)') END, j.target_bucket, j.target_prefix, j.overwrite, j.filter_json,
                 j.concurrency, j.max_bytes_per_second, j.multipart_threshold, j.part_size, j.created_at, j.started_at, j.finished_at, j.error, j.no_progress_timeout_seconds, j.storage_class_map,
                 j.detached, j.runner, j.verify_deep, j.verify_metadata, j.update_json, j.fixed_concurrency
          FROM jobs j LEFT JOIN connectors s ON s.id = j.source_connector_id LEFT JOIN connectors t ON t.id = j.target_connector_id";

    private static MigrationJob ReadJob(NpgsqlDataReader r) => new()
    {
        Seq = r.GetInt64(0),
        Id = r.GetGuid(1),
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
        CreatedAt = ReadTime(r, 21),
        StartedAt = ReadTimeOrNull(r, 22),
        FinishedAt = ReadTimeOrNull(r, 23),
        Error = NullableString(r, 24),
        NoProgressTimeout = r.GetDouble(25) > 0 ? TimeSpan.FromSeconds(r.GetDouble(25)) : null,
        // Source class names match whatever their case, as when the job was created.
        StorageClassMap = new Dictionary<string, string>(
            r.IsDBNull(26) ? [] : JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(26)) ?? [], StringComparer.OrdinalIgnoreCase),
        Detached = r.GetBoolean(27),
        Runner = NullableString(r, 28),
        Deep = r.GetBoolean(29),
        CompareMetadata = r.GetBoolean(30),
        Update = r.IsDBNull(31) ? null : ObjectUpdate.FromJson(r.GetString(31)),
        FixedConcurrency = r.GetBoolean(32),
    };

    public void AddJob(MigrationJob job)
    {
        // created_at is the server's: jobs created on different hosts list in the order they were made.
        var (seq, created) = Query(
            @"INSERT INTO jobs (id, name, type, state, source_connector_id, source_bucket, source_prefix, keys_json, target_connector_id,
                target_bucket, target_prefix, overwrite, filter_json, concurrency, max_bytes_per_second, multipart_threshold, part_size, created_at, no_progress_timeout_seconds, storage_class_map, detached, verify_deep, verify_metadata, update_json, fixed_concurrency)
              VALUES (@id, @name, @type, @state, @src, @sbucket, @sprefix, @keys, @tgt, @tbucket, @tprefix, @overwrite, @filter,
                @concurrency, @bps, @threshold, @part, now(), @stall, @classes, @detached, @deep, @metadata, @update, @fixed) RETURNING seq, created_at",
            r => (r.GetInt64(0), ReadTime(r, 1)),
            P("id", job.Id), P("name", job.Name), P("type", job.Type.ToString()), P("state", job.State.ToString()),
            P("src", job.SourceConnectorId), P("sbucket", job.SourceBucket), P("sprefix", job.SourcePrefix),
            P("keys", JsonSerializer.Serialize(job.Keys)), P("tgt", job.TargetConnectorId), P("tbucket", job.TargetBucket),
            P("tprefix", job.TargetPrefix), P("overwrite", job.Overwrite.ToString()), P("filter", JsonSerializer.Serialize(job.Filter)),
            P("concurrency", job.Concurrency), P("bps", job.MaxBytesPerSecond), P("threshold", job.MultipartThreshold),
            P("part", job.PartSize), P("stall", job.NoProgressTimeout?.TotalSeconds ?? 0),
            Text("classes", job.StorageClassMap.Count == 0 ? null : JsonSerializer.Serialize(job.StorageClassMap)), P("detached", job.Detached),
            P("deep", job.Deep), P("metadata", job.CompareMetadata), Text("update", job.Update?.ToJson()), P("fixed", job.FixedConcurrency))[0];
        job.Seq = seq;
        job.CreatedAt = created;
    }

    public MigrationJob? FindJob(Guid id) => Query($"{JobSelect} WHERE j.id = @id", ReadJob, P("id", id)).FirstOrDefault();

    public IReadOnlyList<MigrationJob> GetJobs() => Query($"{JobSelect} ORDER BY j.created_at DESC, j.seq DESC", ReadJob);

    public bool TryTransition(Guid id, JobState[] from, JobState to, JobPhase? phase = null, string? error = null, bool? detached = null) =>
        Transition(id, from, to, phase, error, runnerId: null, detached);

    public bool TryStartRun(Guid id, string runnerId, JobPhase phase) =>
        // One UPDATE ... WHERE state = 'Pending': of racers, the first takes the row lock and the others recheck the
        // row after it commits, see Running, and change nothing.
        Transition(id, [JobState.Pending], JobState.Running, phase, error: null, runnerId);

    public bool TrySettleRun(Guid id, string runnerId, JobState to, string? error = null) =>
        Transition(id, [JobState.Running, JobState.Interrupted], to, phase: null, error, runnerId);

    /// <summary>As <see cref="SqliteStateStore"/>: a move into Running claims the job for the runner; any other move with a runner needs it to still hold the job.</summary>
    private bool Transition(Guid id, JobState[] from, JobState to, JobPhase? phase, string? error, string? runnerId, bool? detached = null)
    {
        // A new run starts without the error of the run before it (a Failed job resumed once its cause was fixed).
        var started = to == JobState.Running ? ", started_at = COALESCE(started_at, now()), heartbeat_at = now(), runner = @runner" : "";
        var errorSet = to == JobState.Running ? "error = NULL" : "error = COALESCE(@error, error)";
        var finished = JobStates.IsTerminal(to) ? ", finished_at = now()" : "";
        var control = to == JobState.Running || JobStates.IsSettled(to) ? ", control = 0" : "";
        var held = runnerId is not null && to != JobState.Running ? " AND runner = @runner" : "";
        var handedOver = detached is null ? "" : ", detached = @detached";
        // A run that settles its job as Interrupted lets go of it: its heartbeat must not take the job back.
        var released = runnerId is not null && to == JobState.Interrupted ? ", runner = NULL" : "";
        return Execute(
            $"UPDATE jobs SET state = @to, phase = @phase, {errorSet}{started}{finished}{control}{handedOver}{released} WHERE id = @id AND state = ANY(@from){held}",
            P("id", id), P("to", to.ToString()), Text("phase", phase?.ToString()), Text("error", error), Text("runner", runnerId),
            P("detached", detached is true), P("from", from.Select(s => s.ToString()).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text)) == 1;
    }

    public void SetPhase(Guid id, JobPhase? phase) =>
        Execute("UPDATE jobs SET phase = @phase WHERE id = @id", P("id", id), Text("phase", phase?.ToString()));

    public void RemoveJob(Guid id) => InTransaction((connection, tx) =>
    {
        // Its objects, listings, uploads, parts, logs and update intents go with the row (ON DELETE CASCADE).
        long sourceConnectorId;
        using (var delete = Command(connection, tx, "DELETE FROM jobs WHERE id = @id RETURNING source_connector_id", P("id", id)))
        {
            sourceConnectorId = delete.ExecuteScalar() is long source ? source : throw NoJob(id);
        }
        // A source given inline (-SourceEndpoint) is a hidden connector that belongs to its job: it goes with it, and its
        // sealed secret with it. Hidden connectors left behind go too, once no job uses them (not the newest ones: a job
        // being created adds its connector just before itself). "Newest" by the server's clock.
        using var hidden = Command(connection, tx,
            @"DELETE FROM connectors c WHERE c.hidden AND (c.id = @source OR c.created_at < now() - interval '1 hour')
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.source_connector_id = c.id OR j.target_connector_id = c.id)",
            P("source", sourceConnectorId));
        hidden.ExecuteNonQuery();
    });

    public void SetDetached(Guid id, bool detached) =>
        Execute("UPDATE jobs SET detached = @d WHERE id = @id", P("id", id), P("d", detached));

    public IReadOnlyList<(Guid Id, JobState State)> GetDetachedJobsToRun(int limit) =>
        Query("SELECT id, state FROM jobs WHERE detached AND state IN ('Pending', 'Interrupted') ORDER BY created_at, seq LIMIT @limit",
            r => (r.GetGuid(0), Enum.Parse<JobState>(r.GetString(1))), P("limit", limit));

    // ---- Runs and control requests ----

    public void SetControlRequest(Guid id, ControlRequest request) =>
        Execute("UPDATE jobs SET control = @c WHERE id = @id", P("id", id), P("c", (int)request));

    public bool TrySetControlRequest(Guid id, ControlRequest request) =>
        Execute("UPDATE jobs SET control = @c WHERE id = @id AND control = 0", P("id", id), P("c", (int)request)) == 1;

    public ControlRequest GetControlRequest(Guid id) =>
        Query("SELECT control FROM jobs WHERE id = @id", r => (ControlRequest)r.GetInt32(0), P("id", id)).FirstOrDefault();

    public RunnerLease Heartbeat(Guid id, string runnerId, JobPhase? phase)
    {
        // Held: one round trip (the usual case). A job marked Interrupted while its runner was only slow is taken back.
        if (Execute("UPDATE jobs SET heartbeat_at = now() WHERE id = @id AND state = 'Running' AND runner = @runner", P("id", id), P("runner", runnerId)) == 1)
        {
            return RunnerLease.Held;
        }
        return Execute("UPDATE jobs SET heartbeat_at = now(), state = 'Running', phase = @phase WHERE id = @id AND state = 'Interrupted' AND runner = @runner",
            P("id", id), P("runner", runnerId), Text("phase", phase?.ToString())) == 1
            ? RunnerLease.Reclaimed
            : RunnerLease.Lost;
    }

    public int MarkStaleJobsInterrupted(TimeSpan staleAfter, IReadOnlyCollection<Guid> alive) =>
        // The server's clock on both sides of the comparison: a host whose clock is off cannot mark a live job stale.
        Execute(
            @"UPDATE jobs SET state = 'Interrupted', phase = NULL
              WHERE state = 'Running' AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => @stale)) AND NOT (id = ANY(@alive))",
            P("stale", staleAfter.TotalSeconds), P("alive", alive.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Uuid));

    public IReadOnlyList<(Guid Id, string Runner)> GetRunningJobRunners() =>
        Query("SELECT id, runner FROM jobs WHERE state = 'Running' AND runner IS NOT NULL", r => (r.GetGuid(0), r.GetString(1)));

    public bool MarkInterrupted(Guid id, string runnerId) =>
        Execute("UPDATE jobs SET state = 'Interrupted', phase = NULL WHERE id = @id AND state = 'Running' AND runner = @runner",
            P("id", id), P("runner", runnerId)) == 1;

    // ---- Workers ----

    public void AddWorker(MigrationWorker worker)
    {
        var started = Query(
            @"INSERT INTO workers (id, host, process_id, runner_prefix, user_name, started_at, heartbeat_at, max_jobs, concurrency, idle_exit_seconds, log_path)
              VALUES (@id, @host, @pid, @prefix, @user, now(), now(), @max, @concurrency, @idle, @log) RETURNING started_at",
            r => ReadTime(r, 0),
            P("id", worker.Id), P("host", worker.ComputerName), P("pid", worker.ProcessId), P("prefix", worker.RunnerPrefix),
            P("user", worker.UserName), P("max", worker.MaxJobs), P("concurrency", worker.Concurrency, NpgsqlDbType.Integer),
            P("idle", worker.IdleExit?.TotalSeconds, NpgsqlDbType.Double), Text("log", worker.LogPath))[0];
        worker.StartedAt = worker.LastHeartbeat = started;
    }

    public WorkerSignal WorkerHeartbeat(Guid id)
    {
        var stop = Query("UPDATE workers SET heartbeat_at = now() WHERE id = @id RETURNING stop_requested", r => r.GetBoolean(0), P("id", id));
        return stop.Count == 0 ? WorkerSignal.Gone : stop[0] ? WorkerSignal.Stop : WorkerSignal.Run;
    }

    public bool RequestWorkerStop(Guid id) => Execute("UPDATE workers SET stop_requested = true WHERE id = @id", P("id", id)) == 1;

    public void RemoveWorker(Guid id) => Execute("DELETE FROM workers WHERE id = @id", P("id", id));

    public IReadOnlyList<MigrationWorker> GetWorkers()
    {
        var workers = Query(
            @"SELECT id, host, process_id, runner_prefix, user_name, started_at, heartbeat_at, max_jobs, concurrency, idle_exit_seconds, log_path, stop_requested
              FROM workers ORDER BY started_at",
            r => new MigrationWorker
            {
                Id = r.GetGuid(0),
                ComputerName = r.GetString(1),
                ProcessId = r.GetInt32(2),
                RunnerPrefix = r.GetString(3),
                UserName = r.GetString(4),
                StartedAt = ReadTime(r, 5),
                LastHeartbeat = ReadTime(r, 6),
                MaxJobs = r.GetInt32(7),
                Concurrency = r.IsDBNull(8) ? null : r.GetInt32(8),
                IdleExit = r.IsDBNull(9) ? null : TimeSpan.FromSeconds(r.GetDouble(9)),
                LogPath = NullableString(r, 10),
                State = r.GetBoolean(11) ? WorkerState.Stopping : WorkerState.Running,
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
}
