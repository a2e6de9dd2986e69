using ObjectMigration.Engine.Scheduling;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// The adaptive level against a simulated server: throughput as a function of transfers in flight (a knee where the
/// link or the server is full, a decline past it under contention), with seeded noise, and throttling bursts. Each
/// window is one second of the model; the controller sees only what a run measures.
/// </summary>
public sealed class AdaptiveConcurrencyTests
{
    /// <summary>Objects/s at <paramref name="level"/>: rising linearly to <paramref name="knee"/>, then flat or falling by <paramref name="declinePerLevel"/>.</summary>
    private sealed class SimulatedServer(int knee, double perTransfer, double declinePerLevel = 0, double bytesPerObject = 16 * 1024, int seed = 7)
    {
        private readonly Random _noise = new(seed);
        public Func<int, int, bool> Throttles { get; init; } = (_, _) => false;

        public double Throughput(int level) =>
            perTransfer * Math.Min(level, knee) * Math.Max(0.2, 1 - declinePerLevel * Math.Max(0, level - knee));

        public ThroughputSample Window(int window, int level)
        {
            var objects = Throughput(level) * (1 + (_noise.NextDouble() - 0.5) * 0.06);
            return new ThroughputSample(TimeSpan.FromSeconds(1), (long)objects, (long)(objects * bytesPerObject), Throttles(window, level) ? level : 0, level);
        }

        public double Best(int ceiling) => Enumerable.Range(1, ceiling).Max(Throughput);
    }

    private static List<int> Run(AdaptiveConcurrency controller, SimulatedServer server, int windows)
    {
        var levels = new List<int>();
        for (var w = 0; w < windows; w++)
        {
            levels.Add(controller.Limit);
            controller.Observe(server.Window(w, controller.Limit));
        }
        return levels;
    }

    [Theory]
    [InlineData(40, 0.0)]     // a link that fills at 40 in flight
    [InlineData(40, 0.004)]   // ... and loses 0.4 % per transfer past it (contention)
    [InlineData(200, 0.0)]    // a long round trip: hundreds in flight pay
    [InlineData(3, 0.01)]     // a server that is full at once
    public void Finds_the_knee_by_itself_and_runs_within_ten_percent_of_the_best_fixed_level(int knee, double decline)
    {
        var server = new SimulatedServer(knee, perTransfer: 10, decline);
        var controller = new AdaptiveConcurrency(ceiling: 256);

        var levels = Run(controller, server, windows: 60);

        var best = server.Best(256);
        var settled = levels.Skip(20).Select(server.Throughput).Average();
        Assert.True(settled >= 0.9 * best, $"settled at {settled:N0}/s of a best {best:N0}/s; levels {string.Join(",", levels)}");
        // It does not run far past the knee for nothing.
        Assert.True(levels.Skip(20).Max() <= Math.Max(2 * AdaptiveConcurrency.DefaultStart, 4 * knee), $"levels {string.Join(",", levels)}");
    }

    [Fact]
    public void Reaches_hundreds_in_flight_within_a_few_windows_where_round_trips_bind()
    {
        var server = new SimulatedServer(knee: 250, perTransfer: 10);
        var levels = Run(new AdaptiveConcurrency(ceiling: 256), server, windows: 8);

        // Each doubling pays in proportion, so after the first the level steps by four: 16, 32, 128, 256.
        Assert.Equal([16, 32, 128, 256], levels.Take(4));
        Assert.Equal(256, levels[^1]);
    }

