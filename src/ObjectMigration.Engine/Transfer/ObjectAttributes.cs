using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// What a target keeps of an object besides its bytes and content headers (tags, storage class, website redirect,
/// Object Lock), decided from the target's provider profile and the job's -StorageClass map; what a target cannot take
/// is said once per run.
/// </summary>
internal sealed class ObjectAttributes(
    MigrationJob job, IObjectStore source, IObjectStore target, RetryPolicy retry,
    Action<string, string?, string> logOnce, Action<LogRecord> log, Func<string, Action<StorageException, int>> onRetry)
{
    /// <summary>
    /// The source's headers as the target can take them: tags read when there are any, storage class, website redirect
    /// and Object Lock kept where the target's profile supports them; what it cannot take is said once in the log.
    /// </summary>
    /// <param name="withTags">False for a multipart upload: its tags are set once it is complete (CopyTagsAfterCompletionAsync).</param>
    public async Task<ObjectMetadata> ForTargetAsync(string key, ObjectHead head, bool withTags, CancellationToken ct)
    {
        var metadata = head.Metadata;
        var profile = target.Profile;
        if (withTags && head.TagCount != 0 && source.Profile.SupportsTagging && await ReadTagsAsync(key, ct).ConfigureAwait(false) is { } tagging)
        {
            if (profile.SupportsTagging) metadata.Tagging = tagging;
            else logOnce("tags", key, $"The target ({profile}) does not support object tags: tags are not copied (first seen on '{key}').");
        }
        metadata.StorageClass = StorageClassFor(key, metadata.StorageClass);
        if (metadata.WebsiteRedirectLocation is not null && !profile.SupportsWebsiteRedirect)
        {
            logOnce("redirect", key, $"The target ({profile}) does not support website redirects: x-amz-website-redirect-location is not copied (first seen on '{key}').");
            metadata.WebsiteRedirectLocation = null;
        }
        if ((metadata.ObjectLockMode ?? metadata.ObjectLockLegalHold) is not null && !profile.SupportsObjectLock)
        {
            logOnce("lock", key, $"The target ({profile}) does not support Object Lock: retention and legal holds are not copied (first seen on '{key}').");
            (metadata.ObjectLockMode, metadata.ObjectLockRetainUntil, metadata.ObjectLockLegalHold) = (null, null, null);
        }
        return metadata;
    }

    /// <summary>
    /// The class to write for an object of <paramref name="sourceClass"/>: what -StorageClass maps it to, else the same
    /// class where the target's profile has it. STANDARD is left to the target's default (some servers refuse the header).
    /// </summary>
    public string? StorageClassFor(string key, string? sourceClass)
    {
        var profile = target.Profile;
        var mapped = job.MappedStorageClass(sourceClass);
        var storageClass = mapped ?? sourceClass;
        if (storageClass is null or "STANDARD") return null;
        if (profile.StorageClasses is { } classes ? classes.Contains(storageClass) : mapped is not null) return storageClass;
        logOnce("class:" + storageClass, key, profile.StorageClasses is null
            ? $"Objects in storage class {storageClass} get the target's default class: which classes {profile} has is not known; name one with -StorageClass (first seen on '{key}')."
            : $"The target ({profile}) has no storage class {storageClass}: such objects get its default class; map it with -StorageClass (first seen on '{key}').");
        return null;
    }

    /// <summary>The source object's tags; a source that refuses to tell (no permission, no tagging) loses its tags, not the object.</summary>
    private async Task<string?> ReadTagsAsync(string key, CancellationToken ct)
    {
        try
        {
            return await retry.RunAsync(c => source.GetTaggingAsync(job.SourceBucket, key, c), onRetry(key), ct).ConfigureAwait(false);
        }
        catch (StorageException e) when (!e.IsJobFatal || e.ErrorClass == ErrorClass.AccessDenied)
        {
            logOnce("tags-unreadable", key, $"The source's tags could not be read, so they are not copied (first seen on '{key}'): {e.Message}");
            return null;
        }
    }

    /// <summary>A completed multipart object gets the source's tags (read now, so a resumed upload has them too).</summary>
    public async Task CopyTagsAfterCompletionAsync(string key, string targetKey, CancellationToken ct)
    {
        // Server-side: UploadPartCopy carries no tags either.
        if (!source.Profile.SupportsTagging) return;
        var tagging = await ReadTagsAsync(key, ct).ConfigureAwait(false);
        if (tagging is null) return;
        if (!target.Profile.SupportsTagging)
        {
            logOnce("tags", key, $"The target ({target.Profile}) does not support object tags: tags are not copied (first seen on '{key}').");
            return;
        }
        try
        {
            await retry.RunAsync(async c =>
            {
                await target.PutTaggingAsync(job.TargetBucket, targetKey, tagging, c).ConfigureAwait(false);
                return true;
            }, onRetry(key), ct).ConfigureAwait(false);
        }
        catch (StorageException e) when (!e.IsJobFatal || e.ErrorClass == ErrorClass.AccessDenied)
        {
            // The object is complete and intact; its tags are what is missing, and the log says so.
            log(new LogRecord(LogType.MigrationNotice, key, $"The object was copied but its tags could not be set: {e.Message}"));
        }
    }
}
