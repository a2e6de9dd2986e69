using Microsoft.Data.Sqlite;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State;

// Batches of a job's objects leased to runners, and the runners that take part in a job (IBatchLeases). In SQLite the
// store's clock is this host's: one file is shared only by processes of one host.
public sealed partial class SqliteStateStore
{
    /// <summary>Rows a batch made of rows listed before batches existed holds at most.</summary>
    private const int LegacyBatchSize = 1000;

    /// <summary>
    /// Puts newly pending <paramref name="keys"/> under open batches: keys past every batch make new ones (the listing's
    /// next page, cut into batches of <see cref="BatchCut.Size"/>), keys inside earlier batches open those again (keys
    /// only the target holds, resets).
    /// </summary>
    private static void CoverKeys(SqliteConnection connection, long seq, IEnumerable<string> keys)
    {
        string? lastCovered;
        using (var read = Command(connection, "SELECT MAX(last_key) FROM batches WHERE job_seq = $seq", ("$seq", seq)))
        {
            lastCovered = read.ExecuteScalar() as string;
        }
        CutBatches(connection, seq, keys, lastCovered, closeAt: null);
    }

    /// <summary>Batches for the keys past <paramref name="lastCovered"/> (see <see cref="BatchCut.Plan"/>); keys at or before it open their batches again.</summary>
    private static void CutBatches(SqliteConnection connection, long seq, IEnumerable<string> keys, string? lastCovered, string? closeAt)
    {
        var (behind, cuts) = BatchCut.Plan(keys, lastCovered, closeAt);
        foreach (var (after, last, empty) in cuts)
        {
            // A batch with no key is done as it is made: nothing to claim.
            using var insert = Command(connection,
                @"INSERT INTO batches (job_seq, batch_no, after_key, last_key, state)
                  VALUES ($seq, COALESCE((SELECT MAX(batch_no) FROM batches WHERE job_seq = $seq), 0) + 1, $after, $last, $state)",
                ("$seq", seq), ("$after", after), ("$last", last), ("$state", empty ? 1 : 0));
            insert.ExecuteNonQuery();
        }
        if (behind is var (min, max))
        {
            using var reopen = Command(connection,
                "UPDATE batches SET state = 0 WHERE job_seq = $seq AND state = 1 AND last_key >= $min AND after_key < $max",
                ("$seq", seq), ("$min", min), ("$max", max));
            reopen.ExecuteNonQuery();
        }
    }

    private const string HasPendingRows =
        "EXISTS (SELECT 1 FROM objects o WHERE o.job_seq = batches.job_seq AND o.outcome = 0 AND o.key > batches.after_key AND o.key <= batches.last_key)";

