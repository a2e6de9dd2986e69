using System.Globalization;
using System.Net;
using System.Security;
using System.Text;
using System.Xml;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Storage;

/// <summary>An S3 error response: its code, HTTP status and message, as the server sent them.</summary>
internal sealed class S3ErrorResponse(string code, int statusCode, string message)
    : Exception(string.IsNullOrEmpty(message) ? $"HTTP {statusCode}" : message)
{
    public string Code { get; } = code;
    public int StatusCode { get; } = statusCode;
}

/// <summary>
/// The requests a migration makes (ListObjectsV2, HEAD, GET, PUT, and a multipart upload from start to completion or
/// abort) over one pooled HttpClient, and with them the one mapping between object headers and
/// <see cref="ObjectMetadata"/>. Bodies stream straight through in both directions: no aws-chunked framing (which many
/// S3-compatible servers store raw), no payload hash to compute before sending (so no buffering), no second MD5 pass.
/// A job that copies through the client never loads the SDK, whose first request alone costs a few hundred
/// milliseconds of CPU; the SDK keeps bucket discovery and server-side copy.
/// </summary>
internal sealed class S3HttpDataPath : IDisposable
{
    private static readonly UriCreationOptions Verbatim = new() { DangerousDisablePathAndQueryCanonicalization = true };
    // Servers write control characters in keys as character references (&#x1;), which XML 1.0 forbids; Ceph does so
    // in the continuation token even when keys come URL-encoded. They are read as the characters they stand for.
    private static readonly XmlReaderSettings XmlSettings = new() { DtdProcessing = DtdProcessing.Prohibit, CheckCharacters = false };
    private readonly HttpClient _http;
    private readonly SigV4Signer _signer = new();
    private readonly Connectors.ICredentialProvider _credentials;
    private readonly string _region;
    private readonly string _scheme;
    private readonly string _authority;
    private readonly string _basePath;
    private readonly bool _virtualHostAllowed;

