using System.Diagnostics;
using ObjectMigration.Engine.Scheduling;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// How many transfers one run lets go at once: the gate its workers pass, what they finish (items and their time), and,
/// unless the job's concurrency is fixed, the loop that measures the run in windows and moves the gate to the level
/// <see cref="AdaptiveConcurrency"/> finds.
/// </summary>
internal sealed class RunLevel
{
    private readonly RunContext _run;
    private readonly AdaptiveConcurrency? _adaptive;
    /// <summary>Work items (objects and parts) finished this run: the adaptive level's measure with the bytes moved.</summary>
    private long _completedItems;
    /// <summary>Stopwatch ticks spent on those items: how long one takes, which is how long a new level needs to show.</summary>
    private long _itemTicks;
    private int _highest;

    public RunLevel(RunContext run, int ceiling, bool fixedLevel)
    {
        _run = run;
        _adaptive = fixedLevel ? null : new AdaptiveConcurrency(ceiling);
        Gate = new ConcurrencyGate(_adaptive?.Limit ?? ceiling);
        _highest = Gate.Limit;
    }

    /// <summary>The workers pass it before each transfer; its limit is the level.</summary>
    public ConcurrencyGate Gate { get; }

    public bool Adaptive => _adaptive is not null;

    /// <summary>A worker finished an item (whatever its outcome) that it started at <paramref name="startedTimestamp"/>.</summary>
    public void ItemEnded(long startedTimestamp)
    {
        Interlocked.Add(ref _itemTicks, Stopwatch.GetTimestamp() - startedTimestamp);
        Interlocked.Increment(ref _completedItems);
    }

    /// <summary>
    /// What the run's last notice says of the level, or null when there is nothing to say: every adaptive run that moved
    /// anything says how high it went and the throttling it met or none (a level that stayed low says why); a fixed level
    /// says so only when it was throttled, as then a lower -Concurrency would send fewer.
    /// </summary>
    public string? EndNotice(string ceiling)
    {
        if (Interlocked.Read(ref _completedItems) == 0) return null;
        var pushedBack = _run.Congestion switch
        {
            0 => "no request was retried after throttling or a timeout",
            1 => "1 request was retried after throttling or a timeout",
            var n => $"{n} requests were retried after throttling or a timeout",
        };
        if (_adaptive is { } adaptive)
        {
            var cuts = adaptive.Cuts switch { 0 => "", 1 => ", and the level was cut once for that", var n => $", and the level was cut {n} times for that" };
            return $"Adaptive concurrency: this run went up to {Transfers(_highest)} at once and ended at {Gate.Limit} (of at most {ceiling}); {pushedBack}{cuts}.";
        }
        return _run.Congestion > 0
            ? $"Fixed concurrency: this run kept {Transfers(Gate.Limit)} at once; {pushedBack}. A lower -Concurrency sends fewer at once, or leave out -FixedConcurrency to let the level adapt."
            : null;
    }

    public static string Transfers(int count) => count == 1 ? "1 transfer" : $"{count} transfers";

    /// <summary>Moves the level until <paramref name="ct"/> ends the work; at once when the level is fixed.</summary>
    public Task AdaptAsync(TimeSpan window, CancellationToken ct) => _adaptive is { } adaptive ? AdaptAsync(adaptive, window, ct) : Task.CompletedTask;

