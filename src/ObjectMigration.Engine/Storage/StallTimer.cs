using System.Net;

namespace ObjectMigration.Engine.Storage;

/// <summary>
/// The no-progress timer of one request: armed while the request waits on the network (sending, waiting for the
/// answer, reading the body), reset by every chunk that moves, disarmed while the client itself is the slow side
/// (reading the source of an upload, waiting on the bandwidth limiter). A request fails when it fires, however long
/// the whole transfer takes.
/// </summary>
internal sealed class StallTimer : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly CancellationToken _caller;
    private readonly TimeSpan _limit;

    public StallTimer(TimeSpan limit, CancellationToken caller)
    {
        _limit = limit;
        _caller = caller;
        _source = CancellationTokenSource.CreateLinkedTokenSource(caller);
    }

    public CancellationToken Token => _source.Token;

    /// <summary>True when the timer (not the caller) cancelled.</summary>
    public bool Stalled => _source.IsCancellationRequested && !_caller.IsCancellationRequested;

    public void Arm()
    {
        try { _source.CancelAfter(_limit); }
        catch (ObjectDisposedException) { }
    }

    public void Disarm()
    {
        try { _source.CancelAfter(Timeout.InfiniteTimeSpan); }
        catch (ObjectDisposedException) { }
    }

    public StorageException Failure(Exception inner) =>
        new(ErrorClass.Timeout, $"No byte moved for {_limit.TotalSeconds:0} s (the no-progress timeout): the link or the server stalled.", inner);

    public void Dispose() => _source.Dispose();
}

/// <summary>
/// A response body read under its request's no-progress timer, with a size cap: failures (reset, cut-off connection,
/// stall) surface as retryable StorageExceptions, so the bytes of a response are classified like its headers were.
/// Disposing it releases the response and its timer.
/// </summary>
internal sealed class StallGuardedStream(Stream inner, StallTimer timer, long maxBytes = long.MaxValue, string? describe = null, IDisposable? owner = null) : ForwardReadStream
{


    private StorageException Broken(Exception e) =>
        new(ErrorClass.Retryable, $"Reading the body{(describe is null ? "" : " from " + describe)} failed: the connection broke ({e.GetBaseException().Message}).", e);

    public override int Read(Span<byte> buffer)
    {
        // The engine reads bodies asynchronously; a synchronous reader is served, timed, but cannot be cut off by the timer.
        timer.Arm();
        try { return Count(inner.Read(buffer)); }
        catch (Exception e) when (e is IOException or HttpRequestException) { throw Broken(e); }
        finally { timer.Disarm(); }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        timer.Arm();
        using var linked = cancellationToken.CanBeCanceled && cancellationToken != timer.Token
            ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token) : null;
        try
        {
            return Count(await inner.ReadAsync(buffer, linked?.Token ?? timer.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException e) when (timer.Stalled && !cancellationToken.IsCancellationRequested)
        {
            throw timer.Failure(e);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw Broken(e);
        }
        finally
        {
            timer.Disarm();
        }
    }

    private int Count(int n)
    {
        BytesReadSoFar += n;
        if (BytesReadSoFar > maxBytes) throw new StorageException(ErrorClass.InvalidRequest, $"The server's answer is larger than {maxBytes} bytes; it is not read further.");
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            owner?.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>
/// A request body read once from a stream the caller owns: unlike StreamContent it never disposes or seeks it, so the
/// caller can still read the hash it took on the way. Reading the source does not count against the upload's
/// no-progress timer (the source has its own); every chunk written resets it.
/// </summary>
internal sealed class BorrowedStreamContent(Stream body, StallTimer timer) : HttpContent
{
    private const int BufferSize = 64 * 1024;
    // Written in slices, each resetting the timer: a link slower than a whole buffer per timeout still moves.
    private const int SliceSize = 8 * 1024;

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                timer.Disarm();
                var read = await body.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false);
                timer.Arm();
                if (read == 0) break;
                for (var offset = 0; offset < read; offset += SliceSize)
                {
                    await stream.WriteAsync(buffer.AsMemory(offset, Math.Min(SliceSize, read - offset)), cancellationToken).ConfigureAwait(false);
                    timer.Arm();
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
