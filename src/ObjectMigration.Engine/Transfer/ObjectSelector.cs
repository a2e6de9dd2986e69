using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Transfer;

/// <summary>The job's rules about which objects to take and which to skip, decided without I/O.</summary>
public sealed class ObjectSelector
{
    private static readonly HashSet<string> RetrievalClasses = new(StringComparer.OrdinalIgnoreCase) { "GLACIER", "DEEP_ARCHIVE" };

    private readonly ObjectFilter _filter;
    private readonly KeyPattern[] _include;
    private readonly KeyPattern[] _exclude;
    private readonly KeyPattern[] _excludeContentTypes;
    private readonly OverwriteMode _overwrite;
    private readonly long _targetMaxObjectSize;

    public ObjectSelector(MigrationJob job, long targetMaxObjectSize = TransferOptions.DefaultTargetMaxObjectSize)
    {
        _filter = job.Filter;
        _include = job.Filter.Include.Select(p => new KeyPattern(p)).ToArray();
        _exclude = job.Filter.Exclude.Select(p => new KeyPattern(p)).ToArray();
        _excludeContentTypes = job.Filter.ExcludeContentType.Select(p => new KeyPattern(p.ToLowerInvariant())).ToArray();
        _overwrite = job.Overwrite;
        _targetMaxObjectSize = targetMaxObjectSize;
    }

    public bool HasContentTypeRule => _excludeContentTypes.Length > 0;

    /// <summary>Listing-time filters: objects they reject are not part of the job at all.</summary>
    public bool Selects(ListedObject o)
    {
        if (_include.Length > 0 && !_include.Any(p => p.IsMatch(o.Key))) return false;
        if (_exclude.Any(p => p.IsMatch(o.Key))) return false;
        if (_filter.ModifiedAfter is { } after && o.LastModified <= after) return false;
        if (_filter.ModifiedBefore is { } before && o.LastModified >= before) return false;
        if (_filter.MinSize is { } min && o.Size < min) return false;
        if (_filter.MaxSize is { } max && o.Size > max) return false;
        return true;
    }

    /// <summary>Skip rules and the overwrite mode; null means copy it.</summary>
    public ObjectResult? SkipReason(PendingObject o)
    {
        if (RetrievalSkip(o) is { } archived) return archived;
        if (o.Size > _targetMaxObjectSize)
        {
            return Skip(o, LogType.ImportSkippedOversized, $"{o.Size} bytes is more than the target's limit of {_targetMaxObjectSize} bytes.");
        }
        if (!o.TargetListed || o.TargetSize is null) return null;
        return _overwrite switch
        {
            OverwriteMode.Never => Skip(o, LogType.ImportSkippedExists, "The target already has this key (Overwrite Never)."),
            OverwriteMode.IfDifferent when IsSame(o) => Skip(o, LogType.ImportSkippedExists, "The target already has this object: same size and checksum."),
            OverwriteMode.IfSourceNewer when o.TargetLastModified >= o.LastModified =>
                Skip(o, LogType.ImportSkippedExists, "The target's copy is as new as the source (Overwrite IfSourceNewer)."),
            _ => null,
        };
    }

    /// <summary>Intelligent-Tiering lists as one class; only a HEAD tells whether the object sits in an archive tier.</summary>
    /// <summary>An object in a class that must be restored before it can be read (GLACIER, DEEP_ARCHIVE ...), or null.</summary>
    public static ObjectResult? RetrievalSkip(PendingObject o) =>
        o.StorageClass is { } storageClass && RetrievalClasses.Contains(storageClass)
            ? Skip(o, LogType.ImportSkippedRequiresRetrieval, $"Storage class {storageClass} needs a restore before it can be read.")
            : null;

    public static bool NeedsArchiveCheck(PendingObject o) => string.Equals(o.StorageClass, "INTELLIGENT_TIERING", StringComparison.OrdinalIgnoreCase);

    public static ObjectResult? ArchiveSkip(PendingObject o, string? archiveStatus) =>
        string.IsNullOrEmpty(archiveStatus)
            ? null
            : Skip(o, LogType.ImportSkippedRequiresRetrieval, $"Intelligent-Tiering {archiveStatus} needs a restore before it can be read.");

    public ObjectResult? ContentTypeSkip(string key, long size, string? contentType)
    {
        var type = (contentType ?? "").Split(';')[0].Trim().ToLowerInvariant();
        return _excludeContentTypes.Any(p => p.IsMatch(type))
            ? new ObjectResult(key, ObjectOutcome.Skipped, size, LogType.ImportSkippedExcludedContentType, $"Content type '{type}' is excluded.")
            : null;
    }

    /// <summary>
    /// The object comparer's answer; what it cannot settle without reading bytes counts as the same when the target's
    /// copy is at least as new as the source (multipart ETags depend on part sizes).
    /// </summary>
    private static bool IsSame(PendingObject o)
    {
        var comparison = ObjectComparer.Compare(o);
        return comparison.Verdict == Sameness.Unknown ? o.TargetLastModified >= o.LastModified : comparison.IsSame;
    }

    private static ObjectResult Skip(PendingObject o, LogType type, string message) => new(o.Key, ObjectOutcome.Skipped, o.Size, type, message);
}

internal static class Checksums
{
    public static string? Clean(string? etag) => etag?.Trim('"').ToLowerInvariant();

    public static bool IsPlainMd5(string? etag) => Clean(etag) is { Length: 32 } e && e.All(Uri.IsHexDigit);

    public static bool SameETag(string? a, string? b) => Clean(a) == Clean(b);

    /// <summary>The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, then "-" and the part count.</summary>
    public static string MultipartETag(IEnumerable<string> partMd5Hex)
    {
        using var md5 = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.MD5);
        var count = 0;
        foreach (var part in partMd5Hex)
        {
            md5.AppendData(Convert.FromHexString(part));
            count++;
        }
        return Convert.ToHexString(md5.GetHashAndReset()).ToLowerInvariant() + "-" + count;
    }
}
