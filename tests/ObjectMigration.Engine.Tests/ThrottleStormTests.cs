using System.Diagnostics;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Storage;
using ObjectMigration.Engine.Transfer;
using Xunit;
using Xunit.Abstractions;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// A 503 storm on the target while sixteen workers copy (a fixed level: the pacer alone is under test): with the store's shared pacer the requests the storm sees stay
/// about one per spacing plus those already under way, and the job goes on to complete once it passes; without it, each
/// worker retries on its own schedule and the requests multiply.
/// </summary>
public sealed class ThrottleStormTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Workers = 16;
    private const int ObjectCount = 240;
    private static readonly TimeSpan Storm = TimeSpan.FromSeconds(2);

    /// <summary>Each request's own backoff, as a job has it but quicker: six attempts, 100 ms doubling up to 2 s, full jitter.</summary>
    private static readonly RetryPolicy Retry = new() { MaxAttempts = 6, BaseDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(2) };

    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-storm-" + Guid.NewGuid().ToString("n")[..8]);
    private MigrationEngine _engine = null!;
    private FaultProxy _targetProxy = null!;

    private static readonly Lazy<Task<(string Bucket, Dictionary<string, byte[]> Seeded)>> Source = new(() => TestEndpoints.SeedS3rverSourceAsync("o", ObjectCount, 2000));

    public async Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        _targetProxy = await FaultProxy.StartAsync(TestEndpoints.S3rverTarget);
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = TestEndpoints.S3rverSource.Endpoint }, "S3RVER", "S3RVER", pathStyleGiven: true);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = _targetProxy.Endpoint }, "S3RVER", "S3RVER", pathStyleGiven: true);
    }

    public async Task DisposeAsync() => await _targetProxy.DisposeAsync();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_503_storm_slows_all_workers_together_and_the_job_recovers(bool paced)
    {
        var (source, seeded) = await Source.Value;
        using var targetClient = TestEndpoints.S3rverTarget.Client();
        var target = await targetClient.NewBucketAsync();
        var id = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target, Concurrency = Workers, FixedConcurrency = true,
        }).Id;

        // The storm starts once the copy is in full swing: every target request for two seconds gets 503 SlowDown.
        var clock = Stopwatch.StartNew();
        var puts = new List<TimeSpan>();
        TimeSpan? stormStart = null;
        _targetProxy.RequestArrived += r =>
        {
            if (!FaultProxy.IsObjectPut(r)) return;
            lock (puts)
            {
                puts.Add(clock.Elapsed);
                if (puts.Count != 3 * Workers) return;
                stormStart = clock.Elapsed;
            }
            _targetProxy.InjectFor(Fault.SlowDown, Storm, _ => true);
        };
        var options = new RunnerOptions
        {
            Retry = Retry, Pacing = paced ? PacerSettings.Default : PacerSettings.Off,
            ControlInterval = TimeSpan.FromMilliseconds(100), FlushInterval = TimeSpan.FromMilliseconds(100),
        };

        var state = await _engine.RunJobAsync(id, options, CancellationToken.None);

        var finished = clock.Elapsed;
        Assert.NotNull(stormStart);
        var stormEnd = stormStart.Value + Storm;
        var during = _targetProxy.Served(Fault.SlowDown);
        var progress = _engine.Store.GetProgress(id);
        double Rate(TimeSpan from, TimeSpan to)
        {
            lock (puts) return puts.Count(t => t >= from && t < to) / (to - from).TotalSeconds;
        }
        var before = Rate(puts[0], stormStart.Value);
        // Recovered: the first second after the storm in which at least 20 PUTs went, which a spacing of more than 50 ms
        // (it reached a second or more in the storm) would not let through; and the best second after it.
        var second = TimeSpan.FromSeconds(1);
        List<TimeSpan> afterStorm;
        lock (puts) afterStorm = puts.Where(t => t >= stormEnd).ToList();
        var recovered = afterStorm.Cast<TimeSpan?>().FirstOrDefault(t => afterStorm.Count(u => u >= t && u < t + second) >= 20);
        var best = afterStorm.Count == 0 ? 0 : afterStorm.Max(t => afterStorm.Count(u => u >= t && u < t + second));
        var report = $"pacer {(paced ? "on" : "off")}: {during} requests during the {Storm.TotalSeconds:0} s storm with {Workers} workers; " +
            $"{progress.TransferredObjects} transferred, {progress.FailedObjects} failed; {before:0} PUTs/s before the storm, {best} in the best second after it, " +
            $"20 a second again {(recovered is { } r ? $"{(r - stormEnd).TotalSeconds:0.0} s after it" : "never")}; done {(finished - stormEnd).TotalSeconds:0.0} s after it ({state})";
        output.WriteLine(report);

        if (paced)
        {
            // About one request per spacing, plus those under way as the storm began: not each worker on its own.
            Assert.True(during < 3 * Workers, report);
            Assert.Equal(JobState.Completed, state);
            Assert.True(recovered is not null, report);
            Assert.Equal(seeded.Count, progress.TransferredObjects);
            foreach (var key in seeded.Keys.Where((_, i) => i % 20 == 0))
            {
                var (content, _) = await targetClient.GetAsync(target, key);
                Assert.True(seeded[key].AsSpan().SequenceEqual(content), key);
            }
        }
        else
        {
            // What the pacer prevents: every worker retrying on its own schedule.
            Assert.True(during >= 3 * Workers, report);
        }
    }
}
