using System.Collections.Concurrent;
using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// What one run shares between the pipeline (<see cref="MigrationRunner"/>) and the job kind that plugs into it: the
/// job, both stores, the queue, the counters, and the one way an object's handling ends (<see cref="Finish"/>,
/// <see cref="Fail"/>, <see cref="Abandon"/>).
/// </summary>
internal sealed class RunContext
{
    private readonly ConcurrentQueue<ObjectResult> _results = new();
    private readonly ConcurrentQueue<LogRecord> _logs = new();
    /// <summary>Keys of completed multipart uploads whose records go once their results are in the store.</summary>
    private readonly ConcurrentQueue<string> _completedUploads = new();
    private readonly ConcurrentDictionary<string, byte> _inFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _loggedOnce = new(StringComparer.Ordinal);
    private int _outstanding;
    private int _congestion;
    private long _failedObjects;
    private Exception? _fatal;

    public RunContext(IStateStore store, MigrationJob job, IObjectStore source, IObjectStore target, RunnerOptions options)
    {
        Store = store;
        Job = job;
        Source = source;
        Target = target;
        Options = options;
        Selector = new ObjectSelector(job, options.TargetMaxObjectSize);
        Queue = new WorkQueue(Math.Max(2, job.Concurrency * 2));
        Limiter = job.MaxBytesPerSecond > 0 ? new BandwidthLimiter(job.MaxBytesPerSecond) : null;
        Uploads = new JobUploads(store, job, JobTypes.HasTarget(job.Type) ? target : source, options.Retry);
        EarlierRunsDispatchedThrough = store.GetDispatchedThrough(job.Id);
    }

    public IStateStore Store { get; }
    /// <summary>The runner's id (host:pid#run): the results it records count for its share of the job.</summary>
    public string? RunnerId { get; set; }
    public MigrationJob Job { get; }
    public IObjectStore Source { get; }
    public IObjectStore Target { get; }
    public RunnerOptions Options { get; }
    public ObjectSelector Selector { get; }
    public JobCounters Counters { get; } = new();
    public WorkQueue Queue { get; }
    /// <summary>The job's bandwidth cap; every byte read or copied for the job goes through it.</summary>
    public BandwidthLimiter? Limiter { get; }
    /// <summary>
    /// The highest key earlier runs handed to a worker (null on a first run): a pending object up to it may be on the
    /// target already, copied by a run that was killed before it recorded the result.
    /// </summary>
    public string? EarlierRunsDispatchedThrough { get; }
    /// <summary>The multipart uploads the job opens, and the one way they are started and aborted.</summary>
    public JobUploads Uploads { get; }

    /// <summary>What stopped the whole job, if anything; the first cause wins.</summary>
    public Exception? Fatal => Volatile.Read(ref _fatal);

    /// <param name="replace">The job-level failure of a stage names the cause better than what a worker saw first.</param>
    public void SetFatal(Exception e, bool replace = false)
    {
        if (replace) Volatile.Write(ref _fatal, e);
        else Interlocked.CompareExchange(ref _fatal, e, null);
    }

    /// <summary>Objects queued or in a worker whose result is not recorded yet.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    public bool IsInFlight(string key) => _inFlight.ContainsKey(key);

    /// <summary>Whether any object after <paramref name="afterKey"/> up to <paramref name="lastKey"/> is in flight (a batch's range).</summary>
    public bool AnyInFlightBetween(string afterKey, string lastKey) =>
        _inFlight.Keys.Any(k => KeyOrder.Compare(k, afterKey) > 0 && KeyOrder.Compare(k, lastKey) <= 0);

    private readonly ConcurrentDictionary<int, ObjectBatch> _reclaimed = new();

    /// <summary>
    /// A batch claimed before by a runner that did not complete it (killed, its lease lapsed, or paused): that runner
    /// may have copied some of its objects without recording them.
    /// </summary>
    public void Reclaimed(ObjectBatch batch) => _reclaimed[batch.BatchNo] = batch;

    /// <summary>
    /// Whether a pending object may be on the target already, copied by a runner that ended before it recorded the
    /// result: it is within what earlier runs dispatched, or in a batch taken over.
    /// </summary>
    public bool MayBeCopiedUnrecorded(string key) =>
        (EarlierRunsDispatchedThrough is { } through && KeyOrder.Compare(key, through) <= 0)
        || _reclaimed.Values.Any(b => KeyOrder.Compare(key, b.AfterKey) > 0 && KeyOrder.Compare(key, b.LastKey) <= 0);

    public string TargetKey(string key) => Job.TargetPrefix + key;

    /// <summary>The object goes to a worker: it is in flight until its result is recorded or the run stops.</summary>
    public void Dispatch(string key)
    {
        _inFlight[key] = 0;
        Interlocked.Increment(ref _outstanding);
    }

