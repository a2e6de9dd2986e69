using Amazon.S3;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Transient and fatal failures injected between the engine and real s3rver endpoints.</summary>
public sealed class FaultToleranceTests : IAsyncLifetime
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-faults-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly AmazonS3Client _sourceClient = TestEndpoints.S3rverSource.Client();
    private readonly AmazonS3Client _targetClient = TestEndpoints.S3rverTarget.Client();
    private MigrationEngine _engine = null!;
    private FaultProxy _sourceProxy = null!;
    private FaultProxy _targetProxy = null!;

    private static readonly RunnerOptions QuickRetries = TestEndpoints.QuickRunner;

    public async Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        _sourceProxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource.Endpoint);
        _targetProxy = await FaultProxy.StartAsync(TestEndpoints.S3rverTarget.Endpoint);
        Add("source", _sourceProxy.Endpoint, TestEndpoints.S3rverSource);
        Add("target", _targetProxy.Endpoint, TestEndpoints.S3rverTarget);
    }

    private void Add(string name, string endpoint, S3Endpoint credentials) =>
        _engine.AddConnector(new CloudConnector { Name = name, Endpoint = endpoint }, credentials.AccessKey, credentials.SecretKey, pathStyleGiven: false);

    public async Task DisposeAsync()
    {
        await _sourceProxy.DisposeAsync();
        await _targetProxy.DisposeAsync();
        _sourceClient.Dispose();
        _targetClient.Dispose();
    }

    private async Task<(string Source, string Target, Dictionary<string, byte[]> Seeded)> SeedAsync(int count)
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        var seeded = new Dictionary<string, byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = $"f/{i:d3}.bin";
            seeded[key] = TestEndpoints.Bytes(4000 + i * 100, i);
            await _sourceClient.PutAsync(source, key, seeded[key]);
        }
        return (source, target, seeded);
    }

    /// <summary>More attempts than faults injected in all: even if every fault lands on one object, it gets through.</summary>
    private static readonly RunnerOptions PatientRetries = new()
    {
        Retry = new RetryPolicy { MaxAttempts = 12, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) },
        ControlInterval = TimeSpan.FromMilliseconds(100),
        FlushInterval = TimeSpan.FromMilliseconds(100),
    };

    private async Task<MigrationJob> RunAsync(string source, string target, Guid? existing = null, RunnerOptions? options = null)
    {
        var id = existing ?? _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target, Concurrency = 4,
        }).Id;
        await _engine.RunJobAsync(id, options ?? QuickRetries, CancellationToken.None);
        return _engine.GetJob(id);
    }

    private async Task AssertTargetHoldsAsync(string target, Dictionary<string, byte[]> seeded)
    {
        Assert.Equal(seeded.Keys.Order(StringComparer.Ordinal), (await _targetClient.KeysAsync(target)).Order(StringComparer.Ordinal));
        foreach (var (key, bytes) in seeded)
        {
            var (actual, _) = await _targetClient.GetAsync(target, key);
            Assert.True(bytes.AsSpan().SequenceEqual(actual), $"bytes of {key} differ");
        }
    }

    [Fact]
    public async Task Retries_then_succeeds_on_injected_503s_resets_and_truncated_bodies()
    {
        var (source, target, seeded) = await SeedAsync(20);
        _sourceProxy.Inject(Fault.SlowDown, 3, FaultProxy.IsObjectGet);
        _sourceProxy.Inject(Fault.TruncatedBody, 2, FaultProxy.IsObjectGet);
        _targetProxy.Inject(Fault.Reset, 3, FaultProxy.IsObjectPut);
        _targetProxy.Inject(Fault.SlowDown, 2, FaultProxy.IsObjectPut);

        var job = await RunAsync(source, target, options: PatientRetries);

        var failures = string.Join("; ", _engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.MigrationError, LogType.ImportErrorRetryExhaustion] }).Select(l => l.Message));
        Assert.True(job.State == JobState.Completed, $"{job.State}: {failures}");
        var progress = _engine.Store.GetProgress(job.Id);
        Assert.Equal(20, progress.TransferredObjects);
        Assert.Equal(0, progress.FailedObjects);
        Assert.Equal(5, _sourceProxy.Served(Fault.SlowDown) + _sourceProxy.Served(Fault.TruncatedBody));
        Assert.Equal(5, _targetProxy.Served(Fault.Reset) + _targetProxy.Served(Fault.SlowDown));
        await AssertTargetHoldsAsync(target, seeded);
    }

    [Fact]
    public async Task Bytes_corrupted_on_the_way_from_the_source_never_stay_on_the_target()
    {
        var (source, target, seeded) = await SeedAsync(6);
        // The client does not re-hash bodies whose source ETag is their MD5: the target's checks must catch this.
        _sourceProxy.Inject(Fault.CorruptBody, 2, FaultProxy.IsObjectGet);

        var job = await RunAsync(source, target, options: PatientRetries);

        Assert.Equal(2, _sourceProxy.Served(Fault.CorruptBody));
        Assert.True(job.State == JobState.Completed, job.State.ToString());
        Assert.Equal(6, _engine.Store.GetProgress(job.Id).TransferredObjects);
        await AssertTargetHoldsAsync(target, seeded);
    }

    [Fact]
    public async Task Retry_exhaustion_is_logged_and_counted_the_job_goes_on_and_RetryFailed_finishes_it()
    {
        var (source, target, seeded) = await SeedAsync(6);
        _targetProxy.Inject(Fault.SlowDown, int.MaxValue, r => FaultProxy.IsObjectPut(r) && r.Path.Value!.EndsWith("/f/002.bin", StringComparison.Ordinal));

        var job = await RunAsync(source, target);

        Assert.Equal(JobState.CompletedWithErrors, job.State);
        var progress = _engine.Store.GetProgress(job.Id);
        Assert.Equal(5, progress.TransferredObjects);
        Assert.Equal(1, progress.FailedObjects);
        var exhausted = Assert.Single(_engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.ImportErrorRetryExhaustion] }));
        Assert.Equal("f/002.bin", exhausted.ObjectKey);
        Assert.Contains("SlowDown", exhausted.Message);
        Assert.Equal(QuickRetries.Retry.MaxAttempts, _targetProxy.Served(Fault.SlowDown));

        _targetProxy.Clear();
        _engine.PrepareResume(job.Id, retryFailed: true);
        var retried = await RunAsync(source, target, job.Id);

        Assert.Equal(JobState.Completed, retried.State);
        Assert.Equal(6, _engine.Store.GetProgress(job.Id).TransferredObjects);
        await AssertTargetHoldsAsync(target, seeded);
    }

    [Fact]
    public async Task A_target_that_is_down_fails_the_job_instead_of_reporting_success()
    {
        var (source, _, _) = await SeedAsync(3);
        var closedPort = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        closedPort.Start();
        var port = ((System.Net.IPEndPoint)closedPort.LocalEndpoint).Port;
        closedPort.Stop();
        _engine.AddConnector(new CloudConnector { Name = "down", Endpoint = $"http://127.0.0.1:{port}" }, "S3RVER", "S3RVER", pathStyleGiven: false);
        var job = _engine.CreateJob(new MigrationJobRequest { SourceConnector = "source", SourceBucket = source, TargetConnector = "down", TargetBucket = "anything" });

        var state = await _engine.RunJobAsync(job.Id, QuickRetries, CancellationToken.None);

        Assert.Equal(JobState.Failed, state);
        Assert.Contains("refused", _engine.GetJob(job.Id).Error);
        Assert.Contains($"127.0.0.1:{port}", _engine.GetJob(job.Id).Error);
    }

    // ---- A runner presumed gone (a late heartbeat) ----

    private static bool IsPartPut(Microsoft.AspNetCore.Http.HttpRequest r) => r.Method == "PUT" && r.Query.ContainsKey("partNumber");

    private static bool IsUploadAbort(Microsoft.AspNetCore.Http.HttpRequest r) => r.Method == "DELETE" && r.Query.ContainsKey("uploadId");

    /// <summary>What another process's Get-MigrationJob does: Running jobs with a heartbeat older than <paramref name="stale"/> become Interrupted.</summary>
    private int ObserveFromAnotherProcess(TimeSpan stale) => _engine.Store.MarkStaleJobsInterrupted(stale, []);

    private JobState StoredState(Guid id) => _engine.Store.FindJob(id)!.State;

    [Fact]
    public async Task A_stop_while_the_target_stalls_settles_Cancelled_though_aborting_outlasts_the_stale_limit()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        await _sourceClient.PutAsync(source, "stall/big.bin", TestEndpoints.Bytes(11 * 1024 * 1024, 21));
        var id = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target,
            Concurrency = 2, MultipartThreshold = 5 * 1024 * 1024, PartSize = 5 * 1024 * 1024,
        }).Id;
        _targetProxy.Inject(Fault.Hang, int.MaxValue, r => IsPartPut(r) || IsUploadAbort(r));
        var staleLimit = TimeSpan.FromSeconds(1.5);
        var options = new RunnerOptions
        {
            Retry = QuickRetries.Retry, ControlInterval = QuickRetries.ControlInterval, FlushInterval = QuickRetries.FlushInterval,
            AbortTimeout = TimeSpan.FromSeconds(4),
        };

        var run = _engine.RunJobAsync(id, options, CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _targetProxy.Served(Fault.Hang) >= 1 && _engine.Store.GetOpenUploads(id).Count == 1, TimeSpan.FromSeconds(30));
        await _engine.RequestStopAsync(id, CancellationToken.None);
        // The abort hangs for AbortTimeout, longer than the stale limit other processes apply meanwhile.
        while (!run.IsCompleted)
        {
            ObserveFromAnotherProcess(staleLimit);
            await Task.WhenAny(run, Task.Delay(100));
        }

        Assert.Equal(JobState.Cancelled, await run);
        Assert.Equal(JobState.Cancelled, StoredState(id));
        Assert.Contains(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.MigrationError] }), l => l.Message.Contains("Could not abort"));
        Assert.Empty(_engine.Store.GetOpenUploads(id));
        Assert.Empty(await _targetClient.KeysAsync(target));
    }

    /// <summary>A job of six objects, running, with its first PUT to the target hanging until the proxy is released.</summary>
    private async Task<(Guid Id, string Target, Dictionary<string, byte[]> Seeded, Task<JobState> Run)> StartWhileTheTargetHangsAsync()
    {
        var (source, target, seeded) = await SeedAsync(6);
        _targetProxy.Inject(Fault.Hang, int.MaxValue, FaultProxy.IsObjectPut);
        var id = _engine.CreateJob(new MigrationJobRequest { SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target, Concurrency = 2 }).Id;
        var run = _engine.RunJobAsync(id, QuickRetries, CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _targetProxy.Served(Fault.Hang) >= 1, TimeSpan.FromSeconds(30));
        return (id, target, seeded, run);
    }

    [Fact]
    public async Task A_job_marked_Interrupted_while_its_runner_lives_is_taken_back_and_completes()
    {
        var (id, target, seeded, run) = await StartWhileTheTargetHangsAsync();
        Assert.Equal(1, ObserveFromAnotherProcess(TimeSpan.Zero));
        await TestEndpoints.WaitUntilAsync(() => _engine.Store.FindJob(id) is { State: JobState.Running, Phase: JobPhase.Transferring }, TimeSpan.FromSeconds(10));
        _targetProxy.Release();

        Assert.Equal(JobState.Completed, await run);
        Assert.Equal(JobState.Completed, StoredState(id));
        await AssertTargetHoldsAsync(target, seeded);
        Assert.Contains(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.MigrationResume] }), l => l.Message.Contains("was late"));
    }

    [Fact]
    public async Task A_runner_whose_job_was_resumed_elsewhere_stops_and_leaves_the_job_to_its_successor()
    {
        var (id, target, seeded, first) = await StartWhileTheTargetHangsAsync();
        // Another process found the job Interrupted and resumed it (Interrupted -> Pending), in one step so the
        // first runner cannot take the job back in between.
        ResumeAsIfElsewhere(id);

        Assert.Equal(JobState.Pending, await first.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(JobState.Pending, StoredState(id));
        Assert.Contains(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.MigrationAbort] }), l => l.Message.Contains("presumed gone"));
        _targetProxy.Release();
        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, QuickRetries, CancellationToken.None));
        await AssertTargetHoldsAsync(target, seeded);
    }

    private void ResumeAsIfElsewhere(Guid id)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_engine.Store.Location}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE jobs SET state = 'Pending', phase = NULL WHERE id = $id AND state = 'Running'";
        command.Parameters.AddWithValue("$id", id.ToString());
        Assert.Equal(1, command.ExecuteNonQuery());
    }

    // ---- Scheduling against the listing ----

    private async Task<JobState> RunThroughAsync(Guid id, IStateStore store)
    {
        using var sourceStore = MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("source")));
        using var targetStore = MigrationEngine.OpenObjectStore(_engine.GetAccess(_engine.GetConnector("target")));
        return await new MigrationRunner(store, _engine.GetJob(id), sourceStore, targetStore, QuickRetries).RunAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_listing_that_finishes_while_the_scheduler_finds_nothing_pending_still_gets_every_object_copied()
    {
        var (source, target, seeded) = await SeedAsync(4);
        var id = _engine.CreateJob(new MigrationJobRequest { SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target, Concurrency = 2 }).Id;
        using var listingSaved = new ManualResetEventSlim();
        var held = 0;
        var store = InterceptedStateStore.Wrap(_engine.Store, (method, args, result) =>
        {
            if (method == nameof(IStateStore.SaveListingPage) && args[3] is true && args[4] is false) listingSaved.Set();
            if (method == nameof(IStateStore.ClaimBatches) && result is IReadOnlyList<ObjectBatch> { Count: 0 } && Interlocked.Exchange(ref held, 1) == 0)
            {
                // The scheduler's first claim found nothing, the listing has not saved yet: hold that answer until the
                // listing saved its last page and (a moment later, on its own thread) finished.
                listingSaved.Wait(TimeSpan.FromSeconds(30));
                Thread.Sleep(200);
            }
            return result;
        });

        var state = await RunThroughAsync(id, store);

        Assert.Equal(1, held);
        Assert.Equal(JobState.Completed, state);
        Assert.Equal(4, _engine.GetProgress(id).TransferredObjects);
        await AssertTargetHoldsAsync(target, seeded);
    }

    [Fact]
    public async Task A_run_that_ends_with_objects_still_pending_fails_instead_of_reporting_success()
    {
        var (source, target, _) = await SeedAsync(3);
        var id = _engine.CreateJob(new MigrationJobRequest { SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target }).Id;
        // A scheduler that loses track of the plan: every look at it comes back empty.
        var store = InterceptedStateStore.Wrap(_engine.Store, (method, _, result) =>
            method == nameof(IStateStore.GetPendingObjects) ? new List<PendingObject>() : result);

        var state = await RunThroughAsync(id, store);

        Assert.Equal(JobState.Failed, state);
        var job = _engine.GetJob(id);
        Assert.Equal(JobState.Failed, job.State);
        Assert.Contains("3 of 3 objects were still pending", job.Error);
        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(_engine.PrepareResume(id, retryFailed: true).Id, QuickRetries, CancellationToken.None));
        Assert.Equal(3, _engine.GetProgress(id).TransferredObjects);
    }

    [Fact]
    public async Task A_stop_that_saw_the_job_Pending_while_a_runner_started_it_reaches_that_runner()
    {
        var (source, target, _) = await SeedAsync(6);
        // About 27 KB at 1 KB/s: the run cannot finish on its own before it sees a stop.
        var id = _engine.CreateJob(new MigrationJobRequest { SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target, MaxBytesPerSecond = 1024 }).Id;
        var stopping = new AsyncLocal<bool>();
        var raced = 0;
        Task<JobState>? run = null;
        MigrationEngine engine = null!;
        engine = MigrationEngine.OpenWrapped(_home, inner => InterceptedStateStore.Wrap(inner, (method, _, result) =>
        {
            if (stopping.Value && method == nameof(IStateStore.FindJob) && result is MigrationJob { State: JobState.Pending } && Interlocked.Exchange(ref raced, 1) == 0)
            {
                // The stop has just read the job as Pending; a runner starts it before the stop acts on that.
                run = engine.RunJobAsync(id, QuickRetries, CancellationToken.None);
                Assert.True(SpinWait.SpinUntil(() => inner.FindJob(id)!.State == JobState.Running, TimeSpan.FromSeconds(10)));
            }
            return result;
        }));

        stopping.Value = true;
        await engine.RequestStopAsync(id, CancellationToken.None);
        stopping.Value = false;

        Assert.Equal(1, raced);
        Assert.Equal(JobState.Cancelled, await run!.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(JobState.Cancelled, _engine.GetJob(id).State);
        Assert.True(_engine.GetProgress(id).TransferredObjects < 6);
    }
}
