namespace ObjectMigration.Engine.Storage;

/// <summary>How a store's <see cref="Pacer"/> answers throttling.</summary>
public sealed record PacerSettings
{
    /// <summary>Off: every request goes at once, and only each request's own retry backoff answers a throttle.</summary>
    public bool Enabled { get; init; } = true;
    /// <summary>The spacing a first throttle sets; a decay below it ends pacing.</summary>
    public TimeSpan MinDelay { get; init; } = TimeSpan.FromMilliseconds(10);
    /// <summary>The widest spacing: during a long storm the store still asks about once per this.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>What a success leaves of the spacing (0.5: halved).</summary>
    public double Decay { get; init; } = 0.5;

    public static PacerSettings Default { get; } = new();
    public static PacerSettings Off { get; } = new() { Enabled = false };
}

/// <summary>
/// One delay shared by every request of a store, as rclone's S3 pacer: no delay while the server is content; a throttle
/// (503 SlowDown, 429) sets a spacing between request starts that doubles with each further throttle (up to
/// <see cref="PacerSettings.MaxDelay"/>) and halves with each success until it is gone. So a storm slows all workers of
/// the store together, and the number of requests it sees stays about one per spacing plus the ones already under way,
/// instead of every worker retrying on its own schedule. Requests take their turn one at a time only while a spacing is
/// set, each spaced from the one before by the spacing as it is then: a success that shortens it wakes the waiting turn.
/// </summary>
public sealed class Pacer
{
    private readonly PacerSettings _settings;
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    // One request at a time goes through the spacing; waiters queue here in order.
    private readonly SemaphoreSlim _turn = new(1, 1);
    private long _delayTicks;
    // Timestamps (of _time): the last request that went while paced, the last raise.
    private long _lastSent = long.MinValue;
    private long _raisedAt = long.MinValue;
    private long _throttles;
    private long _raises;
    // Cancelled (and replaced) when the spacing decays: the request whose turn it is stops waiting out the old spacing.
    private CancellationTokenSource _decayed = new();

    public Pacer(PacerSettings? settings = null, TimeProvider? time = null)
    {
        _settings = settings ?? PacerSettings.Default;
        if (_settings.Enabled && (_settings.MinDelay <= TimeSpan.Zero || _settings.MaxDelay < _settings.MinDelay || _settings.Decay is <= 0 or >= 1))
        {
            throw new ArgumentException("PacerSettings need 0 < MinDelay <= MaxDelay and 0 < Decay < 1.", nameof(settings));
        }
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The spacing between request starts now; zero when the store is not paced.</summary>
    public TimeSpan Delay => TimeSpan.FromTicks(Volatile.Read(ref _delayTicks));

    /// <summary>Throttled answers heard, and how many of them widened the spacing.</summary>
    public long Throttles => Interlocked.Read(ref _throttles);

    public long Raises => Interlocked.Read(ref _raises);

    /// <summary>
    /// Waits for this request's turn and returns the moment it goes, to hand back to <see cref="Throttled"/>. Returns at once
    /// (synchronously) while no spacing is set.
    /// </summary>
    public async ValueTask<long> WaitAsync(CancellationToken cancellationToken)
    {
        if (!_settings.Enabled || Volatile.Read(ref _delayTicks) == 0) return _time.GetTimestamp();
        await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (true)
            {
                TimeSpan wait;
                CancellationToken decayed;
                lock (_gate)
                {
                    var now = _time.GetTimestamp();
                    var delay = TimeSpan.FromTicks(_delayTicks);
                    var since = Math.Max(_lastSent, _raisedAt);
                    wait = since == long.MinValue ? TimeSpan.Zero : delay - _time.GetElapsedTime(since, now);
                    if (wait <= TimeSpan.Zero)
                    {
                        _lastSent = now;
                        return now;
                    }
                    decayed = _decayed.Token;
                }
                // A raise meanwhile moves the turn further out, a decay brings it nearer: looked at again either way.
                using var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, decayed);
                try
                {
                    await Task.Delay(wait, _time, wake.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                }
            }
        }
        finally
        {
            _turn.Release();
        }
    }

    /// <summary>
    /// The server throttled a request that went at <paramref name="sentAt"/>. Only an answer to a request sent after the
    /// last raise widens the spacing again: the requests already under way when a storm starts all come back throttled,
    /// and they are one signal, not one each.
    /// </summary>
    public void Throttled(long sentAt)
    {
        if (!_settings.Enabled) return;
        Interlocked.Increment(ref _throttles);
        lock (_gate)
        {
            if (sentAt < _raisedAt) return;
            var delay = _delayTicks == 0 ? _settings.MinDelay.Ticks : Math.Min(_settings.MaxDelay.Ticks, _delayTicks * 2);
            Volatile.Write(ref _delayTicks, delay);
            _raisedAt = _time.GetTimestamp();
            Interlocked.Increment(ref _raises);
        }
    }

    /// <summary>A request succeeded: the spacing decays, and ends once below the minimum.</summary>
    public void Succeeded()
    {
        if (!_settings.Enabled || Volatile.Read(ref _delayTicks) == 0) return;
        CancellationTokenSource decayed;
        lock (_gate)
        {
            if (_delayTicks == 0) return;
            var delay = (long)(_delayTicks * _settings.Decay);
            Volatile.Write(ref _delayTicks, delay < _settings.MinDelay.Ticks ? 0 : delay);
            decayed = _decayed;
            _decayed = new CancellationTokenSource();
        }
        // Not inline: the waiter's continuation runs on the pool, not on this request's thread.
        _ = decayed.CancelAsync();
    }
}