    /// <summary>An outcome decided without a worker, or by one (through <see cref="Finish"/>).</summary>
    public void Record(ObjectResult result)
    {
        _results.Enqueue(result);
        Counters.Add(result);
    }

    public void Log(LogRecord record) => _logs.Enqueue(record);

    /// <summary>Logs <paramref name="message"/> once per run for <paramref name="topic"/> (what a target could not take, a fallback taken).</summary>
    public void LogOnce(string topic, string? key, string message)
    {
        if (_loggedOnce.TryAdd(topic, 0)) _logs.Enqueue(new LogRecord(LogType.MigrationNotice, key, message));
    }

    public void Finish(string key, ObjectResult result)
    {
        Record(result);
        // From here its bytes count through the recorded result (or, failed, not at all).
        Counters.Forget(key);
        Abandon(key);
    }

    /// <summary>The run stopped while the object was in a worker: it stays pending for the next run.</summary>
    public void Abandon(string key)
    {
        _inFlight.TryRemove(key, out _);
        Interlocked.Decrement(ref _outstanding);
    }

    public void Fail(PendingObject o, Exception e)
    {
        if (e is StateFolderFullException)
        {
            // The object is not at fault: it stays pending for the resume, and the run stops.
            SetFatal(e);
            Counters.Forget(o.Key);
            Abandon(o.Key);
            return;
        }
        if (e is StorageException { IsJobFatal: true } || (e is StorageException { ErrorClass: ErrorClass.Connection }))
        {
            SetFatal(e);
        }
        var type = e is StorageException { IsRetryable: true } or StorageException { ErrorClass: ErrorClass.Connection }
            ? LogType.ImportErrorRetryExhaustion : LogType.MigrationError;
        Interlocked.Increment(ref _failedObjects);
        Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, type, e.Message));
    }

    /// <summary>Objects failed so far this run: a failure that comes back fast is no throughput, and must not raise the adaptive level.</summary>
    public long FailedObjects => Interlocked.Read(ref _failedObjects);

    public Action<StorageException, int> OnRetry(string key) => (e, _) =>
    {
        Counters.CountRetry();
        // Throttling and timeouts say the servers or the link want fewer requests at once; a 500 or a reset says nothing of that.
        if (e.IsThrottle || e.ErrorClass == ErrorClass.Timeout) Interlocked.Increment(ref _congestion);
    };

    /// <summary>Retries for throttling or timeouts so far this run: the adaptive level backs off on them.</summary>
    public int Congestion => Volatile.Read(ref _congestion);

    /// <summary>Writes the queued results and log entries in one transaction, with the counters.</summary>
    /// <summary>
    /// The key's upload is completed and its result queued: its record (id, parts) goes with the flush that writes the
    /// result, not before, so a kill in between leaves a resume what it needs to recognise the completed object.
    /// </summary>
    public void ForgetUploadOnceRecorded(string key) => _completedUploads.Enqueue(key);

    private readonly object _flushGate = new();

    /// <summary>
    /// One flush at a time (the scheduler and the control loop both flush): a flush that finds the queue empty returns
    /// only once a flush under way has written its results, so whoever then reads the store sees them.
    /// </summary>
    public void FlushResults()
    {
        lock (_flushGate) FlushResultsNow();
    }

    private void FlushResultsNow()
    {
        // Taken before the results: a key is queued after its result, so each key taken here has its result in this flush.
        var completedUploads = new List<string>();
        while (_completedUploads.TryDequeue(out var key)) completedUploads.Add(key);
        var results = new List<ObjectResult>();
        while (_results.TryDequeue(out var r)) results.Add(r);
        var logs = new List<LogRecord>();
        while (_logs.TryDequeue(out var l)) logs.Add(l);
        try
        {
            Store.SaveResults(Job.Id, results, logs, RunnerId);
        }
        catch
        {
            // Not written (the transaction rolled back): queued again for the next flush, or the run would forget
            // objects it finished.
            foreach (var r in results) _results.Enqueue(r);
            foreach (var l in logs) _logs.Enqueue(l);
            foreach (var k in completedUploads) _completedUploads.Enqueue(k);
            throw;
        }
        foreach (var key in completedUploads) Store.ForgetUpload(Job.Id, key);
    }

    public int QueuedResults => _results.Count;

    public async Task AbortUploadQuietlyAsync(string key, string uploadId, CancellationToken timeout = default)
    {
        using var own = timeout.CanBeCanceled ? null : new CancellationTokenSource(Options.AbortTimeout);
        await Uploads.AbortQuietlyAsync(key, uploadId, own?.Token ?? timeout, _logs.Enqueue).ConfigureAwait(false);
    }
}
