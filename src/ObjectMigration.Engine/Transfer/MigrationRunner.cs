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
    public int ListPageSize { get; init; } = 1000;
    public TimeSpan ControlInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    public long TargetMaxObjectSize { get; init; } = TransferOptions.DefaultTargetMaxObjectSize;
    /// <summary>How long aborting open multipart uploads may take (all of them together, when a job stops).</summary>
    public TimeSpan AbortTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Names the process that runs jobs; each run adds its own number, so two runs never share an identity.</summary>
    public string RunnerId { get; init; } = DefaultRunnerId;
    /// <summary>The runner id of this process (host:pid@scope, see LocalProcess): workers and liveness checks read it back from the store.</summary>
    public static string DefaultRunnerId => Workers.LocalProcess.Identity;
    /// <summary>Called once the run holds the job (it was Pending and is Running now), before any work.</summary>
    public Action? Started { get; init; }
}

/// <summary>Thrown inside a run when the job as a whole cannot go on.</summary>
internal sealed class JobFatalException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Runs one job from its stored plan to a settled state. A fresh start and a resume are the same path:
/// listing continues from its checkpoint, finished objects are not pending, finished parts are reused.
/// </summary>
public sealed class MigrationRunner
{
    private static int s_runs;

    private readonly IStateStore _store;
    private readonly MigrationJob _job;
    private readonly IObjectStore _source;
    private readonly IObjectStore _target;
    private readonly RunnerOptions _options;
    private readonly ObjectSelector _selector;
    private readonly JobCounters _counters = new();
    private readonly ConcurrentQueue<ObjectResult> _results = new();
    private readonly ConcurrentQueue<LogRecord> _logs = new();
    private readonly WorkQueue _queue;
    private readonly BandwidthLimiter? _limiter;
    private readonly bool _serverSide;
    private readonly ConcurrentDictionary<string, byte> _inFlight = new(StringComparer.Ordinal);
    private int _outstanding;
    private volatile ControlRequest _control;
    private readonly string _runnerId;
    // Written by the stages, read by the control loop's heartbeat (the phase a reclaimed job gets back).
    private volatile JobPhase _phase = JobPhase.Listing;
    /// <summary>Set once the work has ended: the control loop then only keeps the heartbeat going while the run settles.</summary>
    private volatile bool _settling;
    /// <summary>Another runner, a stop or a removal took the job: this run ends without writing anything more.</summary>
    private volatile bool _lost;
    private Exception? _fatal;
    private readonly ConcurrentDictionary<string, byte> _loggedOnce = new(StringComparer.Ordinal);
    private readonly ObjectAttributes _attributes;
    private readonly ConcurrentDictionary<string, int> _restarts = new(StringComparer.Ordinal);
    /// <summary>The target answered UploadPartCopy with NotImplemented: parts stream through the client for the rest of the run.</summary>
    private volatile bool _partCopyUnsupported;
    /// <summary>The source refused If-Match for an unchanged object: reads go unconditioned, checked by the ETag each answer names.</summary>
    private volatile bool _readsPinnedByAnswer;

    /// <summary>The ETag a source read is conditioned on: the listed one, unless the source mishandles If-Match.</summary>
    private string? ReadCondition(PendingObject o) => _readsPinnedByAnswer ? null : o.ETag;
    /// <summary>How often one object may start over because its source changed before it fails (and waits for -RetryFailed).</summary>
    private const int MaxSourceChangeRestarts = 3;

    public MigrationRunner(IStateStore store, MigrationJob job, IObjectStore source, IObjectStore target, RunnerOptions? options = null)
    {
        _store = store;
        _job = job;
        _source = source;
        _target = target;
        _options = options ?? new RunnerOptions();
        _selector = new ObjectSelector(job, _options.TargetMaxObjectSize);
        _queue = new WorkQueue(Math.Max(2, job.Concurrency * 2));
        _limiter = job.MaxBytesPerSecond > 0 ? new BandwidthLimiter(job.MaxBytesPerSecond) : null;
        _serverSide = source.ServerSideCopyKey == target.ServerSideCopyKey;
        _runnerId = $"{_options.RunnerId}#{Interlocked.Increment(ref s_runs)}";
        _attributes = new ObjectAttributes(job, source, target, _options.Retry, LogOnce, record => _logs.Enqueue(record), OnRetry);
        // What the stores find out by themselves (a bucket's region, the server's clock) is said once in the job's log.
        _source.Notice += message => _logs.Enqueue(new LogRecord(LogType.MigrationNotice, null, message));
        if (!ReferenceEquals(_source, _target)) _target.Notice += message => _logs.Enqueue(new LogRecord(LogType.MigrationNotice, null, message));
    }

