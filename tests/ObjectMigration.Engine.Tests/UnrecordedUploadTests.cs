using Amazon.S3;
using Amazon.S3.Model;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// A multipart upload the job asked for but whose id never reached the state: the process was killed between the answer
/// and the save, or the answer was lost and the request sent again. Each is found by listing the key's uploads and
/// aborted, so no upload the job started is left open. Against Ceph RGW, which lists and aborts uploads.
/// </summary>
public sealed class UnrecordedUploadTests : IAsyncLifetime
{
    private const int Part = 5 * 1024 * 1024;
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-unrecorded-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly AmazonS3Client _client = TestEndpoints.Rgw.Client();
    private MigrationEngine _engine = null!;
    private FaultProxy _targetProxy = null!;
    private string _source = "", _target = "";
    private readonly byte[] _content = TestEndpoints.Bytes(2 * Part + 1234, seed: 19);

    public async Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        _targetProxy = await FaultProxy.StartAsync(TestEndpoints.Rgw.Endpoint);
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = TestEndpoints.Rgw.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = _targetProxy.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
        _source = await _client.NewBucketAsync();
        _target = await _client.NewBucketAsync();
        await _client.PutAsync(_source, "big.bin", _content);
    }

    public async Task DisposeAsync()
    {
        await _targetProxy.DisposeAsync();
        _client.Dispose();
    }

    private Guid CreateJob() => _engine.CreateJob(new MigrationJobRequest
    {
        SourceConnector = "source", SourceBucket = _source, TargetConnector = "target", TargetBucket = _target,
        Concurrency = 2, MultipartThreshold = Part, PartSize = Part,
    }).Id;

    private async Task<string> OpenUploadAsync(string key) =>
        (await _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _target, Key = key })).UploadId;

    private async Task<List<MultipartUpload>> OpenUploadsAsync() =>
        (await _client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = _target })).MultipartUploads ?? [];

    private async Task AssertCopiedAsync(Guid id)
    {
        Assert.Equal(JobState.Completed, _engine.GetJob(id).State);
        var (stored, _) = await _client.GetAsync(_target, "big.bin");
        Assert.True(_content.AsSpan().SequenceEqual(stored), "the target's bytes differ from the source's");
    }

    [Fact]
    public async Task An_upload_a_kill_left_unrecorded_is_aborted_by_the_next_run_and_no_other_upload_is_touched()
    {
        var id = CreateJob();
        // What a run killed between CreateMultipartUpload's answer and saving its id leaves: the request recorded, the upload open.
        _engine.Store.SaveUploadRequested(id, "big.bin", DateTimeOffset.UtcNow);
        var orphan = await OpenUploadAsync("big.bin");
        // Someone else's upload on a key that merely starts with the job's key.
        var foreign = await OpenUploadAsync("big.bin.other");

        await _engine.RunJobAsync(id, TestEndpoints.QuickRunner, CancellationToken.None);

        await AssertCopiedAsync(id);
        var open = await OpenUploadsAsync();
        Assert.DoesNotContain(open, u => u.UploadId == orphan);
        Assert.Equal([foreign], open.Select(u => u.UploadId));
        Assert.Empty(_engine.Store.GetRequestedUploads(id));
        Assert.Contains(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.MigrationNotice] }),
            l => l.ObjectKey == "big.bin" && l.Message.Contains("Aborted 1 multipart upload"));
    }

    [Fact]
    public async Task A_lost_answer_to_CreateMultipartUpload_leaves_no_second_upload_open()
    {
        // The server opens the upload, then the connection drops mid-answer: the retry opens another one.
        _targetProxy.Inject(Fault.ResetMidBody, 1, r => r.Method == "POST" && r.Query.ContainsKey("uploads"));
        var id = CreateJob();

        await _engine.RunJobAsync(id, TestEndpoints.QuickRunner, CancellationToken.None);

        Assert.Equal(1, _targetProxy.Served(Fault.ResetMidBody));
        await AssertCopiedAsync(id);
        Assert.Empty(await OpenUploadsAsync());
    }

    [Fact]
    public async Task Stopping_a_job_no_runner_holds_aborts_its_recorded_and_its_unrecorded_uploads()
    {
        var id = CreateJob();
        _engine.Store.SaveUploadRequested(id, "big.bin", DateTimeOffset.UtcNow);
        await OpenUploadAsync("big.bin");
        _engine.Store.SaveUploadId(id, "other.bin", await OpenUploadAsync("other.bin"));
        Assert.Equal(2, (await OpenUploadsAsync()).Count);

        await _engine.RequestStopAsync(id, CancellationToken.None);

        Assert.Equal(JobState.Cancelled, _engine.GetJob(id).State);
        Assert.Empty(await OpenUploadsAsync());
        Assert.Empty(_engine.Store.GetOpenUploads(id));
        Assert.Empty(_engine.Store.GetRequestedUploads(id));
    }

    [Fact]
    public async Task A_key_with_spaces_plus_percent_and_non_ASCII_is_found_and_an_upload_begun_outside_the_request_is_left_alone()
    {
        var id = CreateJob();
        const string odd = "dir/a b+c%2Fü.bin", foreignKey = "other.bin";
        _engine.Store.SaveUploadRequested(id, odd, DateTimeOffset.UtcNow);
        var orphan = await OpenUploadAsync(odd);
        // Marked as asked for an hour from now: an upload begun now is before that request could have opened one.
        _engine.Store.SaveUploadRequested(id, foreignKey, DateTimeOffset.UtcNow.AddHours(1));
        var someoneElses = await OpenUploadAsync(foreignKey);

        await _engine.RequestStopAsync(id, CancellationToken.None);

        var open = await OpenUploadsAsync();
        var logs = string.Join(" | ", _engine.Store.GetLogs(id, new LogQuery()).Select(l => l.Message));
        Assert.False(open.Any(u => u.UploadId == orphan), logs);
        Assert.Equal([someoneElses], open.Select(u => u.UploadId));
        Assert.Empty(_engine.Store.GetRequestedUploads(id));
        await _client.AbortMultipartUploadAsync(_target, foreignKey, someoneElses);
    }

    [Fact]
    public async Task Removing_a_paused_job_aborts_the_uploads_it_kept_for_its_resume()
    {
        var id = CreateJob();
        _engine.Store.SaveUploadId(id, "big.bin", await OpenUploadAsync("big.bin"));
        Assert.True(_engine.Store.TryTransition(id, [JobState.Pending], JobState.Paused));

        await _engine.RemoveJobAsync(id, CancellationToken.None);

        Assert.Null(_engine.Store.FindJob(id));
        Assert.Empty(await OpenUploadsAsync());
    }
}