    /// <summary>
    /// Measures the run in windows (<see cref="AdaptiveConcurrency.IsWindowComplete"/>: short while climbing, at least
    /// <paramref name="window"/> once held) and moves the level the adaptive scheme finds. The first window starts once
    /// the gate is full and an item has finished (the listing's first page and the first round trips are no level's
    /// throughput); after a change the next one starts once the transfers begun at the old level have had time to finish
    /// (the mean time of one), so a window measures one level.
    /// </summary>
    private async Task AdaptAsync(AdaptiveConcurrency adaptive, TimeSpan window, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var (since, completed, bytes, congestion) = (clock.Elapsed, SucceededItems(), _run.Counters.BytesMoved, _run.Congestion);
        var failed = _run.FailedObjects;
        Gate.TakePeak();
        var lastWasCut = false;
        var warming = true;
        TimeSpan? fullAt = null;
        TimeSpan? settleUntil = null;
        // After a step up: the items to have finished (one per slot since the step) and when to stop waiting for them.
        (long Items, TimeSpan Until)? turnover = null;
        using var ticks = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Max(10, window.TotalMilliseconds / 20)));
        try
        {
            while (await ticks.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                var elapsed = clock.Elapsed - since;
                // A failure is counted before its item ends: for that moment the difference can read one or two below zero.
                var done = Math.Max(0, SucceededItems() - completed);
                var pushedBack = _run.Congestion - congestion;
                // Throttling is acted on at once (as a share of a whole window), but a whole window after a cut: the
                // retries of requests sent before it must not cut again. Otherwise a window needs some finished work to say anything.
                var congested = adaptive.IsCongestedSoFar(done, pushedBack);
                if ((warming || settleUntil is not null) && !(congested && !lastWasCut))
                {
                    if (warming)
                    {
                        if (fullAt is null && Gate.TakePeak() >= Gate.Limit) fullAt = clock.Elapsed;
                        // Large parts take seconds each: their first one is waited for (five windows at most) while the
                        // new connections' handshakes and first round trips pass.
                        var warm = fullAt is { } full && (done > 0 || clock.Elapsed - full >= AdaptiveConcurrency.LongestWindows * window);
                        if (fullAt is not null && !warm) continue;
                        warming = !warm;
                    }
                    else if (clock.Elapsed < settleUntil || (turnover is { } t && completed + done < t.Items && clock.Elapsed < t.Until)) continue;
                    else (settleUntil, turnover) = (null, null);
                    // Warmed up or settled: the window of the level starts now (until then, every tick starts it again).
                    (since, completed, bytes, congestion) = (clock.Elapsed, completed + done, _run.Counters.BytesMoved, congestion + pushedBack);
                    failed = _run.FailedObjects;
                    Gate.TakePeak();
                    continue;
                }
                var ready = congested ? !lastWasCut || elapsed >= window : adaptive.IsWindowComplete(elapsed, done, window);
                if (!ready) continue;
                var moved = _run.Counters.BytesMoved - bytes;
                var failedNow = _run.FailedObjects;
                var previous = Gate.Limit;
                var level = adaptive.Observe(new ThroughputSample(elapsed, done, moved, pushedBack, Gate.TakePeak(), failedNow - failed));
                failed = failedNow;
                // Observe cuts on the whole window's share, which a window that ended short of the last one's items can
                // reach where the check as it went did not: either way the next cut waits a window.
                lastWasCut = AdaptiveConcurrency.IsCongested(done, pushedBack);
                Gate.SetLimit(level);
                _highest = Math.Max(_highest, level);
                (since, completed, bytes, congestion) = (clock.Elapsed, completed + done, bytes + moved, congestion + pushedBack);
                // Up, the new slots' first transfers also open connections (handshakes take round trips across a WAN):
                // the window waits for about two transfers' time and until as many items finished as there are slots
                // (each slot turned over once), or it reads a step as paying less than it does (measured at 100 ms with
                // two transfers' time alone: 128 -> 256 went back to 128 within 1.8 s and held there at about 230
                // objects/s, where a fixed 256 made 300).
                if (level != previous)
                {
                    var cap = AdaptiveConcurrency.LongestWindows * window;
                    settleUntil = clock.Elapsed + (level > previous ? 2 : 1) * MeanItemTime(cap);
                    turnover = level > previous ? (completed + level, clock.Elapsed + cap) : null;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The work ended.
        }
    }

    /// <summary>Items finished, less the objects that failed: a target that refuses fast must not read as throughput.</summary>
    private long SucceededItems() => Interlocked.Read(ref _completedItems) - _run.FailedObjects;

    private TimeSpan MeanItemTime(TimeSpan cap)
    {
        var items = Interlocked.Read(ref _completedItems);
        if (items == 0) return TimeSpan.Zero;
        var mean = TimeSpan.FromSeconds(Interlocked.Read(ref _itemTicks) / (double)Stopwatch.Frequency / items);
        return mean < cap ? mean : cap;
    }
}
