using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ObjectMigration.Engine.Tests;

/// <summary>How a request signed for another region than the bucket's is refused (both carry <c>x-amz-bucket-region</c>).</summary>
public enum RegionRefusal
{
    /// <summary>400 AuthorizationHeaderMalformed with <c>&lt;Region&gt;</c>: the right endpoint, signed for the wrong region.</summary>
    AuthorizationHeaderMalformed,
    /// <summary>301 PermanentRedirect with <c>&lt;Endpoint&gt;</c> and no Location: another region's or the global endpoint.</summary>
    PermanentRedirect,
    /// <summary>
    /// 307 TemporaryRedirect with Location and <c>&lt;Endpoint&gt;</c> (a bucket younger than a day), and no region in it:
    /// only a HEAD of the bucket names the region (x-amz-bucket-region).
    /// </summary>
    TemporaryRedirect,
}

/// <summary>Server-side encryption the emulated provider applies to every object: its ETags are then no MD5.</summary>
public enum ServerSideEncryption
{
    None,
    /// <summary>SSE-KMS: opaque ETags, <c>x-amz-server-side-encryption: aws:kms</c> and the key's ARN.</summary>
    SseKms,
    /// <summary>SSE-C: opaque ETags, <c>x-amz-server-side-encryption-customer-algorithm: AES256</c> and a key MD5.</summary>
    SseC,
}

/// <summary>A request as it reached the proxy, copied (the live request is gone once it has been answered).</summary>
public sealed record ArrivedRequest(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers)
{
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>
/// What the proxy pretends its server is: which region the bucket lives in, which temporary credentials it wants,
/// whether it encrypts, checksums, evaluates conditions, refuses part copies, and what its clock says. Every setting
/// may be changed while requests flow: each request reads one consistent copy of all of them when it arrives (after
/// <see cref="FaultProxy.RequestArrived"/> handlers ran). All off by default: the proxy then only forwards.
/// Counters tell how often each emulated refusal was served.
/// </summary>
public sealed class ProviderEmulation
{
    /// <summary>S3's limit on the distance between a request's time and the server's clock.</summary>
    public static readonly TimeSpan MaxSkew = TimeSpan.FromMinutes(15);

    private readonly Lock _gate = new();
    private string? _bucketRegion;
    private RegionRefusal _regionRefusal = RegionRefusal.AuthorizationHeaderMalformed;
    private string? _redirectEndpoint;
    private string? _requiredSessionToken;
    private string? _requiredAccessKeyId;
    private string? _requiredSecretAccessKey;
    private readonly HashSet<string> _expiredSessionTokens = new(StringComparer.Ordinal);
    private ServerSideEncryption _encryption;
    private string _kmsKeyArn = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9";
    private bool _provideChecksums;
    private bool _verifyUploadChecksums;
    private bool _refusePartCopy;
    private bool _evaluateConditions;
    private bool _requireEqualParts;
    private TimeSpan _clockOffset;

    private T Get<T>(ref T field)
    {
        lock (_gate) return field;
    }

    private void Set<T>(ref T field, T value)
    {
        lock (_gate) field = value;
    }

    /// <summary>
    /// The region every bucket lives in; null: any region is accepted. A request whose SigV4 credential scope names
    /// another region is refused as <see cref="RegionRefusal"/> says, with <c>x-amz-bucket-region</c>. Requests without a
    /// bucket (ListBuckets) and unsigned ones are not checked.
    /// </summary>
    public string? BucketRegion { get => Get(ref _bucketRegion); set => Set(ref _bucketRegion, value); }

    public RegionRefusal RegionRefusal { get => Get(ref _regionRefusal); set => Set(ref _regionRefusal, value); }

    /// <summary>The <c>&lt;Endpoint&gt;</c> of a PermanentRedirect; null: <c>{bucket}.s3.{region}.amazonaws.com</c>.</summary>
    public string? RedirectEndpoint { get => Get(ref _redirectEndpoint); set => Set(ref _redirectEndpoint, value); }

    /// <summary>
    /// Temporary credentials: every signed request must carry this <c>x-amz-security-token</c>, signed. None:
    /// 403 InvalidAccessKeyId; an expired one (<see cref="RotateSessionToken"/>): 400 ExpiredToken; another one:
    /// 400 InvalidToken; present but not in SignedHeaders: 403 SignatureDoesNotMatch. Null: tokens are not checked.
    /// </summary>
    public string? RequiredSessionToken { get => Get(ref _requiredSessionToken); set => Set(ref _requiredSessionToken, value); }

