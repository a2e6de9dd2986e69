using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// What every state store must do, contract by contract, as rclone's fstest holds every backend to one suite: written
/// against <see cref="IStateStore"/> only, run once per implementation (a subclass gives the store). The SQLite store
/// passes it; the PostgreSQL store for many hosts (issue 21) is to pass it unchanged.
/// </summary>
public abstract partial class StateStoreConformance
{
    /// <summary>A fresh, empty store of the implementation under test.</summary>
    protected abstract IStateStore CreateStore();

    /// <summary>A second handle on the same store, as another process or host opens it.</summary>
    protected abstract IStateStore OpenAgain(IStateStore store);

    /// <summary>Sets the job's heartbeat to <paramref name="age"/> ago by the store's own clock (what a runner that stopped leaves).</summary>
    protected abstract void AgeHeartbeat(IStateStore store, Guid jobId, TimeSpan age);

    /// <summary>Rows of any table that belong to the job of <paramref name="jobSeq"/> (objects, listings, uploads, parts, logs, intents, the job).</summary>
    protected abstract long CountRowsOfJob(IStateStore store, long jobSeq);

    private static readonly DateTimeOffset Listed = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static (IStateStore Store, MigrationJob Job) WithJob(IStateStore store, string name = "job")
    {
        var source = store.AddConnector(new CloudConnector { Name = "source-" + name, Endpoint = "http://127.0.0.1:9000" }, [1, 2, 3]);
        var target = store.AddConnector(new CloudConnector { Name = "target-" + name, Endpoint = "http://127.0.0.1:9001" }, [4, 5, 6]);
        var job = new MigrationJob
        {
            Id = Guid.NewGuid(), Name = name, Type = JobType.Migrate, State = JobState.Pending,
            SourceConnectorId = source.Id, SourceBucket = "src", TargetConnectorId = target.Id, TargetBucket = "dst",
            Concurrency = 16, PartSize = 8 << 20, MultipartThreshold = 64 << 20, CreatedAt = Listed,
        };
        store.AddJob(job);
        return (store, job);
    }

    private static ListedObject Object(string key, long size = 10) => new(key, size, "\"0123456789abcdef0123456789abcdef\"", Listed, "STANDARD");

    // ---- Connectors ----

    [Fact]
    public void Connectors_are_found_by_id_and_by_name_whatever_its_ASCII_case_and_names_are_unique()
    {
        var store = CreateStore();
        var added = store.AddConnector(new CloudConnector { Name = "Ceph-East", Endpoint = "http://127.0.0.1:9000" }, [9, 8, 7]);
        Assert.Equal(added.Id, store.FindConnector("ceph-east")!.Id);
        Assert.Equal("Ceph-East", store.FindConnector(added.Id)!.Name);
        Assert.Equal([9, 8, 7], store.GetConnectorCredential(added.Id));
        Assert.ThrowsAny<Exception>(() => store.AddConnector(new CloudConnector { Name = "CEPH-EAST", Endpoint = "http://127.0.0.1:9002" }, [1]));
        // A hidden connector belongs to one job: not listed, not found by name.
        var hidden = store.AddConnector(new CloudConnector { Name = "inline", Endpoint = "http://127.0.0.1:9003" }, [1], hidden: true);
        Assert.DoesNotContain(store.GetConnectors(), c => c.Id == hidden.Id);
        Assert.Null(store.FindConnector("inline"));
        store.RemoveConnector(added.Id);
        Assert.Null(store.FindConnector(added.Id));
    }

    // ---- Jobs and their runs ----

    [Fact]
    public void A_job_moves_between_states_only_from_the_states_named_and_exactly_one_runner_starts_it()
    {
        var (store, job) = WithJob(CreateStore());
        Assert.False(store.TryTransition(job.Id, [JobState.Paused], JobState.Cancelled));
        var starts = Enumerable.Range(0, 8).AsParallel().Select(i => store.TryStartRun(job.Id, $"runner-{i}", JobPhase.Listing)).ToList();
        Assert.Equal(1, starts.Count(s => s));
        var found = store.FindJob(job.Id)!;
        Assert.Equal(JobState.Running, found.State);
        Assert.NotNull(found.StartedAt);
        var runner = found.Runner!;
        Assert.Equal(RunnerLease.Held, store.Heartbeat(job.Id, runner, JobPhase.Transferring));
        Assert.Equal(RunnerLease.Lost, store.Heartbeat(job.Id, "someone-else", JobPhase.Transferring));
        Assert.False(store.TrySettleRun(job.Id, "someone-else", JobState.Completed));
        Assert.True(store.TrySettleRun(job.Id, runner, JobState.Paused));
        Assert.Equal(JobState.Paused, store.FindJob(job.Id)!.State);
    }

