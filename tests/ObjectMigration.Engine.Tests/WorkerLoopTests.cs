using System.Collections.Concurrent;
using System.Diagnostics;
using Amazon.S3;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Workers;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The worker loop against s3rver: which jobs it takes, how many at once, and how it ends them.</summary>
public sealed class WorkerLoopTests : IAsyncLifetime
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-workers-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly AmazonS3Client _sourceClient = TestEndpoints.S3rverSource.Client();
    private readonly AmazonS3Client _targetClient = TestEndpoints.S3rverTarget.Client();
    private MigrationEngine _engine = null!;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = TestEndpoints.S3rverSource.Endpoint }, TestEndpoints.S3rverSource.AccessKey, TestEndpoints.S3rverSource.SecretKey, pathStyleGiven: false);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = TestEndpoints.S3rverTarget.Endpoint }, TestEndpoints.S3rverTarget.AccessKey, TestEndpoints.S3rverTarget.SecretKey, pathStyleGiven: false);
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _sourceClient.Dispose();
        _targetClient.Dispose();
        return Task.CompletedTask;
    }

    private async Task<(string Source, Dictionary<string, byte[]> Seeded)> SeedAsync(int count, int size = 64 * 1024)
    {
        var source = await _sourceClient.NewBucketAsync();
        var seeded = new Dictionary<string, byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = $"w/{i:d3}.bin";
            seeded[key] = TestEndpoints.Bytes(size, 300 + i);
            await _sourceClient.PutAsync(source, key, seeded[key]);
        }
        return (source, seeded);
    }

    private async Task<MigrationJob> NewJobAsync(string source, bool detached, long bytesPerSecond = 0, int concurrency = 2) =>
        _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = await _targetClient.NewBucketAsync(),
            Concurrency = concurrency, MaxBytesPerSecond = bytesPerSecond,
        }, detached: detached);

    private async Task AssertTargetHoldsAsync(MigrationJob job, Dictionary<string, byte[]> seeded)
    {
        Assert.Equal(seeded.Keys.Order(StringComparer.Ordinal), (await _targetClient.KeysAsync(job.TargetBucket)).Order(StringComparer.Ordinal));
        foreach (var (key, bytes) in seeded)
        {
            var (actual, _) = await _targetClient.GetAsync(job.TargetBucket, key);
            Assert.True(bytes.AsSpan().SequenceEqual(actual), key);
        }
    }

    private static WorkerOptions Quick(int maxJobs = 4, TimeSpan? idleExit = null, int? concurrency = null) =>
        new() { MaxJobs = maxJobs, IdleExit = idleExit, Concurrency = concurrency, PollInterval = TimeSpan.FromMilliseconds(100) };

    [Fact]
    public async Task Runs_the_jobs_handed_to_workers_and_leaves_the_others_to_their_sessions_then_exits_when_idle()
    {
        var (source, seeded) = await SeedAsync(4);
        var detached = await NewJobAsync(source, detached: true);
        var sessionJob = await NewJobAsync(source, detached: false);
        var messages = new ConcurrentQueue<string>();
        var loop = new WorkerLoop(_engine, Quick(idleExit: TimeSpan.FromMilliseconds(500)));
        loop.Message += messages.Enqueue;

        var reason = await loop.RunAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(WorkerExitReason.Idle, reason);
        Assert.Equal(JobState.Completed, _engine.GetJob(detached.Id).State);
        await AssertTargetHoldsAsync(detached, seeded);
        Assert.Equal(JobState.Pending, _engine.GetJob(sessionJob.Id).State);
        Assert.Contains(messages, m => m.Contains($"Running job '{detached.Name}'"));
        Assert.Empty(_engine.GetWorkers());
    }

    [Fact]
    public async Task Never_runs_more_than_MaxJobs_at_once_and_caps_each_job_at_the_worker_concurrency()
    {
        var (source, _) = await SeedAsync(3);
        var jobs = new List<MigrationJob>();
        for (var i = 0; i < 3; i++) jobs.Add(await NewJobAsync(source, detached: true, bytesPerSecond: 256 * 1024, concurrency: 8));
        var loop = new WorkerLoop(_engine, Quick(maxJobs: 1, idleExit: TimeSpan.FromMilliseconds(300), concurrency: 2));
        var most = 0;
        var run = loop.RunAsync(CancellationToken.None);
        while (!run.IsCompleted)
        {
            most = Math.Max(most, _engine.GetJobs().Count(j => j.State == JobState.Running));
            await Task.WhenAny(run, Task.Delay(20));
        }
        Assert.Equal(WorkerExitReason.Idle, await run);
        Assert.Equal(1, most);
        foreach (var job in jobs)
        {
            Assert.Equal(JobState.Completed, _engine.GetJob(job.Id).State);
            var start = _engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.MigrationStart] }).Single();
            // The log names where the lower ceiling comes from: the job keeps its own.
            Assert.Contains("(up to 2, this worker's -Concurrency; the job's is 8)", start.Message);
            Assert.Equal(8, _engine.GetJob(job.Id).Concurrency);
        }
    }

    [Fact]
    public async Task A_stop_request_pauses_its_jobs_and_a_shutdown_leaves_them_Interrupted_for_the_next_worker()
    {
        var (source, seeded) = await SeedAsync(10);
        var job = await NewJobAsync(source, detached: true, bytesPerSecond: 128 * 1024);

        var first = new WorkerLoop(_engine, Quick());
        var firstRun = first.RunAsync(CancellationToken.None);
        await TestEndpoints.WaitUntilAsync(() => _engine.GetJob(job.Id).State == JobState.Running, Timeout);
        Assert.Equal([job.Name], _engine.GetWorkers().Single().Jobs);
        _engine.RequestWorkerStop(first.Worker.Id);
        Assert.Equal(WorkerExitReason.StopRequested, await firstRun.WaitAsync(Timeout));
        Assert.Equal(JobState.Paused, _engine.GetJob(job.Id).State);
        Assert.Empty(_engine.GetWorkers());

        // A paused job stays paused for a person to resume: a new worker does not take it.
        _engine.PrepareResume(job.Id, retryFailed: false);
        using var shutdown = new CancellationTokenSource();
        var second = new WorkerLoop(_engine, Quick());
        var secondRun = second.RunAsync(shutdown.Token);
        await TestEndpoints.WaitUntilAsync(() => _engine.GetJob(job.Id).State == JobState.Running, Timeout);
        shutdown.Cancel();
        Assert.Equal(WorkerExitReason.Shutdown, await secondRun.WaitAsync(Timeout));
        Assert.Equal(JobState.Interrupted, _engine.GetJob(job.Id).State);
        Assert.Contains(_engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.MigrationPause] }), l => l.Message.Contains("next worker continues"));

        var third = new WorkerLoop(_engine, Quick(idleExit: TimeSpan.FromMilliseconds(300)));
        Assert.Equal(WorkerExitReason.Idle, await third.RunAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(JobState.Completed, _engine.GetJob(job.Id).State);
        await AssertTargetHoldsAsync(job, seeded);
    }

    [Fact]
    public async Task Leaves_a_job_someone_paused_paused_also_when_it_shuts_down_right_after_the_pause()
    {
        var (source, _) = await SeedAsync(8);
        var pausedBeforeStart = await NewJobAsync(source, detached: true);
        _engine.RequestPause(pausedBeforeStart.Id);
        var job = await NewJobAsync(source, detached: true, bytesPerSecond: 128 * 1024);
        using var shutdown = new CancellationTokenSource();
        var loop = new WorkerLoop(_engine, Quick());
        var run = loop.RunAsync(shutdown.Token);
        await TestEndpoints.WaitUntilAsync(() => _engine.GetJob(job.Id).State == JobState.Running, Timeout);

        _engine.RequestPause(job.Id);
        shutdown.Cancel();
        Assert.Equal(WorkerExitReason.Shutdown, await run.WaitAsync(Timeout));

        Assert.Equal(JobState.Paused, _engine.GetJob(job.Id).State);
        Assert.Equal(JobState.Paused, _engine.GetJob(pausedBeforeStart.Id).State);
    }

    [Fact]
    public async Task A_job_whose_runner_process_is_gone_is_Interrupted_at_once_without_waiting_for_a_stale_heartbeat()
    {
        var (source, _) = await SeedAsync(1);
        var job = await NewJobAsync(source, detached: true);
        using var gone = Process.Start(new ProcessStartInfo("sh", "-c true") { UseShellExecute = false })!;
        await gone.WaitForExitAsync();
        // Named as this host and boot names its processes (host:pid@scope).
        var runner = ObjectMigration.Engine.Transfer.RunnerOptions.DefaultRunnerId.Replace($":{Environment.ProcessId}", $":{gone.Id}") + "#1";
        Assert.True(_engine.Store.TryStartRun(job.Id, runner, JobPhase.Listing));

        // The heartbeat was written just now, so only the process check can tell.
        Assert.Equal(JobState.Interrupted, _engine.GetJob(job.Id).State);

        // A runner on another host, or of another boot or container with this host name, is not judged by a process id.
        foreach (var elsewhere in new[] { $"elsewhere-{Guid.NewGuid():n}:{gone.Id}#1", $"{Environment.MachineName}:{gone.Id}@0000beef#1" })
        {
            var other = await NewJobAsync(source, detached: true);
            Assert.True(_engine.Store.TryStartRun(other.Id, elsewhere, JobPhase.Listing));
            Assert.Equal(JobState.Running, _engine.GetJob(other.Id).State);
        }
    }

    [Fact]
    public async Task A_worker_without_this_users_key_refuses_to_start_and_says_why_without_the_secret()
    {
        File.WriteAllBytes(Path.Combine(_home, "secret.key"), new byte[32]);
        var fresh = MigrationEngine.OpenWrapped(_home, store => store);
        var loop = new WorkerLoop(fresh, Quick());
        var error = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => loop.RunAsync(CancellationToken.None));
        Assert.Contains("cannot be read by", error.Message);
        Assert.DoesNotContain(TestEndpoints.S3rverSource.SecretKey, error.Message);
        Assert.Empty(fresh.GetWorkers());
    }
}
