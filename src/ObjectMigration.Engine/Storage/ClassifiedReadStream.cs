namespace ObjectMigration.Engine.Storage;

/// <summary>
/// A download body whose read failures (reset, cut-off connection) surface as retryable StorageExceptions, so the
/// bytes of a GET are classified like its headers were: in the storage layer, once.
/// </summary>
internal sealed class ClassifiedReadStream(Stream inner, string describe) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private StorageException Broken(Exception e) =>
        new(ErrorClass.Retryable, $"Reading the body from {describe} failed: the connection broke ({e.GetBaseException().Message}).", e);

    public override int Read(byte[] buffer, int offset, int count)
    {
        try { return inner.Read(buffer, offset, count); }
        catch (Exception e) when (e is IOException or HttpRequestException) { throw Broken(e); }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try { return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (e is IOException or HttpRequestException) { throw Broken(e); }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
