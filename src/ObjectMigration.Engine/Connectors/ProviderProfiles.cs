using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Connectors;

/// <summary>
/// What one provider supports and fixes, in one place: the engine asks the profile instead of special-casing providers.
/// Sources for each value are collected in shared/notes/provider-quirks.md and docs/ARCHITECTURE.md.
/// </summary>
public sealed record ProviderProfile
{
    public required ConnectorProvider Provider { get; init; }
    /// <summary>UploadPartCopy exists (GCS's XML API has none: large server-side copies stream through the client).</summary>
    public bool SupportsPartCopy { get; init; } = true;
    /// <summary>x-amz-copy-source-if-match is honoured on UploadPartCopy (R2 ignores conditions there; parts are then re-checked by ETag).</summary>
    public bool PartCopyHonoursConditions { get; init; } = true;
    /// <summary>Full-object x-amz-checksum-* values are returned on GET (x-amz-checksum-mode) and checked on PUT.</summary>
    public bool SupportsChecksums { get; init; }
    /// <summary>Bucket names go into the path by default (the connector's -PathStyle overrides).</summary>
    public bool PrefersPathStyle { get; init; }
    /// <summary>Each bucket has its own region, discovered from the server's hints; the connector's region may be left out.</summary>
    public bool DiscoversBucketRegion { get; init; }
    /// <summary>The signing region when the connector names none.</summary>
    public string DefaultRegion { get; init; } = "us-east-1";
    /// <summary>The region is fixed by the provider (R2: auto); -Region is ignored.</summary>
    public string? FixedRegion { get; init; }
    /// <summary>Object tagging (GET/PUT ?tagging, x-amz-tagging).</summary>
    public bool SupportsTagging { get; init; } = true;
    /// <summary>Object Lock retention and legal hold headers.</summary>
    public bool SupportsObjectLock { get; init; } = true;
    /// <summary>x-amz-website-redirect-location.</summary>
    public bool SupportsWebsiteRedirect { get; init; } = true;
    /// <summary>Storage classes the provider accepts in x-amz-storage-class; null: any name is passed on.</summary>
    public IReadOnlySet<string>? StorageClasses { get; init; }
    /// <summary>Largest single PUT.</summary>
    public long MaxPutSize { get; init; } = 5L * 1024 * 1024 * 1024;
    public long MinPartSize { get; init; } = 5L * 1024 * 1024;
    public long MaxPartSize { get; init; } = 5L * 1024 * 1024 * 1024;
    public int MaxParts { get; init; } = 10_000;
    /// <summary>All parts but the last must be the same size (R2).</summary>
    public bool RequiresEqualParts { get; init; }
    /// <summary>Prefix of user metadata headers.</summary>
    public string MetadataPrefix { get; init; } = "x-amz-meta-";
    /// <summary>The endpoint the provider fixes for a region (and account), or null when the user must give one.</summary>
    public Func<CloudConnector, string, string?> DeriveEndpoint { get; init; } = (_, _) => null;

    public override string ToString() => Provider.ToString();
}

public static class ProviderProfiles
{
    private static readonly ProviderProfile Aws = new()
    {
        Provider = ConnectorProvider.AWS,
        SupportsChecksums = true,
        DiscoversBucketRegion = true,
        // 50 TB objects since 2025; parts and single PUTs keep their limits.
        DeriveEndpoint = (_, region) => $"https://s3.{region}.amazonaws.com",
    };

    private static readonly ProviderProfile Gcs = new()
    {
        Provider = ConnectorProvider.GCS,
        SupportsPartCopy = false,
        DefaultRegion = "auto",
        SupportsTagging = false,
        SupportsObjectLock = false,
        SupportsWebsiteRedirect = false,
        StorageClasses = new HashSet<string>(["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"], StringComparer.Ordinal),
        MaxPutSize = 5L * 1024 * 1024 * 1024 * 1024,
        DeriveEndpoint = (_, _) => "https://storage.googleapis.com",
    };

    private static readonly ProviderProfile R2 = new()
    {
        Provider = ConnectorProvider.R2,
        PartCopyHonoursConditions = false,
        FixedRegion = "auto",
        DefaultRegion = "auto",
        SupportsTagging = false,
        SupportsObjectLock = false,
        SupportsWebsiteRedirect = false,
        StorageClasses = new HashSet<string>(["STANDARD", "STANDARD_IA"], StringComparer.Ordinal),
        MaxPutSize = 5L * 1024 * 1024 * 1024 - 5L * 1024 * 1024,
        RequiresEqualParts = true,
        DeriveEndpoint = (c, _) => c.AccountId is { Length: > 0 } account
            ? $"https://{account}.{(c.Jurisdiction is null or "default" ? "" : c.Jurisdiction + ".")}r2.cloudflarestorage.com"
            : null,
    };

    private static readonly ProviderProfile Wasabi = new()
    {
        Provider = ConnectorProvider.Wasabi,
        SupportsChecksums = false,
        DeriveEndpoint = (_, region) => region == "us-east-1" ? "https://s3.wasabisys.com" : $"https://s3.{region}.wasabisys.com",
    };

    // Generic S3-compatible servers: path style, conditions and checksums passed on (unknown headers are ignored).
    private static readonly ProviderProfile S3 = new() { Provider = ConnectorProvider.S3, PrefersPathStyle = true, SupportsChecksums = true };
    private static readonly ProviderProfile MinIO = new() { Provider = ConnectorProvider.MinIO, PrefersPathStyle = true, SupportsChecksums = true };
    private static readonly ProviderProfile VspOne = new() { Provider = ConnectorProvider.VspOne, PrefersPathStyle = true };
    private static readonly ProviderProfile UpCloud = new() { Provider = ConnectorProvider.UpCloud, SupportsChecksums = false };

    public static ProviderProfile For(ConnectorProvider provider) => provider switch
    {
        ConnectorProvider.AWS => Aws,
        ConnectorProvider.GCS => Gcs,
        ConnectorProvider.R2 => R2,
        ConnectorProvider.Wasabi => Wasabi,
        ConnectorProvider.MinIO => MinIO,
        ConnectorProvider.VspOne => VspOne,
        ConnectorProvider.UpCloud => UpCloud,
        _ => S3,
    };
}
