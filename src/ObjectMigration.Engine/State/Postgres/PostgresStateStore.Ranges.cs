using Npgsql;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State.Postgres;

// The source listing in key ranges that runners on any host list at once (IListingRanges). Leases are the server's
// now(); a claim skips ranges another transaction holds (SKIP LOCKED). A page locks its range's row and no longer the
// job's: what it found is counted on the range, its batches are numbered under a lock of their own, and only the page
// that ends a range takes the job's row (to say the source is listed). Lock order: range, job, batch numbers.
public sealed partial class PostgresStateStore
{
    private const string RangeColumns =
        "range_no, after_key, last_key, listed_through, token, CASE WHEN lease_until >= now() THEN lease_owner END, claims";

    private static ListingRange ReadRange(NpgsqlDataReader r) =>
        new(r.GetInt32(0), r.GetString(1), NullableString(r, 2), NullableString(r, 3), NullableString(r, 4), NullableString(r, 5), r.GetInt32(6));

    public ListingRange? ClaimRange(Guid id, string runner, TimeSpan lease) => InTransaction((connection, tx) =>
    {
        // A job whose listing has not started, or was started without ranges, gets its first range: the whole prefix
        // from the checkpoint it has. Two runners starting at once make it once (the second insert conflicts). Named
        // keys (-Key) are no listing: the lead looks each up.
        using (var first = Command(connection, tx,
            $@"INSERT INTO listing_ranges (job_seq, range_no, after_key, listed_through, token)
               SELECT j.seq, 0, '', (SELECT max(last_key) FROM batches WHERE job_seq = j.seq), j.listing_token FROM jobs j
               WHERE j.id = @id AND NOT j.listing_done AND j.keys_json = '[]' AND NOT EXISTS (SELECT 1 FROM listing_ranges WHERE job_seq = j.seq)
               ON CONFLICT DO NOTHING",
            P("id", id)))
        {
            first.ExecuteNonQuery();
        }
        using var claim = Command(connection, tx,
            $@"UPDATE listing_ranges r SET lease_owner = @runner, lease_until = now() + make_interval(secs => @lease), claims = r.claims + 1
               WHERE r.job_seq = {JobSeqOf} AND r.range_no = (
                   SELECT range_no FROM listing_ranges WHERE job_seq = {JobSeqOf} AND NOT done
                     AND (lease_owner IS NULL OR lease_until < now() OR lease_owner = @runner)
                   ORDER BY range_no LIMIT 1 FOR UPDATE SKIP LOCKED)
               RETURNING {RangeColumns}",
            P("id", id), Text("runner", runner), P("lease", lease.TotalSeconds));
        using var reader = claim.ExecuteReader();
        return reader.Read() ? ReadRange(reader) : null;
    });

    public IReadOnlyList<ListingRange> GetOpenRanges(Guid id) =>
        Query($"SELECT {RangeColumns} FROM listing_ranges WHERE job_seq = {JobSeqOf} AND NOT done ORDER BY range_no", ReadRange, P("id", id));

