using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace ObjectMigration.Bench;

/// <summary>What a relay emulates; changed at run time through the control lines, read by every chunk as it passes.</summary>
internal sealed class LinkSettings
{
    /// <summary>Round trip in milliseconds; each direction holds every chunk for half of it.</summary>
    public volatile int RttMs;
    /// <summary>Bottleneck rate per direction in Mbit/s (10^6 bits); 0: none.</summary>
    public volatile int Mbit;
    /// <summary>
    /// Round trips a new connection waits before its first request byte leaves: 1 for TCP's handshake, 2 with TLS 1.3
    /// (the fixtures speak plain HTTP, real providers HTTPS), so opening a connection per request costs what it does on a WAN.
    /// </summary>
    public volatile int HandshakeRtts = 2;
    /// <summary>
    /// Emulated TCP window in bytes: a connection moves at most this much per round trip. The relay splits each
    /// connection in two loopback ones whose acknowledgements are instant, so it enforces the window itself, as bytes
    /// held in one direction's delay line (half the window per half round trip).
    /// </summary>
    public volatile int WindowBytes = 4 * 1024 * 1024;
}

/// <summary>
/// A user-space TCP relay that emulates a WAN link in front of a loopback server (kernel netem is not available): every
/// chunk read on one side is written on the other half a round trip later, by a delay line (each chunk stamped with its
/// due time, a queue per direction), so a long link still carries a full window of bytes at once; optionally a bottleneck
/// rate per direction, shared by all connections (a serialisation clock, like a router's queue). Not emulated: slow
/// start, loss, reordering. The bytes pass unchanged, so a SigV4 signature over the relay's host:port is verified by the
/// server against the Host header it receives, which is the relay's.
/// </summary>
internal sealed class LatencyRelay : IAsyncDisposable
{
    private const int ChunkBytes = 64 * 1024;
    private static readonly double TicksPerMs = Stopwatch.Frequency / 1000.0;
    private static readonly long BookAheadTicks = (long)(10 * TicksPerMs);

    private readonly TcpListener _listener;
    private readonly IPEndPoint _upstream;
    private readonly LinkSettings _settings;
    private readonly Bottleneck _up = new(), _down = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private long _connections, _active, _bytesUp, _bytesDown;

