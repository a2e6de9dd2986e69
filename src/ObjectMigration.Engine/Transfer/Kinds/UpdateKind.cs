using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer.Kinds;

/// <summary>
/// Changes the source's objects in place (-Type Update): storage class, content headers and user metadata by a copy of
/// the object onto itself with its headers replaced (in parts above the largest single copy), tags by PutObjectTagging.
/// Each object is read first and left alone when it is already as asked, so a resume or re-run changes every object
/// once. Tags an object had are written to the store before a copy (some servers drop them in it) and back after it.
/// Afterwards the object is read again: same size and ETag or checksum (its bytes unchanged), and what was asked.
/// </summary>
internal sealed class UpdateKind(RunContext run) : JobKind(run)
{
    /// <summary>Tags saved before copies an earlier run did not finish, read once: the run saves and forgets its own as it goes.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _savedTags =
        new(run.Store.GetUpdateIntents(run.Job.Id), StringComparer.Ordinal);

    private ObjectUpdate Update => Job.Update ?? throw new JobFatalException($"Job '{Job.Name}' is an Update with no change stored: create it again with -SetStorageClass, -SetTags, -AddTags, -RemoveTags or -SetMetadata.");
    private bool KeepsTags => Source.Profile.SupportsTagging;

    public override bool UsesTarget => false;
    public override bool ListsTarget => false;
    public override PlannedAction PlannedAction => PlannedAction.Update;
    public override JobPhase WorkPhase => JobPhase.Transferring;

    /// <summary>A storage-class-only update is decided from the listing for objects already in that class; the rest need a HEAD.</summary>
    public override ObjectResult? Decide(PendingObject o)
    {
        var update = Update;
        // A copy reads the object: an archived one needs a restore first. Tags alone can still change.
        if (update.ChangesHeaders && ObjectSelector.RetrievalSkip(o) is { } archived) return archived;
        if (update.StorageClass is { } wanted && !update.ChangesTags && update.ContentHeaders.Count == 0 && update.UserMetadata.Count == 0
            && string.Equals(o.StorageClass ?? "STANDARD", wanted, StringComparison.Ordinal))
        {
            return AlreadyApplied(o.Key, o.Size);
        }
        return null;
    }

    public override async Task<ObjectResult?> PlanCheckAsync(PendingObject o, CancellationToken ct)
    {
        var head = await Options.Retry.RunAsync(c => Source.HeadAsync(Job.SourceBucket, o.Key, c), null, ct).ConfigureAwait(false);
        if (head is null) return Gone(o.Key);
        if (Update.ChangesHeaders && ObjectSelector.ArchiveSkip(o, head.ArchiveStatus) is { } archived) return archived;
        var tags = KeepsTags && Update.ChangesTags ? Tagging.Parse(await Options.Retry.RunAsync(c => Source.GetTaggingAsync(Job.SourceBucket, o.Key, c), null, ct).ConfigureAwait(false)) : [];
        if (KeepsTags && Update.ChangesTags && Update.TagsFrom(tags).Count > UpdateRules.MaxTags) return TooManyTags(o.Key, tags.Count, Update.TagsFrom(tags).Count);
        var tagsDone = !KeepsTags || !Update.ChangesTags || Tagging.AreEqual(tags, Update.TagsFrom(tags));
        return HeadersAsAsked(head) && tagsDone ? AlreadyApplied(o.Key, head.Size) : null;
    }

