using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ObjectMigration.Engine.Storage;

/// <summary>
/// AWS Signature Version 4 in the Authorization header, for S3 requests whose body is not hashed
/// (<c>UNSIGNED-PAYLOAD</c>): bodies stream once, straight from the source, and their integrity is checked by
/// Content-MD5 and the ETag instead. The signing key is derived once per day, not per request.
/// </summary>
internal sealed class SigV4Signer(string accessKeyId, string secretAccessKey, string region)
{
    public const string UnsignedPayload = "UNSIGNED-PAYLOAD";
    private const string Algorithm = "AWS4-HMAC-SHA256";
    private const string Service = "s3";

    private sealed record DayKey(string Date, byte[] Key);
    // Replaced whole (a reference), so concurrent signers never see a date paired with another day's key.
    private DayKey? _signingKey;

    /// <summary>
    /// Adds x-amz-date, x-amz-content-sha256 and Authorization to <paramref name="request"/>. Signs the host and every
    /// x-amz-* header already on the request; <paramref name="canonicalPath"/> and <paramref name="canonicalQuery"/> must
    /// be exactly what the request line carries (S3 paths are encoded once, never twice).
    /// </summary>
    public void Sign(HttpRequestMessage request, string host, string canonicalPath, string canonicalQuery, DateTime utcNow)
    {
        var amzDate = utcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var date = amzDate[..8];
        request.Headers.TryAddWithoutValidation("x-amz-date", amzDate);
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", UnsignedPayload);

        var signed = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["host"] = host };
        foreach (var header in request.Headers.NonValidated)
        {
            if (!header.Key.StartsWith("x-amz-", StringComparison.OrdinalIgnoreCase)) continue;
            signed[header.Key.ToLowerInvariant()] = CanonicalValue(string.Join(",", header.Value));
        }

        var canonical = new StringBuilder(256)
            .Append(request.Method.Method).Append('\n')
            .Append(canonicalPath).Append('\n')
            .Append(canonicalQuery).Append('\n');
        foreach (var (name, value) in signed) canonical.Append(name).Append(':').Append(value).Append('\n');
        var signedHeaders = string.Join(";", signed.Keys);
        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(UnsignedPayload);

        var scope = $"{date}/{region}/{Service}/aws4_request";
        var stringToSign = $"{Algorithm}\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())))}";
        var signature = Hex(HMACSHA256.HashData(SigningKey(date), Encoding.UTF8.GetBytes(stringToSign)));
        request.Headers.TryAddWithoutValidation("Authorization",
            $"{Algorithm} Credential={accessKeyId}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}");
    }

    private byte[] SigningKey(string date)
    {
        var cached = _signingKey;
        if (cached is not null && cached.Date == date) return cached.Key;
        var key = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + secretAccessKey), Encoding.UTF8.GetBytes(date));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(region));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(Service));
        key = HMACSHA256.HashData(key, "aws4_request"u8.ToArray());
        _signingKey = new DayKey(date, key);
        return key;
    }

    /// <summary>Trimmed, with runs of spaces collapsed to one, as SigV4 canonical headers require.</summary>
    private static string CanonicalValue(string value)
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
