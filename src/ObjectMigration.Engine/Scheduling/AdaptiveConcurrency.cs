namespace ObjectMigration.Engine.Scheduling;

/// <summary>One window of a run's work at one concurrency level: what finished, and whether the servers pushed back.</summary>
/// <param name="Completed">Objects and parts finished in the window.</param>
/// <param name="Bytes">Bytes moved in the window.</param>
/// <param name="Congestion">Retries for throttling (503 SlowDown, 429) and timeouts in the window.</param>
/// <param name="PeakInFlight">The most transfers in flight at once: below the limit, the run had less work than slots.</param>
/// <param name="Failed">Objects that failed in the window (not counted in <paramref name="Completed"/>).</param>
public readonly record struct ThroughputSample(TimeSpan Elapsed, long Completed, long Bytes, int Congestion, int PeakInFlight, long Failed = 0)
{
    public double CompletedPerSecond => Completed / Math.Max(Elapsed.TotalSeconds, 1e-3);
    public double BytesPerSecond => Bytes / Math.Max(Elapsed.TotalSeconds, 1e-3);
}

/// <summary>
/// Finds how many transfers to keep in flight, between 1 and the job's -Concurrency. Across a WAN small objects are bound
/// by round trips, so throughput rises with the level until the link, the servers or the client's CPU are full; past
/// that knee more transfers only add load. The level doubles while a doubling raises throughput by
/// <see cref="ClimbGain"/> (measured, not assumed: objects/s or bytes/s, whichever the workload is bound by), and
/// quadruples after a doubling that paid nearly in proportion (<see cref="FastClimbGain"/>); once one
/// does not, it goes back and holds, probing a quarter up and a fifth down now and then, keeping a step only when it
/// pays. Large items (a MiB and more, few a window: bound by bandwidth) skip the first climb and probe down first; a
/// probe up that pays starts the climb then. Throttling or timeouts (more than a stray one) cut it to <see cref="Backoff"/> of itself at once (multiplicative decrease, as TCP and
/// rclone's pacer do). Deterministic: fed the same samples it takes the same steps, which the tests rely on.
/// </summary>
public sealed class AdaptiveConcurrency
{
    /// <summary>A doubling is kept when throughput rises by at least this share.</summary>
    public const double ClimbGain = 0.05;
    /// <summary>
    /// A doubling that raised throughput by this share or more (nearly in proportion: round trips bind, far below the
    /// knee) is followed by a step of four times instead of two, falling back to a doubling if that step does not pay.
    /// Measured at 100 ms: each climb step costs a window and a settle (about a second), and the climb from 16 to 256
    /// was most of what the default lost to the best fixed level (0.85 of it).
    /// </summary>
    public const double FastClimbGain = 0.75;
    /// <summary>
    /// A step up (a doubling or a probe) is kept at this gain instead when fewer than <see cref="ClimbWindowItems"/> items,
    /// or twice the level, finished in its window (large parts): then bytes/s alone decide, and a new level's connections
    /// fill their socket buffers at first, which reads as a gain that is not one (measured at 100 ms behind 200 Mbit/s,
    /// load average 20: +12 % from 16 to 32 over a link already full).
    /// </summary>
    public const double GainFewItems = 0.15;
    /// <summary>A quarter more is kept when throughput rises by at least this share.</summary>
    public const double ProbeGain = 0.05;
    /// <summary>
    /// A fifth less is kept when throughput falls by less than this share: the same work with fewer requests in flight.
    /// Small, as a run's windows are noisy (measured: at 4 % a run at 50 ms drifted from 128 down to 52, at 0.72 of the
    /// best fixed level); too few in flight costs more than too many.
    /// </summary>
    public const double ShrinkLoss = 0.01;
    public const double Backoff = 0.7;
    /// <summary>Throttled or timed-out requests (two at least) as a share of what finished that make a window congested: a stray one is the pacer's business.</summary>
    public const double CongestedShare = 0.01;
    /// <summary>Windows held at a level before the next probe.</summary>
    public const int HoldWindows = 3;
    /// <summary>Where a run starts: the fixed default before the level adapted, so a run on a LAN is never slower than then.</summary>
    public const int DefaultStart = 16;
    /// <summary>
    /// While climbing, a window ends once this many items finished (or twice the level, if more) and a fifth of the
    /// window passed: enough to tell a doubling's gain, and a climb from 16 to 256 at 50 ms takes about 4 s instead
    /// of 5 to 6 (measured: those seconds at a low level were most of what the default lost to the best fixed level).
    /// </summary>
    public const int ClimbWindowItems = 32;
    /// <summary>The shortest window while climbing, as a share of the full one.</summary>
    public const double ClimbWindowShare = 0.2;
    /// <summary>Items a window needs before it says anything, unless it has run <see cref="LongestWindows"/> windows.</summary>
    public const int WindowItems = 8;
    public const int LongestWindows = 5;

