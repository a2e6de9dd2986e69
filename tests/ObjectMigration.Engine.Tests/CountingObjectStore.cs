using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// Passes every call to a real store and counts the upload calls, to prove what a resume did not redo, and the body
/// bytes the HTTP client took for uploads (PUTs and parts): what is on its way to the target.
/// </summary>
internal class CountingObjectStore(IObjectStore inner) : IObjectStore
{
    private int _partsUploaded;
    private int _uploadsStarted;

    private long _sent;

    public int PartsUploaded => _partsUploaded;
    public long BytesSent => Interlocked.Read(ref _sent);
    public int UploadsStarted => _uploadsStarted;

    public string ServerSideCopyKey => inner.ServerSideCopyKey;
    public Connectors.ProviderProfile Profile => inner.Profile;

    public event Action<string>? Notice
    {
        add => inner.Notice += value;
        remove => inner.Notice -= value;
    }

    public Task<string?> GetTaggingAsync(string bucket, string key, CancellationToken ct) => inner.GetTaggingAsync(bucket, key, ct);
    public Task PutTaggingAsync(string bucket, string key, string tagging, CancellationToken ct) => inner.PutTaggingAsync(bucket, key, tagging, ct);
    public void Dispose() => inner.Dispose();
    public Task<IReadOnlyList<BucketInfo>> ListBucketsAsync(CancellationToken ct) => inner.ListBucketsAsync(ct);
    public Task<string?> GetBucketLocationAsync(string bucket, CancellationToken ct) => inner.GetBucketLocationAsync(bucket, ct);
    public Task<bool> BucketExistsAsync(string bucket, CancellationToken ct) => inner.BucketExistsAsync(bucket, ct);
    public virtual Task<ObjectListing> ListAsync(string bucket, string prefix, string? token, string? startAfter, int pageSize, CancellationToken ct) => inner.ListAsync(bucket, prefix, token, startAfter, pageSize, ct);
    public Task<ObjectHead?> HeadAsync(string bucket, string key, CancellationToken ct) => inner.HeadAsync(bucket, key, ct);
    public Task<ObjectDownload> GetAsync(string bucket, string key, long? start, long? end, string? ifMatch, CancellationToken ct) => inner.GetAsync(bucket, key, start, end, ifMatch, ct);
    public Task<StoredETag> PutAsync(string bucket, string key, Stream body, long length, ObjectMetadata metadata, PayloadChecks md5, CancellationToken ct) =>
        inner.PutAsync(bucket, key, new Counting(body, this), length, metadata, md5, ct);

    public Task<string> StartMultipartAsync(string bucket, string key, ObjectMetadata metadata, CancellationToken ct)
    {
        Interlocked.Increment(ref _uploadsStarted);
        return inner.StartMultipartAsync(bucket, key, metadata, ct);
    }

    public Task<StoredETag> UploadPartAsync(string bucket, string key, string uploadId, int part, Stream body, long length, PayloadChecks md5, CancellationToken ct)
    {
        Interlocked.Increment(ref _partsUploaded);
        return inner.UploadPartAsync(bucket, key, uploadId, part, new Counting(body, this), length, md5, ct);
    }

    public Task<StoredETag> CompleteMultipartAsync(string bucket, string key, string uploadId, IReadOnlyList<(int PartNumber, string ETag)> parts, CancellationToken ct) =>
        inner.CompleteMultipartAsync(bucket, key, uploadId, parts, ct);

    public Task AbortMultipartAsync(string bucket, string key, string uploadId, CancellationToken ct) => inner.AbortMultipartAsync(bucket, key, uploadId, ct);
    public DateTimeOffset ServerNow => inner.ServerNow;
    public Task<IReadOnlyList<OpenMultipartUpload>> ListUploadsAsync(string bucket, string key, CancellationToken ct) => inner.ListUploadsAsync(bucket, key, ct);
    public Task<StoredETag> CopyAsync(string sb, string sk, string tb, string tk, string? ifMatch, string? storageClass, CancellationToken ct) =>
        inner.CopyAsync(sb, sk, tb, tk, ifMatch, storageClass, ct);

    public Task<StoredETag> RewriteInPlaceAsync(string bucket, string key, ObjectMetadata headers, string? ifMatch, CancellationToken ct) =>
        inner.RewriteInPlaceAsync(bucket, key, headers, ifMatch, ct);

    public Task<StoredETag> UploadPartCopyAsync(string sb, string sk, string tb, string tk, string uploadId, int part, long first, long last, string? ifMatch, CancellationToken ct)
    {
        Interlocked.Increment(ref _partsUploaded);
        return inner.UploadPartCopyAsync(sb, sk, tb, tk, uploadId, part, first, last, ifMatch, ct);
    }

    private sealed class Counting(Stream body, CountingObjectStore owner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => body.Length;
        public override long Position { get => body.Position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count) => Counted(body.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
            Counted(await body.ReadAsync(buffer, ct).ConfigureAwait(false));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        private int Counted(int n)
        {
            Interlocked.Add(ref owner._sent, n);
            return n;
        }
    }
}
