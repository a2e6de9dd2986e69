using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State;

// What both state stores share about batches and the runners of a job: key order, how keys are cut into batches, the
// stale time, and how runner rows are read and shown.

/// <summary>S3's key order: by the bytes of the UTF-8 form (SQLite's BINARY collation, PostgreSQL's "C").</summary>
public static class KeyOrder
{
    public static int Compare(string a, string b)
    {
        // UTF-16 order equals UTF-8 byte order except where a surrogate pair meets U+E000..U+FFFF.
        var length = Math.Min(a.Length, b.Length);
        for (var i = 0; i < length; i++)
        {
            var (x, y) = (a[i], b[i]);
            if (x == y) continue;
            if (char.IsSurrogate(x) != char.IsSurrogate(y) && Math.Max(x, y) >= 0xE000)
            {
                return char.IsSurrogate(x) ? 1 : -1;
            }
            return x.CompareTo(y);
        }
        return a.Length.CompareTo(b.Length);
    }
}

/// <summary>
/// How long a heartbeat (every half second) may be silent before its runner counts as gone: a Running job becomes
/// Interrupted, a batch lease expires, progress shows the runner inactive. OBJECTMIGRATION_STALE_SECONDS overrides 10 s.
/// </summary>
public static class StaleTime
{
    public static TimeSpan Heartbeat { get; set; } = TimeSpan.FromSeconds(
        double.TryParse(Environment.GetEnvironmentVariable("OBJECTMIGRATION_STALE_SECONDS"), System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0 ? seconds : 10);
}

/// <summary>How progress shows the runners of a job (both stores).</summary>
internal static class RunnerShares
{
    /// <summary>
    /// The runners of a job several processes run: listed, and their rates summed (the job row has the lead's alone).
    /// A job one runner runs shows that one runner, with the same figures.
    /// </summary>
    /// <summary>
    /// One row of job_runners as both stores select it: runner, host, process_id, role, transferred_objects,
    /// transferred_bytes, bytes_per_second, objects_per_second, concurrency_level, held_batches, joined_at, heartbeat_at,
    /// active; <paramref name="time"/> reads a time column the store's way.
    /// </summary>
    public static JobWorkerProgress Read(System.Data.Common.DbDataReader r, Func<int, DateTimeOffset> time) => new()
    {
        Runner = r.GetString(0),
        ComputerName = r.GetString(1),
        ProcessId = r.GetInt32(2),
        Role = r.GetString(3),
        TransferredObjects = r.GetInt64(4),
        TransferredBytes = r.GetInt64(5),
        BytesPerSecond = r.GetDouble(6),
        ObjectsPerSecond = r.GetDouble(7),
        ActiveConcurrency = r.GetInt32(8),
        HeldBatches = r.GetInt32(9),
        JoinedAt = time(10),
        LastHeartbeat = time(11),
        Active = Convert.ToBoolean(r.GetValue(12)),
    };

    /// <summary>
    /// The runner and job name of every run of a running job, led or joined (runner, name): Get-MigrationWorker lists a
    /// worker's jobs by its runner prefix. The same SQL in both stores.
    /// </summary>
    public const string RunningJobsByRunner =
        @"SELECT runner, name FROM jobs WHERE state = 'Running' AND runner IS NOT NULL
          UNION ALL
          SELECT r.runner, j.name FROM job_runners r JOIN jobs j ON j.seq = r.job_seq
          WHERE j.state = 'Running' AND r.role = 'Joined' AND r.left_at IS NULL";

