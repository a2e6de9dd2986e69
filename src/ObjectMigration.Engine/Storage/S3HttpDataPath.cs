using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security;
using System.Text;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Storage;

/// <summary>An S3 error response: its code, HTTP status and message as the server sent them, and the hints it gave.</summary>
internal sealed class S3ErrorResponse(string code, int statusCode, string message)
    : Exception(string.IsNullOrEmpty(message) ? $"HTTP {statusCode}" : message)
{
    public string Code { get; } = code;
    public int StatusCode { get; } = statusCode;
    /// <summary>The bucket's region, from x-amz-bucket-region or the body's &lt;Region&gt;.</summary>
    public string? RegionHint { get; init; }
    /// <summary>The server's clock, from the body's &lt;ServerTime&gt; or the Date header.</summary>
    public DateTimeOffset? ServerTime { get; init; }

    /// <summary>The answers AWS gives a request sent to, or signed for, the wrong region.</summary>
    public bool IsWrongRegion => Code is "PermanentRedirect" or "TemporaryRedirect" or "AuthorizationHeaderMalformed" or "IllegalLocationConstraintException"
        || StatusCode is 301 or 307 || (StatusCode == 400 && Code.Length == 0 && RegionHint is not null);
}

/// <summary>
/// Every request a migration makes (ListObjectsV2, HEAD, GET, PUT, CopyObject, the multipart requests, tagging) over one
/// pooled HttpClient, and with them the one mapping between object headers and <see cref="ObjectMetadata"/>. Bodies
/// stream straight through in both directions: no aws-chunked framing (which many S3-compatible servers store raw), no
/// payload hash to compute before sending (so no buffering), no second MD5 pass.
/// It also absorbs what real providers do that our test servers do not: a bucket in another region (301/400 with the
/// region as a hint: re-signed there and remembered), a client clock the server finds skewed (re-dated by the server's
/// clock), temporary credentials (session token signed on every request, keys refreshed by their provider), and
/// links that stall (a request fails once no byte has moved for the no-progress timeout, however long it runs).
/// </summary>
internal sealed class S3HttpDataPath : IDisposable
{
    private static readonly UriCreationOptions Verbatim = new() { DangerousDisablePathAndQueryCanonicalization = true };
    /// <summary>Error, listing and result documents are small; a server (or a proxy's page) that sends more is not read further.</summary>
    internal const int MaxDocumentChars = 16 * 1024 * 1024;
    private const int MaxErrorChars = 64 * 1024;

    private readonly HttpClient _http;
    private readonly SigV4Signer _signer = new();
    private readonly CloudConnector _connector;
    private readonly ICredentialProvider _credentials;
    private readonly string _defaultRegion;
    private readonly TimeSpan _noProgressTimeout;
    private readonly ConcurrentDictionary<string, string> _bucketRegions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Uri> _regionEndpoints = new(StringComparer.Ordinal);
    private long _clockOffsetTicks;
    private readonly string? _proxyAuthorization;

    public ProviderProfile Profile { get; }

    /// <summary>Raised once per discovery: a bucket's region, a corrected clock.</summary>
    public event Action<string>? Notice;

    public S3HttpDataPath(ConnectorAccess access, int maxConnections, TimeSpan noProgressTimeout)
    {
        _connector = access.Connector;
        _credentials = access.Credentials;
        Profile = ProviderProfiles.For(_connector.Provider);
        _defaultRegion = string.IsNullOrEmpty(_connector.Region) ? Profile.DefaultRegion : _connector.Region;
        _noProgressTimeout = noProgressTimeout;
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = maxConnections,
            ConnectTimeout = noProgressTimeout,
            // Objects are copied as stored: a gzip object stays gzip.
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = false,
            UseCookies = false,
            RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8,
            ResponseHeaderEncodingSelector = (_, _) => Encoding.UTF8,
        };
        if (!string.IsNullOrEmpty(_connector.Proxy))
        {
            handler.Proxy = new WebProxy(new Uri(_connector.Proxy)) { Credentials = access.ProxyCredential };
            handler.UseProxy = true;
            // A plain-http request goes to the proxy itself, body and all, and a body streams once: a 407 after it was
            // sent could not be answered. So the credential goes with every such request (Basic, as the proxy would ask).
            // Through a tunnel (https) the proxy sees only CONNECT, which the handler answers from the credential above.
            if (access.ProxyCredential is { } proxyCredential && new Uri(_connector.Endpoint).Scheme == Uri.UriSchemeHttp)
            {
                _proxyAuthorization = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{proxyCredential.UserName}:{proxyCredential.Password}"));
            }
        }
        // No total timeout: a large part on a slow link may take hours. Each request has a no-progress timer instead.
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public void Dispose() => _http.Dispose();

    // ---- Requests ----

