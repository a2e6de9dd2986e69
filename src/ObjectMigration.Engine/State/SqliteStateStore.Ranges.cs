using Microsoft.Data.Sqlite;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State;

// The source listing in key ranges that runners list at once (IListingRanges). SQLite's single writer makes each
// statement's pick and lease atomic; key comparisons of a range's bounds are made in KeyOrder, as the column's BINARY.
public sealed partial class SqliteStateStore
{
    /// <summary>The columns <see cref="ReadRange"/> reads; $now decides whether a lease is alive.</summary>
    private const string RangeColumns =
        "range_no, after_key, last_key, listed_through, token, CASE WHEN lease_until >= $now THEN lease_owner END, claims";

    private static ListingRange ReadRange(SqliteDataReader r) => new(
        r.GetInt32(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
        r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5), r.GetInt32(6));

    public ListingRange? ClaimRange(Guid id, string runner, TimeSpan lease)
    {
        // Looked for first: idle runners ask often, and a read does not take the writer's lock.
        if (Query($@"SELECT 1 FROM jobs j WHERE j.id = $id AND (
                        (j.listing_done = 0 AND j.keys_json = '[]' AND NOT EXISTS (SELECT 1 FROM listing_ranges WHERE job_seq = j.seq))
                        OR EXISTS (SELECT 1 FROM listing_ranges r WHERE r.job_seq = j.seq AND r.done = 0
                                   AND (r.lease_owner IS NULL OR r.lease_until < $now OR r.lease_owner = $runner)))",
                r => 1, ("$id", id.ToString()), ("$now", Now()), ("$runner", runner)).Count == 0)
        {
            return null;
        }
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        // A job whose listing has not started, or was started without ranges, gets its first range: the whole prefix
        // from the checkpoint it has (its continuation token, and its batches' last key). Named keys (-Key) are no
        // listing: the lead looks each up.
        using (var first = Command(connection,
            @"INSERT INTO listing_ranges (job_seq, range_no, after_key, listed_through, token)
              SELECT seq, 0, '', (SELECT MAX(last_key) FROM batches WHERE job_seq = $seq), listing_token FROM jobs
              WHERE seq = $seq AND listing_done = 0 AND keys_json = '[]' AND NOT EXISTS (SELECT 1 FROM listing_ranges WHERE job_seq = $seq)",
            ("$seq", seq)))
        {
            first.ExecuteNonQuery();
        }
        var now = DateTimeOffset.UtcNow;
        ListingRange? claimed = null;
        using (var claim = Command(connection,
            $@"UPDATE listing_ranges SET lease_owner = $runner, lease_until = $until, claims = claims + 1
               WHERE job_seq = $seq AND range_no = (
                   SELECT range_no FROM listing_ranges WHERE job_seq = $seq AND done = 0
                     AND (lease_owner IS NULL OR lease_until < $now OR lease_owner = $runner)
                   ORDER BY range_no LIMIT 1)
               RETURNING {RangeColumns}",
            ("$seq", seq), ("$runner", runner), ("$until", Format(now + lease)), ("$now", Format(now))))
        using (var reader = claim.ExecuteReader())
        {
            if (reader.Read()) claimed = ReadRange(reader);
        }
        tx.Commit();
        return claimed;
    }

    public IReadOnlyList<ListingRange> GetOpenRanges(Guid id) =>
        Query($@"SELECT {RangeColumns} FROM listing_ranges WHERE job_seq = (SELECT seq FROM jobs WHERE id = $id) AND done = 0 ORDER BY range_no",
            ReadRange, ("$id", id.ToString()), ("$now", Now()));

    public ListingRange? SplitRange(Guid id, int rangeNo, string splitAfter, string runner, TimeSpan lease)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        var range = ReadOpenRange(connection, seq, rangeNo);
        if (range is null || !RangeRules.CanSplit(range, splitAfter)) return null;
        int rangeNoOfNew;
        using (var next = Command(connection, "SELECT MAX(range_no) + 1 FROM listing_ranges WHERE job_seq = $seq", ("$seq", seq)))
        {
            rangeNoOfNew = Convert.ToInt32(next.ExecuteScalar());
        }
        using (var insert = Command(connection,
            @"INSERT INTO listing_ranges (job_seq, range_no, after_key, last_key, lease_owner, lease_until, claims)
              VALUES ($seq, $no, $after, $last, $runner, $until, 1);
              UPDATE listing_ranges SET last_key = $after WHERE job_seq = $seq AND range_no = $cut;",
            ("$seq", seq), ("$no", rangeNoOfNew), ("$after", splitAfter), ("$last", range.LastKey), ("$runner", runner),
            ("$until", Format(DateTimeOffset.UtcNow + lease)), ("$cut", rangeNo)))
        {
            insert.ExecuteNonQuery();
        }
        tx.Commit();
        return new ListingRange(rangeNoOfNew, splitAfter, range.LastKey, null, null, runner, 1);
    }

    /// <summary>The range as its lister left it (not its lease's state), or null when it is done or gone.</summary>
    private static ListingRange? ReadOpenRange(SqliteConnection connection, long seq, int rangeNo)
    {
        using var read = Command(connection,
            "SELECT range_no, after_key, last_key, listed_through, token, lease_owner, claims FROM listing_ranges WHERE job_seq = $seq AND range_no = $no AND done = 0",
            ("$seq", seq), ("$no", rangeNo));
        using var reader = read.ExecuteReader();
        return reader.Read() ? ReadRange(reader) : null;
    }

    public RangePageSaved SaveRangePage(Guid id, int rangeNo, string runner, IReadOnlyList<ListedObject> selected, string? pageLastKey, string? token, bool listingEnded, TimeSpan lease)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var seq = JobSeq(connection, id);
        var range = ReadOpenRange(connection, seq, rangeNo);
        if (range is null || range.HeldBy != runner) return new RangePageSaved(0, range is null, Held: false);
        var page = RangeRules.Page(range, selected, pageLastKey, listingEnded);
        var (added, addedBytes) = InsertListed(connection, seq, "objects", page.Objects, targetOnly: false);
        // The range's batches go on from the last one it made (keys a filter left out make none, but leave no gap).
        string covered;
        using (var read = Command(connection,
            "SELECT COALESCE(MAX(last_key), $after) FROM batches WHERE job_seq = $seq AND last_key > $after AND ($last IS NULL OR last_key <= $last)",
            ("$seq", seq), ("$after", range.AfterKey), ("$last", range.LastKey)))
        {
            covered = (string)read.ExecuteScalar()!;
        }
        CutBatches(connection, seq, page.Objects.Select(o => o.Key), covered, page.Done ? range.LastKey : null);
        using (var checkpoint = Command(connection,
            @"UPDATE listing_ranges SET listed_through = $through, token = $token, done = $done,
                  lease_owner = CASE WHEN $done THEN NULL ELSE lease_owner END, lease_until = CASE WHEN $done THEN NULL ELSE $until END
              WHERE job_seq = $seq AND range_no = $no;
              UPDATE jobs SET objects_found = objects_found + $added, bytes_found = bytes_found + $bytes,
                  listing_done = NOT EXISTS (SELECT 1 FROM listing_ranges WHERE job_seq = $seq AND done = 0),
                  listing_token = NULL
              WHERE seq = $seq;",
            ("$seq", seq), ("$no", rangeNo), ("$through", page.ListedThrough), ("$token", page.Done ? null : token), ("$done", page.Done ? 1 : 0),
            ("$until", Format(DateTimeOffset.UtcNow + lease)), ("$added", added), ("$bytes", addedBytes)))
        {
            checkpoint.ExecuteNonQuery();
        }
        tx.Commit();
        return new RangePageSaved(added, page.Done, Held: true);
    }

    public IReadOnlyList<int> RenewRanges(Guid id, string runner, TimeSpan lease) =>
        Query(@"UPDATE listing_ranges SET lease_until = $until WHERE job_seq = (SELECT seq FROM jobs WHERE id = $id) AND lease_owner = $runner AND done = 0
                RETURNING range_no",
            r => r.GetInt32(0), ("$id", id.ToString()), ("$runner", runner), ("$until", Format(DateTimeOffset.UtcNow + lease)));
}