    [Fact]
    public void While_climbing_a_window_ends_once_enough_items_finished_and_once_held_after_the_whole_window()
    {
        var window = TimeSpan.FromSeconds(1);
        var controller = new AdaptiveConcurrency(ceiling: 256);
        Assert.True(controller.Climbing);
        // At 16: 32 items (the floor) and a fifth of the window.
        Assert.False(controller.IsWindowComplete(TimeSpan.FromMilliseconds(150), 100, window));
        Assert.False(controller.IsWindowComplete(TimeSpan.FromMilliseconds(300), 31, window));
        Assert.True(controller.IsWindowComplete(TimeSpan.FromMilliseconds(300), 32, window));
        // Too few items: the whole window with 8 of them, or five windows.
        Assert.False(controller.IsWindowComplete(TimeSpan.FromMilliseconds(999), 31, window));
        Assert.True(controller.IsWindowComplete(window, 8, window));
        Assert.False(controller.IsWindowComplete(TimeSpan.FromSeconds(4), 7, window));
        Assert.True(controller.IsWindowComplete(TimeSpan.FromSeconds(5), 0, window));

        // At 64 a climbing window needs twice the level (16 to 32 paid half as much again: a doubling follows).
        foreach (var completed in new[] { 100, 150 }) controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), completed, 0, 0, controller.Limit));
        Assert.Equal(64, controller.Limit);
        Assert.False(controller.IsWindowComplete(TimeSpan.FromMilliseconds(300), 127, window));
        Assert.True(controller.IsWindowComplete(TimeSpan.FromMilliseconds(300), 128, window));

        // Held (the doubling to 128 did not pay): whole windows again.
        controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), 200, 0, 0, controller.Limit));
        controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), 200, 0, 0, controller.Limit));
        Assert.False(controller.Climbing);
        Assert.Equal(64, controller.Limit);
        Assert.False(controller.IsWindowComplete(TimeSpan.FromMilliseconds(500), 10_000, window));
        Assert.True(controller.IsWindowComplete(window, 10_000, window));
    }

    [Fact]
    public void Where_a_doubling_pays_in_proportion_the_next_step_is_four_times_and_falls_back_to_a_doubling_that_pays()
    {
        // Round trips bind up to 60 in flight: 16 -> 32 doubles objects/s, so the next step is 32 -> 128.
        var controller = new AdaptiveConcurrency(ceiling: 256);
        double Rate(int level) => 10.0 * Math.Min(level, 60);
        void Window() => controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), (long)Rate(controller.Limit), 0, 0, controller.Limit));
        var levels = new List<int>();
        for (var w = 0; w < 5; w++)
        {
            levels.Add(controller.Limit);
            Window();
        }
        // 128 paid (600 vs 320 a second, +34 % a doubling: the next step is a doubling again), 256 did not: held at 128.
        Assert.Equal([16, 32, 128, 256, 128], levels);
        Assert.False(controller.Climbing);

        // A step of four that does not pay is followed by the doubling between: 32 -> 128 loses, 64 gains, and the climb
        // ends there (a doubling would go back to the 128 that lost): held at 64.
        var fallback = new AdaptiveConcurrency(ceiling: 256);
        double Peaked(int level) => level <= 64 ? 10.0 * level : 10.0 * 64 * 0.4;
        var seen = new List<int>();
        for (var w = 0; w < 6; w++)
        {
            seen.Add(fallback.Limit);
            fallback.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), (long)Peaked(fallback.Limit), 0, 0, fallback.Limit));
        }
        Assert.Equal([16, 32, 128, 64, 64, 64], seen);
        Assert.False(fallback.Climbing);
    }

    [Theory]
    [InlineData(50, 250, 2.5)]   // 50 ms: hundreds in flight pay; from 16 to 256 in 2.5 s of the run
    [InlineData(0, 64, 2.0)]     // a LAN, full at 64: there and holding within 2 s
    public void The_climb_takes_a_few_round_trips_per_doubling_not_a_second(int rttMs, int knee, double withinSeconds)
    {
        // A run in time: each item takes a round trip and 2 ms of the servers' time, a level moves level/(item time) items
        // per second up to the knee; the window ends as a run's does, then the level of the next window applies at once.
        var itemSeconds = rttMs / 1000.0 + 0.002;
        var controller = new AdaptiveConcurrency(ceiling: 256);
        var window = TimeSpan.FromSeconds(1);
        var (clock, tick) = (0.0, 0.01);
        var reached = double.NaN;
        while (clock < 10)
        {
            var level = controller.Limit;
            var rate = Math.Min(level, knee) / itemSeconds;
            var elapsed = 0.0;
            do elapsed += tick;
            while (!controller.IsWindowComplete(TimeSpan.FromSeconds(elapsed), (long)(rate * elapsed), window));
            clock += elapsed;
            controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(elapsed), (long)(rate * elapsed), (long)(rate * elapsed) * 16384, 0, level));
            if (double.IsNaN(reached) && !controller.Climbing) reached = clock;
        }
        Assert.True(reached <= withinSeconds, $"climbing ended after {reached:N2} s at {controller.Limit}");
        Assert.InRange(controller.Limit, knee, 2 * knee);
    }

    [Fact]
    public void A_throttling_burst_cuts_the_level_at_once_keeps_requests_down_while_it_lasts_and_is_recovered_from_after()
    {
        // From window 15 to 35 the server answers SlowDown whenever more than 24 transfers are in flight.
        var server = new SimulatedServer(knee: 64, perTransfer: 10) { Throttles = (w, level) => w is >= 15 and < 35 && level > 24 };
        var levels = Run(new AdaptiveConcurrency(ceiling: 256), server, windows: 80);

        Assert.True(levels[14] >= 64, $"before the burst: {string.Join(",", levels)}");
        var burst = levels.Skip(15).Take(20).ToList();
        // Each throttled window cuts the level; only the probes upward hit the limit again.
        var throttledWindows = burst.Count(l => l > 24);
        Assert.True(throttledWindows <= 8, $"{throttledWindows} of 20 windows throttled: {string.Join(",", burst)}");
        // Fewer requests than holding the level from before the burst would have sent: a storm does not multiply them.
        Assert.True(burst.Sum() < 0.6 * levels[14] * burst.Count, string.Join(",", burst));
        // After the burst it finds the knee again.
        var after = levels.Skip(60).Select(server.Throughput).Average();
        Assert.True(after >= 0.9 * server.Best(256), $"after the burst: {string.Join(",", levels.Skip(35))}");
    }

    [Fact]
    public void A_steady_trickle_of_throttled_requests_does_not_hold_the_level_down()
    {
        // One in five hundred requests answered SlowDown, a few in every window near the knee (more than the two a cut
        // needs at least, far below 1 % of what finished): the pacer's business, not a reason to run fewer at once.
        var server = new SimulatedServer(knee: 200, perTransfer: 10) { Throttles = (_, _) => false };
        var controller = new AdaptiveConcurrency(ceiling: 256);
        var owed = 0.0;
        var congestedWindows = 0;
        var levels = new List<int>();
        for (var w = 0; w < 30; w++)
        {
            levels.Add(controller.Limit);
            var s = server.Window(w, controller.Limit);
            owed += s.Completed / 500.0;
            var throttled = (int)owed;
            owed -= throttled;
            if (throttled >= 2) congestedWindows++;
            controller.Observe(s with { Congestion = throttled });
        }
        Assert.True(levels.Skip(10).Select(server.Throughput).Average() >= 0.9 * server.Best(256), string.Join(",", levels));
        Assert.True(congestedWindows >= 10, $"only {congestedWindows} windows had two or more throttled requests");
    }

    [Fact]
    public void Before_a_window_ends_throttling_is_judged_against_a_whole_window_not_the_few_items_finished_yet()
    {
        var controller = new AdaptiveConcurrency(ceiling: 256);
        // Before any window there is nothing else to judge against.
        Assert.True(controller.IsCongestedSoFar(completed: 20, congestion: 2));
        controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), 1000, 1000 * 16384, 0, controller.Limit));
        // Two retries among the first 20 items of a window that holds about 1,000: a trickle, no cut yet.
        Assert.False(controller.IsCongestedSoFar(completed: 20, congestion: 2));
        // A share of a whole window cuts before it ends.
        Assert.True(controller.IsCongestedSoFar(completed: 20, congestion: 12));
        // Past a whole window's items, the share is of what finished.
        Assert.True(controller.IsCongestedSoFar(completed: 1500, congestion: 16));
        Assert.False(controller.IsCongestedSoFar(completed: 1500, congestion: 14));
    }

    [Fact]
    public void A_trickle_of_throttled_requests_checked_as_the_runner_does_many_times_a_window_does_not_cut_the_level()
    {
        // The runner asks after every twentieth of a window whether to cut at once, then hands the whole window over.
        // One request in 500 is throttled, at random: early in a window two of them are a large share of the few
        // items finished, which must not cut (the whole window's share is 0.2 %).
        var server = new SimulatedServer(knee: 200, perTransfer: 10);
        var controller = new AdaptiveConcurrency(ceiling: 256);
        var random = new Random(11);
        var cuts = 0;
        var levels = new List<int>();
        for (var w = 0; w < 40; w++)
        {
            levels.Add(controller.Limit);
            var window = server.Window(w, controller.Limit);
            var (done, throttled) = (0L, 0);
            var cut = false;
            for (var tick = 1; tick <= 20 && !cut; tick++)
            {
                for (var end = window.Completed * tick / 20; done < end; done++) if (random.Next(500) == 0) throttled++;
                if (tick < 20 && controller.IsCongestedSoFar(done, throttled))
                {
                    controller.Observe(new ThroughputSample(window.Elapsed * tick / 20, done, done * 16384, throttled, controller.Limit));
                    (cut, cuts) = (true, cuts + 1);
                }
            }
            if (!cut) controller.Observe(window with { Congestion = throttled });
        }
        // Cuts made as the window went and at its end (the whole window's share).
        Assert.True(controller.Cuts <= 1, $"{controller.Cuts} cuts, {cuts} of them before a window ended; levels {string.Join(",", levels)}");
        Assert.True(levels.Skip(10).Select(server.Throughput).Average() >= 0.9 * server.Best(256), string.Join(",", levels));
    }

    [Fact]
    public void Windows_in_which_objects_only_failed_leave_the_level_alone_and_a_cut_at_one_is_no_cut()
    {
        var controller = new AdaptiveConcurrency(ceiling: 256);
        for (var w = 0; w < 20; w++) controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), 0, 1_000_000 * (w + 1), 0, controller.Limit, Failed: 50));
        Assert.Equal(AdaptiveConcurrency.DefaultStart, controller.Limit);

        var atOne = new AdaptiveConcurrency(ceiling: 256, start: 1);
        atOne.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), 100, 100 * 16384, 10, 1));
        Assert.Equal((1, 0), (atOne.Limit, atOne.Cuts));
    }

    [Fact]
    public void Windows_with_fewer_transfers_than_slots_leave_the_level_alone()
    {
        var controller = new AdaptiveConcurrency(ceiling: 256);
        for (var w = 0; w < 10; w++) controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), 30, 30 * 1024, 0, PeakInFlight: 3));
        Assert.Equal(AdaptiveConcurrency.DefaultStart, controller.Limit);
    }

    [Fact]
    public void Large_objects_bound_by_bandwidth_keep_a_small_level()
    {
        // 8 MiB parts through a link that is full with 4 in flight: bytes/s decide, not objects/s.
        var server = new SimulatedServer(knee: 4, perTransfer: 0.75, declinePerLevel: 0.002, bytesPerObject: 8 << 20);
        var levels = Run(new AdaptiveConcurrency(ceiling: 256), server, windows: 40);

        Assert.True(levels.Skip(10).Max() <= 16, string.Join(",", levels));
        Assert.True(levels.Skip(10).Select(server.Throughput).Average() >= 0.9 * server.Best(256));
    }

    [Fact]
    public void Small_objects_across_a_long_round_trip_climb_though_few_finish_per_window()
    {
        // 300 ms away each small object takes about 0.9 s (GET and PUT, a few round trips), so at 16 in flight a window
        // holds fewer items than the climb's count: they are few but small, bound by round trips, and doubling pays.
        var controller = new AdaptiveConcurrency(ceiling: 256);
        var levels = new List<int>();
        var noise = new Random(5);
        for (var w = 0; w < 30; w++)
        {
            var level = controller.Limit;
            levels.Add(level);
            var objects = Math.Min(level, 200) / 0.9 * (1 + (noise.NextDouble() - 0.5) * 0.06);
            controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), (long)objects, (long)(objects * 16 * 1024), 0, level));
        }
        Assert.True(levels.Take(15).Max() >= 128, string.Join(",", levels));
    }

    [Fact]
    public void Large_parts_where_more_in_flight_only_loads_the_servers_are_not_tried_higher_and_the_level_probes_down()
    {
        // As measured on loopback with 8 MiB parts (the gateways on the client's cores): about 7 parts a second finish at
        // any level, and each part in flight past 4 costs 0.7 % of the rate (4 was 10 % faster than 16).
        var controller = new AdaptiveConcurrency(ceiling: 256);
        var levels = new List<int>();
        double Rate(int level) => 60e6 * (1 - 0.007 * Math.Max(0, level - 4));
        var noise = new Random(3);
        for (var w = 0; w < 40; w++)
        {
            var level = controller.Limit;
            levels.Add(level);
            var bytes = Rate(level) * (1 + (noise.NextDouble() - 0.5) * 0.04);
            controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), (long)(bytes / (8 << 20)), (long)bytes, 0, level));
        }
        // No doubling (before, the first window went to 32, and that trial cost the run 10-20 % against a fixed 16): a
        // probe a quarter up at most, then down.
        Assert.True(levels.Max() <= AdaptiveConcurrency.DefaultStart * 5 / 4, string.Join(",", levels));
        Assert.True(levels.Skip(20).Max() < AdaptiveConcurrency.DefaultStart, string.Join(",", levels));
    }

    [Theory]
    [InlineData(8, 16, 0)]      // a link that 8 parts fill (200 Mbit/s at 100 ms): the start is enough, the transients are no gain
    [InlineData(100, 128, 12)]  // one part moves at a window per round trip, the link takes 100 of them: it climbs all the same
    public void Large_parts_whose_new_connections_fill_buffers_at_first_climb_only_on_a_real_gain(int knee, int atLeast, int reachedBy)
    {
        // A few parts finish per window, so bytes/s decide; the first window at a higher level reads 25 % more than the
        // link carries (new connections filling their socket buffers, a busy machine), the next ones the link's rate.
        var controller = new AdaptiveConcurrency(ceiling: 256);
        var levels = new List<int>();
        var (windowsAtLevel, last) = (0, 0);
        for (var w = 0; w < 40; w++)
        {
            var level = controller.Limit;
            levels.Add(level);
            windowsAtLevel = level > last ? 0 : windowsAtLevel + 1;
            last = level;
            var bytesPerSecond = 25e6 / knee * Math.Min(level, knee) * (windowsAtLevel == 0 && w > 0 ? 1.25 : 1);
            controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), 3, (long)bytesPerSecond, 0, level));
        }
        // Within 10 % of the link from window 10, without running far past what fills it once settled. Where 16 is
        // short of the link the climb starts after a probe down lost and a probe up paid in proportion (few large parts
        // a window: no doubling is tried on the first ones), so the link is reached at window 12 instead of 3: the
        // price of not trying 32 with large parts where 16 fill the link (on loopback that trial cost 10-20 % of the run).
        Assert.True(levels.Skip(10).Average(l => Math.Min(l, knee)) >= 0.9 * knee, string.Join(",", levels));
        Assert.InRange(levels.FindIndex(l => l >= knee), 0, reachedBy);
        Assert.True(levels.Skip(20).Max() <= Math.Max(16, 2 * knee), string.Join(",", levels));
        Assert.True(levels.Max() >= atLeast, string.Join(",", levels));
    }

    [Fact]
    public void Large_parts_that_finish_in_waves_do_not_read_as_a_gain()
    {
        // A link that 8 parts fill: the parts in flight share it and finish together, so a window holds no part or a whole
        // wave (at 16 in flight one every 4 windows), while bytes/s stay the link's.
        var controller = new AdaptiveConcurrency(ceiling: 256);
        var levels = new List<int>();
        for (var w = 0; w < 60; w++)
        {
            var level = controller.Limit;
            levels.Add(level);
            var windowsPerWave = Math.Max(1, level / 4);
            var completed = w % windowsPerWave == windowsPerWave - 1 ? level : 0;
            controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), completed, 25_000_000, 0, level));
        }
        // Few parts finish per window: no doubling is tried, only a probe a quarter up now and then (before, the first
        // window went to 32 and back).
        Assert.Equal(AdaptiveConcurrency.DefaultStart, levels[1]);
        Assert.True(levels.Max() <= 20, string.Join(",", levels));
    }

    [Fact]
    public void On_a_busy_machine_noisy_windows_do_not_walk_the_level_down_past_half_the_climb()
    {
        // Full at 64 and flat past it, each window 25 % above or below at random (measured at 0 ms with a load average of 20).
        var noise = new Random(11);
        var controller = new AdaptiveConcurrency(ceiling: 256);
        var levels = new List<int>();
        for (var w = 0; w < 120; w++)
        {
            levels.Add(controller.Limit);
            var objects = 4.5 * Math.Min(controller.Limit, 64) * (1 + (noise.NextDouble() - 0.5) * 0.5);
            controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), (long)objects, (long)objects * 16384, 0, controller.Limit));
        }
        // The climb passes 64 (each doubling below it doubles throughput, more than any noise hides), so the floor is 32 at least.
        Assert.True(levels.Skip(10).Min() >= 32, string.Join(",", levels));
    }

    [Fact]
    public void Never_leaves_one_to_the_ceiling()
    {
        var controller = new AdaptiveConcurrency(ceiling: 5, start: 8);
        Assert.Equal(5, controller.Limit);
        for (var w = 0; w < 30; w++)
        {
            controller.Observe(new ThroughputSample(TimeSpan.FromSeconds(1), 100, 100, Congestion: 5, PeakInFlight: controller.Limit));
            Assert.InRange(controller.Limit, 1, 5);
        }
        Assert.Equal(1, controller.Limit);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveConcurrency(ceiling: 0));
    }
}

