using System.Diagnostics;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace ObjectMigration.Bench;

/// <summary>Seeding, purging and the bare-SDK limit loop, for the comparison benchmark.</summary>
internal static class S3Tools
{
    public static AmazonS3Client Client(string endpoint, string accessKey, string secret, int connections) => new(
        new BasicAWSCredentials(accessKey, secret),
        new AmazonS3Config
        {
            ServiceURL = endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxConnectionsPerServer = connections,
            Timeout = TimeSpan.FromMinutes(10),
        });

    /// <summary>
    /// The workloads of issues 6 and 20, as (key, size) lists; sizes are deterministic. "NAME:COUNT" takes the first COUNT
    /// objects of a workload (the WAN bench's quick form).
    /// </summary>
    public static IReadOnlyList<(string Key, long Size)> Workload(string name)
    {
        var parts = name.Split(':');
        return Workload(parts[0], parts.Length > 1 ? int.Parse(parts[1]) : -1);
    }

    private static IReadOnlyList<(string Key, long Size)> Workload(string name, int count)
    {
        var random = new Random(6);
        int Count(int full) => count >= 0 ? count : full;
        return name switch
        {
            "small" => Enumerable.Range(0, Count(5000)).Select(i => ($"small/{i:d5}.bin", 16L * 1024)).ToList(),
            "medium" => Enumerable.Range(0, Count(200)).Select(i => ($"medium/{i:d4}.bin", 4L * 1024 * 1024)).ToList(),
            "large" => Enumerable.Range(0, Count(4)).Select(i => ($"large/{i}.bin", 256L * 1024 * 1024)).ToList(),
            // Log-uniform from 0 B to 8 MiB.
            "mixed" => Enumerable.Range(0, Count(2000)).Select(i => ($"mixed/{i:d5}.bin", (long)Math.Floor(Math.Exp(random.NextDouble() * Math.Log(8.0 * 1024 * 1024 + 1)) - 1))).ToList(),
            _ => throw new ArgumentException($"Unknown workload '{name}': small, medium, large or mixed."),
        };
    }

    public static async Task SeedAsync(AmazonS3Client client, string bucket, string workload, int concurrency)
    {
        try { await client.PutBucketAsync(bucket); } catch (AmazonS3Exception e) when (e.ErrorCode is "BucketAlreadyOwnedByYou" or "BucketAlreadyExists") { }
        var items = Workload(workload);
        var block = new byte[1024 * 1024];
        new Random(1).NextBytes(block);
        await Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (item, ct) =>
        {
            var body = new byte[item.Size];
            for (long offset = 0; offset < item.Size; offset += block.Length) Array.Copy(block, 0, body, offset, Math.Min(block.Length, item.Size - offset));
            BitConverter.TryWriteBytes(body.AsSpan(0, Math.Min(8, body.Length)), item.Key.GetHashCode());
            await client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = item.Key, InputStream = new MemoryStream(body), UseChunkEncoding = false }, ct);
        });
    }

    /// <summary>
    /// Reads every object of a bucket once and drops the bytes. The first copy after seeding ran up to 25 % slower, with
    /// a third more gateway CPU, than the same copy later (every WAN cell, whichever tool went first): the gateways'
    /// first reads of fresh objects. Done once after seeding, no measured run pays it.
    /// </summary>
    public static async Task WarmAsync(AmazonS3Client client, string bucket, int concurrency)
    {
        await Parallel.ForEachAsync(await ListAsync(client, bucket), new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (item, ct) =>
        {
            using var response = await client.GetObjectAsync(bucket, item.Key, ct);
            await response.ResponseStream.CopyToAsync(Stream.Null, ct);
        });
    }

    /// <summary>Every key of a bucket with its size, page by page.</summary>
    private static async Task<List<(string Key, long Size)>> ListAsync(AmazonS3Client client, string bucket)
    {
        var keys = new List<(string Key, long Size)>();
        var request = new ListObjectsV2Request { BucketName = bucket };
        ListObjectsV2Response page;
        do
        {
            page = await client.ListObjectsV2Async(request);
            keys.AddRange((page.S3Objects ?? []).Select(o => (o.Key, o.Size ?? 0)));
            request.ContinuationToken = page.NextContinuationToken;
        }
        while (page.IsTruncated == true);
        return keys;
    }

    public static async Task PurgeAsync(AmazonS3Client client, string bucket)
    {
        var request = new ListObjectsV2Request { BucketName = bucket };
        ListObjectsV2Response page;
        try
        {
            do
            {
                page = await client.ListObjectsV2Async(request);
                var keys = (page.S3Objects ?? []).Select(o => new KeyVersion { Key = o.Key }).ToList();
                if (keys.Count > 0) await client.DeleteObjectsAsync(new DeleteObjectsRequest { BucketName = bucket, Objects = keys });
                request.ContinuationToken = page.NextContinuationToken;
            }
            while (page.IsTruncated == true);
            await client.DeleteBucketAsync(bucket);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchBucket") { }
    }

    /// <summary>The limit: list, then a plain parallel GET + PUT of whole objects with the bare SDK and no state.</summary>
    public static async Task LimitAsync(AmazonS3Client source, string sourceBucket, AmazonS3Client target, string targetBucket, int concurrency)
    {
        try { await target.PutBucketAsync(targetBucket); } catch (AmazonS3Exception e) when (e.ErrorCode is "BucketAlreadyOwnedByYou" or "BucketAlreadyExists") { }
        var keys = await ListAsync(source, sourceBucket);
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (item, ct) =>
        {
            using var response = await source.GetObjectAsync(sourceBucket, item.Key, ct);
            var body = new MemoryStream((int)item.Size);
            await response.ResponseStream.CopyToAsync(body, ct);
            body.Position = 0;
            await target.PutObjectAsync(new PutObjectRequest { BucketName = targetBucket, Key = item.Key, InputStream = body, UseChunkEncoding = false, ContentType = response.Headers.ContentType }, ct);
        });
    }
}
