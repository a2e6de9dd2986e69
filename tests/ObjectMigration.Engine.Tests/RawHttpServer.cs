using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ObjectMigration.Engine.Tests;

/// <summary>A request as read off the wire by <see cref="RawHttpServer"/>: the request line's target as sent.</summary>
internal sealed record RawRequest(string Method, string Target, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>
/// An HTTP/1.1 listener on 127.0.0.1 that answers each request with whatever its handler writes to the connection, then
/// closes it: for answers no S3 server gives (bodies without end) and for a forward proxy that asks for credentials.
/// </summary>
internal sealed class RawHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<RawRequest, Stream, CancellationToken, Task> _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public RawHttpServer(Func<RawRequest, Stream, CancellationToken, Task> handler)
    {
        _handler = handler;
        _listener.Start();
        Endpoint = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _accepting = AcceptAsync();
    }

    public string Endpoint { get; }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var request = await ReadRequestAsync(stream, _stop.Token);
                if (request is not null) await _handler(request, stream, _stop.Token);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The client went away: nothing to answer.
            }
        }
    }

    /// <summary>The head up to the blank line, then a Content-Length body.</summary>
    public static async Task<RawRequest?> ReadRequestAsync(Stream stream, CancellationToken ct)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || head[^4] != '\r' || head[^3] != '\n' || head[^2] != '\r' || head[^1] != '\n')
        {
            if (await stream.ReadAsync(one, ct) == 0) return null;
            head.Add(one[0]);
        }
        var lines = Encoding.ASCII.GetString(head.ToArray()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var requestLine = lines[0].Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        var body = new byte[headers.TryGetValue("Content-Length", out var length) ? int.Parse(length) : 0];
        await stream.ReadExactlyAsync(body, ct);
        return new RawRequest(requestLine[0], requestLine[1], headers, body);
    }

    public static Task WriteHeadAsync(Stream stream, int status, string reason, long contentLength, CancellationToken ct, params string[] headers)
    {
        var head = new StringBuilder($"HTTP/1.1 {status} {reason}\r\nContent-Length: {contentLength}\r\nConnection: close\r\n");
        foreach (var header in headers) head.Append(header).Append("\r\n");
        head.Append("\r\n");
        return stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), ct).AsTask();
    }

    /// <summary>
    /// Answers with <paramref name="prefix"/> and then spaces, announced as <paramref name="announced"/> bytes, until the
    /// client stops reading; returns how many bytes went out.
    /// </summary>
    public static async Task<long> WriteEndlessBodyAsync(Stream stream, int status, string prefix, long announced, CancellationToken ct)
    {
        await WriteHeadAsync(stream, status, "Answer", announced, ct, "Content-Type: application/xml");
        var first = Encoding.UTF8.GetBytes(prefix);
        await stream.WriteAsync(first, ct);
        long sent = first.Length;
        var padding = new byte[64 * 1024];
        Array.Fill(padding, (byte)' ');
        try
        {
            while (sent < announced)
            {
                var n = (int)Math.Min(padding.Length, announced - sent);
                await stream.WriteAsync(padding.AsMemory(0, n), ct);
                sent += n;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The client closed the connection: it stopped reading.
        }
        return sent;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}

/// <summary>
/// A forward proxy for plain-http requests that wants Basic credentials: without them (or with others) it answers 407
/// with a challenge, with them it forwards the request (without Proxy-Authorization) and streams the answer back.
/// </summary>
internal sealed class AuthenticatingProxy : IAsyncDisposable
{
    private readonly RawHttpServer _server;
    private readonly string _expected;
    private int _refused, _forwarded;

    public AuthenticatingProxy(string userName, string password)
    {
        _expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{userName}:{password}"));
        _server = new RawHttpServer(HandleAsync);
    }

    public string Endpoint => _server.Endpoint;
    public int Refused => Volatile.Read(ref _refused);
    public int Forwarded => Volatile.Read(ref _forwarded);
    /// <summary>Whether any request forwarded upstream still carried a Proxy-Authorization header.</summary>
    public bool LeakedUpstream { get; private set; }

    private async Task HandleAsync(RawRequest request, Stream client, CancellationToken ct)
    {
        if (request.Header("Proxy-Authorization") != _expected)
        {
            Interlocked.Increment(ref _refused);
            await RawHttpServer.WriteHeadAsync(client, 407, "Proxy Authentication Required", 0, ct, "Proxy-Authenticate: Basic realm=\"om-test\"");
            return;
        }
        Interlocked.Increment(ref _forwarded);
        // Absolute form (http://host:port/path?query) as a client sends it to a proxy; the path and query go on as sent.
        var target = new Uri(request.Target);
        var afterAuthority = request.Target.IndexOf('/', "http://".Length);
        var originForm = afterAuthority < 0 ? "/" : request.Target[afterAuthority..];
        using var upstream = new TcpClient();
        await upstream.ConnectAsync(target.Host, target.Port, ct);
        var upstreamStream = upstream.GetStream();
        var head = new StringBuilder($"{request.Method} {originForm} HTTP/1.1\r\n");
        foreach (var (name, value) in request.Headers)
        {
            if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase) || name.StartsWith("Proxy-", StringComparison.OrdinalIgnoreCase)) continue;
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }
        head.Append("Connection: close\r\n\r\n");
        LeakedUpstream |= head.ToString().Contains("Proxy-Authorization", StringComparison.OrdinalIgnoreCase);
        await upstreamStream.WriteAsync(Encoding.UTF8.GetBytes(head.ToString()), ct);
        await upstreamStream.WriteAsync(request.Body, ct);
        await upstreamStream.CopyToAsync(client, ct);
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