    /// <summary>The only access key id accepted (temporary keys have their own, ASIA…); others get 403 InvalidAccessKeyId.</summary>
    public string? RequiredAccessKeyId { get => Get(ref _requiredAccessKeyId); set => Set(ref _requiredAccessKeyId, value); }

    /// <summary>
    /// The secret of <see cref="RequiredAccessKeyId"/>. When known, the proxy checks the signatures made with it
    /// (403 SignatureDoesNotMatch) and, if it has the upstream's keys, signs the request anew for the upstream.
    /// </summary>
    public string? RequiredSecretAccessKey { get => Get(ref _requiredSecretAccessKey); set => Set(ref _requiredSecretAccessKey, value); }

    /// <summary>The token in force expires (requests still carrying it get 400 ExpiredToken) and <paramref name="next"/> is required.</summary>
    public void RotateSessionToken(string next)
    {
        lock (_gate)
        {
            if (_requiredSessionToken is not null && _requiredSessionToken != next) _expiredSessionTokens.Add(_requiredSessionToken);
            _expiredSessionTokens.Remove(next);
            _requiredSessionToken = next;
        }
    }

    public ServerSideEncryption Encryption { get => Get(ref _encryption); set => Set(ref _encryption, value); }

    /// <summary>Shorthand for <see cref="Encryption"/> = <see cref="ServerSideEncryption.SseKms"/>.</summary>
    public bool SseKms
    {
        get => Encryption == ServerSideEncryption.SseKms;
        set => Encryption = value ? ServerSideEncryption.SseKms : ServerSideEncryption.None;
    }

    /// <summary>Shorthand for <see cref="Encryption"/> = <see cref="ServerSideEncryption.SseC"/>.</summary>
    public bool SseC
    {
        get => Encryption == ServerSideEncryption.SseC;
        set => Encryption = value ? ServerSideEncryption.SseC : ServerSideEncryption.None;
    }

    public string KmsKeyArn { get => Get(ref _kmsKeyArn); set => Set(ref _kmsKeyArn, value); }

    /// <summary>A whole-object GET or HEAD with <c>x-amz-checksum-mode: ENABLED</c> gets <c>x-amz-checksum-crc32</c> of the content.</summary>
    public bool ProvideChecksums { get => Get(ref _provideChecksums); set => Set(ref _provideChecksums, value); }

    /// <summary>A PUT or UploadPart whose <c>x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}</c> disagrees with its body: 400 BadDigest, nothing forwarded.</summary>
    public bool VerifyUploadChecksums { get => Get(ref _verifyUploadChecksums); set => Set(ref _verifyUploadChecksums, value); }

    /// <summary>GCS: UploadPartCopy gets 501 NotImplemented; CopyObject still works.</summary>
    public bool RefusePartCopy { get => Get(ref _refusePartCopy); set => Set(ref _refusePartCopy, value); }

    /// <summary>
    /// GET/HEAD <c>If-Match</c> and CopyObject/UploadPartCopy <c>x-amz-copy-source-if-match</c> are evaluated by the proxy
    /// (against the ETag the client sees, opaque ones included): 412 PreconditionFailed when none matches.
    /// </summary>
    public bool EvaluateConditions { get => Get(ref _evaluateConditions); set => Set(ref _evaluateConditions, value); }

    /// <summary>R2: CompleteMultipartUpload whose non-final parts differ in size, or whose last part is larger: 400 InvalidPart.</summary>
    public bool RequireEqualParts { get => Get(ref _requireEqualParts); set => Set(ref _requireEqualParts, value); }

    /// <summary>The emulated server's clock is the real one plus this: it refuses requests more than 15 minutes from it and sends it in every Date header.</summary>
    public TimeSpan ClockOffset { get => Get(ref _clockOffset); set => Set(ref _clockOffset, value); }

    /// <summary>The emulated server's clock now.</summary>
    public DateTimeOffset Now => DateTimeOffset.UtcNow + ClockOffset;

