using System.Diagnostics;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Connectors;

/// <summary>
/// What Test-CloudConnector found for a healthy connector: the endpoint answered and took the keys. A failure is an
/// error instead (AuthenticationError, ConnectionError, Timeout ...), so `if (Test-CloudConnector x)` means healthy,
/// also for an account with no buckets.
/// </summary>
public sealed class CloudConnectorTestResult
{
    public string Connector { get; set; } = "";
    public string Endpoint { get; set; } = "";
    public bool Reachable { get; set; }
    public bool Authenticated { get; set; }
    /// <summary>Milliseconds the check's ListBuckets took, connection and signing included (as Test-Connection's Latency).</summary>
    public long LatencyMs { get; set; }
    public int BucketCount => Buckets.Count;
    /// <summary>The buckets the keys can list (name and creation date; Test-CloudConnector -ListBuckets adds location and counts).</summary>
    public IReadOnlyList<CloudBucket> Buckets { get; set; } = [];

    public override string ToString() =>
        $"{Connector} ({Endpoint}): reachable, authenticated, {BucketCount} bucket(s), {LatencyMs} ms";
}

public static class ConnectorCheck
{
    /// <summary>One ListBuckets, timed: proves the endpoint answers and accepts the keys, and says which buckets they see.</summary>
    public static async Task<CloudConnectorTestResult> RunAsync(ConnectorAccess access, TimeSpan timeout, CancellationToken ct)
    {
        using var store = MigrationEngine.OpenObjectStore(access, timeout: timeout);
        var clock = Stopwatch.StartNew();
        var buckets = await store.ListBucketsAsync(ct).ConfigureAwait(false);
        clock.Stop();
        return new CloudConnectorTestResult
        {
            Connector = access.Connector.Name,
            Endpoint = access.Connector.Endpoint,
            Reachable = true,
            Authenticated = true,
            LatencyMs = clock.ElapsedMilliseconds,
            Buckets = buckets.Select(b => new CloudBucket { Connector = access.Connector.Name, Name = b.Name, CreationDate = b.CreationDate }).ToList(),
        };
    }
}
