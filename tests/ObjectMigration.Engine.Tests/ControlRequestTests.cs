using System.Diagnostics;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Tests that time how fast a run answers run alone: the thread pool is not shared with other tests' runs meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimedResponseCollection
{
    public const string Name = "Timed responses";
}

/// <summary>
/// A pause or stop from another session reaches the runner within two seconds (the spec), however slowly it beats its
/// heartbeat: requests are looked for on their own short tick. Over s3rver, with a capped rate so the job runs for a while.
/// </summary>
[Collection(TimedResponseCollection.Name)]
public sealed class ControlRequestTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-xunit-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly MigrationEngine _engine;

    /// <summary>A heartbeat far slower than two seconds: a request seen only at a heartbeat would come late.</summary>
    private static readonly RunnerOptions SlowHeartbeat = new()
    {
        Retry = TestEndpoints.QuickRunner.Retry,
        ControlInterval = TimeSpan.FromSeconds(6),
        FlushInterval = TimeSpan.FromMilliseconds(100),
    };

    public ControlRequestTests()
    {
        _engine = TestEndpoints.OpenEngineOnS3rver(_home);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { /* a pooled handle may linger; temp folder */ }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_request_is_acted_on_within_two_seconds_though_the_heartbeat_beats_every_six(bool stop)
    {
        using var sourceClient = TestEndpoints.S3rverSource.Client();
        using var targetClient = TestEndpoints.S3rverTarget.Client();
        var source = await sourceClient.NewBucketAsync();
        var target = await targetClient.NewBucketAsync();
        const int objects = 12;
        for (var i = 0; i < objects; i++) await sourceClient.PutAsync(source, $"slow/{i:D2}.bin", TestEndpoints.Bytes(512 * 1024, i));
        // 6 MiB at 512 KiB/s: about twelve seconds of work, so the request comes while most of it is left.
        var job = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target,
            Concurrency = 2, MaxBytesPerSecond = 512 * 1024,
        });
        using var sourceStore = MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("source")));
        using var targetStore = new CountingObjectStore(MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("target"))));
        var run = new MigrationRunner(_engine.Store, job, sourceStore, targetStore, SlowHeartbeat).RunAsync(CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => targetStore.BytesSent > 0 || run.IsCompleted, TimeSpan.FromSeconds(30));
        Assert.False(run.IsCompleted, "the job ended before the request");

        var clock = Stopwatch.StartNew();
        if (stop) await _engine.RequestStopAsync(job.Id, CancellationToken.None);
        else _engine.RequestPause(job.Id);
        var state = await run;
        clock.Stop();

        Assert.Equal(stop ? JobState.Cancelled : JobState.Paused, state);
        Assert.Equal(state, _engine.GetJob(job.Id).State);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"The {(stop ? "stop" : "pause")} took {clock.Elapsed.TotalMilliseconds:N0} ms to settle the job.");
        Assert.True(_engine.Store.GetProgress(job.Id).PendingObjects >= 4, "the job was mostly left to do when the request came");
    }
}
