using System.Collections.Concurrent;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer.Kinds;

/// <summary>
/// Copies each selected object the overwrite rule lets through: server-side when both sides are one endpoint, else
/// streamed GET into PUT, large objects as multipart with their parts spread over every worker. Every source read is
/// pinned to the listed version; an object whose source changes starts over from its current version.
/// </summary>
internal sealed class MigrateKind : JobKind
{
    /// <summary>How often one object may start over because its source changed before it fails (and waits for -RetryFailed).</summary>
    private const int MaxSourceChangeRestarts = 3;

    private readonly bool _serverSide;
    private readonly ObjectAttributes _attributes;
    private readonly ConcurrentDictionary<string, int> _restarts = new(StringComparer.Ordinal);
    /// <summary>The target answered UploadPartCopy with NotImplemented: parts stream through the client for the rest of the run.</summary>
    private volatile bool _partCopyUnsupported;
    /// <summary>The source refused If-Match for an unchanged object: reads go unconditioned, checked by the ETag each answer names.</summary>
    private volatile bool _readsPinnedByAnswer;
    /// <summary>The rate parts move at in this run, which sizes the parts of the objects started after.</summary>
    private readonly PartSizing _partSizing = new();

    public MigrateKind(RunContext run) : base(run)
    {
        _serverSide = run.Source.ServerSideCopyKey == run.Target.ServerSideCopyKey;
        _attributes = new ObjectAttributes(run.Job, run.Source, run.Target, run.Options.Retry, run.LogOnce, run.Log, run.OnRetry);
    }

    /// <summary>Always overwrites without looking; every other mode decides from what the target holds.</summary>
    public override bool ListsTarget => Job.Overwrite != OverwriteMode.Always;

    public override JobPhase WorkPhase => JobPhase.Transferring;

    public override ObjectResult? Decide(PendingObject o) => Selector.SkipReason(o);

    public override async Task ActAsync(WorkItem item, CancellationToken ct)
    {
        switch (item)
        {
            case ObjectWork w: await CopyObjectAsync(w.Object, ct).ConfigureAwait(false); break;
            case PartWork p: await CopyPartAsync(p, ct).ConfigureAwait(false); break;
        }
    }

    public override string Summary(MigrationJobProgress progress) =>
        $"{progress.TransferredObjects} transferred ({progress.TransferredBytes} bytes), {progress.SkippedObjects} skipped, {progress.FailedObjects} failed of {progress.Objects}.";

    /// <summary>What a copy finds out first, read-only: an archived Intelligent-Tiering object, a content type the job excludes.</summary>
    public override async Task<ObjectResult?> PlanCheckAsync(PendingObject o, CancellationToken ct)
    {
        var archive = ObjectSelector.NeedsArchiveCheck(o);
        if (!archive && !Selector.HasContentTypeRule) return null;
        var head = await Options.Retry.RunAsync(c => Source.HeadAsync(Job.SourceBucket, o.Key, c), null, ct).ConfigureAwait(false);
        if (head is null) return null;
        if (archive && ObjectSelector.ArchiveSkip(o, head.ArchiveStatus) is { } archived) return archived;
        return Selector.ContentTypeSkip(o.Key, o.Size, head.Metadata.ContentType);
    }

    /// <summary>The ETag a source read is conditioned on: the listed one, unless the source mishandles If-Match.</summary>
    private string? ReadCondition(PendingObject o) => _readsPinnedByAnswer ? null : o.ETag;

