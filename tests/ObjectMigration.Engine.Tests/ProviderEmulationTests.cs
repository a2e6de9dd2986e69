using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Amazon.S3;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The provider emulation of <see cref="FaultProxy"/>, proven with raw signed requests against s3rver and Ceph RGW.</summary>
public sealed class ProviderEmulationTests
{
    /// <summary>A raw S3 reply: status, every header (response and content), body.</summary>
    private sealed record Reply(int Status, Dictionary<string, string> Headers, byte[] Bytes)
    {
        public string Body => Encoding.UTF8.GetString(Bytes);
        public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;
        public string? Xml(string element) => Regex.Match(Body, $"<{element}>(.*?)</{element}>", RegexOptions.Singleline) is { Success: true } m ? m.Groups[1].Value : null;
    }

    /// <summary>Hand-signed requests (the fixture's own SigV4), so every header the emulation looks at is under the test's control.</summary>
    private sealed class RawS3(string endpoint, S3Endpoint keys) : IDisposable
    {
        private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });

        public string Region { get; set; } = "us-east-1";
        public string AccessKey { get; set; } = keys.AccessKey;
        public string SecretKey { get; set; } = keys.SecretKey;
        public string? Token { get; set; }
        public bool SignToken { get; set; } = true;
        public TimeSpan ClockOffset { get; set; }

        public HttpRequestMessage Build(string method, string bucket, string key = "", string query = "", byte[]? body = null,
            IDictionary<string, string>? headers = null, IEnumerable<string>? alsoSign = null)
        {
            var rawPath = "/" + FixtureSigV4.Encode(bucket, false) + (key.Length > 0 ? "/" + FixtureSigV4.Encode(key, true) : "");
            var request = new HttpRequestMessage(new HttpMethod(method), endpoint + rawPath + (query.Length > 0 ? "?" + query : ""));
            if (body is not null) request.Content = new ByteArrayContent(body);
            foreach (var (name, value) in headers ?? new Dictionary<string, string>())
            {
                if (!request.Headers.TryAddWithoutValidation(name, value)) request.Content!.Headers.TryAddWithoutValidation(name, value);
            }
            FixtureSigV4.Sign(request, rawPath, query, AccessKey, SecretKey, Region, DateTimeOffset.UtcNow + ClockOffset, Token, SignToken, alsoSign);
            return request;
        }

        public async Task<Reply> SendAsync(string method, string bucket, string key = "", string query = "", byte[]? body = null,
            IDictionary<string, string>? headers = null, IEnumerable<string>? alsoSign = null)
        {
            using var request = Build(method, bucket, key, query, body, headers, alsoSign);
            using var response = await _http.SendAsync(request);
            var all = response.Headers.Concat(response.Content.Headers).ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase);
            return new Reply((int)response.StatusCode, all, await response.Content.ReadAsByteArrayAsync());
        }

        public Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, CancellationToken cancellationToken = default) =>
            _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);

        public async Task<string> InitiateAsync(string bucket, string key)
        {
            var reply = await SendAsync("POST", bucket, key, "uploads=");
            Assert.Equal(200, reply.Status);
            return reply.Xml("UploadId")!;
        }

        public void Dispose() => _http.Dispose();
    }

    private static string Md5Hex(byte[] data) => Convert.ToHexString(MD5.HashData(data)).ToLowerInvariant();

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public static TheoryData<string> Servers => new() { "s3rver", "ceph" };

    private static S3Endpoint Server(string name) => name == "ceph" ? TestEndpoints.Rgw : TestEndpoints.S3rverSource;

    /// <summary>A bucket on <paramref name="server"/> with one object "k" (its content returned), made directly, not through the proxy.</summary>
    private static async Task<(string Bucket, byte[] Content)> SeedAsync(S3Endpoint server, int length = 3000)
    {
        using var client = server.Client();
        var bucket = await client.NewBucketAsync();
        var content = TestEndpoints.Bytes(length, length);
        await client.PutAsync(bucket, "k", content);
        return (bucket, content);
    }

    // 1. Regions

    [Fact]
    public async Task A_request_signed_for_another_region_gets_AuthorizationHeaderMalformed_and_the_right_one_passes()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.S3rverSource);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Emulation.BucketRegion = "eu-west-1";
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);

        var get = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal(400, get.Status);
        Assert.Equal("AuthorizationHeaderMalformed", get.Xml("Code"));
        Assert.Equal("The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'", get.Xml("Message"));
        Assert.Equal("eu-west-1", get.Xml("Region"));
        Assert.Equal("eu-west-1", get.Header("x-amz-bucket-region"));

        var head = await s3.SendAsync("HEAD", bucket, "k");
        Assert.Equal((400, "eu-west-1"), (head.Status, head.Header("x-amz-bucket-region")));
        Assert.Empty(head.Bytes);

        s3.Region = "eu-west-1";
        var right = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal(200, right.Status);
        Assert.Equal(content, right.Bytes);
        Assert.Equal(2, proxy.Emulation.RegionRefusals);
    }

    [Fact]
    public async Task A_request_to_the_wrong_region_gets_PermanentRedirect_without_Location()
    {
        var (bucket, _) = await SeedAsync(TestEndpoints.S3rverSource);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Emulation.BucketRegion = "ap-northeast-1";
        proxy.Emulation.RegionRefusal = RegionRefusal.PermanentRedirect;
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);

        var get = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal(301, get.Status);
        Assert.Null(get.Header("Location"));
        Assert.Equal("ap-northeast-1", get.Header("x-amz-bucket-region"));
        Assert.Equal("PermanentRedirect", get.Xml("Code"));
        Assert.StartsWith("The bucket you are attempting to access must be addressed using the specified endpoint", get.Xml("Message"), StringComparison.Ordinal);
        Assert.Equal($"{bucket}.s3.ap-northeast-1.amazonaws.com", get.Xml("Endpoint"));
        Assert.Equal(bucket, get.Xml("Bucket"));

        var headBucket = await s3.SendAsync("HEAD", bucket);
        Assert.Equal((301, "ap-northeast-1"), (headBucket.Status, headBucket.Header("x-amz-bucket-region")));
        Assert.Empty(headBucket.Bytes);
        Assert.Equal(2, proxy.Emulation.RegionRefusals);
    }

    /// <summary>Ceph checks the signature with whatever region the scope names, so the right region's signature passes the proxy and Ceph alike.</summary>
    [Fact]
    public async Task A_request_signed_for_the_buckets_region_reaches_Ceph_which_checks_its_signature()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.Rgw);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.Rgw.Endpoint);
        proxy.Emulation.BucketRegion = "eu-central-1";
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.Rgw) { Region = "eu-central-1" };

        var get = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal(200, get.Status);
        Assert.Equal(content, get.Bytes);

        s3.SecretKey = "not-the-secret";
        Assert.Equal(403, (await s3.SendAsync("GET", bucket, "k")).Status);
        Assert.Equal(0, proxy.Emulation.RegionRefusals);
    }

    // 2. Temporary credentials

    /// <summary>Neither s3rver nor Ceph (with permanent keys) minds a token it never issued, so the token goes on to them as signed.</summary>
    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Temporary_credentials_need_the_token_itself_and_signed(string server)
    {
        var endpoint = Server(server);
        var (bucket, content) = await SeedAsync(endpoint);
        await using var proxy = await FaultProxy.StartAsync(endpoint.Endpoint);
        proxy.Emulation.RequiredSessionToken = "token-1";
        using var s3 = new RawS3(proxy.Endpoint, endpoint);

        var none = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal((403, "InvalidAccessKeyId"), (none.Status, none.Xml("Code")));

        s3.Token = "token-other";
        var other = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal((400, "InvalidToken"), (other.Status, other.Xml("Code")));

        s3.Token = "token-1";
        s3.SignToken = false;
        var unsigned = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal((403, "SignatureDoesNotMatch"), (unsigned.Status, unsigned.Xml("Code")));

        s3.SignToken = true;
        var signed = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal(200, signed.Status);
        Assert.Equal(content, signed.Bytes);

        proxy.Emulation.RotateSessionToken("token-2");
        var expired = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal((400, "ExpiredToken"), (expired.Status, expired.Xml("Code")));
        s3.Token = "token-2";
        Assert.Equal(200, (await s3.SendAsync("GET", bucket, "k")).Status);
        Assert.Equal(4, proxy.Emulation.TokenRefusals);
    }

    /// <summary>
    /// Temporary keys Ceph does not know: the proxy checks the client's signature with the temporary secret and signs
    /// anew with Ceph's keys.
    /// </summary>
    [Fact]
    public async Task Temporary_keys_unknown_to_Ceph_are_checked_by_the_proxy_and_signed_anew()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.Rgw);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.Rgw);
        proxy.Emulation.RequiredAccessKeyId = "ASIATEMPORARYKEY";
        proxy.Emulation.RequiredSecretAccessKey = "temporary-secret";
        proxy.Emulation.RequiredSessionToken = "session-token";
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.Rgw) { AccessKey = "ASIATEMPORARYKEY", SecretKey = "temporary-secret", Token = "session-token" };

        var get = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal(200, get.Status);
        Assert.Equal(content, get.Bytes);

        var put = await s3.SendAsync("PUT", bucket, "k2", body: [1, 2, 3]);
        Assert.Equal(200, put.Status);

        s3.SecretKey = "wrong";
        var forged = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal((403, "SignatureDoesNotMatch"), (forged.Status, forged.Xml("Code")));
        Assert.Equal(1, proxy.Emulation.SignatureRefusals);

        s3.AccessKey = TestEndpoints.Rgw.AccessKey;
        var permanent = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal((403, "InvalidAccessKeyId"), (permanent.Status, permanent.Xml("Code")));
    }

    // 3. SSE-KMS

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task SseKms_gives_every_object_ETag_an_opaque_one_that_listing_head_get_and_multipart_agree_on(string server)
    {
        var endpoint = Server(server);
        using var client = endpoint.Client();
        var bucket = await client.NewBucketAsync();
        await using var proxy = await FaultProxy.StartAsync(endpoint);
        proxy.Emulation.SseKms = true;
        using var s3 = new RawS3(proxy.Endpoint, endpoint);
        var content = TestEndpoints.Bytes(1000, 7);

        var put = await s3.SendAsync("PUT", bucket, "a/b c", body: content);
        Assert.Equal(200, put.Status);
        var etag = put.Header("ETag")!;
        Assert.Matches("^\"[0-9a-f]{32}\"$", etag);
        Assert.NotEqual($"\"{Md5Hex(content)}\"", etag);
        Assert.Equal("aws:kms", put.Header("x-amz-server-side-encryption"));
        Assert.StartsWith("arn:aws:kms:", put.Header("x-amz-server-side-encryption-aws-kms-key-id"), StringComparison.Ordinal);

        var head = await s3.SendAsync("HEAD", bucket, "a/b c");
        var get = await s3.SendAsync("GET", bucket, "a/b c");
        Assert.Equal((etag, etag), (head.Header("ETag"), get.Header("ETag")));
        Assert.Equal(content, get.Bytes);
        Assert.Equal("aws:kms", get.Header("x-amz-server-side-encryption"));

        var list = await s3.SendAsync("GET", bucket, "", "list-type=2");
        Assert.Equal(etag, WebUtility.HtmlDecode(list.Xml("ETag")!));
        Assert.Equal(etag, proxy.Emulation.OpaqueETag(bucket, "a/b c", $"\"{Md5Hex(content)}\""));

        var copy = await s3.SendAsync("PUT", bucket, "copy", headers: new Dictionary<string, string> { ["x-amz-copy-source"] = $"/{bucket}/a/b%20c" });
        Assert.Equal(200, copy.Status);
        var copyETag = WebUtility.HtmlDecode(copy.Xml("ETag")!);
        Assert.Equal(copyETag.Trim('"'), (await s3.SendAsync("HEAD", bucket, "copy")).Header("ETag")!.Trim('"'));
        Assert.NotEqual(etag, copyETag);

        // Multipart: the part ETags shown are opaque and the completion, which sends them back, still works.
        var uploadId = await s3.InitiateAsync(bucket, "mp");
        var parts = new[] { TestEndpoints.Bytes(5 * 1024 * 1024, 1), TestEndpoints.Bytes(100, 2) };
        var complete = new StringBuilder("<CompleteMultipartUpload>");
        for (var i = 0; i < parts.Length; i++)
        {
            var part = await s3.SendAsync("PUT", bucket, "mp", $"partNumber={i + 1}&uploadId={Uri.EscapeDataString(uploadId)}", parts[i]);
            Assert.Equal(200, part.Status);
            Assert.NotEqual($"\"{Md5Hex(parts[i])}\"", part.Header("ETag"));
            complete.Append(CultureInfo.InvariantCulture, $"<Part><PartNumber>{i + 1}</PartNumber><ETag>{part.Header("ETag")}</ETag></Part>");
        }
        var done = await s3.SendAsync("POST", bucket, "mp", $"uploadId={Uri.EscapeDataString(uploadId)}", Encoding.UTF8.GetBytes(complete.Append("</CompleteMultipartUpload>").ToString()));
        Assert.Equal(200, done.Status);
        var mpETag = (await s3.SendAsync("HEAD", bucket, "mp")).Header("ETag")!;
        // s3rver's multipart ETags have no -N; Ceph's keep theirs. Ceph (pacific) answers the completion with an empty <ETag/>.
        Assert.Matches(server == "ceph" ? "^\"[0-9a-f]{32}-2\"$" : "^\"[0-9a-f]{32}\"$", mpETag);
        Assert.Equal(server == "ceph" ? "" : mpETag, WebUtility.HtmlDecode(done.Xml("ETag")!));
        var listed = Regex.Matches((await s3.SendAsync("GET", bucket, "", "list-type=2&prefix=mp")).Body, "<ETag>(.*?)</ETag>").Single().Groups[1].Value;
        Assert.Equal(mpETag, WebUtility.HtmlDecode(listed));
    }

    [Fact]
    public void An_opaque_ETag_is_deterministic_keeps_a_multipart_suffix_and_quotes_and_differs_per_key()
    {
        var emulation = new ProviderEmulation();
        var md5 = "\"5d41402abc4b2a76b9719d911017c592\"";
        var opaque = emulation.OpaqueETag("b", "k", md5);
        Assert.Matches("^\"[0-9a-f]{32}\"$", opaque);
        Assert.NotEqual(md5, opaque);
        Assert.Equal(opaque, new ProviderEmulation().OpaqueETag("b", "k", md5));
        Assert.NotEqual(opaque, emulation.OpaqueETag("b", "k2", md5));
        Assert.Matches("^[0-9a-f]{32}-12$", emulation.OpaqueETag("b", "k", "5d41402abc4b2a76b9719d911017c592-12"));
    }

    [Fact]
    public async Task SseC_marks_objects_with_the_customer_algorithm_and_hides_the_MD5()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.S3rverSource);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Emulation.SseC = true;
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);
        var head = await s3.SendAsync("HEAD", bucket, "k");
        Assert.Equal("AES256", head.Header("x-amz-server-side-encryption-customer-algorithm"));
        Assert.Null(head.Header("x-amz-server-side-encryption"));
        Assert.Matches("^\"[0-9a-f]{32}\"$", head.Header("ETag"));
        Assert.NotEqual($"\"{Md5Hex(content)}\"", head.Header("ETag"));
    }

    // 4. Checksums

    [Fact]
    public void Checksums_match_the_published_check_values()
    {
        var check = "123456789"u8.ToArray();
        Assert.Equal(0xCBF43926u, S3Checksums.Crc32(check));
        Assert.Equal(0xE3069283u, S3Checksums.Crc32C(check));
        Assert.Equal(0xAE8B14860A799888ul, S3Checksums.Crc64Nvme(check));
        Assert.Equal("y/Q5Jg==", S3Checksums.Crc32Base64(check));
        Assert.Equal("AAAAAA==", S3Checksums.Crc32Base64([]));
    }

    [Fact]
    public async Task A_whole_object_GET_or_HEAD_asking_for_checksums_gets_the_CRC32_of_the_content()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.S3rverSource, 70_000);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Emulation.ProvideChecksums = true;
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);
        var enabled = new Dictionary<string, string> { ["x-amz-checksum-mode"] = "ENABLED" };
        var expected = S3Checksums.Crc32Base64(content);

        var get = await s3.SendAsync("GET", bucket, "k", headers: enabled);
        Assert.Equal((200, expected), (get.Status, get.Header("x-amz-checksum-crc32")));
        Assert.Equal(content, get.Bytes);
        var head = await s3.SendAsync("HEAD", bucket, "k", headers: enabled);
        Assert.Equal((200, expected), (head.Status, head.Header("x-amz-checksum-crc32")));
        Assert.Equal(content.Length.ToString(CultureInfo.InvariantCulture), head.Header("Content-Length"));

        Assert.Null((await s3.SendAsync("GET", bucket, "k")).Header("x-amz-checksum-crc32"));
        var range = await s3.SendAsync("GET", bucket, "k", headers: new Dictionary<string, string>(enabled) { ["Range"] = "bytes=0-9" });
        Assert.Equal(206, range.Status);
        Assert.Null(range.Header("x-amz-checksum-crc32"));
        Assert.Equal(2, proxy.Emulation.ChecksumsProvided);
    }

    [Fact]
    public async Task An_upload_whose_checksum_disagrees_with_its_body_gets_BadDigest_and_stores_nothing()
    {
        using var client = TestEndpoints.S3rverSource.Client();
        var bucket = await client.NewBucketAsync();
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Emulation.VerifyUploadChecksums = true;
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);
        var content = TestEndpoints.Bytes(4096, 3);
        var wrongBody = (byte[])content.Clone();
        wrongBody[100] ^= 1;

        foreach (var header in S3Checksums.Algorithms.Keys)
        {
            var sum = S3Checksums.Algorithms[header](content);
            var bad = await s3.SendAsync("PUT", bucket, "bad", body: wrongBody, headers: new Dictionary<string, string> { [header] = sum });
            Assert.Equal((400, "BadDigest"), (bad.Status, bad.Xml("Code")));
            var good = await s3.SendAsync("PUT", bucket, "good-" + header, body: content, headers: new Dictionary<string, string> { [header] = sum });
            Assert.Equal(200, good.Status);
        }
        var uploadId = await s3.InitiateAsync(bucket, "mp");
        var part = await s3.SendAsync("PUT", bucket, "mp", $"partNumber=1&uploadId={Uri.EscapeDataString(uploadId)}", wrongBody,
            new Dictionary<string, string> { ["x-amz-checksum-crc32"] = S3Checksums.Crc32Base64(content) });
        Assert.Equal((400, "BadDigest"), (part.Status, part.Xml("Code")));

        Assert.Equal(S3Checksums.Algorithms.Count + 1, proxy.Emulation.ChecksumMismatches);
        var e = await Assert.ThrowsAsync<AmazonS3Exception>(() => client.GetObjectMetadataAsync(bucket, "bad"));
        Assert.Equal(HttpStatusCode.NotFound, e.StatusCode);
        Assert.Equal(content, (await client.GetAsync(bucket, "good-x-amz-checksum-crc32")).Content);
    }

    // 5. GCS

    [Fact]
    public async Task Gcs_refuses_UploadPartCopy_with_NotImplemented_and_still_copies_objects()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.S3rverSource);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Emulation.RefusePartCopy = true;
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);
        var copySource = new Dictionary<string, string> { ["x-amz-copy-source"] = $"/{bucket}/k" };

        var uploadId = await s3.InitiateAsync(bucket, "mp");
        var partCopy = await s3.SendAsync("PUT", bucket, "mp", $"partNumber=1&uploadId={Uri.EscapeDataString(uploadId)}", headers: copySource);
        Assert.Equal((501, "NotImplemented"), (partCopy.Status, partCopy.Xml("Code")));
        Assert.Equal("emulated", partCopy.Xml("HostId"));
        Assert.Equal(1, proxy.Emulation.PartCopiesRefused);

        Assert.Equal(200, (await s3.SendAsync("PUT", bucket, "copied", headers: copySource)).Status);
        Assert.Equal(content, (await s3.SendAsync("GET", bucket, "copied")).Bytes);
        Assert.Equal(1, proxy.Emulation.PartCopiesRefused);
    }

    // 6. Clock skew

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task A_server_clock_an_hour_ahead_refuses_the_real_time_and_accepts_its_own(string server)
    {
        var endpoint = Server(server);
        var (bucket, content) = await SeedAsync(endpoint);
        await using var proxy = await FaultProxy.StartAsync(endpoint);
        proxy.Emulation.ClockOffset = TimeSpan.FromHours(1);
        using var s3 = new RawS3(proxy.Endpoint, endpoint);

        var refused = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal((403, "RequestTimeTooSkewed"), (refused.Status, refused.Xml("Code")));
        Assert.Equal("900000", refused.Xml("MaxAllowedSkewMilliseconds"));
        Assert.Matches(@"^\d{8}T\d{6}Z$", refused.Xml("RequestTime"));
        var serverTime = DateTimeOffset.Parse(refused.Xml("ServerTime")!, CultureInfo.InvariantCulture);
        Assert.InRange(serverTime - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(55), TimeSpan.FromMinutes(65));
        AssertDated(refused, TimeSpan.FromHours(1));

        // A client that corrects its clock from the Date header: the proxy signs it anew on the real clock for the upstream.
        s3.ClockOffset = DateTimeOffset.Parse(refused.Header("Date")!, CultureInfo.InvariantCulture) - DateTimeOffset.UtcNow;
        var accepted = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal(200, accepted.Status);
        Assert.Equal(content, accepted.Bytes);
        AssertDated(accepted, TimeSpan.FromHours(1));
        Assert.Equal(1, proxy.Emulation.SkewRefusals);

        // A forged signature is still caught, by the proxy, since the upstream never sees it.
        s3.SecretKey = "wrong";
        Assert.Equal(403, (await s3.SendAsync("GET", bucket, "k")).Status);
        Assert.Equal(1, proxy.Emulation.SignatureRefusals);
    }

    [Fact]
    public async Task Within_fifteen_minutes_of_the_server_clock_a_request_passes_unchanged_and_every_answer_carries_that_clock()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.Rgw);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.Rgw.Endpoint);
        proxy.Emulation.ClockOffset = TimeSpan.FromMinutes(-10);
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.Rgw);
        var get = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal(200, get.Status);
        Assert.Equal(content, get.Bytes);
        AssertDated(get, TimeSpan.FromMinutes(-10));
        var missing = await s3.SendAsync("GET", bucket, "none");
        Assert.Equal(404, missing.Status);
        AssertDated(missing, TimeSpan.FromMinutes(-10));
        Assert.Equal(0, proxy.Emulation.SkewRefusals);
    }

    /// <summary>
    /// Without the upstream's keys the proxy can only put the date back on the real clock, which breaks the signature
    /// Ceph checks (left alone, Ceph would refuse the shifted date itself as RequestTimeTooSkewed). s3rver checks no
    /// signature and takes the re-dated request.
    /// </summary>
    [Fact]
    public async Task Without_the_upstreams_keys_a_corrected_clock_cannot_reach_Ceph()
    {
        var (bucket, _) = await SeedAsync(TestEndpoints.Rgw);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.Rgw.Endpoint);
        proxy.Emulation.ClockOffset = TimeSpan.FromHours(1);
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.Rgw) { ClockOffset = TimeSpan.FromHours(1) };
        var get = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal((403, "SignatureDoesNotMatch"), (get.Status, get.Xml("Code")));
        Assert.Equal(0, proxy.Emulation.SkewRefusals);
    }

    /// <summary>The AWS SDK corrects its clock from the refusal's Date and retries; the proxy signs the retry anew for Ceph.</summary>
    [Fact]
    public async Task The_AWS_SDK_corrects_its_clock_from_the_emulated_server_and_gets_through_to_Ceph()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.Rgw);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.Rgw);
        proxy.Emulation.ClockOffset = TimeSpan.FromHours(2);
        using var client = (TestEndpoints.Rgw with { Endpoint = proxy.Endpoint }).Client();
        Assert.Equal(content, (await client.GetAsync(bucket, "k")).Content);
        await client.PutAsync(bucket, "k2", content, metadata: new Dictionary<string, string> { ["m"] = "v" });
        Assert.Equal(content, (await client.GetAsync(bucket, "k2")).Content);
        Assert.True(proxy.Emulation.SkewRefusals >= 1);
        Assert.Equal(0, proxy.Emulation.SignatureRefusals);
    }

    private static void AssertDated(Reply reply, TimeSpan offset)
    {
        var date = DateTimeOffset.Parse(reply.Header("Date")!, CultureInfo.InvariantCulture);
        Assert.InRange(date - DateTimeOffset.UtcNow - offset, TimeSpan.FromSeconds(-30), TimeSpan.FromSeconds(30));
    }

    // 7. Conditional requests

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task If_Match_on_get_head_and_copies_is_evaluated_alike_on_every_server(string server)
    {
        var endpoint = Server(server);
        var (bucket, content) = await SeedAsync(endpoint);
        await using var proxy = await FaultProxy.StartAsync(endpoint);
        proxy.Emulation.EvaluateConditions = true;
        using var s3 = new RawS3(proxy.Endpoint, endpoint);
        var right = $"\"{Md5Hex(content)}\"";
        const string wrong = "\"0123456789abcdef0123456789abcdef\"";

        var get = await s3.SendAsync("GET", bucket, "k", headers: new Dictionary<string, string> { ["If-Match"] = wrong });
        Assert.Equal(412, get.Status);
        Assert.Equal("PreconditionFailed", get.Xml("Code"));
        Assert.Equal("At least one of the pre-conditions you specified did not hold", get.Xml("Message"));
        Assert.Equal("If-Match", get.Xml("Condition"));
        var head = await s3.SendAsync("HEAD", bucket, "k", headers: new Dictionary<string, string> { ["If-Match"] = wrong });
        Assert.Equal(412, head.Status);
        Assert.Empty(head.Bytes);
        Assert.Equal(content, (await s3.SendAsync("GET", bucket, "k", headers: new Dictionary<string, string> { ["If-Match"] = right })).Bytes);
        Assert.Equal(200, (await s3.SendAsync("HEAD", bucket, "k", headers: new Dictionary<string, string> { ["If-Match"] = right.Trim('"') })).Status);

        var copy = await s3.SendAsync("PUT", bucket, "copy", headers: new Dictionary<string, string> { ["x-amz-copy-source"] = $"{bucket}/k", ["x-amz-copy-source-if-match"] = wrong });
        Assert.Equal((412, "If-Match"), (copy.Status, copy.Xml("Condition")));
        Assert.Equal(404, (await s3.SendAsync("HEAD", bucket, "copy")).Status);
        var uploadId = await s3.InitiateAsync(bucket, "mp");
        var partCopy = await s3.SendAsync("PUT", bucket, "mp", $"partNumber=1&uploadId={Uri.EscapeDataString(uploadId)}",
            headers: new Dictionary<string, string> { ["x-amz-copy-source"] = $"{bucket}/k", ["x-amz-copy-source-if-match"] = wrong });
        Assert.Equal(412, partCopy.Status);
        Assert.Equal(200, (await s3.SendAsync("PUT", bucket, "copy", headers: new Dictionary<string, string> { ["x-amz-copy-source"] = $"{bucket}/k", ["x-amz-copy-source-if-match"] = right })).Status);
        Assert.Equal(content, (await s3.SendAsync("GET", bucket, "copy")).Bytes);
        Assert.Equal(4, proxy.Emulation.PreconditionFailures);
    }

    /// <summary>With SSE the client only knows opaque ETags; its If-Match, signed or not, must still match on Ceph, which evaluates If-Match itself.</summary>
    [Fact]
    public async Task If_Match_with_an_opaque_ETag_holds_on_Ceph_even_when_signed()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.Rgw);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.Rgw);
        proxy.Emulation.EvaluateConditions = true;
        proxy.Emulation.SseKms = true;
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.Rgw);
        var opaque = (await s3.SendAsync("HEAD", bucket, "k")).Header("ETag")!;
        Assert.NotEqual($"\"{Md5Hex(content)}\"", opaque);
        var condition = new Dictionary<string, string> { ["If-Match"] = opaque };

        Assert.Equal(content, (await s3.SendAsync("GET", bucket, "k", headers: condition)).Bytes);
        var signed = await s3.SendAsync("GET", bucket, "k", headers: condition, alsoSign: ["If-Match"]);
        Assert.Equal(200, signed.Status);
        Assert.Equal(content, signed.Bytes);
        var md5 = await s3.SendAsync("GET", bucket, "k", headers: new Dictionary<string, string> { ["If-Match"] = $"\"{Md5Hex(content)}\"" }, alsoSign: ["If-Match"]);
        Assert.Equal(412, md5.Status);
        var copy = await s3.SendAsync("PUT", bucket, "copy", headers: new Dictionary<string, string> { ["x-amz-copy-source"] = $"{bucket}/k", ["x-amz-copy-source-if-match"] = opaque });
        Assert.Equal(200, copy.Status);
        Assert.Equal(1, proxy.Emulation.PreconditionFailures);
    }

    // 8. Link speed and plain refusals

    [Fact]
    public async Task Trickle_spreads_a_body_over_the_chosen_time_without_long_pauses()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.S3rverSource, 20_000);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.TrickleDuration = TimeSpan.FromSeconds(1);
        proxy.TrickleMaxPause = TimeSpan.FromMilliseconds(50);
        proxy.Inject(Fault.Trickle, 1, FaultProxy.IsObjectGet);
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);

        using var request = s3.Build("GET", bucket, "k");
        using var response = await s3.SendRawAsync(request);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var received = new MemoryStream();
        var buffer = new byte[65536];
        var clock = Stopwatch.StartNew();
        var longest = TimeSpan.Zero;
        var last = clock.Elapsed;
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            received.Write(buffer, 0, read);
            longest = TimeSpan.FromTicks(Math.Max(longest.Ticks, (clock.Elapsed - last).Ticks));
            last = clock.Elapsed;
        }
        Assert.Equal(content, received.ToArray());
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(800), TimeSpan.FromSeconds(10));
        Assert.True(longest < TimeSpan.FromMilliseconds(500), $"a pause of {longest.TotalMilliseconds} ms");
        Assert.Equal(1, proxy.Served(Fault.Trickle));
    }

    [Fact]
    public async Task Stall_sends_half_the_body_then_nothing_until_Release()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.S3rverSource, 10_000);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Inject(Fault.Stall, 1, FaultProxy.IsObjectGet);
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);

        using var request = s3.Build("GET", bucket, "k");
        using var response = await s3.SendRawAsync(request);
        Assert.Equal(content.Length, response.Content.Headers.ContentLength);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var half = new byte[content.Length / 2];
        await stream.ReadExactlyAsync(half);
        Assert.Equal(content[..half.Length], half);
        var rest = new byte[content.Length - half.Length];
        var pending = stream.ReadAsync(rest).AsTask();
        Assert.NotSame(pending, await Task.WhenAny(pending, Task.Delay(300)));
        proxy.Release();
        var got = await pending;
        if (got < rest.Length) await stream.ReadExactlyAsync(rest.AsMemory(got));
        Assert.Equal(content[half.Length..], rest);
    }

    [Fact]
    public async Task A_stalled_client_that_gives_up_leaves_the_proxy_serving_others()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.S3rverSource, 10_000);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Inject(Fault.Stall, 1, FaultProxy.IsObjectGet);
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);
        using (var cancel = new CancellationTokenSource())
        {
            using var request = s3.Build("GET", bucket, "k");
            using var response = await s3.SendRawAsync(request, cancel.Token);
            await using var stream = await response.Content.ReadAsStreamAsync(cancel.Token);
            await stream.ReadExactlyAsync(new byte[content.Length / 2], cancel.Token);
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream.ReadAsync(new byte[10], cancel.Token).AsTask());
        }
        Assert.Equal(content, (await s3.SendAsync("GET", bucket, "k")).Bytes);
    }

    [Fact]
    public async Task StallUpload_stops_reading_the_body_half_way_until_Release()
    {
        using var client = TestEndpoints.S3rverSource.Client();
        var bucket = await client.NewBucketAsync();
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Inject(Fault.StallUpload, 1, FaultProxy.IsObjectPut);
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);
        var content = TestEndpoints.Bytes(4 * 1024 * 1024, 9);

        var arrived = proxy.WaitForRequestAsync(FaultProxy.IsObjectPut);
        var put = s3.SendAsync("PUT", bucket, "big", body: content);
        await arrived.WaitAsync(Patience);
        Assert.NotSame(put, await Task.WhenAny(put, Task.Delay(300)));
        var e = await Assert.ThrowsAsync<AmazonS3Exception>(() => client.GetObjectMetadataAsync(bucket, "big"));
        Assert.Equal(HttpStatusCode.NotFound, e.StatusCode);
        proxy.Release();
        Assert.Equal(200, (await put.WaitAsync(Patience)).Status);
        Assert.Equal(content, (await client.GetAsync(bucket, "big")).Content);
    }

    [Fact]
    public async Task BadRequest_and_TooManyRequests_are_S3_errors()
    {
        var (bucket, _) = await SeedAsync(TestEndpoints.S3rverSource);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Inject(Fault.BadRequest, 1, FaultProxy.IsListing);
        proxy.Inject(Fault.TooManyRequests, 1, FaultProxy.IsObjectGet);
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);
        var list = await s3.SendAsync("GET", bucket, "", "list-type=2");
        Assert.Equal((400, "InvalidArgument"), (list.Status, list.Xml("Code")));
        var get = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal(429, get.Status);
        Assert.Equal(200, (await s3.SendAsync("GET", bucket, "k")).Status);
        Assert.Contains("<Key>k</Key>", (await s3.SendAsync("GET", bucket, "", "list-type=2")).Body, StringComparison.Ordinal);
    }

    // 9. Hooks

    [Fact]
    public async Task A_test_acts_the_moment_a_request_arrives_and_that_request_already_sees_it()
    {
        var (bucket, content) = await SeedAsync(TestEndpoints.S3rverSource);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Emulation.RequiredSessionToken = "token-1";
        // The token expires exactly as the first GET of "k" arrives.
        var rotated = 0;
        proxy.RequestArrived += r =>
        {
            if (FaultProxy.IsObjectGet(r) && Interlocked.Exchange(ref rotated, 1) == 0) proxy.Emulation.RotateSessionToken("token-2");
        };
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource) { Token = "token-1" };
        var arrived = proxy.WaitForRequestAsync(r => FaultProxy.IsObjectGet(r) && r.Path.Value!.EndsWith("/k", StringComparison.Ordinal));

        var first = await s3.SendAsync("GET", bucket, "k");
        Assert.Equal((400, "ExpiredToken"), (first.Status, first.Xml("Code")));
        var seen = await arrived.WaitAsync(Patience);
        Assert.Equal(("GET", $"/{bucket}/k", "token-1"), (seen.Method, seen.Path, seen.Header("x-amz-security-token")));

        s3.Token = "token-2";
        Assert.Equal(content, (await s3.SendAsync("GET", bucket, "k")).Bytes);
    }

    [Fact]
    public async Task A_hung_request_is_held_while_the_test_changes_the_server_then_released_into_it()
    {
        var (bucket, _) = await SeedAsync(TestEndpoints.S3rverSource);
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Inject(Fault.Hang, 1, FaultProxy.IsObjectGet);
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);
        var arrived = proxy.WaitForRequestAsync(FaultProxy.IsObjectGet);
        var get = s3.SendAsync("GET", bucket, "k");
        await arrived.WaitAsync(Patience);
        proxy.Emulation.BucketRegion = "eu-west-1";
        proxy.Release();
        Assert.Equal((400, "AuthorizationHeaderMalformed"), ((await get).Status, (await get).Xml("Code")));

        // A Hang injected after the Release holds its request again, until the next Release.
        proxy.Emulation.BucketRegion = null;
        proxy.Inject(Fault.Hang, 1, FaultProxy.IsObjectGet);
        arrived = proxy.WaitForRequestAsync(FaultProxy.IsObjectGet);
        get = s3.SendAsync("GET", bucket, "k");
        await arrived.WaitAsync(Patience);
        Assert.NotSame(get, await Task.WhenAny(get, Task.Delay(300)));
        proxy.Release();
        Assert.Equal(200, (await get.WaitAsync(Patience)).Status);
        Assert.Equal(2, proxy.Served(Fault.Hang));
    }

    // 10. R2 parts

    [Fact]
    public async Task R2_refuses_to_complete_an_upload_whose_parts_differ_in_size()
    {
        using var client = TestEndpoints.S3rverSource.Client();
        var bucket = await client.NewBucketAsync();
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource);
        proxy.Emulation.RequireEqualParts = true;
        using var s3 = new RawS3(proxy.Endpoint, TestEndpoints.S3rverSource);
        const int MiB = 1024 * 1024;

        async Task<Reply> UploadAsync(string key, params int[] sizes)
        {
            var uploadId = await s3.InitiateAsync(bucket, key);
            var complete = new StringBuilder("<CompleteMultipartUpload>");
            for (var i = 0; i < sizes.Length; i++)
            {
                var part = await s3.SendAsync("PUT", bucket, key, $"partNumber={i + 1}&uploadId={Uri.EscapeDataString(uploadId)}", TestEndpoints.Bytes(sizes[i], i));
                Assert.Equal(200, part.Status);
                complete.Append(CultureInfo.InvariantCulture, $"<Part><PartNumber>{i + 1}</PartNumber><ETag>{part.Header("ETag")}</ETag></Part>");
            }
            return await s3.SendAsync("POST", bucket, key, $"uploadId={Uri.EscapeDataString(uploadId)}", Encoding.UTF8.GetBytes(complete.Append("</CompleteMultipartUpload>").ToString()));
        }

        var unequal = await UploadAsync("unequal", 5 * MiB + 1, 5 * MiB, 10);
        Assert.Equal((400, "InvalidPart"), (unequal.Status, unequal.Xml("Code")));
        Assert.Equal(1, proxy.Emulation.UnequalPartRefusals);
        Assert.Equal(200, (await UploadAsync("equal", 5 * MiB, 5 * MiB, 10)).Status);
        Assert.Equal(10L * MiB + 10, (await client.GetObjectMetadataAsync(bucket, "equal")).ContentLength);
    }
}
