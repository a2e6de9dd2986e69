using ObjectMigration.Engine.Storage;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The shared pacer on a clock the test moves: no server, no real waits.</summary>
public sealed class PacerTests
{
    private static readonly TimeSpan Min = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(2);

    private static (Pacer Pacer, ManualClock Clock) NewPacer(PacerSettings? settings = null)
    {
        var clock = new ManualClock();
        return (new Pacer(settings ?? new PacerSettings { MinDelay = Min, MaxDelay = Max }, clock), clock);
    }

    /// <summary>Throttles answers to requests sent after each raise, until the delay is <paramref name="target"/>.</summary>
    private static void RaiseTo(Pacer pacer, ManualClock clock, TimeSpan target)
    {
        while (pacer.Delay < target)
        {
            clock.Advance(TimeSpan.FromMilliseconds(1));
            pacer.Throttled(clock.GetTimestamp());
        }
    }

    [Fact]
    public void Without_throttling_no_request_waits()
    {
        var (pacer, _) = NewPacer();
        for (var i = 0; i < 100; i++) Assert.True(pacer.WaitAsync(CancellationToken.None).IsCompletedSuccessfully);
        pacer.Succeeded();
        Assert.Equal(TimeSpan.Zero, pacer.Delay);
    }

    [Fact]
    public async Task A_throttle_makes_all_workers_take_turns_one_shared_delay_apart()
    {
        var (pacer, clock) = NewPacer();
        var first = await pacer.WaitAsync(CancellationToken.None);
        pacer.Throttled(first);
        Assert.Equal(Min, pacer.Delay);

        // Sixteen workers ask at once: one goes per delay, not sixteen.
        var workers = Enumerable.Range(0, 16).Select(_ => pacer.WaitAsync(CancellationToken.None).AsTask()).ToList();
        Assert.All(workers, w => Assert.False(w.IsCompleted));
        for (var went = 1; went <= workers.Count; went++)
        {
            // The worker whose turn it is waits on the clock before the clock moves.
            await TestEndpoints.WaitUntilAsync(() => clock.PendingTimers == 1, TimeSpan.FromSeconds(5));
            clock.Advance(Min - TimeSpan.FromMilliseconds(1));
            Assert.Equal(went - 1, workers.Count(w => w.IsCompleted));
            clock.Advance(TimeSpan.FromMilliseconds(1));
            var expected = went;
            await TestEndpoints.WaitUntilAsync(() => workers.Count(w => w.IsCompleted) == expected, TimeSpan.FromSeconds(5));
        }
        // Each went at its own moment, one delay after the one before.
        var moments = workers.Select(w => w.Result).Order().ToList();
        Assert.All(moments.Zip(moments.Skip(1)), pair => Assert.Equal(Min, clock.GetElapsedTime(pair.First, pair.Second)));
    }

    [Fact]
    public void Throttled_answers_to_requests_already_under_way_widen_the_delay_once_later_ones_double_it_up_to_the_maximum()
    {
        var (pacer, clock) = NewPacer();
        var underWay = Enumerable.Range(0, 16).Select(_ => pacer.WaitAsync(CancellationToken.None).Result).ToList();
        clock.Advance(TimeSpan.FromMilliseconds(3));
        foreach (var sent in underWay) pacer.Throttled(sent);
        Assert.Equal(Min, pacer.Delay);
        Assert.Equal(16, pacer.Throttles);
        Assert.Equal(1, pacer.Raises);

        var expected = Min;
        for (var i = 0; i < 12; i++)
        {
            clock.Advance(pacer.Delay);
            pacer.Throttled(clock.GetTimestamp());
            expected = expected * 2 > Max ? Max : expected * 2;
            Assert.Equal(expected, pacer.Delay);
        }
        Assert.Equal(Max, pacer.Delay);
    }

