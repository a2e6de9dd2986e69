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

    private static readonly RunnerOptions Quick = new()
    {
        Retry = new RetryPolicy { MaxAttempts = 4, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) },
        ControlInterval = TimeSpan.FromMilliseconds(100),
        FlushInterval = TimeSpan.FromMilliseconds(100),
    };

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
