using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Connectors;

/// <summary>A bad connector definition, with the parameter to fix.</summary>
public sealed class ConnectorDefinitionException(string parameterName, string message) : ArgumentException(message, parameterName);

/// <summary>Completes and checks a connector definition from its provider's profile: endpoint, signing region, addressing style.</summary>
public static class ConnectorRules
{
    private static readonly string[] Jurisdictions = ["default", "eu", "fedramp"];

    /// <summary>Fills in derived fields and rejects wrong combinations before anything is stored.</summary>
    public static void Complete(CloudConnector c, bool pathStyleGiven)
    {
        if (string.IsNullOrWhiteSpace(c.Name)) throw new ConnectorDefinitionException("Name", "A cloud connector needs a -Name.");
        CheckFields(c);
        var profile = ProviderProfiles.For(c.Provider);
        switch (c.Provider)
        {
            case ConnectorProvider.R2:
                if (string.IsNullOrWhiteSpace(c.AccountId))
                {
                    throw new ConnectorDefinitionException("AccountId", "An R2 connector needs -AccountId (the Cloudflare account id).");
                }
                c.Jurisdiction = string.IsNullOrWhiteSpace(c.Jurisdiction) ? "default" : c.Jurisdiction.ToLowerInvariant();
                if (!Jurisdictions.Contains(c.Jurisdiction))
                {
                    throw new ConnectorDefinitionException("Jurisdiction", $"Unknown R2 jurisdiction '{c.Jurisdiction}': use default, eu or fedramp.");
                }
                break;
        }
        // AWS connectors may leave the region out: each bucket's region is discovered from the server's hints.
        if (profile.SdkChecksums) c.UseChunkEncoding = true;
        if (profile.FixedRegion is { } fixedRegion) c.Region = fixedRegion;
        if (string.IsNullOrWhiteSpace(c.Endpoint))
        {
            c.Endpoint = profile.DeriveEndpoint(c, RegionForEndpoint(c, profile))
                ?? throw new ConnectorDefinitionException("Endpoint", $"A {c.Provider} connector needs -Endpoint, the URL of the S3 service (for example https://objects.example.com).");
        }
        if (string.IsNullOrWhiteSpace(c.Region)) c.Region = profile.DiscoversBucketRegion ? "" : profile.DefaultRegion;
        if (!pathStyleGiven) c.PathStyle = profile.PrefersPathStyle;
        c.Endpoint = ValidateUrl(c.Endpoint, "Endpoint");
        if (!string.IsNullOrWhiteSpace(c.Proxy)) c.Proxy = ValidateUrl(c.Proxy, "Proxy");
    }

    public const int MaxNameLength = 128;

