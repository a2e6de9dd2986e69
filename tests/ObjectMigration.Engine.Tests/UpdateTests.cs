using System.Collections.Concurrent;
using Amazon.S3;
using Amazon.S3.Model;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Update: objects changed in place (storage class, tags, headers), on s3rver and on Ceph RGW, which keeps storage classes.</summary>
public sealed class UpdateTests : IAsyncLifetime
{
    private const int Part = 5 * 1024 * 1024;
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-update-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly List<FaultProxy> _proxies = [];
    private MigrationEngine _engine = null!;

    public Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var proxy in _proxies) await proxy.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { /* a pooled handle may linger; temp folder */ }
    }

    private static S3Endpoint Server(string fixture) => fixture == "ceph" ? TestEndpoints.Rgw : TestEndpoints.S3rverSource;

    /// <summary>STANDARD_IA on Ceph (the fixture's placement has it); s3rver keeps whatever class it is told.</summary>
    private const string NewClass = "STANDARD_IA";

    private void Connector(string endpoint, S3Endpoint keys) =>
        _engine.AddConnector(new CloudConnector { Name = "src", Endpoint = endpoint }, keys.AccessKey, keys.SecretKey, pathStyleGiven: false);

    private sealed record Seeded(byte[] Content, string ETag, DateTime? LastModified);

    /// <summary>Objects under in/ (to update) and out/ (outside the prefix), each with a content type, metadata and tags.</summary>
    private static async Task<Dictionary<string, Seeded>> SeedAsync(AmazonS3Client client, string bucket, int count = 5)
    {
        var seeded = new Dictionary<string, Seeded>();
        var keys = Enumerable.Range(0, count).Select(i => $"in/{i:d2}.txt").Append("out/a.txt").Append("out/b.txt");
        var seed = 0;
        foreach (var key in keys)
        {
            var content = TestEndpoints.Bytes(2000 + 300 * seed, 50 + seed++);
            await client.PutAsync(bucket, key, content, "text/plain", new Dictionary<string, string> { ["owner"] = "team-" + seed }, r =>
            {
                r.Headers.CacheControl = "max-age=300";
                r.Headers.ContentDisposition = $"attachment; filename=\"{seed}.txt\"";
                r.Headers["Content-Language"] = "en-GB";
            });
            // Tags by their own call: s3rver ignores x-amz-tagging on a PUT.
            await client.PutObjectTaggingAsync(new PutObjectTaggingRequest
            {
                BucketName = bucket, Key = key, Tagging = new Tagging { TagSet = [new Tag { Key = "keep", Value = "yes" }, new Tag { Key = "temp", Value = "1" }] },
            });
            var head = await client.GetObjectMetadataAsync(bucket, key);
            seeded[key] = new Seeded(content, head.ETag, head.LastModified);
        }
        return seeded;
    }

    private static async Task<Dictionary<string, string>> TagsAsync(AmazonS3Client client, string bucket, string key) =>
        (await client.GetObjectTaggingAsync(new GetObjectTaggingRequest { BucketName = bucket, Key = key })).Tagging
            .Where(t => !string.IsNullOrEmpty(t.Key)).ToDictionary(t => t.Key, t => t.Value);

    /// <summary>Runs the job to its end and fails with the job's error entries when it did not end <paramref name="expected"/>.</summary>
    private async Task RunAsync(Guid id, JobState expected = JobState.Completed, RunnerOptions? options = null)
    {
        var state = await _engine.RunJobAsync(id, options ?? TestEndpoints.QuickRunner, CancellationToken.None);
        if (state == expected) return;
        var errors = _engine.Store.GetLogs(id, new LogQuery { Types = [LogType.MigrationError, LogType.ImportErrorRetryExhaustion] }).Select(l => $"{l.ObjectKey}: {l.Message}");
        Assert.Fail($"The job ended {state}, not {expected}: {string.Join(" | ", errors.Take(5))}");
    }

    private MigrationJobRequest UpdateRequest(string bucket) => new()
    {
        Type = JobType.Update, SourceConnector = "src", SourceBucket = bucket, SourcePrefix = "in/", Concurrency = 4,
        Update = new ObjectUpdate { StorageClass = NewClass, AddTags = new() { ["project"] = "apollo" }, RemoveTags = ["temp"] },
    };

    /// <summary>Each object under in/ has the new class and tags, and still its bytes, ETag, content type and metadata; out/ is untouched.</summary>
    private static async Task AssertUpdatedAsync(AmazonS3Client client, string bucket, Dictionary<string, Seeded> seeded)
    {
        foreach (var (key, before) in seeded)
        {
            var head = await client.GetObjectMetadataAsync(bucket, key);
            var (content, response) = await client.GetAsync(bucket, key);
            Assert.True(before.Content.AsSpan().SequenceEqual(content), $"the bytes of '{key}' changed");
            Assert.Equal(before.ETag, head.ETag);
            Assert.Equal("text/plain", response.Headers.ContentType);
            Assert.Equal("max-age=300", response.Headers.CacheControl);
            Assert.StartsWith("attachment; filename=", response.Headers.ContentDisposition);
            Assert.Equal("en-GB", response.Headers["Content-Language"]);
            Assert.Equal(1, response.Metadata.Count);
            Assert.StartsWith("team-", response.Metadata["owner"]);
            var tags = await TagsAsync(client, bucket, key);
            if (key.StartsWith("in/", StringComparison.Ordinal))
            {
                Assert.Equal(NewClass, head.StorageClass?.Value);
                Assert.Equal(new Dictionary<string, string> { ["keep"] = "yes", ["project"] = "apollo" }, tags);
            }
            else
            {
                Assert.True(head.StorageClass is null || head.StorageClass.Value == "STANDARD", $"'{key}' outside the prefix is {head.StorageClass}");
                Assert.Equal(new Dictionary<string, string> { ["keep"] = "yes", ["temp"] = "1" }, tags);
                Assert.Equal(before.LastModified, head.LastModified);
            }
        }
    }

    [Theory]
    [InlineData("s3rver")]
    [InlineData("ceph")]
    public async Task An_update_sets_storage_class_and_tags_on_a_prefix_keeps_bytes_and_metadata_and_a_rerun_changes_nothing(string fixture)
    {
        var server = Server(fixture);
        using var client = server.Client();
        var bucket = await client.NewBucketAsync();
        var seeded = await SeedAsync(client, bucket);
        Connector(server.Endpoint, server);

        // The dry run counts what the job then does.
        var plan = await _engine.PlanAsync(UpdateRequest(bucket), CancellationToken.None);
        Assert.Equal((PlannedAction.Update, 5L), (plan.Single().Action, plan.Single().Objects));

        var job = _engine.CreateJob(UpdateRequest(bucket));
        Assert.Equal($"{bucket}-update", job.Name);
        Assert.Equal("(in place)", job.Target);
        await RunAsync(job.Id);
        var progress = _engine.Store.GetProgress(job.Id);
        Assert.Equal((5L, 5L, 0L), (progress.Objects, progress.TransferredObjects, progress.FailedObjects));
        await AssertUpdatedAsync(client, bucket, seeded);
        var report = _engine.Store.StreamObjectReport(job.Id).ToList();
        Assert.All(report, row => Assert.Equal((ObjectOutcome.Transferred, (LogType?)LogType.ObjectUpdated, "size and ETag"), (row.Outcome, row.LogType, row.VerifiedBy)));
        Assert.Contains("storage class", report[0].Message);
        Assert.Contains("keep=yes, project=apollo", report[0].Message);

        // A re-run finds every object as asked: the plan and the job change nothing.
        var replan = await _engine.PlanAsync(UpdateRequest(bucket), CancellationToken.None);
        Assert.Equal((PlannedAction.Skip, nameof(LogType.UpdateAlreadyApplied), 5L), (replan.Single().Action, replan.Single().Reason, replan.Single().Objects));
        var modified = new Dictionary<string, DateTime?>();
        foreach (var key in seeded.Keys) modified[key] = (await client.GetObjectMetadataAsync(bucket, key)).LastModified;
        var again = _engine.CreateJob(UpdateRequest(bucket));
        await RunAsync(again.Id);
        var rerun = _engine.Store.GetProgress(again.Id);
        Assert.Equal((5L, 0L, 5L), (rerun.Objects, rerun.TransferredObjects, rerun.SkippedObjects));
        foreach (var key in seeded.Keys) Assert.Equal(modified[key], (await client.GetObjectMetadataAsync(bucket, key)).LastModified);
    }

    [Theory]
    [InlineData("s3rver")]
    [InlineData("ceph")]
    public async Task Tags_alone_change_without_a_copy_and_SetMetadata_replaces_only_what_it_names(string fixture)
    {
        var server = Server(fixture);
        using var client = server.Client();
        var bucket = await client.NewBucketAsync();
        var seeded = await SeedAsync(client, bucket, count: 2);
        var proxy = await FaultProxy.StartAsync(server);
        _proxies.Add(proxy);
        var copies = 0;
        proxy.RequestArrived += r =>
        {
            if (FaultProxy.IsCopyObject(r)) Interlocked.Increment(ref copies);
        };
        Connector(proxy.Endpoint, server);

        var tagsOnly = UpdateRequest(bucket);
        tagsOnly.Update = new ObjectUpdate { SetTags = new() { ["class"] = "public" } };
        var job = _engine.CreateJob(tagsOnly);
        await RunAsync(job.Id);
        foreach (var key in new[] { "in/00.txt", "in/01.txt" })
        {
            Assert.Equal(new Dictionary<string, string> { ["class"] = "public" }, await TagsAsync(client, bucket, key));
        }
        // Tags alone need no copy of the object (PutObjectTagging only).
        Assert.Equal(0, copies);

        var headers = UpdateRequest(bucket);
        headers.Update = new ObjectUpdate
        {
            ContentHeaders = new() { ["Cache-Control"] = "max-age=60", ["Content-Type"] = "text/markdown" },
            UserMetadata = new() { ["reviewed"] = "2026-12", ["owner"] = null },
        };
        var second = _engine.CreateJob(headers);
        await RunAsync(second.Id);
        foreach (var key in new[] { "in/00.txt", "in/01.txt" })
        {
            var (content, response) = await client.GetAsync(bucket, key);
            Assert.True(seeded[key].Content.AsSpan().SequenceEqual(content));
            Assert.Equal("text/markdown", response.Headers.ContentType);
            Assert.Equal("max-age=60", response.Headers.CacheControl);
            Assert.Equal(["x-amz-meta-reviewed"], response.Metadata.Keys);
            Assert.Equal(new Dictionary<string, string> { ["class"] = "public" }, await TagsAsync(client, bucket, key));
        }
        Assert.Equal(2, copies);
        var (_, outsideResponse) = await client.GetAsync(bucket, "out/a.txt");
        Assert.Equal("text/plain", outsideResponse.Headers.ContentType);
    }

    [Theory]
    [InlineData("s3rver")]
    [InlineData("ceph")]
    public async Task A_tag_write_that_fails_after_the_copy_is_repaired_by_RetryFailed_with_one_copy_per_object_and_no_tag_lost(string fixture)
    {
        var server = Server(fixture);
        using var client = server.Client();
        var bucket = await client.NewBucketAsync();
        var seeded = await SeedAsync(client, bucket);
        var proxy = await FaultProxy.StartAsync(server);
        _proxies.Add(proxy);
        var copies = new ConcurrentDictionary<string, int>();
        proxy.RequestArrived += r =>
        {
            if (FaultProxy.IsCopyObject(r)) copies.AddOrUpdate(Uri.UnescapeDataString(r.Path.Value!), 1, (_, n) => n + 1);
        };
        Connector(proxy.Endpoint, server);
        // The tags of one object never get written in the first run: after its copy (which Ceph makes without tags), the run
        // ends for it as a crash would leave it. Only the tags kept in the store before the copy can bring 'keep' back.
        proxy.Inject(Fault.Reset, int.MaxValue, r => r.Method == "PUT" && r.Query.ContainsKey("tagging") && r.Path.Value!.EndsWith("in/02.txt", StringComparison.Ordinal));

        var job = _engine.CreateJob(UpdateRequest(bucket));
        await RunAsync(job.Id, JobState.CompletedWithErrors);
        Assert.Equal(4, _engine.Store.GetProgress(job.Id).TransferredObjects);
        proxy.Clear();

        _engine.PrepareResume(job.Id, retryFailed: true);
        await RunAsync(job.Id);
        await AssertUpdatedAsync(client, bucket, seeded);
        // One copy onto itself per object, over both runs.
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"/{bucket}/in/{i:d2}.txt"), copies.Keys.Order(StringComparer.Ordinal));
        Assert.All(copies.Values, n => Assert.Equal(1, n));
        var updated = _engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.ObjectUpdated] }).Select(l => l.ObjectKey).ToList();
        Assert.Equal(5, updated.Count);
        Assert.Equal(5, updated.Distinct().Count());
    }

    [Fact]
    public async Task An_object_above_the_largest_single_copy_is_updated_in_parts_with_its_bytes_unchanged()
    {
        var server = TestEndpoints.Rgw;
        using var client = server.Client();
        var bucket = await client.NewBucketAsync();
        var content = TestEndpoints.Bytes(2 * Part + 4321, 9);
        await client.PutAsync(bucket, "in/large.bin", content, "application/x-large", new Dictionary<string, string> { ["owner"] = "big" });
        await client.PutObjectTaggingAsync(new PutObjectTaggingRequest { BucketName = bucket, Key = "in/large.bin", Tagging = new Tagging { TagSet = [new Tag { Key = "keep", Value = "yes" }] } });
        Connector(server.Endpoint, server);

        var request = UpdateRequest(bucket);
        request.PartSize = Part;
        var job = _engine.CreateJob(request);
        var options = new RunnerOptions
        {
            Retry = TestEndpoints.QuickRunner.Retry, ControlInterval = TestEndpoints.QuickRunner.ControlInterval,
            FlushInterval = TestEndpoints.QuickRunner.FlushInterval, LargestSingleCopy = Part,
        };
        await RunAsync(job.Id, options: options);

        var head = await client.GetObjectMetadataAsync(bucket, "in/large.bin");
        Assert.EndsWith("-3\"", head.ETag);
        Assert.Equal(NewClass, head.StorageClass?.Value);
        var (after, response) = await client.GetAsync(bucket, "in/large.bin");
        Assert.True(content.AsSpan().SequenceEqual(after));
        Assert.Equal(("application/x-large", "big"), (response.Headers.ContentType, response.Metadata["owner"]));
        Assert.Equal(new Dictionary<string, string> { ["keep"] = "yes", ["project"] = "apollo" }, await TagsAsync(client, bucket, "in/large.bin"));
        Assert.Empty(_engine.Store.GetOpenUploads(job.Id));
    }

    [Fact]
    public void Bad_update_requests_name_the_parameter_and_store_nothing()
    {
        _engine.AddConnector(new CloudConnector { Name = "src", Endpoint = "http://127.0.0.1:9" }, "AKEXAMPLE", "secret", pathStyleGiven: false);
        (string Parameter, Action<MigrationJobRequest> Change)[] cases =
        [
            ("Type", r => r.Update = new ObjectUpdate()),
            ("SetStorageClass", r => r.Update!.StorageClass = "standard ia"),
            ("SetTags", r => r.Update = new ObjectUpdate { SetTags = new() { ["a"] = "1" }, AddTags = new() { ["b"] = "2" } }),
            ("AddTags", r => r.Update = new ObjectUpdate { AddTags = Enumerable.Range(0, 11).ToDictionary(i => $"t{i}", i => "v") }),
            ("RemoveTags", r => r.Update = new ObjectUpdate { AddTags = new() { ["a"] = "1" }, RemoveTags = ["a"] }),
            ("SetMetadata", r => r.Update = new ObjectUpdate { ContentHeaders = new() { ["Content-Length"] = "5" } }),
            ("SetMetadata", r => r.Update = new ObjectUpdate { UserMetadata = new() { ["bad name"] = "x" } }),
            ("TargetBucket", r => r.TargetBucket = "elsewhere"),
            ("SetStorageClass", r => { r.Type = JobType.Migrate; r.TargetConnector = "src"; r.TargetBucket = "other"; }),
        ];
        foreach (var (parameter, change) in cases)
        {
            var request = UpdateRequest("bucket");
            change(request);
            var e = Assert.Throws<ArgumentException>(() => _engine.CreateJob(request));
            Assert.Equal(parameter, e.ParamName);
        }
        Assert.Empty(_engine.GetJobs());
    }
}