    /// <summary>Runs the job until it completes, fails, is paused or stopped. Cancelling the token stops the job.</summary>
    public async Task<JobState> RunAsync(CancellationToken cancellationToken)
    {
        var wasStarted = _job.StartedAt is not null;
        // Only a Pending job starts: new, or made Pending again by MigrationEngine.PrepareResume.
        if (!_store.TryStartRun(_job.Id, _runnerId, _phase))
        {
            return _store.FindJob(_job.Id)?.State ?? JobState.Failed;
        }
        _options.Started?.Invoke();
        _store.AddLogs(_job.Id, [new LogRecord(wasStarted ? LogType.MigrationResume : LogType.MigrationStart, null,
            $"{_job.Type} {_job.SourceConnector}/{_job.SourceBucket}/{_job.SourcePrefix} -> {_job.TargetConnector}/{_job.TargetBucket}/{_job.TargetPrefix} with {_job.Concurrency} transfers at once on {_runnerId}.")]);

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
            _fatal = e;
        }
        catch (Exception e)
        {
            // Any failure of any stage settles the job: it never stays Running with nobody running it.
            _fatal ??= e is StorageException or JobFatalException ? e
                : new JobFatalException($"The run stopped on an unexpected error: {e.GetType().Name}: {e.Message} Resume-MigrationJob continues from the checkpoint once the cause is fixed.", e);
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
        await CheckBucketsAsync(ct).ConfigureAwait(false);
        if (_job.Type != JobType.Inventory && (_job.Overwrite != OverwriteMode.Always || _job.Type == JobType.Verify))
        {
            await ListIntoStoreAsync(_target, _job.TargetBucket, _job.TargetPrefix, target: true, ct).ConfigureAwait(false);
        }
        var listing = _job.Keys.Length > 0 ? ListExplicitKeysAsync(ct) : ListIntoStoreAsync(_source, _job.SourceBucket, _job.SourcePrefix, target: false, ct);
        _phase = _job.Type == JobType.Verify ? JobPhase.Verifying : JobPhase.Transferring;
        _store.SetPhase(_job.Id, _phase);
        var workers = Enumerable.Range(0, Math.Max(1, _job.Concurrency)).Select(_ => WorkerAsync(ct)).ToArray();
        try
        {
            await ScheduleAsync(listing, ct).ConfigureAwait(false);
        }
        finally
        {
            _queue.Complete();
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        if (_fatal is not null) throw _fatal;
    }

    private async Task CheckBucketsAsync(CancellationToken ct)
    {
        foreach (var (store, bucket, side) in new[] { (_source, _job.SourceBucket, "source"), (_target, _job.TargetBucket, "target") })
        {
            if (side == "target" && _job.Type == JobType.Inventory) continue;
            var exists = await _options.Retry.RunAsync(c => store.BucketExistsAsync(bucket, c), null, ct).ConfigureAwait(false);
            if (!exists) throw new JobFatalException($"The {side} bucket '{bucket}' does not exist. Create it, or correct -{(side == "source" ? "SourceBucket" : "TargetBucket")}.");
        }
    }

    // ---- Listing ----

    private async Task ListIntoStoreAsync(IObjectStore store, string bucket, string prefix, bool target, CancellationToken ct)
    {
        var (token, done) = _store.GetListingCheckpoint(_job.Id, target);
        while (!done)
        {
            ObjectListing page;
            try
            {
                page = await _options.Retry.RunAsync(c => store.ListAsync(bucket, prefix, token, _options.ListPageSize, c), null, ct).ConfigureAwait(false);
            }
            catch (StorageException e)
            {
                throw new JobFatalException($"Listing the {(target ? "target" : "source")} bucket '{bucket}' failed: {e.Message} " +
                    "Fix the cause, then Resume-MigrationJob continues the listing from its last page.", e);
            }
            var selected = target ? page.Objects : page.Objects.Where(_selector.Selects).ToList();
            token = page.NextContinuationToken;
            done = token is null;
            _store.SaveListingPage(_job.Id, selected, token, done, target);
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
                _logs.Enqueue(new LogRecord(LogType.MigrationError, key, $"The key '{key}' given with -Key does not exist in the source bucket."));
                continue;
            }
            found.Add(new ListedObject(key, head.Size, head.ETag, head.LastModified, head.StorageClass));
        }
        _store.SaveListingPage(_job.Id, found, null, done: true, target: false);
    }

    // ---- Scheduling ----

