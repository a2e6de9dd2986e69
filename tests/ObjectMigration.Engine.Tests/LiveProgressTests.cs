using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Storage;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Progress read from the store while a large object moves, compared with the bytes the target was sent.</summary>
public sealed class LiveProgressTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-xunit-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly MigrationEngine _engine;

    public LiveProgressTests()
    {
        _engine = TestEndpoints.OpenEngineOnS3rver(_home);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { /* a pooled handle may linger; temp folder */ }
    }

    [Fact]
    public async Task Progress_during_a_capped_multipart_copy_counts_the_parts_in_flight_within_10_percent_of_the_bytes_sent()
    {
        const int size = 24 * 1024 * 1024;
        const long cap = 4L * 1024 * 1024;
        using var sourceClient = TestEndpoints.S3rverSource.Client();
        using var targetClient = TestEndpoints.S3rverTarget.Client();
        var source = await sourceClient.NewBucketAsync();
        var target = await targetClient.NewBucketAsync();
        var content = TestEndpoints.Bytes(size, 16);
        await sourceClient.PutAsync(source, "large/one.bin", content);
        var job = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target,
            Concurrency = 2, MultipartThreshold = 5 * 1024 * 1024, PartSize = 5 * 1024 * 1024, MaxBytesPerSecond = cap,
        });
        using var sourceStore = MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("source")));
        using var targetStore = new CountingObjectStore(MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("target"))));

        var run = new MigrationRunner(_engine.Store, job, sourceStore, targetStore, TestEndpoints.QuickRunner).RunAsync(CancellationToken.None);
        var samples = new List<(long SentBefore, MigrationJobProgress Progress, long SentAfter)>();
        // One object in parts: before this change progress said 0 bytes until the object completed.
        foreach (var share in new[] { 0.25, 0.5, 0.75 })
        {
            await TestEndpoints.WaitUntilAsync(() => targetStore.BytesSent >= share * size || run.IsCompleted, TimeSpan.FromSeconds(60));
            Assert.False(run.IsCompleted, "the copy ended before the progress could be sampled");
            var before = targetStore.BytesSent;
            // Progress is stored at each flush: wait for one that saw these bytes (a loaded machine flushes late), then
            // read it. Without the bytes in flight it would read 0 until the whole object is done, and then all of it.
            MigrationJobProgress progress = null!;
            await TestEndpoints.WaitUntilAsync(() => (progress = _engine.Store.GetProgress(job.Id)).TransferredBytes >= 0.9 * before, TimeSpan.FromSeconds(5));
            Assert.InRange(progress.TransferredBytes, 1, size - 1);
            samples.Add((before, progress, targetStore.BytesSent));
        }
        Assert.Equal(JobState.Completed, await run);

        foreach (var (sentBefore, progress, sentAfter) in samples)
        {
            Assert.InRange(progress.TransferredBytes, (long)(0.9 * sentBefore), (long)(1.1 * sentAfter));
            Assert.InRange(progress.PercentComplete, 90.0 * sentBefore / size, 110.0 * sentAfter / size);
        }
        // The cap allows a burst of one second's bytes at the start, so the rate settles after the first sample.
        foreach (var (_, progress, _) in samples.Skip(1))
        {
            Assert.InRange(progress.BytesPerSecond, cap / 2.0, cap * 2.0);
            // What is left at the measured rate: about what is left at the cap.
            var expected = (size - progress.TransferredBytes) / (double)cap;
            Assert.NotNull(progress.EstimatedTimeRemaining);
            Assert.InRange(progress.EstimatedTimeRemaining!.Value.TotalSeconds, expected / 2 - 1, expected * 2 + 1);
        }
        var done = _engine.Store.GetProgress(job.Id);
        Assert.Equal(size, done.TransferredBytes);
        Assert.Equal(100, done.PercentComplete);
        var (copied, _) = await targetClient.GetAsync(target, "large/one.bin");
        Assert.True(content.AsSpan().SequenceEqual(copied));
    }
}