    /// <summary>A saved connector's name (-Name, -NewName): shown in tables and typed in commands, so printable and bounded.</summary>
    public static void CheckName(string name, string parameter)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ConnectorDefinitionException(parameter, $"-{parameter} is empty: give the connector a name, e.g. 'backup-eu'.");
        if (name.Length > MaxNameLength) throw new ConnectorDefinitionException(parameter, $"-{parameter} is {name.Length} characters long: use at most {MaxNameLength}.");
        if (name.Any(char.IsControl)) throw new ConnectorDefinitionException(parameter, $"-{parameter} contains control characters (a line break, a tab): use printable characters.");
    }

    /// <summary>
    /// The region goes into every request's signature and the account id into a host name: anything beyond letters,
    /// digits and a few separators would fail every request later (or address another host), so it fails here.
    /// </summary>
    private static void CheckFields(CloudConnector c)
    {
        if (c.Region is { Length: > 0 } region && (region.Length > 64 || !region.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.')))
        {
            throw new ConnectorDefinitionException("Region", $"-Region '{region}' is not a region name: use letters, digits, '-', '_' and '.' (at most 64), e.g. us-east-1, or leave it out for the provider's default.");
        }
        // A blank proxy would fail every request later (it is not a URL); '' or leaving it out means none.
        if (c.Proxy is { Length: > 0 } proxy && string.IsNullOrWhiteSpace(proxy))
        {
            throw new ConnectorDefinitionException("Proxy", "-Proxy is only white space: give the proxy's URL (for example http://proxy.example.com:3128), or leave -Proxy out for none.");
        }
        if (c.AccountId is { Length: > 0 } account && (account.Length > 63 || !account.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '-')))
        {
            throw new ConnectorDefinitionException("AccountId", $"-AccountId '{account}' is not an account id: use the letters and digits the provider shows (Cloudflare: 32 hexadecimal characters).");
        }
    }

    /// <summary>The region an endpoint is derived for: AWS without a region uses the global endpoint of us-east-1.</summary>
    private static string RegionForEndpoint(CloudConnector c, ProviderProfile profile) =>
        string.IsNullOrWhiteSpace(c.Region) ? profile.DefaultRegion : c.Region;

    /// <summary>
    /// True when the connector's endpoint is the one its provider fixes for its region (not one the user gave): such an
    /// endpoint follows the region when it changes, and a bucket discovered in another region is addressed there.
    /// </summary>
    public static bool HasDerivedEndpoint(CloudConnector c)
    {
        var profile = ProviderProfiles.For(c.Provider);
        var derived = profile.DeriveEndpoint(c, RegionForEndpoint(c, profile));
        return derived is not null && string.Equals(derived.TrimEnd('/'), c.Endpoint.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The endpoint for a bucket found in <paramref name="region"/>: the provider's endpoint for that region when the connector's was derived.</summary>
    public static string EndpointForRegion(CloudConnector c, string region) =>
        HasDerivedEndpoint(c) && ProviderProfiles.For(c.Provider).DeriveEndpoint(c, region) is { } regional ? regional : c.Endpoint;

    private static string ValidateUrl(string value, string parameter)
    {
        // Checked first, and the URL never repeated: a password in it must not reach the store, the screen or a log.
        if (HasUserInfo(value))
        {
            throw new ConnectorDefinitionException(parameter, parameter == "Proxy"
                ? "-Proxy must not hold a user name or password (http://user:password@proxy): they would be stored and shown in clear. " +
                  "Give the proxy's URL without them, and its user name and password with -ProxyCredential."
                : $"-{parameter} must not hold a user name or password (https://user:password@host): they would be stored and shown in clear. " +
                  "Give the URL without them, and the access key id and secret with -Credential.");
        }
        if (!Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || string.IsNullOrEmpty(uri.Host))
        {
            throw new ConnectorDefinitionException(parameter, $"'{value}' is not a valid -{parameter}: give an http:// or https:// URL such as https://s3.example.com.");
        }
        return uri.GetLeftPart(UriPartial.Path).TrimEnd('/');
    }

    /// <summary>
    /// A user name or password before the host ("scheme://user:password@host"), also in a URL Uri would not parse: an
    /// '@' in the authority, which the host name cannot hold.
    /// </summary>
    private static bool HasUserInfo(string value)
    {
        var text = value.Trim();
        var start = text.IndexOf("://", StringComparison.Ordinal);
        start = start < 0 ? 0 : start + 3;
        var end = text.IndexOfAny(['/', '?', '#'], start);
        var authority = end < 0 ? text[start..] : text[start..end];
        return authority.Contains('@');
    }

    /// <summary>A proxy credential needs a proxy, and a user name.</summary>
    public static void CheckProxyCredential(CloudConnector c, System.Net.NetworkCredential? proxyCredential)
    {
        if (proxyCredential is null) return;
        if (string.IsNullOrEmpty(c.Proxy))
        {
            throw new ConnectorDefinitionException("ProxyCredential", "-ProxyCredential is the user name and password of a proxy: give the proxy's URL with -Proxy too.");
        }
        if (string.IsNullOrEmpty(proxyCredential.UserName))
        {
            throw new ConnectorDefinitionException("ProxyCredential", "-ProxyCredential needs the proxy's user name as the credential's user name.");
        }
    }

    /// <summary>
    /// True for a host that never leaves this machine: localhost (and *.localhost), 127.0.0.0/8, ::1.
    /// </summary>
    public static bool IsLoopback(Uri uri)
    {
        var host = uri.IdnHost.TrimEnd('.');
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)) return true;
        if (!System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var address)) return false;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        return System.Net.IPAddress.IsLoopback(address);
    }

    /// <summary>
    /// What a user should know about how a connector's traffic travels: a plain http:// endpoint off this machine (bodies
    /// and the headers SigV4 does not sign, Content-MD5 among them, can be read and changed on the way), and a proxy
    /// credential sent to a plain http:// proxy. Empty for https or loopback.
    /// </summary>
    public static IReadOnlyList<string> TransportWarnings(CloudConnector c, bool proxyCredential, string? label = null)
    {
        label ??= $"Connector '{c.Name}'";
        var warnings = new List<string>();
        if (Uri.TryCreate(c.Endpoint, UriKind.Absolute, out var endpoint) && endpoint.Scheme == Uri.UriSchemeHttp && !IsLoopback(endpoint))
        {
            warnings.Add($"{label} uses plain http:// to {endpoint.Authority}: object bodies and the request headers that are not signed " +
                "(content type, metadata checksums such as Content-MD5) can be read and altered in transit, and only the signature of each request is protected. " +
                "Use an https:// endpoint unless the network between here and the server is trusted.");
        }
        if (proxyCredential && Uri.TryCreate(c.Proxy, UriKind.Absolute, out var proxy) && proxy.Scheme == Uri.UriSchemeHttp && !IsLoopback(proxy))
        {
            warnings.Add($"{label} sends its proxy credential to a plain http:// proxy ({proxy.Authority}): the user name and password cross the network readable. " +
                "Use an https:// proxy URL where the proxy offers one.");
        }
        return warnings;
    }
}
