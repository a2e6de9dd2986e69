namespace ObjectMigration.Engine.Scheduling;

/// <summary>
/// The part size of a large object, from its size and the rate one part moved at so far in the run. A part pays its
/// round trips (the ranged GET's first byte, the UploadPart's answer) once: where one transfer moves fast (a long link
/// without a narrow bottleneck, or a LAN) parts grow until they take <see cref="PartTime"/>, so those round trips are a
/// small share; an object keeps at least <see cref="MinParts"/> parts, so one object still spreads over several
/// transfers and the last of the run ends in a short tail. Behind a narrow link, where each part moves slowly, the
/// job's part size stays. Deterministic: the same rate gives the same size, which the tests rely on.
/// </summary>
public sealed class PartSizing
{
    /// <summary>The time a part should take at the measured rate of one transfer.</summary>
    public static readonly TimeSpan PartTime = TimeSpan.FromSeconds(2);
    /// <summary>Parts an object keeps at least when the rate makes them bigger.</summary>
    public const int MinParts = 8;
    /// <summary>The largest part the rate chooses (the job's -PartSize may be larger).</summary>
    public const long LargestChosen = 256L << 20;
    /// <summary>Parts measured before the rate says anything.</summary>
    public const int MeasuredParts = 4;
    /// <summary>Weight of each new part in the running rate.</summary>
    private const double Weight = 0.125;

    private readonly object _lock = new();
    private int _parts;
    private double _bytesPerSecond;

    /// <summary>The rate one part moved at (bytes/s, running mean of the recent parts); null until <see cref="MeasuredParts"/> were measured.</summary>
    public double? BytesPerSecond
    {
        get { lock (_lock) return _parts >= MeasuredParts ? _bytesPerSecond : null; }
    }

    /// <summary>A part of <paramref name="bytes"/> moved in <paramref name="took"/> (from its request to the target's answer).</summary>
    public void Observe(long bytes, TimeSpan took)
    {
        if (bytes <= 0 || took <= TimeSpan.Zero) return;
        var rate = bytes / took.TotalSeconds;
        lock (_lock)
        {
            // The first parts are averaged evenly, then each new one weighs an eighth: the rate follows the level.
            _parts++;
            _bytesPerSecond = _parts == 1 ? rate : _bytesPerSecond + Math.Max(Weight, 1.0 / _parts) * (rate - _bytesPerSecond);
        }
    }

    /// <summary>The part size for an object of <paramref name="size"/> bytes at the rate measured so far.</summary>
    public long For(long size, long jobPartSize, long minPartSize, long maxPartSize, int maxParts) =>
        For(size, jobPartSize, minPartSize, maxPartSize, maxParts, BytesPerSecond);

    /// <summary>
    /// The job's part size (at least the target's smallest part), raised to what <paramref name="bytesPerSecond"/> moves
    /// in <see cref="PartTime"/> (whole MiB, at most <see cref="LargestChosen"/>, no fewer than <see cref="MinParts"/>
    /// parts), raised to what the target's part-count limit needs, capped at its largest part.
    /// </summary>
    public static long For(long size, long jobPartSize, long minPartSize, long maxPartSize, int maxParts, double? bytesPerSecond)
    {
        const long MiB = 1L << 20;
        var partSize = Math.Max(jobPartSize, minPartSize);
        if (bytesPerSecond is > 0 and var rate)
        {
            var byRate = (long)Math.Min(rate * PartTime.TotalSeconds, LargestChosen);
            var chosen = Math.Min(byRate, size / MinParts) / MiB * MiB;
            partSize = Math.Max(partSize, chosen);
        }
        var needed = (size + maxParts - 1) / maxParts;
        return Math.Min(Math.Max(partSize, needed), maxPartSize);
    }

    /// <summary>
    /// The part size the parts kept from an earlier run were cut at, so a resume goes on with them whatever the rate says
    /// now: a part before the last is a whole part; the last one alone tells it from the size. Null when none fits.
    /// </summary>
    public static long? OfKept(long size, IReadOnlyCollection<(int PartNumber, long Size)> kept, long minPartSize, long maxPartSize, int maxParts)
    {
        if (kept.Count == 0) return null;
        var candidates = new List<long> { kept.Max(p => p.Size) };
        var last = kept.MaxBy(p => p.PartNumber);
        if (last.PartNumber > 1 && (size - last.Size) % (last.PartNumber - 1) == 0) candidates.Add((size - last.Size) / (last.PartNumber - 1));
        foreach (var partSize in candidates)
        {
            if (partSize < minPartSize || partSize > maxPartSize || (size + partSize - 1) / partSize > maxParts) continue;
            if (kept.All(p => p.Size == Math.Min(partSize, size - (long)(p.PartNumber - 1) * partSize))) return partSize;
        }
        return null;
    }
}
