using Npgsql;
using NpgsqlTypes;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State.Postgres;

public sealed partial class PostgresStateStore
{
    // ---- Listing ----

    public (string? Token, bool Done) GetListingCheckpoint(Guid id, bool target)
    {
        var prefix = target ? "target_" : "";
        var found = Query($"SELECT {prefix}listing_token, {prefix}listing_done FROM jobs WHERE id = @id",
            r => (NullableString(r, 0), r.GetBoolean(1)), P("id", id));
        return found.Count > 0 ? found[0] : throw NoJob(id);
    }

    public int SaveListingPage(Guid id, IReadOnlyList<ListedObject> objects, string? continuationToken, bool done, bool target) => InTransaction((connection, tx) =>
    {
        var seq = LockJob(connection, tx, id);
        var (added, addedBytes) = InsertListed(connection, tx, seq, target ? "target_objects" : "objects", objects, targetOnly: false);
        // A batch exists exactly when its objects do.
        if (!target) CoverKeys(connection, tx, seq, objects.Select(o => o.Key));
        var prefix = target ? "target_" : "";
        var counters = target ? "" : ", objects_found = objects_found + @added, bytes_found = bytes_found + @bytes";
        using var checkpoint = Command(connection, tx,
            $"UPDATE jobs SET {prefix}listing_token = @token, {prefix}listing_done = @done{counters} WHERE seq = @seq",
            Text("token", continuationToken), P("done", done), P("added", (long)added), P("bytes", addedBytes), P("seq", seq));
        checkpoint.ExecuteNonQuery();
        return added;
    });

