using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The dry run (New-MigrationJob -WhatIf) against the real servers: its counts are what the job then does.</summary>
public abstract partial class ConformanceSuite
{
    private static void DryRunDefinition(MigrationJobRequest r)
    {
        // A content type is known only from a HEAD, which the copy makes: the dry run must make it too.
        r.Filter = new ObjectFilter { Exclude = ["skip/*"], ExcludeContentType = ["video/*"] };
        r.MultipartThreshold = FivemiB;
        r.PartSize = FivemiB;
    }

    /// <summary>Each row of the plan against what the job recorded: transfers, skips per reason (its log entries), failures, and what the filters left out.</summary>
    private void AssertPlanIsWhatTheJobDid(IReadOnlyList<MigrationPlanRow> plan, MigrationJob job, MigrationJobProgress progress, int excluded)
    {
        long Sum(PlannedAction action, Func<MigrationPlanRow, long> value) => plan.Where(r => r.Action == action).Sum(value);
        Assert.Equal(progress.TransferredObjects, Sum(PlannedAction.Transfer, r => r.Objects));
        Assert.Equal(progress.TransferredBytes, Sum(PlannedAction.Transfer, r => r.Bytes));
        Assert.Equal(progress.SkippedObjects, Sum(PlannedAction.Skip, r => r.Objects));
        Assert.Equal(progress.FailedObjects, Sum(PlannedAction.Fail, r => r.Objects));
        Assert.Equal(excluded, Sum(PlannedAction.Exclude, r => r.Objects));
        foreach (var skip in plan.Where(r => r.Action == PlannedAction.Skip))
        {
            var type = Enum.Parse<LogType>(skip.Reason);
            Assert.Equal(skip.Objects, _engine.Store.GetLogs(job.Id, new LogQuery { Types = [type] }).Count);
        }
    }

    [Fact]
    public async Task The_dry_run_counts_what_the_job_then_does_for_a_fresh_target_and_for_a_re_run_and_writes_nothing()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        for (var i = 0; i < 8; i++) await _sourceClient.PutAsync(source, $"keep/{i}.bin", TestEndpoints.Bytes(1000 + i, i));
        for (var i = 0; i < 2; i++) await _sourceClient.PutAsync(source, $"skip/{i}.bin", TestEndpoints.Bytes(500, 50 + i));
        await _sourceClient.PutAsync(source, "keep/large.bin", TestEndpoints.Bytes(FivemiB + 4096, 77));
        await _sourceClient.PutAsync(source, "keep/clip.mp4", TestEndpoints.Bytes(700, 78), "video/mp4");
        var request = new MigrationJobRequest { SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target, Concurrency = 4 };
        DryRunDefinition(request);
        var jobsBefore = _engine.GetJobs().Count;

        var fresh = await _engine.PlanAsync(request, CancellationToken.None);

        Assert.Equal(jobsBefore, _engine.GetJobs().Count);
        Assert.Empty(await _targetClient.KeysAsync(target));
        Assert.Equal(9, fresh.Where(r => r.Action == PlannedAction.Transfer).Sum(r => r.Objects));
        Assert.Equal(1, fresh.Single(r => r is { Action: PlannedAction.Skip, Reason: nameof(LogType.ImportSkippedExcludedContentType) }).Objects);
        var (first, firstProgress) = await MigrateAsync(source, target, DryRunDefinition);
        Assert.Equal(JobState.Completed, first.State);
        AssertPlanIsWhatTheJobDid(fresh, first, firstProgress, excluded: 2);

        // A re-run after one object changed at the source: that one transfers, the rest are already there.
        await _sourceClient.PutAsync(source, "keep/3.bin", TestEndpoints.Bytes(4321, 99));
        var rerun = await _engine.PlanAsync(request, CancellationToken.None);
        Assert.Equal((1L, 4321L), (rerun.Where(r => r.Action == PlannedAction.Transfer).Sum(r => r.Objects), rerun.Where(r => r.Action == PlannedAction.Transfer).Sum(r => r.Bytes)));
        Assert.Equal(8, rerun.Single(r => r is { Action: PlannedAction.Skip, Reason: nameof(LogType.ImportSkippedExists) }).Objects);
        var (second, secondProgress) = await MigrateAsync(source, target, DryRunDefinition);
        AssertPlanIsWhatTheJobDid(rerun, second, secondProgress, excluded: 2);
    }
}
