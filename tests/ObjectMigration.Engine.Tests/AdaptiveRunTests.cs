using System.Collections.Concurrent;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;
using Xunit.Abstractions;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// The adaptive level in a real run against s3rver, through the fault proxy: it starts at 16, is what the progress
/// shows, backs off when the target answers SlowDown, and with -FixedConcurrency stays the job's concurrency.
/// </summary>
public sealed class AdaptiveRunTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int ObjectCount = 300;
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-adaptive-" + Guid.NewGuid().ToString("n")[..8]);
    private MigrationEngine _engine = null!;
    private FaultProxy _targetProxy = null!;

    private static readonly Lazy<Task<(string Bucket, Dictionary<string, byte[]> Seeded)>> Source = new(() => TestEndpoints.SeedS3rverSourceAsync("a", ObjectCount, 1000));

    private static readonly RunnerOptions Options = new()
    {
        Retry = new RetryPolicy { MaxAttempts = 8, BaseDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(200) },
        ControlInterval = TimeSpan.FromMilliseconds(50), FlushInterval = TimeSpan.FromMilliseconds(50),
        AdaptWindow = TimeSpan.FromMilliseconds(150),
    };

    public async Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        _targetProxy = await FaultProxy.StartAsync(TestEndpoints.S3rverTarget);
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = TestEndpoints.S3rverSource.Endpoint }, "S3RVER", "S3RVER", pathStyleGiven: true);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = _targetProxy.Endpoint }, "S3RVER", "S3RVER", pathStyleGiven: true);
    }

    public async Task DisposeAsync() => await _targetProxy.DisposeAsync();

    /// <summary>Runs the job while another thread reads its progress as Get-MigrationJobProgress does; returns the levels it saw in order.</summary>
    private async Task<(JobState State, List<int> Levels)> RunWatchingAsync(Guid id, RunnerOptions? options = null)
    {
        var levels = new ConcurrentQueue<int>();
        using var stop = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var level = _engine.Store.GetProgress(id).ActiveConcurrency;
                if (level > 0 && (levels.IsEmpty || levels.Last() != level)) levels.Enqueue(level);
                await Task.Delay(10);
            }
        });
        var state = await _engine.RunJobAsync(id, options ?? Options, CancellationToken.None);
        stop.Cancel();
        await watcher;
        Assert.Equal(0, _engine.Store.GetProgress(id).ActiveConcurrency);
        return (state, levels.ToList());
    }

    /// <summary>A job from the seeded source into a new bucket of the target, at the default ceiling unless given.</summary>
    private async Task<(Guid Id, string Target, Dictionary<string, byte[]> Seeded)> NewJobAsync(int concurrency = TransferOptions.DefaultConcurrency, bool fixedConcurrency = false)
    {
        var (source, seeded) = await Source.Value;
        using var targetClient = TestEndpoints.S3rverTarget.Client();
        var target = await targetClient.NewBucketAsync();
        var id = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target, Concurrency = concurrency, FixedConcurrency = fixedConcurrency,
        }).Id;
        return (id, target, seeded);
    }

    /// <summary>The notice each adaptive run ends with: how high the level went and what throttling it met.</summary>
    private string LevelNotice(Guid id) => Assert.Single(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.MigrationNotice] }),
        l => l.Message.StartsWith("Adaptive concurrency:", StringComparison.Ordinal)).Message;

    private async Task AssertCopiedAsync(string target, Dictionary<string, byte[]> seeded)
    {
        using var client = TestEndpoints.S3rverTarget.Client();
        Assert.Equal(seeded.Count, (await client.KeysAsync(target)).Count);
        foreach (var key in seeded.Keys.Where((_, i) => i % 25 == 0))
        {
            var (content, _) = await client.GetAsync(target, key);
            Assert.True(seeded[key].AsSpan().SequenceEqual(content), key);
        }
    }

    [Fact]
    public async Task The_level_starts_at_sixteen_and_falls_when_the_target_throttles()
    {
        var (id, target, seeded) = await NewJobAsync();
        Assert.Equal(TransferOptions.DefaultConcurrency, _engine.GetJob(id).Concurrency);
        // Once a third of the objects are on the target, every target request for a second answers SlowDown.
        var puts = 0;
        _targetProxy.RequestArrived += r =>
        {
            if (FaultProxy.IsObjectPut(r) && Interlocked.Increment(ref puts) == ObjectCount / 3) _targetProxy.InjectFor(Fault.SlowDown, TimeSpan.FromSeconds(1), _ => true);
        };

        // Windows of a second (a climb's first one at least 0.2 s): the progress, saved every 50 ms, shows the start.
        var (state, levels) = await RunWatchingAsync(id, new RunnerOptions { Retry = Options.Retry, ControlInterval = Options.ControlInterval, FlushInterval = Options.FlushInterval, AdaptWindow = TimeSpan.FromSeconds(1) });

        output.WriteLine($"levels seen: {string.Join(", ", levels)}; SlowDown answers: {_targetProxy.Served(Fault.SlowDown)}");
        Assert.Equal(JobState.Completed, state);
        Assert.True(_targetProxy.Served(Fault.SlowDown) > 0);
        Assert.Equal(AdaptiveConcurrency.DefaultStart, levels[0]);
        // Somewhere after the storm began the level is below what it was before: it backed off.
        Assert.Contains(levels.Zip(levels.Skip(1)), pair => pair.Second < pair.First);
        Assert.All(levels, l => Assert.InRange(l, 1, TransferOptions.DefaultConcurrency));
        // The cut was for throttling (a trial that did not pay also goes down, but is no cut).
        Assert.Matches(@"^Adaptive concurrency: this run went up to \d+ transfers at once and ended at \d+ \(of at most 256\); [1-9]\d* requests? (was|were) retried after throttling or a timeout, and the level was cut (once|([2-9]|[1-9]\d+) times) for that\.$", LevelNotice(id));
        await AssertCopiedAsync(target, seeded);
    }

    [Fact]
    public async Task A_fixed_concurrency_is_the_level_throughout()
    {
        var (id, target, seeded) = await NewJobAsync(concurrency: 12, fixedConcurrency: true);
        Assert.True(_engine.GetJob(id).FixedConcurrency);

        var (state, levels) = await RunWatchingAsync(id);

        Assert.Equal(JobState.Completed, state);
        Assert.Equal([12], levels);
        // A fixed level that met no throttling has nothing to report.
        Assert.DoesNotContain(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.MigrationNotice] }), l => l.Message.Contains("concurrency:", StringComparison.Ordinal));
        await AssertCopiedAsync(target, seeded);
    }

    [Fact]
    public async Task A_target_that_refuses_every_object_at_once_does_not_raise_the_level()
    {
        var (id, target, _) = await NewJobAsync();
        // 400 on every object PUT: failed at once, not retried. Fast failures are no throughput.
        _targetProxy.Inject(Fault.BadRequest, int.MaxValue, FaultProxy.IsObjectPut);

        var (_, levels) = await RunWatchingAsync(id);

        Assert.Equal(ObjectCount, _engine.Store.GetProgress(id).FailedObjects);
        Assert.Equal([AdaptiveConcurrency.DefaultStart], levels);
        Assert.StartsWith($"Adaptive concurrency: this run went up to {AdaptiveConcurrency.DefaultStart} transfers at once and ended at {AdaptiveConcurrency.DefaultStart} ", LevelNotice(id));
        using var targetClient = TestEndpoints.S3rverTarget.Client();
        Assert.Empty(await targetClient.KeysAsync(target));
    }

    [Fact]
    public async Task A_fixed_concurrency_that_is_throttled_says_how_many_requests_were_retried()
    {
        var (id, target, seeded) = await NewJobAsync(concurrency: 12, fixedConcurrency: true);
        // Three object PUTs answer SlowDown once each.
        _targetProxy.Inject(Fault.SlowDown, 3, FaultProxy.IsObjectPut);

        var (state, levels) = await RunWatchingAsync(id);

        Assert.Equal(JobState.Completed, state);
        Assert.Equal([12], levels);
        Assert.Equal(3, _targetProxy.Served(Fault.SlowDown));
        Assert.Equal("Fixed concurrency: this run kept 12 transfers at once; 3 requests were retried after throttling or a timeout. A lower -Concurrency sends fewer at once, or leave out -FixedConcurrency to let the level adapt.",
            Assert.Single(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.MigrationNotice] }), l => l.Message.StartsWith("Fixed concurrency:", StringComparison.Ordinal)).Message);
        await AssertCopiedAsync(target, seeded);
    }

    /// <summary>
    /// Below the ceiling, workers wait at the gate holding the objects they took from the queue. When the batch of such
    /// an object is taken over meanwhile (this runner's lease lapsed), the object is the new holder's: it must not be
    /// copied here once it passes the gate, or both runners copy it.
    /// </summary>
    [Fact]
    public async Task An_object_waiting_at_the_gate_is_not_copied_once_its_batch_was_taken_over()
    {
        // Adaptive under a ceiling of 64: 16 transfer, the other 48 workers wait at the gate with an object each.
        var (id, target, seeded) = await NewJobAsync(concurrency: 64);
        var puts = new ConcurrentQueue<(string Key, DateTime At)>();
        _targetProxy.RequestArrived += r => { if (FaultProxy.IsObjectPut(r)) puts.Enqueue((r.Path.Value!, DateTime.UtcNow)); };
        _targetProxy.Inject(Fault.Hang, int.MaxValue, FaultProxy.IsObjectPut);

        // Long windows: the level stays at 16 while nothing finishes (a climb would let more objects through the gate).
        var options = new RunnerOptions { Retry = Options.Retry, ControlInterval = Options.ControlInterval, FlushInterval = Options.FlushInterval, AdaptWindow = TimeSpan.FromMinutes(1) };
        var run = _engine.RunJobAsync(id, options, CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => puts.Count >= AdaptiveConcurrency.DefaultStart, TimeSpan.FromSeconds(30));
        // Another runner takes every open batch over for five seconds, as if this one's heartbeat had been late.
        var thiefLeaseEnds = DateTime.UtcNow.AddSeconds(5);
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_engine.Store.Location}"))
        {
            connection.Open();
            using var steal = connection.CreateCommand();
            steal.CommandText = "UPDATE batches SET lease_owner = 'thief', lease_until = $until WHERE state = 0";
            // The store's own form of a time ("O", UTC), which it compares as text.
            steal.Parameters.AddWithValue("$until", new DateTimeOffset(thiefLeaseEnds).ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(steal.ExecuteNonQuery() > 0);
        }
        await TestEndpoints.WaitUntilAsync(() => _engine.Store.GetProgress(id).Workers.Single().HeldBatches == 0, TimeSpan.FromSeconds(30));
        var putsBeforeRelease = puts.Count;
        var released = DateTime.UtcNow;
        // Time left for the objects at the gate to show themselves, were they let through: else the test says nothing.
        Assert.True(thiefLeaseEnds - released > TimeSpan.FromSeconds(2), $"the takeover was noticed only {thiefLeaseEnds - released:g} before the thief's lease ends");
        _targetProxy.Release();

        Assert.Equal(JobState.Completed, await run);

        var early = puts.Skip(putsBeforeRelease).Where(p => p.At < thiefLeaseEnds).ToList();
        output.WriteLine($"PUTs hung before the takeover: {putsBeforeRelease}; PUTs between the release ({released:HH:mm:ss.fff}) and the thief's lease end: {early.Count}; all PUTs: {puts.Count}");
        Assert.Empty(early);
        // Each object was sent once: the hung ones finished after the release, the rest after the batches came back.
        Assert.Equal(ObjectCount, puts.Select(p => p.Key).Distinct().Count());
        Assert.Equal(ObjectCount, puts.Count);
        // A run that met no throttling says so too: a level that stayed low is then the link's or the machine's doing.
        Assert.EndsWith("(of at most 64); no request was retried after throttling or a timeout.", LevelNotice(id));
        await AssertCopiedAsync(target, seeded);
    }
}