    private async Task ScheduleAsync(Task listing, CancellationToken ct)
    {
        var cursor = "";
        const int batchSize = 256;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (_fatal is not null) return;
            // Read before the query: a listing that had finished then has all its rows committed, so an empty answer
            // means nothing is pending. Read after it, a page saved in between would be missed and the job end early.
            var listingDone = listing.IsCompleted;
            var batch = _store.GetPendingObjects(_job.Id, cursor, batchSize);
            if (batch.Count == 0)
            {
                if (!listingDone)
                {
                    await Task.WhenAny(listing, Task.Delay(50, ct)).ConfigureAwait(false);
                    continue;
                }
                await listing.ConfigureAwait(false);
                // Listing is done: once everything in flight is recorded, one pass from the start catches any
                // pending row that arrived behind the cursor (explicit keys, a resumed listing).
                await WorkQueue.IdleAsync(() => Volatile.Read(ref _outstanding) == 0, ct).ConfigureAwait(false);
                FlushResults();
                if (cursor.Length == 0) return;
                cursor = "";
                if (_store.GetPendingObjects(_job.Id, cursor, 1).Count == 0) return;
                continue;
            }
            foreach (var o in batch)
            {
                cursor = o.Key;
                if (_inFlight.ContainsKey(o.Key)) continue;
                var skip = Decide(o);
                if (skip is not null)
                {
                    Record(skip);
                    continue;
                }
                _inFlight[o.Key] = 0;
                Interlocked.Increment(ref _outstanding);
                await _queue.EnqueueObjectAsync(new ObjectWork(o), ct).ConfigureAwait(false);
            }
            if (_results.Count >= 512) FlushResults();
        }
    }

    private ObjectResult? Decide(PendingObject o)
    {
        switch (_job.Type)
        {
            case JobType.Inventory:
                return new ObjectResult(o.Key, ObjectOutcome.Skipped, o.Size, null, $"Inventoried: storage class {o.StorageClass ?? "STANDARD"}.");
            case JobType.Verify:
                if (o.TargetSize is null) return new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.VerifyMissing, "The target lacks this object.");
                if (o.TargetSize != o.Size)
                {
                    return new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.VerifyMismatch,
                        $"Source {o.Size} bytes ETag {o.ETag}; target {o.TargetSize} bytes ETag {o.TargetETag}.");
                }
                if (Checksums.IsPlainMd5(o.ETag) && Checksums.IsPlainMd5(o.TargetETag) && !Checksums.SameETag(o.ETag, o.TargetETag))
                {
                    return null; // the listings cannot tell an MD5 from an SSE-KMS ETag: a worker asks both objects
                }
                var by = Checksums.SameETag(o.ETag, o.TargetETag) ? "size and ETag" : "size (the ETags are not comparable)";
                return new ObjectResult(o.Key, ObjectOutcome.Skipped, o.Size, null, $"Verified: same {by}.", null, by);
            default:
                return _selector.SkipReason(o);
        }
    }

    private void Record(ObjectResult result)
    {
        _results.Enqueue(result);
        _counters.Add(result);
    }

    private void FlushResults()
    {
        var results = new List<ObjectResult>();
        while (_results.TryDequeue(out var r)) results.Add(r);
        var logs = new List<LogRecord>();
        while (_logs.TryDequeue(out var l)) logs.Add(l);
        _store.SaveResults(_job.Id, results, logs);
    }

    // ---- Workers ----

    private async Task WorkerAsync(CancellationToken ct)
    {
        await Task.Yield();
        while (await _queue.DequeueAsync(ct).ConfigureAwait(false) is { } item)
        {
            switch (item)
            {
                case ObjectWork w when _job.Type == JobType.Verify: await VerifyByHeadAsync(w.Object, ct).ConfigureAwait(false); break;
                case ObjectWork w: await CopyObjectAsync(w.Object, ct).ConfigureAwait(false); break;
                case PartWork p: await CopyPartAsync(p, ct).ConfigureAwait(false); break;
            }
        }
    }

    private string TargetKey(string key) => _job.TargetPrefix + key;

    private void Finish(string key, ObjectResult result)
    {
        Record(result);
        // From here its bytes count through the recorded result (or, failed, not at all).
        _counters.Forget(key);
        _inFlight.TryRemove(key, out _);
        Interlocked.Decrement(ref _outstanding);
    }

    private void Fail(PendingObject o, Exception e)
    {
        if (e is StorageException { IsJobFatal: true } || (e is StorageException { ErrorClass: ErrorClass.Connection }))
        {
            _fatal ??= e;
        }
        var type = e is StorageException { IsRetryable: true } or StorageException { ErrorClass: ErrorClass.Connection }
            ? LogType.ImportErrorRetryExhaustion : LogType.MigrationError;
        Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, type, e.Message));
    }

    /// <summary>Logs <paramref name="message"/> once per run for <paramref name="topic"/> (what a target could not take, a fallback taken).</summary>
    private void LogOnce(string topic, string? key, string message)
    {
        if (_loggedOnce.TryAdd(topic, 0)) _logs.Enqueue(new LogRecord(LogType.MigrationNotice, key, message));
    }

    private async Task CopyObjectAsync(PendingObject o, CancellationToken ct)
    {
        try
        {
            if (ObjectSelector.NeedsArchiveCheck(o))
            {
                var head = await _options.Retry.RunAsync(c => _source.HeadAsync(_job.SourceBucket, o.Key, c), OnRetry(o.Key), ct).ConfigureAwait(false);
                if (ObjectSelector.ArchiveSkip(o, head?.ArchiveStatus) is { } archived)
                {
                    Finish(o.Key, archived);
                    return;
                }
            }
            if (o.Size > Math.Min(_job.MultipartThreshold, _target.Profile.MaxPutSize))
            {
                await StartMultipartAsync(o, ct).ConfigureAwait(false);
                return;
            }
            var result = await _options.Retry.RunAsync(async c =>
            {
                try
                {
                    return await (_serverSide ? CopyServerSideAsync(o, c) : CopyStreamingAsync(o, c)).ConfigureAwait(false);
                }
                catch
                {
                    // This attempt's bytes did not arrive whole; a retry counts its own.
                    _counters.Forget(o.Key);
                    throw;
                }
            }, OnRetry(o.Key), ct).ConfigureAwait(false);
            Finish(o.Key, result);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _inFlight.TryRemove(o.Key, out _);
            Interlocked.Decrement(ref _outstanding);
        }
        catch (StorageException e) when (e.ErrorClass == ErrorClass.SourceChanged)
        {
            await RestartChangedAsync(o, null, e.ConditionRefused, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Fail(o, e);
        }
    }

    private Action<StorageException, int> OnRetry(string key) => (_, _) => _counters.CountRetry();

    // ---- Pinning: every read after listing is of the listed version ----

    /// <summary>A server that ignores If-Match still names the version it sent: anything but the listed one is a change.</summary>
    private static void EnsureListedVersion(PendingObject o, ObjectHead head)
    {
        if (o.ETag is not null && head.ETag is not null && !Checksums.SameETag(o.ETag, head.ETag))
        {
            throw new StorageException(ErrorClass.SourceChanged, $"The source object '{o.Key}' is now ETag {head.ETag}; it was listed as {o.ETag}.");
        }
    }

    /// <summary>
    /// The source changed while it was copied (412 on a pinned read, another ETag on resume): the object starts over from
    /// its current version, with new listing data and a new upload (the old one aborted), so the target never holds a mix
    /// of two versions. An object that keeps changing fails after a few restarts and is retried with -RetryFailed.
    /// </summary>
    private async Task RestartChangedAsync(PendingObject o, string? uploadId, bool onlyConditionRefused, CancellationToken ct)
    {
        // What was counted for this object is recounted by the new attempt (parts kept included).
        _counters.Forget(o.Key);
        try
        {
            var restarts = _restarts.AddOrUpdate(o.Key, 1, (_, n) => n + 1);
            var head = await _options.Retry.RunAsync(c => _source.HeadAsync(_job.SourceBucket, o.Key, c), OnRetry(o.Key), ct).ConfigureAwait(false);
            var unchanged = head is not null && Checksums.SameETag(head.ETag, o.ETag) && head.Size == o.Size;
            if (onlyConditionRefused && unchanged && restarts > MaxSourceChangeRestarts)
            {
                if (uploadId is not null) await AbortQuietlyAsync(o.Key, uploadId).ConfigureAwait(false);
                Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.ImportSourceChanged,
                    $"The source refused reads of this object {restarts} times though it did not change (ETag {o.ETag}); Resume-MigrationJob -RetryFailed tries again."));
                return;
            }
            // Only a refused condition may keep the upload: a change the client saw itself (another ETag in an answer or a
            // HEAD) always starts over, whatever a later HEAD says (a stale replica, the old bytes written back).
            if (onlyConditionRefused && unchanged)
            {
                // Refused for a condition that holds: this server's conditions are not to be trusted. Reads and copies go
                // without them from now on, and the ETag each answer names keeps them to the listed version. The parts
                // copied so far are of that version: the upload goes on.
                _readsPinnedByAnswer = true;
                LogOnce("if-match", o.Key, $"The source refused a condition on an object that did not change ('{o.Key}', ETag {o.ETag}): reads are checked by the ETag each answer names instead.");
                await CopyObjectAsync(o, ct).ConfigureAwait(false);
                return;
            }
            if (uploadId is not null) await AbortQuietlyAsync(o.Key, uploadId).ConfigureAwait(false);
            if (head is null)
            {
                Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.ImportSourceChanged,
                    $"The source object was deleted while it was being copied (listed ETag {o.ETag}); nothing of it was kept on the target."));
                return;
            }
            if (restarts > MaxSourceChangeRestarts)
            {
                Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.ImportSourceChanged,
                    $"The source object changed {restarts} times while it was being copied (now ETag {head.ETag}); Resume-MigrationJob -RetryFailed copies it once it is stable."));
                return;
            }
            var current = o with { Size = head.Size, ETag = head.ETag, LastModified = head.LastModified, StorageClass = head.StorageClass };
            var listed = new ListedObject(o.Key, head.Size, head.ETag, head.LastModified, head.StorageClass);
            _store.UpdateListedObject(_job.Id, listed);
            if (!_selector.Selects(listed))
            {
                Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Skipped, 0, LogType.ImportSourceChanged,
                    $"The source changed while it was copied (now ETag {head.ETag}, {head.Size} bytes) and no longer matches the job's filters: not copied" +
                    $"{(uploadId is null ? "" : "; the partial multipart upload was aborted")}."));
                return;
            }
            _logs.Enqueue(new LogRecord(LogType.ImportSourceChanged, o.Key,
                $"The source changed while it was copied (listed: ETag {o.ETag}, {o.Size} bytes; now: ETag {head.ETag}, {head.Size} bytes): " +
                $"copying the current version from the start{(uploadId is null ? "" : "; the partial multipart upload was aborted")}."));
            await CopyObjectAsync(current, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _inFlight.TryRemove(o.Key, out _);
            Interlocked.Decrement(ref _outstanding);
        }
        catch (Exception e)
        {
            Fail(o, e);
        }
    }

    // ---- Single-part copies ----

    private async Task<ObjectResult> CopyServerSideAsync(PendingObject o, CancellationToken ct)
    {
        if (_selector.HasContentTypeRule)
        {
            var head = await _source.HeadAsync(_job.SourceBucket, o.Key, ct).ConfigureAwait(false)
                ?? throw new StorageException(ErrorClass.ObjectNotFound, $"The source object '{o.Key}' vanished before it was copied.");
            if (_selector.ContentTypeSkip(o.Key, o.Size, head.Metadata.ContentType) is { } skip) return skip;
        }
        // No bytes pass through here, but the cap is on the job's bandwidth, which a server-side copy uses too.
        if (_limiter is not null) await _limiter.ConsumeAsync(o.Size, ct).ConfigureAwait(false);
        var storageClass = _attributes.StorageClassFor(o.Key, o.StorageClass);
        var etag = await _target.CopyAsync(_job.SourceBucket, o.Key, _job.TargetBucket, TargetKey(o.Key), ReadCondition(o), storageClass, ct).ConfigureAwait(false);
        var verifiedBy = Verification.ServerSide;
        if (o.ETag is not null && (etag.Value is null || !Checksums.SameETag(o.ETag, etag.Value)))
        {
            // Another ETag: the source changed (some servers ignore x-amz-copy-source-if-match and copy the new version),
            // the bytes differ, or the ETags are no MD5s (multipart, SSE-KMS), which a listing cannot tell: the source says.
            var source = await _source.HeadAsync(_job.SourceBucket, o.Key, ct).ConfigureAwait(false);
            if (source is null || !Checksums.SameETag(source.ETag, o.ETag))
            {
                throw new StorageException(ErrorClass.SourceChanged, $"The source object '{o.Key}' is now ETag {source?.ETag ?? "(deleted)"}; it was listed as {o.ETag}.");
            }
            if (source.ETagIsContentMd5 && etag.IsContentMd5)
            {
                throw new StorageException(ErrorClass.Integrity, $"Server-side copy of '{o.Key}' produced ETag {etag}, expected {o.ETag}.");
            }
            verifiedBy = Verification.ServerSideOpaque;
        }
        else if (etag.IsContentMd5)
        {
            verifiedBy = Verification.ServerSideSameETag;
        }
        // A server-side copy shows no bytes while it runs: they count when it is done.
        _counters.Moved(o.Key, o.Size);
        return new ObjectResult(o.Key, ObjectOutcome.Transferred, o.Size, null, "Copied server-side.", Checksums.Clean(etag.Value ?? o.ETag), verifiedBy);
    }

    private async Task<ObjectResult> CopyStreamingAsync(PendingObject o, CancellationToken ct)
    {
        using var download = await _source.GetAsync(_job.SourceBucket, o.Key, null, null, ReadCondition(o), ct).ConfigureAwait(false);
        var head = download.Head;
        EnsureListedVersion(o, head);
        if (_selector.ContentTypeSkip(o.Key, o.Size, head.Metadata.ContentType) is { } skip) return skip;
        var size = head.Size;
        // Where the source ETag is the content MD5 (single part, no SSE-KMS/SSE-C), it goes up as Content-MD5: the target
        // verifies every byte it receives against it (BadDigest otherwise), and the client does not hash them again.
        // Otherwise the client hashes while streaming; a full-object checksum the source stored is recomputed and
        // compared, and sent along for the target to check on receipt where it supports that.
        var sourceMd5 = head.ETagIsContentMd5 ? Checksums.Clean(head.ETag) : null;
        var sourceChecksum = head.Checksum;
        var sendChecksum = sourceChecksum is not null && _target.Profile.SupportsChecksums;
        using var body = new HashingReadStream(download.Body, _limiter, ct, hash: sourceMd5 is null, checksumAlgorithm: sourceChecksum?.Algorithm,
            onRead: n => _counters.Moved(o.Key, n));
        var checks = new PayloadChecks(sourceMd5 is null ? null : Convert.ToBase64String(Convert.FromHexString(sourceMd5)), sendChecksum ? sourceChecksum : null);
        var metadata = await _attributes.ForTargetAsync(o.Key, head, withTags: true, ct).ConfigureAwait(false);
        var etag = await _target.PutAsync(_job.TargetBucket, TargetKey(o.Key), body, size, metadata, checks, ct).ConfigureAwait(false);
        if (body.BytesRead != size) throw Truncated(o.Key, body.BytesRead, size);
        if (sourceChecksum is not null && body.ChecksumBase64() is { } computed && computed != sourceChecksum.Base64)
        {
            throw new StorageException(ErrorClass.Integrity,
                $"Checksum mismatch for '{o.Key}': the bytes read have {sourceChecksum.Algorithm} {computed}, the source stored {sourceChecksum.Base64}.");
        }
        var md5 = sourceMd5 ?? body.Md5Hex()!;
        if (etag.IsContentMd5 && etag.Clean != md5) throw Mismatch(o.Key, md5, head.ETag, etag.Value);
        var verifiedBy = sourceMd5 is not null ? Verification.ContentMd5
            : sourceChecksum is not null ? Verification.SourceChecksum(sourceChecksum.Algorithm, sendChecksum)
            : etag.IsContentMd5 ? Verification.Md5EqualsTargetETag
            : Verification.SizeOnly;
        if (etag.IsContentMd5 && (sourceMd5 is not null || sourceChecksum is not null)) verifiedBy += Verification.AndTargetETag;
        return new ObjectResult(o.Key, ObjectOutcome.Transferred, size, null, null, md5, verifiedBy);
    }

    private static StorageException Truncated(string key, long read, long size) =>
        new(ErrorClass.Integrity, $"Read {read} of {size} bytes of '{key}': the download was cut short.");

    private static StorageException Mismatch(string key, string md5, string? sourceETag, string? targetETag) =>
        new(ErrorClass.Integrity, $"Checksum mismatch for '{key}': content MD5 {md5}, source ETag {sourceETag}, target ETag {targetETag}.");

    // ---- Verify ----

    /// <summary>
    /// Sizes agreed but the listed ETags did not: they decide only where both are MD5s of the content, which a listing
    /// cannot tell (SSE-KMS and SSE-C ETags look the same), so both objects are asked.
    /// </summary>
    private async Task VerifyByHeadAsync(PendingObject o, CancellationToken ct)
    {
        try
        {
            var source = await _options.Retry.RunAsync(c => _source.HeadAsync(_job.SourceBucket, o.Key, c), OnRetry(o.Key), ct).ConfigureAwait(false);
            var target = await _options.Retry.RunAsync(c => _target.HeadAsync(_job.TargetBucket, TargetKey(o.Key), c), OnRetry(o.Key), ct).ConfigureAwait(false);
            if (target is null)
            {
                Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.VerifyMissing, "The target lacks this object."));
            }
            else if (source is not null && source.ETagIsContentMd5 && target.ETagIsContentMd5 && !Checksums.SameETag(source.ETag, target.ETag))
            {
                Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.VerifyMismatch,
                    $"Source {source.Size} bytes MD5 {source.ETag}; target {target.Size} bytes MD5 {target.ETag}."));
            }
            else
            {
                var by = source is { ETagIsContentMd5: true } && target.ETagIsContentMd5 ? "size and MD5" : "size (an ETag is not an MD5: SSE-KMS, SSE-C or multipart)";
                Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Skipped, o.Size, null, $"Verified: same {by}.", null, by));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _inFlight.TryRemove(o.Key, out _);
            Interlocked.Decrement(ref _outstanding);
        }
        catch (Exception e)
        {
            Fail(o, e);
        }
    }

    // ---- Multipart ----

    private async Task StartMultipartAsync(PendingObject o, CancellationToken ct)
    {
        var partSize = PartSizeFor(o.Size);
        var partCount = (int)((o.Size + partSize - 1) / partSize);
        var uploadId = _store.GetUploadId(_job.Id, o.Key);
        var done = uploadId is null ? [] : _store.GetUploadedParts(_job.Id, o.Key).ToList();
        if (done.Any(p => p.Size != Math.Min(partSize, o.Size - (long)(p.PartNumber - 1) * partSize)))
        {
            // Parts of another size (the job's part size changed): start over rather than mix them.
            await AbortQuietlyAsync(o.Key, uploadId!).ConfigureAwait(false);
            uploadId = null;
            done = [];
        }
        var head = await _options.Retry.RunAsync(c => _source.HeadAsync(_job.SourceBucket, o.Key, c), OnRetry(o.Key), ct).ConfigureAwait(false);
        if (head is null || (o.ETag is not null && !Checksums.SameETag(head.ETag, o.ETag)) || head.Size != o.Size)
        {
            // Changed since it was listed, or since the parts kept from an earlier run were copied: none of them may be reused.
            await RestartChangedAsync(o, uploadId, onlyConditionRefused: false, ct).ConfigureAwait(false);
            return;
        }
        if (uploadId is null)
        {
            if (_selector.ContentTypeSkip(o.Key, o.Size, head.Metadata.ContentType) is { } skip)
            {
                Finish(o.Key, skip);
                return;
            }
            // Tags go on once the object is complete (not every server takes them with CreateMultipartUpload: Ceph drops them).
            var metadata = await _attributes.ForTargetAsync(o.Key, head, withTags: false, ct).ConfigureAwait(false);
            uploadId = await _options.Retry.RunAsync(c => _target.StartMultipartAsync(_job.TargetBucket, TargetKey(o.Key), metadata, c), OnRetry(o.Key), ct).ConfigureAwait(false);
            _store.SaveUploadId(_job.Id, o.Key, uploadId);
        }
        var upload = new MultipartUpload(o, uploadId, partSize, partCount, done);
        var missing = Enumerable.Range(1, partCount).Where(n => !upload.Parts.ContainsKey(n)).ToList();
        // Parts kept from an earlier run are on the target: they count as done, but not toward this run's rate.
        _counters.Moved(o.Key, done.Sum(p => p.Size), measured: false);
        if (missing.Count == 0)
        {
            await CompleteMultipartAsync(upload, ct).ConfigureAwait(false);
            return;
        }
        upload.Remaining = missing.Count;
        foreach (var n in missing) _queue.EnqueuePart(new PartWork(upload, n));
    }

    /// <summary>The job's part size, raised to the target's minimum and to what its part-count limit needs, capped at its largest part.</summary>
    private long PartSizeFor(long size)
    {
        var profile = _target.Profile;
        var partSize = Math.Max(_job.PartSize, profile.MinPartSize);
        var needed = (size + profile.MaxParts - 1) / profile.MaxParts;
        return Math.Min(Math.Max(partSize, needed), profile.MaxPartSize);
    }

    /// <summary>Server-side part copies, unless the target has none (its profile says so, or it answered NotImplemented once).</summary>
    private bool CopiesPartsServerSide => _serverSide && _target.Profile.SupportsPartCopy && !_partCopyUnsupported;

    private async Task CopyPartAsync(PartWork work, CancellationToken ct)
    {
        var upload = work.Upload;
        if (upload.Failed) { await PartDoneAsync(upload, ct).ConfigureAwait(false); return; }
        var first = (long)(work.PartNumber - 1) * upload.PartSize;
        var length = Math.Min(upload.PartSize, upload.Object.Size - first);
        try
        {
            var part = await _options.Retry.RunAsync(async c =>
            {
                if (CopiesPartsServerSide)
                {
                    try
                    {
                        if (_limiter is not null) await _limiter.ConsumeAsync(length, c).ConfigureAwait(false);
                        var copied = await _target.UploadPartCopyAsync(_job.SourceBucket, upload.Object.Key, _job.TargetBucket, TargetKey(upload.Object.Key),
                            upload.UploadId, work.PartNumber, first, first + length - 1, ReadCondition(upload.Object), c).ConfigureAwait(false);
                        _counters.Moved(upload.Object.Key, length);
                        return new UploadedPart(work.PartNumber, copied.Value!, length);
                    }
                    catch (StorageException e) when (e.ErrorClass == ErrorClass.Unsupported)
                    {
                        _partCopyUnsupported = true;
                        LogOnce("partcopy", upload.Object.Key,
                            $"The target ({_target.Profile}) does not implement UploadPartCopy: large objects are copied through this machine instead ({e.Message}).");
                    }
                }
                return await UploadOnePartAsync(upload, work.PartNumber, first, length, c).ConfigureAwait(false);
            }, OnRetry(upload.Object.Key), ct).ConfigureAwait(false);
            _store.SavePart(_job.Id, upload.Object.Key, part);
            upload.Parts[part.PartNumber] = part;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            upload.Failed = true;
            upload.Cancelled = true;
        }
        catch (Exception e)
        {
            upload.Failed = true;
            // A source change wins over other part failures: the object starts over anyway.
            if (e is StorageException { ErrorClass: ErrorClass.SourceChanged, ConditionRefused: false }) upload.ChangeObserved = true;
            if (upload.Error is null || e is StorageException { ErrorClass: ErrorClass.SourceChanged }) upload.Error = e;
        }
        await PartDoneAsync(upload, ct).ConfigureAwait(false);
    }

    private async Task<UploadedPart> UploadOnePartAsync(MultipartUpload upload, int partNumber, long first, long length, CancellationToken ct)
    {
        // The part streams from the ranged GET, pinned to the listed version, into the UploadPart; its MD5, taken on the
        // way, must match the part's ETag where the target's ETags are MD5s.
        using var download = await _source.GetAsync(_job.SourceBucket, upload.Object.Key, first, first + length - 1, ReadCondition(upload.Object), ct).ConfigureAwait(false);
        EnsureListedVersion(upload.Object, download.Head);
        var key = upload.Object.Key;
        using var body = new HashingReadStream(download.Body, _limiter, ct, onRead: n => _counters.Moved(key, n));
        try
        {
            var etag = await _target.UploadPartAsync(_job.TargetBucket, TargetKey(key), upload.UploadId, partNumber, body, length, PayloadChecks.None, ct).ConfigureAwait(false);
            if (body.BytesRead != length) throw new StorageException(ErrorClass.Integrity, $"Part {partNumber} of '{key}': read {body.BytesRead} of {length} bytes.");
            var md5Hex = body.Md5Hex()!;
            if (etag.IsContentMd5 && etag.Clean != md5Hex)
            {
                throw new StorageException(ErrorClass.Integrity, $"Part {partNumber} of '{key}': target ETag {etag}, sent MD5 {md5Hex}.");
            }
            if (!etag.IsContentMd5) Interlocked.Increment(ref upload.OpaqueParts);
            return new UploadedPart(partNumber, etag.Value!, length);
        }
        catch
        {
            // This attempt's bytes did not make a part; a retry counts its own.
            _counters.Moved(key, -body.BytesRead);
            throw;
        }
    }

    private async Task PartDoneAsync(MultipartUpload upload, CancellationToken ct)
    {
        if (Interlocked.Decrement(ref upload.Remaining) != 0) return;
        // The last part to finish completes the object, on this worker.
        if (upload.Cancelled)
        {
            _inFlight.TryRemove(upload.Object.Key, out _);
            Interlocked.Decrement(ref _outstanding);
            return;
        }
        if (upload.Error is StorageException { ErrorClass: ErrorClass.SourceChanged })
        {
            await RestartChangedAsync(upload.Object, upload.UploadId, onlyConditionRefused: !upload.ChangeObserved, ct).ConfigureAwait(false);
            return;
        }
        if (upload.Failed)
        {
            Fail(upload.Object, upload.Error!);
            return;
        }
        await CompleteMultipartAsync(upload, ct).ConfigureAwait(false);
    }

    private async Task CompleteMultipartAsync(MultipartUpload upload, CancellationToken ct)
    {
        var o = upload.Object;
        try
        {
            var parts = upload.Parts.Values.OrderBy(p => p.PartNumber).Select(p => (p.PartNumber, p.ETag)).ToList();
            if (_serverSide)
            {
                // Servers that ignore x-amz-copy-source-if-match on UploadPartCopy (R2, older Ceph) copy whatever version
                // is there: the source must still be the listed version after the last part, or nothing is completed.
                var source = await _options.Retry.RunAsync(c => _source.HeadAsync(_job.SourceBucket, o.Key, c), OnRetry(o.Key), ct).ConfigureAwait(false);
                if (source is null || (o.ETag is not null && !Checksums.SameETag(source.ETag, o.ETag)))
                {
                    throw new StorageException(ErrorClass.SourceChanged, $"The source object '{o.Key}' is now ETag {source?.ETag ?? "(deleted)"}; it was listed as {o.ETag}.");
                }
            }
            var completed = await _options.Retry.RunAsync(c => _target.CompleteMultipartAsync(_job.TargetBucket, TargetKey(o.Key), upload.UploadId, parts, c), OnRetry(o.Key), ct)
                .ConfigureAwait(false);
            // Complete: the upload no longer exists, so a resume must not try to complete or abort it again.
            _store.ForgetUpload(_job.Id, o.Key);
            // Some servers answer CompleteMultipartUpload without an ETag; HEAD tells the truth, and the size too.
            var head = await _options.Retry.RunAsync(c => _target.HeadAsync(_job.TargetBucket, TargetKey(o.Key), c), OnRetry(o.Key), ct).ConfigureAwait(false);
            var etag = string.IsNullOrEmpty(completed.Value) ? head?.ETag : completed.Value;
            if (head is null || head.Size != o.Size)
            {
                throw new StorageException(ErrorClass.Integrity, $"After completing '{o.Key}' the target reports {head?.Size.ToString() ?? "no object"}, expected {o.Size} bytes.");
            }
            // The composite ETag (MD5 of the parts' MD5s) is checked only where every part ETag was an MD5 and the object
            // is not encrypted opaquely; part ETags that are not hex are never parsed as such.
            var partMd5s = parts.Select(p => Checksums.Clean(p.ETag)!).ToList();
            var expected = partMd5s.All(Checksums.IsPlainMd5) ? Checksums.MultipartETag(partMd5s) : null;
            var cleanETag = Checksums.Clean(etag);
            var streamed = !CopiesPartsServerSide;
            var comparable = streamed && expected is not null && upload.OpaqueParts == 0
                && cleanETag is not null && cleanETag.Contains('-') && !head.OpaquelyEncrypted;
            if (comparable && cleanETag != expected)
            {
                throw new StorageException(ErrorClass.Integrity, $"Multipart ETag of '{o.Key}' is {cleanETag}, expected {expected} from the parts sent.");
            }
            var verifiedBy = !streamed ? Verification.ServerSideParts : comparable ? Verification.PartsMatchETags : Verification.PartsSizeOnly;
            await _attributes.CopyTagsAfterCompletionAsync(o.Key, TargetKey(o.Key), ct).ConfigureAwait(false);
            Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Transferred, o.Size, null, $"Multipart, {parts.Count} parts.", expected ?? cleanETag, verifiedBy));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _inFlight.TryRemove(o.Key, out _);
            Interlocked.Decrement(ref _outstanding);
        }
        catch (StorageException e) when (e.ErrorClass == ErrorClass.SourceChanged)
        {
            await RestartChangedAsync(o, upload.UploadId, e.ConditionRefused, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Fail(o, e);
        }
    }

    private async Task AbortQuietlyAsync(string key, string uploadId, CancellationToken timeout = default)
    {
        try
        {
            using var own = timeout.CanBeCanceled ? null : new CancellationTokenSource(_options.AbortTimeout);
            await _target.AbortMultipartAsync(_job.TargetBucket, TargetKey(key), uploadId, own?.Token ?? timeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StorageException or OperationCanceledException)
        {
            _logs.Enqueue(new LogRecord(LogType.MigrationError, key, $"Could not abort the multipart upload: {e.Message}"));
        }
        _store.ForgetUpload(_job.Id, key);
    }

    // ---- Control, heartbeat, accounting ----

    private async Task ControlLoopAsync(CancellationTokenSource stop, CancellationTokenSource work, CancellationToken end)
    {
        var lastFlush = DateTime.UtcNow;
        while (!end.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.ControlInterval, end).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            try
            {
                var lease = _store.Heartbeat(_job.Id, _runnerId, _phase);
                if (lease == RunnerLease.Lost)
                {
                    _lost = true;
                    stop.Cancel();
                    break;
                }
                if (lease == RunnerLease.Reclaimed)
                {
                    _logs.Enqueue(new LogRecord(LogType.MigrationResume, null,
                        $"The heartbeat of {_runnerId} was late, so the job was marked Interrupted; the runner is alive and the job is Running again."));
                }
                if (_settling) continue;
                var request = _store.GetControlRequest(_job.Id);
                if (request == ControlRequest.Stop) { _control = request; stop.Cancel(); }
                else if (request is ControlRequest.Pause or ControlRequest.Interrupt) { _control = request; work.Cancel(); }
                if (_fatal is not null) work.Cancel();
                if (DateTime.UtcNow - lastFlush >= _options.FlushInterval)
                {
                    // Results first, then the moving bytes without them: an object is never counted twice, at worst
                    // one that finished meanwhile is missing until the next tick.
                    FlushResults();
                    var (bytesPerSecond, objectsPerSecond) = _counters.SampleRates();
                    _store.SaveRates(_job.Id, bytesPerSecond, objectsPerSecond, _counters.MovingBytes);
                    lastFlush = DateTime.UtcNow;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The store was busy or briefly unavailable: the next tick tries again; results stay queued.
                _logs.Enqueue(new LogRecord(LogType.MigrationErrorFailedContinuation, null, $"State store update deferred: {e.Message}"));
            }
        }
    }

    /// <summary>All at once, within one timeout: a stop on a stalled server takes seconds, not a timeout per upload.</summary>
    private async Task AbortOpenUploadsAsync()
    {
        using var timeout = new CancellationTokenSource(_options.AbortTimeout);
        await Task.WhenAll(_store.GetOpenUploads(_job.Id).Select(u => AbortQuietlyAsync(u.Key, u.UploadId, timeout.Token))).ConfigureAwait(false);
    }

    /// <summary>Writes the settled state if this run still holds the job; otherwise reports what the job is now.</summary>
    private JobState Settle(JobState to, string? error = null) =>
        _store.TrySettleRun(_job.Id, _runnerId, to, error) ? to : _store.FindJob(_job.Id)?.State ?? JobState.Cancelled;

    private async Task<JobState> SettleAsync(bool externallyCancelled)
    {
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
        FlushResults();
        // Parts of unfinished uploads stay on the target for a resume (a stop aborts them below).
        _store.SaveRates(_job.Id, 0, 0, _counters.MovingBytes);
        var control = _control;
        if (control == ControlRequest.Stop || (externallyCancelled && control is not (ControlRequest.Pause or ControlRequest.Interrupt)))
        {
            await AbortOpenUploadsAsync().ConfigureAwait(false);
            FlushResults();
            _store.SaveRates(_job.Id, 0, 0, 0);
            _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationAbort, null, "Stopped on request; open multipart uploads were aborted.")]);
            return Settle(JobState.Cancelled);
        }
        if (_fatal is not null)
        {
            _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationError, null, _fatal.Message)]);
            return Settle(JobState.Failed, _fatal.Message);
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
        var final = progress.FailedObjects > 0 ? JobState.CompletedWithErrors : JobState.Completed;
        _store.AddLogs(_job.Id, [new LogRecord(LogType.MigrationComplete, null,
            _job.Type switch
            {
                // A verify copies nothing: its skipped objects are the ones that matched, its failed ones the differences.
                JobType.Verify => $"{progress.SkippedObjects} matched, {progress.FailedObjects} missing or different on the target, of {progress.Objects}.",
                JobType.Inventory => $"{progress.SkippedObjects} objects ({progress.TotalBytes} bytes) inventoried.",
                _ => $"{progress.TransferredObjects} transferred ({progress.TransferredBytes} bytes), {progress.SkippedObjects} skipped, {progress.FailedObjects} failed of {progress.Objects}.",
            })]);
        return Settle(final);
    }
}
