using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

// The source listing in key ranges (IListingRanges): what lets several runners list one bucket at once.
public abstract partial class StateStoreConformance
{
    private static string[] Keys(int from, int count) => Enumerable.Range(from, count).Select(i => $"k/{i:d3}").ToArray();

    /// <summary>Saves <paramref name="keys"/> as one page of the range; the page ends the listing when <paramref name="last"/>.</summary>
    private static RangePageSaved SavePage(IStateStore store, Guid job, int range, string runner, string[] keys, bool last = false) =>
        store.SaveRangePage(job, range, runner, keys.Select(k => Object(k)).ToList(), keys.LastOrDefault(), last ? null : $"token-{keys.LastOrDefault()}", last, Minute);

    /// <summary>Claims every open batch of the job; returns the pending keys of each, batch after batch in key order.</summary>
    private static List<string> PendingByBatch(IStateStore store, Guid job)
    {
        var batches = store.ClaimBatches(job, "reader#1", 10_000, Minute).OrderBy(b => b.AfterKey, Comparer<string>.Create(KeyOrder.Compare)).ToList();
        var keys = new List<string>();
        foreach (var batch in batches)
        {
            keys.AddRange(store.GetPendingObjects(job, batch.AfterKey, 10_000, batch.LastKey).Select(o => o.Key));
        }
        store.LeaveJob(job, "reader#1"); // the batches go back, to be claimed by the next look
        return keys;
    }

    [Fact]
    public void A_job_is_listed_in_one_range_from_the_start_until_a_runner_cuts_it()
    {
        var first = CreateStore();
        var (_, job) = WithJob(first);
        var second = OpenAgain(first);

        var range = first.ClaimRange(job.Id, "a#1", Minute);
        Assert.NotNull(range);
        Assert.Equal((0, "", null, null, "a#1"), (range.RangeNo, range.AfterKey, range.LastKey, range.ListedThrough, range.HeldBy));
        Assert.Null(second.ClaimRange(job.Id, "b#1", Minute));

        Assert.Equal(new RangePageSaved(3, false, true), SavePage(first, job.Id, 0, "a#1", Keys(0, 3)));
        var open = Assert.Single(second.GetOpenRanges(job.Id));
        Assert.Equal(("k/002", "token-k/002", "a#1"), (open.ListedThrough, open.Token, open.HeldBy));
        Assert.False(first.GetListingCheckpoint(job.Id, target: false).Done);

        Assert.Equal(new RangePageSaved(2, true, true), SavePage(first, job.Id, 0, "a#1", Keys(3, 2), last: true));
        Assert.True(second.GetListingCheckpoint(job.Id, target: false).Done);
        Assert.Empty(second.GetOpenRanges(job.Id));
        Assert.Null(second.ClaimRange(job.Id, "b#1", Minute));
        Assert.Equal(5, first.GetProgress(job.Id).Objects);
        Assert.Equal(Keys(0, 5), PendingByBatch(first, job.Id));
    }

    [Fact]
    public void A_range_cut_in_two_is_listed_exactly_once_and_its_batches_leave_no_gap()
    {
        var owner = CreateStore();
        var (_, job) = WithJob(owner);
        var helper = OpenAgain(owner);
        owner.ClaimRange(job.Id, "a#1", Minute);
        SavePage(owner, job.Id, 0, "a#1", Keys(0, 10));

        // The helper cuts after k/0505 (no key): keys past it are its own range, the owner's ends there.
        var cut = helper.SplitRange(job.Id, 0, "k/0505", "b#1", Minute);
        Assert.NotNull(cut);
        Assert.Equal((1, "k/0505", (string?)null, "b#1"), (cut.RangeNo, cut.AfterKey, cut.LastKey, cut.HeldBy));
        Assert.Equal([(0, "k/0505"), (1, null)], owner.GetOpenRanges(job.Id).Select(r => (r.RangeNo, r.LastKey)));

        // The owner's page fetched before the cut runs past it: what lies past the cut is the helper's to list.
        Assert.Equal(new RangePageSaved(41, true, true), SavePage(owner, job.Id, 0, "a#1", Keys(10, 60)));
        Assert.False(owner.GetListingCheckpoint(job.Id, target: false).Done);
        Assert.Equal(new RangePageSaved(30, false, true), SavePage(helper, job.Id, 1, "b#1", Keys(51, 30)));
        Assert.Equal(new RangePageSaved(19, true, true), SavePage(helper, job.Id, 1, "b#1", Keys(81, 19), last: true));

        Assert.True(owner.GetListingCheckpoint(job.Id, target: false).Done);
        Assert.Equal(100, owner.GetProgress(job.Id).Objects);
        // A key added later where no listed key is (one only the target holds, between the ranges) still falls in a batch.
        owner.SaveTargetOnlyObjects(job.Id, [Object("k/0501"), Object("z/last")]);
        var expected = Keys(0, 51).Append("k/0501").Concat(Keys(51, 49)).Append("z/last");
        Assert.Equal(expected, PendingByBatch(owner, job.Id));
    }