    /// <summary>
    /// Inserts the listed objects new to <paramref name="table"/> in one statement (one round trip a page, not one a
    /// row); returns how many were new, and their bytes.
    /// </summary>
    private static (int Added, long Bytes) InsertListed(NpgsqlConnection connection, NpgsqlTransaction tx, long seq, string table, IReadOnlyList<ListedObject> objects, bool targetOnly)
    {
        if (objects.Count == 0) return (0, 0);
        var onlyColumn = targetOnly ? ", target_only" : "";
        var onlyValue = targetOnly ? ", true" : "";
        using var insert = Command(connection, tx,
            $@"WITH added AS (
                   INSERT INTO {table} (job_seq, key, size, etag, last_modified, storage_class{onlyColumn})
                   SELECT @seq, u.key, u.size, u.etag, u.modified, u.class{onlyValue}
                   FROM unnest(@keys, @sizes, @etags, @modified, @classes) AS u(key, size, etag, modified, class)
                   ON CONFLICT DO NOTHING RETURNING size)
               SELECT count(*), COALESCE(sum(size), 0)::bigint FROM added",
            P("seq", seq),
            P("keys", objects.Select(o => o.Key).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
            P("sizes", objects.Select(o => o.Size).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint),
            P("etags", objects.Select(o => o.ETag).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
            P("modified", objects.Select(o => o.LastModified.UtcDateTime).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.TimestampTz),
            P("classes", objects.Select(o => o.StorageClass).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
        using var reader = insert.ExecuteReader();
        reader.Read();
        return ((int)reader.GetInt64(0), reader.GetInt64(1));
    }

    private static ListedObject ReadListed(NpgsqlDataReader r) =>
        new(r.GetString(0), r.GetInt64(1), NullableString(r, 2), ReadTime(r, 3), NullableString(r, 4));

    public IReadOnlyList<ListedObject> GetTargetOnlyObjects(Guid id, string afterKey, int limit) =>
        // As in SQLite: each target key looked up by the objects' primary key (OFFSET 0 keeps the planner from making it
        // a hash anti-join over the whole job), each page starting after the last key by the target table's primary key.
        Query(@"SELECT substr(t.key, length(j.target_prefix) + 1), t.size, t.etag, t.last_modified, t.storage_class
                FROM jobs j JOIN target_objects t ON t.job_seq = j.seq
                WHERE j.id = @id AND t.key > j.target_prefix || @after AND starts_with(t.key, j.target_prefix)
                  AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.job_seq = j.seq AND o.key = substr(t.key, length(j.target_prefix) + 1) OFFSET 0)
                ORDER BY t.key LIMIT @limit",
            ReadListed, P("id", id), Text("after", afterKey), P("limit", limit));

    public void SaveTargetOnlyObjects(Guid id, IReadOnlyList<ListedObject> objects)
    {
        if (objects.Count == 0) return;
        InTransaction((connection, tx) =>
        {
            var seq = LockJob(connection, tx, id);
            var (added, _) = InsertListed(connection, tx, seq, "objects", objects, targetOnly: true);
            CoverKeys(connection, tx, seq, objects.Select(o => o.Key));
            // Counted as checked keys, not as bytes to move: the source has none of them.
            using var counters = Command(connection, tx, "UPDATE jobs SET objects_found = objects_found + @added WHERE seq = @seq", P("added", (long)added), P("seq", seq));
            counters.ExecuteNonQuery();
        });
    }

    public void UpdateListedObject(Guid id, ListedObject current) => InTransaction((connection, tx) =>
    {
        var seq = LockJob(connection, tx, id);
        // Both sub-statements see the row as it was: the job's bytes change by the difference.
        using var update = Command(connection, tx,
            @"WITH old AS (SELECT size FROM objects WHERE job_seq = @seq AND key = @key),
                   changed AS (UPDATE objects SET size = @size, etag = @etag, last_modified = @modified, storage_class = @class WHERE job_seq = @seq AND key = @key)
              UPDATE jobs SET bytes_found = bytes_found + @size - COALESCE((SELECT size FROM old), @size) WHERE seq = @seq",
            P("seq", seq), P("key", current.Key), P("size", current.Size), Text("etag", current.ETag), Time("modified", current.LastModified),
            Text("class", current.StorageClass));
        update.ExecuteNonQuery();
    });

    public IReadOnlyList<PendingObject> GetPendingObjects(Guid id, string afterKey, int limit, string? throughKey = null) =>
        // One statement: the job's target prefix and listing state come from the join, not from extra round trips. The
        // page is cut first and each of its rows looked up in the target listing and the copy records by primary key
        // (LATERAL): joined whole, the planner hashes every copy record of the server when its estimates are off
        // (measured: 78 ms a page of 1,000 against 100,000 records, 10 ms this way).
        Query(@"SELECT o.key, o.size, o.etag, o.last_modified, o.storage_class, t.size, t.etag, t.last_modified, j.target_listing_done,
                       c.source_etag, c.target_etag, o.target_only
                FROM jobs j
                CROSS JOIN LATERAL (
                    SELECT key, size, etag, last_modified, storage_class, target_only FROM objects
                    WHERE job_seq = j.seq AND outcome = 0 AND key > @after AND (@through::text IS NULL OR key <= @through) ORDER BY key LIMIT @limit) o
                LEFT JOIN LATERAL (
                    SELECT size, etag, last_modified FROM target_objects WHERE job_seq = j.seq AND key = j.target_prefix || o.key) t ON true
                LEFT JOIN LATERAL (
                    SELECT source_etag, target_etag FROM copies
                    WHERE target_connector_id = j.target_connector_id AND target_bucket = j.target_bucket AND target_key = j.target_prefix || o.key) c ON true
                WHERE j.id = @id ORDER BY o.key",
            r => new PendingObject(r.GetString(0), r.GetInt64(1), NullableString(r, 2), ReadTime(r, 3), NullableString(r, 4),
                r.IsDBNull(5) ? null : r.GetInt64(5), NullableString(r, 6), ReadTimeOrNull(r, 7), r.GetBoolean(8),
                r.IsDBNull(10) ? null : new CopyRecord(NullableString(r, 9), r.GetString(10)), r.GetBoolean(11)),
            P("id", id), Text("after", afterKey), P("limit", limit), Text("through", throughKey));

    public void SaveDispatchedThrough(Guid id, string key) =>
        Execute("UPDATE jobs SET dispatched_through = @key WHERE id = @id AND (dispatched_through IS NULL OR dispatched_through < @key)",
            P("id", id), Text("key", key));

    public string? GetDispatchedThrough(Guid id) =>
        Query("SELECT dispatched_through FROM jobs WHERE id = @id", r => NullableString(r, 0), P("id", id)).FirstOrDefault();

    public int ResetFailedObjects(Guid id) => InTransaction((connection, tx) =>
    {
        var seq = LockJob(connection, tx, id);
        // Every failed row goes back, so every Verify finding is decided again.
        using var reset = Command(connection, tx,
            @"WITH reset AS (UPDATE objects SET outcome = 0, message = NULL, log_type = NULL WHERE job_seq = @seq AND outcome = 3 RETURNING 1),
                   counted AS (SELECT count(*) AS n FROM reset)
              UPDATE jobs SET failed_objects = failed_objects - counted.n, missing_objects = 0, mismatched_objects = 0, extra_objects = 0
              FROM counted WHERE seq = @seq RETURNING counted.n",
            P("seq", seq));
        var count = (int)(long)reset.ExecuteScalar()!;
        ReopenBatchesWithPendingRows(connection, tx, seq);
        return count;
    });

    public IEnumerable<ListedObject> StreamListedObjects(Guid id)
    {
        using var connection = Open();
        var seq = JobSeq(connection, id);
        using var command = Command(connection, null,
            "SELECT key, size, etag, last_modified, storage_class FROM objects WHERE job_seq = @seq AND NOT target_only ORDER BY key", P("seq", seq));
        using var reader = command.ExecuteReader();
        while (reader.Read()) yield return ReadListed(reader);
    }

    // ---- Results ----

    public void SaveResults(Guid id, IReadOnlyList<ObjectResult> results, IReadOnlyList<LogRecord> logs, string? runner = null)
    {
        if (results.Count == 0 && logs.Count == 0) return;
        var entries = results.Where(r => r.LogType is not null).Select(r => new LogRecord(r.LogType!.Value, r.Key, r.Message ?? "")).Concat(logs).ToList();
        InTransaction((connection, tx) =>
        {
            var seq = LockJobForLog(connection, tx, id, lockRow: true);
            // One statement for the batch: the rows whose outcome changes (an outcome recorded again counts nothing),
            // the job's counters from exactly those, the copy records, and the log lines. The rows are found one by one
            // by primary key (the LATERAL probe, which OFFSET 0 keeps from being merged into a join) and updated by
            // their row ids: joined whole, a job whose rows the planner's statistics do not know yet (a new job, a
            // table not analysed since it filled) was hashed in full for every batch (measured: 66 ms instead of 2 ms a
            // batch of 500 against 100,000 rows). Row ids stay valid within the statement because every writer that
            // changes a job's objects holds the job's row lock (LockJobForLog below, LockJob elsewhere); a listing page
            // only inserts new rows, which move none.
            using var save = Command(connection, tx,
                @"WITH r AS (
                      SELECT * FROM unnest(@keys, @outcomes, @bytes, @logTypes, @messages, @checksums, @verified, @etags)
                          AS r(key, outcome, bytes, log_type, message, checksum, verified_by, target_etag)),
                  hits AS (
                      SELECT h.tid, r.* FROM r CROSS JOIN LATERAL (
                          SELECT o.ctid AS tid FROM objects o WHERE o.job_seq = @seq AND o.key = r.key AND o.outcome <> r.outcome OFFSET 0) h),
                  changed AS (
                      UPDATE objects o SET outcome = h.outcome, message = h.message, checksum = COALESCE(h.checksum, o.checksum),
                             verified_by = h.verified_by, log_type = h.log_type
                      FROM hits h WHERE o.ctid = ANY(ARRAY(SELECT tid FROM hits)) AND o.ctid = h.tid
                      RETURNING o.key, o.etag AS source_etag, h.outcome, h.bytes, h.log_type, h.target_etag),
                  counters AS (
                      UPDATE jobs SET
                          transferred_objects = jobs.transferred_objects + s.t, transferred_bytes = jobs.transferred_bytes + s.tb,
                          skipped_objects = jobs.skipped_objects + s.s, skipped_bytes = jobs.skipped_bytes + s.sb,
                          failed_objects = jobs.failed_objects + s.f, missing_objects = jobs.missing_objects + s.missing,
                          mismatched_objects = jobs.mismatched_objects + s.mismatched, extra_objects = jobs.extra_objects + s.extra
                      FROM (SELECT count(*) FILTER (WHERE outcome = 1) AS t, COALESCE(sum(bytes) FILTER (WHERE outcome = 1), 0) AS tb,
                                   count(*) FILTER (WHERE outcome = 2) AS s, COALESCE(sum(bytes) FILTER (WHERE outcome = 2), 0) AS sb,
                                   count(*) FILTER (WHERE outcome = 3) AS f, count(*) FILTER (WHERE log_type = 'VerifyMissing') AS missing,
                                   count(*) FILTER (WHERE log_type = 'VerifyMismatch') AS mismatched, count(*) FILTER (WHERE log_type = 'VerifyExtra') AS extra
                            FROM changed) s
                      WHERE jobs.seq = @seq),
                  share AS (
                      -- The runner's share, counted from the same changed rows as the job's: the shares add up to it.
                      UPDATE job_runners SET transferred_objects = job_runners.transferred_objects + s.t, transferred_bytes = job_runners.transferred_bytes + s.tb
                      FROM (SELECT count(*) FILTER (WHERE outcome = 1) AS t, COALESCE(sum(bytes) FILTER (WHERE outcome = 1), 0) AS tb FROM changed) s
                      WHERE job_runners.job_seq = @seq AND job_runners.runner = @runner AND s.t > 0),
                  recorded AS (
                      -- Every copy leaves its record: which version it wrote where; one whose target ETag is unknown
                      -- removes the older record instead (it would vouch for bytes it did not see).
                      INSERT INTO copies (target_connector_id, target_bucket, target_key, source_etag, target_etag, copied_at)
                      SELECT j.target_connector_id, j.target_bucket, j.target_prefix || c.key, c.source_etag, c.target_etag, now()
                      FROM changed c CROSS JOIN jobs j WHERE j.seq = @seq AND c.outcome = 1 AND c.target_etag IS NOT NULL
                      ON CONFLICT (target_connector_id, target_bucket, target_key)
                      DO UPDATE SET source_etag = EXCLUDED.source_etag, target_etag = EXCLUDED.target_etag, copied_at = EXCLUDED.copied_at),
                  gone AS (
                      -- Looked up one by one by primary key (joined, the planner walked every record of the bucket
                      -- against the batch: 2.6 s a batch at 90,000 records). A record another job rewrites meanwhile
                      -- is left as that job wrote it.
                      SELECT x.tid FROM changed c CROSS JOIN jobs j CROSS JOIN LATERAL (
                          SELECT k.ctid AS tid FROM copies k
                          WHERE k.target_connector_id = j.target_connector_id AND k.target_bucket = j.target_bucket AND k.target_key = j.target_prefix || c.key
                          OFFSET 0) x
                      WHERE j.seq = @seq AND c.outcome = 1 AND c.target_etag IS NULL),
                  forgotten AS (DELETE FROM copies d WHERE d.ctid = ANY(ARRAY(SELECT tid FROM gone)))
                  INSERT INTO logs (job_seq, created_at, type, object_key, message)
                  SELECT @seq, now(), l.type, l.key, l.message FROM unnest(@logTypesAll, @logKeys, @logMessages) WITH ORDINALITY AS l(type, key, message, n)
                  ORDER BY l.n",
                P("seq", seq), Text("runner", runner),
                P("keys", results.Select(r => r.Key).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
                P("outcomes", results.Select(r => (int)r.Outcome).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer),
                P("bytes", results.Select(r => r.Bytes).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint),
                P("logTypes", results.Select(r => r.LogType?.ToString()).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
                P("messages", results.Select(r => r.Message).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
                P("checksums", results.Select(r => r.Checksum).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
                P("verified", results.Select(r => r.VerifiedBy).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
                P("etags", results.Select(r => r.TargetETag?.Trim('"').ToLowerInvariant()).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
                P("logTypesAll", entries.Select(l => l.Type.ToString()).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
                P("logKeys", entries.Select(l => l.ObjectKey).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
                P("logMessages", entries.Select(l => l.Message).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
            save.ExecuteNonQuery();
        });
    }

    public void SaveRates(Guid id, double bytesPerSecond, double objectsPerSecond, long movingBytes, int concurrencyLevel) =>
        Execute("UPDATE jobs SET bytes_per_second = @b, objects_per_second = @o, moving_bytes = @m, concurrency_level = @c WHERE id = @id",
            P("id", id), P("b", bytesPerSecond), P("o", objectsPerSecond), P("m", movingBytes), P("c", concurrencyLevel));

    public MigrationJobProgress GetProgress(Guid id)
    {
        var runners = GetJobRunners(id, StaleTime.Heartbeat);
        // What the listing ranges found is counted on them (see SaveRangePage), the rest on the job's row.
        return Query(@"SELECT id, name, state, phase, objects_found + COALESCE(f.objects, 0), transferred_objects, skipped_objects, failed_objects,
                       bytes_found + COALESCE(f.bytes, 0), transferred_bytes + moving_bytes, skipped_bytes, listing_done, bytes_per_second, objects_per_second,
                       type, missing_objects, mismatched_objects, extra_objects, concurrency_level
                FROM jobs LEFT JOIN LATERAL (SELECT sum(found_objects)::bigint AS objects, sum(found_bytes)::bigint AS bytes
                                             FROM listing_ranges r WHERE r.job_seq = jobs.seq) f ON true
                WHERE id = @id",
            r =>
            {
                var progress = new MigrationJobProgress
                {
                    Id = r.GetGuid(0),
                    Name = r.GetString(1),
                    State = Enum.Parse<JobState>(r.GetString(2)),
                    Phase = r.IsDBNull(3) ? null : Enum.Parse<JobPhase>(r.GetString(3)),
                    Objects = r.GetInt64(4),
                    TransferredObjects = r.GetInt64(5),
                    SkippedObjects = r.GetInt64(6),
                    FailedObjects = r.GetInt64(7),
                    TotalBytes = r.GetInt64(8),
                    TransferredBytes = r.GetInt64(9),
                    ListingComplete = r.GetBoolean(11),
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
            P("id", id)).FirstOrDefault() ?? throw NoJob(id);
    }

    /// <summary>
    /// Walks the objects' primary key (job, key) with one forward-only reader; Npgsql streams the rows as the caller
    /// enumerates, so memory does not grow with the job.
    /// </summary>
    public IEnumerable<ObjectReportRow> StreamObjectReport(Guid id)
    {
        using var connection = Open();
        var seq = JobSeq(connection, id);
        using var command = Command(connection, null,
            // A target-only row (VerifyExtra) holds the target's listing: it has no source ETag.
            @"SELECT o.key, o.size, o.outcome, o.log_type, o.message, CASE WHEN o.target_only THEN NULL ELSE o.etag END, t.etag, o.verified_by, o.storage_class
              FROM objects o
              JOIN jobs j ON j.seq = o.job_seq
              LEFT JOIN target_objects t ON t.job_seq = o.job_seq AND t.key = j.target_prefix || o.key
              WHERE o.job_seq = @seq ORDER BY o.key",
            P("seq", seq));
        using var r = command.ExecuteReader();
        while (r.Read())
        {
            yield return new ObjectReportRow(
                r.GetString(0), r.GetInt64(1), (ObjectOutcome)r.GetInt16(2),
                r.IsDBNull(3) ? null : Enum.TryParse<LogType>(r.GetString(3), out var type) ? type : null,
                NullableString(r, 4), NullableString(r, 5), NullableString(r, 6), NullableString(r, 7), NullableString(r, 8));
        }
    }
}
