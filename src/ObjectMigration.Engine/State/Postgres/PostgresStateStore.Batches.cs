using Npgsql;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State.Postgres;

// Batches of a job's objects leased to runners on any host, and the runners that take part in a job (IBatchLeases).
// Leases and heartbeats are the server's now(): hosts' clocks are never compared.
public sealed partial class PostgresStateStore
{
    private const int LegacyBatchSize = 1000;

    private const string HasPendingRows =
        "EXISTS (SELECT 1 FROM objects o WHERE o.job_seq = batches.job_seq AND o.outcome = 0 AND o.key > batches.after_key AND o.key <= batches.last_key)";

    private const string JobSeqOf = "(SELECT seq FROM jobs WHERE id = @id)";

    /// <summary>
    /// Puts newly pending <paramref name="keys"/> under open batches, in the transaction that inserted them (which holds
    /// the job's row, so batches of one job are made one writer at a time): keys past every batch make new ones (cut by
    /// <see cref="BatchCut"/>), keys inside earlier batches open those again.
    /// </summary>
    private static void CoverKeys(NpgsqlConnection connection, NpgsqlTransaction tx, long seq, IEnumerable<string> keys)
    {
        string? lastCovered;
        using (var read = Command(connection, tx, "SELECT max(last_key) FROM batches WHERE job_seq = @seq", P("seq", seq)))
        {
            lastCovered = read.ExecuteScalar() as string;
        }
        CutBatches(connection, tx, seq, keys, lastCovered, closeAt: null);
    }

    /// <summary>
    /// Batches for the keys past <paramref name="lastCovered"/> (see <see cref="BatchCut.Plan"/>); keys at or before it
    /// open their batches again (callers that add keys behind hold the job's row, which CompleteBatch waits for).
    /// </summary>
    private static void CutBatches(NpgsqlConnection connection, NpgsqlTransaction tx, long seq, IEnumerable<string> keys, string? lastCovered, string? closeAt)
    {
        var (behind, cuts) = BatchCut.Plan(keys, lastCovered, closeAt);
        if (cuts.Count > 0) LockBatchNumbers(connection, tx, seq);
        if (cuts.Count > 0)
        {
            // A batch with no key is done as it is made: nothing to claim.
            using var insert = Command(connection, tx,
                @"INSERT INTO batches (job_seq, batch_no, after_key, last_key, state)
                  SELECT @seq, (SELECT COALESCE(max(batch_no), 0) FROM batches WHERE job_seq = @seq) + c.n::integer, c.after, c.last, c.state
                  FROM unnest(@afters, @lasts, @states) WITH ORDINALITY AS c(after, last, state, n)",
                P("seq", seq),
                P("afters", cuts.Select(c => c.After).ToArray(), NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text),
                P("lasts", cuts.Select(c => c.Last).ToArray(), NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text),
                P("states", cuts.Select(c => (short)(c.Empty ? 1 : 0)).ToArray(), NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Smallint));
            insert.ExecuteNonQuery();
        }
        if (behind is var (min, max))
        {
            using var reopen = Command(connection, tx,
                "UPDATE batches SET state = 0 WHERE job_seq = @seq AND state = 1 AND last_key >= @min AND after_key < @max",
                P("seq", seq), Text("min", min), Text("max", max));
            reopen.ExecuteNonQuery();
        }
    }

    /// <summary>Key of the lock under which a job's batches are numbered (two-int advisory keys, apart from the logs' one-key locks).</summary>
    private const int BatchNumbering = 21;

    /// <summary>
    /// Batches of one job are numbered one writer at a time (the next is the highest + 1). A lock of its own, not the
    /// job's row: listers of several ranges save pages at once, and the row is what results, heartbeats and progress
    /// write. Taken after the job's row by those that hold it.
    /// </summary>
    private static void LockBatchNumbers(NpgsqlConnection connection, NpgsqlTransaction tx, long seq)
    {
        using var command = Command(connection, tx, "SELECT pg_advisory_xact_lock(@kind, @seq::integer)", P("kind", BatchNumbering), P("seq", seq));
        command.ExecuteNonQuery();
    }

    private static void ReopenBatchesWithPendingRows(NpgsqlConnection connection, NpgsqlTransaction tx, long seq)
    {
        using var reopen = Command(connection, tx, $"UPDATE batches SET state = 0 WHERE job_seq = @seq AND state = 1 AND {HasPendingRows}", P("seq", seq));
        reopen.ExecuteNonQuery();
    }

