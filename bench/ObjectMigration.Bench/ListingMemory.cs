using System.Diagnostics;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;
using ObjectMigration.Engine.Transfer;

namespace ObjectMigration.Bench;

/// <summary>Memory of a whole job over a synthetic bucket: listing, state store, scheduling and copies all run.</summary>
internal static class ListingMemory
{
    /// <summary>Prints one markdown table row; exit code 0 when every object was copied.</summary>
    public static async Task<int> RunAsync(int count)
    {
        var home = Path.Combine(Path.GetTempPath(), "om-bench-" + Guid.NewGuid().ToString("n")[..8]);
        var engine = MigrationEngine.Open(home);
        var source = engine.AddConnector(new CloudConnector { Name = "synthetic-source", Endpoint = "http://127.0.0.1:1" }, "a", "b", false);
        var target = engine.AddConnector(new CloudConnector { Name = "synthetic-target", Endpoint = "http://127.0.0.1:2" }, "a", "b", false);
        var job = engine.CreateJob(new MigrationJobRequest { SourceConnector = source.Name, SourceBucket = "src", TargetConnector = target.Name, TargetBucket = "dst", Overwrite = OverwriteMode.Always });

        var clock = Stopwatch.StartNew();
        var runner = new MigrationRunner(engine.Store, engine.GetJob(job.Id), new SyntheticSource(count), new DiscardingTarget());
        var (state, peak) = await PeakMemory.WhileAsync(() => runner.RunAsync(CancellationToken.None));
        clock.Stop();
        var progress = engine.Store.GetProgress(job.Id);
        Console.WriteLine($"| {count:N0} | {state} | {progress.TransferredObjects:N0} | {clock.Elapsed.TotalSeconds:F1} s | {count / clock.Elapsed.TotalSeconds:N0} | {peak / 1048576.0:F0} MB |");
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(home, recursive: true);
        return state == JobState.Completed && progress.TransferredObjects == count ? 0 : 1;
    }
}

/// <summary>The process's peak resident memory while some work runs, sampled every 50 ms.</summary>
internal static class PeakMemory
{
    public static async Task<(T Result, long PeakBytes)> WhileAsync<T>(Func<Task<T>> work)
    {
        long peak = 0;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            var process = Process.GetCurrentProcess();
            while (!sampling.IsCancellationRequested)
            {
                process.Refresh();
                peak = Math.Max(peak, process.WorkingSet64);
                try { await Task.Delay(50, sampling.Token); } catch (OperationCanceledException) { }
            }
        });
        try
        {
            return (await work(), Math.Max(peak, Process.GetCurrentProcess().WorkingSet64));
        }
        finally
        {
            sampling.Cancel();
            await sampler;
        }
    }
}

/// <summary>
/// A bucket of <paramref name="count"/> 1 KiB objects that exists only as arithmetic; two of them with the same count hold
/// the same objects (same keys, sizes and MD5 ETags), as a source and a target a verify finds equal.
/// </summary>
internal sealed class SyntheticSource(int count, string serverSideCopyKey = "synthetic-source") : IObjectStore
{
    private const int Size = 1024;
    /// <summary>The MD5 of 1 KiB of zeros, the body every object has.</summary>
    private const string ETag = "\"0f343b0931126a20f133d67c2b018a3b\"";
    public string ServerSideCopyKey => serverSideCopyKey;
    public void Dispose() { }
    public Task<IReadOnlyList<BucketInfo>> ListBucketsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<BucketInfo>>([new BucketInfo("src", null)]);
    public ObjectMigration.Engine.Connectors.ProviderProfile Profile { get; } = ObjectMigration.Engine.Connectors.ProviderProfiles.For(ObjectMigration.Engine.Model.ConnectorProvider.S3);
    public event Action<string>? Notice { add { } remove { } }
    public Task<string?> GetTaggingAsync(string bucket, string key, CancellationToken ct) => Task.FromResult<string?>(null);
    public Task PutTaggingAsync(string bucket, string key, string tagging, CancellationToken ct) => Task.CompletedTask;
    public Task<string?> GetBucketLocationAsync(string bucket, CancellationToken ct) => Task.FromResult<string?>("us-east-1");
    public Task<bool> BucketExistsAsync(string bucket, CancellationToken ct) => Task.FromResult(true);

    public Task<ObjectListing> ListAsync(string bucket, string prefix, string? token, string? startAfter, int pageSize, CancellationToken ct)
    {
        // Keys in S3's order, as a listing gives them; a start-after key starts at the first key past it.
        var start = token is not null ? int.Parse(token) : startAfter is null ? 0 : FirstAfter(startAfter);
        var end = Math.Min(count, start + pageSize);
        var page = Enumerable.Range(start, end - start)
            .Select(i => new ListedObject(KeyOf(i), Size, ETag, DateTimeOffset.UnixEpoch.AddSeconds(i), i % 10 == 0 ? "STANDARD_IA" : "STANDARD")).ToList();
        return Task.FromResult(new ObjectListing(page, end < count ? end.ToString() : null));
    }

    public Task<ObjectHead?> HeadAsync(string bucket, string key, CancellationToken ct) =>
        Task.FromResult<ObjectHead?>(new ObjectHead(Size, ETag, DateTimeOffset.UnixEpoch, null, new ObjectMetadata()));

    private static string KeyOf(int i) => $"data/{i / 10000:d3}/{i:d8}.bin";

