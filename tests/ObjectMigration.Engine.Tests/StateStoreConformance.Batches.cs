using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

// Batches and the runners of a job (IBatchLeases): what lets several worker processes, on any hosts, run one job.
public abstract partial class StateStoreConformance
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    /// <summary>A job listed in three pages of <paramref name="perPage"/> keys: three batches.</summary>
    private static (IStateStore Store, MigrationJob Job, string[] Keys) WithListedJob(IStateStore store, int perPage = 4)
    {
        var (_, job) = WithJob(store);
        var keys = Enumerable.Range(0, 3 * perPage).Select(i => $"k/{i:d3}").ToArray();
        for (var page = 0; page < 3; page++)
        {
            store.SaveListingPage(job.Id, keys.Skip(page * perPage).Take(perPage).Select(k => Object(k)).ToList(), page < 2 ? $"t{page}" : null, page == 2, target: false);
        }
        return (store, job, keys);
    }

    [Fact]
    public void Each_listed_page_is_a_batch_and_two_handles_claiming_at_once_get_different_ones()
    {
        var first = CreateStore();
        var (_, job, keys) = WithListedJob(first);
        var second = OpenAgain(first);
        Assert.Equal(3, first.CountOpenBatches(job.Id));

        var mine = first.ClaimBatches(job.Id, "a#1", 1, Minute);
        var theirs = second.ClaimBatches(job.Id, "b#1", 5, Minute);

        Assert.Equal([1], mine.Select(b => b.BatchNo));
        Assert.Equal([2, 3], theirs.Select(b => b.BatchNo));
        Assert.All(mine.Concat(theirs), b => Assert.Equal(1, b.Claims));
        // The batches cut the plan without gaps or overlap: the pending rows of each are the page it was.
        var batches = mine.Concat(theirs).ToList();
        Assert.Equal("", batches[0].AfterKey);
        for (var i = 0; i < batches.Count; i++)
        {
            var rows = first.GetPendingObjects(job.Id, batches[i].AfterKey, 100, batches[i].LastKey).Select(o => o.Key);
            Assert.Equal(keys.Skip(4 * i).Take(4), rows);
        }
        Assert.Empty(first.ClaimBatches(job.Id, "c#1", 5, Minute));
    }

    [Fact]
    public void Six_handles_claiming_at_the_same_time_never_get_the_same_batch()
    {
        var first = CreateStore();
        var (_, job) = WithJob(first);
        for (var page = 0; page < 40; page++)
        {
            first.SaveListingPage(job.Id, [Object($"p/{page:d3}/a"), Object($"p/{page:d3}/b")], page < 39 ? $"t{page}" : null, page == 39, target: false);
        }
        var handles = Enumerable.Range(0, 6).Select(_ => OpenAgain(first)).ToList();
        var claims = new System.Collections.Concurrent.ConcurrentBag<(string Runner, int Batch)>();
        using var start = new Barrier(handles.Count);
        Parallel.For(0, handles.Count, new ParallelOptions { MaxDegreeOfParallelism = handles.Count }, i =>
        {
            start.SignalAndWait();
            while (handles[i].ClaimBatches(job.Id, $"r{i}#1", 1, Minute) is [var batch]) claims.Add(($"r{i}#1", batch.BatchNo));
        });
        // Every batch claimed exactly once, whichever handles got them (how they spread is up to the scheduler).
        Assert.Equal(Enumerable.Range(1, 40), claims.Select(c => c.Batch).Order());
    }

    [Fact]
    public void A_batch_completes_only_when_none_of_its_objects_is_pending_and_only_for_its_holder()
    {
        var (store, job, keys) = WithListedJob(CreateStore());
        var batch = store.ClaimBatches(job.Id, "a#1", 1, Minute).Single();
        Assert.False(store.CompleteBatch(job.Id, batch.BatchNo, "a#1"));

        store.SaveResults(job.Id, keys.Take(4).Select(k => new ObjectResult(k, ObjectOutcome.Transferred, 10, null, null)).ToList(), []);
        Assert.False(store.CompleteBatch(job.Id, batch.BatchNo, "b#1"));
        Assert.True(store.CompleteBatch(job.Id, batch.BatchNo, "a#1"));
        Assert.Equal(2, store.CountOpenBatches(job.Id));
        // Done is done: never claimed again.
        Assert.DoesNotContain(store.ClaimBatches(job.Id, "b#1", 5, Minute), b => b.BatchNo == batch.BatchNo);
    }

    [Fact]
    public void An_expired_lease_is_taken_over_its_renewal_says_so_and_a_renewed_one_is_kept()
    {
        var first = CreateStore();
        var (_, job, _) = WithListedJob(first);
        var second = OpenAgain(first);
        var held = first.ClaimBatches(job.Id, "a#1", 2, Minute);
        var lapsing = second.ClaimBatches(job.Id, "b#1", 1, TimeSpan.FromMilliseconds(1));
        Assert.Equal(2, held.Count);
        Assert.Single(lapsing);

        // b#1's lease ran out (by the store's clock): the next claim takes its batch over, counted as claimed twice.
        var taken = WaitForClaim(first, job.Id, "c#1");
        Assert.Equal(lapsing[0].BatchNo, taken.BatchNo);
        Assert.Equal(2, taken.Claims);
        Assert.Empty(second.RenewBatches(job.Id, "b#1", Minute));
        Assert.Equal(held.Select(b => b.BatchNo).Order(), first.RenewBatches(job.Id, "a#1", Minute).Order());
        Assert.False(second.CompleteBatch(job.Id, taken.BatchNo, "b#1"));
    }

    private static ObjectBatch WaitForClaim(IStateStore store, Guid jobId, string runner)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            if (store.ClaimBatches(jobId, runner, 1, Minute) is [var claimed]) return claimed;
            Assert.True(DateTime.UtcNow < deadline, "No batch could be claimed after the lease ran out.");
            Thread.Sleep(5);
        }
    }

    [Fact]
    public void Keys_added_behind_finished_batches_and_failed_objects_reset_open_their_batches_again()
    {
        var (store, job, keys) = WithListedJob(CreateStore());
        foreach (var batch in store.ClaimBatches(job.Id, "a#1", 3, Minute))
        {
            var rows = store.GetPendingObjects(job.Id, batch.AfterKey, 100, batch.LastKey);
            store.SaveResults(job.Id, rows.Select((o, i) => new ObjectResult(o.Key, i == 0 ? ObjectOutcome.Failed : ObjectOutcome.Transferred, 10, null, null)).ToList(), []);
            Assert.True(store.CompleteBatch(job.Id, batch.BatchNo, "a#1"));
        }
        Assert.Equal(0, store.CountOpenBatches(job.Id));

        // A key only the target holds sorts inside the second batch; another after every batch.
        store.SaveTargetOnlyObjects(job.Id, [Object("k/004a"), Object("z/last")]);
        var reopened = store.ClaimBatches(job.Id, "a#1", 5, Minute);
        var pending = reopened.SelectMany(b => store.GetPendingObjects(job.Id, b.AfterKey, 100, b.LastKey)).Select(o => o.Key).ToList();
        Assert.Equal(["k/004a", "z/last"], pending);
        store.SaveResults(job.Id, [new ObjectResult("k/004a", ObjectOutcome.Skipped, 0, null, null), new ObjectResult("z/last", ObjectOutcome.Skipped, 0, null, null)], []);
        Assert.All(reopened, b => Assert.True(store.CompleteBatch(job.Id, b.BatchNo, "a#1")));

        // -RetryFailed: the failed first object of each page is pending again, in a batch open again.
        Assert.Equal(3, store.ResetFailedObjects(job.Id));
        var retried = store.ClaimBatches(job.Id, "b#1", 5, Minute);
        Assert.Equal([keys[0], keys[4], keys[8]], retried.SelectMany(b => store.GetPendingObjects(job.Id, b.AfterKey, 100, b.LastKey)).Select(o => o.Key));
    }

    [Fact]
    public void Runners_shares_add_up_to_the_job_and_progress_lists_them_with_their_liveness()
    {
        var first = CreateStore();
        var (_, job, keys) = WithListedJob(first);
        var second = OpenAgain(first);
        Assert.True(first.TryStartRun(job.Id, "lead#1", JobPhase.Transferring));
        first.SaveRunnerProgress(job.Id, new JobWorkerProgress { Runner = "lead#1", ComputerName = "a", ProcessId = 1, Role = RunnerRoles.Lead, BytesPerSecond = 100 });
        second.SaveRunnerProgress(job.Id, new JobWorkerProgress { Runner = "join#1", ComputerName = "b", ProcessId = 2, Role = RunnerRoles.Joined, BytesPerSecond = 50, ActiveConcurrency = 4 });
        first.SaveRates(job.Id, 100, 1, 0, 8);

        // Both record the same object once at the same time: it counts once, for one of them.
        var results = keys.Select(k => new ObjectResult(k, ObjectOutcome.Transferred, 10, null, null)).ToList();
        Parallel.Invoke(() => first.SaveResults(job.Id, results.Take(8).ToList(), [], "lead#1"), () => second.SaveResults(job.Id, results.Skip(4).ToList(), [], "join#1"));

        var progress = first.GetProgress(job.Id);
        Assert.Equal(keys.Length, progress.TransferredObjects);
        Assert.Equal(progress.TransferredObjects, progress.Workers.Sum(w => w.TransferredObjects));
        Assert.Equal(progress.TransferredBytes, progress.Workers.Sum(w => w.TransferredBytes));
        Assert.Equal(["lead#1", "join#1"], progress.Workers.Select(w => w.Runner));
        Assert.All(progress.Workers, w => Assert.True(w.Active));
        // The job's rate is the lead's (job row) and every joined runner's.
        Assert.Equal(150, progress.BytesPerSecond);
        Assert.Equal(12, progress.ActiveConcurrency);

        second.LeaveJob(job.Id, "join#1");
        var after = first.GetJobRunners(job.Id, Minute);
        Assert.False(after.Single(w => w.Runner == "join#1").Active);
        Assert.True(after.Single(w => w.Runner == "lead#1").Active);
    }

    [Fact]
    public void A_job_is_joinable_while_it_runs_detached_with_a_batch_nobody_holds()
    {
        var (store, job, _) = WithListedJob(CreateStore());
        Assert.DoesNotContain(job.Id, store.GetJoinableJobs(10, Minute));
        Assert.True(store.TryStartRun(job.Id, "lead#1", JobPhase.Transferring));
        Assert.DoesNotContain(job.Id, store.GetJoinableJobs(10, Minute));
        store.SetDetached(job.Id, true);
        Assert.Contains(job.Id, store.GetJoinableJobs(10, Minute));
        store.ClaimBatches(job.Id, "lead#1", 3, Minute);
        Assert.DoesNotContain(job.Id, store.GetJoinableJobs(10, Minute));
        store.LeaveJob(job.Id, "lead#1");
        store.SetControlRequest(job.Id, ControlRequest.Pause);
        Assert.DoesNotContain(job.Id, store.GetJoinableJobs(10, Minute));
    }

    [Fact]
    public void Preparing_a_run_lets_go_of_the_leases_of_runners_that_are_gone_but_not_of_live_joined_ones()
    {
        var (store, job, _) = WithListedJob(CreateStore());
        store.SaveRunnerProgress(job.Id, new JobWorkerProgress { Runner = "join#1", ComputerName = "b", ProcessId = 2, Role = RunnerRoles.Joined });
        var kept = store.ClaimBatches(job.Id, "join#1", 1, Minute).Single();
        var freed = store.ClaimBatches(job.Id, "dead-lead#1", 1, Minute).Single();

        store.PrepareBatches(job.Id, Minute);

        Assert.Equal([kept.BatchNo], store.RenewBatches(job.Id, "join#1", Minute));
        Assert.Empty(store.RenewBatches(job.Id, "dead-lead#1", Minute));
        Assert.Contains(store.ClaimBatches(job.Id, "lead#2", 5, Minute), b => b.BatchNo == freed.BatchNo && b.Claims == 2);
    }
}
