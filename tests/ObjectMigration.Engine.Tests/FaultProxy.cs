using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace ObjectMigration.Engine.Tests;

public enum Fault
{
    /// <summary>HTTP 503 with an S3 SlowDown error body.</summary>
    SlowDown,
    /// <summary>The connection is dropped before any response.</summary>
    Reset,
    /// <summary>The response promises the full body and ends half way, the connection closed in order (FIN).</summary>
    TruncatedBody,
    /// <summary>HTTP 403 AccessDenied: credentials accepted, action refused.</summary>
    AccessDenied,
    /// <summary>The full body arrives, with one byte in the middle flipped: silent corruption on the wire.</summary>
    CorruptBody,
    /// <summary>No answer: the request waits, like one sent to a stalled server, until the client gives up or Release.</summary>
    Hang,
    /// <summary>HTTP 429 TooManyRequests (R2, MinIO throttling).</summary>
    TooManyRequests,
    /// <summary>HTTP 400 InvalidArgument: a request the server will never accept; not worth a retry.</summary>
    BadRequest,
    /// <summary>
    /// A slow link: the response body is sent in small pieces over <see cref="FaultProxy.TrickleDuration"/>, never pausing
    /// longer than <see cref="FaultProxy.TrickleMaxPause"/> (for a body of at least duration/pause bytes).
    /// </summary>
    Trickle,
    /// <summary>Headers and half the response body are sent, then nothing until the client gives up or Release (then the rest).</summary>
    Stall,
    /// <summary>Half the request body is read, then no more until the client gives up or Release (then it is forwarded whole).</summary>
    StallUpload,
    /// <summary>The request body reaches the server with one byte in the middle flipped: corruption on the way to the target.</summary>
    CorruptUpload,
    /// <summary>HTTP 500 InternalError: the server failed; worth a retry.</summary>
    InternalError,
    /// <summary>
    /// The connection is reset (TCP RST) in the middle of a body: after headers and half the response body, or, for a
    /// request that uploads a body (PUT object or part), after the proxy has read half of it.
    /// </summary>
    ResetMidBody,
    /// <summary>The response declares half its body's length in Content-Length and sends that much, well formed; the connection then closes.</summary>
    ShortContentLength,
    /// <summary>The response sends its whole body under a Content-Length that promises more; the connection then closes.</summary>
    LongContentLength,
}

