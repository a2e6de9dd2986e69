namespace ObjectMigration.Engine.Storage;

/// <summary>
/// A stream that is only read, once, front to back (a body on its way from a GET to a PUT): the members a Stream must
/// have that such a stream refuses, in one place. Position is the count of bytes read so far.
/// </summary>
internal abstract class ForwardReadStream : Stream
{
    /// <summary>Bytes read so far; subclasses add to it as they read.</summary>
    protected long BytesReadSoFar;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => BytesReadSoFar; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
}