    private enum Mode { Climb, Hold }

    private Mode _mode = Mode.Climb;
    /// <summary>The level a trial started from and its throughput there; null when no trial is running.</summary>
    private (int Level, double Completed, double Bytes)? _trial;
    private (double Completed, double Bytes)? _baseline;
    private int _held;
    private bool _probeDownNext;
    private int _acceptedProbes;
    /// <summary>
    /// Probes down stop at half the level a climb ended at: on a busy machine one window's throughput varies by 20 % and
    /// more, and probes judged on single windows drifted from 64 down to 26 at 0 ms (0.82 of the best fixed level). A cut
    /// for throttling lowers it with the level.
    /// </summary>
    private int _floor = 1;
    /// <summary>A step up judged on bytes/s alone paid once: it is kept only if the next window says so too.</summary>
    private bool _confirming;
    /// <summary>What the last doubling of the climb gained: near proportional, the next step is larger.</summary>
    private double _lastClimbGain;
    /// <summary>Where a step of four went past the knee: the rest of the run climbs by doublings, and holds below it.</summary>
    private int _failedFastLevel = int.MaxValue;
    /// <summary>
    /// A step up paid (a doubling, or probes up), so the climb's doublings go on even where few large items finish per
    /// window; the climb a run starts with skips them for such items, see <see cref="Observe"/>.
    /// </summary>
    private bool _climbEarned;
    /// <summary>Items the last window that met no throttling held: what a window's share of throttling is judged against before it ends.</summary>
    private long _lastWindowItems;

    public AdaptiveConcurrency(int ceiling, int start = DefaultStart)
    {
        if (ceiling < 1) throw new ArgumentOutOfRangeException(nameof(ceiling), ceiling, "The ceiling must be at least 1.");
        Ceiling = ceiling;
        Limit = Math.Clamp(start, 1, ceiling);
    }

    public int Ceiling { get; }
    /// <summary>The level to run at now.</summary>
    public int Limit { get; private set; }

    /// <summary>How many times throttling or timeouts cut the level.</summary>
    public int Cuts { get; private set; }

    /// <summary>Doubling while each doubling pays (the start unless the items are few and large, or after probes up paid).</summary>
    public bool Climbing => _mode == Mode.Climb;

    /// <summary>
    /// Whether a window of <paramref name="elapsed"/> in which <paramref name="completed"/> items finished is long enough
    /// to measure the level: while climbing, once it holds enough items (<see cref="ClimbWindowItems"/> or twice the
    /// level) and a fifth of <paramref name="window"/>; otherwise after <paramref name="window"/> with
    /// <see cref="WindowItems"/> items, or after <see cref="LongestWindows"/> windows with fewer (large parts).
    /// </summary>
    public bool IsWindowComplete(TimeSpan elapsed, long completed, TimeSpan window)
    {
        if (Climbing && elapsed >= window * ClimbWindowShare && completed >= Math.Max(ClimbWindowItems, 2L * Limit)) return true;
        return elapsed >= window && (completed >= WindowItems || elapsed >= window * LongestWindows);
    }