    /// <summary>Sends a GET and returns once the headers are in; the caller streams the body and disposes the response.</summary>
    public async Task<(HttpResponseMessage Response, ObjectHead Head, StallTimer Timer)> GetAsync(string bucket, string key, long? rangeStart, long? rangeEndInclusive, string? ifMatch, CancellationToken cancellationToken)
    {
        var timer = new StallTimer(_noProgressTimeout, cancellationToken);
        try
        {
            var response = await SendAsync(bucket, () =>
            {
                var request = CreateRequest(HttpMethod.Get, bucket, key, "");
                if (rangeStart is { } start)
                {
                    request.Message.Headers.TryAddWithoutValidation("Range", rangeEndInclusive is { } end ? $"bytes={start}-{end}" : $"bytes={start}-");
                }
                else if (Profile.SupportsChecksums)
                {
                    // Ask for the full-object checksum the server stored: what the client computes while streaming is compared with it.
                    request.Message.Headers.TryAddWithoutValidation("x-amz-checksum-mode", "ENABLED");
                }
                if (ifMatch is not null) request.Message.Headers.TryAddWithoutValidation("If-Match", Quoted(ifMatch));
                return request;
            }, HttpCompletionOption.ResponseHeadersRead, replayable: true, timer, cancellationToken).ConfigureAwait(false);
            try
            {
                var head = ReadHead(response);
                // A ranged answer's checksum (if any) is of the whole object, not of the range: never compare it with the range.
                return (response, rangeStart is null ? head : head with { Checksum = null }, timer);
            }
            catch
            {
                response.Dispose();
                throw;
            }
        }
        catch
        {
            timer.Dispose();
            throw;
        }
    }

    /// <summary>PUTs <paramref name="length"/> bytes from a forward-only stream (an object, or a part with <paramref name="query"/>); returns the ETag.</summary>
    public async Task<StoredETag> PutAsync(string bucket, string key, string query, Stream body, long length, ObjectMetadata? metadata, PayloadChecks checks, CancellationToken cancellationToken)
    {
        using var timer = new StallTimer(_noProgressTimeout, cancellationToken);
        // The body streams once: a request refused before it was read (wrong region, skewed clock) fails retryable, and
        // the caller sends the object again (now to the right region, with the right time).
        using var response = await SendAsync(bucket, () =>
        {
            var content = new BorrowedStreamContent(body, timer);
            content.Headers.ContentLength = length;
            if (checks.ContentMd5Base64 is not null) content.Headers.TryAddWithoutValidation("Content-MD5", checks.ContentMd5Base64);
            var request = CreateRequest(HttpMethod.Put, bucket, key, query);
            request.Message.Content = content;
            if (checks.Checksum is { } checksum) request.Message.Headers.TryAddWithoutValidation(checksum.HeaderName, checksum.Base64);
            if (metadata is not null) WriteMetadata(request.Message, content, metadata);
            return request;
        }, HttpCompletionOption.ResponseHeadersRead, replayable: false, timer, cancellationToken).ConfigureAwait(false);
        return ReadETag(response, Header(response, "ETag"));
    }

    /// <summary>HEAD: the object's headers, or null when there is no such key.</summary>
    public async Task<ObjectHead?> HeadAsync(string bucket, string key, CancellationToken cancellationToken)
    {
        using var timer = new StallTimer(_noProgressTimeout, cancellationToken);
        try
        {
            using var response = await SendAsync(bucket, () =>
            {
                var request = CreateRequest(HttpMethod.Head, bucket, key, "");
                if (Profile.SupportsChecksums) request.Message.Headers.TryAddWithoutValidation("x-amz-checksum-mode", "ENABLED");
                return request;
            }, HttpCompletionOption.ResponseHeadersRead, replayable: true, timer, cancellationToken).ConfigureAwait(false);
            return ReadHead(response) with { ArchiveStatus = Header(response, "x-amz-archive-status") };
        }
        catch (S3ErrorResponse e) when (e.StatusCode == 404 && e.Code is "" or "NoSuchKey" or "NotFound")
        {
            // A HEAD has no body to tell a missing key from a missing bucket; a missing bucket fails the listing first.
            return null;
        }
    }

    /// <summary>GetObjectTagging in x-amz-tagging form (URL-encoded pairs), or null when the object has no tags.</summary>
    public async Task<string?> GetTaggingAsync(string bucket, string key, CancellationToken cancellationToken)
    {
        var xml = await SendForDocumentAsync(bucket, () => CreateRequest(HttpMethod.Get, bucket, key, "tagging", canonicalQuery: "tagging="), cancellationToken).ConfigureAwait(false);
        return S3Documents.ReadTagging(xml);
    }