    /// <summary>Every setting back to off (counters stay).</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _bucketRegion = null;
            _regionRefusal = RegionRefusal.AuthorizationHeaderMalformed;
            _redirectEndpoint = null;
            _requiredSessionToken = null;
            _requiredAccessKeyId = null;
            _requiredSecretAccessKey = null;
            _expiredSessionTokens.Clear();
            _encryption = ServerSideEncryption.None;
            _provideChecksums = _verifyUploadChecksums = _refusePartCopy = _evaluateConditions = _requireEqualParts = false;
            _clockOffset = TimeSpan.Zero;
        }
    }

    internal EmulationSettings Snapshot()
    {
        lock (_gate)
        {
            return new EmulationSettings(_bucketRegion, _regionRefusal, _redirectEndpoint, _requiredSessionToken, _requiredAccessKeyId,
                _requiredSecretAccessKey, _expiredSessionTokens.ToArray(), _encryption, _kmsKeyArn, _provideChecksums, _verifyUploadChecksums,
                _refusePartCopy, _evaluateConditions, _requireEqualParts, _clockOffset);
        }
    }

    private int _regionRefusals, _tokenRefusals, _signatureRefusals, _skewRefusals, _preconditionFailures, _partCopiesRefused,
        _checksumMismatches, _unequalPartRefusals, _checksumsProvided;

    /// <summary>AuthorizationHeaderMalformed or PermanentRedirect served.</summary>
    public int RegionRefusals => Volatile.Read(ref _regionRefusals);
    /// <summary>InvalidAccessKeyId, InvalidToken, ExpiredToken, and SignatureDoesNotMatch for an unsigned token.</summary>
    public int TokenRefusals => Volatile.Read(ref _tokenRefusals);
    /// <summary>SignatureDoesNotMatch from the proxy's own check of a signature (only where it knows the secret and signs anew).</summary>
    public int SignatureRefusals => Volatile.Read(ref _signatureRefusals);
    public int SkewRefusals => Volatile.Read(ref _skewRefusals);
    /// <summary>412 PreconditionFailed served (by the proxy's evaluation, or the upstream's own, made uniform).</summary>
    public int PreconditionFailures => Volatile.Read(ref _preconditionFailures);
    public int PartCopiesRefused => Volatile.Read(ref _partCopiesRefused);
    /// <summary>400 BadDigest served for an upload whose checksum header disagreed with its body.</summary>
    public int ChecksumMismatches => Volatile.Read(ref _checksumMismatches);
    public int UnequalPartRefusals => Volatile.Read(ref _unequalPartRefusals);
    /// <summary>GET/HEAD responses given an <c>x-amz-checksum-crc32</c>.</summary>
    public int ChecksumsProvided => Volatile.Read(ref _checksumsProvided);

    internal void CountRegion() => Interlocked.Increment(ref _regionRefusals);
    internal void CountToken() => Interlocked.Increment(ref _tokenRefusals);
    internal void CountSignature() => Interlocked.Increment(ref _signatureRefusals);
    internal void CountSkew() => Interlocked.Increment(ref _skewRefusals);
    internal void CountPrecondition() => Interlocked.Increment(ref _preconditionFailures);
    internal void CountPartCopy() => Interlocked.Increment(ref _partCopiesRefused);
    internal void CountChecksumMismatch() => Interlocked.Increment(ref _checksumMismatches);
    internal void CountUnequalParts() => Interlocked.Increment(ref _unequalPartRefusals);
    internal void CountChecksumProvided() => Interlocked.Increment(ref _checksumsProvided);

    // Opaque ETag → the upstream's, so ETags the client echoes back (CompleteMultipartUpload, If-Match) can be translated.
    private readonly ConcurrentDictionary<(string Bucket, string Key, string Opaque), string> _upstreamETags = new();
    private static readonly byte[] OpaqueKey = "provider-emulation-opaque-etag"u8.ToArray();

    /// <summary>
    /// The ETag an encrypting provider shows for an object whose upstream ETag is <paramref name="upstreamETag"/>: 32 hex
    /// characters that are not the content's MD5, the same for the same (bucket, key, upstream ETag) in every proxy;
    /// a multipart <c>-N</c> suffix stays. Quotes are kept as given.
    /// </summary>
    public string OpaqueETag(string bucket, string key, string upstreamETag)
    {
        var quoted = upstreamETag.StartsWith('"');
        var bare = upstreamETag.Trim('"');
        var dash = bare.IndexOf('-', StringComparison.Ordinal);
        var (core, suffix) = dash >= 0 ? (bare[..dash], bare[dash..]) : (bare, "");
        var hash = HMACSHA256.HashData(OpaqueKey, Encoding.UTF8.GetBytes(bucket + "\n" + key + "\n" + bare));
        var opaque = Convert.ToHexString(hash, 0, 16).ToLowerInvariant();
        if (opaque == core) opaque = Convert.ToHexString(hash, 16, 16).ToLowerInvariant();
        _upstreamETags[(bucket, key, opaque + suffix)] = bare;
        return quoted ? "\"" + opaque + suffix + "\"" : opaque + suffix;
    }

    /// <summary>The upstream ETag behind an opaque one this emulation showed, quotes as given; anything else unchanged.</summary>
    internal string UpstreamETag(string bucket, string key, string etag)
    {
        var bare = etag.Trim().Trim('"');
        if (!_upstreamETags.TryGetValue((bucket, key, bare), out var upstream)) return etag;
        return etag.Trim().StartsWith('"') ? "\"" + upstream + "\"" : upstream;
    }
}

