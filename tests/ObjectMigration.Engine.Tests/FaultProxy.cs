using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
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
    /// <summary>The response promises the full body and is cut off half way.</summary>
    TruncatedBody,
    /// <summary>HTTP 403 AccessDenied: credentials accepted, action refused.</summary>
    AccessDenied,
    /// <summary>The full body arrives, with one byte in the middle flipped: silent corruption on the wire.</summary>
    CorruptBody,
    /// <summary>No answer: the request waits, like one sent to a stalled server, until the client gives up or Release.</summary>
    Hang,
}

/// <summary>
/// A reverse proxy on 127.0.0.1 in front of a real S3 endpoint that injects faults into chosen requests.
/// Everything else passes through unchanged, so the engine talks real S3 through it.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private sealed record Rule(Func<HttpRequest, bool> Matches, Fault Fault, int Remaining);

    private readonly WebApplication _app;
    private readonly HttpClient _upstream = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, AutomaticDecompression = System.Net.DecompressionMethods.None });
    private readonly ConcurrentQueue<Rule> _rules = new();
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<Fault, int> _served = new();
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Endpoint { get; }

    private FaultProxy(WebApplication app, string endpoint)
    {
        _app = app;
        Endpoint = endpoint;
    }

    public static async Task<FaultProxy> StartAsync(string upstream)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(o => o.Limits.MaxRequestBodySize = null);
        var app = builder.Build();
        FaultProxy? proxy = null;
        app.Run(context => proxy!.HandleAsync(context, upstream.TrimEnd('/')));
        await app.StartAsync();
        var address = app.Urls.First();
        proxy = new FaultProxy(app, address);
        return proxy;
    }

    /// <summary>The next <paramref name="count"/> requests that match get <paramref name="fault"/>; int.MaxValue means always.</summary>
    public void Inject(Fault fault, int count, Func<HttpRequest, bool> matches) => _rules.Enqueue(new Rule(matches, fault, count));

    public void Clear()
    {
        lock (_gate) _rules.Clear();
    }

    /// <summary>Ends every fault: rules are cleared and hanging requests go through to the server.</summary>
    public void Release()
    {
        Clear();
        _released.TrySetResult();
    }

    public static bool IsObjectGet(HttpRequest r) => r.Method == "GET" && !r.Query.ContainsKey("list-type") && r.Path.Value!.Trim('/').Contains('/');

    public static bool IsObjectPut(HttpRequest r) => r.Method == "PUT" && r.Path.Value!.Trim('/').Contains('/') && !r.Headers.ContainsKey("x-amz-copy-source");

    private int _requests;

    /// <summary>Every request that reached the proxy, faulted or forwarded.</summary>
    public int Requests => Volatile.Read(ref _requests);

    public int Served(Fault fault) => _served.GetValueOrDefault(fault);

    private Fault? TakeFault(HttpRequest request)
    {
        lock (_gate)
        {
            var rules = _rules.ToArray();
            _rules.Clear();
            Fault? chosen = null;
            foreach (var rule in rules)
            {
                var current = rule;
                if (chosen is null && current.Remaining > 0 && current.Matches(request))
                {
                    chosen = current.Fault;
                    current = current with { Remaining = current.Remaining == int.MaxValue ? int.MaxValue : current.Remaining - 1 };
                }
                if (current.Remaining > 0) _rules.Enqueue(current);
            }
            if (chosen is { } f) _served.AddOrUpdate(f, 1, (_, n) => n + 1);
            return chosen;
        }
    }

    private async Task HandleAsync(HttpContext context, string upstream)
    {
        Interlocked.Increment(ref _requests);
        var fault = TakeFault(context.Request);
        if (fault == Fault.Reset)
        {
            context.Abort();
            return;
        }
        if (fault == Fault.Hang)
        {
            try
            {
                await _released.Task.WaitAsync(context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        if (fault == Fault.AccessDenied)
        {
            context.Response.StatusCode = 403;
            context.Response.ContentType = "application/xml";
            await context.Response.WriteAsync("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
            return;
        }
        if (fault == Fault.SlowDown)
        {
            context.Response.StatusCode = 503;
            context.Response.ContentType = "application/xml";
            await context.Response.WriteAsync("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>");
            return;
        }
        var rawTarget = context.Features.Get<IHttpRequestFeature>()!.RawTarget;
        // An absolute request target means a client uses this as its forward HTTP proxy.
        var url = rawTarget.StartsWith("http://", StringComparison.OrdinalIgnoreCase) ? rawTarget : upstream + rawTarget;
        using var forward = new HttpRequestMessage(new HttpMethod(context.Request.Method), url);
        if (context.Request.ContentLength is > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            forward.Content = new StreamContent(context.Request.Body);
        }
        foreach (var (name, values) in context.Request.Headers)
        {
            if (name.Equals("Host", StringComparison.OrdinalIgnoreCase)) continue;
            if (!forward.Headers.TryAddWithoutValidation(name, values.ToArray()))
            {
                forward.Content ??= new ByteArrayContent([]);
                forward.Content.Headers.TryAddWithoutValidation(name, values.ToArray());
            }
        }
        using var response = await _upstream.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
        {
            if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)) continue;
            context.Response.Headers[name] = values.ToArray();
        }
        await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
        if (fault == Fault.TruncatedBody && response.Content.Headers.ContentLength is { } length && length > 1)
        {
            var half = new byte[length / 2];
            await body.ReadExactlyAsync(half, context.RequestAborted);
            await context.Response.Body.WriteAsync(half, context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            context.Abort();
            return;
        }
        if (fault == Fault.CorruptBody)
        {
            using var whole = new MemoryStream();
            await body.CopyToAsync(whole, context.RequestAborted);
            var bytes = whole.ToArray();
            if (bytes.Length > 0) bytes[bytes.Length / 2] ^= 0xFF;
            await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
            return;
        }
        await body.CopyToAsync(context.Response.Body, context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        Release();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _upstream.Dispose();
    }
}