    [Fact]
    public void A_range_is_cut_only_ahead_of_its_listing_and_before_its_end()
    {
        var (store, job) = WithJob(CreateStore());
        store.ClaimRange(job.Id, "a#1", Minute);
        SavePage(store, job.Id, 0, "a#1", Keys(0, 20));

        Assert.Null(store.SplitRange(job.Id, 0, "k/010", "b#1", Minute));
        Assert.Null(store.SplitRange(job.Id, 0, "k/019", "b#1", Minute));
        Assert.NotNull(store.SplitRange(job.Id, 0, "k/040", "b#1", Minute));
        Assert.Null(store.SplitRange(job.Id, 0, "k/040", "c#1", Minute));
        Assert.Null(store.SplitRange(job.Id, 0, "k/050", "c#1", Minute));
        Assert.NotNull(store.SplitRange(job.Id, 0, "k/030", "c#1", Minute));
        Assert.Null(store.SplitRange(job.Id, 7, "k/090", "c#1", Minute));
        Assert.Equal([("", "k/030"), ("k/040", null), ("k/030", "k/040")],
            store.GetOpenRanges(job.Id).Select(r => (r.AfterKey, r.LastKey)));
    }

    [Fact]
    public void Two_handles_cutting_the_same_range_at_once_make_one_cut()
    {
        var first = CreateStore();
        var (_, job) = WithJob(first);
        first.ClaimRange(job.Id, "a#1", Minute);
        var handles = Enumerable.Range(0, 4).Select(_ => OpenAgain(first)).ToList();
        var made = new System.Collections.Concurrent.ConcurrentBag<ListingRange>();
        using var start = new Barrier(handles.Count);
        Parallel.For(0, handles.Count, new ParallelOptions { MaxDegreeOfParallelism = handles.Count }, i =>
        {
            start.SignalAndWait();
            if (handles[i].SplitRange(job.Id, 0, "m", $"r{i}#1", Minute) is { } cut) made.Add(cut);
        });
        Assert.Single(made);
        Assert.Equal(2, first.GetOpenRanges(job.Id).Count);
    }

    [Fact]
    public void A_range_whose_lease_ran_out_is_listed_on_by_another_runner_and_its_old_holder_saves_nothing()
    {
        var first = CreateStore();
        var (_, job) = WithJob(first);
        var second = OpenAgain(first);
        first.ClaimRange(job.Id, "a#1", TimeSpan.FromMilliseconds(1));
        SavePage(first, job.Id, 0, "a#1", Keys(0, 5));
        // A page saved extends the lease it was saved with: a renewal with a short one lets it lapse.
        Assert.Equal([0], first.RenewRanges(job.Id, "a#1", TimeSpan.FromMilliseconds(1)));
        ListingRange? taken = null;
        Assert.True(SpinWait.SpinUntil(() => (taken = second.ClaimRange(job.Id, "b#1", Minute)) is not null, TimeSpan.FromSeconds(10)));

        Assert.Equal((0, "k/004", "token-k/004", "b#1", 2), (taken!.RangeNo, taken.ListedThrough, taken.Token, taken.HeldBy, taken.Claims));
        Assert.Equal(new RangePageSaved(0, false, false), SavePage(first, job.Id, 0, "a#1", Keys(5, 5)));
        Assert.Empty(first.RenewRanges(job.Id, "a#1", Minute));
        Assert.Equal(new RangePageSaved(5, true, true), SavePage(second, job.Id, 0, "b#1", Keys(5, 5), last: true));
        Assert.Equal(10, first.GetProgress(job.Id).Objects);
    }