    public void PrepareBatches(Guid id, TimeSpan aliveWithin)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        string lastCovered;
        using (var read = Command(connection, "SELECT COALESCE(MAX(last_key), '') FROM batches WHERE job_seq = $seq", ("$seq", seq)))
        {
            lastCovered = (string)read.ExecuteScalar()!;
        }
        // Rows listed by a version without batches: cut in key order, as the listing would have.
        var boundaries = new List<string>();
        using (var keys = Command(connection, "SELECT key FROM objects WHERE job_seq = $seq AND key > $after ORDER BY key", ("$seq", seq), ("$after", lastCovered)))
        using (var reader = keys.ExecuteReader())
        {
            var (count, last) = (0, (string?)null);
            while (reader.Read())
            {
                last = reader.GetString(0);
                if (++count % LegacyBatchSize == 0) boundaries.Add(last);
            }
            if (last is not null && (boundaries.Count == 0 || boundaries[^1] != last)) boundaries.Add(last);
        }
        foreach (var boundary in boundaries)
        {
            // Made done: the statement below opens those that hold pending rows.
            using var insert = Command(connection,
                @"INSERT INTO batches (job_seq, batch_no, after_key, last_key, state)
                  VALUES ($seq, COALESCE((SELECT MAX(batch_no) FROM batches WHERE job_seq = $seq), 0) + 1, $after, $last, 1)",
                ("$seq", seq), ("$after", lastCovered), ("$last", boundary));
            insert.ExecuteNonQuery();
            lastCovered = boundary;
        }
        var cutoff = Format(DateTimeOffset.UtcNow - aliveWithin);
        using (var reopen = Command(connection, $"UPDATE batches SET state = 0 WHERE job_seq = $seq AND state = 1 AND {HasPendingRows}", ("$seq", seq)))
        {
            reopen.ExecuteNonQuery();
        }
        foreach (var table in new[] { "batches", "listing_ranges" })
        {
            using var free = Command(connection,
                $@"UPDATE {table} SET lease_owner = NULL, lease_until = NULL WHERE job_seq = $seq AND lease_owner IS NOT NULL
                   AND lease_owner NOT IN (SELECT runner FROM job_runners WHERE job_seq = $seq AND role = 'Joined' AND left_at IS NULL AND heartbeat_at >= $cutoff)",
                ("$seq", seq), ("$cutoff", cutoff));
            free.ExecuteNonQuery();
        }
        tx.Commit();
    }

    public IReadOnlyList<ObjectBatch> ClaimBatches(Guid id, string runner, int count, TimeSpan lease)
    {
        var now = DateTimeOffset.UtcNow;
        // Looked for first: an idle runner asks often, and a read does not take the writer's lock that an UPDATE takes
        // even when it changes nothing.
        if (Query(@"SELECT 1 FROM batches b JOIN jobs j ON j.seq = b.job_seq
                    WHERE j.id = $id AND b.state = 0 AND (b.lease_owner IS NULL OR b.lease_until < $now) LIMIT 1",
                r => 1, ("$id", id.ToString()), ("$now", Format(now))).Count == 0)
        {
            return [];
        }
        // One statement: SQLite's single writer makes the pick and the lease atomic (PostgreSQL needs SKIP LOCKED).
        var claimed = Query(
            @"UPDATE batches SET lease_owner = $runner, lease_until = $until, claims = claims + 1
              WHERE job_seq = (SELECT seq FROM jobs WHERE id = $id) AND batch_no IN (
                  SELECT b.batch_no FROM batches b JOIN jobs j ON j.seq = b.job_seq
                  WHERE j.id = $id AND b.state = 0 AND (b.lease_owner IS NULL OR b.lease_until < $now)
                  ORDER BY b.batch_no LIMIT $count)
              RETURNING batch_no, after_key, last_key, claims",
            r => new ObjectBatch(r.GetInt32(0), r.GetString(1), r.GetString(2), r.GetInt32(3)),
            ("$id", id.ToString()), ("$runner", runner), ("$until", Format(now + lease)), ("$now", Format(now)), ("$count", count));
        claimed.Sort((a, b) => a.BatchNo.CompareTo(b.BatchNo));
        return claimed;
    }

    public IReadOnlyList<int> RenewBatches(Guid id, string runner, TimeSpan lease) =>
        Query(@"UPDATE batches SET lease_until = $until WHERE job_seq = (SELECT seq FROM jobs WHERE id = $id) AND lease_owner = $runner AND state = 0
                RETURNING batch_no",
            r => r.GetInt32(0), ("$id", id.ToString()), ("$runner", runner), ("$until", Format(DateTimeOffset.UtcNow + lease)));

    public bool CompleteBatch(Guid id, int batchNo, string runner) =>
        Execute($@"UPDATE batches SET state = 1, lease_owner = NULL, lease_until = NULL
                   WHERE job_seq = (SELECT seq FROM jobs WHERE id = $id) AND batch_no = $batch AND lease_owner = $runner AND state = 0
                     AND NOT {HasPendingRows}",
            ("$id", id.ToString()), ("$batch", batchNo), ("$runner", runner)) == 1;

    public int CountOpenBatches(Guid id) =>
        Query("SELECT COUNT(*) FROM batches b JOIN jobs j ON j.seq = b.job_seq WHERE j.id = $id AND b.state = 0", r => r.GetInt32(0),
            ("$id", id.ToString())).First();

    public void SaveRunnerProgress(Guid id, JobWorkerProgress p)
    {
        var now = Now();
        Execute(
            @"INSERT INTO job_runners (job_seq, runner, host, process_id, role, transferred_objects, transferred_bytes, bytes_per_second,
                                       objects_per_second, moving_bytes, concurrency_level, held_batches, joined_at, heartbeat_at)
              SELECT seq, $runner, $host, $pid, $role, $objects, $bytes, $bps, $ops, $moving, $level, $held, $now, $now FROM jobs WHERE id = $id
              ON CONFLICT (job_seq, runner) DO UPDATE SET role = excluded.role, bytes_per_second = excluded.bytes_per_second,
                  objects_per_second = excluded.objects_per_second, moving_bytes = excluded.moving_bytes,
                  concurrency_level = excluded.concurrency_level, held_batches = excluded.held_batches, heartbeat_at = excluded.heartbeat_at
              WHERE job_runners.left_at IS NULL",
            ("$id", id.ToString()), ("$runner", p.Runner), ("$host", p.ComputerName), ("$pid", p.ProcessId), ("$role", p.Role),
            ("$objects", 0L), ("$bytes", 0L), ("$bps", p.BytesPerSecond), ("$ops", p.ObjectsPerSecond),
            ("$moving", 0L), ("$level", p.ActiveConcurrency), ("$held", p.HeldBatches), ("$now", now));
    }

    public void LeaveJob(Guid id, string runner) =>
        Execute(@"UPDATE batches SET lease_owner = NULL, lease_until = NULL WHERE job_seq = (SELECT seq FROM jobs WHERE id = $id) AND lease_owner = $runner;
                  UPDATE listing_ranges SET lease_owner = NULL, lease_until = NULL WHERE job_seq = (SELECT seq FROM jobs WHERE id = $id) AND lease_owner = $runner;
                  UPDATE job_runners SET left_at = $now, bytes_per_second = 0, objects_per_second = 0, moving_bytes = 0, concurrency_level = 0, held_batches = 0
                  WHERE job_seq = (SELECT seq FROM jobs WHERE id = $id) AND runner = $runner",
            ("$id", id.ToString()), ("$runner", runner), ("$now", Now()));

    public IReadOnlyList<JobWorkerProgress> GetJobRunners(Guid id, TimeSpan staleAfter)
    {
        var cutoff = Format(DateTimeOffset.UtcNow - staleAfter);
        return Query(
            @"SELECT r.runner, r.host, r.process_id, r.role, r.transferred_objects, r.transferred_bytes, r.bytes_per_second, r.objects_per_second,
                     r.concurrency_level, r.held_batches, r.joined_at, r.heartbeat_at, r.left_at IS NULL AND r.heartbeat_at >= $cutoff
              FROM job_runners r JOIN jobs j ON j.seq = r.job_seq WHERE j.id = $id ORDER BY r.joined_at, r.runner",
            r => RunnerShares.Read(r, i => Parse(r.GetString(i))),
            ("$id", id.ToString()), ("$cutoff", cutoff));
    }

    public IReadOnlyList<Guid> GetJoinableJobs(int limit, TimeSpan staleAfter)
    {
        var now = DateTimeOffset.UtcNow;
        return Query(
            @"SELECT j.id FROM jobs j
              WHERE j.detached = 1 AND j.state = 'Running' AND j.control = 0 AND j.phase IS NOT 'Listing' AND j.heartbeat_at >= $cutoff
                AND ((j.listing_done = 0 AND j.keys_json = '[]')
                     OR EXISTS (SELECT 1 FROM batches b WHERE b.job_seq = j.seq AND b.state = 0 AND (b.lease_owner IS NULL OR b.lease_until < $now)))
              ORDER BY j.created_at, j.seq LIMIT $limit",
            r => Guid.Parse(r.GetString(0)), ("$cutoff", Format(now - staleAfter)), ("$now", Format(now)), ("$limit", limit));
    }
}
