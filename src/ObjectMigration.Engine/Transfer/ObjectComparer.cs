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
/// module's record of its own verified copy, equal multipart ETags (same part layout). What none of these settles is
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
        if (Checksums.IsPlainMd5(o.ETag) && Checksums.IsPlainMd5(o.TargetETag))
        {
            return Checksums.SameETag(o.ETag, o.TargetETag)
                ? new(Sameness.Same, "size and MD5")
                : new(Sameness.Different, $"checksum: source MD5 {Checksums.Clean(o.ETag)}, target {Checksums.Clean(o.TargetETag)}") { NeedsHeads = true };
        }
        if (o.Copied is { } copy && Checksums.SameETag(copy.SourceETag, o.ETag))
        {
            // The source is the version this module copied and verified: the target still holds that copy only if its
            // ETag is still the one the copy got. Another ETag means the target object was written again since.
            return Checksums.SameETag(copy.TargetETag, o.TargetETag)
                ? new(Sameness.Same, "size and the checksum verified when this module copied it (neither side changed since)")
                : new(Sameness.Different, $"checksum: the target is ETag {Checksums.Clean(o.TargetETag)}, the copy this module verified was {Checksums.Clean(copy.TargetETag)} (written again since; -Deep compares the bytes)");
        }
        if (o.ETag is not null && Checksums.SameETag(o.ETag, o.TargetETag))
        {
            return new(Sameness.Same, "size and multipart ETag (same part layout)");
        }
        return new(Sameness.Unknown, "size only (the ETags are not comparable: multipart with another part layout, SSE-KMS or SSE-C)");
    }

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
