using System.Collections.Concurrent;
using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

public sealed class RunnerOptions
{
    public RetryPolicy Retry { get; init; } = RetryPolicy.Default;
    /// <summary>How each store of the run paces its requests under throttling (one pacer per store, shared by all workers).</summary>
    public PacerSettings Pacing { get; init; } = PacerSettings.Default;
    /// <summary>Keys per listing request; OBJECTMIGRATION_LIST_PAGE_SIZE overrides the default of 1000 (the kill tests list many pages of a small bucket).</summary>
    public int ListPageSize { get; init; } =
        int.TryParse(Environment.GetEnvironmentVariable("OBJECTMIGRATION_LIST_PAGE_SIZE"), out var size) && size is > 0 and <= 1000 ? size : 1000;
    /// <summary>How often a runner beats its heartbeat, renews its leases and saves its progress.</summary>
    public TimeSpan ControlInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>How often a runner looks for a pause or stop request; between 10 ms and the ControlInterval.</summary>
    public TimeSpan RequestCheckInterval { get; init; } = TimeSpan.FromMilliseconds(100);
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    public long TargetMaxObjectSize { get; init; } = TransferOptions.DefaultTargetMaxObjectSize;
    /// <summary>How long aborting open multipart uploads may take (all of them together, when a job stops).</summary>
    public TimeSpan AbortTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Names the process that runs jobs; each run adds its own number, so two runs never share an identity.</summary>
    public string RunnerId { get; init; } = DefaultRunnerId;
    /// <summary>The runner id of this process (host:pid@scope, see LocalProcess): workers and liveness checks read it back from the store.</summary>
    public static string DefaultRunnerId => Workers.LocalProcess.Identity;
    /// <summary>Update: the largest object changed by one CopyObject onto itself; larger ones are copied in parts. Null: the provider's largest single PUT.</summary>
    public long? LargestSingleCopy { get; init; }
    /// <summary>Called once the run holds the job (it was Pending and is Running now), before any work.</summary>
    public Action? Started { get; init; }
    /// <summary>How long the adaptive level is measured at least before each step.</summary>
    public TimeSpan AdaptWindow { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// Join a job another runner (the lead) runs, instead of starting it: copy batches of it beside the lead, which
    /// lists and settles the job. Workers do this to spread one job over many processes and hosts.
    /// </summary>
    public bool Join { get; init; }
    /// <summary>How long a batch stays leased without a renewal; null: the stale heartbeat time.</summary>
    public TimeSpan? BatchLease { get; init; }
}

/// <summary>Thrown inside a run when the job as a whole cannot go on.</summary>
internal sealed class JobFatalException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Runs one job from its stored plan to a settled state: the pipeline every job kind shares. It holds the job (lease,
/// heartbeat, control requests), lists the target (when the kind asks) and the source into the store, merges them per
/// key as it reads pending rows in key order, lets the kind decide each object or hand it to a worker, records the
/// outcomes in batches, and settles. What a kind decides and does is in <see cref="Kinds.JobKind"/>. A fresh start and
/// a resume are the same path: listing continues from its checkpoint, finished objects are not pending.
/// </summary>
public sealed class MigrationRunner
{
    private static int s_runs;

    private readonly RunContext _run;
    private readonly Kinds.JobKind _kind;
    private readonly IStateStore _store;
    private readonly MigrationJob _job;
    private readonly IObjectStore _source;
    private readonly IObjectStore _target;
    private readonly RunnerOptions _options;
    private volatile ControlRequest _control;
    private readonly string _runnerId;
    // Written by the stages, read by the control loop's heartbeat (the phase a reclaimed job gets back).
    private volatile JobPhase _phase = JobPhase.Listing;
    /// <summary>Set once the work has ended: the control loop then only keeps the heartbeat going while the run settles.</summary>
    private volatile bool _settling;
    /// <summary>Another runner, a stop or a removal took the job: this run ends without writing anything more.</summary>
    private volatile bool _lost;
    /// <summary>How many workers may transfer at once, and the adaptive level that moves it unless the job's concurrency is fixed.</summary>
    private readonly RunLevel _level;
    private readonly ConcurrencyGate _gate;
    /// <summary>The batches of the job this runner holds a lease on.</summary>
    private readonly HeldBatches _batches = new();
    /// <summary>This runner's share of listing the source, in key ranges beside the job's other runners.</summary>
    private readonly SourceListing _sourceListing;
    /// <summary>This runner joined a job that another runner leads (see <see cref="RunnerOptions.Join"/>).</summary>
    private readonly bool _joined;
    private TimeSpan Lease => _options.BatchLease ?? StaleTime.Heartbeat;
    /// <summary>When the store last confirmed this runner's leases (a claim or a renewal), on this host's monotonic clock.</summary>
    private long _leasesConfirmed = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>
    /// The leases may have run out without this runner hearing of it (its renewals are late: a slow store, a loaded
    /// host): it starts nothing more from its batches until a renewal says which it still holds, so a runner that took
    /// one over and this one overlap only on objects already in flight. Measured on this host's clock alone.
    /// </summary>
    private bool LeasesMayHaveLapsed =>
        System.Diagnostics.Stopwatch.GetElapsedTime(_leasesConfirmed) > Lease - TimeSpan.FromTicks(Math.Min(Lease.Ticks / 2, 4 * _options.ControlInterval.Ticks));

    public MigrationRunner(IStateStore store, MigrationJob job, IObjectStore source, IObjectStore target, RunnerOptions? options = null)
    {
        _store = store;
        _job = job;
        _source = source;
        _target = target;
        _options = options ?? new RunnerOptions();
        _run = new RunContext(store, job, source, target, _options);
        _kind = Kinds.JobKind.For(_run);
        _runnerId = $"{_options.RunnerId}#{Interlocked.Increment(ref s_runs)}";
        _joined = _options.Join;
        _run.RunnerId = _runnerId;
        _sourceListing = new SourceListing(_run, store, job, source, _options, _runnerId, Lease);
        _level = new RunLevel(_run, Math.Max(1, job.Concurrency), job.FixedConcurrency);
        _gate = _level.Gate;
        // What the stores find out by themselves (a bucket's region, the server's clock) is said once in the job's log.
        _source.Notice += message => _run.Log(new LogRecord(LogType.MigrationNotice, null, message));
        if (!ReferenceEquals(_source, _target)) _target.Notice += message => _run.Log(new LogRecord(LogType.MigrationNotice, null, message));
    }


    /// <summary>The job's own -Concurrency when this run's is lower (a worker's -Concurrency caps it); the log says which applies.</summary>
    internal int JobCeiling { get; init; }

    /// <summary>This run's ceiling for the log: the job's -Concurrency, or a worker's lower one named as such.</summary>
    private string Ceiling => JobCeiling > _job.Concurrency ? $"{_job.Concurrency}, this worker's -Concurrency; the job's is {JobCeiling}" : $"{_job.Concurrency}";

    /// <summary>Runs the job until it completes, fails, is paused or stopped. Cancelling the token stops the job.</summary>
    public async Task<JobState> RunAsync(CancellationToken cancellationToken)
    {
        var wasStarted = _job.StartedAt is not null;
        var transfers = !_level.Adaptive
            ? $"{RunLevel.Transfers(_job.Concurrency)} at once{(JobCeiling > _job.Concurrency ? $" (this worker's -Concurrency; the job's is {JobCeiling})" : "")}"
            : $"an adaptive number of transfers at once (up to {Ceiling})";
        if (_joined)
        {
            // Only a Running job is joined; the lead may have settled it since the worker looked.
            if (_store.FindJob(_job.Id) is not { State: JobState.Running } current) return _store.FindJob(_job.Id)?.State ?? JobState.Failed;
            SaveRunnerProgress();
            _options.Started?.Invoke();
            _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationNotice, null,
                $"{_runnerId} joined the run of {current.Runner}: it lists and copies batches of the job beside it, with {transfers}.")]);
        }
        // Only a Pending job starts: new, or made Pending again by MigrationEngine.PrepareResume.
        else if (!_store.TryStartRun(_job.Id, _runnerId, _phase))
        {
            return _store.FindJob(_job.Id)?.State ?? JobState.Failed;
        }
        else
        {
            // A first run learns when the job started (the store's time): objects a runner that died copied since then
            // are recognised on the target when their batch is taken over.
            _job.StartedAt ??= _store.FindJob(_job.Id)?.StartedAt;
            _options.Started?.Invoke();
            var where = JobTypes.HasTarget(_job.Type) ? $"{_job.Source} -> {_job.Target}" : _job.Type == JobType.Update ? $"{_job.Source} in place ({_job.Update})" : _job.Source;
            _store.AddLogs(_job.Id, [new LogRecord(wasStarted ? LogType.MigrationResume : LogType.MigrationStart, null,
                $"{_job.Type} {where} with {transfers} on {_runnerId}.")]);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var work = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        using var controlLoopEnd = new CancellationTokenSource();
        var controlLoop = ControlLoopAsync(stop, work, controlLoopEnd.Token);
        try
        {
            await RunStagesAsync(work.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (work.IsCancellationRequested)
        {
            // Paused or stopped: decided below from what was asked.
        }
        catch (JobFatalException e)
        {
            _run.SetFatal(e, replace: true);
        }
        catch (Exception e)
        {
            // Any failure of any stage settles the job: it never stays Running with nobody running it.
            _run.SetFatal(e is StorageException or JobFatalException or StateFolderFullException ? e
                : new JobFatalException($"The run stopped on an unexpected error: {e.GetType().Name}: {e.Message} Resume-MigrationJob continues from the checkpoint once the cause is fixed.", e));
        }
        finally
        {
            work.Cancel();
            _settling = true;
        }
        try
        {
            // Settling can take a while (open uploads to abort on a slow server): the heartbeat goes on meanwhile,
            // or an observer would call the job Interrupted and the settled state could not be written.
            return await SettleAsync(cancellationToken.IsCancellationRequested).ConfigureAwait(false);
        }
        finally
        {
            controlLoopEnd.Cancel();
            await controlLoop.ConfigureAwait(false);
        }
    }

    private async Task RunStagesAsync(CancellationToken ct)
    {
        Task listing;
        if (_joined)
        {
            // The lead checked the buckets, swept the uploads and listed the target before any runner joined; a runner
            // that joins while the source is listed lists part of it (a job of named keys it waits for: the lead looks them up).
            listing = _sourceListing.RunAsync(null, ct);
        }
        else
        {
            // Batches for rows that need them, and the leases of runners that are gone let go, before any claim.
            _store.PrepareBatches(_job.Id, 4 * _options.ControlInterval);
            SaveRunnerProgress();
            await CheckBucketsAsync(ct).ConfigureAwait(false);
            // Uploads an earlier run asked for but did not record (it was killed in between) are found before any new one starts.
            await _run.Uploads.ClearRequestedAsync(_run.Log, ct).ConfigureAwait(false);
            await ListTargetAsync(ct).ConfigureAwait(false);
            listing = ListSourceAsync(ct);
        }
        _phase = _kind.WorkPhase;
        _store.SetPhase(_job.Id, _phase);
        // A worker per slot of the ceiling; the gate lets the current level of them transfer.
        var workers = Enumerable.Range(0, Math.Max(1, _job.Concurrency)).Select(_ => WorkerAsync(ct)).ToArray();
        using var adaptEnd = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var adapt = _level.AdaptAsync(_options.AdaptWindow, adaptEnd.Token);
        try
        {
            await ScheduleAsync(listing, ct).ConfigureAwait(false);
        }
        finally
        {
            _run.Queue.Complete();
            try
            {
                await Task.WhenAll(workers).ConfigureAwait(false);
            }
            finally
            {
                adaptEnd.Cancel();
                await adapt.ConfigureAwait(false);
            }
        }
        if (_run.Fatal is not null) throw _run.Fatal;
    }

    /// <summary>The source into the store, then what the kind adds once both sides are listed (the scheduler runs meanwhile).</summary>
    private async Task ListSourceAsync(CancellationToken ct)
    {
        await (_job.Keys.Length > 0 ? ListExplicitKeysAsync(ct) : _sourceListing.RunAsync(null, ct)).ConfigureAwait(false);
        await _kind.AfterSourceListedAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Both buckets at once: across a WAN each check is a new connection's handshake and a request.</summary>
    private async Task CheckBucketsAsync(CancellationToken ct)
    {
        var sides = new List<(IObjectStore Store, string Bucket, string Side)> { (_source, _job.SourceBucket, "source") };
        if (_kind.UsesTarget) sides.Add((_target, _job.TargetBucket, "target"));
        var exists = await Task.WhenAll(sides.Select(s => _options.Retry.RunAsync(c => s.Store.BucketExistsAsync(s.Bucket, c), null, ct))).ConfigureAwait(false);
        // In order: the source's answer is the one reported when both are missing.
        foreach (var ((_, bucket, side), found) in sides.Zip(exists))
        {
            if (!found) throw new JobFatalException($"The {side} bucket '{bucket}' does not exist. Create it, or correct -{(side == "source" ? "SourceBucket" : "TargetBucket")}.");
        }
    }

    // ---- Dry run ----

    /// <summary>
    /// What a run would do, without doing it (New-MigrationJob -WhatIf): both sides are listed into this runner's store
    /// (a scratch one) and the kind decides every object exactly as a run would, with the same comparer and rules; the
    /// objects it would act on count as its planned action. Nothing is written to either bucket, and no lease on the job is held.
    /// </summary>
    public async Task<IReadOnlyList<MigrationPlanRow>> PlanAsync(CancellationToken ct)
    {
        var rows = new Dictionary<(PlannedAction, string), MigrationPlanRow>();
        void Add(PlannedAction action, string reason, long bytes)
        {
            if (!rows.TryGetValue((action, reason), out var row)) rows[(action, reason)] = row = new MigrationPlanRow { Action = action, Reason = reason };
            row.Objects++;
            row.Bytes += bytes;
        }
        await CheckBucketsAsync(ct).ConfigureAwait(false);
        await ListTargetAsync(ct).ConfigureAwait(false);
        await (_job.Keys.Length > 0
            ? ListExplicitKeysAsync(ct)
            : _sourceListing.RunAsync(o => Add(PlannedAction.Exclude, "Filter", o.Size), ct)).ConfigureAwait(false);
        await _kind.AfterSourceListedAsync(ct).ConfigureAwait(false);
        var cursor = "";
        while (_store.GetPendingObjects(_job.Id, cursor, 1000) is { Count: > 0 } batch)
        {
            foreach (var o in batch)
            {
                cursor = o.Key;
                if ((_kind.Decide(o) ?? await _kind.PlanCheckAsync(o, ct).ConfigureAwait(false)) is not { } decided)
                {
                    Add(_kind.PlannedAction, "", o.Size);
                    continue;
                }
                var action = decided.Outcome switch
                {
                    ObjectOutcome.Transferred => PlannedAction.Transfer,
                    ObjectOutcome.Failed => PlannedAction.Fail,
                    _ => PlannedAction.Skip,
                };
                Add(action, decided.LogType?.ToString() ?? "", o.Size);
            }
        }
        return rows.Values.OrderBy(r => r.Action).ThenBy(r => r.Reason, StringComparer.Ordinal).ToList();
    }

    // ---- Listing ----

    /// <summary>
    /// The target into the store, where the kind decides by it: by the lead alone, before other runners join (the source
    /// is listed in ranges by all of them, see <see cref="SourceListing"/>).
    /// </summary>
    private async Task ListTargetAsync(CancellationToken ct)
    {
        if (!_kind.ListsTarget) return;
        // Only target keys a listed source key can map to; explicit keys may lie outside the source prefix.
        var scope = _job.Keys.Length > 0 ? _job.TargetPrefix : _job.TargetPrefix + _job.SourcePrefix;
        var (token, done) = _store.GetListingCheckpoint(_job.Id, target: true);
        while (!done)
        {
            ObjectListing page;
            try
            {
                page = await _options.Retry.RunAsync(c => _target.ListAsync(_job.TargetBucket, scope, token, null, _options.ListPageSize, c), null, ct).ConfigureAwait(false);
            }
            catch (StorageException e)
            {
                throw new JobFatalException($"Listing the target bucket '{_job.TargetBucket}' failed: {e.Message} " +
                    "Fix the cause, then Resume-MigrationJob continues the listing from its last page.", e);
            }
            token = page.NextContinuationToken;
            done = token is null;
            _store.SaveListingPage(_job.Id, page.Objects, token, done, target: true);
        }
    }

    private async Task ListExplicitKeysAsync(CancellationToken ct)
    {
        if (_store.GetListingCheckpoint(_job.Id, target: false).Done) return;
        var found = new List<ListedObject>();
        foreach (var key in _job.Keys.Distinct(StringComparer.Ordinal))
        {
            var head = await _options.Retry.RunAsync(c => _source.HeadAsync(_job.SourceBucket, key, c), null, ct).ConfigureAwait(false);
            if (head is null)
            {
                _run.Log(new LogRecord(LogType.MigrationError, key, $"The key '{key}' given with -Key does not exist in the source bucket."));
                continue;
            }
            found.Add(new ListedObject(key, head.Size, head.ETag, head.LastModified, head.StorageClass));
        }
        _store.SaveListingPage(_job.Id, found, null, done: true, target: false);
    }

    // ---- Scheduling ----

    /// <summary>
    /// Hands the pending objects of the batches this runner leases to the workers, in key order: claims a batch, reads
    /// it page by page, and completes it once none of its objects is pending. The run's work ends when the listing is
    /// done and no batch is open; the lead waits meanwhile for batches other runners hold (a dead one's lease runs out
    /// and the batch is claimed here), a joined runner leaves them to their holders.
    /// </summary>
    private async Task ScheduleAsync(Task listing, CancellationToken ct)
    {
        const int pageSize = 256;
        var pages = 0;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (_run.Fatal is not null) return;
            // Read before the claim: a listing that had finished then has all its batches committed, so nothing to
            // claim means nothing is left. Read after it, a page saved in between would be missed and the work end early.
            var listingDone = listing.IsCompleted;
            var reading = _batches.NextToRead();
            // More than one batch may be held: the next is read while the last objects of the one before finish.
            if (reading is null && _batches.Count < MaxHeldBatches)
            {
                var asked = System.Diagnostics.Stopwatch.GetTimestamp();
                var claimed = _store.ClaimBatches(_job.Id, _runnerId, 1, Lease);
                if (claimed.Count > 0 && _batches.Count == 0) _leasesConfirmed = asked;
                foreach (var batch in claimed.Where(b => b.Claims > 1))
                {
                    _run.Reclaimed(batch);
                    _run.Log(new LogRecord(LogType.MigrationNotice, null,
                        $"{_runnerId} took over batch {batch.BatchNo} (keys after '{batch.AfterKey}' through '{batch.LastKey}'), which a runner had claimed and not finished (it paused, left or died): its pending objects are looked for on the target before they are copied."));
                }
                _batches.Add(claimed);
                reading = _batches.NextToRead();
            }
            if (reading is null)
            {
                if (_batches.Count > _batches.StuckCount)
                {
                    // Every held batch is read: each completes as its last objects are recorded. Looked at again soon
                    // either way, as the listing may have saved a batch to claim meanwhile.
                    var lookAgain = Environment.TickCount64 + 100;
                    await WorkQueue.IdleAsync(() => Environment.TickCount64 >= lookAgain || _batches.FullyRead().Any(h => !_run.AnyInFlightBetween(h.Batch.AfterKey, h.Batch.LastKey)), ct).ConfigureAwait(false);
                    CompleteReadBatches();
                    continue;
                }
                if (!listingDone)
                {
                    await Task.WhenAny(listing, Task.Delay(50, ct)).ConfigureAwait(false);
                    continue;
                }
                await listing.ConfigureAwait(false);
                if (_store.CountOpenBatches(_job.Id) == _batches.StuckCount) return;
                // Other runners hold the rest. A joined runner leaves it to them; the lead waits for them to finish
                // it, or for the lease of one that died to run out so the batch can be claimed here.
                if (_joined) return;
                await Task.Delay(_options.ControlInterval / 2, ct).ConfigureAwait(false);
                continue;
            }
            if (LeasesMayHaveLapsed)
            {
                await Task.Delay(_options.ControlInterval / 5, ct).ConfigureAwait(false);
                continue;
            }
            var batchRows = _store.GetPendingObjects(_job.Id, reading.Cursor, pageSize, reading.Batch.LastKey);
            if (batchRows.Count < pageSize) reading.FullyRead = true;
            reading.RowsRead += batchRows.Count;
            if (batchRows.Count == 0) continue;
            reading.Cursor = batchRows[^1].Key;
            // Before any of the page goes to a worker: a kill from here on leaves each object it may copy within the bound.
            _store.SaveDispatchedThrough(_job.Id, batchRows[^1].Key);
            foreach (var o in batchRows)
            {
                // Taken over meanwhile (this runner's lease lapsed): the rest is the new holder's.
                if (!_batches.Holds(reading.Batch.BatchNo)) break;
                if (_run.IsInFlight(o.Key)) continue;
                var decided = _kind.Decide(o);
                if (decided is not null)
                {
                    _run.Record(decided);
                    continue;
                }
                _run.Dispatch(o.Key);
                await _run.Queue.EnqueueObjectAsync(new ObjectWork(o, reading.Batch.BatchNo), ct).ConfigureAwait(false);
            }
            if (_run.QueuedResults >= 512) _run.FlushResults();
            if (++pages % 4 == 0) CompleteReadBatches();
        }
    }

    /// <summary>
    /// Completes each batch read to its end whose objects are no longer in flight, once their results are written. A
    /// batch that still has pending rows nobody works on (rows added behind the cursor) is read again from its start.
    /// </summary>
    private void CompleteReadBatches()
    {
        var ready = _batches.FullyRead().Where(h => !_run.AnyInFlightBetween(h.Batch.AfterKey, h.Batch.LastKey)).ToList();
        if (ready.Count == 0) return;
        _run.FlushResults();
        foreach (var held in ready)
        {
            if (_store.CompleteBatch(_job.Id, held.Batch.BatchNo, _runnerId))
            {
                _batches.Remove(held);
                continue;
            }
            // Not completed: taken over by another runner (its lease lapsed), or rows came behind the cursor.
            if (!_store.RenewBatches(_job.Id, _runnerId, Lease).Contains(held.Batch.BatchNo))
            {
                _batches.Remove(held);
                continue;
            }
            // A row committed a moment after a read or a complete looked (another handle's insert) is found by the next
            // read; only a batch that keeps not completing with nothing to read is held aside.
            held.EmptyRereads = held.Reread && held.RowsRead == 0 ? held.EmptyRereads + 1 : 0;
            if (held.EmptyRereads >= 3)
            {
                held.Stuck = true;
                _run.Log(new LogRecord(LogType.MigrationError, null,
                    $"Batch {held.Batch.BatchNo} (keys after '{held.Batch.AfterKey}' through '{held.Batch.LastKey}') does not complete although no object of it is pending for this runner; its objects stay pending for a resume."));
            }
            else
            {
                held.ReadAgain();
            }
        }
    }

    /// <summary>
    /// Batches one runner holds at once: the one it reads and those whose last objects are still in flight. The queue
    /// bounds the objects in flight; this only keeps a runner whose every batch waits on one slow object from hoarding.
    /// </summary>
    private const int MaxHeldBatches = 64;

    // ---- Workers ----

    private async Task WorkerAsync(CancellationToken ct)
    {
        await Task.Yield();
        // Work is taken first and the gate entered after: a worker waiting at the gate holds work, so a level below the
        // ceiling shows as a full gate (the measure of whether more would pay), and an idle one as an empty gate. Parts
        // go through first, as in the queue: an open upload finishes before another object starts.
        while (await _run.Queue.DequeueAsync(ct).ConfigureAwait(false) is { } item)
        {
            // A batch taken over while its object waited in the queue or at the gate (where it may wait long below the
            // ceiling) is the new holder's to copy: checked before the gate, and again once through it.
            if (TakenOver(item))
            {
                _run.Abandon(((ObjectWork)item).Object.Key);
                continue;
            }
            await _gate.EnterAsync(ct, priority: item is PartWork).ConfigureAwait(false);
            if (TakenOver(item))
            {
                _gate.Exit();
                _run.Abandon(((ObjectWork)item).Object.Key);
                continue;
            }
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                await _kind.ActAsync(item, ct).ConfigureAwait(false);
            }
            finally
            {
                _gate.Exit();
                _level.ItemEnded(started);
            }
        }
    }

    private bool TakenOver(WorkItem item) => item is ObjectWork { BatchNo: > 0 } queued && !_batches.Holds(queued.BatchNo);

    // ---- Control, heartbeat, accounting ----

    /// <summary>
    /// The runner's side of the store while it works: requests are looked for every tick, shorter than the heartbeat
    /// (a pause or stop must take effect on every runner of the job within two seconds on a busy host, and that read
    /// is one small row); the heartbeat, leases, progress and flushes go at their own intervals. Times on the monotonic
    /// clock: a wall clock set back must not stop the heartbeat.
    /// </summary>
    private async Task ControlLoopAsync(CancellationTokenSource stop, CancellationTokenSource work, CancellationToken end)
    {
        var tick = TimeSpan.FromTicks(Math.Clamp(_options.RequestCheckInterval.Ticks, TimeSpan.TicksPerMillisecond * 10, Math.Max(TimeSpan.TicksPerMillisecond * 10, _options.ControlInterval.Ticks)));
        var clock = new ControlClock(tick);
        while (!end.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(tick, end).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            try
            {
                var beat = clock.Take(ref clock.LastBeat, _options.ControlInterval);
                if (_joined) JoinedTick(beat, work, clock);
                else if (!LeadTick(beat, stop, work, clock)) break;
            }
            catch (StateFolderFullException e)
            {
                // No room for the state: the run stops at its checkpoint and settles Failed in the room the reserve left.
                _run.SetFatal(e, replace: true);
                work.Cancel();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The store was busy or briefly unavailable: the next tick tries again; results stay queued. Said once
                // a heartbeat's time, not at every tick.
                if (clock.Take(ref clock.LastDeferredNotice, _options.ControlInterval))
                {
                    _run.Log(new LogRecord(LogType.MigrationErrorFailedContinuation, null, $"State store update deferred: {e.Message}"));
                }
            }
        }
    }

    /// <summary>When the control loop last did each of its periodic writes, on the monotonic clock.</summary>
    private sealed class ControlClock(TimeSpan tick)
    {
        public long LastBeat = System.Diagnostics.Stopwatch.GetTimestamp();
        public long LastFlush = System.Diagnostics.Stopwatch.GetTimestamp();
        public long LastDeferredNotice;

        /// <summary>Whether <paramref name="interval"/> has passed since <paramref name="last"/> (within half a tick); if so, from now on.</summary>
        public bool Take(ref long last, TimeSpan interval)
        {
            if (System.Diagnostics.Stopwatch.GetElapsedTime(last) < interval - tick / 2) return false;
            last = System.Diagnostics.Stopwatch.GetTimestamp();
            return true;
        }
    }

    /// <summary>
    /// A joined runner holds no lease on the job: it follows the job's requests (every tick; the lead waits for the joined
    /// runners before it settles, so a request stays there until they left) and the lead's state (at each beat).
    /// </summary>
    private void JoinedTick(bool beat, CancellationTokenSource work, ControlClock clock)
    {
        if (!_settling && (_store.GetControlRequest(_job.Id) != ControlRequest.None || (beat && _store.FindJob(_job.Id) is not { State: JobState.Running })))
        {
            work.Cancel();
        }
        if (_run.Fatal is not null) work.Cancel();
        if (!beat) return;
        if (!_settling)
        {
            RenewLeases();
            SaveRunnerProgress();
        }
        if (clock.Take(ref clock.LastFlush, _options.FlushInterval)) _run.FlushResults();
    }

    /// <summary>The lead's tick: heartbeat on the job's lease, requests, flushes with the job's rates. False once the lease is lost.</summary>
    private bool LeadTick(bool beat, CancellationTokenSource stop, CancellationTokenSource work, ControlClock clock)
    {
        if (beat)
        {
            var lease = _store.Heartbeat(_job.Id, _runnerId, _phase);
            if (lease == RunnerLease.Lost)
            {
                _lost = true;
                stop.Cancel();
                return false;
            }
            if (lease == RunnerLease.Reclaimed)
            {
                _run.Log(new LogRecord(LogType.MigrationResume, null,
                    $"The heartbeat of {_runnerId} was late, so the job was marked Interrupted; the runner is alive and the job is Running again."));
            }
        }
        if (_settling) return true;
        if (beat)
        {
            RenewLeases();
            SaveRunnerProgress();
        }
        var request = _store.GetControlRequest(_job.Id);
        if (request == ControlRequest.Stop) { _control = request; stop.Cancel(); }
        else if (request is ControlRequest.Pause or ControlRequest.Interrupt) { _control = request; work.Cancel(); }
        if (_run.Fatal is not null) work.Cancel();
        if (beat && clock.Take(ref clock.LastFlush, _options.FlushInterval))
        {
            // Results first, then the moving bytes without them: an object is never counted twice, at worst one that
            // finished meanwhile is missing until the next flush.
            _run.FlushResults();
            var (bytesPerSecond, objectsPerSecond) = _run.Counters.SampleRates();
            _store.SaveRates(_job.Id, bytesPerSecond, objectsPerSecond, _run.Counters.MovingBytes, _gate.Limit);
        }
        return true;
    }

    /// <summary>Extends this runner's leases: of the range it lists, and of its batches (one another runner took over meanwhile is no longer read here).</summary>
    private void RenewLeases()
    {
        _sourceListing.Renew();
        var held = _batches.Numbers();
        if (held.Count == 0) return;
        var asked = System.Diagnostics.Stopwatch.GetTimestamp();
        var lost = _batches.KeepOnly(held, _store.RenewBatches(_job.Id, _runnerId, Lease));
        _leasesConfirmed = asked;
        if (lost > 0)
        {
            _run.Log(new LogRecord(LogType.MigrationNotice, null,
                $"{_runnerId} lost the lease of {(lost == 1 ? "1 batch" : $"{lost} batches")} (its heartbeat was late) and leaves {(lost == 1 ? "it" : "them")} to the runner that took {(lost == 1 ? "it" : "them")} over."));
        }
    }

    /// <summary>This runner's heartbeat in the job, with what it did: progress lists each runner of the job.</summary>
    private void SaveRunnerProgress()
    {
        var (bytesPerSecond, objectsPerSecond) = _run.Counters.SampleRates();
        _store.SaveRunnerProgress(_job.Id, new JobWorkerProgress
        {
            Runner = _runnerId,
            ComputerName = Environment.MachineName,
            ProcessId = Environment.ProcessId,
            Role = _joined ? RunnerRoles.Joined : RunnerRoles.Lead,
            BytesPerSecond = bytesPerSecond,
            ObjectsPerSecond = objectsPerSecond,
            ActiveConcurrency = _settling ? 0 : _gate.Limit,
            HeldBatches = _batches.Count,
        });
    }

    /// <summary>
    /// The lead settles the job only once the runners that joined it are out (they see the same request or the job's
    /// end within a heartbeat): a paused or stopped job has nobody still copying, and a stop aborts their uploads too.
    /// </summary>
    private async Task WaitForJoinedRunnersAsync()
    {
        var deadline = DateTime.UtcNow + Lease + 4 * _options.ControlInterval;
        while (DateTime.UtcNow < deadline && _store.GetJobRunners(_job.Id, Lease).Any(r => r.Active && r.Role == RunnerRoles.Joined))
        {
            await Task.Delay(_options.ControlInterval / 10).ConfigureAwait(false);
        }
    }

    /// <summary>All at once, within one timeout: a stop on a stalled server takes seconds, not a timeout per upload.</summary>
    private async Task AbortOpenUploadsAsync()
    {
        using var timeout = new CancellationTokenSource(_options.AbortTimeout);
        await _run.Uploads.AbortAllAsync(_run.Log, timeout.Token).ConfigureAwait(false);
    }

    /// <summary>Writes the settled state if this run still holds the job; otherwise reports what the job is now.</summary>
    private JobState Settle(JobState to, string? error = null)
    {
        LeaveJob();
        return _store.TrySettleRun(_job.Id, _runnerId, to, error) ? to : _store.FindJob(_job.Id)?.State ?? JobState.Cancelled;
    }

    /// <summary>Out of the job: its batches are free to claim, and progress shows the runner gone.</summary>
    private void LeaveJob() => _store.LeaveJob(_job.Id, _runnerId);

    /// <summary>
    /// A joined runner's end: its results written and its batches let go. The job is the lead's to settle; what this
    /// runner did not finish stays pending in batches another runner claims.
    /// </summary>
    private JobState LeaveJoinedRun()
    {
        try
        {
            // Two writes, so that a pause or stop reaches the lead soon: the results with this line, then the leave.
            var why = _run.Fatal is { } fatal ? $" after an error: {fatal.Message}" : ".";
            _run.Log(new LogRecord(LogType.MigrationNotice, null,
                $"{_runnerId} left the run having copied {_run.Counters.TransferredObjects} objects ({ByteSize.Format(_run.Counters.TransferredBytes)}){why}"));
            _run.FlushResults();
            LeaveJob();
        }
        catch (KeyNotFoundException)
        {
            // Removed meanwhile.
        }
        return _store.FindJob(_job.Id)?.State ?? JobState.Cancelled;
    }

    private async Task<JobState> SettleAsync(bool externallyCancelled)
    {
        if (_joined) return LeaveJoinedRun();
        if (_lost)
        {
            // Its results stay unrecorded: the run that holds the job now finds those objects pending and copies them.
            try
            {
                _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationAbort, null,
                    $"{_runnerId} stopped: while it was presumed gone the job was resumed, stopped or removed elsewhere.")]);
            }
            catch (KeyNotFoundException)
            {
                return JobState.Cancelled;
            }
            return _store.FindJob(_job.Id)?.State ?? JobState.Cancelled;
        }
        if (_level.EndNotice(Ceiling) is { } notice) _run.Log(new LogRecord(LogType.MigrationNotice, null, notice));
        _run.FlushResults();
        // After an error of its own the lead does not wait: the runners that joined see the job Failed and leave.
        if (_run.Fatal is null || _control != ControlRequest.None) await WaitForJoinedRunnersAsync().ConfigureAwait(false);
        // Parts of unfinished uploads stay on the target for a resume (a stop aborts them below).
        _store.SaveRates(_job.Id, 0, 0, _run.Counters.MovingBytes, 0);
        var control = _control;
        if (control == ControlRequest.Stop || (externallyCancelled && control is not (ControlRequest.Pause or ControlRequest.Interrupt)))
        {
            await AbortOpenUploadsAsync().ConfigureAwait(false);
            _run.FlushResults();
            _store.SaveRates(_job.Id, 0, 0, 0, 0);
            _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationAbort, null, "Stopped on request; open multipart uploads were aborted.")]);
            return Settle(JobState.Cancelled);
        }
        if (_run.Fatal is not null)
        {
            _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationError, null, _run.Fatal.Message)]);
            return Settle(JobState.Failed, _run.Fatal.Message);
        }
        if (control == ControlRequest.Pause)
        {
            _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationPause, null, "Paused on request; finished objects and parts are kept for the resume.")]);
            return Settle(JobState.Paused);
        }
        if (control == ControlRequest.Interrupt)
        {
            _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationPause, null,
                $"Interrupted at a checkpoint: its worker ({_options.RunnerId}) shut down. The next worker continues the job; finished objects and parts are kept.")]);
            return Settle(JobState.Interrupted);
        }
        var progress = _store.GetProgress(_job.Id);
        if (progress.PendingObjects > 0)
        {
            // Never report success over objects that were not copied; a resume picks them up.
            var message = $"{progress.PendingObjects} of {progress.Objects} objects were still pending when the run ended. Resume-MigrationJob -RetryFailed copies them.";
            _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationError, null, message)]);
            return Settle(JobState.Failed, message);
        }
        // Objects that failed while their upload was being asked for may have one open: the job ends with none.
        using (var timeout = new CancellationTokenSource(_options.AbortTimeout))
        {
            try { await _run.Uploads.ClearRequestedAsync(_run.Log, timeout.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { /* out of time: they stay recorded, and a stop or removal tries again */ }
            _run.FlushResults();
        }
        var final = progress.FailedObjects > 0 ? JobState.CompletedWithErrors : JobState.Completed;
        _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationComplete, null, _kind.Summary(progress))]);
        return Settle(final);
    }
}
