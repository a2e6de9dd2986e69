using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

public enum Sameness { Same, Different, Unknown }

/// <summary>What comparing a source object with its target copy found, and how (said in logs and reports).</summary>
public readonly record struct Comparison(Sameness Verdict, string How)
{
    /// <summary>
    /// Different only by listed ETags that both look like MD5s: a listing cannot tell an MD5 from an SSE-KMS or SSE-C
    /// ETag, so HEADs of both (<see cref="ObjectComparer.CompareHeads"/>) decide where it matters.
    /// </summary>
    public bool NeedsHeads { get; init; }

    public bool IsSame => Verdict == Sameness.Same;
    public bool IsDifferent => Verdict == Sameness.Different;
}

/// <summary>
/// The one "same object?" rule: overwrite decisions (-Overwrite IfDifferent), Verify and the dry run all ask here.
/// Sizes first; then content by the best evidence there is without reading bytes: MD5 ETags on both sides, this
/// this module's record of its own verified copy (first: it knows which side changed since), MD5 ETags on both sides,
/// equal multipart ETags (same part layout). What none of these settles is
/// <see cref="Sameness.Unknown"/>; reading both sides (<see cref="ContentHash"/>, Verify -Deep) settles it.
/// </summary>
public static class ObjectComparer
{
    /// <summary>Compares what the listings (and the copy record) show of a source object and its target; the target must exist.</summary>
    public static Comparison Compare(PendingObject o)
    {
        if (o.TargetSize != o.Size)
        {
            return new(Sameness.Different, $"size: source {o.Size} bytes, target {o.TargetSize} bytes");
        }
        // This module's record of its own verified copy comes first: it is the only evidence that still holds where an
        // ETag only looks like an MD5 (SSE-KMS), and it knows which side changed since. A record counts only with all
        // three ETags known: two missing ETags are not two equal ones.
        if (o.Copied is { } copy && Known(o.ETag) && Known(o.TargetETag) && Known(copy.SourceETag) && Known(copy.TargetETag))
        {
            var sourceUnchanged = Checksums.SameETag(copy.SourceETag, o.ETag);
            var targetUnchanged = Checksums.SameETag(copy.TargetETag, o.TargetETag);
            if (sourceUnchanged && targetUnchanged) return new(Sameness.Same, "size, and neither side changed since this module copied it (its report says how that copy was verified)");
            if (sourceUnchanged)
            {
                return new(Sameness.Different, $"checksum: the target is ETag {Checksums.Clean(o.TargetETag)}, the copy this module verified was {Checksums.Clean(copy.TargetETag)} (written again since; -Deep compares the bytes)");
            }
            if (targetUnchanged)
            {
                return new(Sameness.Different, $"checksum: the source changed since this module copied it (ETag {Checksums.Clean(copy.SourceETag)}, now {Checksums.Clean(o.ETag)}); the target still holds that copy");
            }
            // Both sides written again since: the record says nothing about them now.
        }
        if (Checksums.IsPlainMd5(o.ETag) && Checksums.IsPlainMd5(o.TargetETag))
        {
            return Checksums.SameETag(o.ETag, o.TargetETag)
                ? new(Sameness.Same, "size and MD5")
                : new(Sameness.Different, $"checksum: source MD5 {Checksums.Clean(o.ETag)}, target {Checksums.Clean(o.TargetETag)}") { NeedsHeads = true };
        }
        if (Known(o.ETag) && Checksums.SameETag(o.ETag, o.TargetETag))
        {
            return new(Sameness.Same, "size and multipart ETag (same part layout)");
        }
        return new(Sameness.Unknown, "size only (the ETags are not comparable: multipart with another part layout, SSE-KMS or SSE-C)");
    }

    private static bool Known(string? etag) => !string.IsNullOrEmpty(Checksums.Clean(etag));

    /// <summary>Decides what <see cref="Comparison.NeedsHeads"/> left open: the ETags are MD5s only if the answers' encryption headers say so.</summary>
    public static Comparison CompareHeads(ObjectHead source, ObjectHead target)
    {
        if (source.Size != target.Size) return new(Sameness.Different, $"size: source {source.Size} bytes, target {target.Size} bytes");
        if (source.ETagIsContentMd5 && target.ETagIsContentMd5)
        {
            return Checksums.SameETag(source.ETag, target.ETag)
                ? new(Sameness.Same, "size and MD5")
                : new(Sameness.Different, $"checksum: source MD5 {Checksums.Clean(source.ETag)}, target MD5 {Checksums.Clean(target.ETag)}");
        }
        return new(Sameness.Unknown, "size (an ETag is not an MD5: SSE-KMS, SSE-C or multipart)");
    }
}
