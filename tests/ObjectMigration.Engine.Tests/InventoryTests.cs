using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Inventory: a source-only job whose report sums up the listing per prefix and per storage class.</summary>
public sealed class InventoryTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-inventory-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly MigrationEngine _engine;

    public InventoryTests() => _engine = MigrationEngine.Open(_home);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { /* a pooled handle may linger; temp folder */ }
    }

    private static S3Endpoint Server(string name) => name == "ceph" ? TestEndpoints.Rgw : TestEndpoints.S3rverSource;

    [Theory]
    [InlineData("s3rver")]
    [InlineData("ceph")]
    public async Task An_inventory_needs_no_target_and_its_report_equals_what_was_seeded_per_prefix(string fixture)
    {
        var server = Server(fixture);
        using var client = server.Client();
        var bucket = await client.NewBucketAsync();
        var seeded = new Dictionary<string, int>
        {
            ["logs/2024/a.log"] = 1000, ["logs/2024/b.log"] = 3000, ["logs/2025/c.log"] = 500,
            ["photos/x.jpg"] = 7000, ["top.txt"] = 10, ["zz/deep/er/file.bin"] = 2048,
        };
        foreach (var (key, size) in seeded) await client.PutAsync(bucket, key, TestEndpoints.Bytes(size, size));
        _engine.AddConnector(new CloudConnector { Name = "src", Endpoint = server.Endpoint }, server.AccessKey, server.SecretKey, pathStyleGiven: false);

        var job = _engine.CreateJob(new MigrationJobRequest { Type = JobType.Inventory, SourceConnector = "src", SourceBucket = bucket });
        Assert.Equal($"{bucket}-inventory", job.Name);
        Assert.Equal("", job.Target);
        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(job.Id, TestEndpoints.QuickRunner, CancellationToken.None));

        var rows = Inventory.Summarize(_engine.Store, _engine.GetJob(job.Id), depth: 1);
        var total = rows.Single(r => r.Group == InventoryGroup.Total);
        Assert.Equal(seeded.Count, total.Objects);
        Assert.Equal(seeded.Values.Sum(), total.Bytes);
        Assert.Equal(("photos/x.jpg", 7000L), (total.LargestKey, total.LargestSize));
        Assert.NotNull(total.Oldest);
        Assert.True(total.Newest >= total.Oldest);
        var prefixes = rows.Where(r => r.Group == InventoryGroup.Prefix).ToDictionary(r => r.Name, r => (r.Objects, r.Bytes));
        Assert.Equal(new Dictionary<string, (long, long)>
        {
            [""] = (1, 10), ["logs/"] = (3, 4500), ["photos/"] = (1, 7000), ["zz/"] = (1, 2048),
        }, prefixes);
        var classes = rows.Where(r => r.Group == InventoryGroup.StorageClass).ToList();
        Assert.Equal((seeded.Count, (long)seeded.Values.Sum()), (classes.Sum(r => r.Objects), classes.Sum(r => r.Bytes)));

        // Any depth, from the one listing.
        var deeper = Inventory.Summarize(_engine.Store, _engine.GetJob(job.Id), depth: 2).Where(r => r.Group == InventoryGroup.Prefix).ToDictionary(r => r.Name, r => r.Objects);
        Assert.Equal(new Dictionary<string, long> { [""] = 1, ["logs/2024/"] = 2, ["logs/2025/"] = 1, ["photos/"] = 1, ["zz/deep/"] = 1 }, deeper);
    }

    [Fact]
    public void Sums_per_storage_class_and_relative_to_the_source_prefix_with_memory_that_does_not_grow_with_the_objects()
    {
        var job = new MigrationJob
        {
            Id = Guid.NewGuid(), Name = "synthetic", Type = JobType.Inventory, State = JobState.Completed, SourceBucket = "b", SourcePrefix = "data/",
            CreatedAt = DateTimeOffset.UtcNow, Concurrency = 1, PartSize = TransferOptions.DefaultPartSize, MultipartThreshold = TransferOptions.DefaultMultipartThreshold,
        };
        _engine.Store.AddJob(job);
        string[] classes = ["STANDARD", "GLACIER", "STANDARD_IA", ""];
        var start = DateTimeOffset.Parse("2024-01-01T00:00:00Z");
        const int count = 40_000;
        for (var page = 0; page < count / 1000; page++)
        {
            var objects = Enumerable.Range(page * 1000, 1000)
                .Select(i => new ListedObject($"data/p{i % 8}/{i:d6}.bin", i % 100, null, start.AddMinutes(i), classes[i % 4]))
                .ToList();
            _engine.Store.SaveListingPage(job.Id, objects, page == count / 1000 - 1 ? null : $"t{page}", page == count / 1000 - 1, target: false);
        }
        var before = GC.GetAllocatedBytesForCurrentThread();
        var rows = Inventory.Summarize(_engine.Store, job, depth: 1);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(count, rows.Single(r => r.Group == InventoryGroup.Total).Objects);
        var perClass = rows.Where(r => r.Group == InventoryGroup.StorageClass).ToDictionary(r => r.Name, r => r.Objects);
        // An object listed without a class is STANDARD, as S3 says.
        Assert.Equal(new Dictionary<string, long> { ["GLACIER"] = count / 4, ["STANDARD"] = count / 2, ["STANDARD_IA"] = count / 4 }, perClass);
        var perPrefix = rows.Where(r => r.Group == InventoryGroup.Prefix).ToDictionary(r => r.Name, r => r.Objects);
        Assert.Equal(Enumerable.Range(0, 8).ToDictionary(i => $"p{i}/", _ => (long)(count / 8)), perPrefix);
        var p0 = rows.Single(r => r.Name == "p0/");
        Assert.Equal((start, start.AddMinutes(count - 8)), (p0.Oldest!.Value, p0.Newest!.Value));
        Assert.Equal(99, rows.Single(r => r.Group == InventoryGroup.Total).LargestSize);
        // Rows are read one at a time: what is allocated is per row read, none of it kept (under 1 KiB a row).
        Assert.True(allocated < count * 1024L, $"{allocated} bytes allocated for {count} rows");
    }

    [Theory]
    [InlineData("a/b/c.txt", 1, "a/")]
    [InlineData("a/b/c.txt", 2, "a/b/")]
    [InlineData("a/b/c.txt", 5, "a/b/")]
    [InlineData("top.txt", 1, "")]
    [InlineData("a/b/c.txt", 0, "")]
    public void A_prefix_is_the_first_depth_folder_like_segments(string key, int depth, string prefix) =>
        Assert.Equal(prefix, Inventory.PrefixOf(key, depth));

    [Fact]
    public void An_inventory_with_a_target_is_refused_naming_the_parameter()
    {
        _engine.AddConnector(new CloudConnector { Name = "src", Endpoint = "http://127.0.0.1:9" }, "AK", "SK", pathStyleGiven: false);
        var error = Assert.Throws<ArgumentException>(() => _engine.CreateJob(new MigrationJobRequest { Type = JobType.Inventory, SourceConnector = "src", SourceBucket = "bucket", TargetConnector = "src", TargetBucket = "other" }));
        Assert.Equal("TargetConnector", error.ParamName);
        Assert.Empty(_engine.GetJobs());
        var missing = Assert.Throws<ArgumentException>(() => _engine.CreateJob(new MigrationJobRequest { SourceConnector = "src", SourceBucket = "bucket", TargetBucket = "other" }));
        Assert.Equal("TargetConnector", missing.ParamName);
    }
}
