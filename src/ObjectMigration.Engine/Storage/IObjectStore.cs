using ObjectMigration.Engine.Connectors;

namespace ObjectMigration.Engine.Storage;

public sealed record ObjectListing(IReadOnlyList<State.ListedObject> Objects, string? NextContinuationToken);

/// <summary>The headers a copy keeps: content headers, user metadata, and the object's attributes that are not content.</summary>
public sealed class ObjectMetadata
{
    public string? ContentType { get; set; }
    public string? ContentEncoding { get; set; }
    public string? ContentLanguage { get; set; }
    public string? ContentDisposition { get; set; }
    public string? CacheControl { get; set; }
    public string? Expires { get; set; }
    public Dictionary<string, string> UserMetadata { get; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>x-amz-storage-class to write; null keeps the target's default.</summary>
    public string? StorageClass { get; set; }
    public string? WebsiteRedirectLocation { get; set; }
    /// <summary>Object tags as x-amz-tagging carries them (URL-encoded key=value pairs joined by '&amp;'); read with GetTaggingAsync.</summary>
    public string? Tagging { get; set; }
    /// <summary>Object Lock: GOVERNANCE or COMPLIANCE, with the date retention ends.</summary>
    public string? ObjectLockMode { get; set; }
    public string? ObjectLockRetainUntil { get; set; }
    /// <summary>Object Lock legal hold: ON or OFF.</summary>
    public string? ObjectLockLegalHold { get; set; }
    /// <summary>
    /// x-amz-server-side-encryption (and its KMS key) to write. Never read into a HEAD's metadata: only a rewrite in
    /// place sets it, from <see cref="ObjectHead.Encryption"/>, since a key of the source's account means nothing elsewhere.
    /// </summary>
    public string? ServerSideEncryption { get; set; }
    public string? KmsKeyId { get; set; }
}

/// <summary>How the server says an object is encrypted at rest: AES256 or aws:kms (with its key id).</summary>
public sealed record ObjectEncryption(string Algorithm, string? KmsKeyId);

/// <summary>A full-object checksum as S3 carries it: the algorithm (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) and its base64 value.</summary>
public sealed record ObjectChecksum(string Algorithm, string Base64)
{
    /// <summary>The request/response header that carries it, e.g. x-amz-checksum-crc32.</summary>
    public string HeaderName => "x-amz-checksum-" + Algorithm.ToLowerInvariant();
    public override string ToString() => $"{Algorithm} {Base64}";
}

/// <summary>
/// An ETag as the server returned it, and whether it is the content's MD5: it is not for multipart objects, nor under
/// SSE-KMS or SSE-C (the response says so in its encryption headers), nor where it is not 32 hex digits.
/// </summary>
public sealed record StoredETag(string? Value, bool IsContentMd5)
{
    /// <summary>Lower case, without quotes.</summary>
    public string? Clean => Value?.Trim().Trim('"').ToLowerInvariant();
    public override string ToString() => Value ?? "(none)";
}

public sealed record ObjectHead(long Size, string? ETag, DateTimeOffset LastModified, string? StorageClass, ObjectMetadata Metadata)
{
    /// <summary>Intelligent-Tiering archive tier (ARCHIVE_ACCESS, DEEP_ARCHIVE_ACCESS): the object needs a restore first.</summary>
    public string? ArchiveStatus { get; init; }
    /// <summary>False under SSE-KMS/SSE-C or for multipart objects: the ETag is then no checksum of the content.</summary>
    public bool ETagIsContentMd5 { get; init; }
    /// <summary>Under SSE-KMS or SSE-C: no ETag of it (single or multipart) is computed from the content's MD5s.</summary>
    public bool OpaquelyEncrypted { get; init; }
    /// <summary>The full-object checksum the server stored, when it returned one (x-amz-checksum-mode).</summary>
    public ObjectChecksum? Checksum { get; init; }
    /// <summary>x-amz-server-side-encryption of the object, if the answer named it.</summary>
    public ObjectEncryption? Encryption { get; init; }
    /// <summary>x-amz-tagging-count: the object has tags to read with GetTaggingAsync; null when the answer did not say (a HEAD).</summary>
    public int? TagCount { get; init; }
}

/// <summary>An open GET: headers and a body to stream. Dispose to release the connection.</summary>
public sealed class ObjectDownload(ObjectHead head, Stream body, IDisposable owner) : IDisposable
{
    public ObjectHead Head { get; } = head;
    public Stream Body { get; } = body;
    public void Dispose() { Body.Dispose(); owner.Dispose(); }
}

/// <summary>A multipart upload open on the server, as ListMultipartUploads names it.</summary>
public sealed record OpenMultipartUpload(string Key, string UploadId, DateTimeOffset Initiated);

public sealed record BucketInfo(string Name, DateTimeOffset? CreationDate);

/// <summary>What the server is asked to check on receipt of a body: its MD5 (Content-MD5) and/or a full checksum (x-amz-checksum-*).</summary>
public sealed record PayloadChecks(string? ContentMd5Base64 = null, ObjectChecksum? Checksum = null)
{
    public static PayloadChecks None { get; } = new();
}

/// <summary>
/// The object-store contract the engine needs. One implementation per protocol; S3 is the only one today.
/// Every method that waits takes the caller's cancellation token down to the HTTP call. A request that moves no byte
/// for the store's no-progress timeout fails as a Timeout.
/// </summary>
public interface IObjectStore : IDisposable
{
    /// <summary>Identifies endpoint and credentials: equal keys mean a server-side copy is possible.</summary>
    string ServerSideCopyKey { get; }

