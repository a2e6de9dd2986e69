namespace ObjectMigration.Engine.Storage;

public sealed record ObjectListing(IReadOnlyList<State.ListedObject> Objects, string? NextContinuationToken);

/// <summary>The headers a copy keeps: content headers and user metadata.</summary>
public sealed class ObjectMetadata
{
    public string? ContentType { get; set; }
    public string? ContentEncoding { get; set; }
    public string? ContentLanguage { get; set; }
    public string? ContentDisposition { get; set; }
    public string? CacheControl { get; set; }
    public string? Expires { get; set; }
    public Dictionary<string, string> UserMetadata { get; } = new(StringComparer.OrdinalIgnoreCase);
}

public sealed record ObjectHead(long Size, string? ETag, DateTimeOffset LastModified, string? StorageClass, ObjectMetadata Metadata)
{
    /// <summary>Intelligent-Tiering archive tier (ARCHIVE_ACCESS, DEEP_ARCHIVE_ACCESS): the object needs a restore first.</summary>
    public string? ArchiveStatus { get; init; }
}

/// <summary>An open GET: headers and a body to stream. Dispose to release the connection.</summary>
public sealed class ObjectDownload(ObjectHead head, Stream body, IDisposable owner) : IDisposable
{
    public ObjectHead Head { get; } = head;
    public Stream Body { get; } = body;
    public void Dispose() { Body.Dispose(); owner.Dispose(); }
}

public sealed record BucketInfo(string Name, DateTimeOffset? CreationDate);

/// <summary>
/// The object-store contract the engine needs. One implementation per protocol; S3 is the only one today.
/// Every method that waits takes the caller's cancellation token down to the HTTP call.
/// </summary>
public interface IObjectStore : IDisposable
{
    /// <summary>Identifies endpoint and credentials: equal keys mean a server-side copy is possible.</summary>
    string ServerSideCopyKey { get; }

    Task<IReadOnlyList<BucketInfo>> ListBucketsAsync(CancellationToken cancellationToken);
    Task<string?> GetBucketLocationAsync(string bucket, CancellationToken cancellationToken);
    Task<bool> BucketExistsAsync(string bucket, CancellationToken cancellationToken);
    Task<ObjectListing> ListAsync(string bucket, string prefix, string? continuationToken, int pageSize, CancellationToken cancellationToken);
    Task<ObjectHead?> HeadAsync(string bucket, string key, CancellationToken cancellationToken);
    Task<ObjectDownload> GetAsync(string bucket, string key, long? rangeStart, long? rangeEndInclusive, CancellationToken cancellationToken);
    /// <summary>Uploads <paramref name="length"/> bytes from a forward-only stream; returns the target's ETag.</summary>
    Task<string?> PutAsync(string bucket, string key, Stream body, long length, ObjectMetadata metadata, string? contentMd5Base64, CancellationToken cancellationToken);
    Task<string> StartMultipartAsync(string bucket, string key, ObjectMetadata metadata, CancellationToken cancellationToken);
    Task<string> UploadPartAsync(string bucket, string key, string uploadId, int partNumber, Stream body, long length, string? contentMd5Base64, CancellationToken cancellationToken);
    Task<string?> CompleteMultipartAsync(string bucket, string key, string uploadId, IReadOnlyList<(int PartNumber, string ETag)> parts, CancellationToken cancellationToken);
    Task AbortMultipartAsync(string bucket, string key, string uploadId, CancellationToken cancellationToken);
    Task<string?> CopyAsync(string sourceBucket, string sourceKey, string targetBucket, string targetKey, CancellationToken cancellationToken);
    Task<string> UploadPartCopyAsync(string sourceBucket, string sourceKey, string targetBucket, string targetKey, string uploadId, int partNumber, long firstByte, long lastByte, CancellationToken cancellationToken);
}
