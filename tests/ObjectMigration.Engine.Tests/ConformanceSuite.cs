using Amazon.S3;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// The behaviour every pair of endpoints must show. Each subclass runs it against real servers over HTTP:
/// across vendors (s3rver to RGW, RGW to s3rver) and within RGW, where copies are server-side.
/// </summary>
public abstract partial class ConformanceSuite : IDisposable
{
    protected abstract S3Endpoint Source { get; }
    protected abstract S3Endpoint Target { get; }
    /// <summary>s3rver maps keys to file paths: no 1,024-byte keys, no empty path segments.</summary>
    protected virtual bool SupportsPathHostileKeys => Source.Kind != "s3rver" && Target.Kind != "s3rver";

    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-xunit-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly AmazonS3Client _sourceClient;
    private readonly AmazonS3Client _targetClient;
    private readonly MigrationEngine _engine;

    protected ConformanceSuite()
    {
        _engine = MigrationEngine.Open(_home);
        _sourceClient = Source.Client();
        _targetClient = Target.Client();
        Add("source", Source);
        Add("target", Target);
    }

    private void Add(string name, S3Endpoint e) =>
        _engine.AddConnector(new CloudConnector { Name = name, Provider = ConnectorProvider.S3, Endpoint = e.Endpoint }, e.AccessKey, e.SecretKey, pathStyleGiven: false);

    public void Dispose()
    {
        _sourceClient.Dispose();
        _targetClient.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { /* a pooled handle may linger; temp folder */ }
    }

    private static readonly RunnerOptions FastRetries = new()
    {
        Retry = new RetryPolicy { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(100) },
        ListPageSize = 300,
        ControlInterval = TimeSpan.FromMilliseconds(100),
        FlushInterval = TimeSpan.FromMilliseconds(100),
    };

    private async Task<(MigrationJob Job, MigrationJobProgress Progress)> MigrateAsync(string sourceBucket, string targetBucket, Action<MigrationJobRequest>? configure = null)
    {
        var request = new MigrationJobRequest { SourceConnector = "source", SourceBucket = sourceBucket, TargetConnector = "target", TargetBucket = targetBucket, Concurrency = 8 };
        configure?.Invoke(request);
        var job = _engine.CreateJob(request);
        await _engine.RunJobAsync(job.Id, FastRetries, CancellationToken.None);
        return (_engine.GetJob(job.Id), _engine.Store.GetProgress(job.Id));
    }