    public static void Add(MigrationJobProgress progress, IReadOnlyList<JobWorkerProgress> runners)
    {
        progress.Workers = runners.ToArray();
        // A runner that is gone moves nothing, whatever it last wrote (a killed one never wrote its last zero).
        foreach (var gone in progress.Workers.Where(w => !w.Active)) (gone.BytesPerSecond, gone.ObjectsPerSecond, gone.ActiveConcurrency, gone.HeldBatches) = (0, 0, 0, 0);
        if (progress.State != JobState.Running) return;
        foreach (var joined in runners.Where(w => w.Active && w.Role == RunnerRoles.Joined))
        {
            progress.BytesPerSecond += joined.BytesPerSecond;
            progress.ObjectsPerSecond += joined.ObjectsPerSecond;
            progress.ActiveConcurrency += joined.ActiveConcurrency;
        }
    }
}

/// <summary>How new keys become batches (both stores).</summary>
internal static class BatchCut
{
    /// <summary>
    /// Keys per batch: small enough that a job of a few thousand objects spreads over several runners, large enough that
    /// claiming and completing (two statements) is nothing beside copying them. A listing page (1,000) makes four.
    /// </summary>
    public const int Size = 250;

    /// <summary>
    /// The batches (after, last] that cover the keys past <paramref name="lastCovered"/>, in order, and the range of the
    /// keys at or before it (which fall in batches that exist), if any. With <paramref name="closeAt"/> (a listing range
    /// listed to its end) the last batch reaches it, so the batches leave no gap in the key space: a key added later
    /// (one only the target holds) always falls in a batch. A cut <c>Empty</c> holds no key.
    /// </summary>
    public static ((string Min, string Max)? Behind, List<(string After, string Last, bool Empty)> Cuts) Plan(IEnumerable<string> keys, string? lastCovered, string? closeAt = null)
    {
        var sorted = keys.ToList();
        sorted.Sort(KeyOrder.Compare);
        var cuts = new List<(string After, string Last, bool Empty)>();
        (string, string)? behind = null;
        var after = lastCovered ?? "";
        var inBatch = 0;
        for (var i = 0; i < sorted.Count; i++)
        {
            var key = sorted[i];
            if (lastCovered is not null && KeyOrder.Compare(key, lastCovered) <= 0)
            {
                behind = behind is var (min, _) ? (min, key) : (key, key);
                continue;
            }
            if (++inBatch == Size || i == sorted.Count - 1)
            {
                cuts.Add((after, key, false));
                after = key;
                inBatch = 0;
            }
        }
        if (closeAt is not null && KeyOrder.Compare(after, closeAt) < 0)
        {
            if (cuts.Count > 0) cuts[^1] = (cuts[^1].After, closeAt, false);
            else cuts.Add((after, closeAt, true));
        }
        return (behind, cuts);
    }
}

/// <summary>What both stores decide about a listing range in C#, where key order is <see cref="KeyOrder"/>.</summary>
internal static class RangeRules
{
    /// <summary>A range is cut only at a key its listing has not reached and that lies before its end.</summary>
    public static bool CanSplit(ListingRange range, string splitAfter) =>
        KeyOrder.Compare(splitAfter, range.ListFrom) > 0 && (range.LastKey is null || KeyOrder.Compare(splitAfter, range.LastKey) < 0);

    /// <summary>
    /// What a listing page means for its range: the selected objects inside it (keys past its end belong to the range
    /// cut from it, and another runner lists them), whether the range is listed to its end, and where its listing stands.
    /// </summary>
    public static (List<ListedObject> Objects, bool Done, string ListedThrough) Page(ListingRange range, IReadOnlyList<ListedObject> selected, string? pageLastKey, bool listingEnded)
    {
        var from = range.ListFrom;
        var objects = selected.Where(o => KeyOrder.Compare(o.Key, from) > 0 && (range.LastKey is null || KeyOrder.Compare(o.Key, range.LastKey) <= 0)).ToList();
        var reachedEnd = range.LastKey is not null && pageLastKey is not null && KeyOrder.Compare(pageLastKey, range.LastKey) >= 0;
        var done = listingEnded || reachedEnd;
        var through = done && range.LastKey is not null ? range.LastKey
            : pageLastKey is not null && KeyOrder.Compare(pageLastKey, from) > 0 ? pageLastKey : from;
        return (objects, done, through);
    }
}
