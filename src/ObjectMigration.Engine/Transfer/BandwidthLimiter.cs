namespace ObjectMigration.Engine.Transfer;

/// <summary>A token bucket shared by all workers of a job; one second of burst.</summary>
public sealed class BandwidthLimiter(long bytesPerSecond)
{
    private readonly object _gate = new();
    private double _tokens = bytesPerSecond;
    private long _lastTicks = Environment.TickCount64;

    private TimeSpan Take(long bytes)
    {
        lock (_gate)
        {
            var now = Environment.TickCount64;
            _tokens = Math.Min(bytesPerSecond, _tokens + (now - _lastTicks) * bytesPerSecond / 1000.0);
            _lastTicks = now;
            _tokens -= bytes;
            return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / bytesPerSecond);
        }
    }

    public async ValueTask ConsumeAsync(long bytes, CancellationToken cancellationToken)
    {
        var wait = Take(bytes);
        if (wait > TimeSpan.Zero) await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
    }

    public void Consume(long bytes, CancellationToken cancellationToken)
    {
        var wait = Take(bytes);
        if (wait > TimeSpan.Zero) cancellationToken.WaitHandle.WaitOne(wait);
    }
}
