using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Transfer.Kinds;

/// <summary>
/// Reconciles the source with the target and copies nothing: each selected key is matching, missing on the target
/// (VerifyMissing) or different (VerifyMismatch), by <see cref="ObjectComparer"/>.
/// </summary>
internal sealed class VerifyKind(RunContext run) : JobKind(run)
{
    public override bool ListsTarget => true;
    public override JobPhase WorkPhase => JobPhase.Verifying;

    public override ObjectResult? Decide(PendingObject o)
    {
        if (o.TargetSize is null) return Missing(o);
        var comparison = ObjectComparer.Compare(o);
        if (comparison.NeedsHeads) return null;
        return comparison.IsDifferent ? Mismatch(o, comparison) : Matched(o, comparison);
    }

    public override async Task ActAsync(WorkItem item, CancellationToken ct)
    {
        if (item is not ObjectWork { Object: var o }) return;
        try
        {
            var source = await Options.Retry.RunAsync(c => Source.HeadAsync(Job.SourceBucket, o.Key, c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            var target = await Options.Retry.RunAsync(c => Target.HeadAsync(Job.TargetBucket, Run.TargetKey(o.Key), c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            if (target is null)
            {
                Run.Finish(o.Key, Missing(o));
                return;
            }
            var comparison = source is null ? ObjectComparer.Compare(o) with { NeedsHeads = false } : ObjectComparer.CompareHeads(source, target);
            Run.Finish(o.Key, comparison.IsDifferent ? Mismatch(o, comparison) : Matched(o, comparison));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Run.Abandon(o.Key);
        }
        catch (Exception e)
        {
            Run.Fail(o, e);
        }
    }

    // A verify copies nothing: its skipped objects are the ones that matched, its failed ones the differences.
    public override string Summary(MigrationJobProgress progress) =>
        $"{progress.SkippedObjects} matched, {progress.FailedObjects} missing or different on the target, of {progress.Objects}.";

    private static ObjectResult Missing(PendingObject o) => new(o.Key, ObjectOutcome.Failed, 0, LogType.VerifyMissing, "The target lacks this object.");

    private static ObjectResult Mismatch(PendingObject o, Comparison c) => new(o.Key, ObjectOutcome.Failed, 0, LogType.VerifyMismatch, $"Differs by {c.How}.");

    private static ObjectResult Matched(PendingObject o, Comparison c) => new(o.Key, ObjectOutcome.Skipped, o.Size, null, $"Matched: same {c.How}.", null, c.How);
}