    public S3HttpDataPath(ConnectorAccess access, int maxConnections, TimeSpan timeout)
    {
        var connector = access.Connector;
        _credentials = access.Credentials;
        _region = connector.Region;
        var endpoint = new Uri(connector.Endpoint);
        _scheme = endpoint.Scheme;
        _authority = endpoint.Authority;
        _basePath = endpoint.AbsolutePath.TrimEnd('/');
        // As the SDK decides for the same connector: a bucket goes into the host name only when the connector asks
        // for that, the endpoint is a name (not an IP address) and the bucket is a valid host label.
        _virtualHostAllowed = !connector.PathStyle && endpoint.HostNameType == UriHostNameType.Dns;
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = maxConnections,
            // Objects are copied as stored: a gzip object stays gzip.
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = false,
            UseCookies = false,
            RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8,
            ResponseHeaderEncodingSelector = (_, _) => Encoding.UTF8,
        };
        if (!string.IsNullOrEmpty(connector.Proxy))
        {
            handler.Proxy = new WebProxy(new Uri(connector.Proxy));
            handler.UseProxy = true;
        }
        _http = new HttpClient(handler) { Timeout = timeout };
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Sends a GET and returns once the headers are in; the caller streams and disposes the response.</summary>
    public async Task<(HttpResponseMessage Response, ObjectHead Head)> GetAsync(string bucket, string key, long? rangeStart, long? rangeEndInclusive, CancellationToken cancellationToken)
    {
        var request = CreateRequest(HttpMethod.Get, bucket, key, "");
        using var message = request.Message;
        if (rangeStart is { } start)
        {
            message.Headers.TryAddWithoutValidation("Range", rangeEndInclusive is { } end ? $"bytes={start}-{end}" : $"bytes={start}-");
        }
        var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        try
        {
            return (response, ReadHead(response));
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>PUTs <paramref name="length"/> bytes from a forward-only stream; returns the ETag.</summary>
    public async Task<string?> PutAsync(string bucket, string key, string query, Stream body, long length, ObjectMetadata? metadata, string? contentMd5Base64, CancellationToken cancellationToken)
    {
        using var content = new BorrowedStreamContent(body);
        content.Headers.ContentLength = length;
        if (contentMd5Base64 is not null) content.Headers.TryAddWithoutValidation("Content-MD5", contentMd5Base64);
        var request = CreateRequest(HttpMethod.Put, bucket, key, query);
        using var message = request.Message;
        message.Content = content;
        if (metadata is not null) WriteMetadata(message, content, metadata);
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        return Header(response, "ETag");
    }

    /// <summary>HEAD: the object's headers, or null when there is no such key.</summary>
    public async Task<ObjectHead?> HeadAsync(string bucket, string key, CancellationToken cancellationToken)
    {
        var request = CreateRequest(HttpMethod.Head, bucket, key, "");
        using var message = request.Message;
        try
        {
            using var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            return ReadHead(response) with { ArchiveStatus = Header(response, "x-amz-archive-status") };
        }
        catch (S3ErrorResponse e) when (e.StatusCode == 404 && e.Code is "" or "NoSuchKey" or "NotFound")
        {
            // A HEAD has no body to tell a missing key from a missing bucket; a missing bucket fails the listing first.
            return null;
        }
    }

    /// <summary>CreateMultipartUpload with the object's headers; returns the upload id.</summary>
    public async Task<string> StartMultipartAsync(string bucket, string key, ObjectMetadata metadata, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent([]);
        var request = CreateRequest(HttpMethod.Post, bucket, key, "uploads", canonicalQuery: "uploads=");
        using var message = request.Message;
        message.Content = content;
        WriteMetadata(message, content, metadata);
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        var xml = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return ReadDocument(xml).Elements.GetValueOrDefault("UploadId") is { Length: > 0 } uploadId
            ? uploadId
            : throw new S3ErrorResponse("", (int)response.StatusCode, "CreateMultipartUpload returned no UploadId.");
    }

    /// <summary>One page of ListObjectsV2.</summary>
    public async Task<ObjectListing> ListAsync(string bucket, string prefix, string? continuationToken, int pageSize, CancellationToken cancellationToken)
    {
        // Names in order and values encoded once, so the query as sent is also its canonical form. Keys come back
        // URL-encoded: XML 1.0 cannot carry every character a key may hold (control characters, a lone CR).
        var query = new StringBuilder();
        if (continuationToken is not null) query.Append("continuation-token=").Append(SigV4Signer.UriEncode(continuationToken, keepSlash: false)).Append('&');
        query.Append("encoding-type=url&list-type=2&max-keys=").Append(pageSize.ToString(CultureInfo.InvariantCulture));
        if (prefix.Length > 0) query.Append("&prefix=").Append(SigV4Signer.UriEncode(prefix, keepSlash: false));
        var request = CreateRequest(HttpMethod.Get, bucket, "", query.ToString());
        using var message = request.Message;
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        return ReadListing(body);
    }

    /// <summary>CompleteMultipartUpload; returns the object's ETag.</summary>
    public async Task<string?> CompleteMultipartAsync(string bucket, string key, string uploadId, IReadOnlyList<(int PartNumber, string ETag)> parts, CancellationToken cancellationToken)
    {
        var document = new StringBuilder("<CompleteMultipartUpload>");
        foreach (var (partNumber, etag) in parts.OrderBy(p => p.PartNumber))
        {
            document.Append("<Part><PartNumber>").Append(partNumber.ToString(CultureInfo.InvariantCulture)).Append("</PartNumber><ETag>")
                .Append(SecurityElement.Escape(etag)).Append("</ETag></Part>");
        }
        document.Append("</CompleteMultipartUpload>");
        using var content = new StringContent(document.ToString(), Encoding.UTF8, "application/xml");
        var request = CreateRequest(HttpMethod.Post, bucket, key, UploadIdQuery(uploadId));
        using var message = request.Message;
        message.Content = content;
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        // The server answers 200 as soon as it starts assembling; a failure after that comes as an <Error> document.
        var (root, elements) = ReadDocument(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
        if (root == "Error") throw new S3ErrorResponse(elements.GetValueOrDefault("Code", ""), (int)response.StatusCode, elements.GetValueOrDefault("Message", ""));
        return elements.GetValueOrDefault("ETag") is { Length: > 0 } objectETag ? objectETag : null;
    }

    public async Task AbortMultipartAsync(string bucket, string key, string uploadId, CancellationToken cancellationToken)
    {
        var request = CreateRequest(HttpMethod.Delete, bucket, key, UploadIdQuery(uploadId));
        using var message = request.Message;
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The query of a request on one multipart upload: UploadPart, CompleteMultipartUpload, AbortMultipartUpload.</summary>
    public static string UploadIdQuery(string uploadId, int? partNumber = null) =>
        (partNumber is { } n ? $"partNumber={n.ToString(CultureInfo.InvariantCulture)}&" : "") + $"uploadId={SigV4Signer.UriEncode(uploadId, keepSlash: false)}";

    /// <summary>A request with the path and query exactly as the request line carries them: what the signature covers.</summary>
    private sealed record S3Request(HttpRequestMessage Message, string Host, string Path, string CanonicalQuery);

    private S3Request CreateRequest(HttpMethod method, string bucket, string key, string query, string? canonicalQuery = null)
    {
        var encodedKey = SigV4Signer.UriEncode(key, keepSlash: true);
        var virtualHost = _virtualHostAllowed && IsHostLabel(bucket);
        var host = virtualHost ? $"{bucket}.{_authority}" : _authority;
        var path = virtualHost ? $"{_basePath}/{encodedKey}" : $"{_basePath}/{bucket}/{encodedKey}";
        var uri = new Uri($"{_scheme}://{host}{path}{(query.Length > 0 ? "?" + query : "")}", Verbatim);
        var message = new HttpRequestMessage(method, uri);
        message.Headers.Host = host;
        return new S3Request(message, host, path, canonicalQuery ?? query);
    }

    private async Task<HttpResponseMessage> SendAsync(S3Request request, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        var keys = await _credentials.GetAsync(cancellationToken).ConfigureAwait(false);
        _signer.Sign(request.Message, request.Host, request.Path, request.CanonicalQuery, DateTime.UtcNow, _region, keys);
        var response = await _http.SendAsync(request.Message, completion, cancellationToken).ConfigureAwait(false);
        if ((int)response.StatusCode < 300) return response;
        using (response)
        {
            throw await ReadErrorAsync(response, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<S3ErrorResponse> ReadErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var elements = new Dictionary<string, string>();
        try
        {
            (_, elements) = ReadDocument(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            // The status alone still classifies the failure.
        }
        var code = elements.GetValueOrDefault("Code", "");
        var message = elements.GetValueOrDefault("Message", "");
        return new S3ErrorResponse(code, (int)response.StatusCode, message);
    }

    /// <summary>The root element's name and the text of its children (S3 error and result documents are one level deep).</summary>
    private static (string Root, Dictionary<string, string> Elements) ReadDocument(string xml)
    {
        var elements = new Dictionary<string, string>(StringComparer.Ordinal);
        var root = "";
        if (xml.Length == 0) return (root, elements);
        try
        {
            using var reader = XmlReader.Create(new StringReader(xml), XmlSettings);
            reader.MoveToContent();
            root = reader.LocalName;
            reader.Read();
            while (!reader.EOF)
            {
                // Reading an element's content moves onto the next node, which may itself be the next element.
                if (reader.NodeType == XmlNodeType.Element && reader.Depth == 1) elements[reader.LocalName] = reader.ReadElementContentAsString();
                else reader.Read();
            }
        }
        catch (XmlException)
        {
            // Not XML (a proxy's HTML page, say): what was read so far stands.
        }
        return (root, elements);
    }

    private static ObjectListing ReadListing(Stream xml)
    {
        var objects = new List<ListedObject>();
        string? next = null;
        var truncated = false;
        var urlEncoded = false;
        using var reader = XmlReader.Create(xml, XmlSettings);
        reader.MoveToContent();
        if (reader.LocalName != "ListBucketResult") throw new S3ErrorResponse("", 200, $"ListObjectsV2 answered with <{reader.LocalName}>, not a listing.");
        reader.Read();
        while (!reader.EOF)
        {
            if (reader.NodeType != XmlNodeType.Element || reader.Depth != 1)
            {
                reader.Read();
                continue;
            }
            switch (reader.LocalName)
            {
                case "Contents": objects.Add(ReadListedObject(reader)); break;
                case "IsTruncated": truncated = reader.ReadElementContentAsString() == "true"; break;
                case "NextContinuationToken": next = reader.ReadElementContentAsString(); break;
                case "EncodingType": urlEncoded = reader.ReadElementContentAsString() == "url"; break;
                default: reader.Skip(); break;
            }
        }
        if (urlEncoded) objects = objects.ConvertAll(o => o with { Key = WebUtility.UrlDecode(o.Key) });
        if (truncated && string.IsNullOrEmpty(next))
        {
            // Stopping here would silently leave the rest of the bucket out of the migration.
            throw new S3ErrorResponse("", 200, "ListObjectsV2 said the listing goes on but gave no continuation token.");
        }
        return new ObjectListing(objects, truncated ? next : null);
    }

    private static ListedObject ReadListedObject(XmlReader reader)
    {
        string key = "", etag = "", storageClass = "";
        long size = 0;
        var lastModified = DateTimeOffset.UnixEpoch;
        var depth = reader.Depth;
        if (reader.IsEmptyElement) throw new S3ErrorResponse("", 200, "ListObjectsV2 listed an object without a key.");
        reader.Read();
        while (!(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
        {
            if (reader.NodeType != XmlNodeType.Element)
            {
                reader.Read();
                continue;
            }
            switch (reader.LocalName)
            {
                case "Key": key = reader.ReadElementContentAsString(); break;
                case "Size": size = long.Parse(reader.ReadElementContentAsString(), NumberStyles.None, CultureInfo.InvariantCulture); break;
                case "ETag": etag = reader.ReadElementContentAsString(); break;
                case "StorageClass": storageClass = reader.ReadElementContentAsString(); break;
                case "LastModified":
                    lastModified = DateTimeOffset.Parse(reader.ReadElementContentAsString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
                    break;
                default: reader.Skip(); break;
            }
        }
        reader.Read();
        return new ListedObject(key, size, etag.Length == 0 ? null : etag, lastModified, storageClass.Length == 0 ? null : storageClass);
    }

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
        };
        foreach (var (name, values) in response.Headers.NonValidated)
        {
            if (name.StartsWith("x-amz-meta-", StringComparison.OrdinalIgnoreCase)) metadata.UserMetadata[name["x-amz-meta-".Length..]] = values.ToString();
        }
        var lastModified = response.Content.Headers.LastModified ?? DateTimeOffset.UnixEpoch;
        return new ObjectHead(response.Content.Headers.ContentLength ?? 0, Header(response, "ETag"), lastModified, Header(response, "x-amz-storage-class"), metadata);
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

/// <summary>
/// A request body read once from a stream the caller owns: unlike StreamContent it never disposes or seeks it,
/// so the caller can still read the hash it took on the way.
/// </summary>
internal sealed class BorrowedStreamContent(Stream body) : HttpContent
{
    private const int BufferSize = 64 * 1024;

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        body.CopyToAsync(stream, BufferSize, cancellationToken);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