    [Fact]
    public void A_runner_that_leaves_lets_its_range_go_at_once()
    {
        var (store, job) = WithJob(CreateStore());
        store.ClaimRange(job.Id, "a#1", Minute);
        SavePage(store, job.Id, 0, "a#1", Keys(0, 3));
        Assert.Null(store.ClaimRange(job.Id, "b#1", Minute));

        store.LeaveJob(job.Id, "a#1");

        Assert.Equal(("k/002", "b#1"), store.ClaimRange(job.Id, "b#1", Minute) is { } r ? (r.ListedThrough, r.HeldBy) : default);
    }

    [Fact]
    public void A_listing_begun_without_ranges_goes_on_from_its_checkpoint_in_the_first_range()
    {
        var (store, job) = WithJob(CreateStore());
        store.SaveListingPage(job.Id, Keys(0, 4).Select(k => Object(k)).ToList(), "t1", false, target: false);

        var range = store.ClaimRange(job.Id, "a#1", Minute);

        Assert.Equal((0, "k/003", "t1"), (range!.RangeNo, range.ListedThrough, range.Token));
        Assert.Equal(new RangePageSaved(2, true, true), SavePage(store, job.Id, 0, "a#1", Keys(4, 2), last: true));
        Assert.Equal(Keys(0, 6), PendingByBatch(store, job.Id));
    }

    [Fact]
    public void A_range_whose_last_page_a_filter_emptied_ends_in_a_batch_that_a_key_added_later_falls_in()
    {
        var owner = CreateStore();
        var (_, job) = WithJob(owner);
        owner.ClaimRange(job.Id, "a#1", Minute);
        SavePage(owner, job.Id, 0, "a#1", Keys(0, 10));
        Assert.NotNull(owner.SplitRange(job.Id, 0, "k/050", "b#1", Minute));
        // The owner's last page reaches past the cut, but the job's filters select none of it: no key, no batch from
        // it, and the range is done; what is left of it up to the cut is a batch with no key, done.
        Assert.Equal(new RangePageSaved(0, true, true), owner.SaveRangePage(job.Id, 0, "a#1", [], "k/060", "t", false, Minute));
        SavePage(owner, job.Id, 1, "b#1", Keys(51, 10), last: true);
        Assert.Equal(Keys(0, 10).Concat(Keys(51, 10)), PendingByBatch(OpenAgain(owner), job.Id));

        // Keys only the target holds, between the owner's last key and the cut and past everything, still get batches.
        var store = OpenAgain(owner);
        store.SaveTargetOnlyObjects(job.Id, [Object("k/020"), Object("k/0505"), Object("z")]);
        Assert.Equal(["k/020", "k/0505", "z"], PendingByBatch(store, job.Id).Where(k => k is "k/020" or "k/0505" or "z"));
    }

    [Fact]
    public void A_job_of_named_keys_has_no_listing_range_and_is_joined_only_for_its_batches()
    {
        var store = CreateStore();
        var (_, job) = WithJob(store);
        var keyed = new MigrationJob
        {
            Id = Guid.NewGuid(), Name = "keyed", Type = JobType.Migrate, State = JobState.Pending, Keys = ["k/001", "k/002"],
            SourceConnectorId = job.SourceConnectorId, SourceBucket = "src", TargetConnectorId = job.TargetConnectorId, TargetBucket = "dst",
            Concurrency = 16, PartSize = 8 << 20, MultipartThreshold = 64 << 20, CreatedAt = Listed, Detached = true,
        };
        store.AddJob(keyed);
        Assert.True(store.TryStartRun(keyed.Id, "lead#1", JobPhase.Transferring));

        // While the lead looks the keys up, nothing is there to list or join: a runner that joined would list the bucket.
        Assert.Null(store.ClaimRange(keyed.Id, "b#1", Minute));
        Assert.DoesNotContain(keyed.Id, store.GetJoinableJobs(10, Minute));

        store.SaveListingPage(keyed.Id, [Object("k/001"), Object("k/002")], null, true, target: false);
        Assert.Contains(keyed.Id, store.GetJoinableJobs(10, Minute));
        Assert.Null(store.ClaimRange(keyed.Id, "b#1", Minute));
        Assert.True(store.GetListingCheckpoint(keyed.Id, target: false).Done);
    }
}
