using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Where an idle runner cuts another's listing range: keys between the bounds, found with few probes.</summary>
public sealed class SplitPointTests
{
    [Theory]
    [InlineData("data/0001", "data/0099", "data/004")]
    [InlineData("a", "c", "b")]
    [InlineData("a", "b", "a?")]
    [InlineData("", null, "?")]
    [InlineData("d", null, "r")]
    [InlineData("k/001", "k/002", "k/001?")]
    [InlineData("é", null, "\U00088074")]
    public void A_cut_lies_between_its_bounds_half_way_where_they_differ(string low, string? high, string expected)
    {
        var point = SplitPoint.Between(low, high);
        Assert.Equal(expected, point);
        Assert.True(KeyOrder.Compare(point!, low) > 0);
        if (high is not null) Assert.True(KeyOrder.Compare(point!, high) < 0);
    }

    [Theory]
    [InlineData("a", "a")]
    [InlineData("b", "a")]
    [InlineData("a", "a\u0001")]
    public void No_cut_where_no_useful_key_lies_between(string low, string high) => Assert.Null(SplitPoint.Between(low, high));

    [Fact]
    public void Halving_toward_the_last_key_of_a_flat_key_space_finds_a_cut_with_few_probes()
    {
        // What FindCutAsync does against a bucket: keys data/00000000.bin ... data/00999999.bin, listed as far as 12,345.
        static bool KeysAfter(string point) => KeyOrder.Compare(point, "data/00999999.bin") < 0;
        var low = "data/00012345.bin";
        var (shortest, longest, probes) = (1, SplitPoint.Length(low), 0);
        while (shortest < longest)
        {
            var m = (shortest + longest) / 2;
            probes++;
            if (KeysAfter(SplitPoint.AfterPrefixOf(low, m))) longest = m; else shortest = m + 1;
        }
        string? high = SplitPoint.AfterPrefixOf(low, shortest - 1);
        string? cut = null;
        while (SplitPoint.Between(low, high) is { } point && probes++ < 24)
        {
            if (KeysAfter(point)) { cut = point; break; }
            high = point;
        }
        Assert.Equal("data/005", cut);
        Assert.InRange(probes, 1, 12);
    }
}

/// <summary>Two runners of one job list its source at once: the idle one cuts the far part of the other's range.</summary>
public sealed class SplitListingTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-xunit-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly MigrationEngine _engine;

    public SplitListingTests()
    {
        _engine = TestEndpoints.OpenEngineOnS3rver(_home);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { /* a pooled handle may linger; temp folder */ }
    }

    private static RunnerOptions Options(string runner, bool join) => new()
    {
        Retry = TestEndpoints.QuickRunner.Retry,
        ControlInterval = TestEndpoints.QuickRunner.ControlInterval,
        FlushInterval = TestEndpoints.QuickRunner.FlushInterval,
        ListPageSize = 10,
        RunnerId = runner,
        Join = join,
    };

    [Fact]
    public async Task A_runner_that_joins_while_the_source_is_listed_lists_part_of_it_and_every_object_is_copied_once()
    {
        const int count = 300;
        var (source, seeded) = await TestEndpoints.SeedS3rverSourceAsync("split", count, 64);
        using var targetClient = TestEndpoints.S3rverTarget.Client();
        var target = await targetClient.NewBucketAsync();
        var job = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target, Concurrency = 4,
        });
        using var leadSource = MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("source")));
        using var helperSource = MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("source")));
        using var leadTarget = MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("target")));
        using var helperTarget = MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("target")));
        // The lead's listing waits after its third page until its range has been cut: on a fast server it would
        // otherwise list all of it before the helper arrives.
        var cut = () => _engine.Store.GetOpenRanges(job.Id).Count >= 2 || _engine.Store.GetListingCheckpoint(job.Id, false).Done;
        var gated = new ListingGate(leadSource, pagesBeforeGate: 3, open: cut);

        var lead = new MigrationRunner(_engine.Store, job, gated, leadTarget, Options("lead", join: false)).RunAsync(CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _engine.Store.FindJob(job.Id) is { State: JobState.Running, Phase: not JobPhase.Listing } || lead.IsCompleted,
            TimeSpan.FromSeconds(30));
        var helper = new MigrationRunner(_engine.Store, _engine.GetJob(job.Id), helperSource, helperTarget, Options("helper", join: true)).RunAsync(CancellationToken.None);

        Assert.Equal(JobState.Completed, await lead);
        await helper;

        Assert.True(gated.Gated, "the lead's listing never reached its gate");
        var logs = _engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.MigrationNotice] }).Select(l => l.Message).ToList();
        Assert.Contains(logs, m => m.StartsWith("helper#", StringComparison.Ordinal) && m.Contains("cut from range 0 that lead#", StringComparison.Ordinal));
        // Every object once, intact; the counters add up to the bucket.
        var keys = await targetClient.KeysAsync(target);
        Assert.Equal(seeded.Keys.Order(StringComparer.Ordinal), keys);
        foreach (var key in keys.Where((_, i) => i % 25 == 0))
        {
            Assert.Equal(seeded[key], (await targetClient.GetAsync(target, key)).Content);
        }
        var progress = _engine.Store.GetProgress(job.Id);
        Assert.Equal((count, count, 0L), (progress.Objects, progress.TransferredObjects, progress.FailedObjects));
        Assert.Equal(seeded.Values.Sum(v => (long)v.Length), progress.TotalBytes);
    }

    /// <summary>Lists through the inner store; after <paramref name="pagesBeforeGate"/> pages waits (up to 30 s) until <paramref name="open"/> holds.</summary>
    private sealed class ListingGate(IObjectStore inner, int pagesBeforeGate, Func<bool> open) : CountingObjectStore(inner)
    {
        private int _pages;
        public bool Gated { get; private set; }

        public override async Task<ObjectListing> ListAsync(string bucket, string prefix, string? token, string? startAfter, int pageSize, CancellationToken ct)
        {
            if (Interlocked.Increment(ref _pages) > pagesBeforeGate && !Gated)
            {
                Gated = true;
                await TestEndpoints.WaitUntilAsync(open, TimeSpan.FromSeconds(30));
            }
            return await base.ListAsync(bucket, prefix, token, startAfter, pageSize, ct);
        }
    }
}