internal sealed record EmulationSettings(
    string? BucketRegion, RegionRefusal RegionRefusal, string? RedirectEndpoint, string? RequiredSessionToken, string? RequiredAccessKeyId,
    string? RequiredSecretAccessKey, string[] ExpiredSessionTokens, ServerSideEncryption Encryption, string KmsKeyArn, bool ProvideChecksums,
    bool VerifyUploadChecksums, bool RefusePartCopy, bool EvaluateConditions, bool RequireEqualParts, TimeSpan ClockOffset)
{
    public DateTimeOffset Now => DateTimeOffset.UtcNow + ClockOffset;
}

/// <summary>The checksums S3 accepts in <c>x-amz-checksum-*</c>: base64 of the big-endian digest.</summary>
public static class S3Checksums
{
    private static readonly uint[] Crc32Table = Table32(0xEDB88320u);
    private static readonly uint[] Crc32CTable = Table32(0x82F63B78u);
    private static readonly ulong[] Crc64NvmeTable = Table64(0x9A6C9329AC4BC9B5ul);

    private static uint[] Table32(uint polynomial)
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? polynomial ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return table;
    }

    private static ulong[] Table64(ulong polynomial)
    {
        var table = new ulong[256];
        for (ulong i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? polynomial ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return table;
    }

    private static uint Crc(uint[] table, ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data) crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    /// <summary>CRC-32 (IEEE 802.3, as zlib and S3): "123456789" → 0xCBF43926.</summary>
    public static uint Crc32(ReadOnlySpan<byte> data) => Crc(Crc32Table, data);

    /// <summary>CRC-32C (Castagnoli): "123456789" → 0xE3069283.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data) => Crc(Crc32CTable, data);

    /// <summary>CRC-64/NVME: "123456789" → 0xAE8B14860A799888.</summary>
    public static ulong Crc64Nvme(ReadOnlySpan<byte> data)
    {
        var crc = ulong.MaxValue;
        foreach (var b in data) crc = Crc64NvmeTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    private static string Base64(uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return Convert.ToBase64String(bytes);
    }

    private static string Base64(ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        return Convert.ToBase64String(bytes);
    }

    /// <summary>The checksum header names S3 knows, and how each value is computed.</summary>
    public static readonly IReadOnlyDictionary<string, Func<byte[], string>> Algorithms = new Dictionary<string, Func<byte[], string>>(StringComparer.OrdinalIgnoreCase)
    {
        ["x-amz-checksum-crc32"] = data => Base64(Crc32(data)),
        ["x-amz-checksum-crc32c"] = data => Base64(Crc32C(data)),
        ["x-amz-checksum-crc64nvme"] = data => Base64(Crc64Nvme(data)),
        ["x-amz-checksum-sha1"] = data => Convert.ToBase64String(SHA1.HashData(data)),
        ["x-amz-checksum-sha256"] = data => Convert.ToBase64String(SHA256.HashData(data)),
    };

    public static string Crc32Base64(byte[] data) => Base64(Crc32(data));
}

/// <summary>
/// An independent SigV4 for the fixture (the engine's signer is what is under test): the proxy checks and re-makes
/// signatures with it, and tests sign raw requests.
/// </summary>
public static class FixtureSigV4
{
    public const string UnsignedPayload = "UNSIGNED-PAYLOAD";

    public static string Hex(byte[] bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    /// <summary>RFC 3986 encoding of UTF-8, as SigV4 wants; '/' kept when <paramref name="keepSlash"/>.</summary>
    public static string Encode(string value, bool keepSlash)
    {
        var builder = new StringBuilder(value.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            var ch = (char)b;
            if (ch is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.' or '~' || (ch == '/' && keepSlash)) builder.Append(ch);
            else builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return builder.ToString();
    }

    /// <summary>A raw query string made canonical: each name and value decoded and encoded again, sorted; <c>X-Amz-Signature</c> left out.</summary>
    public static string CanonicalQuery(string rawQuery)
    {
        var pairs = new List<(string Name, string Value)>();
        foreach (var part in rawQuery.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString(eq < 0 ? part : part[..eq]);
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..]);
            if (name == "X-Amz-Signature") continue;
            pairs.Add((Encode(name, false), Encode(value, false)));
        }
        return string.Join("&", pairs.OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Value, StringComparer.Ordinal).Select(p => p.Name + "=" + p.Value));
    }

    private static string CanonicalValue(string value) => string.Join(' ', value.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The hex signature of a request; <paramref name="headers"/> are exactly the signed ones (lower-case names).</summary>
    public static string Signature(string method, string canonicalPath, string canonicalQuery, IEnumerable<KeyValuePair<string, string>> headers,
        string payloadHash, string amzDate, string region, string secretAccessKey, out string signedHeaders)
    {
        var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in headers)
        {
            var key = name.ToLowerInvariant();
            sorted[key] = sorted.TryGetValue(key, out var earlier) ? earlier + "," + CanonicalValue(value) : CanonicalValue(value);
        }
        var canonical = new StringBuilder().Append(method).Append('\n').Append(canonicalPath).Append('\n').Append(canonicalQuery).Append('\n');
        foreach (var (name, value) in sorted) canonical.Append(name).Append(':').Append(value).Append('\n');
        signedHeaders = string.Join(";", sorted.Keys);
        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(payloadHash);
        var scope = $"{amzDate[..8]}/{region}/s3/aws4_request";
        var stringToSign = $"AWS4-HMAC-SHA256\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())))}";
        var key2 = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + secretAccessKey), Encoding.UTF8.GetBytes(amzDate[..8]));
        key2 = HMACSHA256.HashData(key2, Encoding.UTF8.GetBytes(region));
        key2 = HMACSHA256.HashData(key2, "s3"u8.ToArray());
        key2 = HMACSHA256.HashData(key2, "aws4_request"u8.ToArray());
        return Hex(HMACSHA256.HashData(key2, Encoding.UTF8.GetBytes(stringToSign)));
    }

    /// <summary>
    /// Signs <paramref name="request"/> (whose URI must carry the path and query exactly as <paramref name="rawPath"/> and
    /// <paramref name="rawQuery"/>): host and every x-amz-* header, plus <paramref name="alsoSign"/>; unsigned payload unless
    /// x-amz-content-sha256 is already set. With <paramref name="sessionToken"/>, the token is added and signed unless
    /// <paramref name="signToken"/> is false.
    /// </summary>
    public static void Sign(HttpRequestMessage request, string rawPath, string rawQuery, string accessKeyId, string secretAccessKey, string region,
        DateTimeOffset when, string? sessionToken = null, bool signToken = true, IEnumerable<string>? alsoSign = null)
    {
        var amzDate = when.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        request.Headers.Remove("x-amz-date");
        request.Headers.Remove("Authorization");
        request.Headers.TryAddWithoutValidation("x-amz-date", amzDate);
        if (!request.Headers.Contains("x-amz-content-sha256")) request.Headers.TryAddWithoutValidation("x-amz-content-sha256", UnsignedPayload);
        if (sessionToken is not null)
        {
            request.Headers.Remove("x-amz-security-token");
            request.Headers.TryAddWithoutValidation("x-amz-security-token", sessionToken);
        }
        var uri = request.RequestUri!;
        var host = uri.IsDefaultPort ? uri.Host : uri.Host + ":" + uri.Port;
        var signed = new List<KeyValuePair<string, string>> { new("host", host) };
        var extra = new HashSet<string>(alsoSign ?? [], StringComparer.OrdinalIgnoreCase);
        foreach (var header in request.Headers.NonValidated)
        {
            var name = header.Key;
            if (!name.StartsWith("x-amz-", StringComparison.OrdinalIgnoreCase) && !extra.Contains(name)) continue;
            if (!signToken && name.Equals("x-amz-security-token", StringComparison.OrdinalIgnoreCase)) continue;
            signed.Add(new(name, string.Join(",", header.Value)));
        }
        if (request.Content is not null)
        {
            foreach (var header in request.Content.Headers.NonValidated)
            {
                if (extra.Contains(header.Key)) signed.Add(new(header.Key, string.Join(",", header.Value)));
            }
        }
        var payload = string.Join(",", request.Headers.NonValidated["x-amz-content-sha256"]);
        var signature = Signature(request.Method.Method, rawPath, CanonicalQuery(rawQuery), signed, payload, amzDate, region, secretAccessKey, out var signedHeaders);
        request.Headers.TryAddWithoutValidation("Authorization",
            $"AWS4-HMAC-SHA256 Credential={accessKeyId}/{amzDate[..8]}/{region}/s3/aws4_request, SignedHeaders={signedHeaders}, Signature={signature}");
    }
}
