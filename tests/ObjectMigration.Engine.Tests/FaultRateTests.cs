using System.Collections.Concurrent;
using System.Diagnostics;
using Amazon.S3;
using Amazon.S3.Model;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;
using ObjectMigration.Engine.Transfer;
using Xunit;
using Xunit.Abstractions;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// Migrations through fault proxies on both sides that fault a share of all requests at random (seeded): listings,
/// HEADs, GETs, PUTs, multipart parts and completions get 503 SlowDown, 500, resets before and in the middle of a body,
/// truncated bodies, wrong Content-Lengths and answers that never come (past the no-progress timeout). Whatever
/// happens, every object ends intact on the target or Failed and logged, the counters add up, and a -RetryFailed
/// resume with the faults off completes the job with every object byte-identical.
/// </summary>
public sealed class FaultRateTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int MiB = 1024 * 1024;
    private const int Part = 5 * MiB;

    /// <summary>Every kind of fault the proxy can throw at any request; each request gets one that can happen to it.</summary>
    private static readonly Fault[] Mix =
    [
        Fault.SlowDown, Fault.InternalError, Fault.Reset, Fault.ResetMidBody, Fault.TruncatedBody,
        Fault.ShortContentLength, Fault.LongContentLength, Fault.Hang, Fault.Stall,
    ];

    /// <summary>Quick retries, few of them: at 20 % some objects run out and fail, which is part of what is tested.</summary>
    private static readonly RunnerOptions Options = new()
    {
        Retry = new RetryPolicy { MaxAttempts = 4, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) },
        ControlInterval = TimeSpan.FromMilliseconds(100),
        FlushInterval = TimeSpan.FromMilliseconds(100),
    };

    /// <summary>With the faults off: retries only for a machine so busy that a request times out.</summary>
    private static readonly RunnerOptions Patient = new()
    {
        Retry = new RetryPolicy { MaxAttempts = 8, BaseDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(500) },
        ControlInterval = TimeSpan.FromMilliseconds(100),
        FlushInterval = TimeSpan.FromMilliseconds(100),
    };

    /// <summary>Long enough for a server to assemble 16 MiB on a busy machine, short enough that a hung request costs little.</summary>
    private static readonly TimeSpan NoProgress = TimeSpan.FromSeconds(2);

    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-rates-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly List<FaultProxy> _proxies = [];
    private MigrationEngine _engine = null!;

    public Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var proxy in _proxies) await proxy.DisposeAsync();
    }

    private static (S3Endpoint Source, S3Endpoint Target) Servers(string fixture) => fixture switch
    {
        "s3rver" => (TestEndpoints.S3rverSource, TestEndpoints.S3rverTarget),
        _ => (TestEndpoints.Rgw, TestEndpoints.RgwSecondGateway),
    };

    // One source bucket per server, seeded once for all rates: the migrations only read it.
    private static readonly ConcurrentDictionary<string, Lazy<Task<(string Bucket, Dictionary<string, byte[]> Seeded)>>> Sources = new();

    private static Task<(string Bucket, Dictionary<string, byte[]> Seeded)> SourceAsync(string fixture) =>
        Sources.GetOrAdd(fixture, f => new(() => SeedAsync(Servers(f).Source))).Value;

    /// <summary>
    /// Two objects copied in 5 MiB parts (11 MiB, stored multipart at the source, and 16 MiB) and sixty small ones, an
    /// empty one among them; some small ones stored as one-part multipart uploads, so that on Ceph their ETag is no MD5
    /// and nothing but the size and the client's own hash vouches for their bytes (s3rver gives them an MD5 anyway).
    /// </summary>
    private static async Task<(string Bucket, Dictionary<string, byte[]> Seeded)> SeedAsync(S3Endpoint server)
    {
        using var client = server.Client();
        var bucket = await client.NewBucketAsync();
        var seeded = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var multipartAtSource = new HashSet<string>(StringComparer.Ordinal);
        seeded["large/11.bin"] = TestEndpoints.Bytes(11 * MiB, 1);
        multipartAtSource.Add("large/11.bin");
        seeded["large/16.bin"] = TestEndpoints.Bytes(16 * MiB, 3);
        seeded["small/empty.bin"] = [];
        for (var i = 0; i < 60; i++)
        {
            var key = $"small/{i:d2}.bin";
            seeded[key] = TestEndpoints.Bytes(1 + i * 4000, 100 + i);
            if (i % 6 == 1) multipartAtSource.Add(key);
        }
        await Parallel.ForEachAsync(seeded, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (o, _) =>
        {
            if (multipartAtSource.Contains(o.Key)) await PutMultipartAsync(client, bucket, o.Key, o.Value);
            else await client.PutAsync(bucket, o.Key, o.Value);
        });
        return (bucket, seeded);
    }

    private static async Task PutMultipartAsync(AmazonS3Client client, string bucket, string key, byte[] content)
    {
        var upload = await client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = bucket, Key = key });
        var parts = new List<PartETag>();
        for (int offset = 0, number = 1; offset < content.Length; offset += Part, number++)
        {
            var length = Math.Min(Part, content.Length - offset);
            var part = await client.UploadPartAsync(new UploadPartRequest
            {
                BucketName = bucket, Key = key, UploadId = upload.UploadId, PartNumber = number, PartSize = length,
                InputStream = new MemoryStream(content, offset, length), UseChunkEncoding = false,
            });
            parts.Add(new PartETag(number, part.ETag));
        }
        await client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest { BucketName = bucket, Key = key, UploadId = upload.UploadId, PartETags = parts });
    }

    private async Task<FaultProxy> ProxyAsync(S3Endpoint upstream)
    {
        var proxy = await FaultProxy.StartAsync(upstream);
        _proxies.Add(proxy);
        return proxy;
    }

    /// <summary>
    /// What the target holds: each key's bytes, read whole. An object listed with the ETag, size and date it had when
    /// it was last read (in <paramref name="read"/>) is that same write and is not read again.
    /// </summary>
    private static async Task<Dictionary<string, byte[]>> TargetContentAsync(AmazonS3Client client, string bucket, Dictionary<string, (string Version, byte[] Bytes)> read)
    {
        var held = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var request = new ListObjectsV2Request { BucketName = bucket };
        ListObjectsV2Response page;
        do
        {
            page = await client.ListObjectsV2Async(request);
            foreach (var o in page.S3Objects ?? [])
            {
                var version = $"{o.ETag}|{o.Size}|{o.LastModified:O}";
                if (!read.TryGetValue(o.Key, out var known) || known.Version != version) read[o.Key] = known = (version, (await client.GetAsync(bucket, o.Key)).Content);
                held[o.Key] = known.Bytes;
            }
            request.ContinuationToken = page.NextContinuationToken;
        }
        while (page.IsTruncated == true);
        return held;
    }

    private static void AssertIntact(Dictionary<string, byte[]> seeded, Dictionary<string, byte[]> held)
    {
        Assert.Empty(held.Keys.Except(seeded.Keys));
        foreach (var (key, bytes) in held)
        {
            Assert.True(seeded[key].AsSpan().SequenceEqual(bytes), $"'{key}' on the target is {bytes.Length} bytes that differ from the source's {seeded[key].Length}");
        }
    }

    [Theory]
    [InlineData("s3rver", 5)]
    [InlineData("s3rver", 10)]
    [InlineData("s3rver", 20)]
    [InlineData("ceph", 5)]
    [InlineData("ceph", 10)]
    [InlineData("ceph", 20)]
    public async Task At_a_rate_of_faulted_requests_every_object_is_intact_or_failed_and_logged_and_RetryFailed_completes_the_job(string fixture, int percent)
    {
        var (sourceServer, targetServer) = Servers(fixture);
        var (source, seeded) = await SourceAsync(fixture);
        using var targetClient = targetServer.Client();
        var target = await targetClient.NewBucketAsync();
        var sourceProxy = await ProxyAsync(sourceServer);
        var targetProxy = await ProxyAsync(targetServer);
        // A PUT the client breaks off (its source read failed) stores nothing, as on S3 and Ceph; s3rver would keep the part that came.
        targetProxy.WholeUploadsOnly = true;
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = sourceProxy.Endpoint }, sourceServer.AccessKey, sourceServer.SecretKey, pathStyleGiven: true);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = targetProxy.Endpoint }, targetServer.AccessKey, targetServer.SecretKey, pathStyleGiven: true);
        var id = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, TargetConnector = "target", TargetBucket = target,
            Concurrency = 8, MultipartThreshold = Part, PartSize = Part, NoProgressTimeout = NoProgress,
        }).Id;
        // Seeded by the case, and apart per side: a run repeats its sequence of decisions.
        sourceProxy.InjectAtRate(percent / 100.0, seed: 1000 + percent, Mix);
        targetProxy.InjectAtRate(percent / 100.0, seed: 2000 + percent, Mix);

        var clock = Stopwatch.StartNew();
        var state = await _engine.RunJobAsync(id, Options, CancellationToken.None);
        var faultedRun = clock.Elapsed;
        sourceProxy.Clear();
        targetProxy.Clear();

        var progress = _engine.Store.GetProgress(id);
        var rows = _engine.Store.StreamObjectReport(id).ToDictionary(r => r.Key, StringComparer.Ordinal);
        var logs = _engine.Store.GetLogs(id, new LogQuery());
        var read = new Dictionary<string, (string, byte[])>(StringComparer.Ordinal);
        var held = await TargetContentAsync(targetClient, target, read);
        var faulted = sourceProxy.Faulted + targetProxy.Faulted;
        var requests = sourceProxy.Requests + targetProxy.Requests;
        output.WriteLine($"{fixture} {percent}%: {state} in {faultedRun.TotalSeconds:0.0} s; {faulted} of {requests} requests faulted " +
            $"(source {sourceProxy.Faulted}/{sourceProxy.Requests}, target {targetProxy.Faulted}/{targetProxy.Requests}); " +
            $"{progress.TransferredObjects} transferred, {progress.SkippedObjects} skipped, {progress.FailedObjects} failed of {progress.Objects}");
        output.WriteLine("  faults: " + string.Join(", ", Mix.Select(f => $"{f} {sourceProxy.Served(f) + targetProxy.Served(f)}")));
        output.WriteLine("  by request: " + string.Join(", ", sourceProxy.FaultedByKind.Concat(targetProxy.FaultedByKind)
            .GroupBy(p => p.Key).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Sum(p => p.Value)}")));
        foreach (var failed in rows.Values.Where(r => r.Outcome == ObjectOutcome.Failed)) output.WriteLine($"  failed {failed.Key}: {failed.Message}");
        foreach (var error in logs.Where(l => l.Type == LogType.MigrationError && l.ObjectKey is null)) output.WriteLine($"  job error: {error.Message}");
        Assert.True(faulted > 0, "no request was faulted");

        // Never truncated or corrupted: whatever reached the target is the source's bytes.
        AssertIntact(seeded, held);
        Assert.True(state is JobState.Completed or JobState.CompletedWithErrors or JobState.Failed, $"the run ended {state}");
        if (state == JobState.Failed)
        {
            // The job itself stopped (a listing out of retries): said in its log, and resumable.
            Assert.Contains(logs, l => l.Type == LogType.MigrationError && l.ObjectKey is null);
        }
        else
        {
            // Counters add up: every object found was transferred, skipped or failed.
            Assert.Equal(seeded.Count, progress.Objects);
            Assert.Equal(progress.Objects, progress.TransferredObjects + progress.SkippedObjects + progress.FailedObjects);
            Assert.Equal(0, progress.SkippedObjects);
        }
        foreach (var (key, row) in rows)
        {
            switch (row.Outcome)
            {
                case ObjectOutcome.Transferred:
                    Assert.True(held.ContainsKey(key), $"'{key}' counted transferred is not on the target");
                    break;
                case ObjectOutcome.Failed:
                    // Failed and logged, with why.
                    Assert.False(string.IsNullOrWhiteSpace(row.Message));
                    Assert.Contains(logs, l => l.ObjectKey == key && l.Type == row.LogType);
                    break;
            }
        }
        Assert.Equal(rows.Values.Count(r => r.Outcome == ObjectOutcome.Transferred), progress.TransferredObjects);
        Assert.Equal(rows.Values.Count(r => r.Outcome == ObjectOutcome.Failed), progress.FailedObjects);

        // Faults off: -RetryFailed finishes the job, every object byte-identical.
        if (state != JobState.Completed)
        {
            _engine.PrepareResume(id, retryFailed: true);
            state = await _engine.RunJobAsync(id, Patient, CancellationToken.None);
        }
        progress = _engine.Store.GetProgress(id);
        Assert.True(state == JobState.Completed, $"the resume ended {state}: {_engine.GetJob(id).Error} " +
            string.Join("; ", _engine.Store.StreamObjectReport(id).Where(r => r.Outcome != ObjectOutcome.Transferred).Select(r => $"{r.Key} {r.Outcome}: {r.Message}")));
        Assert.Equal(seeded.Count, progress.Objects);
        Assert.Equal(seeded.Count, progress.TransferredObjects);
        Assert.Equal(0, progress.FailedObjects);
        held = await TargetContentAsync(targetClient, target, read);
        Assert.Equal(seeded.Keys.Order(StringComparer.Ordinal), held.Keys.Order(StringComparer.Ordinal));
        AssertIntact(seeded, held);
        if (targetServer.Kind != "s3rver")
        {
            // Nothing the job started is left open (s3rver cannot list uploads).
            var uploads = await targetClient.ListMultipartUploadsAsync(target);
            Assert.Empty(uploads.MultipartUploads ?? []);
        }
        output.WriteLine($"  resumed: {state}, {held.Count} objects checked byte for byte ({held.Values.Sum(b => (long)b.Length) / (double)MiB:0.0} MiB)");
    }

    /// <summary>
    /// Each body fault once, aimed at one request of a kind (the whole GET or single PUT of one small object, a part, a
    /// listing, a completion) of a source whose ETags are no MD5s. The object never lands short, the job completes.
    /// </summary>
    [Theory]
    [InlineData(Fault.ShortContentLength, "get")]
    [InlineData(Fault.LongContentLength, "get")]
    [InlineData(Fault.TruncatedBody, "get")]
    [InlineData(Fault.ResetMidBody, "get")]
    [InlineData(Fault.ShortContentLength, "ranged get")]
    [InlineData(Fault.ShortContentLength, "listing")]
    [InlineData(Fault.LongContentLength, "listing")]
    [InlineData(Fault.ShortContentLength, "complete")]
    [InlineData(Fault.ResetMidBody, "put")]
    [InlineData(Fault.ResetMidBody, "part")]
    public async Task A_body_cut_or_mislabelled_once_is_retried_and_never_lands_short(Fault fault, string kind)
    {
        var (sourceServer, targetServer) = Servers("s3rver");
        var (source, seeded) = await SourceAsync("s3rver");
        using var targetClient = targetServer.Client();
        var target = await targetClient.NewBucketAsync();
        var sourceProxy = await ProxyAsync(sourceServer);
        var targetProxy = await ProxyAsync(targetServer);
        // A PUT the client breaks off (its source read failed) stores nothing, as on S3 and Ceph; s3rver would keep the part that came.
        targetProxy.WholeUploadsOnly = true;
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = sourceProxy.Endpoint }, sourceServer.AccessKey, sourceServer.SecretKey, pathStyleGiven: true);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = targetProxy.Endpoint }, targetServer.AccessKey, targetServer.SecretKey, pathStyleGiven: true);
        // SSE-KMS at the source: no ETag there is an MD5, so nothing but sizes and the client's hash vouch for the bytes.
        sourceProxy.Emulation.SseKms = true;
        var keys = new[] { "small/03.bin", "small/07.bin", "large/11.bin" };
        var id = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, Keys = keys, TargetConnector = "target", TargetBucket = target,
            Concurrency = 4, MultipartThreshold = Part, PartSize = Part,
        }).Id;
        var proxy = kind is "put" or "part" or "complete" ? targetProxy : sourceProxy;
        proxy.Inject(fault, 1, r => FaultProxy.KindOf(r) == kind && (kind is not ("get" or "put") || r.Path.Value!.EndsWith("/small/07.bin", StringComparison.Ordinal)));

        var state = await _engine.RunJobAsync(id, Patient, CancellationToken.None);

        Assert.Equal(1, proxy.Served(fault));
        var failures = string.Join("; ", _engine.Store.StreamObjectReport(id).Where(r => r.Outcome == ObjectOutcome.Failed).Select(r => $"{r.Key}: {r.Message}"));
        Assert.True(state == JobState.Completed, $"{state}: {_engine.GetJob(id).Error} {failures}");
        var held = await TargetContentAsync(targetClient, target, []);
        Assert.Equal(keys.Order(StringComparer.Ordinal), held.Keys.Order(StringComparer.Ordinal));
        AssertIntact(seeded, held);
    }

    /// <summary>
    /// The answer to a CompleteMultipartUpload is lost after the server completed the upload: every retry then finds the
    /// upload gone (Ceph: NoSuchUpload; s3rver: 500). Where the target's ETag is the composite of the parts sent (Ceph) the
    /// object is found done; otherwise (s3rver's ETag is the whole object's MD5) it fails with no upload left to it, and
    /// -RetryFailed copies it again from a new upload instead of completing the gone one forever.
    /// </summary>
    [Theory]
    [InlineData("s3rver")]
    [InlineData("ceph")]
    public async Task A_completion_whose_answer_is_lost_is_found_done_or_started_over_by_RetryFailed(string fixture)
    {
        var (sourceServer, targetServer) = Servers(fixture);
        var (source, seeded) = await SourceAsync(fixture);
        using var targetClient = targetServer.Client();
        var target = await targetClient.NewBucketAsync();
        var targetProxy = await ProxyAsync(targetServer);
        _engine.AddConnector(new CloudConnector { Name = "source", Endpoint = sourceServer.Endpoint }, sourceServer.AccessKey, sourceServer.SecretKey, pathStyleGiven: true);
        _engine.AddConnector(new CloudConnector { Name = "target", Endpoint = targetProxy.Endpoint }, targetServer.AccessKey, targetServer.SecretKey, pathStyleGiven: true);
        var keys = new[] { "large/11.bin" };
        var id = _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = "source", SourceBucket = source, Keys = keys, TargetConnector = "target", TargetBucket = target,
            MultipartThreshold = Part, PartSize = Part,
        }).Id;
        targetProxy.Inject(Fault.ResetMidBody, 1, FaultProxy.IsCompleteUpload);

        var state = await _engine.RunJobAsync(id, Patient, CancellationToken.None);

        Assert.Equal(1, targetProxy.Served(Fault.ResetMidBody));
        Assert.Empty(_engine.Store.GetOpenUploads(id));
        var held = await TargetContentAsync(targetClient, target, []);
        AssertIntact(seeded, held);
        if (fixture == "ceph")
        {
            Assert.Equal(JobState.Completed, state);
        }
        else
        {
            Assert.Equal(JobState.CompletedWithErrors, state);
            Assert.Single(_engine.Store.GetLogs(id, new LogQuery { Types = [LogType.ImportErrorRetryExhaustion] }), l => l.ObjectKey == keys[0]);
            _engine.PrepareResume(id, retryFailed: true);
            Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Patient, CancellationToken.None));
        }
        held = await TargetContentAsync(targetClient, target, []);
        Assert.Equal(keys, held.Keys);
        AssertIntact(seeded, held);
        if (fixture == "ceph") Assert.Empty((await targetClient.ListMultipartUploadsAsync(target)).MultipartUploads ?? []);
    }
}
