using System.Text.Json;
using ObjectMigration.Engine.Model;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace ObjectMigration.Engine.Tests;

/// <summary>One S3 endpoint started by the test harness (build.ps1 -Task Test) on 127.0.0.1.</summary>
public sealed record S3Endpoint(string Kind, string Endpoint, string AccessKey, string SecretKey)
{
    public AmazonS3Client Client()
    {
        var config = new AmazonS3Config
        {
            ServiceURL = Endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        return new AmazonS3Client(new BasicAWSCredentials(AccessKey, SecretKey), config);
    }

    public override string ToString() => $"{Kind} {Endpoint}";
}

/// <summary>Reads the endpoints the harness started; the file path comes in OBJECTMIGRATION_TEST_FIXTURES.</summary>
public static class TestEndpoints
{
    private static readonly Lazy<JsonElement> Fixtures = new(() =>
    {
        var path = Environment.GetEnvironmentVariable("OBJECTMIGRATION_TEST_FIXTURES");
        if (string.IsNullOrEmpty(path) || !File.Exists(path))
        {
            throw new InvalidOperationException(
                "No S3 endpoints: run the tests through 'dotnet pwsh ./build.ps1 -Task Test', which starts s3rver and Ceph RGW on 127.0.0.1.");
        }
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    });

    private static S3Endpoint Read(string name, int gateway = 0)
    {
        var f = Fixtures.Value.GetProperty(name);
        var endpoint = f.TryGetProperty("Endpoints", out var endpoints) && endpoints.ValueKind == JsonValueKind.Array
            ? endpoints[gateway].GetString()!
            : f.GetProperty("Endpoint").GetString()!;
        return new S3Endpoint(f.GetProperty("Kind").GetString()!, endpoint, f.GetProperty("AccessKey").GetString()!, f.GetProperty("SecretKey").GetString()!);
    }

    public static S3Endpoint S3rverSource => Read("S3rverSource");
    public static S3Endpoint S3rverTarget => Read("S3rverTarget");
    public static S3Endpoint Rgw => Read("Ceph", 0);
    public static S3Endpoint RgwSecondGateway => Read("Ceph", 1);

    /// <summary>A new bucket on the s3rver source holding <paramref name="count"/> objects prefix/000.bin ... of distinct seeded bytes.</summary>
    public static async Task<(string Bucket, Dictionary<string, byte[]> Seeded)> SeedS3rverSourceAsync(string prefix, int count, int baseSize)
    {
        using var client = S3rverSource.Client();
        var bucket = await client.NewBucketAsync();
        var seeded = Enumerable.Range(0, count).ToDictionary(i => $"{prefix}/{i:d3}.bin", i => Bytes(baseSize + i, i));
        await Parallel.ForEachAsync(seeded, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (o, _) => await client.PutAsync(bucket, o.Key, o.Value));
        return (bucket, seeded);
    }

    /// <summary>An engine in <paramref name="home"/> with connectors "source" and "target" to the two s3rver fixtures.</summary>
    public static MigrationEngine OpenEngineOnS3rver(string home)
    {
        var engine = MigrationEngine.Open(home);
        foreach (var (name, e) in new[] { ("source", S3rverSource), ("target", S3rverTarget) })
        {
            engine.AddConnector(new CloudConnector { Name = name, Provider = ConnectorProvider.S3, Endpoint = e.Endpoint }, e.AccessKey, e.SecretKey, pathStyleGiven: false);
        }
        return engine;
    }

    public static async Task<string> NewBucketAsync(this AmazonS3Client client)
    {
        var name = "t-" + Guid.NewGuid().ToString("n")[..16];
        await client.PutBucketAsync(name);
        return name;
    }

    public static async Task PutAsync(this AmazonS3Client client, string bucket, string key, byte[] content,
        string contentType = "application/octet-stream", IDictionary<string, string>? metadata = null, Action<PutObjectRequest>? configure = null)
    {
        var request = new PutObjectRequest
        {
            BucketName = bucket,
            Key = key,
            InputStream = new MemoryStream(content),
            ContentType = contentType,
            UseChunkEncoding = false,
        };
        foreach (var (name, value) in metadata ?? new Dictionary<string, string>()) request.Metadata.Add(name, value);
        configure?.Invoke(request);
        await client.PutObjectAsync(request);
    }

    public static async Task<(byte[] Content, GetObjectResponse Response)> GetAsync(this AmazonS3Client client, string bucket, string key)
    {
        var response = await client.GetObjectAsync(bucket, key);
        using var buffer = new MemoryStream();
        await response.ResponseStream.CopyToAsync(buffer);
        return (buffer.ToArray(), response);
    }

    public static async Task<List<string>> KeysAsync(this AmazonS3Client client, string bucket)
    {
        var keys = new List<string>();
        var request = new ListObjectsV2Request { BucketName = bucket };
        ListObjectsV2Response page;
        do
        {
            page = await client.ListObjectsV2Async(request);
            keys.AddRange((page.S3Objects ?? []).Select(o => o.Key));
            request.ContinuationToken = page.NextContinuationToken;
        }
        while (page.IsTruncated == true);
        return keys;
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test when <paramref name="timeout"/> passes first.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The condition was not met in time.");
            await Task.Delay(20);
        }
    }

    public static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Runner settings for tests: quick retries, a fast heartbeat and flush, so faults play out in milliseconds.</summary>
    public static ObjectMigration.Engine.Transfer.RunnerOptions QuickRunner { get; } = new()
    {
        Retry = new ObjectMigration.Engine.Transfer.RetryPolicy { MaxAttempts = 4, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) },
        ControlInterval = TimeSpan.FromMilliseconds(100),
        FlushInterval = TimeSpan.FromMilliseconds(100),
    };
}
