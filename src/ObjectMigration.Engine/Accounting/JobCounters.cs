using System.Collections.Concurrent;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Accounting;

/// <summary>
/// In-memory counters of one run; the store holds the durable totals. Bytes are counted as they move, per object, so
/// a large object's parts (finished and streaming) show before the object completes; rates are measured over a
/// sliding window.
/// </summary>
internal sealed class JobCounters
{
    /// <summary>Long enough to ride out a part that stalls for a moment, short enough to follow a changed cap.</summary>
    public static readonly TimeSpan RateWindow = TimeSpan.FromSeconds(10);

    private readonly Func<long> _clock;
    private readonly ConcurrentDictionary<string, long> _movingByKey = new(StringComparer.Ordinal);
    private readonly Queue<(long Ticks, long Bytes, long Objects)> _samples = new();
    private readonly object _sampleGate = new();
    private long _moving;
    private long _bytesMoved;
    private long _objects;
    private long _retries;
    private long _transferredObjects;
    private long _transferredBytes;

    /// <param name="clock">Milliseconds, monotonic; tests pass their own.</param>
    public JobCounters(Func<long>? clock = null)
    {
        _clock = clock ?? (() => Environment.TickCount64);
        _samples.Enqueue((_clock(), 0, 0));
    }

    /// <summary>
    /// Bytes of objects not yet recorded as finished that are on the target or on their way: finished parts and the
    /// bytes of attempts streaming now. Once an object's result is recorded its bytes count in the store instead.
    /// </summary>
    public long MovingBytes => Interlocked.Read(ref _moving);

    /// <summary>Every byte this run moved (the rate's measure), retried attempts included.</summary>
    public long BytesMoved => Interlocked.Read(ref _bytesMoved);

    /// <summary>
    /// <paramref name="bytes"/> of <paramref name="key"/> moved (negative: an attempt that failed takes its bytes back).
    /// <paramref name="measured"/> false is for parts kept from an earlier run: they are on the target, but did not move now.
    /// </summary>
    public void Moved(string key, long bytes, bool measured = true)
    {
        if (bytes == 0) return;
        _movingByKey.AddOrUpdate(key, bytes, (_, sum) => sum + bytes);
        Interlocked.Add(ref _moving, bytes);
        if (measured && bytes > 0) Interlocked.Add(ref _bytesMoved, bytes);
    }

    /// <summary>The object finished, failed or starts over: the bytes held for it stop counting here.</summary>
    public void Forget(string key)
    {
        if (_movingByKey.TryRemove(key, out var sum)) Interlocked.Add(ref _moving, -sum);
    }

    public void Add(ObjectResult result)
    {
        if (result.Outcome != ObjectOutcome.Failed) Interlocked.Increment(ref _objects);
        if (result.Outcome == ObjectOutcome.Transferred)
        {
            Interlocked.Increment(ref _transferredObjects);
            Interlocked.Add(ref _transferredBytes, result.Bytes);
        }
    }

    /// <summary>Objects this run copied (its share of the job, shown per runner when several run it).</summary>
    public long TransferredObjects => Interlocked.Read(ref _transferredObjects);
    public long TransferredBytes => Interlocked.Read(ref _transferredBytes);

    public void CountRetry() => Interlocked.Increment(ref _retries);

    /// <summary>
    /// Rates over the last <see cref="RateWindow"/>: what moved between the oldest sample in the window and now.
    /// A transfer that stalled for the whole window reads as 0, and the estimate then says "unknown".
    /// </summary>
    public (double BytesPerSecond, double ObjectsPerSecond) SampleRates()
    {
        var now = _clock();
        var bytes = BytesMoved;
        var objects = Interlocked.Read(ref _objects);
        lock (_sampleGate)
        {
            _samples.Enqueue((now, bytes, objects));
            // The oldest sample kept is the last one at or before the window's start, so the window is always covered.
            while (_samples.Count > 2 && now - _samples.ElementAt(1).Ticks >= RateWindow.TotalMilliseconds) _samples.Dequeue();
            var (oldestTicks, oldestBytes, oldestObjects) = _samples.Peek();
            var seconds = (now - oldestTicks) / 1000.0;
            if (seconds <= 0) return (0, 0);
            return (Math.Max(0, (bytes - oldestBytes) / seconds), Math.Max(0, (objects - oldestObjects) / seconds));
        }
    }
}