    private async Task CopyObjectAsync(PendingObject o, CancellationToken ct)
    {
        try
        {
            if (await CopiedByEarlierRunAsync(o, ct).ConfigureAwait(false) is { } found)
            {
                Run.Finish(o.Key, found);
                return;
            }
            if (ObjectSelector.NeedsArchiveCheck(o))
            {
                var head = await Options.Retry.RunAsync(c => Source.HeadAsync(Job.SourceBucket, o.Key, c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
                if (ObjectSelector.ArchiveSkip(o, head?.ArchiveStatus) is { } archived)
                {
                    Run.Finish(o.Key, archived);
                    return;
                }
            }
            if (o.Size > Math.Min(Job.MultipartThreshold, Target.Profile.MaxPutSize))
            {
                await StartMultipartAsync(o, ct).ConfigureAwait(false);
                return;
            }
            var result = await Options.Retry.RunAsync(async c =>
            {
                try
                {
                    return await (_serverSide ? CopyServerSideAsync(o, c) : CopyStreamingAsync(o, c)).ConfigureAwait(false);
                }
                catch
                {
                    // This attempt's bytes did not arrive whole; a retry counts its own.
                    Counters.Forget(o.Key);
                    throw;
                }
            }, Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            Run.Finish(o.Key, result);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Run.Abandon(o.Key);
        }
        catch (StorageException e) when (e.ErrorClass == ErrorClass.SourceChanged)
        {
            await RestartChangedAsync(o, null, e.ConditionRefused, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Run.Fail(o, e);
        }
    }

    /// <summary>
    /// A pending object an earlier run handed to a worker may be on the target already: that run copied it and was killed
    /// before recording it. Copying it again would write it twice (another version in a versioned bucket). It counts as
    /// copied when the target holds it in the listed size with the listed MD5 as its ETag, written since the job first
    /// started. Where the ETag is no MD5 (multipart, SSE-KMS) the bytes cannot be told from the ETag: it is copied again.
    /// </summary>
    private async Task<ObjectResult?> CopiedByEarlierRunAsync(PendingObject o, CancellationToken ct)
    {
        if (!Run.MayBeCopiedUnrecorded(o.Key)) return null;
        if (!Checksums.IsPlainMd5(o.ETag) || Job.StartedAt is null) return null;
        var started = Job.StartedAt.Value;
        var target = await Options.Retry.RunAsync(c => Target.HeadAsync(Job.TargetBucket, Run.TargetKey(o.Key), c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
        // The server's clock dates the object, ours the job: SigV4 keeps the two within 15 minutes.
        if (target is null || target.Size != o.Size || !target.ETagIsContentMd5 || !Checksums.SameETag(target.ETag, o.ETag)
            || target.LastModified < started - TimeSpan.FromMinutes(15))
        {
            return null;
        }
        Counters.Moved(o.Key, o.Size, measured: false);
        return new ObjectResult(o.Key, ObjectOutcome.Transferred, o.Size, null,
            "Found on the target as an earlier run copied it; that run ended before it recorded the copy.",
            Checksums.Clean(o.ETag), Verification.FoundCopied, target.ETag);
    }

    // ---- Pinning: every read after listing is of the listed version ----

    /// <summary>A server that ignores If-Match still names the version it sent: anything but the listed one is a change.</summary>
    private static void EnsureListedVersion(PendingObject o, ObjectHead head)
    {
        if (o.ETag is not null && head.ETag is not null && !Checksums.SameETag(o.ETag, head.ETag))
        {
            throw new StorageException(ErrorClass.SourceChanged, $"The source object '{o.Key}' is now ETag {head.ETag}; it was listed as {o.ETag}.");
        }
        // The listed version in another size: the answer is wrong, not the object (a Content-Length cut on the way). Where
        // the ETag is no MD5 nothing else would notice a short body, so nothing of this answer is written.
        if (o.ETag is not null && head.ETag is not null && head.Size != o.Size)
        {
            throw new StorageException(ErrorClass.Integrity, $"The source answered for '{o.Key}' with {head.Size} bytes of the version listed with {o.Size}: the answer is read again.");
        }
    }

    /// <summary>
    /// The source changed while it was copied (412 on a pinned read, another ETag on resume): the object starts over from
    /// its current version, with new listing data and a new upload (the old one aborted), so the target never holds a mix
    /// of two versions. An object that keeps changing fails after a few restarts and is retried with -RetryFailed.
    /// </summary>
    private async Task RestartChangedAsync(PendingObject o, string? uploadId, bool onlyConditionRefused, CancellationToken ct)
    {
        // What was counted for this object is recounted by the new attempt (parts kept included).
        Counters.Forget(o.Key);
        try
        {
            var restarts = _restarts.AddOrUpdate(o.Key, 1, (_, n) => n + 1);
            var head = await Options.Retry.RunAsync(c => Source.HeadAsync(Job.SourceBucket, o.Key, c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            var unchanged = head is not null && Checksums.SameETag(head.ETag, o.ETag) && head.Size == o.Size;
            if (onlyConditionRefused && unchanged && restarts > MaxSourceChangeRestarts)
            {
                if (uploadId is not null) await Run.AbortUploadQuietlyAsync(o.Key, uploadId).ConfigureAwait(false);
                Run.Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.ImportSourceChanged,
                    $"The source refused reads of this object {restarts} times though it did not change (ETag {o.ETag}); Resume-MigrationJob -RetryFailed tries again."));
                return;
            }
            // Only a refused condition may keep the upload: a change the client saw itself (another ETag in an answer or a
            // HEAD) always starts over, whatever a later HEAD says (a stale replica, the old bytes written back).
            if (onlyConditionRefused && unchanged)
            {
                // Refused for a condition that holds: this server's conditions are not to be trusted. Reads and copies go
                // without them from now on, and the ETag each answer names keeps them to the listed version. The parts
                // copied so far are of that version: the upload goes on.
                _readsPinnedByAnswer = true;
                Run.LogOnce("if-match", o.Key, $"The source refused a condition on an object that did not change ('{o.Key}', ETag {o.ETag}): reads are checked by the ETag each answer names instead.");
                await CopyObjectAsync(o, ct).ConfigureAwait(false);
                return;
            }
            if (uploadId is not null) await Run.AbortUploadQuietlyAsync(o.Key, uploadId).ConfigureAwait(false);
            if (head is null)
            {
                Run.Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.ImportSourceChanged,
                    $"The source object was deleted while it was being copied (listed ETag {o.ETag}); nothing of it was kept on the target."));
                return;
            }
            if (restarts > MaxSourceChangeRestarts)
            {
                Run.Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.ImportSourceChanged,
                    $"The source object changed {restarts} times while it was being copied (now ETag {head.ETag}); Resume-MigrationJob -RetryFailed copies it once it is stable."));
                return;
            }
            var current = o with { Size = head.Size, ETag = head.ETag, LastModified = head.LastModified, StorageClass = head.StorageClass };
            var listed = new ListedObject(o.Key, head.Size, head.ETag, head.LastModified, head.StorageClass);
            Store.UpdateListedObject(Job.Id, listed);
            if (!Selector.Selects(listed))
            {
                Run.Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Skipped, 0, LogType.ImportSourceChanged,
                    $"The source changed while it was copied (now ETag {head.ETag}, {head.Size} bytes) and no longer matches the job's filters: not copied" +
                    $"{(uploadId is null ? "" : "; the partial multipart upload was aborted")}."));
                return;
            }
            Run.Log(new LogRecord(LogType.ImportSourceChanged, o.Key,
                $"The source changed while it was copied (listed: ETag {o.ETag}, {o.Size} bytes; now: ETag {head.ETag}, {head.Size} bytes): " +
                $"copying the current version from the start{(uploadId is null ? "" : "; the partial multipart upload was aborted")}."));
            await CopyObjectAsync(current, ct).ConfigureAwait(false);
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

    // ---- Single-part copies ----

    private async Task<ObjectResult> CopyServerSideAsync(PendingObject o, CancellationToken ct)
    {
        if (Selector.HasContentTypeRule)
        {
            var head = await Source.HeadAsync(Job.SourceBucket, o.Key, ct).ConfigureAwait(false)
                ?? throw new StorageException(ErrorClass.ObjectNotFound, $"The source object '{o.Key}' vanished before it was copied.");
            if (Selector.ContentTypeSkip(o.Key, o.Size, head.Metadata.ContentType) is { } skip) return skip;
        }
        // No bytes pass through here, but the cap is on the job's bandwidth, which a server-side copy uses too.
        if (Limiter is not null) await Limiter.ConsumeAsync(o.Size, ct).ConfigureAwait(false);
        var storageClass = _attributes.StorageClassFor(o.Key, o.StorageClass);
        var etag = await Target.CopyAsync(Job.SourceBucket, o.Key, Job.TargetBucket, Run.TargetKey(o.Key), ReadCondition(o), storageClass, ct).ConfigureAwait(false);
        var verifiedBy = Verification.ServerSide;
        if (o.ETag is not null && (etag.Value is null || !Checksums.SameETag(o.ETag, etag.Value)))
        {
            // Another ETag: the source changed (some servers ignore x-amz-copy-source-if-match and copy the new version),
            // the bytes differ, or the ETags are no MD5s (multipart, SSE-KMS), which a listing cannot tell: the source says.
            var source = await Source.HeadAsync(Job.SourceBucket, o.Key, ct).ConfigureAwait(false);
            if (source is null || !Checksums.SameETag(source.ETag, o.ETag))
            {
                throw new StorageException(ErrorClass.SourceChanged, $"The source object '{o.Key}' is now ETag {source?.ETag ?? "(deleted)"}; it was listed as {o.ETag}.");
            }
            if (source.ETagIsContentMd5 && etag.IsContentMd5)
            {
                throw new StorageException(ErrorClass.Integrity, $"Server-side copy of '{o.Key}' produced ETag {etag}, expected {o.ETag}.");
            }
            verifiedBy = Verification.ServerSideOpaque;
        }
        else if (etag.IsContentMd5)
        {
            verifiedBy = Verification.ServerSideSameETag;
        }
        // A server-side copy shows no bytes while it runs: they count when it is done.
        Counters.Moved(o.Key, o.Size);
        return new ObjectResult(o.Key, ObjectOutcome.Transferred, o.Size, null, "Copied server-side.", Checksums.Clean(etag.Value ?? o.ETag), verifiedBy, etag.Value);
    }

    private async Task<ObjectResult> CopyStreamingAsync(PendingObject o, CancellationToken ct)
    {
        using var download = await Source.GetAsync(Job.SourceBucket, o.Key, null, null, ReadCondition(o), ct).ConfigureAwait(false);
        var head = download.Head;
        EnsureListedVersion(o, head);
        if (Selector.ContentTypeSkip(o.Key, o.Size, head.Metadata.ContentType) is { } skip) return skip;
        var size = head.Size;
        // Where the source ETag is the content MD5 (single part, no SSE-KMS/SSE-C), it goes up as Content-MD5: the target
        // verifies every byte it receives against it (BadDigest otherwise), and the client does not hash them again.
        // Otherwise the client hashes while streaming; a full-object checksum the source stored is recomputed and
        // compared, and sent along for the target to check on receipt where it supports that.
        var sourceMd5 = head.ETagIsContentMd5 ? Checksums.Clean(head.ETag) : null;
        var sourceChecksum = head.Checksum;
        var sendChecksum = sourceChecksum is not null && Target.Profile.SupportsChecksums;
        using var body = new HashingReadStream(download.Body, Limiter, ct, hash: sourceMd5 is null, checksumAlgorithm: sourceChecksum?.Algorithm,
            onRead: n => Counters.Moved(o.Key, n));
        var checks = new PayloadChecks(sourceMd5 is null ? null : Convert.ToBase64String(Convert.FromHexString(sourceMd5)), sendChecksum ? sourceChecksum : null);
        var metadata = await _attributes.ForTargetAsync(o.Key, head, withTags: true, ct).ConfigureAwait(false);
        var etag = await Target.PutAsync(Job.TargetBucket, Run.TargetKey(o.Key), body, size, metadata, checks, ct).ConfigureAwait(false);
        if (body.BytesRead != size) throw Truncated(o.Key, body.BytesRead, size);
        if (sourceChecksum is not null && body.ChecksumBase64() is { } computed && computed != sourceChecksum.Base64)
        {
            throw new StorageException(ErrorClass.Integrity,
                $"Checksum mismatch for '{o.Key}': the bytes read have {sourceChecksum.Algorithm} {computed}, the source stored {sourceChecksum.Base64}.");
        }
        var md5 = sourceMd5 ?? body.Md5Hex()!;
        if (etag.IsContentMd5 && etag.Clean != md5) throw Mismatch(o.Key, md5, head.ETag, etag.Value);
        var verifiedBy = sourceMd5 is not null ? Verification.ContentMd5
            : sourceChecksum is not null ? Verification.SourceChecksum(sourceChecksum.Algorithm, sendChecksum)
            : etag.IsContentMd5 ? Verification.Md5EqualsTargetETag
            : Verification.SizeOnly;
        if (etag.IsContentMd5 && (sourceMd5 is not null || sourceChecksum is not null)) verifiedBy += Verification.AndTargetETag;
        return new ObjectResult(o.Key, ObjectOutcome.Transferred, size, null, null, md5, verifiedBy, etag.Value);
    }

    private static StorageException Truncated(string key, long read, long size) =>
        new(ErrorClass.Integrity, $"Read {read} of {size} bytes of '{key}': the download was cut short.");

    private static StorageException Mismatch(string key, string md5, string? sourceETag, string? targetETag) =>
        new(ErrorClass.Integrity, $"Checksum mismatch for '{key}': content MD5 {md5}, source ETag {sourceETag}, target ETag {targetETag}.");

    // ---- Multipart ----

    private async Task StartMultipartAsync(PendingObject o, CancellationToken ct)
    {
        var uploadId = Store.GetUploadId(Job.Id, o.Key);
        var done = uploadId is null ? [] : Store.GetUploadedParts(Job.Id, o.Key).ToList();
        // Parts kept from an earlier run go on at their size, whatever this run's rate would choose.
        var partSize = PartSizing.OfKept(o.Size, done.Select(p => (p.PartNumber, p.Size)).ToList(), Target.Profile.MinPartSize, Target.Profile.MaxPartSize, Target.Profile.MaxParts)
            ?? PartSizeFor(o.Size);
        var partCount = (int)((o.Size + partSize - 1) / partSize);
        if (done.Any(p => p.Size != Math.Min(partSize, o.Size - (long)(p.PartNumber - 1) * partSize)))
        {
            // Parts that fit no part size the target takes: start over rather than mix them.
            await Run.AbortUploadQuietlyAsync(o.Key, uploadId!).ConfigureAwait(false);
            uploadId = null;
            done = [];
        }
        var head = await Options.Retry.RunAsync(c => Source.HeadAsync(Job.SourceBucket, o.Key, c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
        if (head is null || (o.ETag is not null && !Checksums.SameETag(head.ETag, o.ETag)) || head.Size != o.Size)
        {
            // Changed since it was listed, or since the parts kept from an earlier run were copied: none of them may be reused.
            await RestartChangedAsync(o, uploadId, onlyConditionRefused: false, ct).ConfigureAwait(false);
            return;
        }
        if (uploadId is null)
        {
            if (Selector.ContentTypeSkip(o.Key, o.Size, head.Metadata.ContentType) is { } skip)
            {
                Run.Finish(o.Key, skip);
                return;
            }
            // Tags go on once the object is complete (not every server takes them with CreateMultipartUpload: Ceph drops them).
            var metadata = await _attributes.ForTargetAsync(o.Key, head, withTags: false, ct).ConfigureAwait(false);
            uploadId = await Run.Uploads.StartAsync(o.Key, metadata, Run.OnRetry(o.Key), ct).ConfigureAwait(false);
        }
        var upload = new MultipartUpload(o, uploadId, partSize, partCount, done);
        var missing = Enumerable.Range(1, partCount).Where(n => !upload.Parts.ContainsKey(n)).ToList();
        // Parts kept from an earlier run are on the target: they count as done, but not toward this run's rate.
        Counters.Moved(o.Key, done.Sum(p => p.Size), measured: false);
        if (missing.Count == 0)
        {
            await CompleteMultipartAsync(upload, ct).ConfigureAwait(false);
            return;
        }
        upload.Remaining = missing.Count;
        foreach (var n in missing) Queue.EnqueuePart(new PartWork(upload, n));
    }

    /// <summary>
    /// The job's part size, raised to the target's minimum, to what the rate parts moved at so far makes worth it
    /// (<see cref="PartSizing"/>) and to what the target's part-count limit needs, capped at its largest part.
    /// </summary>
    private long PartSizeFor(long size)
    {
        var profile = Target.Profile;
        return _partSizing.For(size, Job.PartSize, profile.MinPartSize, profile.MaxPartSize, profile.MaxParts);
    }

    /// <summary>Server-side part copies, unless the target has none (its profile says so, or it answered NotImplemented once).</summary>
    private bool CopiesPartsServerSide => _serverSide && Target.Profile.SupportsPartCopy && !_partCopyUnsupported;

    private async Task CopyPartAsync(PartWork work, CancellationToken ct)
    {
        var upload = work.Upload;
        if (upload.Failed) { await PartDoneAsync(upload, ct).ConfigureAwait(false); return; }
        var first = (long)(work.PartNumber - 1) * upload.PartSize;
        var length = Math.Min(upload.PartSize, upload.Object.Size - first);
        try
        {
            var attemptStarted = 0L;
            var part = await Options.Retry.RunAsync(async c =>
            {
                attemptStarted = System.Diagnostics.Stopwatch.GetTimestamp();
                if (CopiesPartsServerSide)
                {
                    try
                    {
                        if (Limiter is not null) await Limiter.ConsumeAsync(length, c).ConfigureAwait(false);
                        var copied = await Target.UploadPartCopyAsync(Job.SourceBucket, upload.Object.Key, Job.TargetBucket, Run.TargetKey(upload.Object.Key),
                            upload.UploadId, work.PartNumber, first, first + length - 1, ReadCondition(upload.Object), c).ConfigureAwait(false);
                        Counters.Moved(upload.Object.Key, length);
                        return new UploadedPart(work.PartNumber, copied.Value!, length);
                    }
                    catch (StorageException e) when (e.ErrorClass == ErrorClass.Unsupported)
                    {
                        _partCopyUnsupported = true;
                        Run.LogOnce("partcopy", upload.Object.Key,
                            $"The target ({Target.Profile}) does not implement UploadPartCopy: large objects are copied through this machine instead ({e.Message}).");
                    }
                }
                return await UploadOnePartAsync(upload, work.PartNumber, first, length, c).ConfigureAwait(false);
            }, Run.OnRetry(upload.Object.Key), ct).ConfigureAwait(false);
            _partSizing.Observe(length, System.Diagnostics.Stopwatch.GetElapsedTime(attemptStarted));
            Store.SavePart(Job.Id, upload.Object.Key, part);
            upload.Parts[part.PartNumber] = part;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            upload.Failed = true;
            upload.Cancelled = true;
        }
        catch (Exception e)
        {
            upload.Failed = true;
            // A source change wins over other part failures: the object starts over anyway.
            if (e is StorageException { ErrorClass: ErrorClass.SourceChanged, ConditionRefused: false }) upload.ChangeObserved = true;
            if (upload.Error is null || e is StorageException { ErrorClass: ErrorClass.SourceChanged }) upload.Error = e;
        }
        await PartDoneAsync(upload, ct).ConfigureAwait(false);
    }

    private async Task<UploadedPart> UploadOnePartAsync(MultipartUpload upload, int partNumber, long first, long length, CancellationToken ct)
    {
        // The part streams from the ranged GET, pinned to the listed version, into the UploadPart; its MD5, taken on the
        // way, must match the part's ETag where the target's ETags are MD5s.
        using var download = await Source.GetAsync(Job.SourceBucket, upload.Object.Key, first, first + length - 1, ReadCondition(upload.Object), ct).ConfigureAwait(false);
        EnsureListedVersion(upload.Object, download.Head);
        var key = upload.Object.Key;
        using var body = new HashingReadStream(download.Body, Limiter, ct, onRead: n => Counters.Moved(key, n));
        try
        {
            var etag = await Target.UploadPartAsync(Job.TargetBucket, Run.TargetKey(key), upload.UploadId, partNumber, body, length, PayloadChecks.None, ct).ConfigureAwait(false);
            if (body.BytesRead != length) throw new StorageException(ErrorClass.Integrity, $"Part {partNumber} of '{key}': read {body.BytesRead} of {length} bytes.");
            var md5Hex = body.Md5Hex()!;
            if (etag.IsContentMd5 && etag.Clean != md5Hex)
            {
                throw new StorageException(ErrorClass.Integrity, $"Part {partNumber} of '{key}': target ETag {etag}, sent MD5 {md5Hex}.");
            }
            if (!etag.IsContentMd5) Interlocked.Increment(ref upload.OpaqueParts);
            return new UploadedPart(partNumber, etag.Value!, length);
        }
        catch
        {
            // This attempt's bytes did not make a part; a retry counts its own.
            Counters.Moved(key, -body.BytesRead);
            throw;
        }
    }

    private async Task PartDoneAsync(MultipartUpload upload, CancellationToken ct)
    {
        if (Interlocked.Decrement(ref upload.Remaining) != 0) return;
        // The last part to finish completes the object, on this worker.
        if (upload.Cancelled)
        {
            Run.Abandon(upload.Object.Key);
            return;
        }
        if (upload.Error is StorageException { ErrorClass: ErrorClass.SourceChanged })
        {
            await RestartChangedAsync(upload.Object, upload.UploadId, onlyConditionRefused: !upload.ChangeObserved, ct).ConfigureAwait(false);
            return;
        }
        if (upload.Failed)
        {
            Run.Fail(upload.Object, upload.Error!);
            return;
        }
        await CompleteMultipartAsync(upload, ct).ConfigureAwait(false);
    }

    private async Task CompleteMultipartAsync(MultipartUpload upload, CancellationToken ct)
    {
        var o = upload.Object;
        var completedOnServer = false;
        try
        {
            var parts = upload.Parts.Values.OrderBy(p => p.PartNumber).Select(p => (p.PartNumber, p.ETag)).ToList();
            if (_serverSide)
            {
                // Servers that ignore x-amz-copy-source-if-match on UploadPartCopy (R2, older Ceph) copy whatever version
                // is there: the source must still be the listed version after the last part, or nothing is completed.
                var source = await Options.Retry.RunAsync(c => Source.HeadAsync(Job.SourceBucket, o.Key, c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
                if (source is null || (o.ETag is not null && !Checksums.SameETag(source.ETag, o.ETag)))
                {
                    throw new StorageException(ErrorClass.SourceChanged, $"The source object '{o.Key}' is now ETag {source?.ETag ?? "(deleted)"}; it was listed as {o.ETag}.");
                }
            }
            // The composite ETag (MD5 of the parts' MD5s) is checked only where every part ETag was an MD5 and the object
            // is not encrypted opaquely; part ETags that are not hex are never parsed as such.
            var partMd5s = parts.Select(p => Checksums.Clean(p.ETag)!).ToList();
            var expected = partMd5s.All(Checksums.IsPlainMd5) ? Checksums.MultipartETag(partMd5s) : null;
            StoredETag completed;
            try
            {
                completed = await Options.Retry.RunAsync(c => Target.CompleteMultipartAsync(Job.TargetBucket, Run.TargetKey(o.Key), upload.UploadId, parts, c), Run.OnRetry(o.Key), ct)
                    .ConfigureAwait(false);
            }
            catch (StorageException e) when (e.ErrorClass != ErrorClass.SourceChanged)
            {
                completed = await CompletedAfterAllAsync(upload, expected, e, ct).ConfigureAwait(false);
            }
            completedOnServer = true;
            // Some servers answer CompleteMultipartUpload without an ETag; HEAD tells the truth, and the size too.
            var head = await Options.Retry.RunAsync(c => Target.HeadAsync(Job.TargetBucket, Run.TargetKey(o.Key), c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
            var etag = string.IsNullOrEmpty(completed.Value) ? head?.ETag : completed.Value;
            if (head is null || head.Size != o.Size)
            {
                throw new StorageException(ErrorClass.Integrity, $"After completing '{o.Key}' the target reports {head?.Size.ToString() ?? "no object"}, expected {o.Size} bytes.");
            }
            var cleanETag = Checksums.Clean(etag);
            var streamed = !CopiesPartsServerSide;
            var comparable = streamed && expected is not null && upload.OpaqueParts == 0
                && cleanETag is not null && cleanETag.Contains('-') && !head.OpaquelyEncrypted;
            if (comparable && cleanETag != expected)
            {
                throw new StorageException(ErrorClass.Integrity, $"Multipart ETag of '{o.Key}' is {cleanETag}, expected {expected} from the parts sent.");
            }
            var verifiedBy = !streamed ? Verification.ServerSideParts : comparable ? Verification.PartsMatchETags : Verification.PartsSizeOnly;
            await _attributes.CopyTagsAfterCompletionAsync(o.Key, Run.TargetKey(o.Key), ct).ConfigureAwait(false);
            Run.Finish(o.Key, new ObjectResult(o.Key, ObjectOutcome.Transferred, o.Size, null, $"Multipart, {parts.Count} parts.", expected ?? cleanETag, verifiedBy, etag));
            // The record of the completed upload goes once the result is in the store: a kill before that leaves a resume
            // the parts' ETags, which tell the completed object on the target (CompletedAfterAllAsync) from one to copy again.
            Run.ForgetUploadOnceRecorded(o.Key);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Run.Abandon(o.Key);
        }
        catch (StorageException e) when (e.ErrorClass == ErrorClass.SourceChanged)
        {
            await RestartChangedAsync(o, upload.UploadId, e.ConditionRefused, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Completed but found wrong: there is no upload any more for a resume to complete or abort.
            if (completedOnServer) Store.ForgetUpload(Job.Id, o.Key);
            Run.Fail(o, e);
        }
    }

    /// <summary>
    /// A completion whose answer was lost on the way may have completed the upload: its retries then find the upload gone
    /// (NoSuchUpload; s3rver answers 500). The target tells: an object with the composite ETag of exactly these parts is
    /// this upload, done. Otherwise the upload is aborted and forgotten, so that -RetryFailed starts the object over
    /// rather than completing, again and again, an upload that is no more.
    /// </summary>
    private async Task<StoredETag> CompletedAfterAllAsync(MultipartUpload upload, string? expected, StorageException failure, CancellationToken ct)
    {
        var o = upload.Object;
        if (expected is not null)
        {
            try
            {
                var head = await Options.Retry.RunAsync(c => Target.HeadAsync(Job.TargetBucket, Run.TargetKey(o.Key), c), Run.OnRetry(o.Key), ct).ConfigureAwait(false);
                if (head is not null && head.Size == o.Size && Checksums.Clean(head.ETag) == expected) return new StoredETag(head.ETag, false);
            }
            catch (StorageException)
            {
                // Not known: taken as not completed.
            }
        }
        await Run.AbortUploadQuietlyAsync(o.Key, upload.UploadId).ConfigureAwait(false);
        throw failure;
    }
}
