using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Accounting;

/// <summary>In-memory counters of one run, sampled for rates; the store holds the durable totals.</summary>
internal sealed class JobCounters
{
    private long _bytes;
    private long _objects;
    private long _retries;
    private long _lastBytes;
    private long _lastObjects;
    private long _lastTicks = Environment.TickCount64;
    private double _bytesRate;
    private double _objectsRate;

    public void AddBytes(long bytes) => Interlocked.Add(ref _bytes, bytes);

    public void Add(ObjectResult result)
    {
        if (result.Outcome != ObjectOutcome.Failed) Interlocked.Increment(ref _objects);
    }

    public void CountRetry() => Interlocked.Increment(ref _retries);

    /// <summary>Rates since the last sample, smoothed so a progress bar does not jump.</summary>
    public (double BytesPerSecond, double ObjectsPerSecond) SampleRates()
    {
        var now = Environment.TickCount64;
        var seconds = Math.Max(0.001, (now - _lastTicks) / 1000.0);
        var bytes = Interlocked.Read(ref _bytes);
        var objects = Interlocked.Read(ref _objects);
        var bytesRate = (bytes - _lastBytes) / seconds;
        var objectsRate = (objects - _lastObjects) / seconds;
        _bytesRate = Smooth(_bytesRate, bytesRate, floor: 1);
        _objectsRate = Smooth(_objectsRate, objectsRate, floor: 0.001);
        (_lastBytes, _lastObjects, _lastTicks) = (bytes, objects, now);
        return (_bytesRate, _objectsRate);
    }

    /// <summary>Halves toward each new sample; a stalled transfer reads as 0, not as a rate decaying forever.</summary>
    private static double Smooth(double previous, double sample, double floor)
    {
        var smoothed = previous == 0 ? sample : 0.5 * previous + 0.5 * sample;
        return smoothed < floor ? 0 : smoothed;
    }
}
