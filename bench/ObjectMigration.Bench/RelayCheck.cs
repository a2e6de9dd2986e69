using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Amazon.S3;
using Amazon.S3.Model;

namespace ObjectMigration.Bench;

/// <summary>
/// What the latency relay itself costs and how closely it keeps its settings. relay-cost: an echo server and a relay in
/// this process, nothing else on the path. relay-probe: a running relay process against the S3 server behind it.
/// Both print "CHECK name value" lines (ms, Mbit/s, MB/s).
/// </summary>
internal static class RelayCheck
{
    private const int RequestBytes = 300, SmallResponse = 16 * 1024;

    /// <summary>
    /// relay-cost [PINGS]: request/response round trips of 300 B / 16 KiB on one warm connection, direct and through the
    /// relay at RTT 0 (what the relay adds), at RTT 20 and 50 (the measured round trip less the setting), and one
    /// connection's bulk rate at RTT 0 (the relay's ceiling) and at 100 ms behind 200 Mbit/s (the delay line keeps the
    /// link full).
    /// </summary>
    public static async Task<int> CostAsync(string[] args)
    {
        var pings = args.Length > 1 ? int.Parse(args[1]) : 2000;
        using var echo = new TcpListener(IPAddress.Loopback, 0);
        echo.Start();
        _ = ServeEchoAsync(echo);
        var settings = new LinkSettings { HandshakeRtts = 0 };
        await using var relay = new LatencyRelay(new IPEndPoint(IPAddress.Loopback, 0), (IPEndPoint)echo.LocalEndpoint, settings);
        var echoPort = ((IPEndPoint)echo.LocalEndpoint).Port;

        var direct = await PingAsync(echoPort, pings);
        var relayed = await PingAsync(relay.Port, pings);
        Print("rtt0-direct-median-ms", Percentile(direct, 0.5));
        Print("rtt0-relayed-median-ms", Percentile(relayed, 0.5));
        Print("rtt0-added-median-ms", Percentile(relayed, 0.5) - Percentile(direct, 0.5));
        Print("rtt0-added-p90-ms", Percentile(relayed, 0.9) - Percentile(direct, 0.9));
        foreach (var rtt in new[] { 20, 50 })
        {
            settings.RttMs = rtt;
            var measured = await PingAsync(relay.Port, 50);
            Print($"rtt{rtt}-error-median-ms", Percentile(measured, 0.5) - rtt);
            Print($"rtt{rtt}-error-p90-ms", Percentile(measured, 0.9) - rtt);
        }
        // A new connection's first exchange: the emulated handshake (2 round trips, TCP + TLS 1.3) and the request's own.
        settings.HandshakeRtts = 2;
        var fresh = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var watch = Stopwatch.StartNew();
            using var socket = await ConnectAsync(relay.Port);
            await ExchangeAsync(socket, SmallResponse, new byte[64 * 1024]);
            fresh.Add(watch.Elapsed.TotalMilliseconds);
        }
        Print("rtt50-new-connection-median-ms", Percentile(fresh, 0.5));
        settings.HandshakeRtts = 0;
        settings.RttMs = 0;
        Print("rtt0-bulk-mbyte-per-s", await BulkAsync(relay.Port, 1024L * 1024 * 1024) / 8);
        settings.RttMs = 100;
        settings.Mbit = 200;
        Print("rtt100-cap200-bulk-mbit", await BulkAsync(relay.Port, 256L * 1024 * 1024));
        return 0;
    }

    private static async Task ServeEchoAsync(TcpListener listener)
    {
        while (true)
        {
            Socket socket;
            try { socket = await listener.AcceptSocketAsync(); } catch (Exception) { return; }
            _ = Task.Run(async () =>
            {
                using (socket)
                {
                    socket.NoDelay = true;
                    var request = new byte[RequestBytes];
                    var response = new byte[1024 * 1024];
                    try
                    {
                        while (true)
                        {
                            for (var got = 0; got < RequestBytes;)
                            {
                                var n = await socket.ReceiveAsync(request.AsMemory(got), SocketFlags.None);
                                if (n == 0) return;
                                got += n;
                            }
                            // The request names how many bytes to answer with; one write per MiB, like a server streaming a body.
                            for (var left = BitConverter.ToInt64(request, 0); left > 0;)
                            {
                                var n = (int)Math.Min(left, response.Length);
                                await socket.SendAsync(response.AsMemory(0, n), SocketFlags.None);
                                left -= n;
                            }
                        }
                    }
                    catch (SocketException) { }
                }
            });
        }
    }

    private static async Task<Socket> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return socket;
    }

    private static async Task ExchangeAsync(Socket socket, long responseBytes, byte[] buffer)
    {
        var request = new byte[RequestBytes];
        BitConverter.TryWriteBytes(request, responseBytes);
        await socket.SendAsync(request, SocketFlags.None);
        for (long got = 0; got < responseBytes;)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0) throw new IOException("The echo connection closed early.");
            got += n;
        }
    }

    private static async Task<List<double>> PingAsync(int port, int count)
    {
        using var socket = await ConnectAsync(port);
        var buffer = new byte[64 * 1024];
        await ExchangeAsync(socket, SmallResponse, buffer);
        var times = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var watch = Stopwatch.StartNew();
            await ExchangeAsync(socket, SmallResponse, buffer);
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        return times;
    }

    /// <summary>One response of <paramref name="bytes"/> on one connection; Mbit/s.</summary>
    private static async Task<double> BulkAsync(int port, long bytes)
    {
        using var socket = await ConnectAsync(port);
        var watch = Stopwatch.StartNew();
        await ExchangeAsync(socket, bytes, new byte[256 * 1024]);
        return bytes * 8 / 1e6 / watch.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// relay-probe DIRECT RELAYED KEY SECRET BUCKET SMALLKEY COUNT [LARGEKEY PUTMIB]: sequential GETs of one small object
    /// on a warm connection, directly and through the relay, and optionally one large GET and one PUT through the relay for
    /// a single connection's rate, with whatever settings the relay has now. (The SDK shares its HTTP clients between
    /// client objects, so a new connection is measured by relay-cost, not here.)
    /// </summary>
    public static async Task<int> ProbeAsync(string[] args)
    {
        var (direct, relayed, accessKey, secret, bucket, smallKey) = (args[1], args[2], args[3], args[4], args[5], args[6]);
        var count = int.Parse(args[7]);
        using (var directClient = S3Tools.Client(direct, accessKey, secret, 1))
        using (var relayedClient = S3Tools.Client(relayed, accessKey, secret, 1))
        {
            // One warm-up request each (the SDK's first-call setup, the pooled connection), then interleaved blocks so a
            // busy moment of the machine falls on both sides.
            await GetAsync(directClient, bucket, smallKey);
            await GetAsync(relayedClient, bucket, smallKey);
            var directMs = new List<double>();
            var relayedMs = new List<double>();
            for (var block = 0; block < 10; block++)
            {
                for (var i = 0; i < count / 10; i++) directMs.Add(await GetAsync(directClient, bucket, smallKey));
                for (var i = 0; i < count / 10; i++) relayedMs.Add(await GetAsync(relayedClient, bucket, smallKey));
            }
            Print("warm-direct-median-ms", Median(directMs));
            Print("warm-direct-p10-ms", Percentile(directMs, 0.1));
            Print("warm-direct-p90-ms", Percentile(directMs, 0.9));
            Print("warm-relayed-median-ms", Median(relayedMs));
            Print("warm-relayed-p10-ms", Percentile(relayedMs, 0.1));
            Print("warm-relayed-p90-ms", Percentile(relayedMs, 0.9));
            Print("warm-added-median-ms", Median(relayedMs) - Median(directMs));
        }

        if (args.Length > 9)
        {
            using var client = S3Tools.Client(relayed, accessKey, secret, 1);
            var watch = Stopwatch.StartNew();
            using (var response = await client.GetObjectAsync(bucket, args[8]))
            {
                await response.ResponseStream.CopyToAsync(Stream.Null);
                Print("get-mbit", response.ContentLength * 8 / 1e6 / watch.Elapsed.TotalSeconds);
            }
            var body = new byte[int.Parse(args[9]) * 1024 * 1024];
            Random.Shared.NextBytes(body);
            const string upKey = "relay-check/up.bin";
            watch.Restart();
            await client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = upKey, InputStream = new MemoryStream(body), UseChunkEncoding = false });
            Print("put-mbit", body.Length * 8 / 1e6 / watch.Elapsed.TotalSeconds);
            await client.DeleteObjectAsync(bucket, upKey);
        }
        return 0;
    }

    private static async Task<double> GetAsync(AmazonS3Client client, string bucket, string key)
    {
        var watch = Stopwatch.StartNew();
        using var response = await client.GetObjectAsync(bucket, key);
        await response.ResponseStream.CopyToAsync(Stream.Null);
        return watch.Elapsed.TotalMilliseconds;
    }

    private static double Median(List<double> values) => Percentile(values, 0.5);

    private static double Percentile(List<double> values, double fraction)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)(sorted.Count * fraction))];
    }

    private static void Print(string name, double value) => Console.WriteLine(FormattableString.Invariant($"CHECK {name} {value:F2}"));
}
