using System.Diagnostics;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// -MaxBytesPerSecond as the rate and the adaptive level see it: bytes count as moved once the cap let them through, so
/// many transfers waiting at the cap do not read as bytes ahead of it. Needs no S3 endpoint.
/// </summary>
[Collection(TimedResponseCollection.Name)]
public sealed class BandwidthCapTests
{
    [Fact]
    public async Task Bytes_count_once_the_cap_lets_them_through_not_while_transfers_wait_at_it()
    {
        const int cap = 256 * 1024;
        const int chunk = 64 * 1024;
        const int readers = 8;
        var limiter = new BandwidthLimiter(cap);
        long told = 0;
        var clock = Stopwatch.StartNew();
        var reads = Enumerable.Range(0, readers).Select(i => Task.Run(async () =>
        {
            using var body = new HashingReadStream(new MemoryStream(new byte[2 * chunk]), limiter, CancellationToken.None,
                onRead: n => Interlocked.Add(ref told, n));
            var buffer = new byte[chunk];
            while (await body.ReadAsync(buffer) > 0) { }
            return body.BytesRead;
        })).ToArray();

        // What the cap allows by a moment: a second's burst, then the rate. Read first, timed after: the bound only grows.
        // Counted before the cap's wait, the eight transfers held there read eight chunks (512 KiB) ahead.
        var samples = new List<(long Told, double Seconds)>();
        while (!Task.WhenAll(reads).IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(2))
        {
            var now = Interlocked.Read(ref told);
            samples.Add((now, clock.Elapsed.TotalSeconds));
            await Task.Delay(50);
        }
        var sizes = await Task.WhenAll(reads);

        Assert.NotEmpty(samples);
        foreach (var (bytes, seconds) in samples)
        {
            Assert.True(bytes <= cap * (1 + seconds) + chunk, $"{bytes:N0} bytes counted after {seconds:N2} s under a cap of {cap:N0} B/s");
        }
        Assert.All(sizes, size => Assert.Equal(2L * chunk, size));
        Assert.Equal(2L * chunk * readers, Interlocked.Read(ref told));
    }
}