    public void PrepareBatches(Guid id, TimeSpan aliveWithin) => InTransaction((connection, tx) =>
    {
        // Ranges before the job's row, in the order a listing page takes them.
        FreeLeasesOfGoneRunners(connection, tx, "listing_ranges", JobSeq(connection, tx, id), aliveWithin);
        var seq = LockJob(connection, tx, id);
        LockBatchNumbers(connection, tx, seq);
        // Rows listed before batches existed: cut in key order, as the listing would have.
        using (var legacy = Command(connection, tx,
            @"WITH covered AS (SELECT COALESCE(max(last_key), '') AS last, COALESCE(max(batch_no), 0) AS n FROM batches WHERE job_seq = @seq),
                   keyed AS (SELECT o.key, (row_number() OVER (ORDER BY o.key) - 1) / @size AS part
                             FROM objects o, covered WHERE o.job_seq = @seq AND o.key > covered.last),
                   cut AS (SELECT part, max(key) AS last FROM keyed GROUP BY part)
              INSERT INTO batches (job_seq, batch_no, after_key, last_key, state)
              SELECT @seq, covered.n + cut.part + 1, COALESCE(lag(cut.last) OVER (ORDER BY cut.part), covered.last), cut.last, 1
              FROM cut, covered",
            P("seq", seq), P("size", (long)LegacyBatchSize)))
        {
            legacy.ExecuteNonQuery();
        }
        ReopenBatchesWithPendingRows(connection, tx, seq);
        FreeLeasesOfGoneRunners(connection, tx, "batches", seq, aliveWithin);
    });

    public IReadOnlyList<ObjectBatch> ClaimBatches(Guid id, string runner, int count, TimeSpan lease)
    {
        // SKIP LOCKED: runners claiming at once each get other batches, and none waits for another's claim.
        var claimed = Query(
            $@"UPDATE batches b SET lease_owner = @runner, lease_until = now() + make_interval(secs => @lease), claims = b.claims + 1
               WHERE b.job_seq = {JobSeqOf} AND b.batch_no IN (
                   SELECT batch_no FROM batches
                   WHERE job_seq = {JobSeqOf} AND state = 0 AND (lease_owner IS NULL OR lease_until < now())
                   ORDER BY batch_no LIMIT @count
                   FOR UPDATE SKIP LOCKED)
               RETURNING b.batch_no, b.after_key, b.last_key, b.claims",
            r => new ObjectBatch(r.GetInt32(0), r.GetString(1), r.GetString(2), r.GetInt32(3)),
            P("id", id), Text("runner", runner), P("lease", lease.TotalSeconds), P("count", count));
        claimed.Sort((a, b) => a.BatchNo.CompareTo(b.BatchNo));
        return claimed;
    }

    public IReadOnlyList<int> RenewBatches(Guid id, string runner, TimeSpan lease) =>
        Query($@"UPDATE batches SET lease_until = now() + make_interval(secs => @lease)
                 WHERE job_seq = {JobSeqOf} AND lease_owner = @runner AND state = 0 RETURNING batch_no",
            r => r.GetInt32(0), P("id", id), Text("runner", runner), P("lease", lease.TotalSeconds));

    public bool CompleteBatch(Guid id, int batchNo, string runner) => InTransaction((connection, tx) =>
    {
        // Rows are added to a job (and their batches opened) under its row lock: waiting for it here, then looking in a
        // statement of its own (a fresh snapshot under READ COMMITTED), a row being added cannot be missed, and a batch
        // completed first is opened again by the insert that follows.
        long seq;
        using (var share = Command(connection, tx, "SELECT seq FROM jobs WHERE id = @id FOR SHARE", P("id", id)))
        {
            seq = share.ExecuteScalar() is long found ? found : throw NoJob(id);
        }
        using var complete = Command(connection, tx,
            $@"UPDATE batches SET state = 1, lease_owner = NULL, lease_until = NULL
               WHERE job_seq = @seq AND batch_no = @batch AND lease_owner = @runner AND state = 0 AND NOT {HasPendingRows}",
            P("seq", seq), P("batch", batchNo), Text("runner", runner));
        return complete.ExecuteNonQuery() == 1;
    });

    public int CountOpenBatches(Guid id) =>
        (int)Query($"SELECT count(*) FROM batches WHERE job_seq = {JobSeqOf} AND state = 0", r => r.GetInt64(0), P("id", id)).First();

