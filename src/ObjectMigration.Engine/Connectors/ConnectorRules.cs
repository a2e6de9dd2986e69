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
        if (!Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || string.IsNullOrEmpty(uri.Host))
        {
            throw new ConnectorDefinitionException(parameter, $"'{value}' is not a valid -{parameter}: give an http:// or https:// URL such as https://s3.example.com.");
        }
        return uri.GetLeftPart(UriPartial.Path).TrimEnd('/');
    }
}