    /// <summary>Takes one window measured at <see cref="Limit"/>; returns the level for the next.</summary>
    public int Observe(ThroughputSample sample)
    {
        if (IsCongested(sample.Completed, sample.Congestion))
        {
            // The servers push back: fewer at once now, and the throughput measured before says nothing about this moment.
            var before = Limit;
            Limit = Math.Max(1, (int)(Limit * Backoff));
            if (Limit < before) Cuts++;
            _floor = Math.Min(_floor, Math.Max(1, Limit / 2));
            _mode = Mode.Hold;
            // What was learned before says nothing of the servers now: the next probe goes up, and a later climb may
            // step by four again.
            (_trial, _baseline, _held, _acceptedProbes, _confirming, _lastClimbGain) = (null, null, 0, 0, false, 0);
            (_probeDownNext, _failedFastLevel, _climbEarned) = (false, int.MaxValue, false);
            return Limit;
        }
        _lastWindowItems = sample.Completed;
        // Fewer transfers than slots (listing behind, the last objects): the window says nothing about the level. Nor
        // does one where objects failed and none finished: the bytes of failed attempts are no throughput.
        if (sample.PeakInFlight < Limit || (sample.Completed == 0 && sample.Failed > 0)) return Limit;

        var rate = (sample.CompletedPerSecond, sample.BytesPerSecond);
        if (_trial is { } trial)
        {
            var bytes = Relative(trial.Bytes, rate.BytesPerSecond);
            // Items/s tell only where each slot finished two items at least: large parts end in waves (the transfers in
            // flight share the link and finish together), and a window that holds a wave reads as a gain of many times.
            var completed = ItemsTell(sample) ? Relative(trial.Completed, rate.CompletedPerSecond) : bytes;
            // Up: kept when what the workload is bound by (objects/s or bytes/s) rose enough. Down: when neither fell much.
            var kept = Limit > trial.Level
                ? Math.Max(completed, bytes) >= (!ItemsTell(sample) ? GainFewItems : _mode == Mode.Climb ? ClimbGain : ProbeGain)
                : Math.Min(completed, bytes) > -ShrinkLoss;
            var wentUp = Limit > trial.Level;
            // Bytes/s of a few large parts vary by more than a step's gain on a busy machine (measured: 16 went to 64 at
            // 100 ms behind a full link, load average 27): such a gain must show in two windows in a row.
            if (kept && wentUp && !ItemsTell(sample) && !_confirming)
            {
                _confirming = true;
                return Limit;
            }
            _confirming = false;
            _trial = null;
            // A climb's step of four that did not pay: try the doubling between before holding.
            if (!kept && _mode == Mode.Climb && Limit > 2 * trial.Level)
            {
                (_lastClimbGain, _failedFastLevel) = (0, Limit);
                _trial = trial;
                Limit = 2 * trial.Level;
                return Limit;
            }
            // Per doubling: a step of four that tripled throughput gained 100 % a doubling, and may take four again.
            if (_mode == Mode.Climb) _lastClimbGain = kept && wentUp ? Math.Pow(1 + Math.Max(completed, bytes), 1 / Math.Log2((double)Limit / trial.Level)) - 1 : 0;
            // Up and kept: up again next (twice in a row, it climbs again). Up and not kept: down next. Down: up next.
            _probeDownNext = wentUp && !kept;
            if (kept)
            {
                _baseline = rate;
                // A step up that paid shows that higher pays: the climb goes on (or starts again) even where few large
                // items finish per window. A probe starts one after two in a row paid; with few large items (whose
                // first climb was skipped) also at once when it paid nearly in proportion, as where each stream is
                // slow (a lossy long link) and more streams fill the link.
                if (wentUp && _mode == Mode.Climb) _climbEarned = true;
                var proportional = !ItemsTell(sample) && LargeItems(sample) && Math.Max(completed, bytes) >= FastClimbGain * ((double)Limit / trial.Level - 1);
                if (wentUp && _mode == Mode.Hold && (++_acceptedProbes >= 2 || proportional)) (_mode, _climbEarned) = (Mode.Climb, true);
            }
            else
            {
                Limit = trial.Level;
                _baseline = (trial.Completed, trial.Bytes);
                if (_mode == Mode.Climb) _floor = Math.Max(1, Limit / 2);
                (_mode, _climbEarned) = (Mode.Hold, false);
            }
            if (wentUp && !kept) _acceptedProbes = 0;
            _held = 0;
            if (_mode == Mode.Hold) return Limit;
        }
        else
        {
            // Held: the level's throughput follows what the servers give now.
            _baseline = _baseline is { } b ? (Blend(b.Completed, rate.CompletedPerSecond), Blend(b.Bytes, rate.BytesPerSecond)) : rate;
        }
        var from = _baseline!.Value;
        if (_mode == Mode.Climb)
        {
            // At the ceiling, or a doubling would reach the level a step of four already lost at: the climb is over. So
            // it is where few large items (bound by bandwidth, not round trips: small objects across a long round trip
            // also finish few a window, and climb) finish per window and no probe up has paid yet: there the start keeps enough
            // in flight for most links (16 streams of up to 60 MB/s each at 100 ms), bytes/s alone judge a doubling,
            // and its trial takes seconds at a level that rarely pays (measured on loopback with 8 MiB parts: trying
            // 32 cost 10-20 % of the run against a fixed 16). Probes a quarter up still find a higher level that pays;
            // the first probe goes down, which costs the least to try with such items.
            var fewItems = !ItemsTell(sample) && LargeItems(sample) && !_climbEarned;
            if (Limit >= Ceiling || 2 * Limit >= _failedFastLevel || fewItems)
            {
                if (fewItems) _probeDownNext = true;
                _floor = Math.Max(1, Limit / 2);
                (_mode, _lastClimbGain, _climbEarned) = (Mode.Hold, 0, false);
                return Limit;
            }
            _trial = (Limit, from.Completed, from.Bytes);
            Limit = Math.Min(Ceiling, Limit * (_lastClimbGain >= FastClimbGain && _failedFastLevel == int.MaxValue ? 4 : 2));
            return Limit;
        }
        if (++_held < HoldWindows) return Limit;
        _held = 0;
        var next = _probeDownNext ? Math.Max(Math.Min(_floor, Limit), Limit - Math.Max(1, Limit / 5)) : Math.Min(Ceiling, Limit + Math.Max(1, Limit / 4));
        if (next == Limit)
        {
            _probeDownNext = !_probeDownNext;
            return Limit;
        }
        _trial = (Limit, from.Completed, from.Bytes);
        Limit = next;
        return Limit;
    }

