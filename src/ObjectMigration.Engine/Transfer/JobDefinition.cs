using System.Globalization;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// What makes two jobs the same migration, for a re-run of New-MigrationJob (a runbook restarted from the top): the
/// definition (what is copied from where to where, and how it is decided) must match; run settings (how fast, in what
/// parts) may differ and are kept from the job that exists.
/// </summary>
public static class JobDefinition
{
    /// <summary>Each definition parameter of <paramref name="request"/> that differs from <paramref name="job"/>, as "-Name was X, now Y".</summary>
    public static IReadOnlyList<string> Differences(MigrationJob job, MigrationJobRequest request, string? unsavedSourceEndpoint = null)
    {
        var differences = new List<string>();
        void Compare(string parameter, string? was, string? now)
        {
            if (!string.Equals(was ?? "", now ?? "", StringComparison.Ordinal)) differences.Add($"-{parameter} was {Shown(was)}, now {Shown(now)}");
        }
        Compare(unsavedSourceEndpoint is null ? "SourceConnector" : "SourceEndpoint", job.SourceConnector, unsavedSourceEndpoint ?? request.SourceConnector);
        Compare("SourceBucket", job.SourceBucket, request.SourceBucket);
        Compare("SourcePrefix", job.SourcePrefix, request.SourcePrefix);
        Compare("Key", string.Join(", ", job.Keys), string.Join(", ", request.Keys));
        Compare("TargetConnector", job.TargetConnector, request.TargetConnector);
        Compare("TargetBucket", job.TargetBucket, request.TargetBucket);
        Compare("TargetPrefix", job.TargetPrefix, request.TargetPrefix);
        Compare("Type", job.Type.ToString(), request.Type.ToString());
        Compare("Overwrite", job.Overwrite.ToString(), request.Overwrite.ToString());
        // How a verify decides is part of what it finds.
        Compare("Deep", Switch(job.Deep), Switch(request.Deep));
        Compare("CompareMetadata", Switch(job.CompareMetadata), Switch(request.CompareMetadata));
        // What an update changes (-SetStorageClass, -SetTags, -AddTags, -RemoveTags, -SetMetadata), as one description.
        var changesWere = job.Update?.ToString();
        var changesNow = request.Type == JobType.Update ? request.Update?.ToString() : null;
        if (!string.Equals(changesWere ?? "", changesNow ?? "", StringComparison.Ordinal)) differences.Add($"its changes were {Shown(changesWere)}, now {Shown(changesNow)}");
        foreach (var (rule, now) in FilterRules(job.Filter).Zip(FilterRules(request.Filter))) Compare(rule.Parameter, rule.Value, now.Value);
        Compare("StorageClass", ClassMap(job.StorageClassMap), ClassMap(request.StorageClassMap));
        return differences;
    }

    /// <summary>The run settings of <paramref name="request"/> that differ from those <paramref name="job"/> keeps when a re-run returns it.</summary>
    public static IReadOnlyList<string> SettingsKept(MigrationJob job, MigrationJobRequest request)
    {
        var kept = new List<string>();
        void Compare(string parameter, object was, object now)
        {
            if (!Equals(was, now)) kept.Add($"-{parameter} stays {was} (given {now})");
        }
        Compare("Concurrency", job.Concurrency, request.Concurrency);
        Compare("FixedConcurrency", job.FixedConcurrency, request.FixedConcurrency);
        Compare("MaxBytesPerSecond", job.MaxBytesPerSecond, request.MaxBytesPerSecond);
        Compare("MultipartThreshold", job.MultipartThreshold, request.MultipartThreshold);
        Compare("PartSize", job.PartSize, request.PartSize);
        Compare("NoProgressTimeout", job.NoProgressTimeout ?? S3ObjectStore.DefaultNoProgressTimeout, request.NoProgressTimeout ?? S3ObjectStore.DefaultNoProgressTimeout);
        return kept;
    }

    private static string Shown(string? value) => string.IsNullOrEmpty(value) ? "(none)" : $"'{value}'";

    private static string Switch(bool on) => on ? "present" : "";

    private static string ClassMap(Dictionary<string, string> map) =>
        string.Join(", ", map.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase).Select(p => $"{p.Key}={p.Value}"));

    private static IEnumerable<(string Parameter, string Value)> FilterRules(ObjectFilter f) =>
    [
        ("Include", string.Join(", ", f.Include)),
        ("Exclude", string.Join(", ", f.Exclude)),
        ("ModifiedAfter", f.ModifiedAfter?.ToString("u", CultureInfo.InvariantCulture) ?? ""),
        ("ModifiedBefore", f.ModifiedBefore?.ToString("u", CultureInfo.InvariantCulture) ?? ""),
        ("MinSize", f.MinSize?.ToString(CultureInfo.InvariantCulture) ?? ""),
        ("MaxSize", f.MaxSize?.ToString(CultureInfo.InvariantCulture) ?? ""),
        ("ExcludeContentType", string.Join(", ", f.ExcludeContentType)),
    ];
}
