using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer.Kinds;

/// <summary>
/// Reconciles the source with the target and copies or deletes nothing. Both sides are listed into the store and merged
/// per key; each selected key is matching, missing on the target (VerifyMissing) or different (VerifyMismatch, saying
/// how), by <see cref="ObjectComparer"/>; keys only the target holds within the job's scope are VerifyExtra. Only what
/// the listings cannot settle goes to a worker: HEADs where listed MD5-looking ETags differ, -CompareMetadata, -Deep.
/// </summary>
internal sealed class VerifyKind(RunContext run) : JobKind(run)
{
    private const int TargetOnlyPageSize = 1000;

    public override bool ListsTarget => true;
    public override PlannedAction PlannedAction => PlannedAction.Check;
    public override JobPhase WorkPhase => JobPhase.Verifying;

    public override ObjectResult? Decide(PendingObject o)
    {
        if (o.TargetOnly) return Extra(o);
        if (o.TargetSize is null) return Missing(o);
        var comparison = ObjectComparer.Compare(o);
        // A size or a recorded copy that differs needs no bytes read to be sure; the rest may need a worker. -Deep reads
        // the bytes whatever the records say (a target rewritten with the same bytes has a new ETag): only a size decides before.
        if (comparison.IsDifferent && !comparison.NeedsHeads && (!Job.Deep || o.TargetSize != o.Size)) return Mismatch(o, [comparison.How]);
        if (Job.Deep || Job.CompareMetadata || comparison.NeedsHeads) return null;
        return Matched(o, comparison.How);
    }

