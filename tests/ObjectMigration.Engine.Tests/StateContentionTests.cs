using System.Diagnostics;
using Microsoft.Data.Sqlite;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// The store shared with another process that holds SQLite's write lock (a runner in the middle of a flush): readers do
/// not wait for it, writers wait for it instead of failing with "database is locked". Needs no S3 endpoint.
/// </summary>
public sealed class StateContentionTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-contention-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly MigrationEngine _engine;
    private readonly MigrationJob _job;

    public StateContentionTests()
    {
        _engine = MigrationEngine.Open(_home);
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = "http://127.0.0.1:9" }, "AKIDSOURCE", "source-secret", pathStyleGiven: false);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = "http://127.0.0.1:9" }, "AKIDTARGET", "target-secret", pathStyleGiven: false);
        _job = _engine.CreateJob(new MigrationJobRequest { SourceConnector = "source", SourceBucket = "from-here", TargetConnector = "target", TargetBucket = "to-there" });
        // Running under this process, with a fresh heartbeat: nothing for a reader to mark Interrupted.
        Assert.True(_engine.Store.TryStartRun(_job.Id, RunnerOptions.DefaultRunnerId + "#contention", JobPhase.Transferring));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { }
    }

    /// <summary>Another connection (as another process would) in a write transaction that it keeps open.</summary>
    private SqliteConnection HoldWriteLock()
    {
        var other = new SqliteConnection($"Data Source={StateLocation.DatabasePath(_home)};Pooling=False");
        other.Open();
        using var begin = other.CreateCommand();
        begin.CommandText = "BEGIN IMMEDIATE; UPDATE jobs SET phase = phase;";
        begin.ExecuteNonQuery();
        return other;
    }

    [Fact]
    public void Get_job_and_progress_do_not_wait_for_a_writer()
    {
        using var writer = HoldWriteLock();
        var clock = Stopwatch.StartNew();

        var job = _engine.GetJob(_job.Id);
        var progress = _engine.GetProgress(_job.Id);
        var all = _engine.GetJobs();

        clock.Stop();
        Assert.Equal(JobState.Running, job.State);
        Assert.Equal(JobState.Running, progress.State);
        Assert.Single(all);
        // Before, each read first ran an UPDATE (stale jobs to Interrupted), which waits for the lock even when it changes nothing.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"Reading took {clock.Elapsed.TotalMilliseconds:N0} ms while another connection held the write lock.");
    }

    [Fact]
    public async Task A_write_waits_for_the_lock_of_another_process_instead_of_failing()
    {
        var writer = HoldWriteLock();
        var released = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            using (var commit = writer.CreateCommand())
            {
                commit.CommandText = "COMMIT";
                commit.ExecuteNonQuery();
            }
            writer.Dispose();
        });
        var clock = Stopwatch.StartNew();

        _engine.RequestPause(_job.Id);

        clock.Stop();
        await released;
        Assert.Equal(ControlRequest.Pause, _engine.Store.GetControlRequest(_job.Id));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(500), $"The pause was written after {clock.Elapsed.TotalMilliseconds:N0} ms, while the lock was held.");
    }
}
