using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ObjectMigration.Engine.Storage;

/// <summary>
/// AWS Signature Version 4 in the Authorization header, for S3 requests whose body is not hashed
/// (<c>UNSIGNED-PAYLOAD</c>): bodies stream once, straight from the source, and their integrity is checked by
/// Content-MD5, checksums and the ETag instead. Keys and region are given per request (temporary credentials are
/// refreshed, a bucket's region is discovered); the signing key is derived once per day, region and secret.
/// </summary>
internal sealed class SigV4Signer
{
    public const string UnsignedPayload = "UNSIGNED-PAYLOAD";
    private const string Algorithm = "AWS4-HMAC-SHA256";
    private const string S3Service = "s3";

    private sealed record DayKey(string Date, string Region, string Secret, byte[] Key);
    // Replaced whole (a reference), so concurrent signers never see a date paired with another day's key.
    private DayKey? _signingKey;

    /// <summary>
    /// Adds x-amz-date, x-amz-content-sha256, x-amz-security-token (temporary keys) and Authorization to
    /// <paramref name="request"/>. Signs the host and every x-amz-* header on the request; <paramref name="canonicalPath"/>
    /// and <paramref name="canonicalQuery"/> must be exactly what the request line carries (S3 paths are encoded once,
    /// never twice).
    /// </summary>
    public void Sign(HttpRequestMessage request, string host, string canonicalPath, string canonicalQuery, DateTime utcNow, string region, Connectors.SigningKeys keys)
    {
        var amzDate = utcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        request.Headers.Remove("x-amz-date");
        request.Headers.Remove("x-amz-content-sha256");
        request.Headers.Remove("x-amz-security-token");
        request.Headers.Remove("Authorization");
        request.Headers.TryAddWithoutValidation("x-amz-date", amzDate);
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", UnsignedPayload);
        // The token is signed like any x-amz-* header: S3 refuses temporary keys whose token is missing or unsigned.
        if (!string.IsNullOrEmpty(keys.SessionToken)) request.Headers.TryAddWithoutValidation("x-amz-security-token", keys.SessionToken);

        var signed = new List<KeyValuePair<string, string>> { new("host", host) };
        foreach (var header in request.Headers.NonValidated)
        {
            if (!header.Key.StartsWith("x-amz-", StringComparison.OrdinalIgnoreCase)) continue;
            signed.Add(new(header.Key, string.Join(",", header.Value)));
        }
        var authorization = Authorize(request.Method.Method, canonicalPath, canonicalQuery, signed, UnsignedPayload, amzDate, region, S3Service,
            keys.AccessKeyId, SigningKey(amzDate[..8], region, keys.SecretAccessKey)).Authorization;
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
    }

    /// <summary>
    /// The signature computation itself, for any service: the canonical request over <paramref name="headers"/> (all of
    /// them signed; names compared case-insensitively, values of repeated names joined with commas), the string to sign
    /// and the Authorization header value. The query must already be canonical (sorted, encoded).
    /// </summary>
    internal static (string CanonicalRequest, string StringToSign, string Authorization) Authorize(
        string method, string canonicalPath, string canonicalQuery, IEnumerable<KeyValuePair<string, string>> headers, string payloadHash,
        string amzDate, string region, string service, string accessKeyId, byte[] signingKey)
    {
        var signed = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in headers)
        {
            var key = name.ToLowerInvariant();
            var canonicalValue = CanonicalValue(value);
            signed[key] = signed.TryGetValue(key, out var earlier) ? earlier + "," + canonicalValue : canonicalValue;
        }
        var canonical = new StringBuilder(256)
            .Append(method).Append('\n')
            .Append(canonicalPath).Append('\n')
            .Append(canonicalQuery).Append('\n');
        foreach (var (name, value) in signed) canonical.Append(name).Append(':').Append(value).Append('\n');
        var signedHeaders = string.Join(";", signed.Keys);
        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(payloadHash);
        var canonicalRequest = canonical.ToString();

        var scope = $"{amzDate[..8]}/{region}/{service}/aws4_request";
        var stringToSign = $"{Algorithm}\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)))}";
        var signature = Hex(HMACSHA256.HashData(signingKey, Encoding.UTF8.GetBytes(stringToSign)));
        return (canonicalRequest, stringToSign, $"{Algorithm} Credential={accessKeyId}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}");
    }

    /// <summary>HMAC chain of secret, date, region, service and "aws4_request".</summary>
    internal static byte[] DeriveSigningKey(string secretAccessKey, string date, string region, string service)
    {
        var key = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + secretAccessKey), Encoding.UTF8.GetBytes(date));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(region));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(service));
        return HMACSHA256.HashData(key, "aws4_request"u8.ToArray());
    }

    private byte[] SigningKey(string date, string region, string secret)
    {
        var cached = _signingKey;
        if (cached is not null && cached.Date == date && cached.Region == region && ReferenceEquals(cached.Secret, secret)) return cached.Key;
        var key = DeriveSigningKey(secret, date, region, S3Service);
        _signingKey = new DayKey(date, region, secret, key);
        return key;
    }

    /// <summary>Trimmed, with runs of spaces collapsed to one, as SigV4 canonical headers require.</summary>
    internal static string CanonicalValue(string value)
    {
        var trimmed = value.Trim();
        if (!trimmed.Contains("  ", StringComparison.Ordinal)) return trimmed;
        var builder = new StringBuilder(trimmed.Length);
        foreach (var ch in trimmed)
        {
            if (ch == ' ' && builder.Length > 0 && builder[^1] == ' ') continue;
            builder.Append(ch);
        }
        return builder.ToString();
    }

    /// <summary>
    /// RFC 3986 encoding of UTF-8 bytes: unreserved characters stay, everything else becomes %XX (upper case).
    /// Object keys keep their '/' separators; query values do not.
    /// </summary>
    public static string UriEncode(string value, bool keepSlash)
    {
        var builder = new StringBuilder(value.Length + 16);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < value.Length; i++)
        {
            var ch = value[i];
            if (ch is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.' or '~' || (ch == '/' && keepSlash))
            {
                builder.Append(ch);
                continue;
            }
            var length = char.IsHighSurrogate(ch) && i + 1 < value.Length
                ? Encoding.UTF8.GetBytes(value.AsSpan(i++, 2), utf8)
                : Encoding.UTF8.GetBytes(value.AsSpan(i, 1), utf8);
            foreach (var b in utf8[..length]) builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return builder.ToString();
    }

    private static string Hex(byte[] bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}