    private int FirstAfter(string key)
    {
        var (low, high) = (0, count);
        while (low < high)
        {
            var mid = (low + high) / 2;
            if (string.CompareOrdinal(KeyOf(mid), key) <= 0) low = mid + 1; else high = mid;
        }
        return low;
    }

    public Task<ObjectDownload> GetAsync(string bucket, string key, long? start, long? end, string? ifMatch, CancellationToken ct) =>
        Task.FromResult(new ObjectDownload(new ObjectHead(Size, null, DateTimeOffset.UnixEpoch, null, new ObjectMetadata()), new MemoryStream(new byte[Size]), new MemoryStream()));

    public Task<StoredETag> PutAsync(string b, string k, Stream body, long length, ObjectMetadata m, PayloadChecks md5, CancellationToken ct) => throw new NotSupportedException();
    public Task<string> StartMultipartAsync(string b, string k, ObjectMetadata m, CancellationToken ct) => throw new NotSupportedException();
    public Task<StoredETag> UploadPartAsync(string b, string k, string u, int p, Stream body, long l, PayloadChecks md5, CancellationToken ct) => throw new NotSupportedException();
    public Task<StoredETag> CompleteMultipartAsync(string b, string k, string u, IReadOnlyList<(int PartNumber, string ETag)> p, CancellationToken ct) => throw new NotSupportedException();
    public Task AbortMultipartAsync(string b, string k, string u, CancellationToken ct) => throw new NotSupportedException();
    public Task<IReadOnlyList<OpenMultipartUpload>> ListUploadsAsync(string b, string k, CancellationToken ct) => throw new NotSupportedException();
    public DateTimeOffset ServerNow => DateTimeOffset.UtcNow;
    public Task<StoredETag> CopyAsync(string sb, string sk, string tb, string tk, string? i, string? c, CancellationToken ct) => throw new NotSupportedException();
    public Task<StoredETag> UploadPartCopyAsync(string sb, string sk, string tb, string tk, string u, int p, long f, long l, string? i, CancellationToken ct) => throw new NotSupportedException();
    public Task<StoredETag> RewriteInPlaceAsync(string b, string k, ObjectMetadata h, string? i, CancellationToken ct) => throw new NotSupportedException();
}

/// <summary>A target that reads every body to the end and keeps nothing.</summary>
internal sealed class DiscardingTarget : IObjectStore
{
    public string ServerSideCopyKey => "discarding-target";
    public ObjectMigration.Engine.Connectors.ProviderProfile Profile { get; } = ObjectMigration.Engine.Connectors.ProviderProfiles.For(ObjectMigration.Engine.Model.ConnectorProvider.S3);
    public event Action<string>? Notice { add { } remove { } }
    public Task<string?> GetTaggingAsync(string bucket, string key, CancellationToken ct) => Task.FromResult<string?>(null);
    public Task PutTaggingAsync(string bucket, string key, string tagging, CancellationToken ct) => Task.CompletedTask;

    public void Dispose() { }
    public Task<IReadOnlyList<BucketInfo>> ListBucketsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<BucketInfo>>([]);
    public Task<string?> GetBucketLocationAsync(string bucket, CancellationToken ct) => Task.FromResult<string?>(null);
    public Task<bool> BucketExistsAsync(string bucket, CancellationToken ct) => Task.FromResult(true);
    public Task<ObjectListing> ListAsync(string bucket, string prefix, string? token, string? startAfter, int pageSize, CancellationToken ct) => Task.FromResult(new ObjectListing([], null));
    public Task<ObjectHead?> HeadAsync(string bucket, string key, CancellationToken ct) => Task.FromResult<ObjectHead?>(null);
    public Task<ObjectDownload> GetAsync(string bucket, string key, long? start, long? end, string? ifMatch, CancellationToken ct) => throw new NotSupportedException();

    public async Task<StoredETag> PutAsync(string b, string k, Stream body, long length, ObjectMetadata m, PayloadChecks md5, CancellationToken ct)
    {
        await body.CopyToAsync(Stream.Null, ct);
        return new StoredETag(null, false);
    }

    public Task<string> StartMultipartAsync(string b, string k, ObjectMetadata m, CancellationToken ct) => throw new NotSupportedException();
    public Task<StoredETag> UploadPartAsync(string b, string k, string u, int p, Stream body, long l, PayloadChecks md5, CancellationToken ct) => throw new NotSupportedException();
    public Task<StoredETag> CompleteMultipartAsync(string b, string k, string u, IReadOnlyList<(int PartNumber, string ETag)> p, CancellationToken ct) => throw new NotSupportedException();
    public Task AbortMultipartAsync(string b, string k, string u, CancellationToken ct) => throw new NotSupportedException();
    public Task<IReadOnlyList<OpenMultipartUpload>> ListUploadsAsync(string b, string k, CancellationToken ct) => throw new NotSupportedException();
    public DateTimeOffset ServerNow => DateTimeOffset.UtcNow;
    public Task<StoredETag> CopyAsync(string sb, string sk, string tb, string tk, string? i, string? c, CancellationToken ct) => throw new NotSupportedException();
    public Task<StoredETag> UploadPartCopyAsync(string sb, string sk, string tb, string tk, string u, int p, long f, long l, string? i, CancellationToken ct) => throw new NotSupportedException();
    public Task<StoredETag> RewriteInPlaceAsync(string b, string k, ObjectMetadata h, string? i, CancellationToken ct) => throw new NotSupportedException();
}