    public LatencyRelay(IPEndPoint listen, IPEndPoint upstream, LinkSettings settings)
    {
        _upstream = upstream;
        _settings = settings;
        _listener = new TcpListener(listen);
        _listener.Start(1024);
        _acceptLoop = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string Stats => $"connections {Interlocked.Read(ref _connections)} active {Interlocked.Read(ref _active)} up {Interlocked.Read(ref _bytesUp)} down {Interlocked.Read(ref _bytesDown)} " +
        string.Join(' ', Methods.Select((m, i) => $"{m} {Interlocked.Read(ref _requests[i])}"));

    private static readonly string[] Methods = ["GET", "PUT", "HEAD", "POST", "DELETE"];
    private static readonly byte[][] MethodPrefixes = Methods.Select(m => System.Text.Encoding.ASCII.GetBytes(m + " /")).ToArray();
    private readonly long[] _requests = new long[Methods.Length];

    /// <summary>
    /// Counts requests by method, from the chunks toward the server that start with one: a client writes each request's
    /// headers after the previous response (HTTP/1.1, no pipelining), so they begin a read. A heuristic, for what a tool
    /// asks per object; it never changes what passes.
    /// </summary>
    private void CountRequest(ReadOnlySpan<byte> chunk)
    {
        for (var i = 0; i < MethodPrefixes.Length; i++)
        {
            if (chunk.StartsWith(MethodPrefixes[i])) { Interlocked.Increment(ref _requests[i]); return; }
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException) { continue; }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        var accepted = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _connections);
        Interlocked.Increment(ref _active);
        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // Without NoDelay, Nagle and delayed acknowledgements on loopback add up to 40 ms a request of their own.
            client.NoDelay = true;
            server.NoDelay = true;
            await server.ConnectAsync(_upstream, _stop.Token);
            // The client sent its request when its loopback connect returned; on a WAN it leaves after the handshake.
            var firstByteAfter = accepted + (long)(_settings.HandshakeRtts * _settings.RttMs * TicksPerMs);
            var up = PumpAsync(client, server, _up, firstByteAfter, isUp: true);
            var down = PumpAsync(server, client, _down, 0, isUp: false);
            await Task.WhenAll(up, down);
        }
        catch (Exception)
        {
            // A reset on either side ends both: closing the sockets passes it on.
        }
        finally
        {
            client.Dispose();
            server.Dispose();
            Interlocked.Decrement(ref _active);
        }
    }

    private readonly record struct Chunk(byte[]? Buffer, int Length, long Due);

    /// <summary>One direction: a reader that stamps each chunk with its due time and a writer that sends it then.</summary>
    private async Task PumpAsync(Socket from, Socket to, Bottleneck bottleneck, long firstByteAfter, bool isUp)
    {
        // The writer goes on in the reader's thread when a chunk arrives, and in the delay line's thread when one is due:
        // no hop to another thread per chunk, which on a busy 2-core machine costs more than the relaying itself.
        var line = Channel.CreateUnbounded<Chunk>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true, AllowSynchronousContinuations = true });
        var window = new ByteGate(Math.Max(ChunkBytes, _settings.WindowBytes / 2));
        var writer = WriteAsync(to, line.Reader, window, isUp);
        try
        {
            while (true)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
                int read;
                try { read = await from.ReceiveAsync(buffer.AsMemory(0, ChunkBytes), SocketFlags.None, _stop.Token); }
                catch { ArrayPool<byte>.Shared.Return(buffer); throw; }
                QuickAck(from);
                if (read == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    line.Writer.TryWrite(new Chunk(null, 0, Departure(Stopwatch.GetTimestamp(), firstByteAfter) + HalfRtt()));
                    break;
                }
                if (isUp) CountRequest(buffer.AsSpan(0, read));
                await window.WaitAsync(read);
                var departure = Departure(Stopwatch.GetTimestamp(), firstByteAfter);
                var mbit = _settings.Mbit;
                if (mbit > 0) departure = bottleneck.Reserve(departure, read, mbit);
                line.Writer.TryWrite(new Chunk(buffer, read, departure + HalfRtt()));
                // Behind a bottleneck the next read waits until this chunk has nearly left it: the sender feels the rate,
                // and the link stays booked through a timer firing late (waiting for the exact departure would idle the
                // link for each timer's lateness, 1-2 ms a 2.6 ms chunk at 200 Mbit/s).
                if (mbit > 0) await WaitUntilAsync(departure - BookAheadTicks);
            }
        }
        catch (Exception)
        {
            to.Dispose();
            from.Dispose();
            throw;
        }
        finally
        {
            line.Writer.TryComplete();
            await writer;
        }
    }

    private async Task WriteAsync(Socket to, ChannelReader<Chunk> line, ByteGate window, bool isUp)
    {
        try
        {
            await foreach (var chunk in line.ReadAllAsync())
            {
                await WaitUntilAsync(chunk.Due);
                if (chunk.Buffer is null)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }
                try
                {
                    for (var sent = 0; sent < chunk.Length;) sent += await to.SendAsync(chunk.Buffer.AsMemory(sent, chunk.Length - sent), SocketFlags.None);
                    QuickAck(to);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(chunk.Buffer);
                }
                if (isUp) Interlocked.Add(ref _bytesUp, chunk.Length); else Interlocked.Add(ref _bytesDown, chunk.Length);
                window.Release(chunk.Length);
            }
        }
        catch (Exception)
        {
            // The other side went away: drop what is queued; the reader sees its socket closed.
            to.Dispose();
            while (line.TryRead(out var chunk)) if (chunk.Buffer is not null) ArrayPool<byte>.Shared.Return(chunk.Buffer);
        }
    }

    /// <summary>
    /// Acknowledges what arrived at once and leaves Linux's delayed-ACK ("ping-pong") mode, which a socket enters again
    /// whenever it sends soon after receiving, so it is set after every receive and send. Why: Ceph RGW writes a
    /// response's headers and body in two writes with Nagle on, so the body waits for the headers' ACK, which a receiver
    /// in ping-pong mode delays by 40 ms: on loopback a warm connection's 16 KiB GET takes ~45 ms, a fresh one's ~5 ms.
    /// A provider across a WAN has no such stall, and it would make reusing connections look worse than opening them.
    /// </summary>
    private static void QuickAck(Socket socket)
    {
        if (!OperatingSystem.IsLinux()) return;
        try { socket.SetRawSocketOption(IpProtoTcp, TcpQuickAck, QuickAckOn); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    private const int IpProtoTcp = 6, TcpQuickAck = 12;
    private static readonly byte[] QuickAckOn = BitConverter.GetBytes(1);

    private static long Departure(long now, long firstByteAfter) => Math.Max(now, firstByteAfter);

    private long HalfRtt() => (long)(_settings.RttMs * TicksPerMs / 2);

    private static Task WaitUntilAsync(long due) => DelayLine.Shared.WhenDue(due);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _acceptLoop;
    }

    /// <summary>
    /// The clock of every wait in the process: one thread that sleeps until the earliest due time and then completes the
    /// waits that are due, running their continuations (a send, usually done at once) on itself. A timer per chunk would
    /// cost a timer thread's wake-up and a thread-pool hop each, and fire 1-3 ms late on a busy machine.
    /// </summary>
    private sealed class DelayLine
    {
        public static readonly DelayLine Shared = new();
        private static readonly long Tolerance = (long)(TicksPerMs / 4);
        private readonly object _gate = new();
        private readonly PriorityQueue<TaskCompletionSource, long> _waits = new();
        private double _oversleepMs = 0.2;

        private DelayLine()
        {
            new Thread(Run) { IsBackground = true, Name = "relay delay line" }.Start();
        }

        public Task WhenDue(long due)
        {
            if (due - Stopwatch.GetTimestamp() <= Tolerance) return Task.CompletedTask;
            // Continuations run on the delay line's thread when it completes this.
            var wait = new TaskCompletionSource();
            lock (_gate)
            {
                _waits.Enqueue(wait, due);
                if (_waits.TryPeek(out var first, out _) && first == wait) Monitor.Pulse(_gate);
            }
            return wait.Task;
        }

        private void Run()
        {
            var due = new List<TaskCompletionSource>();
            while (true)
            {
                lock (_gate)
                {
                    while (true)
                    {
                        // A sleep ends late by about the same each time (more on a busy machine): the line sleeps that
                        // much less, and what is due within it goes now (early by that at most, rather than spinning).
                        var now = Stopwatch.GetTimestamp();
                        var horizon = Tolerance + (long)(_oversleepMs * TicksPerMs);
                        while (_waits.TryPeek(out _, out var at) && at - now <= horizon) due.Add(_waits.Dequeue());
                        if (due.Count > 0) break;
                        if (!_waits.TryPeek(out _, out var next)) { Monitor.Wait(_gate); continue; }
                        var sleep = Math.Max(1, (int)Math.Round((next - now) / TicksPerMs - _oversleepMs));
                        var asleep = Stopwatch.GetTimestamp();
                        if (Monitor.Wait(_gate, sleep)) continue;
                        var over = (Stopwatch.GetTimestamp() - asleep) / TicksPerMs - sleep;
                        _oversleepMs = Math.Clamp(_oversleepMs + 0.05 * (over - _oversleepMs), 0, 3);
                    }
                }
                foreach (var wait in due) wait.SetResult();
                due.Clear();
            }
        }
    }

    /// <summary>A link's bottleneck: one clock of when the link is next free, shared by every connection in that direction.</summary>
    private sealed class Bottleneck
    {
        private readonly Lock _gate = new();
        private long _nextFree;

        /// <summary>Books <paramref name="bytes"/> on the link from <paramref name="ready"/> on; returns when its last byte has left.</summary>
        public long Reserve(long ready, int bytes, int mbit)
        {
            var duration = (long)(bytes * 8.0 / (mbit * 1e6) * Stopwatch.Frequency);
            lock (_gate)
            {
                var start = Math.Max(ready, _nextFree);
                _nextFree = start + duration;
                return _nextFree;
            }
        }
    }

    /// <summary>Bytes one direction may hold in its delay line; the reader waits (a single waiter) for the writer to free them.</summary>
    private sealed class ByteGate(int capacity)
    {
        private readonly Lock _gate = new();
        private long _available = capacity;
        private int _wanted;
        private TaskCompletionSource? _waiter;

        public Task WaitAsync(int bytes)
        {
            lock (_gate)
            {
                if (_available >= bytes) { _available -= bytes; return Task.CompletedTask; }
                _wanted = bytes;
                _waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return _waiter.Task;
            }
        }

        public void Release(int bytes)
        {
            TaskCompletionSource? ready = null;
            lock (_gate)
            {
                _available += bytes;
                if (_waiter is not null && _available >= _wanted)
                {
                    _available -= _wanted;
                    ready = _waiter;
                    _waiter = null;
                }
            }
            ready?.SetResult();
        }
    }

    /// <summary>
    /// The relay command: relay --upstream HOST:PORT [--upstream ...] [--listen 127.0.0.1] [--rtt-ms N] [--mbit N]
    /// [--handshake-rtts N] [--window-kib N]. Prints "PORTS p1 p2 ..." (one relay per upstream, same settings, each its
    /// own bottleneck), then reads control lines on stdin and answers each with one line: "set rtt-ms|mbit|handshake-rtts|window-kib N",
    /// "stats" (per relay, and the process's CPU seconds), "quit". Ends at quit or when stdin closes.
    /// </summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var settings = new LinkSettings();
        var upstreams = new List<IPEndPoint>();
        var listen = IPAddress.Loopback;
        for (var i = 1; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--upstream": upstreams.Add(IPEndPoint.Parse(value)); break;
                case "--listen": listen = IPAddress.Parse(value.Split(':')[0]); break;
                default: Apply(settings, args[i].TrimStart('-'), value); break;
            }
            i++;
        }
        if (upstreams.Count == 0) throw new ArgumentException("relay needs --upstream HOST:PORT (the server to relay to).");
        var relays = upstreams.Select(u => new LatencyRelay(new IPEndPoint(listen, 0), u, settings)).ToList();
        Console.WriteLine("PORTS " + string.Join(' ', relays.Select(r => r.Port)));
        try
        {
            while (await Console.In.ReadLineAsync() is { } line)
            {
                var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (words.Length == 0) continue;
                if (words[0] == "quit") break;
                try
                {
                    if (words[0] == "set" && words.Length == 3) Apply(settings, words[1], words[2]);
                    else if (words[0] != "stats") throw new ArgumentException($"unknown command '{line}'");
                    var cpu = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
                    Console.WriteLine($"OK rtt-ms {settings.RttMs} mbit {settings.Mbit} handshake-rtts {settings.HandshakeRtts} window-kib {settings.WindowBytes / 1024} cpu {cpu:F3} | " +
                        string.Join(" | ", relays.Select(r => r.Stats)));
                }
                catch (Exception e) when (e is ArgumentException or FormatException)
                {
                    Console.WriteLine("ERROR " + e.Message);
                }
            }
        }
        finally
        {
            foreach (var relay in relays) await relay.DisposeAsync();
        }
        return 0;
    }

    private static void Apply(LinkSettings settings, string name, string value)
    {
        var number = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
        if (number < 0) throw new ArgumentException($"{name} must be 0 or more, not {number}.");
        switch (name)
        {
            case "rtt-ms": settings.RttMs = number; break;
            case "mbit": settings.Mbit = number; break;
            case "handshake-rtts": settings.HandshakeRtts = number; break;
            case "window-kib": settings.WindowBytes = Math.Max(ChunkBytes, number * 1024); break;
            default: throw new ArgumentException($"unknown relay setting '{name}': rtt-ms, mbit, handshake-rtts or window-kib.");
        }
    }
}