    public override async Task ActAsync(WorkItem item, CancellationToken ct)
    {
        if (item is not ObjectWork { Object: var o }) return;
        try
        {
            Run.Finish(o.Key, await UpdateObjectAsync(o, ct).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Run.Abandon(o.Key);
        }
        catch (Exception e)
        {
            Counters.Forget(o.Key);
            Run.Fail(o, e);
        }
    }

    public override string Summary(MigrationJobProgress p) =>
        $"{p.TransferredObjects} updated ({Update}), {p.SkippedObjects} already as asked, {p.FailedObjects} failed of {p.Objects}.";

    private async Task<ObjectResult> UpdateObjectAsync(PendingObject o, CancellationToken ct)
    {
        var update = Update;
        if (await HeadAsync(o.Key, ct).ConfigureAwait(false) is not { } head) return Gone(o.Key);
        if (update.ChangesHeaders && ObjectSelector.ArchiveSkip(o, head.ArchiveStatus) is { } archived) return archived;
        // Tags from before an interrupted copy win over what the server shows now (it may have dropped them in the copy).
        var intent = _savedTags.GetValueOrDefault(o.Key);
        var currentTags = KeepsTags ? await TagsAsync(o.Key, ct).ConfigureAwait(false) : [];
        var tagsBefore = intent is not null ? Tagging.Parse(intent) : currentTags;
        var wantedTags = update.ChangesTags ? update.TagsFrom(tagsBefore) : tagsBefore;
        if (KeepsTags && wantedTags.Count > UpdateRules.MaxTags) return TooManyTags(o.Key, tagsBefore.Count, wantedTags.Count);
        var headersDone = HeadersAsAsked(head);
        var tagsDone = !KeepsTags || Tagging.AreEqual(currentTags, wantedTags);
        if (headersDone && tagsDone)
        {
            if (intent is not null) Forget(o.Key);
            return AlreadyApplied(o.Key, head.Size);
        }

        var copied = false;
        if (!headersDone)
        {
            if (KeepsTags && tagsBefore.Count > 0 && intent is null) Store.SaveUpdateIntent(Job.Id, o.Key, Tagging.Format(tagsBefore)!);
            var headers = update.HeadersFrom(head.Metadata, head.StorageClass, head.Encryption);
            if (Limiter is not null) await Limiter.ConsumeAsync(head.Size, ct).ConfigureAwait(false);
            try
            {
                await (head.Size > LargestSingleCopy ? RewriteInPartsAsync(o.Key, head, headers, ct) : RewriteAsync(o.Key, head, headers, ct)).ConfigureAwait(false);
            }
            catch (StorageException e) when (e.ErrorClass == ErrorClass.SourceChanged)
            {
                // The ETag read no longer matches: a retry whose first attempt did the copy (its answer lost), or a writer
                // meanwhile. Done if the change is there on an object of the same size; otherwise left to that writer.
                var now = await HeadAsync(o.Key, ct).ConfigureAwait(false);
                if (now is null || now.Size != head.Size || !HeadersAsAsked(now))
                {
                    if (intent is null) Forget(o.Key);
                    throw new StorageException(ErrorClass.SourceChanged, $"The object '{o.Key}' was rewritten by someone else while it was updated; it was left as that writer made it. Resume-MigrationJob -RetryFailed updates its new version.");
                }
            }
            catch (StorageException e) when (intent is null && e.ErrorClass is ErrorClass.InvalidRequest or ErrorClass.AccessDenied or ErrorClass.ObjectNotFound or ErrorClass.Unsupported)
            {
                // The server refused the copy outright: the object is as it was, tags included.
                Forget(o.Key);
                throw;
            }
            copied = true;
        }
        if (KeepsTags)
        {
            var tagsNow = copied ? await TagsAsync(o.Key, ct).ConfigureAwait(false) : currentTags;
            if (!Tagging.AreEqual(tagsNow, wantedTags))
            {
                await Options.Retry.RunAsync(async c =>
                {
                    await Source.PutTaggingAsync(Job.SourceBucket, o.Key, Tagging.Format(wantedTags) ?? "", c).ConfigureAwait(false);
                    return true;
                }, Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            }
        }

        var verifiedBy = await CheckAfterAsync(o.Key, head, wantedTags, ct).ConfigureAwait(false);
        if (intent is not null || (copied && KeepsTags && tagsBefore.Count > 0)) Forget(o.Key);
        var changes = new List<string>();
        if (!headersDone) changes.Add(HeaderChanges(head));
        if (KeepsTags && update.ChangesTags && !Tagging.AreEqual(tagsBefore, wantedTags)) changes.Add($"tags {FormatTags(tagsBefore)} -> {FormatTags(wantedTags)}");
        return new ObjectResult(o.Key, ObjectOutcome.Transferred, head.Size, LogType.ObjectUpdated,
            $"Updated: {string.Join("; ", changes.Where(c => c.Length > 0))}; bytes unchanged ({verifiedBy}).", null, verifiedBy, null);
    }

    private void Forget(string key)
    {
        _savedTags.TryRemove(key, out _);
        Store.ForgetUpdateIntent(Job.Id, key);
    }

    private long LargestSingleCopy => Options.LargestSingleCopy ?? Source.Profile.MaxPutSize;

    private Task<ObjectHead?> HeadAsync(string key, CancellationToken ct) =>
        Options.Retry.RunAsync(c => Source.HeadAsync(Job.SourceBucket, key, c), Run.OnRetry(key), ct);

    private async Task<Dictionary<string, string>> TagsAsync(string key, CancellationToken ct) =>
        Tagging.Parse(await Options.Retry.RunAsync(c => Source.GetTaggingAsync(Job.SourceBucket, key, c), Run.OnRetry(key), ct).ConfigureAwait(false));

    /// <summary>One CopyObject onto itself, pinned to the version read: a change made meanwhile fails it rather than being overwritten.</summary>
    private async Task RewriteAsync(string key, ObjectHead head, ObjectMetadata headers, CancellationToken ct)
    {
        await Options.Retry.RunAsync(c => Source.RewriteInPlaceAsync(Job.SourceBucket, key, headers, head.ETag, c), Run.OnRetry(key), ct).ConfigureAwait(false);
        Counters.Moved(key, head.Size);
    }

    /// <summary>
    /// Above the largest single copy: a multipart upload onto the same key whose parts are copied from the object itself,
    /// pinned to the version read. The upload is recorded, so a stop aborts it and a resume starts a clean one.
    /// </summary>
    private async Task RewriteInPartsAsync(string key, ObjectHead head, ObjectMetadata headers, CancellationToken ct)
    {
        if (Store.GetUploadId(Job.Id, key) is { } stale) await Run.AbortUploadQuietlyAsync(key, stale).ConfigureAwait(false);
        var profile = Source.Profile;
        var partSize = Math.Min(Math.Max(Math.Max(Job.PartSize, profile.MinPartSize), (head.Size + profile.MaxParts - 1) / profile.MaxParts), profile.MaxPartSize);
        // Tags go on once the object is complete (PutObjectTagging): not every server takes them with CreateMultipartUpload.
        var uploadId = await Run.Uploads.StartAsync(key, headers, Run.OnRetry(key), ct).ConfigureAwait(false);
        var parts = new List<(int, string)>();
        for (var (number, first) = (1, 0L); first < head.Size; number++, first += partSize)
        {
            var (partNumber, last) = (number, Math.Min(first + partSize, head.Size) - 1);
            var from = first;
            var etag = await Options.Retry.RunAsync(c => Source.UploadPartCopyAsync(Job.SourceBucket, key, Job.SourceBucket, key, uploadId, partNumber, from, last, head.ETag, c),
                Run.OnRetry(key), ct).ConfigureAwait(false);
            parts.Add((partNumber, etag.Value ?? throw new StorageException(ErrorClass.Integrity, $"UploadPartCopy of part {partNumber} of '{key}' returned no ETag.")));
            Counters.Moved(key, last - from + 1);
        }
        await Options.Retry.RunAsync(c => Source.CompleteMultipartAsync(Job.SourceBucket, key, uploadId, parts, c), Run.OnRetry(key), ct).ConfigureAwait(false);
        Store.ForgetUpload(Job.Id, key);
    }

    /// <summary>
    /// Reads the object back: its bytes are unchanged (same size, and the same ETag where it was the content's MD5 or the
    /// server kept it, else the same stored checksum) and it is as asked. Returns how the bytes were verified.
    /// </summary>
    private async Task<string> CheckAfterAsync(string key, ObjectHead before, IReadOnlyDictionary<string, string> wantedTags, CancellationToken ct)
    {
        var after = await HeadAsync(key, ct).ConfigureAwait(false)
            ?? throw new StorageException(ErrorClass.Integrity, $"The object '{key}' is gone after its update: it was deleted meanwhile, or the server lost it.");
        if (after.Size != before.Size) throw new StorageException(ErrorClass.Integrity, $"The object '{key}' is {after.Size} bytes after its update, {before.Size} before.");
        string verifiedBy;
        if (Checksums.SameETag(after.ETag, before.ETag)) verifiedBy = "size and ETag";
        else if (before.ETagIsContentMd5 && after.ETagIsContentMd5)
        {
            throw new StorageException(ErrorClass.Integrity, $"The object '{key}' has content MD5 {after.ETag} after its update, {before.ETag} before: its bytes changed.");
        }
        else if (before.Checksum is { } sum && after.Checksum is { } sumAfter && sum.Algorithm == sumAfter.Algorithm)
        {
            if (sum.Base64 != sumAfter.Base64) throw new StorageException(ErrorClass.Integrity, $"The object '{key}' has {sumAfter} after its update, {sum} before: its bytes changed.");
            verifiedBy = $"size and {sum.Algorithm}";
        }
        else verifiedBy = "size";
        if (!HeadersAsAsked(after)) throw new StorageException(ErrorClass.Integrity, $"The server did not keep the update of '{key}': {HeaderChanges(after)} is still to do.");
        if (KeepsTags)
        {
            var tags = await TagsAsync(key, ct).ConfigureAwait(false);
            if (!Tagging.AreEqual(tags, wantedTags)) throw new StorageException(ErrorClass.Integrity, $"The tags of '{key}' are {FormatTags(tags)} after its update, not {FormatTags(wantedTags)}.");
        }
        return verifiedBy;
    }

    /// <summary>Whether the storage class, content headers and user metadata the update names are already as it asks.</summary>
    private bool HeadersAsAsked(ObjectHead head) => HeaderChanges(head).Length == 0;

    /// <summary>What is still to change in the headers, as "storage class STANDARD -> STANDARD_IA; Cache-Control ..."; empty when nothing.</summary>
    private string HeaderChanges(ObjectHead head)
    {
        var update = Update;
        var changes = new List<string>();
        if (update.StorageClass is { } wanted && !string.Equals(head.StorageClass ?? "STANDARD", wanted, StringComparison.Ordinal))
        {
            changes.Add($"storage class {head.StorageClass ?? "STANDARD"} -> {wanted}");
        }
        var wantedHeaders = update.HeadersFrom(head.Metadata, head.StorageClass);
        foreach (var (name, value) in update.ContentHeaders)
        {
            var current = ContentHeader(head.Metadata, name);
            if (!string.Equals(current, ContentHeader(wantedHeaders, name), StringComparison.Ordinal)) changes.Add($"{name} '{current}' -> '{value}'");
        }
        foreach (var (name, value) in update.UserMetadata)
        {
            var has = head.Metadata.UserMetadata.TryGetValue(name, out var current);
            if (value is null ? has : current != value) changes.Add(value is null ? $"metadata -{name}" : $"metadata {name} '{current}' -> '{value}'");
        }
        return string.Join("; ", changes);
    }

    private static string? ContentHeader(ObjectMetadata m, string name) => name.ToLowerInvariant() switch
    {
        "content-type" => m.ContentType,
        "cache-control" => m.CacheControl,
        "content-disposition" => m.ContentDisposition,
        "content-encoding" => m.ContentEncoding,
        "content-language" => m.ContentLanguage,
        "expires" => m.Expires,
        _ => null,
    };

    private static string FormatTags(IReadOnlyDictionary<string, string> tags) =>
        tags.Count == 0 ? "(none)" : string.Join(", ", tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={t.Value}"));

    private static ObjectResult TooManyTags(string key, int had, int wanted) =>
        new(key, ObjectOutcome.Failed, 0, LogType.MigrationError,
            $"The object '{key}' has {had} tags; with this update it would have {wanted}, and S3 keeps at most {UpdateRules.MaxTags}. Remove some with -RemoveTags (or give all with -SetTags); it was not changed.");

    private static ObjectResult Gone(string key) =>
        new(key, ObjectOutcome.Failed, 0, LogType.MigrationError, $"The object '{key}' was deleted after it was listed; it was not updated.");

    private static ObjectResult AlreadyApplied(string key, long size) =>
        new(key, ObjectOutcome.Skipped, size, LogType.UpdateAlreadyApplied, "Already as asked: nothing was changed.");
}