/// <summary>The gate that holds workers to the level: it can be lowered and raised while in use, and a waiter can be cancelled.</summary>
public sealed class ConcurrencyGateTests
{
    [Fact]
    public async Task Lowering_the_limit_takes_effect_as_transfers_finish_and_raising_it_lets_waiters_in_at_once()
    {
        var gate = new ConcurrencyGate(3);
        for (var i = 0; i < 3; i++) await gate.EnterAsync(CancellationToken.None);
        gate.SetLimit(1);
        var waiter = gate.EnterAsync(CancellationToken.None);
        gate.Exit();
        gate.Exit();
        // Two finished, one still in flight: at the new limit of one, the waiter still waits.
        Assert.False(waiter.IsCompleted);
        gate.Exit();
        await waiter;
        Assert.Equal(3, gate.TakePeak());
        Assert.Equal(1, gate.TakePeak());

        var more = new[] { gate.EnterAsync(CancellationToken.None), gate.EnterAsync(CancellationToken.None) };
        Assert.DoesNotContain(more, t => t.IsCompleted);
        gate.SetLimit(3);
        await Task.WhenAll(more);
        Assert.Equal(3, gate.TakePeak());
    }

    [Fact]
    public async Task Priority_waiters_go_first()
    {
        var gate = new ConcurrencyGate(1);
        await gate.EnterAsync(CancellationToken.None);
        var whole = gate.EnterAsync(CancellationToken.None);
        var part = gate.EnterAsync(CancellationToken.None, priority: true);
        gate.Exit();
        await part;
        Assert.False(whole.IsCompleted);
        gate.Exit();
        await whole;
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_and_takes_no_slot()
    {
        var gate = new ConcurrencyGate(1);
        await gate.EnterAsync(CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var waiter = gate.EnterAsync(cancel.Token);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter);
        gate.Exit();
        // The slot the cancelled waiter would have taken is free.
        await gate.EnterAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
    }
}