    /// <summary>What the provider behind this store supports.</summary>
    ProviderProfile Profile { get; }

    /// <summary>Now by the server's clock, as far as this store has learned it (requests are dated by it).</summary>
    DateTimeOffset ServerNow { get; }

    /// <summary>Things worth one log line that the store found out by itself (a bucket's region, the server's clock).</summary>
    event Action<string>? Notice;

    Task<IReadOnlyList<BucketInfo>> ListBucketsAsync(CancellationToken cancellationToken);
    Task<string?> GetBucketLocationAsync(string bucket, CancellationToken cancellationToken);
    Task<bool> BucketExistsAsync(string bucket, CancellationToken cancellationToken);
    /// <summary>One page of the keys under <paramref name="prefix"/>: from <paramref name="continuationToken"/>, or else after <paramref name="startAfter"/> (a whole key), or else from the start.</summary>
    Task<ObjectListing> ListAsync(string bucket, string prefix, string? continuationToken, string? startAfter, int pageSize, CancellationToken cancellationToken);
    Task<ObjectHead?> HeadAsync(string bucket, string key, CancellationToken cancellationToken);
    /// <summary>A GET, whole or ranged; with <paramref name="ifMatch"/> it fails with PreconditionFailed once the object is another version.</summary>
    Task<ObjectDownload> GetAsync(string bucket, string key, long? rangeStart, long? rangeEndInclusive, string? ifMatch, CancellationToken cancellationToken);
    /// <summary>The object's tags in x-amz-tagging form, or null when it has none.</summary>
    Task<string?> GetTaggingAsync(string bucket, string key, CancellationToken cancellationToken);
    /// <summary>PutObjectTagging: replaces the object's tags (x-amz-tagging form). Multipart objects get their tags this way once complete.</summary>
    Task PutTaggingAsync(string bucket, string key, string tagging, CancellationToken cancellationToken);
    /// <summary>Uploads <paramref name="length"/> bytes from a forward-only stream; returns the target's ETag.</summary>
    Task<StoredETag> PutAsync(string bucket, string key, Stream body, long length, ObjectMetadata metadata, PayloadChecks checks, CancellationToken cancellationToken);
    Task<string> StartMultipartAsync(string bucket, string key, ObjectMetadata metadata, CancellationToken cancellationToken);
    Task<StoredETag> UploadPartAsync(string bucket, string key, string uploadId, int partNumber, Stream body, long length, PayloadChecks checks, CancellationToken cancellationToken);
    Task<StoredETag> CompleteMultipartAsync(string bucket, string key, string uploadId, IReadOnlyList<(int PartNumber, string ETag)> parts, CancellationToken cancellationToken);
    Task AbortMultipartAsync(string bucket, string key, string uploadId, CancellationToken cancellationToken);
    /// <summary>ListMultipartUploads of exactly <paramref name="key"/> (not of keys it is a prefix of). Fails as Unsupported where the server has none.</summary>
    Task<IReadOnlyList<OpenMultipartUpload>> ListUploadsAsync(string bucket, string key, CancellationToken cancellationToken);
    /// <summary>CopyObject, metadata and tags copied by the server, pinned to the source's <paramref name="ifMatch"/> ETag.</summary>
    Task<StoredETag> CopyAsync(string sourceBucket, string sourceKey, string targetBucket, string targetKey, string? ifMatch, string? storageClass, CancellationToken cancellationToken);
    /// <summary>
    /// CopyObject of an object onto itself with x-amz-metadata-directive REPLACE, pinned to its <paramref name="ifMatch"/>
    /// ETag: the bytes stay, the headers become <paramref name="headers"/> (content headers, user metadata, storage class)
    /// and nothing else is kept. Tags are not sent: Ceph RGW drops an object's tags in this copy, and with
    /// x-amz-tagging-directive REPLACE leaves tags its GetObjectTagging answers with an empty body, so they are written after.
    /// </summary>
    Task<StoredETag> RewriteInPlaceAsync(string bucket, string key, ObjectMetadata headers, string? ifMatch, CancellationToken cancellationToken);
    /// <summary>UploadPartCopy of a byte range, pinned to the source's <paramref name="ifMatch"/> ETag. Fails as Unsupported where the server has none (GCS).</summary>
    Task<StoredETag> UploadPartCopyAsync(string sourceBucket, string sourceKey, string targetBucket, string targetKey, string uploadId, int partNumber, long firstByte, long lastByte, string? ifMatch, CancellationToken cancellationToken);
}
