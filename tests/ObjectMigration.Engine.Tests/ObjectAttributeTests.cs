using Amazon.S3;
using Amazon.S3.Model;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>What an object carries besides bytes and content headers: tags and website redirects are kept where the target takes them, and the log says what it could not take.</summary>
public sealed class ObjectAttributeTests : IAsyncLifetime
{
    private const int Part = 5 * 1024 * 1024;
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-attrs-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly AmazonS3Client _client = TestEndpoints.Rgw.Client();
    private MigrationEngine _engine = null!;
    private FaultProxy _sourceProxy = null!;

    private static readonly RunnerOptions Quick = TestEndpoints.QuickRunner;

    public async Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        // The source through a proxy: another endpoint than the target's, so bytes and headers go through the client.
        _sourceProxy = await FaultProxy.StartAsync(TestEndpoints.Rgw);
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = _sourceProxy.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
    }

    public async Task DisposeAsync()
    {
        await _sourceProxy.DisposeAsync();
        _client.Dispose();
    }

    private async Task<string> SeedAsync()
    {
        var source = await _client.NewBucketAsync();
        var tags = new List<Tag> { new() { Key = "project", Value = "apollo 11" }, new() { Key = "cost-centre", Value = "a&b=c" } };
        await _client.PutAsync(source, "site/index.html", "<html/>"u8.ToArray(), "text/html", configure: r =>
        {
            r.TagSet = tags;
            r.WebsiteRedirectLocation = "/new/index.html";
        });
        await _client.PutAsync(source, "big/tagged.bin", TestEndpoints.Bytes(2 * Part + 7, 3), configure: r => r.TagSet = tags);
        await _client.PutAsync(source, "plain.txt", "no tags"u8.ToArray(), "text/plain");
        return source;
    }

    private Guid Job(string source, string target, string targetConnector) => _engine.CreateJob(new MigrationJobRequest
    {
        SourceConnector = "source", SourceBucket = source, TargetConnector = targetConnector, TargetBucket = target,
        MultipartThreshold = Part, PartSize = Part,
    }).Id;

    private async Task<Dictionary<string, string>> TagsAsync(string bucket, string key) =>
        ((await _client.GetObjectTaggingAsync(new GetObjectTaggingRequest { BucketName = bucket, Key = key })).Tagging ?? []).ToDictionary(t => t.Key, t => t.Value);

    [Fact]
    public async Task Tags_and_website_redirects_are_copied_with_single_and_multipart_objects()
    {
        var source = await SeedAsync();
        var target = await _client.NewBucketAsync();
        _engine.AddConnector(new CloudConnector { Name = "ceph", Endpoint = TestEndpoints.Rgw.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
        var id = Job(source, target, "ceph");

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        var expected = new Dictionary<string, string> { ["project"] = "apollo 11", ["cost-centre"] = "a&b=c" };
        Assert.Equal(expected, await TagsAsync(target, "site/index.html"));
        Assert.Equal(expected, await TagsAsync(target, "big/tagged.bin"));
        Assert.Empty(await TagsAsync(target, "plain.txt"));
        var page = await _client.GetObjectMetadataAsync(target, "site/index.html");
        Assert.Equal("/new/index.html", page.WebsiteRedirectLocation);
        Assert.Equal("text/html", page.Headers.ContentType);
    }

    [Fact]
    public async Task Object_Lock_retention_is_copied_to_a_target_bucket_with_Object_Lock()
    {
        var source = "t-" + Guid.NewGuid().ToString("n")[..16];
        var target = "t-" + Guid.NewGuid().ToString("n")[..16];
        foreach (var bucket in new[] { source, target })
        {
            await _client.PutBucketAsync(new PutBucketRequest { BucketName = bucket, ObjectLockEnabledForBucket = true });
        }
        var until = DateTime.UtcNow.AddDays(1).Date;
        await _client.PutAsync(source, "contract.pdf", "signed"u8.ToArray(), "application/pdf", configure: r =>
        {
            r.ObjectLockMode = ObjectLockMode.Governance;
            r.ObjectLockRetainUntilDate = until;
        });
        _engine.AddConnector(new CloudConnector { Name = "ceph", Endpoint = TestEndpoints.Rgw.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
        var id = Job(source, target, "ceph");

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        var retention = await _client.GetObjectRetentionAsync(new GetObjectRetentionRequest { BucketName = target, Key = "contract.pdf" });
        Assert.Equal(ObjectLockRetentionMode.Governance, retention.Retention.Mode);
        Assert.Equal(until, retention.Retention.RetainUntilDate?.ToUniversalTime());
    }

    [Fact]
    public async Task A_target_without_tagging_gets_the_objects_and_the_log_says_once_that_tags_were_not_copied()
    {
        var source = await SeedAsync();
        var target = await _client.NewBucketAsync();
        // R2's profile: no tagging, no website redirects.
        _engine.AddConnector(new CloudConnector { Name = "r2like", Provider = ConnectorProvider.R2, AccountId = "acc", Endpoint = TestEndpoints.Rgw.Endpoint },
            TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: true);
        var id = Job(source, target, "r2like");

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        Assert.Equal(3, (await _client.KeysAsync(target)).Count);
        Assert.Empty(await TagsAsync(target, "site/index.html"));
        var logs = _engine.Store.GetLogs(id, new LogQuery());
        Assert.Single(logs, l => l.Message.Contains("does not support object tags"));
        Assert.Single(logs, l => l.Message.Contains("does not support website redirects"));
    }
}

/// <summary>-StorageClass: one class for all objects, or a map from the source's class names to the target's.</summary>
public sealed class StorageClassMapTests : IAsyncLifetime
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-classes-" + Guid.NewGuid().ToString("n")[..8]);
    private MigrationEngine _engine = null!;
    private FaultProxy _targetProxy = null!;

    public async Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        _targetProxy = await FaultProxy.StartAsync(TestEndpoints.S3rverTarget);
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = TestEndpoints.S3rverSource.Endpoint }, "S3RVER", "S3RVER", pathStyleGiven: false);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = _targetProxy.Endpoint }, "S3RVER", "S3RVER", pathStyleGiven: false);
    }

    public async Task DisposeAsync() => await _targetProxy.DisposeAsync();

    [Theory]
    [InlineData(null, null, null)]
    [InlineData("*", "STANDARD_IA", "STANDARD_IA")]
    [InlineData("STANDARD", "ONEZONE_IA", "ONEZONE_IA")]
    [InlineData("GLACIER", "DEEP_ARCHIVE", null)]
    public async Task The_class_written_on_the_target_follows_the_map(string? from, string? to, string? expected)
    {
        using var client = TestEndpoints.S3rverSource.Client();
        using var targetClient = TestEndpoints.S3rverTarget.Client();
        var (source, target) = (await client.NewBucketAsync(), await targetClient.NewBucketAsync());
        await client.PutAsync(source, "a.txt", "standard object"u8.ToArray(), "text/plain");
        var sent = new System.Collections.Concurrent.ConcurrentBag<string>();
        _targetProxy.RequestArrived += r =>
        {
            if (FaultProxy.IsObjectPut(r)) sent.Add(r.Headers["x-amz-storage-class"].ToString());
        };
        var request = new MigrationJobRequest { SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target };
        if (from is not null) request.StorageClassMap[from] = to!;
        var id = _engine.CreateJob(request).Id;

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, null, CancellationToken.None));
        // STANDARD objects are written without the header (every provider's default) unless the map names another class.
        Assert.Equal([expected ?? ""], sent);
        Assert.Equal("standard object"u8.ToArray(), (await targetClient.GetAsync(target, "a.txt")).Content);
    }

    [Fact]
    public void Source_class_names_in_the_map_match_whatever_their_case_after_the_job_is_stored()
    {
        var request = new MigrationJobRequest { SourceConnector = "source", SourceBucket = "a-bucket", TargetConnector = "target", TargetBucket = "b-bucket" };
        request.StorageClassMap["glacier"] = "STANDARD_IA";
        var stored = _engine.GetJob(_engine.CreateJob(request).Id);
        Assert.Equal("STANDARD_IA", stored.MappedStorageClass("GLACIER"));
        Assert.Null(stored.MappedStorageClass("STANDARD"));
    }

    [Fact]
    public void A_map_with_a_malformed_class_is_refused_before_the_job_is_written()
    {
        var request = new MigrationJobRequest { SourceConnector = "source", SourceBucket = "a-bucket", TargetConnector = "target", TargetBucket = "b-bucket" };
        request.StorageClassMap["*"] = "cold storage";
        var e = Assert.Throws<ArgumentException>(() => _engine.CreateJob(request));
        Assert.Equal("StorageClass", e.ParamName);
        Assert.Empty(_engine.GetJobs());
    }
}
