using System.Collections.Concurrent;
using Amazon.S3;
using Amazon.S3.Model;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// A run killed after its last copies reached the target but before it recorded them: the resumed run finds those
/// objects on the target and writes none of them again (no second version in a versioned bucket); an object the target
/// holds in other bytes, or past what the killed run handed to its workers, is copied as usual. Against Ceph RGW.
/// </summary>
public sealed class ResumeAfterKillTests : IAsyncLifetime
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-resume-kill-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly AmazonS3Client _client = TestEndpoints.Rgw.Client();
    private MigrationEngine _engine = null!;
    private FaultProxy _targetProxy = null!;
    private readonly ConcurrentQueue<(string Method, string Key)> _targetRequests = new();

    public async Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        _targetProxy = await FaultProxy.StartAsync(TestEndpoints.Rgw.Endpoint);
        _targetProxy.RequestArrived += r => { if (r.Path.Value!.Trim('/').Contains('/')) _targetRequests.Enqueue((r.Method, r.Path.Value!.Trim('/').Split('/', 2)[1])); };
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = TestEndpoints.Rgw.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = _targetProxy.Endpoint }, TestEndpoints.Rgw.AccessKey, TestEndpoints.Rgw.SecretKey, pathStyleGiven: false);
    }

    public async Task DisposeAsync()
    {
        await _targetProxy.DisposeAsync();
        _client.Dispose();
    }

    [Fact]
    public async Task Objects_a_killed_run_copied_but_never_recorded_are_not_written_again()
    {
        var source = await _client.NewBucketAsync();
        var target = await _client.NewBucketAsync();
        await _client.PutBucketVersioningAsync(new PutBucketVersioningRequest
        {
            BucketName = target, VersioningConfig = new S3BucketVersioningConfig { Status = VersionStatus.Enabled },
        });
        var content = Enumerable.Range(0, 6).ToDictionary(i => $"k{i}", i => TestEndpoints.Bytes(3000 + i, i));
        foreach (var (key, bytes) in content) await _client.PutAsync(source, key, bytes);
        // Overwrite Always lists no target: the resumed run cannot learn from a listing what the killed run copied (with
        // the other modes the killed run listed the target before its copies, so the listing does not show them either).
        var id = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target, Overwrite = OverwriteMode.Always,
        }).Id;

        // What a run killed mid-batch leaves: it started, handed k0..k3 to its workers, and k0..k2 reached the target
        // (k2 only in part: other bytes); no result was recorded, and the job is Interrupted.
        Assert.True(_engine.Store.TryStartRun(id, "killed-runner#1", JobPhase.Transferring));
        _engine.Store.SaveDispatchedThrough(id, "k3");
        await _client.PutAsync(target, "k0", content["k0"]);
        await _client.PutAsync(target, "k1", content["k1"]);
        await _client.PutAsync(target, "k2", TestEndpoints.Bytes(content["k2"].Length, seed: 99));
        Assert.True(_engine.Store.TryTransition(id, [JobState.Running], JobState.Interrupted));
        _engine.PrepareResume(id, retryFailed: false);

        var state = await _engine.RunJobAsync(id, TestEndpoints.QuickRunner, CancellationToken.None);

        Assert.Equal(JobState.Completed, state);
        // The run saved how far it dispatched, as the killed one had.
        Assert.Equal("k5", _engine.Store.GetDispatchedThrough(id));
        var puts = _targetRequests.Where(r => r.Method == "PUT").Select(r => r.Key).Order().ToList();
        Assert.Equal(["k2", "k3", "k4", "k5"], puts);
        // Only keys up to what the killed run dispatched are looked for on the target.
        Assert.Equal(["k0", "k1", "k2", "k3"], _targetRequests.Where(r => r.Method == "HEAD").Select(r => r.Key).Order().ToList());
        var versions = await _client.ListVersionsAsync(new ListVersionsRequest { BucketName = target });
        Assert.Equal(1, versions.Versions.Count(v => v.Key == "k0"));
        Assert.Equal(1, versions.Versions.Count(v => v.Key == "k1"));
        foreach (var (key, bytes) in content)
        {
            var (stored, _) = await _client.GetAsync(target, key);
            Assert.True(bytes.AsSpan().SequenceEqual(stored), key);
        }
        var progress = _engine.GetProgress(id);
        Assert.Equal((6L, 0L, 0L), (progress.TransferredObjects, progress.SkippedObjects, progress.FailedObjects));
        var rows = _engine.Store.StreamObjectReport(id).ToDictionary(r => r.Key);
        Assert.Equal(ObjectMigration.Engine.Transfer.Verification.FoundCopied, rows["k0"].VerifiedBy);
        Assert.NotEqual(ObjectMigration.Engine.Transfer.Verification.FoundCopied, rows["k2"].VerifiedBy);
    }
}
