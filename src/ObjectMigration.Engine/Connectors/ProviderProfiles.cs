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
    /// <summary>
    /// Storage classes the provider accepts in x-amz-storage-class; null: not known (generic S3 servers refuse classes
    /// they lack), so a source's class is kept only when -StorageClass names it for the target.
    /// </summary>
    public IReadOnlySet<string>? StorageClasses { get; init; }
    /// <summary>Largest single PUT: larger objects go multipart whatever the job's threshold.</summary>
    public long MaxPutSize { get; init; } = 5L * 1024 * 1024 * 1024;
    /// <summary>Part limits. All parts but the last are the same size, as R2 requires.</summary>
    public long MinPartSize { get; init; } = 5L * 1024 * 1024;
    public long MaxPartSize { get; init; } = 5L * 1024 * 1024 * 1024;
    public int MaxParts { get; init; } = 10_000;
    /// <summary>The SDK's flexible checksums on the requests it still makes (bucket discovery): AWS only, others refuse them.</summary>
    public bool SdkChecksums { get; init; }
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
        SdkChecksums = true,
        DiscoversBucketRegion = true,
        StorageClasses = new HashSet<string>(["STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER",
            "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "EXPRESS_ONEZONE"], StringComparer.Ordinal),
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
        FixedRegion = "auto",
        DefaultRegion = "auto",
        SupportsTagging = false,
        SupportsObjectLock = false,
        SupportsWebsiteRedirect = false,
        StorageClasses = new HashSet<string>(["STANDARD", "STANDARD_IA"], StringComparer.Ordinal),
        MaxPutSize = 5L * 1024 * 1024 * 1024 - 5L * 1024 * 1024,
        DeriveEndpoint = (c, _) => c.AccountId is { Length: > 0 } account
            ? $"https://{account}.{(c.Jurisdiction is null or "default" ? "" : c.Jurisdiction + ".")}r2.cloudflarestorage.com"
            : null,
    };

    private static readonly ProviderProfile Wasabi = new()
    {
        Provider = ConnectorProvider.Wasabi,
        StorageClasses = new HashSet<string>(["STANDARD"], StringComparer.Ordinal),
        DeriveEndpoint = (_, region) => region == "us-east-1" ? "https://s3.wasabisys.com" : $"https://s3.{region}.wasabisys.com",
    };

    // Generic S3-compatible servers: path style; no checksum checks assumed (Ceph accepts a wrong x-amz-checksum-crc32).
    private static readonly ProviderProfile S3 = new() { Provider = ConnectorProvider.S3, PrefersPathStyle = true };
    private static readonly ProviderProfile MinIO = new() { Provider = ConnectorProvider.MinIO, PrefersPathStyle = true, SupportsChecksums = true };
    private static readonly ProviderProfile VspOne = new() { Provider = ConnectorProvider.VspOne, PrefersPathStyle = true };
    private static readonly ProviderProfile UpCloud = new() { Provider = ConnectorProvider.UpCloud };

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