    /// <summary>Items of this size or more (a window's mean) take their time moving bytes rather than in round trips.</summary>
    public const long LargeItemBytes = 1L << 20;

    private static bool LargeItems(ThroughputSample sample) => sample.Bytes >= LargeItemBytes * Math.Max(1, sample.Completed);

    private bool ItemsTell(ThroughputSample sample) => sample.Completed >= Math.Max(ClimbWindowItems, 2L * Limit);

    /// <summary>
    /// Whether the throttling seen so far in a window that has not ended calls for a cut now. The share is taken of a
    /// whole window's items (the last one's) when fewer have finished yet: otherwise two stray retries early in a window
    /// read as a large share of the few items finished, and a trickle of one in 500 would cut about one window in 16.
    /// Throttling that is a share of a whole window still cuts at once.
    /// </summary>
    public bool IsCongestedSoFar(long completed, int congestion) => IsCongested(Math.Max(completed, _lastWindowItems), congestion);

    /// <summary>Whether a window with <paramref name="congestion"/> throttled or timed-out retries beside <paramref name="completed"/> finished items calls for a cut.</summary>
    public static bool IsCongested(long completed, int congestion) => congestion >= Math.Max(2, CongestedShare * (completed + congestion));

    private static double Blend(double old, double now) => 0.5 * old + 0.5 * now;

    private static double Relative(double before, double after) => before <= 0 ? (after > 0 ? 1 : 0) : (after - before) / before;
}