    [Fact]
    public void A_control_request_reaches_the_runner_and_a_removed_job_is_gone_with_its_records()
    {
        var (store, job) = WithJob(CreateStore());
        Assert.True(store.TryStartRun(job.Id, "runner", JobPhase.Listing));
        store.SetControlRequest(job.Id, ControlRequest.Pause);
        Assert.Equal(ControlRequest.Pause, store.GetControlRequest(job.Id));
        store.SaveListingPage(job.Id, [Object("a")], null, done: true, target: false);
        store.AddLogs(job.Id, [new LogRecord(LogType.MigrationNotice, null, "hello")]);
        Assert.True(store.TrySettleRun(job.Id, "runner", JobState.Cancelled));
        store.RemoveJob(job.Id);
        Assert.Null(store.FindJob(job.Id));
        Assert.DoesNotContain(store.GetJobs(), j => j.Id == job.Id);
    }

    // ---- The plan ----

    [Fact]
    public void Pending_objects_page_in_byte_order_of_their_keys_and_a_page_is_saved_once()
    {
        var (store, job) = WithJob(CreateStore());
        // Byte order, as S3 lists: '/' < 'A' < '_' < 'a' < 'é' (UTF-8 0xC3 0xA9); a linguistic order would differ.
        string[] keys = ["_x", "A", "a", "a/b", "é", "B"];
        Assert.Equal(keys.Length, store.SaveListingPage(job.Id, keys.Select(k => Object(k)).ToList(), "next-token", done: false, target: false));
        Assert.Equal(0, store.SaveListingPage(job.Id, [Object("A")], "next-token", done: false, target: false));
        Assert.Equal(("next-token", false), store.GetListingCheckpoint(job.Id, target: false));
        var firstPage = store.GetPendingObjects(job.Id, "", 3).Select(o => o.Key).ToList();
        var secondPage = store.GetPendingObjects(job.Id, firstPage[^1], 10).Select(o => o.Key).ToList();
        Assert.Equal(new[] { "A", "B", "_x", "a", "a/b", "é" }, firstPage.Concat(secondPage));
    }

    [Fact]
    public void Results_move_objects_out_of_the_pending_and_add_up_in_the_progress_once()
    {
        var (store, job) = WithJob(CreateStore());
        store.SaveListingPage(job.Id, new[] { "a", "b", "c", "d" }.Select(k => Object(k, 100)).ToList(), null, done: true, target: false);
        var results = new List<ObjectResult>
        {
            new("a", ObjectOutcome.Transferred, 100, null, null),
            new("b", ObjectOutcome.Skipped, 0, LogType.ImportSkippedExists, "same"),
            new("c", ObjectOutcome.Failed, 0, LogType.MigrationError, "no"),
        };
        store.SaveResults(job.Id, results, []);
        // The same results again (a flush retried after a failure that did commit) count once.
        store.SaveResults(job.Id, results, []);
        var progress = store.GetProgress(job.Id);
        Assert.Equal((4L, 1L, 1L, 1L, 1L), (progress.Objects, progress.TransferredObjects, progress.SkippedObjects, progress.FailedObjects, progress.PendingObjects));
        Assert.Equal(["d"], store.GetPendingObjects(job.Id, "", 10).Select(o => o.Key));
        Assert.Equal(1, store.ResetFailedObjects(job.Id));
        Assert.Equal(["c", "d"], store.GetPendingObjects(job.Id, "", 10).Select(o => o.Key));
        Assert.Equal(4, store.StreamObjectReport(job.Id).Count());
    }

    [Fact]
    public void The_dispatch_bound_only_rises()
    {
        var (store, job) = WithJob(CreateStore());
        Assert.Null(store.GetDispatchedThrough(job.Id));
        store.SaveDispatchedThrough(job.Id, "m");
        store.SaveDispatchedThrough(job.Id, "c");
        Assert.Equal("m", store.GetDispatchedThrough(job.Id));
        store.SaveDispatchedThrough(job.Id, "z");
        Assert.Equal("z", store.GetDispatchedThrough(job.Id));
    }

    // ---- The log ----