/// <summary>
/// A reverse proxy on 127.0.0.1 in front of a real S3 endpoint that injects faults into chosen requests and, through
/// <see cref="Emulation"/>, behaves like a provider with quirks (regions, temporary credentials, SSE ETags,
/// checksums, GCS, clock skew, conditions, R2 parts). Everything else passes through unchanged, so the engine talks
/// real S3 through it. Started with <see cref="StartAsync(S3Endpoint)"/> it knows the upstream's keys: it signs the
/// requests it makes itself (a HEAD for a condition, a GET for a checksum) and signs anew, after checking the client's
/// signature, the requests it must change (a shifted clock, temporary keys the upstream does not know, a stripped header).
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private sealed record Rule(Func<HttpRequest, bool> Matches, Fault Fault, int Remaining, DateTime? Until = null);
    private sealed record RateRule(double Rate, Random Random, Fault[] Faults, Func<HttpRequest, bool> Matches);
    private sealed record Waiter(Func<HttpRequest, bool> Matches, TaskCompletionSource<ArrivedRequest> Arrived);

    private readonly WebApplication _app;
    private readonly string _upstreamBase;
    private readonly S3Endpoint? _keys;
    private readonly HttpClient _upstream = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, AutomaticDecompression = DecompressionMethods.None });
    private readonly ConcurrentQueue<Rule> _rules = new();
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<Fault, int> _served = new();
    private readonly ConcurrentDictionary<string, int> _servedByKind = new();
    private RateRule? _rate;
    private int _rateConsidered;
    // Completed by Release, then replaced: a Hang or Stall injected after a Release holds again until the next one.
    private TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Waiter> _waiters = [];
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<int, long>> _partSizes = new();

    public string Endpoint { get; }

    /// <summary>The provider this proxy pretends to be; all off by default.</summary>
    public ProviderEmulation Emulation { get; } = new();

    /// <summary>How long a <see cref="Fault.Trickle"/> body takes in all.</summary>
    public TimeSpan TrickleDuration { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest pause between two pieces of a <see cref="Fault.Trickle"/> body.</summary>
    public TimeSpan TrickleMaxPause { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Upload bodies are read whole before they go on, so one the client breaks off never reaches the server: S3 and
    /// Ceph discard a PUT whose body ends early, s3rver stores what arrived. Off by default (bodies stream through).
    /// </summary>
    public bool WholeUploadsOnly { get; set; }

    /// <summary>
    /// Raised on the request's own thread as it arrives, before faults and emulation are applied: a handler can change
    /// <see cref="Emulation"/> (rotate a token, move the clock) and that very request already sees the change.
    /// </summary>
    public event Action<HttpRequest>? RequestArrived;

    private FaultProxy(WebApplication app, string endpoint, string upstream, S3Endpoint? keys)
    {
        _app = app;
        Endpoint = endpoint;
        _upstreamBase = upstream.TrimEnd('/');
        _keys = keys;
    }

    public static Task<FaultProxy> StartAsync(string upstream) => StartAsync(upstream, null);

    /// <summary>A proxy in front of <paramref name="upstream"/> that knows its keys (see the class summary).</summary>
    public static Task<FaultProxy> StartAsync(S3Endpoint upstream) => StartAsync(upstream.Endpoint, upstream);

    private static async Task<FaultProxy> StartAsync(string upstream, S3Endpoint? keys)
    {
        KeepWorkersFree();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(o => o.Limits.MaxRequestBodySize = null);
        var app = builder.Build();
        FaultProxy? proxy = null;
        app.Run(context => proxy!.HandleAsync(context));
        await app.StartAsync();
        var address = app.Urls.First();
        proxy = new FaultProxy(app, address, upstream, keys);
        return proxy;
    }

    /// <summary>
    /// The proxy stands in for a remote server yet shares the engine's thread pool, two of whose threads the test host
    /// blocks for the whole run (vstest's message loop, xunit's runner). At the default minimum (the core count) hill
    /// climbing can leave no worker free until starvation adds one, up to a second later: the proxy then sends nothing
    /// and a 1 s no-progress timeout fires on a link that was meant to keep moving.
    /// </summary>
    private static void KeepWorkersFree()
    {
        const int Workers = 16;
        ThreadPool.GetMinThreads(out var workers, out var io);
        if (workers < Workers) ThreadPool.SetMinThreads(Workers, io);
    }

    /// <summary>The next <paramref name="count"/> requests that match get <paramref name="fault"/>; int.MaxValue means always.</summary>
    public void Inject(Fault fault, int count, Func<HttpRequest, bool> matches) => _rules.Enqueue(new Rule(matches, fault, count));

    /// <summary>Every request that matches gets <paramref name="fault"/> until <paramref name="duration"/> from now has passed: a storm that ends by itself.</summary>
    public void InjectFor(Fault fault, TimeSpan duration, Func<HttpRequest, bool> matches) =>
        _rules.Enqueue(new Rule(matches, fault, int.MaxValue, DateTime.UtcNow + duration));

    /// <summary>
    /// From now on each request that matches (every one when <paramref name="matches"/> is null) and that no
    /// <see cref="Inject"/> rule takes is faulted with probability <paramref name="rate"/>, with one of
    /// <paramref name="faults"/> that can happen to it (<see cref="CanHappenTo"/>: no body to cut in a HEAD's answer).
    /// Decisions come from a generator seeded with <paramref name="seed"/>, two draws per request whatever the outcome,
    /// so a seed gives the same sequence of decisions every run: the n-th request considered gets the n-th decision
    /// (which request is the n-th depends on the order concurrent requests arrive). Ended by <see cref="Clear"/> or
    /// <see cref="Release"/>; <see cref="Served(Fault)"/>, <see cref="Faulted"/> and <see cref="FaultedByKind"/> count what was done.
    /// </summary>
    public void InjectAtRate(double rate, int seed, IReadOnlyList<Fault> faults, Func<HttpRequest, bool>? matches = null)
    {
        if (rate is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(rate), "A rate is between 0 and 1.");
        if (faults.Count == 0) throw new ArgumentException("Name at least one fault.", nameof(faults));
        lock (_gate) _rate = new RateRule(rate, new Random(seed), [.. faults], matches ?? (_ => true));
    }

    public void Clear()
    {
        lock (_gate)
        {
            _rules.Clear();
            _rate = null;
        }
    }

    /// <summary>
    /// Ends every fault: rules are cleared and hanging or stalled requests go on to the server. Faults injected
    /// afterwards hold their requests until the next Release.
    /// </summary>
    public void Release()
    {
        TaskCompletionSource released;
        lock (_gate)
        {
            _rules.Clear();
            _rate = null;
            released = _released;
            _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        released.TrySetResult();
    }

    /// <summary>
    /// Completes when the next request that matches arrives (requests before the call do not count), before faults and
    /// emulation are applied to it. To act while that request waits, also Inject a Hang for it and Release afterwards.
    /// </summary>
    public Task<ArrivedRequest> WaitForRequestAsync(Func<HttpRequest, bool> matches, CancellationToken cancellationToken = default)
    {
        var waiter = new Waiter(matches, new TaskCompletionSource<ArrivedRequest>(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_waiters) _waiters.Add(waiter);
        if (cancellationToken.CanBeCanceled)
        {
            cancellationToken.Register(() =>
            {
                lock (_waiters) _waiters.Remove(waiter);
                waiter.Arrived.TrySetCanceled(cancellationToken);
            });
        }
        return waiter.Arrived.Task;
    }

    public static bool IsObjectGet(HttpRequest r) => r.Method == "GET" && !r.Query.ContainsKey("list-type") && r.Path.Value!.Trim('/').Contains('/');

    public static bool IsObjectPut(HttpRequest r) => r.Method == "PUT" && r.Path.Value!.Trim('/').Contains('/') && !r.Headers.ContainsKey("x-amz-copy-source");

    public static bool IsObjectHead(HttpRequest r) => r.Method == "HEAD" && r.Path.Value!.Trim('/').Contains('/');

    /// <summary>UploadPart (not a part copy).</summary>
    public static bool IsUploadPart(HttpRequest r) => IsObjectPut(r) && r.Query.ContainsKey("uploadId") && r.Query.ContainsKey("partNumber");

    /// <summary>UploadPartCopy.</summary>
    public static bool IsPartCopy(HttpRequest r) => r.Method == "PUT" && r.Headers.ContainsKey("x-amz-copy-source") && r.Query.ContainsKey("uploadId");

    /// <summary>CopyObject (not a part copy).</summary>
    public static bool IsCopyObject(HttpRequest r) => r.Method == "PUT" && r.Headers.ContainsKey("x-amz-copy-source") && !r.Query.ContainsKey("uploadId");

    public static bool IsCompleteUpload(HttpRequest r) => r.Method == "POST" && r.Query.ContainsKey("uploadId");

    /// <summary>Whether the answer to <paramref name="r"/> carries a body (a document or an object) that a fault can cut.</summary>
    private static bool AnswersWithBody(HttpRequest r) => r.Method is "GET" or "POST" || (r.Method == "PUT" && r.Headers.ContainsKey("x-amz-copy-source"));

    /// <summary>Whether <paramref name="r"/> uploads a body (an object, a part, a tag set).</summary>
    private static bool UploadsBody(HttpRequest r) => r.Method == "PUT" && !r.Headers.ContainsKey("x-amz-copy-source") && r.ContentLength > 0;

    /// <summary>Whether <paramref name="fault"/> can happen to <paramref name="r"/>: a body fault needs a body.</summary>
    public static bool CanHappenTo(Fault fault, HttpRequest r) => fault switch
    {
        Fault.TruncatedBody or Fault.ShortContentLength or Fault.LongContentLength or Fault.Stall or Fault.CorruptBody or Fault.Trickle => AnswersWithBody(r),
        Fault.ResetMidBody => UploadsBody(r) || AnswersWithBody(r),
        Fault.StallUpload or Fault.CorruptUpload => UploadsBody(r),
        _ => true,
    };

    /// <summary>What an S3 request is, for counting faults by kind.</summary>
    public static string KindOf(HttpRequest r)
    {
        if (IsListing(r)) return "listing";
        if (IsObjectHead(r)) return "head";
        if (IsUploadPart(r)) return "part";
        if (IsPartCopy(r)) return "part copy";
        if (IsCopyObject(r)) return "copy";
        if (IsCompleteUpload(r)) return "complete";
        if (r.Method == "POST" && r.Query.ContainsKey("uploads")) return "create upload";
        if (r.Query.ContainsKey("tagging")) return r.Method == "GET" ? "get tags" : "put tags";
        if (r.Method == "DELETE" && r.Query.ContainsKey("uploadId")) return "abort";
        if (r.Method == "GET" && r.Query.ContainsKey("uploadId")) return "list parts";
        if (IsObjectGet(r)) return r.Headers.ContainsKey("Range") ? "ranged get" : "get";
        if (IsObjectPut(r)) return "put";
        return r.Method.ToLowerInvariant();
    }

    /// <summary>ListObjects or ListObjectsV2.</summary>
    public static bool IsListing(HttpRequest r) => r.Method == "GET" && !r.Path.Value!.Trim('/').Contains('/') && r.Path.Value!.Trim('/').Length > 0
        && (r.Query.Count == 0 || r.Query.ContainsKey("list-type") || r.Query.ContainsKey("prefix") || r.Query.ContainsKey("marker"));

    private int _requests;

    /// <summary>Every request that reached the proxy, faulted or forwarded.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>How many requests got <paramref name="fault"/> (a body fault only when there was a body to cut).</summary>
    public int Served(Fault fault) => _served.GetValueOrDefault(fault);

    /// <summary>Requests faulted, all faults together.</summary>
    public int Faulted => _served.Values.Sum();

    /// <summary>Requests faulted, by kind (<see cref="KindOf"/>).</summary>
    public IReadOnlyDictionary<string, int> FaultedByKind => _servedByKind.Where(p => p.Value > 0).ToDictionary(p => p.Key, p => p.Value);

    /// <summary>Requests the rate of <see cref="InjectAtRate"/> was drawn for.</summary>
    public int RateConsidered => Volatile.Read(ref _rateConsidered);

    private void Count(Fault fault, HttpRequest request, int n)
    {
        _served.AddOrUpdate(fault, n, (_, c) => c + n);
        _servedByKind.AddOrUpdate(KindOf(request), n, (_, c) => c + n);
    }

    private Fault? TakeFault(HttpRequest request, out Task released)
    {
        lock (_gate)
        {
            var rules = _rules.ToArray();
            _rules.Clear();
            Fault? chosen = null;
            var now = DateTime.UtcNow;
            foreach (var rule in rules)
            {
                var current = rule;
                if (current.Until < now) continue;
                if (chosen is null && current.Remaining > 0 && current.Matches(request))
                {
                    chosen = current.Fault;
                    current = current with { Remaining = current.Remaining == int.MaxValue ? int.MaxValue : current.Remaining - 1 };
                }
                if (current.Remaining > 0) _rules.Enqueue(current);
            }
            if (chosen is null && _rate is { } rate && rate.Matches(request))
            {
                _rateConsidered++;
                var draw = rate.Random.NextDouble();
                var pick = rate.Random.Next(int.MaxValue);
                var possible = rate.Faults.Where(f => CanHappenTo(f, request)).ToArray();
                if (draw < rate.Rate && possible.Length > 0) chosen = possible[pick % possible.Length];
            }
            if (chosen is { } f) Count(f, request, 1);
            released = _released.Task;
            return chosen;
        }
    }

    /// <summary>A body fault found no body to cut (an error answer without one): the request went through unharmed.</summary>
    private void NotApplied(Fault fault, HttpRequest request) => Count(fault, request, -1);

    /// <summary>Tears the connection down with a TCP reset (linger 0).</summary>
    private static void ResetConnection(HttpContext context)
    {
        if (context.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            try { socket.LingerState = new LingerOption(true, 0); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { /* already gone */ }
        }
        context.Abort();
    }

    private void Arrive(HttpContext context)
    {
        RequestArrived?.Invoke(context.Request);
        List<Waiter> matched;
        lock (_waiters)
        {
            matched = _waiters.Where(w => w.Matches(context.Request)).ToList();
            foreach (var w in matched) _waiters.Remove(w);
        }
        if (matched.Count == 0) return;
        var r = context.Request;
        var seen = new ArrivedRequest(r.Method, r.Path.Value ?? "", r.QueryString.Value ?? "",
            r.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase));
        foreach (var w in matched) w.Arrived.TrySetResult(seen);
    }

    private static Task WriteS3ErrorAsync(HttpContext context, int status, string code, string message) =>
        S3Call.WriteErrorAsync(context, status, code, message, "");

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        Arrive(context);
        // The emulated server's clock dates every answer, refusals included (Kestrel would put the real one).
        context.Response.OnStarting(() =>
        {
            context.Response.Headers.Date = Emulation.Now.ToString("r", CultureInfo.InvariantCulture);
            return Task.CompletedTask;
        });
        var fault = TakeFault(context.Request, out var released);
        switch (fault)
        {
            case Fault.Reset:
                context.Abort();
                return;
            case Fault.Hang:
                try
                {
                    await released.WaitAsync(context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                break;
            case Fault.AccessDenied:
                await WriteS3ErrorAsync(context, 403, "AccessDenied", "Access Denied");
                return;
            case Fault.SlowDown:
                await WriteS3ErrorAsync(context, 503, "SlowDown", "Please reduce your request rate.");
                return;
            case Fault.TooManyRequests:
                await WriteS3ErrorAsync(context, 429, "TooManyRequests", "Too many requests, please reduce your request rate.");
                return;
            case Fault.BadRequest:
                await WriteS3ErrorAsync(context, 400, "InvalidArgument", "Invalid Argument");
                return;
            case Fault.InternalError:
                await WriteS3ErrorAsync(context, 500, "InternalError", "We encountered an internal error. Please try again.");
                return;
            case Fault.ResetMidBody when UploadsBody(context.Request):
                // Half the upload is taken, then the connection breaks under the client as it sends the rest.
                var buffer = new byte[64 * 1024];
                var left = Math.Max(1, context.Request.ContentLength!.Value / 2);
                try
                {
                    while (left > 0)
                    {
                        var n = await context.Request.Body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), context.RequestAborted);
                        if (n == 0) break;
                        left -= n;
                    }
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or BadHttpRequestException)
                {
                    // The client gave up first.
                }
                ResetConnection(context);
                return;
        }

        var settings = Emulation.Snapshot();
        var call = S3Call.Parse(context, _upstreamBase);
        if (settings.BucketRegion is not null && call.Bucket.Length > 0) context.Response.Headers["x-amz-bucket-region"] = settings.BucketRegion;
        if (await RefuseAsync(context, settings, call)) return;
        try
        {
            await ForwardAsync(context, settings, call, fault, released);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client gave up (a stall or a hang it timed out on).
        }
        catch (Exception e) when (WholeUploadsOnly && e is BadHttpRequestException or IOException)
        {
            // The client broke its upload off: nothing of it went on.
        }
    }

    /// <summary>The emulated refusals that need nothing from the upstream: region, credentials, clock, part copy.</summary>
    private async Task<bool> RefuseAsync(HttpContext context, EmulationSettings s, S3Call call)
    {
        var auth = call.Auth;
        if (s.BucketRegion is { } region && call.Bucket.Length > 0 && auth is not null && auth.Region != region)
        {
            Emulation.CountRegion();
            if (s.RegionRefusal == RegionRefusal.AuthorizationHeaderMalformed)
            {
                await S3Call.WriteErrorAsync(context, 400, "AuthorizationHeaderMalformed",
                    $"The authorization header is malformed; the region '{auth.Region}' is wrong; expecting '{region}'", $"<Region>{Xml(region)}</Region>");
            }
            else if (s.RegionRefusal == RegionRefusal.TemporaryRedirect)
            {
                var endpoint = s.RedirectEndpoint ?? $"{call.Bucket}.s3.{region}.amazonaws.com";
                var bucketHead = call.Method == "HEAD" && call.Key.Length == 0;
                if (!bucketHead) context.Response.Headers.Remove("x-amz-bucket-region");
                context.Response.Headers.Location = $"https://{endpoint}/{call.Key}";
                await S3Call.WriteErrorAsync(context, 307, "TemporaryRedirect", "Please re-send this request to the specified temporary endpoint. Continue to use the original request endpoint for future requests.",
                    $"<Endpoint>{Xml(endpoint)}</Endpoint><Bucket>{Xml(call.Bucket)}</Bucket>");
            }
            else
            {
                var endpoint = s.RedirectEndpoint ?? $"{call.Bucket}.s3.{region}.amazonaws.com";
                await S3Call.WriteErrorAsync(context, 301, "PermanentRedirect",
                    "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
                    $"<Endpoint>{Xml(endpoint)}</Endpoint><Bucket>{Xml(call.Bucket)}</Bucket>");
            }
            return true;
        }
        if (auth is not null && s.RequiredAccessKeyId is { } accessKeyId && auth.AccessKeyId != accessKeyId)
        {
            Emulation.CountToken();
            await WriteS3ErrorAsync(context, 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
            return true;
        }
        if (auth is not null && s.RequiredSessionToken is { } token)
        {
            var sent = call.SessionToken;
            (int Status, string Code, string Message)? refusal =
                string.IsNullOrEmpty(sent) ? (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
                : s.ExpiredSessionTokens.Contains(sent) ? (400, "ExpiredToken", "The provided token has expired.")
                : sent != token ? (400, "InvalidToken", "The provided token is malformed or otherwise invalid.")
                : !auth.Presigned && !auth.SignedHeaders.Contains("x-amz-security-token")
                    ? (403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
                : null;
            if (refusal is { } r)
            {
                Emulation.CountToken();
                await WriteS3ErrorAsync(context, r.Status, r.Code, r.Message);
                return true;
            }
        }
        if (call.RequestTime is { } requestTime)
        {
            var serverTime = s.Now;
            if ((requestTime - serverTime).Duration() > ProviderEmulation.MaxSkew)
            {
                Emulation.CountSkew();
                await S3Call.WriteErrorAsync(context, 403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.",
                    $"<RequestTime>{Xml(call.RequestTimeText!)}</RequestTime><ServerTime>{serverTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}</ServerTime>"
                    + "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>");
                return true;
            }
        }
        if (s.RefusePartCopy && call.IsPartCopy)
        {
            Emulation.CountPartCopy();
            await WriteS3ErrorAsync(context, 501, "NotImplemented", "A header you provided implies functionality that is not implemented");
            return true;
        }
        return false;
    }

    internal static string Xml(string text) => text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);

    private static async Task<byte[]> ReadAllAsync(Stream stream, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }

    /// <summary>A request the proxy makes itself, signed with the upstream's keys when it has them.</summary>
    private async Task<HttpResponseMessage> OwnRequestAsync(HttpMethod method, S3Call call, string bucket, string key, CancellationToken cancellationToken)
    {
        var rawPath = "/" + FixtureSigV4.Encode(bucket, false) + "/" + FixtureSigV4.Encode(key, true);
        using var request = new HttpRequestMessage(method, call.UpstreamBase + rawPath);
        if (_keys is { } keys) FixtureSigV4.Sign(request, rawPath, "", keys.AccessKey, keys.SecretKey, call.Auth?.Region ?? "us-east-1", DateTimeOffset.UtcNow);
        return await _upstream.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    private static bool ETagMatches(string condition, string? etag)
    {
        if (etag is null) return false;
        var bare = etag.Trim().Trim('"');
        return condition.Split(',').Select(c => c.Trim()).Any(c => c == "*" || c.Trim('"') == bare || (c.StartsWith("W/", StringComparison.Ordinal) && c[2..].Trim('"') == bare));
    }

    private async Task WritePreconditionFailedAsync(HttpContext context)
    {
        Emulation.CountPrecondition();
        await S3Call.WriteErrorAsync(context, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", "<Condition>If-Match</Condition>");
    }

    private async Task ForwardAsync(HttpContext context, EmulationSettings s, S3Call call, Fault? fault, Task released)
    {
        var request = context.Request;
        var aborted = context.RequestAborted;
        var encrypting = s.Encryption != ServerSideEncryption.None;
        var headers = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in request.Headers)
        {
            if (!name.Equals("Host", StringComparison.OrdinalIgnoreCase)) headers[name] = values.ToArray()!;
        }
        var signedModified = false;
        void Change(string name, string? value)
        {
            if (value is null) headers.Remove(name);
            else headers[name] = [value];
            if (call.Auth?.SignedHeaders.Contains(name.ToLowerInvariant()) == true) signedModified = true;
        }
        bool CanChange(string name) => call.Auth?.SignedHeaders.Contains(name.ToLowerInvariant()) != true || CanResign(call);

        // Copy conditions: the source's ETag, as the client would see it, decides.
        if (s.EvaluateConditions && call.IsCopy && request.Headers["x-amz-copy-source-if-match"].ToString() is { Length: > 0 } copyCondition && call.CopySource is { } source)
        {
            using var head = await OwnRequestAsync(HttpMethod.Head, call, source.Bucket, source.Key, aborted);
            if (head.IsSuccessStatusCode)
            {
                var etag = head.Headers.ETag?.Tag;
                if (etag is not null && encrypting) etag = Emulation.OpaqueETag(source.Bucket, source.Key, etag);
                if (!ETagMatches(copyCondition, etag))
                {
                    await WritePreconditionFailedAsync(context);
                    return;
                }
                if (encrypting && CanChange("x-amz-copy-source-if-match"))
                {
                    Change("x-amz-copy-source-if-match", string.Join(",", copyCondition.Split(',').Select(c => Emulation.UpstreamETag(source.Bucket, source.Key, c.Trim()))));
                }
            }
        }
        // GET/HEAD If-Match: evaluated on the upstream's answer, which then goes without the condition when that is possible.
        string? ifMatch = null;
        if (s.EvaluateConditions && call.IsObject && call.Method is "GET" or "HEAD" && request.Headers.IfMatch.ToString() is { Length: > 0 } condition)
        {
            ifMatch = condition;
            if (CanChange("If-Match")) Change("If-Match", null);
        }

        // The request body, read whole where the emulation must look at it.
        byte[]? body = null;
        var bodyModified = false;
        var hasBody = request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0;
        var checksumHeaders = s.VerifyUploadChecksums && (call.IsPutObject || call.IsUploadPart) && !request.Headers.ContentEncoding.ToString().Contains("aws-chunked", StringComparison.OrdinalIgnoreCase)
            ? S3Checksums.Algorithms.Keys.Where(h => request.Headers.ContainsKey(h)).ToList()
            : [];
        if (fault == Fault.StallUpload && hasBody)
        {
            var half = new byte[(request.ContentLength ?? 2) / 2];
            await request.Body.ReadExactlyAsync(half, aborted);
            await released.WaitAsync(aborted);
            body = [.. half, .. await ReadAllAsync(request.Body, aborted)];
        }
        if (body is null && hasBody && (checksumHeaders.Count > 0 || fault == Fault.CorruptUpload || (call.IsComplete && (encrypting || s.RequireEqualParts)) || WholeUploadsOnly))
        {
            body = await ReadAllAsync(request.Body, aborted);
        }
        if (fault == Fault.CorruptUpload && body is { Length: > 0 }) body[body.Length / 2] ^= 0xFF;
        foreach (var name in checksumHeaders)
        {
            var expected = request.Headers[name].ToString();
            if (S3Checksums.Algorithms[name](body ?? []) != expected)
            {
                Emulation.CountChecksumMismatch();
                var algorithm = name["x-amz-checksum-".Length..].ToUpperInvariant();
                await WriteS3ErrorAsync(context, 400, "BadDigest", $"The {algorithm} you specified did not match the calculated checksum.");
                return;
            }
        }
        if (call.IsComplete && body is not null)
        {
            var text = Encoding.UTF8.GetString(body);
            if (s.RequireEqualParts && _partSizes.TryGetValue(call.Query.GetValueOrDefault("uploadId") ?? "", out var sizes))
            {
                var numbers = Regex.Matches(text, @"<PartNumber>\s*(\d+)\s*</PartNumber>").Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
                if (numbers.Count > 1 && numbers.All(sizes.ContainsKey))
                {
                    var first = sizes[numbers[0]];
                    if (numbers.Take(numbers.Count - 1).Any(n => sizes[n] != first) || sizes[numbers[^1]] > first)
                    {
                        Emulation.CountUnequalParts();
                        await WriteS3ErrorAsync(context, 400, "InvalidPart", "All non-trailing parts must have the same length.");
                        return;
                    }
                }
            }
            if (encrypting)
            {
                // The client sends back the part ETags it was shown: the upstream knows its own.
                var translated = Regex.Replace(text, "<ETag>(.*?)</ETag>", m =>
                {
                    var value = WebUtility.HtmlDecode(m.Groups[1].Value);
                    var upstream = Emulation.UpstreamETag(call.Bucket, call.Key, value);
                    return upstream == value ? m.Value : "<ETag>" + (m.Groups[1].Value.Contains("&quot;", StringComparison.Ordinal) ? upstream.Replace("\"", "&quot;", StringComparison.Ordinal) : Xml(upstream)) + "</ETag>";
                }, RegexOptions.Singleline);
                if (translated != text)
                {
                    body = Encoding.UTF8.GetBytes(translated);
                    bodyModified = true;
                }
            }
        }

        // Signing anew, where the upstream would refuse what the client signed.
        var auth = call.Auth;
        var payloadHash = request.Headers["x-amz-content-sha256"].ToString();
        var resign = CanResign(call) && auth is not null
            && (s.ClockOffset != TimeSpan.Zero || auth.AccessKeyId != _keys!.AccessKey || signedModified || (bodyModified && payloadHash != FixtureSigV4.UnsignedPayload));
        if (resign)
        {
            var secret = auth!.AccessKeyId == _keys!.AccessKey ? _keys.SecretKey : auth.AccessKeyId == s.RequiredAccessKeyId ? s.RequiredSecretAccessKey : null;
            if (secret is not null && !call.SignatureHolds(request, secret))
            {
                Emulation.CountSignature();
                await WriteS3ErrorAsync(context, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
                return;
            }
            headers.Remove("Authorization");
            headers.Remove("x-amz-date");
            headers.Remove("x-amz-security-token");
            if (bodyModified) headers["x-amz-content-sha256"] = [FixtureSigV4.UnsignedPayload];
        }
        else if (s.ClockOffset != TimeSpan.Zero && auth is { Presigned: false } && headers.ContainsKey("x-amz-date"))
        {
            // No keys to sign with: the date alone is put back on the real clock (enough for a server that checks no signature).
            headers["x-amz-date"] = [DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)];
        }

        using var forward = new HttpRequestMessage(new HttpMethod(request.Method), call.Url);
        if (body is not null) forward.Content = new ByteArrayContent(body);
        else if (hasBody) forward.Content = new StreamContent(request.Body);
        foreach (var (name, values) in headers)
        {
            if (body is not null && name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) continue;
            if (body is not null && name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)) continue;
            if (!forward.Headers.TryAddWithoutValidation(name, values))
            {
                forward.Content ??= new ByteArrayContent([]);
                forward.Content.Headers.TryAddWithoutValidation(name, values);
            }
        }
        if (body is not null) forward.Content!.Headers.ContentLength = body.Length;
        // The client signed the Host it sent: it goes on unchanged, unless the request is signed anew for the upstream.
        if (!resign && request.Headers.Host.ToString() is { Length: > 0 } host) forward.Headers.Host = host;
        if (resign) FixtureSigV4.Sign(forward, call.RawPath, call.RawQuery, _keys!.AccessKey, _keys.SecretKey, auth!.Region, DateTimeOffset.UtcNow);

        using var response = await _upstream.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead, aborted);
        var status = (int)response.StatusCode;
        var success = status is >= 200 and < 300;
        var responseHeaders = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
        {
            if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) || name.Equals("Date", StringComparison.OrdinalIgnoreCase)) continue;
            responseHeaders[name] = values.ToArray();
        }
        if (encrypting && success && call.IsObject && responseHeaders.TryGetValue("ETag", out var etags) && etags.Length == 1)
        {
            responseHeaders["ETag"] = [Emulation.OpaqueETag(call.Bucket, call.Key, etags[0])];
        }
        if (ifMatch is not null && (status == 412 || (success && !ETagMatches(ifMatch, responseHeaders.GetValueOrDefault("ETag")?.FirstOrDefault()))))
        {
            await WritePreconditionFailedAsync(context);
            return;
        }
        if (encrypting && success && call.IsObject && call.Method != "DELETE")
        {
            if (s.Encryption == ServerSideEncryption.SseKms)
            {
                responseHeaders["x-amz-server-side-encryption"] = ["aws:kms"];
                responseHeaders["x-amz-server-side-encryption-aws-kms-key-id"] = [s.KmsKeyArn];
            }
            else
            {
                responseHeaders["x-amz-server-side-encryption-customer-algorithm"] = ["AES256"];
                responseHeaders["x-amz-server-side-encryption-customer-key-MD5"] = ["ZjQ1NjVkNGE2ZmI0ZDY4NGVlZDVhYTkyMDI4ZDJmNjg="];
            }
        }
        if (s.RequireEqualParts && success && (call.IsUploadPart || call.IsPartCopy) && call.Query.TryGetValue("uploadId", out var uploadId)
            && int.TryParse(call.Query.GetValueOrDefault("partNumber"), CultureInfo.InvariantCulture, out var partNumber) && call.PartSize(request, body) is { } partSize)
        {
            _partSizes.GetOrAdd(uploadId, _ => new())[partNumber] = partSize;
        }

        // Bodies the emulation rewrites or measures are read whole.
        byte[]? responseBody = null;
        await using var upstreamBody = await response.Content.ReadAsStreamAsync(aborted);
        var rewriteETags = encrypting && success && (call.IsListing || call.IsComplete || call.IsCopy || call.IsListParts);
        var wholeGet = call.Method == "GET" && call.IsObject && status == 200 && !request.Headers.ContainsKey("Range") && !call.Query.ContainsKey("partNumber");
        var checksumWanted = s.ProvideChecksums && string.Equals(request.Headers["x-amz-checksum-mode"].ToString(), "ENABLED", StringComparison.OrdinalIgnoreCase);
        var cut = fault is Fault.TruncatedBody or Fault.ResetMidBody or Fault.ShortContentLength or Fault.LongContentLength;
        if (rewriteETags || (checksumWanted && wholeGet) || fault is Fault.CorruptBody or Fault.Trickle or Fault.Stall || cut)
        {
            responseBody = await ReadAllAsync(upstreamBody, aborted);
        }
        if (rewriteETags) responseBody = RewriteETags(call, responseBody!);
        if (checksumWanted && wholeGet)
        {
            responseHeaders["x-amz-checksum-crc32"] = [S3Checksums.Crc32Base64(responseBody!)];
            responseHeaders["x-amz-checksum-type"] = ["FULL_OBJECT"];
            Emulation.CountChecksumProvided();
        }
        else if (checksumWanted && call.Method == "HEAD" && call.IsObject && status == 200 && !call.Query.ContainsKey("partNumber"))
        {
            using var get = await OwnRequestAsync(HttpMethod.Get, call, call.Bucket, call.Key, aborted);
            if (get.StatusCode == HttpStatusCode.OK)
            {
                responseHeaders["x-amz-checksum-crc32"] = [S3Checksums.Crc32Base64(await get.Content.ReadAsByteArrayAsync(aborted))];
                responseHeaders["x-amz-checksum-type"] = ["FULL_OBJECT"];
                Emulation.CountChecksumProvided();
            }
        }
        if (responseBody is not null && call.Method != "HEAD") responseHeaders["Content-Length"] = [responseBody.Length.ToString(CultureInfo.InvariantCulture)];

        context.Response.StatusCode = status;
        foreach (var (name, values) in responseHeaders) context.Response.Headers[name] = values;

        if (cut && call.Method != "HEAD" && responseBody is { Length: > 1 })
        {
            await CutAsync(context, fault!.Value, responseBody, aborted);
            return;
        }
        if (cut) NotApplied(fault!.Value, request);
        if (fault == Fault.CorruptBody && responseBody is not null)
        {
            if (responseBody.Length > 0) responseBody[responseBody.Length / 2] ^= 0xFF;
        }
        if (fault == Fault.Stall && responseBody is not null)
        {
            var half = responseBody.Length / 2;
            await context.Response.Body.WriteAsync(responseBody.AsMemory(0, half), aborted);
            await context.Response.Body.FlushAsync(aborted);
            await released.WaitAsync(aborted);
            await context.Response.Body.WriteAsync(responseBody.AsMemory(half), aborted);
            return;
        }
        if (fault == Fault.Trickle && responseBody is not null)
        {
            await context.Response.StartAsync(aborted);
            await context.Response.Body.FlushAsync(aborted);
            var pieces = (int)Math.Max(1, Math.Min(responseBody.Length, Math.Ceiling(TrickleDuration / TrickleMaxPause)));
            var pause = TrickleDuration / pieces;
            var size = (responseBody.Length + pieces - 1) / Math.Max(1, pieces);
            for (var offset = 0; offset < responseBody.Length; offset += size)
            {
                await Task.Delay(pause, aborted);
                await context.Response.Body.WriteAsync(responseBody.AsMemory(offset, Math.Min(size, responseBody.Length - offset)), aborted);
                await context.Response.Body.FlushAsync(aborted);
            }
            return;
        }
        if (responseBody is not null)
        {
            if (call.Method != "HEAD") await context.Response.Body.WriteAsync(responseBody, aborted);
            return;
        }
        await upstreamBody.CopyToAsync(context.Response.Body, aborted);
    }

    /// <summary>Sends <paramref name="body"/> broken the way <paramref name="fault"/> says (the headers are set already).</summary>
    private static async Task CutAsync(HttpContext context, Fault fault, byte[] body, CancellationToken aborted)
    {
        var half = body.Length / 2;
        switch (fault)
        {
            case Fault.ShortContentLength:
                // The rest would follow on the connection as garbage before the next answer: the connection closes instead.
                context.Response.Headers.ContentLength = half;
                context.Response.Headers.Connection = "close";
                await context.Response.Body.WriteAsync(body.AsMemory(0, half), aborted);
                return;
            case Fault.LongContentLength:
                context.Response.Headers.ContentLength = body.Length + Math.Max(1, half);
                // Kestrel ends a response shorter than its Content-Length by closing the connection in order, after what was sent.
                await context.Response.Body.WriteAsync(body, aborted);
                return;
            case Fault.ResetMidBody:
                await context.Response.Body.WriteAsync(body.AsMemory(0, half), aborted);
                await context.Response.Body.FlushAsync(aborted);
                ResetConnection(context);
                return;
            default:
                await context.Response.Body.WriteAsync(body.AsMemory(0, half), aborted);
                return;
        }
    }

    private bool CanResign(S3Call call) =>
        _keys is not null && call.Auth is { Presigned: false } && !call.PayloadHash.StartsWith("STREAMING-", StringComparison.Ordinal);

    /// <summary>Every object ETag in a listing, a part listing, a copy or completion result, made opaque.</summary>
    private byte[] RewriteETags(S3Call call, byte[] body)
    {
        var text = Encoding.UTF8.GetString(body);
        string Opaque(string etagXml, string key)
        {
            if (etagXml.Length == 0) return etagXml; // Ceph (pacific) completes uploads with an empty <ETag/>.
            var escapedQuotes = etagXml.Contains("&quot;", StringComparison.Ordinal);
            var opaque = Emulation.OpaqueETag(call.Bucket, key, WebUtility.HtmlDecode(etagXml));
            return escapedQuotes ? opaque.Replace("\"", "&quot;", StringComparison.Ordinal) : Xml(opaque);
        }
        string rewritten;
        if (call.IsListing)
        {
            var urlEncoded = call.Query.GetValueOrDefault("encoding-type") == "url";
            rewritten = Regex.Replace(text, "<Contents>.*?</Contents>", entry =>
            {
                var keyMatch = Regex.Match(entry.Value, "<Key>(.*?)</Key>", RegexOptions.Singleline);
                if (!keyMatch.Success) return entry.Value;
                var key = WebUtility.HtmlDecode(keyMatch.Groups[1].Value);
                if (urlEncoded) key = Uri.UnescapeDataString(key.Replace('+', ' '));
                return Regex.Replace(entry.Value, "<ETag>(.*?)</ETag>", m => "<ETag>" + Opaque(m.Groups[1].Value, key) + "</ETag>", RegexOptions.Singleline);
            }, RegexOptions.Singleline);
        }
        else
        {
            rewritten = Regex.Replace(text, "<ETag>(.*?)</ETag>", m => "<ETag>" + Opaque(m.Groups[1].Value, call.Key) + "</ETag>", RegexOptions.Singleline);
        }
        return rewritten == text ? body : Encoding.UTF8.GetBytes(rewritten);
    }

    public async ValueTask DisposeAsync()
    {
        Release();
        lock (_waiters)
        {
            foreach (var w in _waiters) w.Arrived.TrySetCanceled();
            _waiters.Clear();
        }
        await _app.StopAsync();
        await _app.DisposeAsync();
        _upstream.Dispose();
    }
}

/// <summary>What the proxy needs to know of one S3 request: path-style bucket and key, query, SigV4 credentials.</summary>
internal sealed class S3Call
{
    public sealed record SigV4Auth(string AccessKeyId, string Date, string Region, string[] SignedHeaders, string Signature, bool Presigned);

    public required string Method { get; init; }
    public required string RawPath { get; init; }
    public required string RawQuery { get; init; }
    public required string Url { get; init; }
    public required string UpstreamBase { get; init; }
    public string Bucket { get; init; } = "";
    public string Key { get; init; } = "";
    public required Dictionary<string, string> Query { get; init; }
    public SigV4Auth? Auth { get; init; }
    public string? SessionToken { get; init; }
    public string PayloadHash { get; init; } = "";
    public DateTimeOffset? RequestTime { get; init; }
    public string? RequestTimeText { get; init; }
    public (string Bucket, string Key)? CopySource { get; init; }

    public bool IsObject => Bucket.Length > 0 && Key.Length > 0;
    public bool IsCopy => Method == "PUT" && IsObject && CopySource is not null;
    public bool IsPartCopy => IsCopy && Query.ContainsKey("uploadId") && Query.ContainsKey("partNumber");
    public bool IsUploadPart => Method == "PUT" && IsObject && CopySource is null && Query.ContainsKey("uploadId") && Query.ContainsKey("partNumber");
    public bool IsPutObject => Method == "PUT" && IsObject && CopySource is null && !Query.ContainsKey("uploadId");
    public bool IsComplete => Method == "POST" && IsObject && Query.ContainsKey("uploadId");
    public bool IsListParts => Method == "GET" && IsObject && Query.ContainsKey("uploadId");
    public bool IsListing => Method == "GET" && Bucket.Length > 0 && Key.Length == 0
        && Query.Keys.All(k => k is "list-type" or "prefix" or "delimiter" or "max-keys" or "continuation-token" or "start-after" or "encoding-type" or "fetch-owner" or "marker");

    public long? PartSize(HttpRequest request, byte[]? body)
    {
        if (IsUploadPart) return body?.Length ?? request.ContentLength;
        var range = Regex.Match(request.Headers["x-amz-copy-source-range"].ToString(), @"bytes=(\d+)-(\d+)");
        return range.Success ? long.Parse(range.Groups[2].Value, CultureInfo.InvariantCulture) - long.Parse(range.Groups[1].Value, CultureInfo.InvariantCulture) + 1 : null;
    }

    public static S3Call Parse(HttpContext context, string upstreamBase)
    {
        var request = context.Request;
        var rawTarget = context.Features.Get<IHttpRequestFeature>()!.RawTarget;
        var url = upstreamBase + rawTarget;
        // An absolute request target means a client uses this as its forward HTTP proxy.
        if (rawTarget.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            url = rawTarget;
            var authorityEnd = rawTarget.IndexOf('/', "http://".Length);
            upstreamBase = authorityEnd < 0 ? rawTarget : rawTarget[..authorityEnd];
            rawTarget = authorityEnd < 0 ? "/" : rawTarget[authorityEnd..];
        }
        var questionMark = rawTarget.IndexOf('?', StringComparison.Ordinal);
        var rawPath = questionMark < 0 ? rawTarget : rawTarget[..questionMark];
        var rawQuery = questionMark < 0 ? "" : rawTarget[(questionMark + 1)..];
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in rawQuery.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            query[Uri.UnescapeDataString(eq < 0 ? part : part[..eq])] = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..]);
        }
        var trimmed = rawPath.TrimStart('/');
        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        var bucket = Uri.UnescapeDataString(slash < 0 ? trimmed : trimmed[..slash]);
        var key = slash < 0 ? "" : Uri.UnescapeDataString(trimmed[(slash + 1)..]);

        SigV4Auth? auth = null;
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("AWS4-HMAC-SHA256 ", StringComparison.Ordinal))
        {
            var fields = authorization["AWS4-HMAC-SHA256 ".Length..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(f => f.Split('=', 2)).Where(f => f.Length == 2).ToDictionary(f => f[0], f => f[1], StringComparer.Ordinal);
            auth = ParseAuth(fields.GetValueOrDefault("Credential"), fields.GetValueOrDefault("SignedHeaders"), fields.GetValueOrDefault("Signature"), false);
        }
        else if (query.GetValueOrDefault("X-Amz-Algorithm") == "AWS4-HMAC-SHA256")
        {
            auth = ParseAuth(query.GetValueOrDefault("X-Amz-Credential"), query.GetValueOrDefault("X-Amz-SignedHeaders"), query.GetValueOrDefault("X-Amz-Signature"), true);
        }

        var timeText = request.Headers["x-amz-date"].ToString() is { Length: > 0 } amzDate ? amzDate : query.GetValueOrDefault("X-Amz-Date");
        DateTimeOffset? time = null;
        if (timeText is not null && DateTimeOffset.TryParseExact(timeText, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)) time = parsed;
        else if (auth is not null && request.Headers.Date.ToString() is { Length: > 0 } date && DateTimeOffset.TryParse(date, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out parsed))
        {
            (time, timeText) = (parsed, date);
        }

        (string, string)? copySource = null;
        if (request.Headers["x-amz-copy-source"].ToString() is { Length: > 0 } copy)
        {
            var path = copy.Split('?')[0].TrimStart('/');
            var sep = path.IndexOf('/', StringComparison.Ordinal);
            if (sep > 0) copySource = (Uri.UnescapeDataString(path[..sep]), Uri.UnescapeDataString(path[(sep + 1)..]));
        }

        return new S3Call
        {
            Method = request.Method, RawPath = rawPath, RawQuery = rawQuery, Url = url, UpstreamBase = upstreamBase, Bucket = bucket, Key = key, Query = query,
            Auth = auth, SessionToken = request.Headers["x-amz-security-token"].ToString() is { Length: > 0 } token ? token : query.GetValueOrDefault("X-Amz-Security-Token"),
            PayloadHash = request.Headers["x-amz-content-sha256"].ToString(), RequestTime = auth is null ? null : time, RequestTimeText = timeText, CopySource = copySource,
        };
    }

    private static SigV4Auth? ParseAuth(string? credential, string? signedHeaders, string? signature, bool presigned)
    {
        var scope = credential?.Split('/');
        if (scope is not { Length: 5 } || signedHeaders is null || signature is null) return null;
        return new SigV4Auth(scope[0], scope[1], scope[2], signedHeaders.Split(';'), signature, presigned);
    }

    /// <summary>Whether the client's header signature is right for <paramref name="secretAccessKey"/>.</summary>
    public bool SignatureHolds(HttpRequest request, string secretAccessKey)
    {
        if (Auth is not { Presigned: false } auth || RequestTimeText is null) return false;
        var headers = auth.SignedHeaders.Select(h => new KeyValuePair<string, string>(h, h == "host" ? request.Host.Value ?? "" : string.Join(",", request.Headers[h].ToArray())));
        var signature = FixtureSigV4.Signature(Method, RawPath, FixtureSigV4.CanonicalQuery(RawQuery), headers, PayloadHash, RequestTimeText, auth.Region, secretAccessKey, out _);
        return signature == auth.Signature;
    }

    /// <summary>An S3 error as AWS sends it; a HEAD gets the status and headers only.</summary>
    public static async Task WriteErrorAsync(HttpContext context, int status, string code, string message, string extraXml)
    {
        context.Response.StatusCode = status;
        var requestId = Guid.NewGuid().ToString("N")[..16].ToUpperInvariant();
        context.Response.Headers["x-amz-request-id"] = requestId;
        if (context.Request.Method == "HEAD") return;
        context.Response.ContentType = "application/xml";
        await context.Response.WriteAsync(
            $"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{FaultProxy.Xml(message)}</Message>{extraXml}<RequestId>{requestId}</RequestId><HostId>emulated</HostId></Error>");
    }
}