    public override async Task ActAsync(WorkItem item, CancellationToken ct)
    {
        if (item is not ObjectWork { Object: var o }) return;
        try
        {
            Run.Finish(o.Key, await CheckAsync(o, ct).ConfigureAwait(false));
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

    private async Task<ObjectResult> CheckAsync(PendingObject o, CancellationToken ct)
    {
        var comparison = ObjectComparer.Compare(o);
        ObjectHead? source = null, target = null;
        if (comparison.NeedsHeads || Job.CompareMetadata)
        {
            source = await Options.Retry.RunAsync(c => Source.HeadAsync(Job.SourceBucket, o.Key, c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            target = await Options.Retry.RunAsync(c => Target.HeadAsync(Job.TargetBucket, Run.TargetKey(o.Key), c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            if (target is null) return Missing(o);
            if (source is null) throw new StorageException(ErrorClass.ObjectNotFound, $"The source object '{o.Key}' was deleted after it was listed; it was not verified.");
            if (comparison.NeedsHeads) comparison = ObjectComparer.CompareHeads(source, target);
        }
        if (Job.Deep)
        {
            // Both sides read whole, under the job's bandwidth cap; the source pinned to the listed version.
            var (sourceMd5, _) = await Options.Retry.RunAsync(c => ContentHash.Md5Async(Source, Job.SourceBucket, o.Key, o.ETag, Limiter, c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            var (targetMd5, _) = await Options.Retry.RunAsync(c => ContentHash.Md5Async(Target, Job.TargetBucket, Run.TargetKey(o.Key), null, Limiter, c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            comparison = sourceMd5 == targetMd5
                ? new Comparison(Sameness.Same, "size and content (both read, MD5 " + sourceMd5 + ")")
                : new Comparison(Sameness.Different, $"content: both read, source MD5 {sourceMd5}, target MD5 {targetMd5}");
        }
        var differences = new List<string>();
        if (comparison.IsDifferent) differences.Add(comparison.How);
        if (Job.CompareMetadata) differences.AddRange(await MetadataDifferencesAsync(o, source!, target!, ct).ConfigureAwait(false));
        return differences.Count > 0 ? Mismatch(o, differences) : Matched(o, comparison.How + (Job.CompareMetadata ? ", content type, metadata and tags" : ""));
    }

    /// <summary>Content type, user metadata and tags (where both sides keep tags), each named when it differs.</summary>
    private async Task<IReadOnlyList<string>> MetadataDifferencesAsync(PendingObject o, ObjectHead source, ObjectHead target, CancellationToken ct)
    {
        var differences = new List<string>();
        if (!string.Equals(source.Metadata.ContentType ?? "", target.Metadata.ContentType ?? "", StringComparison.OrdinalIgnoreCase))
        {
            differences.Add($"content type: source '{source.Metadata.ContentType}', target '{target.Metadata.ContentType}'");
        }
        var userDifferences = DictionaryDifferences(source.Metadata.UserMetadata, target.Metadata.UserMetadata);
        if (userDifferences.Count > 0) differences.Add($"metadata: {string.Join(", ", userDifferences)}");
        if (!(Source.Profile.SupportsTagging && Target.Profile.SupportsTagging))
        {
            Run.LogOnce("verify-tags", null, "Tags were not compared: one side keeps no object tags.");
            return differences;
        }
        var sourceTags = await Options.Retry.RunAsync(c => Source.GetTaggingAsync(Job.SourceBucket, o.Key, c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
        var targetTags = await Options.Retry.RunAsync(c => Target.GetTaggingAsync(Job.TargetBucket, Run.TargetKey(o.Key), c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
        var tagDifferences = DictionaryDifferences(Tagging.Parse(sourceTags), Tagging.Parse(targetTags));
        if (tagDifferences.Count > 0) differences.Add($"tags: {string.Join(", ", tagDifferences)}");
        return differences;
    }

    private static List<string> DictionaryDifferences(IReadOnlyDictionary<string, string> source, IReadOnlyDictionary<string, string> target)
    {
        var names = source.Keys.Concat(target.Keys).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.OrdinalIgnoreCase);
        var differences = new List<string>();
        foreach (var name in names)
        {
            var inSource = source.TryGetValue(name, out var a);
            var inTarget = target.TryGetValue(name, out var b);
            if (!inTarget) differences.Add($"{name} only on the source");
            else if (!inSource) differences.Add($"{name} only on the target");
            else if (a != b) differences.Add($"{name} '{a}' vs '{b}'");
        }
        return differences;
    }

    /// <summary>
    /// Once both listings are complete: the keys only the target holds, within the job's scope (the source prefix, and
    /// the filters applied to the target's copy), join the plan as target-only rows, which <see cref="Decide"/> reports.
    /// Paged by key, so memory stays flat; rows added are no longer target-only, so a resume does not add them twice.
    /// </summary>
    public override Task AfterSourceListedAsync(CancellationToken ct)
    {
        // Explicit keys (-Key, -FromVerify) check those keys only.
        if (Job.Keys.Length > 0) return Task.CompletedTask;
        var after = "";
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var page = Store.GetTargetOnlyObjects(Job.Id, after, TargetOnlyPageSize);
            if (page.Count == 0) return Task.CompletedTask;
            after = page[^1].Key;
            Store.SaveTargetOnlyObjects(Job.Id, page.Where(t => t.Key.StartsWith(Job.SourcePrefix, StringComparison.Ordinal) && Selector.Selects(t)).ToList());
        }
    }

    public override string Summary(MigrationJobProgress p) =>
        $"{p.MatchingObjects} matched, {p.MissingObjects + p.MismatchedObjects} missing or different on the target " +
        $"({p.MissingObjects} missing, {p.MismatchedObjects} mismatched), {p.ExtraObjects} only on the target, of {p.CheckedObjects} checked" +
        (p.FailedObjects > p.MissingObjects + p.MismatchedObjects + p.ExtraObjects
            ? $"; {p.FailedObjects - p.MissingObjects - p.MismatchedObjects - p.ExtraObjects} could not be checked (see MigrationError, ImportErrorRetryExhaustion)."
            : ".");

    private ObjectResult Missing(PendingObject o) =>
        new(o.Key, ObjectOutcome.Failed, 0, LogType.VerifyMissing, $"The target has no '{Run.TargetKey(o.Key)}' ({o.Size} bytes on the source).");

    private static ObjectResult Mismatch(PendingObject o, IReadOnlyList<string> differences) =>
        new(o.Key, ObjectOutcome.Failed, 0, LogType.VerifyMismatch, $"Differs by {string.Join("; ", differences)}.");

    private ObjectResult Extra(PendingObject o) =>
        new(o.Key, ObjectOutcome.Failed, 0, LogType.VerifyExtra,
            $"Only the target has '{Run.TargetKey(o.Key)}' ({o.TargetSize ?? o.Size} bytes, ETag {Checksums.Clean(o.TargetETag ?? o.ETag)}); it was not deleted.");

    private static ObjectResult Matched(PendingObject o, string how) => new(o.Key, ObjectOutcome.Skipped, o.Size, null, $"Matched: same {how}.", null, how);
}