    [Fact]
    public void A_reader_continues_the_log_from_its_cursor_and_misses_nothing()
    {
        var (store, job) = WithJob(CreateStore());
        store.AddLogs(job.Id, [new LogRecord(LogType.MigrationStart, null, "one"), new LogRecord(LogType.MigrationNotice, "k", "two")]);
        var first = store.GetLogs(job.Id, new LogQuery());
        Assert.Equal(["one", "two"], first.Select(l => l.Message));
        store.AddLogs(job.Id, [new LogRecord(LogType.MigrationComplete, null, "three")]);
        Assert.Equal(["three"], store.GetLogs(job.Id, new LogQuery { AfterSequence = first[^1].Sequence }).Select(l => l.Message));
        Assert.Equal(["two"], store.GetLogs(job.Id, new LogQuery { Types = [LogType.MigrationNotice] }).Select(l => l.Message));
    }

    // ---- Uploads ----

    [Fact]
    public void An_upload_request_stays_marked_until_cleared_keeps_its_earliest_time_and_outlives_its_recorded_id()
    {
        var (store, job) = WithJob(CreateStore());
        var early = Listed.AddMinutes(1);
        store.SaveUploadRequested(job.Id, "big", early);
        store.SaveUploadRequested(job.Id, "big", early.AddMinutes(5));
        Assert.Null(store.GetUploadId(job.Id, "big"));
        Assert.Equal(early, Assert.Single(store.GetRequestedUploads(job.Id)).RequestedAt);

        store.SaveUploadId(job.Id, "big", "upload-1");
        store.SavePart(job.Id, "big", new UploadedPart(1, "\"etag\"", 5));
        Assert.Equal("upload-1", store.GetUploadId(job.Id, "big"));
        Assert.Equal(new RequestedUpload("big", early, "upload-1"), Assert.Single(store.GetRequestedUploads(job.Id)));
        Assert.Single(store.GetOpenUploads(job.Id));

        // Aborted before the sweep: the id and parts go, the mark stays for the sweep.
        store.ForgetUpload(job.Id, "big");
        Assert.Empty(store.GetOpenUploads(job.Id));
        Assert.Empty(store.GetUploadedParts(job.Id, "big"));
        Assert.Single(store.GetRequestedUploads(job.Id));
        store.ClearUploadRequested(job.Id, "big");
        Assert.Empty(store.GetRequestedUploads(job.Id));

        // Recorded and then cleared: the upload stays open and recorded, unmarked.
        store.SaveUploadRequested(job.Id, "other", early);
        store.SaveUploadId(job.Id, "other", "upload-2");
        store.ClearUploadRequested(job.Id, "other");
        Assert.Empty(store.GetRequestedUploads(job.Id));
        Assert.Equal("upload-2", store.GetUploadId(job.Id, "other"));
    }
}

/// <summary>The conformance suite against the SQLite store, the embedded default.</summary>
public sealed class SqliteStateStoreConformance : StateStoreConformance, IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "om-conformance-" + Guid.NewGuid().ToString("n")[..8]);

    protected override IStateStore CreateStore()
    {
        Directory.CreateDirectory(_folder);
        return new SqliteStateStore(Path.Combine(_folder, Guid.NewGuid().ToString("n") + ".db"));
    }

    protected override IStateStore OpenAgain(IStateStore store) => new SqliteStateStore(store.Location);

    private static Microsoft.Data.Sqlite.SqliteConnection Connect(IStateStore store)
    {
        var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={store.Location};Pooling=False;Default Timeout=30");
        connection.Open();
        return connection;
    }

    protected override void AgeHeartbeat(IStateStore store, Guid jobId, TimeSpan age)
    {
        // SQLite's clock is the local one: only this host uses the file.
        using var connection = Connect(store);
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE jobs SET heartbeat_at = $at WHERE id = $id";
        command.Parameters.AddWithValue("$at", (DateTimeOffset.UtcNow - age).ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        command.Parameters.AddWithValue("$id", jobId.ToString());
        Assert.Equal(1, command.ExecuteNonQuery());
    }

    protected override long CountRowsOfJob(IStateStore store, long jobSeq)
    {
        using var connection = Connect(store);
        using var command = connection.CreateCommand();
        command.CommandText = string.Join(" + ", new[] { "objects", "target_objects", "uploads", "parts", "logs", "update_intents" }
            .Select(t => $"(SELECT count(*) FROM {t} WHERE job_seq = $seq)").Prepend("SELECT (SELECT count(*) FROM jobs WHERE seq = $seq)"));
        command.Parameters.AddWithValue("$seq", jobSeq);
        return (long)command.ExecuteScalar()!;
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { /* a file still open: the temp folder keeps it */ }
    }
}