    /// <summary>PutObjectTagging from tags in x-amz-tagging form (the body goes with its Content-MD5, which S3 requires here).</summary>
    public async Task PutTaggingAsync(string bucket, string key, string tagging, CancellationToken cancellationToken)
    {
        var document = new StringBuilder("<Tagging><TagSet>");
        foreach (var pair in tagging.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=');
            var (name, value) = equals < 0 ? (pair, "") : (pair[..equals], pair[(equals + 1)..]);
            document.Append("<Tag><Key>").Append(SecurityElement.Escape(Uri.UnescapeDataString(name))).Append("</Key><Value>")
                .Append(SecurityElement.Escape(Uri.UnescapeDataString(value))).Append("</Value></Tag>");
        }
        var body = Encoding.UTF8.GetBytes(document.Append("</TagSet></Tagging>").ToString());
        var md5 = Convert.ToBase64String(System.Security.Cryptography.MD5.HashData(body));
        await SendForDocumentAsync(bucket, () =>
        {
            var content = new ByteArrayContent(body);
            content.Headers.TryAddWithoutValidation("Content-MD5", md5);
            content.Headers.TryAddWithoutValidation("Content-Type", "application/xml");
            var request = CreateRequest(HttpMethod.Put, bucket, key, "tagging", canonicalQuery: "tagging=");
            request.Message.Content = content;
            return request;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>CreateMultipartUpload with the object's headers; returns the upload id.</summary>
    public async Task<string> StartMultipartAsync(string bucket, string key, ObjectMetadata metadata, CancellationToken cancellationToken)
    {
        var xml = await SendForDocumentAsync(bucket, () =>
        {
            var content = new ByteArrayContent([]);
            var request = CreateRequest(HttpMethod.Post, bucket, key, "uploads", canonicalQuery: "uploads=");
            request.Message.Content = content;
            WriteMetadata(request.Message, content, metadata);
            return request;
        }, cancellationToken).ConfigureAwait(false);
        return S3Documents.Read(xml).Elements.GetValueOrDefault("UploadId") is { Length: > 0 } uploadId
            ? uploadId
            : throw new S3ErrorResponse("", 200, "CreateMultipartUpload returned no UploadId.");
    }

    /// <summary>One page of ListObjectsV2.</summary>
    public async Task<ObjectListing> ListAsync(string bucket, string prefix, string? continuationToken, string? startAfter, int pageSize, CancellationToken cancellationToken)
    {
        // Names in order and values encoded once, so the query as sent is also its canonical form. Keys come back
        // URL-encoded: XML 1.0 cannot carry every character a key may hold (control characters, a lone CR).
        var query = new StringBuilder();
        if (continuationToken is not null) query.Append("continuation-token=").Append(SigV4Signer.UriEncode(continuationToken, keepSlash: false)).Append('&');
        query.Append("encoding-type=url&list-type=2&max-keys=").Append(pageSize.ToString(CultureInfo.InvariantCulture));
        if (prefix.Length > 0) query.Append("&prefix=").Append(SigV4Signer.UriEncode(prefix, keepSlash: false));
        // A continuation token already says where the page starts; start-after is for a listing started at a key.
        if (continuationToken is null && !string.IsNullOrEmpty(startAfter)) query.Append("&start-after=").Append(SigV4Signer.UriEncode(startAfter, keepSlash: false));
        var queryText = query.ToString();
        using var timer = new StallTimer(_noProgressTimeout, cancellationToken);
        using var response = await SendAsync(bucket, () => CreateRequest(HttpMethod.Get, bucket, "", queryText),
            HttpCompletionOption.ResponseHeadersRead, replayable: true, timer, cancellationToken).ConfigureAwait(false);
        // Read whole (bounded) before parsing: XmlReader reads synchronously, and no thread waits on the network here.
        using var buffered = new MemoryStream();
        try
        {
            using var body = new StallGuardedStream(await response.Content.ReadAsStreamAsync(timer.Token).ConfigureAwait(false), timer, MaxDocumentChars * 4L);
            await body.CopyToAsync(buffered, timer.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (timer.Stalled)
        {
            throw timer.Failure(e);
        }
        buffered.Position = 0;
        return S3Documents.ReadListing(buffered);
    }

    /// <summary>CompleteMultipartUpload; returns the object's ETag.</summary>
    public async Task<StoredETag> CompleteMultipartAsync(string bucket, string key, string uploadId, IReadOnlyList<(int PartNumber, string ETag)> parts, CancellationToken cancellationToken)
    {
        var document = new StringBuilder("<CompleteMultipartUpload>");
        foreach (var (partNumber, etag) in parts.OrderBy(p => p.PartNumber))
        {
            document.Append("<Part><PartNumber>").Append(partNumber.ToString(CultureInfo.InvariantCulture)).Append("</PartNumber><ETag>")
                .Append(SecurityElement.Escape(etag)).Append("</ETag></Part>");
        }
        document.Append("</CompleteMultipartUpload>");
        var text = document.ToString();
        var (xml, response) = await SendForResultAsync(bucket, () =>
        {
            var request = CreateRequest(HttpMethod.Post, bucket, key, UploadIdQuery(uploadId));
            request.Message.Content = new StringContent(text, Encoding.UTF8, "application/xml");
            return request;
        }, cancellationToken).ConfigureAwait(false);
        return ReadETag(response, S3Documents.Read(xml).Elements.GetValueOrDefault("ETag") is { Length: > 0 } objectETag ? objectETag : null);
    }

    public async Task AbortMultipartAsync(string bucket, string key, string uploadId, CancellationToken cancellationToken) =>
        await SendForDocumentAsync(bucket, () => CreateRequest(HttpMethod.Delete, bucket, key, UploadIdQuery(uploadId)), cancellationToken).ConfigureAwait(false);

    /// <summary>ListMultipartUploads with the key as prefix, page by page, keeping the uploads of exactly that key.</summary>
    public async Task<IReadOnlyList<OpenMultipartUpload>> ListUploadsAsync(string bucket, string key, CancellationToken cancellationToken)
    {
        var found = new List<OpenMultipartUpload>();
        (string? Key, string? UploadId) marker = (null, null);
        while (true)
        {
            // Names in order and values encoded once, so the query as sent is also its canonical form. No encoding-type:
            // Ceph RGW answers "url" but sends the keys as they are, and decoding them then breaks a key with '%' or '+'.
            var query = new StringBuilder();
            if (marker.Key is not null) query.Append("key-marker=").Append(SigV4Signer.UriEncode(marker.Key, keepSlash: false)).Append('&');
            query.Append("prefix=").Append(SigV4Signer.UriEncode(key, keepSlash: false));
            if (marker.UploadId is not null) query.Append("&upload-id-marker=").Append(SigV4Signer.UriEncode(marker.UploadId, keepSlash: false));
            var queryText = query.ToString();
            var xml = await SendForDocumentAsync(bucket, () => CreateRequest(HttpMethod.Get, bucket, "", queryText + "&uploads", queryText + "&uploads="), cancellationToken).ConfigureAwait(false);
            var page = S3Documents.ReadUploadListing(xml);
            found.AddRange(page.Uploads.Where(u => u.Key == key));
            // Keys come in order: once the page ends past this key, no later page has it.
            if (page.Next is null || string.CompareOrdinal(page.Next.Value.Key, key) > 0) return found;
            // A server whose markers do not move on would page forever.
            if (page.Next.Value == marker) throw new S3ErrorResponse("", 200, "ListMultipartUploads gave the same markers twice: the listing does not advance.");
            marker = page.Next.Value;
        }
    }

    /// <summary>CopyObject within this endpoint; metadata and tags are copied by the server.</summary>
    public async Task<StoredETag> CopyAsync(string sourceBucket, string sourceKey, string targetBucket, string targetKey, string? ifMatch, string? storageClass, CancellationToken cancellationToken)
    {
        var (xml, response) = await SendForResultAsync(targetBucket, () =>
        {
            var request = CreateRequest(HttpMethod.Put, targetBucket, targetKey, "");
            request.Message.Content = new ByteArrayContent([]);
            AddCopySource(request.Message, sourceBucket, sourceKey, ifMatch);
            request.Message.Headers.TryAddWithoutValidation("x-amz-metadata-directive", "COPY");
            // A copy is written in STANDARD unless told otherwise; the source's class is asked for again.
            if (storageClass is not null) request.Message.Headers.TryAddWithoutValidation("x-amz-storage-class", storageClass);
            return request;
        }, cancellationToken).ConfigureAwait(false);
        return ReadETag(response, S3Documents.Read(xml).Elements.GetValueOrDefault("ETag"));
    }

    /// <summary>CopyObject of an object onto itself with its headers replaced (x-amz-metadata-directive REPLACE); the bytes stay.</summary>
    public async Task<StoredETag> RewriteInPlaceAsync(string bucket, string key, ObjectMetadata headers, string? ifMatch, CancellationToken cancellationToken)
    {
        var (xml, response) = await SendForResultAsync(bucket, () =>
        {
            var request = CreateRequest(HttpMethod.Put, bucket, key, "");
            var content = new ByteArrayContent([]);
            request.Message.Content = content;
            AddCopySource(request.Message, bucket, key, ifMatch);
            request.Message.Headers.TryAddWithoutValidation("x-amz-metadata-directive", "REPLACE");
            WriteMetadata(request.Message, content, headers);
            return request;
        }, cancellationToken).ConfigureAwait(false);
        return ReadETag(response, S3Documents.Read(xml).Elements.GetValueOrDefault("ETag"));
    }

    /// <summary>UploadPartCopy of bytes <paramref name="firstByte"/>..<paramref name="lastByte"/> of the source.</summary>
    public async Task<StoredETag> UploadPartCopyAsync(string sourceBucket, string sourceKey, string targetBucket, string targetKey, string uploadId, int partNumber,
        long firstByte, long lastByte, string? ifMatch, CancellationToken cancellationToken)
    {
        var (xml, response) = await SendForResultAsync(targetBucket, () =>
        {
            var request = CreateRequest(HttpMethod.Put, targetBucket, targetKey, UploadIdQuery(uploadId, partNumber));
            request.Message.Content = new ByteArrayContent([]);
            AddCopySource(request.Message, sourceBucket, sourceKey, ifMatch);
            request.Message.Headers.TryAddWithoutValidation("x-amz-copy-source-range",
                $"bytes={firstByte.ToString(CultureInfo.InvariantCulture)}-{lastByte.ToString(CultureInfo.InvariantCulture)}");
            return request;
        }, cancellationToken).ConfigureAwait(false);
        return ReadETag(response, S3Documents.Read(xml).Elements.GetValueOrDefault("ETag")
            ?? throw new S3ErrorResponse("", (int)response.StatusCode, "UploadPartCopy returned no ETag."));
    }

    private static void AddCopySource(HttpRequestMessage message, string bucket, string key, string? ifMatch)
    {
        message.Headers.TryAddWithoutValidation("x-amz-copy-source", "/" + bucket + "/" + SigV4Signer.UriEncode(key, keepSlash: true));
        if (ifMatch is not null) message.Headers.TryAddWithoutValidation("x-amz-copy-source-if-match", Quoted(ifMatch));
    }

    /// <summary>The query of a request on one multipart upload: UploadPart, CompleteMultipartUpload, AbortMultipartUpload.</summary>
    public static string UploadIdQuery(string uploadId, int? partNumber = null) =>
        (partNumber is { } n ? $"partNumber={n.ToString(CultureInfo.InvariantCulture)}&" : "") + $"uploadId={SigV4Signer.UriEncode(uploadId, keepSlash: false)}";

    private static string Quoted(string etag) => etag.StartsWith('"') ? etag : $"\"{etag}\"";

    // ---- Sending: regions, clock, stalls ----

    /// <summary>A request with the path and query exactly as the request line carries them: what the signature covers.</summary>
    private sealed record S3Request(HttpRequestMessage Message, string Host, string Path, string CanonicalQuery);

    /// <summary>The signing region of a bucket: the one discovered from the server's hints, else the connector's.</summary>
    internal string RegionFor(string bucket) => bucket.Length > 0 && _bucketRegions.TryGetValue(bucket, out var region) ? region : _defaultRegion;

    private Uri EndpointFor(string bucket)
    {
        if (bucket.Length == 0 || !_bucketRegions.TryGetValue(bucket, out var region)) return _regionEndpoints.GetOrAdd("", _ => new Uri(_connector.Endpoint));
        return _regionEndpoints.GetOrAdd(region, r => new Uri(ConnectorRules.EndpointForRegion(_connector, r)));
    }

    private S3Request CreateRequest(HttpMethod method, string bucket, string key, string query, string? canonicalQuery = null)
    {
        var endpoint = EndpointFor(bucket);
        var basePath = endpoint.AbsolutePath.TrimEnd('/');
        var encodedKey = SigV4Signer.UriEncode(key, keepSlash: true);
        // As the SDK decides for the same connector: a bucket goes into the host name only when the connector asks for
        // that, the endpoint is a name (not an IP address) and the bucket is a valid host label (no dots: TLS wildcards).
        var virtualHost = !_connector.PathStyle && endpoint.HostNameType == UriHostNameType.Dns && IsHostLabel(bucket);
        var host = virtualHost ? $"{bucket}.{endpoint.Authority}" : endpoint.Authority;
        var path = virtualHost || bucket.Length == 0 ? $"{basePath}/{encodedKey}" : $"{basePath}/{bucket}/{encodedKey}";
        var uri = new Uri($"{endpoint.Scheme}://{host}{path}{(query.Length > 0 ? "?" + query : "")}", Verbatim);
        var message = new HttpRequestMessage(method, uri);
        message.Headers.Host = host;
        if (_proxyAuthorization is not null) message.Headers.TryAddWithoutValidation("Proxy-Authorization", _proxyAuthorization);
        return new S3Request(message, host, path, canonicalQuery ?? query);
    }

    private DateTime Now => DateTime.UtcNow + TimeSpan.FromTicks(Interlocked.Read(ref _clockOffsetTicks));

    /// <summary>Now by the server's clock as far as it is known: ours, shifted by the skew a server reported.</summary>
    public DateTimeOffset ServerNow => new(Now, TimeSpan.Zero);

    /// <summary>
    /// Signs and sends a request made by <paramref name="build"/>, and follows what the server says about where and when:
    /// a bucket's region (re-signed there and remembered) and the server's clock (re-dated). A request whose body
    /// streamed cannot be sent again: it fails retryable, and the caller's retry sends it with what was learned.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(string bucket, Func<S3Request> build, HttpCompletionOption completion, bool replayable, StallTimer timer, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var request = build();
            S3ErrorResponse error;
            var region = RegionFor(bucket);
            var clockOffset = Interlocked.Read(ref _clockOffsetTicks);
            try
            {
                var keys = await _credentials.GetAsync(cancellationToken).ConfigureAwait(false);
                _signer.Sign(request.Message, request.Host, request.Path, request.CanonicalQuery, DateTime.UtcNow + TimeSpan.FromTicks(clockOffset), region, keys);
                timer.Arm();
                HttpResponseMessage response;
                try
                {
                    response = await _http.SendAsync(request.Message, completion, timer.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException e) when (timer.Stalled)
                {
                    throw timer.Failure(e);
                }
                // The answer is in: reading its body arms the timer again, read by read; the caller may take its time.
                timer.Disarm();
                if ((int)response.StatusCode < 300) return response;
                using (response) error = await ReadErrorAsync(response, timer).ConfigureAwait(false);
            }
            finally
            {
                request.Message.Dispose();
            }
            var learned = false;
            if (error.IsWrongRegion && attempt <= 2 && bucket.Length > 0)
            {
                var hint = error.RegionHint ?? await ProbeBucketRegionAsync(bucket, cancellationToken).ConfigureAwait(false);
                learned = hint is not null && hint != region && LearnRegion(bucket, hint, region);
            }
            else if (attempt <= 2 && error.ServerTime is { } serverTime && (error.Code == "RequestTimeTooSkewed"
                // A HEAD has no body to name the code: a 403 from a server whose clock is minutes away is taken as skew.
                || (error.StatusCode == 403 && error.Code.Length == 0 && (serverTime.UtcDateTime - DateTime.UtcNow - TimeSpan.FromTicks(clockOffset)).Duration() > MaxSkew)))
            {
                learned = LearnClock(serverTime, clockOffset);
            }
            if (!learned) throw error;
            if (!replayable)
            {
                throw new StorageException(ErrorClass.Retryable, $"The request was refused ({error.Code}, HTTP {error.StatusCode}) and is sent again with what the server said.", error);
            }
        }
    }

    private bool LearnRegion(string bucket, string region, string previous)
    {
        _bucketRegions[bucket] = region;
        Notice?.Invoke($"Bucket '{bucket}' on {_connector.Name} is in region '{region}', not '{previous}': its requests are now signed for {region}" +
            (ConnectorRules.HasDerivedEndpoint(_connector) ? $" and sent to {ConnectorRules.EndpointForRegion(_connector, region)}." : "."));
        return true;
    }

    /// <summary>S3 refuses a request dated more than 15 minutes from its clock; a skew of 5 is taken as the sign.</summary>
    private static readonly TimeSpan MaxSkew = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Dates requests by the server's clock from now on. True when that changes the date the refused request had (taken
    /// with <paramref name="offsetUsed"/>), so sending it again can succeed; another request may have learned it first.
    /// </summary>
    private bool LearnClock(DateTimeOffset serverTime, long offsetUsed)
    {
        var offset = serverTime.UtcDateTime - DateTime.UtcNow;
        if (Math.Abs((offset - TimeSpan.FromTicks(offsetUsed)).TotalSeconds) < 1) return false;
        var previous = TimeSpan.FromTicks(Interlocked.Exchange(ref _clockOffsetTicks, offset.Ticks));
        if (Math.Abs((offset - previous).TotalSeconds) >= 1)
        {
            Notice?.Invoke($"The clock of {_connector.Name} ({_connector.Endpoint}) differs from this machine's by {offset.TotalSeconds:0} s: requests are now dated by the server's clock. Correct this machine's clock (NTP).");
        }
        return true;
    }

    /// <summary>HEAD bucket answers with x-amz-bucket-region whatever its status, from any region.</summary>
    private async Task<string?> ProbeBucketRegionAsync(string bucket, CancellationToken cancellationToken)
    {
        using var timer = new StallTimer(_noProgressTimeout, cancellationToken);
        var request = CreateRequest(HttpMethod.Head, bucket, "", "");
        using var message = request.Message;
        var keys = await _credentials.GetAsync(cancellationToken).ConfigureAwait(false);
        _signer.Sign(message, request.Host, request.Path, request.CanonicalQuery, Now, RegionFor(bucket), keys);
        timer.Arm();
        try
        {
            using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timer.Token).ConfigureAwait(false);
            return Header(response, "x-amz-bucket-region");
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>Sends a request whose answer is a small XML document (or nothing) and reads it, bounded.</summary>
    private async Task<string> SendForDocumentAsync(string bucket, Func<S3Request> build, CancellationToken cancellationToken) =>
        (await SendForResultAsync(bucket, build, cancellationToken).ConfigureAwait(false)).Xml;

    /// <summary>
    /// As <see cref="SendForDocumentAsync"/>, with the response headers. A 200 may still carry an &lt;Error&gt; (CopyObject,
    /// CompleteMultipartUpload: the server answers as it starts and fails later), which is thrown like any error.
    /// </summary>
    private async Task<(string Xml, HttpResponseMessage Response)> SendForResultAsync(string bucket, Func<S3Request> build, CancellationToken cancellationToken)
    {
        using var timer = new StallTimer(_noProgressTimeout, cancellationToken);
        var response = await SendAsync(bucket, build, HttpCompletionOption.ResponseHeadersRead, replayable: true, timer, cancellationToken).ConfigureAwait(false);
        using (response)
        {
            var xml = await ReadBoundedAsync(response, timer, MaxDocumentChars).ConfigureAwait(false);
            var (root, elements) = S3Documents.Read(xml);
            if (root == "Error")
            {
                throw new S3ErrorResponse(elements.GetValueOrDefault("Code", ""), (int)response.StatusCode, elements.GetValueOrDefault("Message", ""));
            }
            return (xml, response);
        }
    }

    /// <summary>
    /// Reads a text body of at most <paramref name="maxChars"/>; a longer one fails (it is not a document S3 sends) and is
    /// not read further. Stalls count as for any body.
    /// </summary>
    private static async Task<string> ReadBoundedAsync(HttpResponseMessage response, StallTimer timer, int maxChars)
    {
        try
        {
            using var stream = new StallGuardedStream(await response.Content.ReadAsStreamAsync(timer.Token).ConfigureAwait(false), timer, maxChars * 4L);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            // One character more than allowed tells a body that is too long from one that just fits.
            var buffer = new char[Math.Min(maxChars + 1, 64 * 1024)];
            var text = new StringBuilder();
            int read;
            while (text.Length <= maxChars && (read = await reader.ReadAsync(buffer.AsMemory(0, Math.Min(buffer.Length, maxChars + 1 - text.Length)), timer.Token).ConfigureAwait(false)) > 0)
            {
                text.Append(buffer, 0, read);
            }
            if (text.Length > maxChars)
            {
                throw new StorageException(ErrorClass.InvalidRequest,
                    $"The answer to {response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.AbsolutePath} is larger than {maxChars} characters (HTTP {(int)response.StatusCode}); it was not read further.");
            }
            return text.ToString();
        }
        catch (OperationCanceledException e) when (timer.Stalled)
        {
            throw timer.Failure(e);
        }
    }

    private static async Task<S3ErrorResponse> ReadErrorAsync(HttpResponseMessage response, StallTimer timer)
    {
        var elements = new Dictionary<string, string>();
        string? unread = null;
        try
        {
            (_, elements) = S3Documents.Read(await ReadBoundedAsync(response, timer, MaxErrorChars).ConfigureAwait(false));
        }
        catch (Exception e) when (e is IOException or HttpRequestException or StorageException)
        {
            // The status alone still classifies the failure; an oversized body is said in its message.
            unread = (e as StorageException)?.Message;
        }
        var code = elements.GetValueOrDefault("Code", "");
        var message = unread ?? elements.GetValueOrDefault("Message", "");
        DateTimeOffset? serverTime = elements.TryGetValue("ServerTime", out var time)
            && DateTimeOffset.TryParse(time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) ? parsed : response.Headers.Date;
        return new S3ErrorResponse(code, (int)response.StatusCode, message)
        {
            RegionHint = Header(response, "x-amz-bucket-region") is { Length: > 0 } header ? header : elements.GetValueOrDefault("Region"),
            ServerTime = serverTime,
        };
    }

    // ---- Headers ----

    /// <summary>An ETag with what the response says about it: under SSE-KMS or SSE-C it is not the content's MD5.</summary>
    private static StoredETag ReadETag(HttpResponseMessage response, string? etag) =>
        new(etag, !IsEncryptedOpaquely(response) && etag is not null && IsHexMd5(etag));

    private static bool IsEncryptedOpaquely(HttpResponseMessage response) =>
        Header(response, "x-amz-server-side-encryption") is { } sse && sse.StartsWith("aws:kms", StringComparison.OrdinalIgnoreCase)
        || Header(response, "x-amz-server-side-encryption-customer-algorithm") is not null;

    private static bool IsHexMd5(string etag)
    {
        var clean = etag.AsSpan().Trim().Trim('"');
        if (clean.Length != 32) return false;
        foreach (var ch in clean) if (!char.IsAsciiHexDigit(ch)) return false;
        return true;
    }

    private static readonly string[] ChecksumAlgorithms = ["CRC64NVME", "CRC32C", "CRC32", "SHA256", "SHA1"];

    private static ObjectHead ReadHead(HttpResponseMessage response)
    {
        var metadata = new ObjectMetadata
        {
            ContentType = Header(response, "Content-Type"),
            ContentEncoding = Header(response, "Content-Encoding"),
            ContentLanguage = Header(response, "Content-Language"),
            ContentDisposition = Header(response, "Content-Disposition"),
            CacheControl = Header(response, "Cache-Control"),
            Expires = Header(response, "Expires"),
            StorageClass = Header(response, "x-amz-storage-class"),
            WebsiteRedirectLocation = Header(response, "x-amz-website-redirect-location"),
            ObjectLockMode = Header(response, "x-amz-object-lock-mode"),
            ObjectLockRetainUntil = Header(response, "x-amz-object-lock-retain-until-date"),
            ObjectLockLegalHold = Header(response, "x-amz-object-lock-legal-hold"),
        };
        foreach (var (name, values) in response.Headers.NonValidated)
        {
            if (name.StartsWith("x-amz-meta-", StringComparison.OrdinalIgnoreCase)) metadata.UserMetadata[name["x-amz-meta-".Length..]] = values.ToString();
        }
        var lastModified = response.Content.Headers.LastModified ?? DateTimeOffset.UnixEpoch;
        // A ranged GET's Content-Length is the range's; the object's size is after the '/' of Content-Range.
        var size = response.Content.Headers.ContentRange?.Length ?? response.Content.Headers.ContentLength ?? 0;
        var etag = ReadETag(response, Header(response, "ETag"));
        ObjectChecksum? checksum = null;
        // A composite checksum (of parts, "…-N", or x-amz-checksum-type COMPOSITE) is no checksum of the whole content.
        if (!string.Equals(Header(response, "x-amz-checksum-type"), "COMPOSITE", StringComparison.OrdinalIgnoreCase))
        {
            foreach (var algorithm in ChecksumAlgorithms)
            {
                if (Header(response, "x-amz-checksum-" + algorithm.ToLowerInvariant()) is { Length: > 0 } value && !value.Contains('-'))
                {
                    checksum = new ObjectChecksum(algorithm, value);
                    break;
                }
            }
        }
        // A GET says how many tags there are (none: no header); a HEAD does not say.
        int? tagCount = int.TryParse(Header(response, "x-amz-tagging-count"), NumberStyles.None, CultureInfo.InvariantCulture, out var tags) ? tags
            : response.RequestMessage?.Method == HttpMethod.Get ? 0 : null;
        return new ObjectHead(size, etag.Value, lastModified, metadata.StorageClass, metadata)
        {
            ETagIsContentMd5 = etag.IsContentMd5,
            OpaquelyEncrypted = IsEncryptedOpaquely(response),
            Checksum = checksum,
            TagCount = tagCount,
            Encryption = Header(response, "x-amz-server-side-encryption") is { Length: > 0 } sse
                ? new ObjectEncryption(sse, Header(response, "x-amz-server-side-encryption-aws-kms-key-id")) : null,
        };
    }

    private static void WriteMetadata(HttpRequestMessage request, HttpContent content, ObjectMetadata metadata)
    {
        content.Headers.TryAddWithoutValidation("Content-Type", metadata.ContentType ?? "application/octet-stream");
        if (metadata.ContentEncoding is not null) content.Headers.TryAddWithoutValidation("Content-Encoding", metadata.ContentEncoding);
        if (metadata.ContentLanguage is not null) content.Headers.TryAddWithoutValidation("Content-Language", metadata.ContentLanguage);
        if (metadata.ContentDisposition is not null) content.Headers.TryAddWithoutValidation("Content-Disposition", metadata.ContentDisposition);
        if (metadata.Expires is not null) content.Headers.TryAddWithoutValidation("Expires", metadata.Expires);
        if (metadata.CacheControl is not null) request.Headers.TryAddWithoutValidation("Cache-Control", metadata.CacheControl);
        foreach (var (name, value) in metadata.UserMetadata) request.Headers.TryAddWithoutValidation("x-amz-meta-" + name, value);
        if (metadata.StorageClass is not null) request.Headers.TryAddWithoutValidation("x-amz-storage-class", metadata.StorageClass);
        if (metadata.WebsiteRedirectLocation is not null) request.Headers.TryAddWithoutValidation("x-amz-website-redirect-location", metadata.WebsiteRedirectLocation);
        if (metadata.Tagging is not null) request.Headers.TryAddWithoutValidation("x-amz-tagging", metadata.Tagging);
        if (metadata.ObjectLockMode is not null && metadata.ObjectLockRetainUntil is not null)
        {
            request.Headers.TryAddWithoutValidation("x-amz-object-lock-mode", metadata.ObjectLockMode);
            request.Headers.TryAddWithoutValidation("x-amz-object-lock-retain-until-date", metadata.ObjectLockRetainUntil);
        }
        if (metadata.ObjectLockLegalHold is not null) request.Headers.TryAddWithoutValidation("x-amz-object-lock-legal-hold", metadata.ObjectLockLegalHold);
        if (metadata.ServerSideEncryption is not null) request.Headers.TryAddWithoutValidation("x-amz-server-side-encryption", metadata.ServerSideEncryption);
        if (metadata.KmsKeyId is not null) request.Headers.TryAddWithoutValidation("x-amz-server-side-encryption-aws-kms-key-id", metadata.KmsKeyId);
    }

    private static string? Header(HttpResponseMessage response, string name)
    {
        if (response.Headers.NonValidated.TryGetValues(name, out var values)) return values.ToString();
        return response.Content.Headers.NonValidated.TryGetValues(name, out values) ? values.ToString() : null;
    }

    /// <summary>Lower-case letters, digits and hyphens, 3-63 long, starting and ending alphanumeric.</summary>
    private static bool IsHostLabel(string bucket)
    {
        if (bucket.Length is < 3 or > 63 || bucket[0] == '-' || bucket[^1] == '-') return false;
        foreach (var ch in bucket)
        {
            if (ch is not (>= 'a' and <= 'z' or >= '0' and <= '9' or '-')) return false;
        }
        return true;
    }
}
