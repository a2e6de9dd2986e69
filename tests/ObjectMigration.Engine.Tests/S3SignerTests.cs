using System.Security.Cryptography;
using System.Text;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Storage;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// What the generic SigV4 test suite (<see cref="SigV4TestSuiteTests"/>) does not cover: S3's own documented example,
/// and <see cref="SigV4Signer.Sign"/> itself (UNSIGNED-PAYLOAD, x-amz-* headers, the session token of temporary keys).
/// </summary>
public sealed class S3SignerTests
{
    // The S3 API reference's example keys and request ("Signature Calculations for the Authorization Header:
    // Transferring Payload in a Single Chunk", Example: GET Object).
    private const string AccessKeyId = "AKIAIOSFODNN7EXAMPLE";
    private const string SecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    private const string Host = "examplebucket.s3.amazonaws.com";
    private const string EmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    private static readonly DateTime Now = new(2013, 5, 24, 0, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void Authorize_reproduces_the_S3_documentation_GET_object_example()
    {
        var headers = new KeyValuePair<string, string>[]
        {
            new("Host", Host),
            new("Range", "bytes=0-9"),
            new("x-amz-content-sha256", EmptySha256),
            new("x-amz-date", "20130524T000000Z"),
        };
        var (canonicalRequest, stringToSign, authorization) = SigV4Signer.Authorize("GET", "/test.txt", "", headers, EmptySha256,
            "20130524T000000Z", "us-east-1", "s3", AccessKeyId, SigV4Signer.DeriveSigningKey(SecretAccessKey, "20130524", "us-east-1", "s3"));

        Assert.Equal(
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n" +
            $"x-amz-content-sha256:{EmptySha256}\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n{EmptySha256}",
            canonicalRequest);
        Assert.Equal(
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
            stringToSign);
        // The documentation writes the header without spaces after the commas; S3 accepts both.
        Assert.Equal(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            authorization);
    }

    [Fact]
    public void Sign_signs_host_and_x_amz_headers_with_an_unsigned_payload()
    {
        using var request = Request();
        new SigV4Signer().Sign(request, Host, "/test.txt", "", Now, "us-east-1", new SigningKeys(AccessKeyId, SecretAccessKey));

        Assert.Equal(SigV4Signer.UnsignedPayload, Single(request, "x-amz-content-sha256"));
        Assert.Equal("20130524T000000Z", Single(request, "x-amz-date"));
        Assert.False(request.Headers.Contains("x-amz-security-token"));
        // Range is not an x-amz-* header: Sign leaves it out of the signature.
        var expected = ExpectedAuthorization(
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20130524T000000Z\n\n" +
            "host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD",
            "host;x-amz-content-sha256;x-amz-date");
        Assert.Equal(expected, Single(request, "Authorization"));
    }

    [Fact]
    public void Sign_adds_and_signs_the_session_token_of_temporary_keys()
    {
        const string token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        using var request = Request();
        new SigV4Signer().Sign(request, Host, "/test.txt", "", Now, "us-east-1", new SigningKeys(AccessKeyId, SecretAccessKey, token));

        Assert.Equal(token, Single(request, "x-amz-security-token"));
        var authorization = Single(request, "Authorization");
        Assert.Contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,", authorization);
        var expected = ExpectedAuthorization(
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20130524T000000Z\n" +
            $"x-amz-security-token:{token}\n\nhost;x-amz-content-sha256;x-amz-date;x-amz-security-token\nUNSIGNED-PAYLOAD",
            "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
        Assert.Equal(expected, authorization);
    }

    [Fact]
    public void The_signature_changes_with_the_token_and_re_signing_replaces_the_headers()
    {
        var signer = new SigV4Signer();
        using var request = Request();

        signer.Sign(request, Host, "/test.txt", "", Now, "us-east-1", new SigningKeys(AccessKeyId, SecretAccessKey, "token-one"));
        var first = Single(request, "Authorization");
        // A retry signs the same message again (here with refreshed temporary keys): one of each header, the new token.
        signer.Sign(request, Host, "/test.txt", "", Now, "us-east-1", new SigningKeys(AccessKeyId, SecretAccessKey, "token-two"));
        var second = Single(request, "Authorization");
        Assert.Equal("token-two", Single(request, "x-amz-security-token"));
        Assert.Equal(first.Split("Signature=")[0], second.Split("Signature=")[0]);
        Assert.NotEqual(first, second);

        // Permanent keys after temporary ones: the token goes, and is no longer signed.
        signer.Sign(request, Host, "/test.txt", "", Now, "us-east-1", new SigningKeys(AccessKeyId, SecretAccessKey));
        Assert.False(request.Headers.Contains("x-amz-security-token"));
        Assert.Contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,", Single(request, "Authorization"));
    }

    private static HttpRequestMessage Request()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"https://{Host}/test.txt");
        request.Headers.TryAddWithoutValidation("Range", "bytes=0-9");
        return request;
    }

    private static string Single(HttpRequestMessage request, string header) =>
        Assert.Single(request.Headers.NonValidated[header]);

    /// <summary>The string to sign and signature computed here, from a canonical request written out by hand.</summary>
    private static string ExpectedAuthorization(string canonicalRequest, string signedHeaders)
    {
        var stringToSign = "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n" +
            Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)));
        var key = Encoding.UTF8.GetBytes("AWS4" + SecretAccessKey);
        foreach (var part in new[] { "20130524", "us-east-1", "s3", "aws4_request" }) key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(part));
        var signature = Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
        return $"AWS4-HMAC-SHA256 Credential={AccessKeyId}/20130524/us-east-1/s3/aws4_request, SignedHeaders={signedHeaders}, Signature={signature}";
    }
}
