using System.Security.Cryptography;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// Wraps a download body: counts, MD5-hashes (when asked) and checksums (with the source's own algorithm, when it
/// stored one) bytes as the upload reads them, and throttles through the job's bandwidth limiter, so content is
/// verified without a second pass or a buffer of the whole object. <paramref name="onRead"/> hears of each chunk as it
/// goes up, so progress counts bytes while they move.
/// </summary>
internal sealed class HashingReadStream(Stream inner, BandwidthLimiter? limiter, CancellationToken cancellationToken, bool hash = true, string? checksumAlgorithm = null,
    Action<int>? onRead = null) : ForwardReadStream
{
    private readonly IncrementalHash? _md5 = hash ? IncrementalHash.CreateHash(HashAlgorithmName.MD5) : null;
    private readonly ContentChecksum? _checksum = ContentChecksum.Create(checksumAlgorithm);

    public long BytesRead => BytesReadSoFar;

    public string? Md5Hex() => _md5 is null ? null : Convert.ToHexString(_md5.GetHashAndReset()).ToLowerInvariant();

    /// <summary>The checksum of the bytes read, as S3 writes it (base64), or null when none was asked for.</summary>
    public string? ChecksumBase64() => _checksum?.ToBase64();


    // Bytes are told of once the bandwidth cap let them through: told before its wait, every transfer held there would
    // count one chunk ahead, so the rate shown ran above -MaxBytesPerSecond and each step up of the level read as a gain.
    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        Account(buffer[..n]);
        limiter?.Consume(n, cancellationToken);
        Passed(n);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken token = default)
    {
        var n = await inner.ReadAsync(buffer, token).ConfigureAwait(false);
        Account(buffer.Span[..n]);
        if (limiter is not null) await limiter.ConsumeAsync(n, token).ConfigureAwait(false);
        Passed(n);
        return n;
    }

    private void Account(ReadOnlySpan<byte> data)
    {
        _md5?.AppendData(data);
        _checksum?.Append(data);
    }

    /// <summary>Counted (and told) together, so a failed attempt takes back exactly the bytes it was counted for.</summary>
    private void Passed(int n)
    {
        if (n == 0) return;
        BytesReadSoFar += n;
        onRead?.Invoke(n);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _md5?.Dispose();
            _checksum?.Dispose();
        }
        base.Dispose(disposing);
    }
}