    public void SaveRunnerProgress(Guid id, JobWorkerProgress p) =>
        Execute($@"INSERT INTO job_runners (job_seq, runner, host, process_id, role, bytes_per_second, objects_per_second, concurrency_level,
                                            held_batches, joined_at, heartbeat_at)
                   SELECT seq, @runner, @host, @pid, @role, @bps, @ops, @level, @held, now(), now() FROM jobs WHERE id = @id
                   ON CONFLICT (job_seq, runner) DO UPDATE SET role = EXCLUDED.role, bytes_per_second = EXCLUDED.bytes_per_second,
                       objects_per_second = EXCLUDED.objects_per_second, concurrency_level = EXCLUDED.concurrency_level,
                       held_batches = EXCLUDED.held_batches, heartbeat_at = now()
                   WHERE job_runners.left_at IS NULL",
            P("id", id), Text("runner", p.Runner), Text("host", p.ComputerName), P("pid", p.ProcessId), Text("role", p.Role),
            P("bps", p.BytesPerSecond), P("ops", p.ObjectsPerSecond), P("level", p.ActiveConcurrency), P("held", p.HeldBatches));

    /// <summary>Lets go the leases (of batches or listing ranges) of runners that are gone: not joined, left, or silent too long.</summary>
    private static void FreeLeasesOfGoneRunners(NpgsqlConnection connection, NpgsqlTransaction tx, string table, long seq, TimeSpan aliveWithin)
    {
        using var free = Command(connection, tx,
            $@"UPDATE {table} SET lease_owner = NULL, lease_until = NULL WHERE job_seq = @seq AND lease_owner IS NOT NULL
               AND lease_owner NOT IN (SELECT runner FROM job_runners WHERE job_seq = @seq AND role = 'Joined' AND left_at IS NULL
                                        AND heartbeat_at >= now() - make_interval(secs => @alive))",
            P("seq", seq), P("alive", aliveWithin.TotalSeconds));
        free.ExecuteNonQuery();
    }

    public void LeaveJob(Guid id, string runner) => InTransaction((connection, tx) =>
    {
        using var leave = Command(connection, tx,
            $@"UPDATE listing_ranges SET lease_owner = NULL, lease_until = NULL WHERE job_seq = {JobSeqOf} AND lease_owner = @runner;
               UPDATE batches SET lease_owner = NULL, lease_until = NULL WHERE job_seq = {JobSeqOf} AND lease_owner = @runner;
               UPDATE job_runners SET left_at = now(), bytes_per_second = 0, objects_per_second = 0, moving_bytes = 0, concurrency_level = 0, held_batches = 0
               WHERE job_seq = {JobSeqOf} AND runner = @runner",
            P("id", id), Text("runner", runner));
        leave.ExecuteNonQuery();
    });

    public IReadOnlyList<JobWorkerProgress> GetJobRunners(Guid id, TimeSpan staleAfter) =>
        Query($@"SELECT runner, host, process_id, role, transferred_objects, transferred_bytes, bytes_per_second, objects_per_second,
                        concurrency_level, held_batches, joined_at, heartbeat_at,
                        left_at IS NULL AND heartbeat_at >= now() - make_interval(secs => @stale)
                 FROM job_runners WHERE job_seq = {JobSeqOf} ORDER BY joined_at, runner",
            r => RunnerShares.Read(r, i => ReadTime(r, i)),
            P("id", id), P("stale", staleAfter.TotalSeconds));

    public IEnumerable<CopyRow> StreamCopies(long targetConnectorId, string targetBucket)
    {
        using var connection = Open();
        using var command = Command(connection, null,
            "SELECT target_key, source_etag, target_etag, copied_at FROM copies WHERE target_connector_id = @id AND target_bucket = @bucket ORDER BY target_key",
            P("id", targetConnectorId), Text("bucket", targetBucket));
        using var reader = command.ExecuteReader();
        while (reader.Read()) yield return new CopyRow(reader.GetString(0), NullableString(reader, 1), reader.GetString(2), ReadTime(reader, 3));
    }

    public IReadOnlyList<Guid> GetJoinableJobs(int limit, TimeSpan staleAfter) =>
        Query(@"SELECT j.id FROM jobs j
                WHERE j.detached AND j.state = 'Running' AND j.control = 0 AND j.phase IS DISTINCT FROM 'Listing'
                  AND j.heartbeat_at >= now() - make_interval(secs => @stale)
                  AND ((NOT j.listing_done AND j.keys_json = '[]')
                       OR EXISTS (SELECT 1 FROM batches b WHERE b.job_seq = j.seq AND b.state = 0 AND (b.lease_owner IS NULL OR b.lease_until < now())))
                ORDER BY j.created_at, j.seq LIMIT @limit",
            r => r.GetGuid(0), P("stale", staleAfter.TotalSeconds), P("limit", limit));
}