    [Fact]
    public void Successes_halve_the_delay_until_pacing_ends()
    {
        var (pacer, clock) = NewPacer();
        RaiseTo(pacer, clock, TimeSpan.FromMilliseconds(80));
        Assert.Equal(TimeSpan.FromMilliseconds(80), pacer.Delay);
        foreach (var ms in new[] { 40, 20, 10, 0 })
        {
            pacer.Succeeded();
            Assert.Equal(TimeSpan.FromMilliseconds(ms), pacer.Delay);
        }
        Assert.True(pacer.WaitAsync(CancellationToken.None).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_delay_that_decays_while_workers_queue_shortens_their_wait()
    {
        var (pacer, clock) = NewPacer();
        RaiseTo(pacer, clock, Max);
        var waiting = pacer.WaitAsync(CancellationToken.None).AsTask();
        await TestEndpoints.WaitUntilAsync(() => clock.PendingTimers == 1, TimeSpan.FromSeconds(5));
        clock.Advance(Max);
        await waiting;
        var next = pacer.WaitAsync(CancellationToken.None).AsTask();
        await TestEndpoints.WaitUntilAsync(() => clock.PendingTimers == 1, TimeSpan.FromSeconds(5));
        // Successes meanwhile: the waiter waits out the shorter spacing, not the one it began with.
        pacer.Succeeded();
        pacer.Succeeded();
        Assert.Equal(Max / 4, pacer.Delay);
        await TestEndpoints.WaitUntilAsync(() => clock.PendingTimers == 1 && clock.NextDue == Max / 4, TimeSpan.FromSeconds(5));
        Assert.False(next.IsCompleted);
        clock.Advance(Max / 4);
        await next.WaitAsync(TimeSpan.FromSeconds(5));
        // Once the spacing is gone, the waiter goes without the clock moving, and so does every later request.
        var third = pacer.WaitAsync(CancellationToken.None).AsTask();
        await TestEndpoints.WaitUntilAsync(() => clock.PendingTimers == 1, TimeSpan.FromSeconds(5));
        for (var i = 0; i < 6; i++) pacer.Succeeded();
        Assert.Equal(TimeSpan.Zero, pacer.Delay);
        await third.WaitAsync(TimeSpan.FromSeconds(5));
        // Queued behind it, the rest now go without waiting.
        Assert.True(pacer.WaitAsync(CancellationToken.None).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_worker_cancelled_while_waiting_gives_up_its_turn()
    {
        var (pacer, clock) = NewPacer();
        RaiseTo(pacer, clock, TimeSpan.FromMilliseconds(80));
        using var cancel = new CancellationTokenSource();
        var cancelled = pacer.WaitAsync(cancel.Token).AsTask();
        var behind = pacer.WaitAsync(CancellationToken.None).AsTask();
        await TestEndpoints.WaitUntilAsync(() => clock.PendingTimers == 1, TimeSpan.FromSeconds(5));
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        await TestEndpoints.WaitUntilAsync(() => clock.PendingTimers == 1, TimeSpan.FromSeconds(5));
        clock.Advance(TimeSpan.FromMilliseconds(80));
        await behind;
    }

    [Fact]
    public void Switched_off_it_never_waits()
    {
        var (pacer, clock) = NewPacer(PacerSettings.Off);
        for (var i = 0; i < 10; i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(1));
            pacer.Throttled(clock.GetTimestamp());
        }
        Assert.Equal(TimeSpan.Zero, pacer.Delay);
        Assert.True(pacer.WaitAsync(CancellationToken.None).IsCompletedSuccessfully);
    }

    [Fact]
    public void Settings_out_of_range_are_refused_naming_the_parameter()
    {
        var e = Assert.Throws<ArgumentException>(() => new Pacer(new PacerSettings { MinDelay = TimeSpan.FromSeconds(3), MaxDelay = TimeSpan.FromSeconds(2) }));
        Assert.Equal("settings", e.ParamName);
        Assert.Throws<ArgumentException>(() => new Pacer(new PacerSettings { Decay = 1 }));
    }
}

/// <summary>A clock that moves only when told: timers fire as <see cref="Advance"/> passes their time.</summary>
internal sealed class ManualClock : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<ManualTimer> _timers = [];
    private long _ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp()
    {
        lock (_gate) return _ticks;
    }

    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero) + TimeSpan.FromTicks(GetTimestamp());

    /// <summary>Timers waiting to fire.</summary>
    public int PendingTimers
    {
        get { lock (_gate) return _timers.Count(t => t.Due is not null); }
    }

    /// <summary>How far the clock must move for the next timer to fire; null when none waits.</summary>
    public TimeSpan? NextDue
    {
        get
        {
            lock (_gate)
            {
                var due = _timers.Where(t => t.Due is not null).Select(t => t.Due!.Value).DefaultIfEmpty(long.MinValue).Max();
                return due == long.MinValue ? null : TimeSpan.FromTicks(due - _ticks);
            }
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        lock (_gate) _timers.Add(timer);
        timer.Change(dueTime, period);
        return timer;
    }

    public void Advance(TimeSpan by)
    {
        List<ManualTimer> due;
        lock (_gate)
        {
            _ticks += by.Ticks;
            due = _timers.Where(t => t.Due <= _ticks).ToList();
            foreach (var t in due) t.Due = null;
        }
        foreach (var t in due) t.Fire();
    }

    private sealed class ManualTimer(ManualClock clock, TimerCallback callback, object? state) : ITimer
    {
        public long? Due { get; set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (clock._gate) Due = dueTime == Timeout.InfiniteTimeSpan ? null : clock._ticks + dueTime.Ticks;
            return true;
        }

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (clock._gate)
            {
                Due = null;
                clock._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
