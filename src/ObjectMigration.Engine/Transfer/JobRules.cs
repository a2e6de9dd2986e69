using System.Text;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// What a job request must satisfy before anything is written: parameter ranges, S3 bucket-name rules, prefixes that
/// are keys, and no copy onto itself. Each failure is an ArgumentException naming the parameter and the fix.
/// </summary>
public static class JobRules
{
    public const int MaxNameLength = 128;
    /// <summary>S3's longest key, in UTF-8 bytes: a prefix longer than that leaves no room for any object.</summary>
    public const int MaxKeyBytes = 1024;

    public static void Check(MigrationJobRequest r)
    {
        if (r.Name is { } name)
        {
            if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("-Name is empty: give the job a name, or leave -Name out for '<source>-to-<target>'.", "Name");
            if (name.Length > MaxNameLength) throw new ArgumentException($"-Name is {name.Length} characters long: use at most {MaxNameLength}.", "Name");
            if (name.Any(char.IsControl)) throw new ArgumentException("-Name contains control characters (a line break, a tab): use printable characters.", "Name");
        }
        CheckBucket(r.SourceBucket, "SourceBucket", legacyAllowed: true);
        if (!JobTypes.HasTarget(r.Type))
        {
            if (!string.IsNullOrEmpty(r.TargetConnector) || !string.IsNullOrEmpty(r.TargetBucket) || !string.IsNullOrEmpty(r.TargetPrefix))
            {
                var given = !string.IsNullOrEmpty(r.TargetConnector) ? "TargetConnector" : !string.IsNullOrEmpty(r.TargetBucket) ? "TargetBucket" : "TargetPrefix";
                throw new ArgumentException(r.Type == JobType.Update
                    ? $"-Type Update changes the source's objects in place: leave out -{given} (and the other -Target parameters)."
                    : $"-Type Inventory reads the source only: leave out -{given} (and the other -Target parameters).", given);
            }
        }
        else
        {
            if (string.IsNullOrWhiteSpace(r.TargetConnector)) throw new ArgumentException($"-TargetConnector is required for a {r.Type} job: name the connector to copy into (see Get-CloudConnector).", "TargetConnector");
            CheckBucket(r.TargetBucket, "TargetBucket", legacyAllowed: false);
        }
        if (r.Type != JobType.Verify && r.Deep) throw new ArgumentException("-Deep applies to Verify jobs only: add -Type Verify, or leave -Deep out.", "Deep");
        if (r.Type != JobType.Verify && r.CompareMetadata) throw new ArgumentException("-CompareMetadata applies to Verify jobs only: add -Type Verify, or leave -CompareMetadata out.", "CompareMetadata");
        UpdateRules.Check(r);
        CheckPrefix(r.SourcePrefix, "SourcePrefix", segmentsChecked: false);
        CheckPrefix(r.TargetPrefix, "TargetPrefix", segmentsChecked: true);
        CheckKeys(r.Keys);
        CheckPatterns(r.Filter.Include, "Include", "wildcards for the keys to copy, such as 'photos/*.jpg'");
        CheckPatterns(r.Filter.Exclude, "Exclude", "wildcards for the keys to leave out, such as '*.tmp'");
        CheckPatterns(r.Filter.ExcludeContentType, "ExcludeContentType", "content types to leave out, such as 'video/*'");
        if (r.Concurrency is < 1 or > TransferOptions.MaxConcurrency)
        {
            throw new ArgumentException($"-Concurrency {r.Concurrency} is out of range: use 1 to {TransferOptions.MaxConcurrency}.", "Concurrency");
        }
        if (r.MaxBytesPerSecond < 0) throw new ArgumentException("-MaxBytesPerSecond cannot be negative; 0 means no limit.", "MaxBytesPerSecond");
        if (r.PartSize < TransferOptions.MinPartSize) throw new ArgumentException($"-PartSize must be at least {TransferOptions.MinPartSize} bytes (S3's minimum part).", "PartSize");
        if (r.PartSize > int.MaxValue) throw new ArgumentException("-PartSize must be under 2 GiB.", "PartSize");
        if (r.MultipartThreshold < TransferOptions.MinPartSize) throw new ArgumentException($"-MultipartThreshold must be at least {TransferOptions.MinPartSize} bytes.", "MultipartThreshold");
        if (r.NoProgressTimeout is { } stall && (stall < TimeSpan.FromSeconds(1) || stall > TimeSpan.FromHours(24)))
        {
            throw new ArgumentException($"-NoProgressTimeout {stall} is out of range: use 1 second to 24 hours (default 60 seconds).", "NoProgressTimeout");
        }
        foreach (var (from, to) in r.StorageClassMap)
        {
            if (string.IsNullOrWhiteSpace(from) || string.IsNullOrWhiteSpace(to) || !to.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c == '_'))
            {
                throw new ArgumentException($"-StorageClass maps '{from}' to '{to}': give the target's class names in upper case, e.g. -StorageClass STANDARD_IA or -StorageClass @{{ GLACIER = 'COLDLINE'; '*' = 'STANDARD' }}.", "StorageClass");
            }
        }
        if (r.Filter.MinSize is { } min && r.Filter.MaxSize is { } max && min > max) throw new ArgumentException($"-MinSize {min} is larger than -MaxSize {max}.", "MinSize");
        if (r.Filter.ModifiedAfter is { } after && r.Filter.ModifiedBefore is { } before && after >= before)
        {
            throw new ArgumentException("-ModifiedAfter must be earlier than -ModifiedBefore.", "ModifiedAfter");
        }
    }

    /// <summary>
    /// S3's bucket-naming rules: 3-63 characters of lower-case letters, digits, dots and hyphens, starting and ending
    /// with a letter or digit, no two dots in a row, not an IP address. A source may also be one of AWS's legacy
    /// us-east-1 buckets (up to 255 characters, upper case and underscores), which still exist and must be migratable;
    /// a target is created under today's rules, so it must follow them.
    /// </summary>
    public static void CheckBucket(string bucket, string parameter, bool legacyAllowed)
    {
        var use = parameter switch { "SourceBucket" => "copy from", "TargetBucket" => "copy into", _ => "check" };
        if (string.IsNullOrWhiteSpace(bucket)) throw new ArgumentException($"-{parameter} is required: name the bucket to {use}.", parameter);
        // Names S3 keeps for its own features (IDN, access point and Object Lambda aliases, Multi-Region Access Points).
        if (!legacyAllowed && ReservedBucketAffix(bucket) is { } affix)
        {
            throw new ArgumentException($"-{parameter} '{bucket}' uses '{affix}', which S3 reserves for its own names: choose another bucket name.", parameter);
        }
        if (legacyAllowed ? IsBucketName(bucket, 255, c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_') : IsBucketName(bucket, 63, c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '-'))
        {
            return;
        }
        throw new ArgumentException(
            $"-{parameter} '{bucket}' is not a valid S3 bucket name: use 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit (for example 'photos-2024').",
            parameter);
    }

    private static string? ReservedBucketAffix(string b) =>
        new[] { "xn--", "sthree-" }.FirstOrDefault(p => b.StartsWith(p, StringComparison.Ordinal))
        ?? new[] { "-s3alias", "--ol-s3", ".mrap" }.FirstOrDefault(s => b.EndsWith(s, StringComparison.Ordinal));

    private static bool IsBucketName(string b, int maxLength, Func<char, bool> allowed) =>
        b.Length >= 3 && b.Length <= maxLength
        && b.All(allowed)
        && char.IsAsciiLetterOrDigit(b[0]) && char.IsAsciiLetterOrDigit(b[^1])
        && !b.Contains("..", StringComparison.Ordinal) && !b.Contains(".-", StringComparison.Ordinal) && !b.Contains("-.", StringComparison.Ordinal)
        && !System.Net.IPAddress.TryParse(b, out _);

    /// <summary>
    /// A prefix is the start of keys: at most 1024 bytes, no control characters. A target prefix also may not have '.'
    /// or '..' segments or start with '/': tools that map keys to paths would write those objects somewhere else.
    /// </summary>
    private static void CheckPrefix(string? prefix, string parameter, bool segmentsChecked)
    {
        if (string.IsNullOrEmpty(prefix)) return;
        // Keys may start with spaces, but a prefix of nothing else is a slip (an unset variable padded, a stray quote).
        if (string.IsNullOrWhiteSpace(prefix))
        {
            throw new ArgumentException($"-{parameter} is only white space: leave it out for {(segmentsChecked ? "no prefix" : "the whole bucket")}, or give the folder-like prefix, e.g. 'archive/2024/'.", parameter);
        }
        if (Encoding.UTF8.GetByteCount(prefix) > MaxKeyBytes) throw new ArgumentException($"-{parameter} is longer than an S3 key may be ({MaxKeyBytes} bytes).", parameter);
        if (prefix.Any(char.IsControl)) throw new ArgumentException($"-{parameter} contains control characters: keys cannot hold them reliably.", parameter);
        if (!segmentsChecked) return;
        if (prefix.StartsWith('/')) throw new ArgumentException($"-{parameter} '{prefix}' starts with '/': S3 keys have no leading slash; write '{prefix.TrimStart('/')}'.", parameter);
        if (prefix.Split('/').Any(segment => segment is "." or ".."))
        {
            throw new ArgumentException($"-{parameter} '{prefix}' has a '.' or '..' segment: give the folder-like prefix plainly, e.g. 'archive/2024/'.", parameter);
        }
    }

    /// <summary>An explicit key list names real keys: none empty, none longer than S3 allows.</summary>
    private static void CheckKeys(string[] keys)
    {
        foreach (var key in keys)
        {
            if (string.IsNullOrEmpty(key)) throw new ArgumentException("-Key has an empty key: give the full keys of the objects to copy, or leave -Key out to copy by prefix and filters.", "Key");
            if (Encoding.UTF8.GetByteCount(key) > MaxKeyBytes)
            {
                throw new ArgumentException($"-Key '{Shorten(key)}' is longer than an S3 key may be ({MaxKeyBytes} bytes): give the object's exact key.", "Key");
            }
        }
    }

    /// <summary>An empty or blank pattern matches nothing (or only blank keys): it is a slip, not a filter.</summary>
    private static void CheckPatterns(string[] patterns, string parameter, string example)
    {
        if (patterns.Any(string.IsNullOrWhiteSpace)) throw new ArgumentException($"-{parameter} has an empty pattern: give {example}, or leave -{parameter} out.", parameter);
    }

    /// <summary>A long value cut for a message: enough to recognise it.</summary>
    private static string Shorten(string value) => value.Length <= 40 ? value : value[..40] + "...";

    /// <summary>
    /// Refuses a job whose target keys fall among its source keys: the same bucket of the same endpoint, and a target
    /// prefix that puts copies back into the listed range (a copy onto itself, or copies that get copied again).
    /// </summary>
    public static void CheckNotOntoItself(MigrationJobRequest r, CloudConnector source, CloudConnector target)
    {
        if (!JobTypes.HasTarget(r.Type)) return;
        var sameBucket = string.Equals(r.SourceBucket, r.TargetBucket, StringComparison.Ordinal)
            && (source.Id != 0 && source.Id == target.Id || SameEndpoint(source.Endpoint, target.Endpoint));
        if (!sameBucket || !Overlaps(r.SourcePrefix ?? "", r.TargetPrefix ?? "")) return;
        throw new ArgumentException(
            $"The target is the source: bucket '{r.SourceBucket}' on the same endpoint, and target prefix '{r.TargetPrefix}' puts copies among the objects under source prefix '{r.SourcePrefix}'. " +
            "Give another -TargetBucket, or a -TargetPrefix outside -SourcePrefix (for example 'copy/' with -SourcePrefix 'data/').", "TargetPrefix");
    }

    /// <summary>
    /// Whether some source key k (starting with <paramref name="source"/>) has its copy target + k starting with
    /// <paramref name="source"/> too: always when the target prefix lies within the source prefix; when the source
    /// prefix extends the target prefix, exactly when its remainder is a start of the source prefix itself.
    /// </summary>
    internal static bool Overlaps(string source, string target)
    {
        if (target.StartsWith(source, StringComparison.Ordinal)) return true;
        return source.StartsWith(target, StringComparison.Ordinal) && source.StartsWith(source[target.Length..], StringComparison.Ordinal);
    }

    private static bool SameEndpoint(string a, string b) =>
        Uri.TryCreate(a, UriKind.Absolute, out var x) && Uri.TryCreate(b, UriKind.Absolute, out var y)
            ? string.Equals(x.Scheme, y.Scheme, StringComparison.OrdinalIgnoreCase) && string.Equals(x.Host, y.Host, StringComparison.OrdinalIgnoreCase) && x.Port == y.Port
              && string.Equals(x.AbsolutePath.TrimEnd('/'), y.AbsolutePath.TrimEnd('/'), StringComparison.Ordinal)
            : string.Equals(a, b, StringComparison.OrdinalIgnoreCase);
}
