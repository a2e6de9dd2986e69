using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Xml;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Storage;

/// <summary>
/// The S3 protocol: bucket discovery (ListBuckets, GetBucketLocation) through AWSSDK.S3, the only place in the product
/// that touches the SDK's S3 client; every request of a migration (listing, objects, multipart, server-side copy,
/// tagging) through <see cref="S3HttpDataPath"/>.
/// </summary>
public sealed class S3ObjectStore : IObjectStore
{
    // Built on first use: a job that copies through the client never needs it (see S3HttpDataPath).
    private readonly Lazy<AmazonS3Client> _sdk;
    private readonly S3HttpDataPath _data;
    private readonly string _describe;
    /// <summary>Where the keys come from, named without a secret, for "credentials rejected" errors.</summary>
    private readonly string _credentialSource;

    public string ServerSideCopyKey { get; }

    public ProviderProfile Profile => _data.Profile;

    public DateTimeOffset ServerNow => _data.ServerNow;

    /// <summary>Paces every request of this store: a throttle slows all its workers together (see <see cref="Storage.Pacer"/>).</summary>
    internal Pacer Pacer { get; }

    public event Action<string>? Notice
    {
        add => _data.Notice += value;
        remove => _data.Notice -= value;
    }

    /// <summary>The default no-progress timeout: a request fails when no byte moved for this long.</summary>
    public static readonly TimeSpan DefaultNoProgressTimeout = TimeSpan.FromSeconds(60);

    public S3ObjectStore(ConnectorAccess access, int maxConnections = 64, TimeSpan? noProgressTimeout = null, PacerSettings? pacing = null)
    {
        Pacer = new Pacer(pacing);
        var connector = access.Connector;
        var timeout = noProgressTimeout ?? DefaultNoProgressTimeout;
        _sdk = new Lazy<AmazonS3Client>(() => CreateSdkClient(access, maxConnections, timeout));
        _data = new S3HttpDataPath(access, maxConnections, timeout);
        _describe = $"connector '{connector.Name}' ({connector.Endpoint})";
        _credentialSource = access.Credentials is SdkCredentialProvider sdk ? sdk.Description : $"the stored key {connector.AccessKeyId}";
        ServerSideCopyKey = $"{connector.Endpoint.TrimEnd('/')}|{connector.Region}|{access.Credentials.Identity}";
    }

    private static AmazonS3Client CreateSdkClient(ConnectorAccess access, int maxConnections, TimeSpan timeout)
    {
        var connector = access.Connector;
        var config = new AmazonS3Config
        {
            ServiceURL = connector.Endpoint,
            ForcePathStyle = connector.PathStyle,
            AuthenticationRegion = string.IsNullOrEmpty(connector.Region) ? ProviderProfiles.For(connector.Provider).DefaultRegion : connector.Region,
            // The engine retries with its own classification and backoff; SDK retries would hide and multiply them.
            MaxErrorRetry = 0,
            Timeout = timeout,
            MaxConnectionsPerServer = maxConnections,
        };
        if (!connector.UseChunkEncoding)
        {
            // Flexible checksums and aws-chunked bodies: many S3-compatible servers reject them or store them raw.
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }
        if (!string.IsNullOrEmpty(connector.Proxy))
        {
            config.SetWebProxy(new WebProxy(new Uri(connector.Proxy)) { Credentials = access.ProxyCredential });
            config.ProxyCredentials = access.ProxyCredential;
        }
        return new AmazonS3Client(access.Credentials.ToSdkCredentials(), config);
    }

    public void Dispose()
    {
        if (_sdk.IsValueCreated) _sdk.Value.Dispose();
        _data.Dispose();
    }