    public ListingRange? SplitRange(Guid id, int rangeNo, string splitAfter, string runner, TimeSpan lease) => InTransaction((connection, tx) =>
    {
        var seq = JobSeq(connection, tx, id);
        var range = ReadOpenRange(connection, tx, seq, rangeNo);
        if (range is null || !RangeRules.CanSplit(range, splitAfter)) return null;
        LockJob(connection, tx, id); // range numbers, one splitter of the job at a time
        using var split = Command(connection, tx,
            @"WITH added AS (
                  INSERT INTO listing_ranges (job_seq, range_no, after_key, last_key, lease_owner, lease_until, claims)
                  SELECT @seq, max(range_no) + 1, @after, @last, @runner, now() + make_interval(secs => @lease), 1 FROM listing_ranges WHERE job_seq = @seq
                  RETURNING range_no)
              UPDATE listing_ranges SET last_key = @after WHERE job_seq = @seq AND range_no = @cut
              RETURNING (SELECT range_no FROM added)",
            P("seq", seq), Text("after", splitAfter), Text("last", range.LastKey), Text("runner", runner), P("lease", lease.TotalSeconds), P("cut", rangeNo));
        var added = (int)split.ExecuteScalar()!;
        return new ListingRange(added, splitAfter, range.LastKey, null, null, runner, 1);
    });

    /// <summary>The range as its lister left it (its lease's owner, alive or not), locked for the transaction; null when done or gone.</summary>
    private static ListingRange? ReadOpenRange(NpgsqlConnection connection, NpgsqlTransaction tx, long seq, int rangeNo)
    {
        using var read = Command(connection, tx,
            "SELECT range_no, after_key, last_key, listed_through, token, lease_owner, claims FROM listing_ranges WHERE job_seq = @seq AND range_no = @no AND NOT done FOR UPDATE",
            P("seq", seq), P("no", rangeNo));
        using var reader = read.ExecuteReader();
        return reader.Read() ? ReadRange(reader) : null;
    }

    public RangePageSaved SaveRangePage(Guid id, int rangeNo, string runner, IReadOnlyList<ListedObject> selected, string? pageLastKey, string? token, bool listingEnded, TimeSpan lease) =>
        InTransaction((connection, tx) =>
        {
            var seq = JobSeq(connection, tx, id);
            var range = ReadOpenRange(connection, tx, seq, rangeNo);
            if (range is null || range.HeldBy != runner) return new RangePageSaved(0, range is null, Held: false);
            var page = RangeRules.Page(range, selected, pageLastKey, listingEnded);
            // New rows only, in batches of their own (keys past the range's last batch): no row another writer reads
            // or completes moves, so the job's row is not needed for them.
            var (added, addedBytes) = InsertListed(connection, tx, seq, "objects", page.Objects, targetOnly: false);
            if (page.Done) LockJob(connection, tx, id);
            // The range's batches go on from the last one it made (keys a filter left out make none, but leave no gap).
            string covered;
            using (var read = Command(connection, tx,
                "SELECT COALESCE(max(last_key), @after) FROM batches WHERE job_seq = @seq AND last_key > @after AND (@last::text IS NULL OR last_key <= @last)",
                P("seq", seq), Text("after", range.AfterKey), Text("last", range.LastKey)))
            {
                covered = (string)read.ExecuteScalar()!;
            }
            CutBatches(connection, tx, seq, page.Objects.Select(o => o.Key), covered, page.Done ? range.LastKey : null);
            using var checkpoint = Command(connection, tx,
                @"UPDATE listing_ranges SET listed_through = @through, token = @token, done = @done,
                      lease_owner = CASE WHEN @done THEN NULL ELSE lease_owner END,
                      lease_until = CASE WHEN @done THEN NULL ELSE now() + make_interval(secs => @lease) END,
                      found_objects = found_objects + @added, found_bytes = found_bytes + @bytes
                  WHERE job_seq = @seq AND range_no = @no;
                  UPDATE jobs SET listing_done = NOT EXISTS (SELECT 1 FROM listing_ranges WHERE job_seq = @seq AND NOT done), listing_token = NULL
                  WHERE seq = @seq AND @done;",
                P("seq", seq), P("no", rangeNo), Text("through", page.ListedThrough), Text("token", page.Done ? null : token), P("done", page.Done),
                P("lease", lease.TotalSeconds), P("added", (long)added), P("bytes", addedBytes));
            checkpoint.ExecuteNonQuery();
            return new RangePageSaved(added, page.Done, Held: true);
        });

    public IReadOnlyList<int> RenewRanges(Guid id, string runner, TimeSpan lease) =>
        // A range whose page is being saved is skipped, not waited for: the page extends its lease as it commits (and the
        // heartbeat that renews must not wait on a lister's transaction).
        Query($@"UPDATE listing_ranges SET lease_until = now() + make_interval(secs => @lease)
                 WHERE job_seq = {JobSeqOf} AND range_no IN (
                     SELECT range_no FROM listing_ranges WHERE job_seq = {JobSeqOf} AND lease_owner = @runner AND NOT done FOR UPDATE SKIP LOCKED)
                 RETURNING range_no",
            r => r.GetInt32(0), P("id", id), Text("runner", runner), P("lease", lease.TotalSeconds));
}
