using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Connectors;

/// <summary>A bad connector definition, with the parameter to fix.</summary>
public sealed class ConnectorDefinitionException(string parameterName, string message) : ArgumentException(message, parameterName);

/// <summary>What each provider fixes: endpoint, signing region, addressing style.</summary>
public static class ConnectorRules
{
    private static readonly string[] Jurisdictions = ["default", "eu", "fedramp"];

    /// <summary>Fills in derived fields and rejects wrong combinations before anything is stored.</summary>
    public static void Complete(CloudConnector c, bool pathStyleGiven)
    {
        if (string.IsNullOrWhiteSpace(c.Name)) throw new ConnectorDefinitionException("Name", "A cloud connector needs a -Name.");
        switch (c.Provider)
        {
            case ConnectorProvider.AWS:
                if (string.IsNullOrWhiteSpace(c.Region)) c.Region = "us-east-1";
                if (string.IsNullOrWhiteSpace(c.Endpoint)) c.Endpoint = $"https://s3.{c.Region}.amazonaws.com";
                c.UseChunkEncoding = true;
                break;
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
                var jurisdiction = c.Jurisdiction == "default" ? "" : c.Jurisdiction + ".";
                if (string.IsNullOrWhiteSpace(c.Endpoint)) c.Endpoint = $"https://{c.AccountId}.{jurisdiction}r2.cloudflarestorage.com";
                c.Region = "auto";
                break;
            case ConnectorProvider.GCS:
                if (string.IsNullOrWhiteSpace(c.Endpoint)) c.Endpoint = "https://storage.googleapis.com";
                if (string.IsNullOrWhiteSpace(c.Region)) c.Region = "auto";
                break;
            case ConnectorProvider.Wasabi:
                if (string.IsNullOrWhiteSpace(c.Region)) c.Region = "us-east-1";
                if (string.IsNullOrWhiteSpace(c.Endpoint)) c.Endpoint = c.Region == "us-east-1" ? "https://s3.wasabisys.com" : $"https://s3.{c.Region}.wasabisys.com";
                break;
            case ConnectorProvider.UpCloud:
            case ConnectorProvider.S3:
            case ConnectorProvider.MinIO:
            case ConnectorProvider.VspOne:
                if (string.IsNullOrWhiteSpace(c.Endpoint))
                {
                    throw new ConnectorDefinitionException("Endpoint", $"A {c.Provider} connector needs -Endpoint, the URL of the S3 service (for example https://objects.example.com).");
                }
                break;
        }
        if (string.IsNullOrWhiteSpace(c.Region)) c.Region = "us-east-1";
        if (!pathStyleGiven) c.PathStyle = c.Provider is ConnectorProvider.S3 or ConnectorProvider.MinIO or ConnectorProvider.VspOne;
        c.Endpoint = ValidateUrl(c.Endpoint, "Endpoint");
        if (!string.IsNullOrWhiteSpace(c.Proxy)) c.Proxy = ValidateUrl(c.Proxy, "Proxy");
    }

    private static string ValidateUrl(string value, string parameter)
    {
        if (!Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || string.IsNullOrEmpty(uri.Host))
        {
            throw new ConnectorDefinitionException(parameter, $"'{value}' is not a valid -{parameter}: give an http:// or https:// URL such as https://s3.example.com.");
        }
        return uri.GetLeftPart(UriPartial.Path).TrimEnd('/');
    }
}