    private async Task<T> Call<T>(string what, string? bucket, Func<Task<T>> call, CancellationToken cancellationToken)
    {
        var sent = await Pacer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var result = await call().ConfigureAwait(false);
            Pacer.Succeeded();
            return result;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var error = Classify(e, what, bucket);
            if (IsThrottle(e))
            {
                Pacer.Throttled(sent);
                error.IsThrottle = true;
            }
            throw error;
        }
    }

    /// <summary>The server asks for fewer requests: 503 (SlowDown, ServiceUnavailable), 429, or a throttling code in any answer.</summary>
    private static bool IsThrottle(Exception e)
    {
        var (status, code) = FindInner<S3ErrorResponse>(e) is { } r ? (r.StatusCode, r.Code)
            : FindInner<AmazonS3Exception>(e) is { } s3 ? ((int)s3.StatusCode, s3.ErrorCode ?? "")
            : (0, "");
        return status is 503 or 429 || code is "SlowDown" or "Throttling" or "ThrottlingException" or "TooManyRequests" or "RequestLimitExceeded" or "ServiceUnavailable";
    }

    /// <summary>Maps SDK, socket and TLS failures onto the engine's error classes.</summary>
    private StorageException Classify(Exception e, string what, string? bucket)
    {
        var where = $"{what} on {_describe}";
        if (FindInner<StorageException>(e) is { } storage) return storage;
        if (e is AmazonS3Exception s3) return FromErrorResponse(s3.ErrorCode ?? "", (int)s3.StatusCode, s3.Message, where, what, bucket, e);
        if (e is S3ErrorResponse response) return FromErrorResponse(response.Code, response.StatusCode, response.Message, where, what, bucket, e);
        if (FindInner<HttpRequestException>(e) is { StatusCode: HttpStatusCode.ProxyAuthenticationRequired }) return FromErrorResponse("", 407, "", where, what, bucket, e);
        // Before sockets: a timeout cancels the socket read, which shows up inside as an aborted socket operation.
        if (e is OperationCanceledException || FindInner<TimeoutException>(e) is not null)
        {
            return new StorageException(ErrorClass.Timeout, $"{where} timed out: the server did not answer in time.", e);
        }
        var socket = FindInner<SocketException>(e);
        if (socket is not null)
        {
            return socket.SocketErrorCode switch
            {
                SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain =>
                    new StorageException(ErrorClass.Connection, $"{where} failed: the host name could not be resolved. Check the endpoint URL.", e),
                SocketError.ConnectionRefused or SocketError.NetworkUnreachable or SocketError.HostUnreachable or SocketError.AddressNotAvailable =>
                    new StorageException(ErrorClass.Connection, $"{where} failed: the connection was refused ({socket.SocketErrorCode}). Check the endpoint and that the server is running.", e),
                SocketError.TimedOut => new StorageException(ErrorClass.Timeout, $"{where} timed out connecting.", e),
                _ => new StorageException(ErrorClass.Retryable, $"{where} failed: {socket.SocketErrorCode}.", e),
            };
        }
        if (FindInner<AuthenticationException>(e) is not null)
        {
            return new StorageException(ErrorClass.Connection, $"{where} failed: the TLS handshake failed. Check the endpoint's certificate and URL scheme.", e);
        }
        if (e is AmazonServiceException service && (int)service.StatusCode >= 500)
        {
            return new StorageException(ErrorClass.Retryable, $"{where} failed: HTTP {(int)service.StatusCode}.", e);
        }
        if (FindInner<XmlException>(e) is not null)
        {
            // A listing or result cut short on the way (or garbled): asked again, like a body that broke off.
            return new StorageException(ErrorClass.Retryable, $"{where} failed: the answer was not a whole document ({e.GetBaseException().Message}).", e);
        }
        if (FindInner<IOException>(e) is not null || FindInner<HttpRequestException>(e) is not null)
        {
            return new StorageException(ErrorClass.Retryable, $"{where} failed: the connection broke ({e.GetBaseException().Message}).", e);
        }
        return new StorageException(ErrorClass.InvalidRequest, $"{where} failed: {e.GetBaseException().Message}", e);
    }

    private StorageException FromErrorResponse(string code, int status, string message, string where, string what, string? bucket, Exception e)
    {
        var detail = string.IsNullOrEmpty(code) ? $"HTTP {status}" : $"{code} (HTTP {status})";
        return code switch
        {
            "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "InvalidToken" or "ExpiredToken" or "TokenRefreshRequired" =>
                new StorageException(ErrorClass.Authentication, $"{where} failed: the access key or secret was rejected ({detail}). Check the connector's credentials: {_credentialSource}.", e),
            "AccessDenied" or "AllAccessDisabled" =>
                new StorageException(ErrorClass.AccessDenied, $"{where} failed: access denied ({detail}). Grant the connector's user this permission.", e),
            "NoSuchBucket" =>
                new StorageException(ErrorClass.BucketNotFound, $"{where} failed: bucket '{bucket}' does not exist. Create it or correct the bucket name.", e),
            "NoSuchKey" => new StorageException(ErrorClass.ObjectNotFound, $"{where} failed: the object no longer exists ({detail}).", e),
            "NoSuchUpload" => new StorageException(ErrorClass.InvalidRequest, $"{where} failed: the multipart upload no longer exists ({detail}).", e),
            "SlowDown" or "Throttling" or "ThrottlingException" or "RequestTimeout" or "InternalError" or "ServiceUnavailable" =>
                new StorageException(ErrorClass.Retryable, $"{where} failed: {detail}.", e),
            "PreconditionFailed" or "ConditionalRequestConflict" => new StorageException(ErrorClass.SourceChanged,
                $"{where} failed: the source object changed since it was listed ({detail}); it is copied again from its current version.", e) { ConditionRefused = true },
            "NotImplemented" => new StorageException(ErrorClass.Unsupported, $"{where} failed: the server does not implement this request ({detail}).", e),
            "BadDigest" or "InvalidDigest" or "IncompleteBody" or "XAmzContentChecksumMismatch" or "InvalidChecksum" =>
                new StorageException(ErrorClass.Integrity, $"{where} failed: the server saw different bytes than were sent ({detail}).", e),
            _ when status == 412 => new StorageException(ErrorClass.SourceChanged, $"{where} failed: the source object changed since it was listed ({detail}).", e) { ConditionRefused = true },
            _ when status == 501 => new StorageException(ErrorClass.Unsupported, $"{where} failed: the server does not implement this request ({detail}).", e),
            "PermanentRedirect" or "TemporaryRedirect" or "IllegalLocationConstraintException" or "AuthorizationHeaderMalformed" when status is 301 or 307 or 400 =>
                new StorageException(ErrorClass.InvalidRequest, $"{where} failed: bucket '{bucket}' is in another region and the server gave no hint which ({detail}). Set the connector's -Region to the bucket's region.", e),
            "RequestTimeTooSkewed" => new StorageException(ErrorClass.Retryable,
                $"{where} failed: this machine's clock is too far from the server's ({detail}). Correct the clock (NTP).", e),
            _ when status == 403 => new StorageException(ErrorClass.AccessDenied, $"{where} failed: access denied ({detail}).", e),
            _ when status == 407 => new StorageException(ErrorClass.Authentication,
                $"{where} failed: the connector's proxy refused its credential or asked for one (HTTP 407). Give the proxy's user name and password with Set-CloudConnector -ProxyCredential.", e),
            _ when status == 404 && what.StartsWith("Head", StringComparison.Ordinal) => new StorageException(ErrorClass.ObjectNotFound, $"{where} failed: not found.", e),
            _ when status == 404 => new StorageException(ErrorClass.BucketNotFound, $"{where} failed: not found ({detail}); check bucket '{bucket}'.", e),
            _ when status >= 500 || status == 429 || status == 0 => new StorageException(ErrorClass.Retryable, $"{where} failed: {detail}.", e),
            _ => new StorageException(ErrorClass.InvalidRequest, $"{where} failed: {detail}: {message}", e),
        };
    }

    private static T? FindInner<T>(Exception e) where T : Exception
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (current is T match) return match;
        }
        return null;
    }

    public Task<IReadOnlyList<BucketInfo>> ListBucketsAsync(CancellationToken cancellationToken) =>
        Call<IReadOnlyList<BucketInfo>>("ListBuckets", null, async () =>
        {
            var response = await _sdk.Value.ListBucketsAsync(new ListBucketsRequest(), cancellationToken).ConfigureAwait(false);
            return (response.Buckets ?? []).Select(b => new BucketInfo(b.BucketName, b.CreationDate is { } d ? new DateTimeOffset(d.ToUniversalTime()) : null)).ToList();
        }, cancellationToken);

    public Task<string?> GetBucketLocationAsync(string bucket, CancellationToken cancellationToken) =>
        Call<string?>("GetBucketLocation", bucket, async () =>
        {
            var response = await _sdk.Value.GetBucketLocationAsync(new GetBucketLocationRequest { BucketName = bucket }, cancellationToken).ConfigureAwait(false);
            var value = response.Location?.Value;
            return string.IsNullOrEmpty(value) ? "us-east-1" : value;
        }, cancellationToken);

    public async Task<bool> BucketExistsAsync(string bucket, CancellationToken cancellationToken)
    {
        try
        {
            await ListAsync(bucket, "", null, null, 1, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (StorageException e) when (e.ErrorClass == ErrorClass.BucketNotFound)
        {
            return false;
        }
    }

    public Task<ObjectListing> ListAsync(string bucket, string prefix, string? continuationToken, string? startAfter, int pageSize, CancellationToken cancellationToken) =>
        Call("ListObjectsV2", bucket, () => _data.ListAsync(bucket, prefix, continuationToken, startAfter, pageSize, cancellationToken), cancellationToken);

    public Task<ObjectHead?> HeadAsync(string bucket, string key, CancellationToken cancellationToken) =>
        Call("HeadObject", bucket, () => _data.HeadAsync(bucket, key, cancellationToken), cancellationToken);

    public Task<ObjectDownload> GetAsync(string bucket, string key, long? rangeStart, long? rangeEndInclusive, string? ifMatch, CancellationToken cancellationToken) =>
        Call("GetObject", bucket, async () =>
        {
            var (response, head, timer) = await _data.GetAsync(bucket, key, rangeStart, rangeEndInclusive, ifMatch, cancellationToken).ConfigureAwait(false);
            try
            {
                var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                return new ObjectDownload(head, new StallGuardedStream(body, timer, describe: _describe, owner: timer), response);
            }
            catch
            {
                response.Dispose();
                timer.Dispose();
                throw;
            }
        }, cancellationToken);

    public Task<string?> GetTaggingAsync(string bucket, string key, CancellationToken cancellationToken) =>
        Call("GetObjectTagging", bucket, () => _data.GetTaggingAsync(bucket, key, cancellationToken), cancellationToken);

    public Task PutTaggingAsync(string bucket, string key, string tagging, CancellationToken cancellationToken) =>
        Call("PutObjectTagging", bucket, async () =>
        {
            await _data.PutTaggingAsync(bucket, key, tagging, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task<StoredETag> PutAsync(string bucket, string key, Stream body, long length, ObjectMetadata metadata, PayloadChecks checks, CancellationToken cancellationToken) =>
        Call("PutObject", bucket, () => _data.PutAsync(bucket, key, "", body, length, metadata, checks, cancellationToken), cancellationToken);

    public Task<string> StartMultipartAsync(string bucket, string key, ObjectMetadata metadata, CancellationToken cancellationToken) =>
        Call("CreateMultipartUpload", bucket, () => _data.StartMultipartAsync(bucket, key, metadata, cancellationToken), cancellationToken);

    public Task<StoredETag> UploadPartAsync(string bucket, string key, string uploadId, int partNumber, Stream body, long length, PayloadChecks checks, CancellationToken cancellationToken) =>
        Call("UploadPart", bucket, async () =>
        {
            var query = S3HttpDataPath.UploadIdQuery(uploadId, partNumber);
            var etag = await _data.PutAsync(bucket, key, query, body, length, null, checks, cancellationToken).ConfigureAwait(false);
            return etag.Value is null ? throw new S3ErrorResponse("", 200, "UploadPart returned no ETag.") : etag;
        }, cancellationToken);

    public Task<StoredETag> CompleteMultipartAsync(string bucket, string key, string uploadId, IReadOnlyList<(int PartNumber, string ETag)> parts, CancellationToken cancellationToken) =>
        Call("CompleteMultipartUpload", bucket, () => _data.CompleteMultipartAsync(bucket, key, uploadId, parts, cancellationToken), cancellationToken);

    public Task AbortMultipartAsync(string bucket, string key, string uploadId, CancellationToken cancellationToken) =>
        Call("AbortMultipartUpload", bucket, async () =>
        {
            await _data.AbortMultipartAsync(bucket, key, uploadId, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task<IReadOnlyList<OpenMultipartUpload>> ListUploadsAsync(string bucket, string key, CancellationToken cancellationToken) =>
        Call("ListMultipartUploads", bucket, () => _data.ListUploadsAsync(bucket, key, cancellationToken), cancellationToken);

    public Task<StoredETag> CopyAsync(string sourceBucket, string sourceKey, string targetBucket, string targetKey, string? ifMatch, string? storageClass, CancellationToken cancellationToken) =>
        Call("CopyObject", targetBucket, () => _data.CopyAsync(sourceBucket, sourceKey, targetBucket, targetKey, ifMatch, storageClass, cancellationToken), cancellationToken);

    public Task<StoredETag> RewriteInPlaceAsync(string bucket, string key, ObjectMetadata headers, string? ifMatch, CancellationToken cancellationToken) =>
        Call("CopyObject", bucket, () => _data.RewriteInPlaceAsync(bucket, key, headers, ifMatch, cancellationToken), cancellationToken);

    public Task<StoredETag> UploadPartCopyAsync(string sourceBucket, string sourceKey, string targetBucket, string targetKey, string uploadId, int partNumber,
        long firstByte, long lastByte, string? ifMatch, CancellationToken cancellationToken) =>
        Call("UploadPartCopy", targetBucket, () => _data.UploadPartCopyAsync(sourceBucket, sourceKey, targetBucket, targetKey, uploadId, partNumber, firstByte, lastByte, ifMatch, cancellationToken),
            cancellationToken);
}
