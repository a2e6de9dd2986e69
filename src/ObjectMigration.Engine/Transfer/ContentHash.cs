using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

/// <summary>Reads an object once, streaming, under the job's bandwidth cap, and returns the MD5 of its bytes (Verify -Deep).</summary>
internal static class ContentHash
{
    public static async Task<(string Md5Hex, long Size)> Md5Async(IObjectStore store, string bucket, string key, string? ifMatch, BandwidthLimiter? limiter, CancellationToken ct)
    {
        using var download = await store.GetAsync(bucket, key, null, null, ifMatch, ct).ConfigureAwait(false);
        using var body = new HashingReadStream(download.Body, limiter, ct);
        await body.CopyToAsync(Stream.Null, 1 << 16, ct).ConfigureAwait(false);
        if (body.BytesRead != download.Head.Size)
        {
            throw new StorageException(ErrorClass.Integrity, $"Read {body.BytesRead} of {download.Head.Size} bytes of '{key}': the download was cut short.");
        }
        return (body.Md5Hex()!, body.BytesRead);
    }
}
