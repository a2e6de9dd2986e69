using System.Collections.Concurrent;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Scheduling;

internal abstract record WorkItem;

/// <param name="BatchNo">The batch it was read from (0: none); a batch this runner no longer holds is not started.</param>
internal sealed record ObjectWork(PendingObject Object, int BatchNo = 0) : WorkItem;

internal sealed record PartWork(MultipartUpload Upload, int PartNumber) : WorkItem;

/// <summary>One large object's upload while its parts are in the queue.</summary>
internal sealed class MultipartUpload(PendingObject o, string uploadId, long partSize, int partCount, IEnumerable<UploadedPart> done)
{
    public PendingObject Object { get; } = o;
    public string UploadId { get; } = uploadId;
    public long PartSize { get; } = partSize;
    public int PartCount { get; } = partCount;
    public ConcurrentDictionary<int, UploadedPart> Parts { get; } = new(done.Select(p => KeyValuePair.Create(p.PartNumber, p)));
    public int Remaining;
    public volatile bool Failed;
    public volatile bool Cancelled;
    public Exception? Error;
    /// <summary>Parts whose ETag the target made opaque (SSE-KMS/SSE-C): verified by the client's MD5 and the size only.</summary>
    public int OpaqueParts;
    /// <summary>A part saw another version of the source itself (not only a refused condition): the upload is never kept.</summary>
    public volatile bool ChangeObserved;
}

/// <summary>
/// The bounded hand-off from the scheduler to the workers. Parts go first and are not bounded (an object's
/// parts are queued at once), so one huge object spreads over every worker; whole objects wait for room.
/// </summary>
internal sealed class WorkQueue(int objectCapacity)
{
    private readonly ConcurrentQueue<PartWork> _parts = new();
    private readonly ConcurrentQueue<ObjectWork> _objects = new();
    private readonly SemaphoreSlim _items = new(0);
    private readonly SemaphoreSlim _room = new(objectCapacity);
    private volatile bool _completed;

    public async Task EnqueueObjectAsync(ObjectWork work, CancellationToken ct)
    {
        await _room.WaitAsync(ct).ConfigureAwait(false);
        _objects.Enqueue(work);
        _items.Release();
    }

    public void EnqueuePart(PartWork work)
    {
        _parts.Enqueue(work);
        _items.Release();
    }

    /// <summary>The next item, or null once the queue is complete and empty.</summary>
    public async Task<WorkItem?> DequeueAsync(CancellationToken ct)
    {
        while (true)
        {
            await _items.WaitAsync(ct).ConfigureAwait(false);
            if (_parts.TryDequeue(out var part)) return part;
            if (_objects.TryDequeue(out var o))
            {
                _room.Release();
                return o;
            }
            if (_completed)
            {
                _items.Release(); // pass the wake-up on to the next idle worker
                return null;
            }
        }
    }

    public void Complete()
    {
        _completed = true;
        _items.Release();
    }

    /// <summary>Waits for a condition that workers make true as they finish (all in-flight objects recorded).</summary>
    public static async Task IdleAsync(Func<bool> condition, CancellationToken ct)
    {
        while (!condition()) await Task.Delay(10, ct).ConfigureAwait(false);
    }
}
