using Amazon.S3;
using Amazon.S3.Model;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// A source object rewritten while it is copied (same size, other bytes): the target ends byte-identical to one whole
/// version, never a splice of two, and the log says what happened. Against Ceph RGW, which evaluates If-Match itself.
/// </summary>
public sealed class SourceChangeTests : IAsyncLifetime
{
    private const int Part = 5 * 1024 * 1024;
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-change-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly AmazonS3Client _client = TestEndpoints.Rgw.Client();
    private MigrationEngine _engine = null!;
    private FaultProxy _sourceProxy = null!;

    private static readonly RunnerOptions Quick = TestEndpoints.QuickRunner;

    public async Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        _sourceProxy = await FaultProxy.StartAsync(TestEndpoints.Rgw.Endpoint);
        // The source through the proxy and the target direct: different endpoints, so bytes stream through the client.
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = _sourceProxy.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = TestEndpoints.Rgw.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
    }

    public async Task DisposeAsync()
    {
        await _sourceProxy.DisposeAsync();
        _client.Dispose();
    }

    private static bool IsSecondPartGet(Microsoft.AspNetCore.Http.HttpRequest r) =>
        r.Method == "GET" && r.Headers.Range.ToString().StartsWith($"bytes={Part}-", StringComparison.Ordinal);

    private async Task<(string Source, string Target, Guid Id)> StartWithSecondPartHangingAsync(byte[] first)
    {
        var source = await _client.NewBucketAsync();
        var target = await _client.NewBucketAsync();
        await _client.PutAsync(source, "video.bin", first);
        _sourceProxy.Inject(Fault.Hang, 1, IsSecondPartGet);
        var id = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target,
            Concurrency = 1, MultipartThreshold = Part, PartSize = Part,
        }).Id;
        return (source, target, id);
    }

    private async Task AssertTargetIsWholeAsync(string target, byte[] expected, Guid id)
    {
        var (stored, _) = await _client.GetAsync(target, "video.bin");
        Assert.True(expected.AsSpan().SequenceEqual(stored), "the target holds another version or a mix of two");
        var uploads = await _client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = target });
        Assert.Empty(uploads.MultipartUploads ?? []);
        Assert.Equal(JobState.Completed, _engine.GetJob(id).State);
        var progress = _engine.GetProgress(id);
        Assert.Equal((1, 0L), (progress.TransferredObjects, progress.FailedObjects));
        Assert.Equal(expected.Length, progress.TotalBytes);
    }

    [Fact]
    public async Task A_source_rewritten_while_its_parts_are_copied_is_copied_again_whole_from_its_new_version()
    {
        var first = TestEndpoints.Bytes(3 * Part, 1);
        var second = TestEndpoints.Bytes(3 * Part, 2);
        var (source, target, id) = await StartWithSecondPartHangingAsync(first);

        var run = _engine.RunJobAsync(id, Quick, CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _sourceProxy.Served(Fault.Hang) == 1, TimeSpan.FromSeconds(30));
        // Part 1 is on the target; part 2's read waits. Now the object is rewritten: same size, other bytes.
        await _client.PutAsync(source, "video.bin", second);
        _sourceProxy.Release();

        Assert.Equal(JobState.Completed, await run.WaitAsync(TimeSpan.FromSeconds(60)));
        await AssertTargetIsWholeAsync(target, second, id);
        var changed = Assert.Single(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.ImportSourceChanged] }));
        Assert.Equal("video.bin", changed.ObjectKey);
        Assert.Contains("partial multipart upload was aborted", changed.Message);
    }

    [Fact]
    public async Task A_source_rewritten_between_a_suspend_and_a_resume_does_not_reuse_the_old_versions_parts()
    {
        var first = TestEndpoints.Bytes(3 * Part, 3);
        var second = TestEndpoints.Bytes(3 * Part, 4);
        var (source, target, id) = await StartWithSecondPartHangingAsync(first);

        var run = _engine.RunJobAsync(id, Quick, CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _sourceProxy.Served(Fault.Hang) == 1, TimeSpan.FromSeconds(30));
        _engine.RequestPause(id);
        Assert.Equal(JobState.Paused, await run.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Single(_engine.Store.GetOpenUploads(id));
        Assert.Single(_engine.Store.GetUploadedParts(id, "video.bin"));

        await _client.PutAsync(source, "video.bin", second);
        _sourceProxy.Release();
        _engine.PrepareResume(id, retryFailed: false);
        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));

        await AssertTargetIsWholeAsync(target, second, id);
        var changed = Assert.Single(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.ImportSourceChanged] }));
        Assert.Contains("partial multipart upload was aborted", changed.Message);
    }

    [Fact]
    public async Task A_small_source_rewritten_after_listing_is_copied_in_its_current_version()
    {
        var source = await _client.NewBucketAsync();
        var target = await _client.NewBucketAsync();
        await _client.PutAsync(source, "note.txt", TestEndpoints.Bytes(2000, 5));
        // Every object GET waits: the rewrite lands between the listing and the read, which If-Match then refuses.
        _sourceProxy.Inject(Fault.Hang, 1, FaultProxy.IsObjectGet);
        var id = _engine.CreateJob(new MigrationJobRequest { SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target }).Id;
        var run = _engine.RunJobAsync(id, Quick, CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _sourceProxy.Served(Fault.Hang) == 1, TimeSpan.FromSeconds(30));
        var second = TestEndpoints.Bytes(2500, 6);
        await _client.PutAsync(source, "note.txt", second);
        _sourceProxy.Release();

        Assert.Equal(JobState.Completed, await run.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(second, (await _client.GetAsync(target, "note.txt")).Content);
        var changed = Assert.Single(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.ImportSourceChanged] }));
        Assert.Contains("now: ETag", changed.Message);
        // The listing data follows the version that was copied.
        Assert.Equal(second.Length, _engine.GetProgress(id).TotalBytes);
    }

    [Fact]
    public async Task A_source_rewritten_during_server_side_part_copies_is_caught_before_completion_though_the_server_ignores_the_condition()
    {
        // Ceph, like R2, ignores x-amz-copy-source-if-match on UploadPartCopy: the parts after the rewrite come from the
        // new version. The source is checked again before completing, so the spliced upload is never completed.
        var source = await _client.NewBucketAsync();
        var target = await _client.NewBucketAsync();
        var first = TestEndpoints.Bytes(3 * Part, 7);
        var second = TestEndpoints.Bytes(3 * Part, 8);
        await _client.PutAsync(source, "video.bin", first);
        _engine.AddConnector(new CloudConnector { Name = "same-a", Endpoint = _sourceProxy.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
        _engine.AddConnector(new CloudConnector { Name = "same-b", Endpoint = _sourceProxy.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
        _sourceProxy.Inject(Fault.Hang, 1, r => FaultProxy.IsPartCopy(r) && r.Headers["x-amz-copy-source-range"].ToString().StartsWith($"bytes={Part}-", StringComparison.Ordinal));
        var id = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "same-a", SourceBucket = source, TargetConnector = "same-b", TargetBucket = target,
            Concurrency = 1, MultipartThreshold = Part, PartSize = Part,
        }).Id;

        var run = _engine.RunJobAsync(id, Quick, CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _sourceProxy.Served(Fault.Hang) == 1, TimeSpan.FromSeconds(30));
        await _client.PutAsync(source, "video.bin", second);
        _sourceProxy.Release();

        Assert.Equal(JobState.Completed, await run.WaitAsync(TimeSpan.FromSeconds(60)));
        await AssertTargetIsWholeAsync(target, second, id);
        Assert.Single(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.ImportSourceChanged] }));
        Assert.Contains("server-side", _engine.Store.StreamObjectReport(id).Single().VerifiedBy);
    }
}
