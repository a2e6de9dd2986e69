using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// Lists the source into the store in key ranges, beside the other runners of the job: claims a free range and lists it
/// page by page from its checkpoint; with none free, cuts the far part of another runner's range off for itself, so every
/// runner with room lists at once. A runner that dies leaves its range to whoever claims it when the lease runs out. Ends
/// when the store says the whole source is listed, whoever listed the last of it.
/// </summary>
internal sealed class SourceListing(RunContext run, IStateStore store, MigrationJob job, IObjectStore source, RunnerOptions options, string runnerId, TimeSpan lease)
{
    /// <summary>Listing requests one cut may spend finding where the keys of a range lie; a cut that needs more is not made.</summary>
    private const int MaxProbes = 24;

    /// <summary>Whether this runner lists a range now (its lease is renewed with the heartbeat).</summary>
    public bool Listing { get; private set; }

    /// <summary>The source ignores start-after (found by a probe): no range is cut.</summary>
    private bool _startAfterIgnored;

    /// <param name="excluded">Told of each source object the filters leave out (a dry run counts them).</param>
    public async Task RunAsync(Action<ListedObject>? excluded, CancellationToken ct)
    {
        var (idle, nextCut) = (0, 0L);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            ObjectListing? firstPage = null;
            var range = store.ClaimRange(job.Id, runnerId, lease);
            if (range is { Claims: > 1 })
            {
                run.Log(new LogRecord(LogType.MigrationNotice, null,
                    $"{runnerId} continues the listing of range {range.RangeNo} after '{range.ListFrom}'{To(range)}, where a runner left it."));
            }
            if (range is null)
            {
                if (store.GetListingCheckpoint(job.Id, target: false).Done) return;
                // Nothing to claim: cut part of another's range, less often the longer nothing is found (every look
                // costs the source a few listing requests), while the end of the listing is looked for every interval.
                if (_startAfterIgnored || Environment.TickCount64 < nextCut || await CutAsync(ct).ConfigureAwait(false) is not { } cut)
                {
                    if (Environment.TickCount64 >= nextCut)
                    {
                        idle = Math.Min(idle + 1, 4);
                        nextCut = Environment.TickCount64 + (long)(options.ControlInterval.TotalMilliseconds * (1 << idle));
                    }
                    await Task.Delay(options.ControlInterval, ct).ConfigureAwait(false);
                    continue;
                }
                (range, firstPage) = cut;
            }
            (idle, nextCut) = (0, 0L);
            Listing = true;
            try
            {
                await ListRangeAsync(range, firstPage, excluded, ct).ConfigureAwait(false);
            }
            finally
            {
                Listing = false;
            }
        }
    }

    /// <summary>Extends the lease of the range this runner lists (a page saved extends it too; a slow page must not lose it).</summary>
    public void Renew()
    {
        if (Listing) store.RenewRanges(job.Id, runnerId, lease);
    }

    private async Task ListRangeAsync(ListingRange range, ObjectListing? firstPage, Action<ListedObject>? excluded, CancellationToken ct)
    {
        var token = range.Token;
        while (true)
        {
            var page = firstPage ?? await ListAsync(token, token is null ? range.ListFrom : null, options.ListPageSize, ct).ConfigureAwait(false);
            firstPage = null;
            var selected = page.Objects.Where(run.Selector.Selects).ToList();
            if (excluded is not null && selected.Count < page.Objects.Count)
            {
                foreach (var o in page.Objects.Except(selected)) excluded(o);
            }
            token = page.NextContinuationToken;
            var saved = store.SaveRangePage(job.Id, range.RangeNo, runnerId, selected, page.Objects.Count > 0 ? page.Objects[^1].Key : null, token, token is null, lease);
            if (!saved.Held)
            {
                if (!saved.RangeDone)
                {
                    run.Log(new LogRecord(LogType.MigrationNotice, null,
                        $"{runnerId} lost the lease of listing range {range.RangeNo} (its heartbeat was late) and leaves it to the runner that took it over."));
                }
                return;
            }
            if (saved.RangeDone) return;
        }
    }

    private async Task<ObjectListing> ListAsync(string? token, string? startAfter, int pageSize, CancellationToken ct)
    {
        try
        {
            return await options.Retry.RunAsync(c => source.ListAsync(job.SourceBucket, job.SourcePrefix, token, startAfter, pageSize, c), null, ct).ConfigureAwait(false);
        }
        catch (StorageException e)
        {
            throw new JobFatalException($"Listing the source bucket '{job.SourceBucket}' failed: {e.Message} " +
                "Fix the cause, then Resume-MigrationJob continues the listing from its last page.", e);
        }
    }

    /// <summary>
    /// Cuts the far part of another runner's range off for this one: the widest range first. Returns the new range and
    /// its first page (the probe that found keys past the cut), or null when no range is worth cutting now.
    /// </summary>
    private async Task<(ListingRange Range, ObjectListing FirstPage)?> CutAsync(CancellationToken ct)
    {
        var others = store.GetOpenRanges(job.Id).Where(r => r.HeldBy is not null && r.HeldBy != runnerId)
            .OrderBy(SplitPoint.Narrowness).ThenBy(r => r.RangeNo).Take(2).ToList();
        foreach (var range in others)
        {
            if (await FindCutAsync(range, ct).ConfigureAwait(false) is not var (after, page)) continue;
            if (store.SplitRange(job.Id, range.RangeNo, after, runnerId, lease) is not { } mine) continue;
            run.Log(new LogRecord(LogType.MigrationNotice, null,
                $"{runnerId} lists the keys after '{after}'{To(range)} as range {mine.RangeNo}, cut from range {range.RangeNo} that {range.HeldBy} lists."));
            return (mine, page);
        }
        return null;
    }

    /// <summary>
    /// Where to cut <paramref name="range"/>: first the shortest prefix of where its listing stands whose keys hold all
    /// the range has left (a probe per step of a binary search: any key past that prefix's keys?), then halves of the
    /// characters after it, toward the listing's position, until a probe finds at least a page of the range's keys past
    /// the point (a cut of less is not worth the requests). The probe that finds them is the cut's first page.
    /// </summary>
    private async Task<(string After, ObjectListing Page)?> FindCutAsync(ListingRange range, CancellationToken ct)
    {
        // Keys outside the job's prefix are never listed: a point before it would cut off nothing of the owner's.
        var prefix = job.SourcePrefix;
        var low = KeyOrder.Compare(range.ListFrom, prefix) < 0 ? prefix : range.ListFrom;
        var probes = 0;
        try
        {
            // The page after the point; whether it holds keys of the range; whether a page of them or more.
            async Task<(ObjectListing Page, bool Found, bool Enough)> KeysAfter(string point, int pageSize)
            {
                probes++;
                var page = await ListAsync(null, point, pageSize, ct).ConfigureAwait(false);
                if (page.Objects.Count > 0 && KeyOrder.Compare(page.Objects[0].Key, point) <= 0)
                {
                    // The server ignored start-after: every cut would list its range from the start of the prefix.
                    _startAfterIgnored = true;
                    run.Log(new LogRecord(LogType.MigrationNotice, null,
                        $"The source answers a listing from a key (start-after) from the start instead: {runnerId} lists no part of another runner's range."));
                    return (page, false, false);
                }
                bool InRange(string key) => range.LastKey is null || KeyOrder.Compare(key, range.LastKey) <= 0;
                var found = page.Objects.Count > 0 && InRange(page.Objects[0].Key);
                return (page, found, found && page.NextContinuationToken is not null && InRange(page.Objects[^1].Key));
            }
            // Beyond(m): keys of the range come after every key that starts with low's first m characters. False up to
            // the job's prefix (every key starts with it); the smallest m for which it holds is searched.
            var (shortest, longest) = (SplitPoint.Length(prefix) + 1, SplitPoint.Length(low));
            if (shortest > longest || !(await KeysAfter(SplitPoint.AfterPrefixOf(low, longest), 1).ConfigureAwait(false)).Found)
            {
                shortest = longest + 1; // every key left starts with low
            }
            else
            {
                while (shortest < longest && !_startAfterIgnored)
                {
                    var m = (shortest + longest) / 2;
                    if ((await KeysAfter(SplitPoint.AfterPrefixOf(low, m), 1).ConfigureAwait(false)).Found) longest = m;
                    else shortest = m + 1;
                }
            }
            // Every key left starts with low's first (shortest - 1) characters.
            string? high = SplitPoint.AfterPrefixOf(low, shortest - 1);
            if (range.LastKey is not null && KeyOrder.Compare(range.LastKey, high) < 0) high = range.LastKey;
            while (probes < MaxProbes && !_startAfterIgnored && SplitPoint.Between(low, high) is { } point)
            {
                var (page, _, enough) = await KeysAfter(point, options.ListPageSize).ConfigureAwait(false);
                if (enough) return (point, page);
                high = point; // less than a page of the range after it: a point nearer the listing leaves more
            }
            return null;
        }
        catch (JobFatalException)
        {
            // A probe that fails is no reason to fail the job: the range's own runner lists it.
            return null;
        }
    }

    private static string To(ListingRange range) => range.LastKey is null ? "" : $" through '{range.LastKey}'";
}