    private async Task AssertSameObjectAsync(string sourceBucket, string sourceKey, string targetBucket, string targetKey)
    {
        var (expected, sourceResponse) = await _sourceClient.GetAsync(sourceBucket, sourceKey);
        var (actual, targetResponse) = await _targetClient.GetAsync(targetBucket, targetKey);
        Assert.Equal(expected.Length, actual.Length);
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"bytes of '{targetKey}' differ");
        Assert.Equal(sourceResponse.Headers.ContentType, targetResponse.Headers.ContentType);
        foreach (var name in sourceResponse.Metadata.Keys) Assert.Equal(sourceResponse.Metadata[name], targetResponse.Metadata[name]);
        Assert.Equal(sourceResponse.Metadata.Count, targetResponse.Metadata.Count);
    }

    [Fact]
    public async Task Copies_objects_byte_exact_with_content_type_and_metadata_and_awkward_keys()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        var keys = new List<string> { "plain.txt", "empty.bin", "dir/", "with space/file name.txt", "unicode-ü-日本語-é.txt", "sym+%?#&=.txt", "deep/a/b/c/d.json" };
        if (SupportsPathHostileKeys)
        {
            keys.AddRange(["a//double-slash.txt", "k-" + new string('x', 1022), "ctl-\u0001-cr-\r-tab-\t.txt", "  spaced  "]);
        }
        for (var i = 0; i < keys.Count; i++)
        {
            var content = keys[i] is "empty.bin" or "dir/" ? [] : TestEndpoints.Bytes(1000 + i * 777, i);
            await _sourceClient.PutAsync(source, keys[i], content, i % 2 == 0 ? "text/plain" : "application/json",
                new Dictionary<string, string> { ["origin"] = "test", ["index"] = i.ToString() });
        }

        var (job, progress) = await MigrateAsync(source, target);

        Assert.Equal(JobState.Completed, job.State);
        Assert.Equal(keys.Count, progress.Objects);
        Assert.Equal(keys.Count, progress.TransferredObjects);
        Assert.Equal(0, progress.FailedObjects);
        Assert.Equal(keys.Order(StringComparer.Ordinal), (await _targetClient.KeysAsync(target)).Order(StringComparer.Ordinal));
        foreach (var key in keys) await AssertSameObjectAsync(source, key, target, key);
    }

    [Fact]
    public async Task Keeps_content_headers_and_user_metadata()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        await _sourceClient.PutAsync(source, "page.html.gz", TestEndpoints.Bytes(3000, 5), "text/html; charset=utf-8",
            new Dictionary<string, string> { ["author"] = "ada", ["reviewed"] = "yes" }, r =>
            {
                r.Headers.ContentEncoding = "gzip";
                r.Headers.ContentDisposition = "attachment; filename=\"page.html\"";
                r.Headers.CacheControl = "max-age=3600";
                r.Headers["Content-Language"] = "en-GB";
                r.Headers["Expires"] = "Wed, 21 Oct 2037 07:28:00 GMT";
            });

        var (job, _) = await MigrateAsync(source, target);

        Assert.Equal(JobState.Completed, job.State);
        var sourceHead = await _sourceClient.GetObjectMetadataAsync(source, "page.html.gz");
        var targetHead = await _targetClient.GetObjectMetadataAsync(target, "page.html.gz");
        Assert.Equal(sourceHead.Headers.ContentType, targetHead.Headers.ContentType);
        Assert.Equal("gzip", targetHead.Headers.ContentEncoding);
        Assert.Equal(sourceHead.Headers.ContentDisposition, targetHead.Headers.ContentDisposition);
        Assert.Equal("max-age=3600", targetHead.Headers.CacheControl);
        Assert.Equal(sourceHead.Headers["Content-Language"], targetHead.Headers["Content-Language"]);
        Assert.Equal(sourceHead.ExpiresString, targetHead.ExpiresString);
        Assert.Equal("ada", targetHead.Metadata["author"]);
        Assert.Equal("yes", targetHead.Metadata["reviewed"]);
        await AssertSameObjectAsync(source, "page.html.gz", target, "page.html.gz");
    }

    [Fact]
    public async Task Lists_across_pages_and_copies_every_key_once()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        const int count = 1050;
        var keys = Enumerable.Range(0, count).Select(i => $"many/{i:d5}.txt").ToList();
        foreach (var chunk in keys.Chunk(32))
        {
            await Task.WhenAll(chunk.Select(k => _sourceClient.PutAsync(source, k, System.Text.Encoding.UTF8.GetBytes(k))));
        }

        var (job, progress) = await MigrateAsync(source, target);

        Assert.Equal(JobState.Completed, job.State);
        Assert.Equal(count, progress.Objects);
        Assert.Equal(count, progress.TransferredObjects);
        Assert.Equal(keys, (await _targetClient.KeysAsync(target)).Order(StringComparer.Ordinal));
        var (sample, _) = await _targetClient.GetAsync(target, "many/01049.txt");
        Assert.Equal("many/01049.txt", System.Text.Encoding.UTF8.GetString(sample));
    }

    [Fact]
    public async Task Multipart_copy_of_an_object_that_is_not_a_multiple_of_the_part_size()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        var content = TestEndpoints.Bytes(12 * 1024 * 1024 + 12345, 7);
        await _sourceClient.PutAsync(source, "big/object.bin", content, "video/mp4", new Dictionary<string, string> { ["camera"] = "a" });

        var (job, progress) = await MigrateAsync(source, target, r =>
        {
            r.MultipartThreshold = 5 * 1024 * 1024;
            r.PartSize = 5 * 1024 * 1024;
        });

        Assert.Equal(JobState.Completed, job.State);
        Assert.Equal(content.Length, progress.TransferredBytes);
        await AssertSameObjectAsync(source, "big/object.bin", target, "big/object.bin");
        if (Target.Kind != "s3rver")
        {
            var head = await _targetClient.GetObjectMetadataAsync(target, "big/object.bin");
            Assert.EndsWith("-3\"", head.ETag);
        }
        Assert.Empty(_engine.Store.GetOpenUploads(job.Id));
    }

    [Fact]
    public async Task Overwrite_modes_skip_or_replace_what_the_target_already_has()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        await _sourceClient.PutAsync(source, "same.txt", TestEndpoints.Bytes(500, 1));
        await _sourceClient.PutAsync(source, "changed.txt", TestEndpoints.Bytes(600, 2));
        await _sourceClient.PutAsync(source, "new.txt", TestEndpoints.Bytes(700, 3));
        await _targetClient.PutAsync(target, "same.txt", TestEndpoints.Bytes(500, 1));
        await _targetClient.PutAsync(target, "changed.txt", TestEndpoints.Bytes(601, 9));

        var (never, neverProgress) = await MigrateAsync(source, target, r => r.Overwrite = OverwriteMode.Never);
        Assert.Equal(JobState.Completed, never.State);
        Assert.Equal(1, neverProgress.TransferredObjects);
        Assert.Equal(2, neverProgress.SkippedObjects);
        Assert.Equal(601, (await _targetClient.GetAsync(target, "changed.txt")).Content.Length);
        Assert.Equal(2, _engine.Store.GetLogs(never.Id, new LogQuery { Types = [LogType.ImportSkippedExists] }).Count);

        var (different, differentProgress) = await MigrateAsync(source, target);
        Assert.Equal(1, differentProgress.TransferredObjects);
        Assert.Equal(2, differentProgress.SkippedObjects);
        await AssertSameObjectAsync(source, "changed.txt", target, "changed.txt");

        var (always, alwaysProgress) = await MigrateAsync(source, target, r => r.Overwrite = OverwriteMode.Always);
        Assert.Equal(JobState.Completed, always.State);
        Assert.Equal(3, alwaysProgress.TransferredObjects);
    }

    [Fact]
    public async Task Filters_and_target_prefix_select_and_place_objects()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        await _sourceClient.PutAsync(source, "logs/a.log", TestEndpoints.Bytes(100, 1));
        await _sourceClient.PutAsync(source, "logs/b.tmp", TestEndpoints.Bytes(100, 2));
        await _sourceClient.PutAsync(source, "logs/huge.log", TestEndpoints.Bytes(5000, 3));
        await _sourceClient.PutAsync(source, "logs/tiny.log", TestEndpoints.Bytes(5, 4));
        await _sourceClient.PutAsync(source, "images/c.log", TestEndpoints.Bytes(100, 5));
        await _sourceClient.PutAsync(source, "logs/page.html", TestEndpoints.Bytes(100, 6), "text/html");

        var (job, progress) = await MigrateAsync(source, target, r =>
        {
            r.SourcePrefix = "logs/";
            r.TargetPrefix = "archive/2026/";
            r.Filter = new ObjectFilter { Include = ["*.log", "*.html"], Exclude = ["*/b.*"], MinSize = 10, MaxSize = 1000, ExcludeContentType = ["text/*"] };
        });

        Assert.Equal(JobState.Completed, job.State);
        Assert.Equal(["archive/2026/logs/a.log"], await _targetClient.KeysAsync(target));
        Assert.Equal(2, progress.Objects);
        Assert.Equal(1, progress.SkippedObjects);
        Assert.Single(_engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.ImportSkippedExcludedContentType] }));
        await AssertSameObjectAsync(source, "logs/a.log", target, "archive/2026/logs/a.log");
    }

    [Fact]
    public async Task Overwrite_IfSourceNewer_copies_only_what_changed_at_the_source_since()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        await _sourceClient.PutAsync(source, "target-is-newer.txt", TestEndpoints.Bytes(100, 1));
        await _targetClient.PutAsync(target, "source-is-newer.txt", TestEndpoints.Bytes(100, 2));
        await NextSecondAsync();
        await NextSecondAsync();
        await _targetClient.PutAsync(target, "target-is-newer.txt", TestEndpoints.Bytes(100, 3));
        await _sourceClient.PutAsync(source, "source-is-newer.txt", TestEndpoints.Bytes(100, 4));

        var (job, progress) = await MigrateAsync(source, target, r => r.Overwrite = OverwriteMode.IfSourceNewer);

        Assert.Equal(JobState.Completed, job.State);
        Assert.Equal(1, progress.TransferredObjects);
        Assert.Equal(1, progress.SkippedObjects);
        await AssertSameObjectAsync(source, "source-is-newer.txt", target, "source-is-newer.txt");
        var (kept, _) = await _targetClient.GetAsync(target, "target-is-newer.txt");
        Assert.Equal(TestEndpoints.Bytes(100, 3), kept);
    }

    [Fact]
    public async Task ModifiedAfter_and_ModifiedBefore_select_by_last_modified()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        await _sourceClient.PutAsync(source, "old.txt", TestEndpoints.Bytes(10, 1));
        var cutoff = await NextSecondAsync();
        // Some servers keep whole seconds: the new object goes in the second after the cutoff's.
        await NextSecondAsync();
        await _sourceClient.PutAsync(source, "new.txt", TestEndpoints.Bytes(10, 2));

        var (after, _) = await MigrateAsync(source, target, r => r.Filter = new ObjectFilter { ModifiedAfter = cutoff });
        Assert.Equal(["new.txt"], await _targetClient.KeysAsync(target));
        var target2 = await _targetClient.NewBucketAsync();
        var (before, _) = await MigrateAsync(source, target2, r => r.Filter = new ObjectFilter { ModifiedBefore = cutoff });
        Assert.Equal(["old.txt"], await _targetClient.KeysAsync(target2));
        Assert.Equal(JobState.Completed, after.State);
        Assert.Equal(JobState.Completed, before.State);
    }

    [Fact]
    public async Task An_explicit_key_list_copies_just_those_keys_and_logs_the_missing_one()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        foreach (var key in new[] { "k/1", "k/2", "k/3" }) await _sourceClient.PutAsync(source, key, TestEndpoints.Bytes(50, key.Length));

        var (job, progress) = await MigrateAsync(source, target, r => r.Keys = ["k/3", "k/1", "k/missing"]);

        Assert.Equal(JobState.Completed, job.State);
        Assert.Equal(["k/1", "k/3"], (await _targetClient.KeysAsync(target)).Order(StringComparer.Ordinal));
        Assert.Equal(2, progress.Objects);
        Assert.Contains(_engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.MigrationError] }), l => l.ObjectKey == "k/missing");
    }

    /// <summary>Waits until the wall clock is in a later second than now (S3 dates have one-second resolution); returns that second.</summary>
    private static async Task<DateTimeOffset> NextSecondAsync()
    {
        var now = DateTimeOffset.UtcNow;
        var next = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, now.Minute, now.Second, TimeSpan.Zero).AddSeconds(1);
        while (DateTimeOffset.UtcNow < next.AddMilliseconds(50)) await Task.Delay(20);
        return next;
    }

    [Fact]
    public async Task Resume_after_pause_mid_multipart_reuses_finished_parts()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        var content = TestEndpoints.Bytes(6 * 5 * 1024 * 1024 - 1000, 11);
        await _sourceClient.PutAsync(source, "resume/big.bin", content);
        var job = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target,
            Concurrency = 1, MultipartThreshold = 5 * 1024 * 1024, PartSize = 5 * 1024 * 1024, MaxBytesPerSecond = 8 * 1024 * 1024,
        });

        var firstRun = _engine.RunJobAsync(job.Id, FastRetries, CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _engine.Store.GetUploadedParts(job.Id, "resume/big.bin").Count >= 2, TimeSpan.FromSeconds(60));
        _engine.RequestPause(job.Id);
        Assert.Equal(JobState.Paused, await firstRun);
        var kept = _engine.Store.GetUploadedParts(job.Id, "resume/big.bin");
        var uploadId = _engine.Store.GetUploadId(job.Id, "resume/big.bin");
        Assert.InRange(kept.Count, 2, 5);
        Assert.NotNull(uploadId);

        var sourceAccess = _engine.GetAccess(_engine.GetConnector("source"));
        var targetAccess = _engine.GetAccess(_engine.GetConnector("target"));
        using var sourceStore = MigrationEngine.OpenObjectStore(sourceAccess);
        using var targetStore = new CountingObjectStore(MigrationEngine.OpenObjectStore(targetAccess));
        var resumed = _engine.PrepareResume(job.Id, retryFailed: false);
        var state = await new MigrationRunner(_engine.Store, resumed, sourceStore, targetStore, FastRetries).RunAsync(CancellationToken.None);

        Assert.Equal(JobState.Completed, state);
        Assert.Equal(6 - kept.Count, targetStore.PartsUploaded);
        Assert.Equal(0, targetStore.UploadsStarted);
        var (actual, _) = await _targetClient.GetAsync(target, "resume/big.bin");
        Assert.True(content.AsSpan().SequenceEqual(actual));
        Assert.Contains(_engine.Store.GetLogs(job.Id, new LogQuery()), l => l.Type == LogType.MigrationResume);
    }

    [Fact]
    public async Task Stop_aborts_open_multipart_uploads_and_ends_cancelled()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        await _sourceClient.PutAsync(source, "stop/big.bin", TestEndpoints.Bytes(4 * 5 * 1024 * 1024, 12));
        var job = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target,
            Concurrency = 1, MultipartThreshold = 5 * 1024 * 1024, PartSize = 5 * 1024 * 1024, MaxBytesPerSecond = 8 * 1024 * 1024,
        });

        var run = _engine.RunJobAsync(job.Id, FastRetries, CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _engine.Store.GetUploadedParts(job.Id, "stop/big.bin").Count >= 1, TimeSpan.FromSeconds(60));
        await _engine.RequestStopAsync(job.Id, CancellationToken.None);

        Assert.Equal(JobState.Cancelled, await run);
        Assert.Empty(_engine.Store.GetOpenUploads(job.Id));
        Assert.Empty(await _targetClient.KeysAsync(target));
        if (Target.Kind != "s3rver")
        {
            var uploads = await _targetClient.ListMultipartUploadsAsync(target);
            Assert.Empty(uploads.MultipartUploads ?? []);
        }
    }

    [Fact]
    public async Task A_missing_source_bucket_fails_the_job_and_says_what_to_fix()
    {
        var target = await _targetClient.NewBucketAsync();

        var (job, _) = await MigrateAsync("no-such-bucket-" + Guid.NewGuid().ToString("n")[..8], target);

        Assert.Equal(JobState.Failed, job.State);
        Assert.Contains("source bucket", job.Error);
        Assert.Contains(_engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.MigrationError] }), l => l.Message.Contains("SourceBucket"));
    }
}

public sealed class S3rverToRgw : ConformanceSuite
{
    protected override S3Endpoint Source => TestEndpoints.S3rverSource;
    protected override S3Endpoint Target => TestEndpoints.Rgw;
}

public sealed class RgwToS3rver : ConformanceSuite
{
    protected override S3Endpoint Source => TestEndpoints.Rgw;
    protected override S3Endpoint Target => TestEndpoints.S3rverTarget;
}

/// <summary>Same endpoint and credentials on both sides: copies are server-side (CopyObject, UploadPartCopy).</summary>
public sealed class RgwServerSide : ConformanceSuite
{
    protected override S3Endpoint Source => TestEndpoints.Rgw;
    protected override S3Endpoint Target => TestEndpoints.Rgw;
}

/// <summary>Two gateways of one cluster: different endpoints, so bytes stream through the client between real servers.</summary>
public sealed class RgwToRgwStreaming : ConformanceSuite
{
    protected override S3Endpoint Source => TestEndpoints.Rgw;
    protected override S3Endpoint Target => TestEndpoints.RgwSecondGateway;
}
