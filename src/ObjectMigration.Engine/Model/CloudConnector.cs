namespace ObjectMigration.Engine.Model;

/// <summary>A named endpoint plus where its credentials come from. The secret is never a property of this type.</summary>
public sealed class CloudConnector
{
    public long Id { get; set; }
    public string Name { get; set; } = "";
    public ConnectorProvider Provider { get; set; } = ConnectorProvider.S3;
    /// <summary>The names of <see cref="Provider"/> and <see cref="CredentialSource"/>, for ConvertTo-Json (which writes enums as numbers).</summary>
    public string ProviderName => Provider.ToString();
    public string CredentialSourceName => CredentialSource.ToString();
    public string Endpoint { get; set; } = "";
    public string Region { get; set; } = "us-east-1";
    public string? AccountId { get; set; }
    public string? Jurisdiction { get; set; }
    /// <summary>The stored key's id (masked until revealed); empty when the keys come from elsewhere.</summary>
    public string AccessKeyId { get; set; } = "";
    public CredentialSource CredentialSource { get; set; } = CredentialSource.Stored;
    /// <summary>The AWS profile, when <see cref="CredentialSource"/> is Profile.</summary>
    public string? ProfileName { get; set; }
    /// <summary>The shared credentials file holding <see cref="ProfileName"/>; null means the AWS default (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials, with ~/.aws/config).</summary>
    public string? ProfileLocation { get; set; }
    public string? Proxy { get; set; }
    /// <summary>The user name of the proxy's credential (-ProxyCredential) when one is stored; its password is never shown.</summary>
    public string? ProxyUserName { get; set; }
    public bool PathStyle { get; set; }
    /// <summary>SDK flexible checksums on bucket discovery and server-side copy: AWS only; many S3-compatible servers reject them. Bodies never use aws-chunked.</summary>
    public bool UseChunkEncoding { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    public override string ToString() => Name;
}

/// <summary>A connector's endpoint with where its keys come from, as the storage layer needs it. Never written out.</summary>
public sealed record ConnectorAccess(CloudConnector Connector, Connectors.ICredentialProvider Credentials)
{
    /// <summary>A stored access key and secret (the connector's AccessKeyId and <paramref name="secretAccessKey"/>).</summary>
    public ConnectorAccess(CloudConnector connector, string secretAccessKey)
        : this(connector, new Connectors.StaticCredentialProvider(connector.AccessKeyId, secretAccessKey))
    {
    }

    /// <summary>The proxy's user name and password (-ProxyCredential), answered to its 407 challenges.</summary>
    public System.Net.NetworkCredential? ProxyCredential { get; init; }

    /// <summary>The stored secret, for Get-CloudConnector -IncludeSecret; null when the keys come from elsewhere (a profile, a role).</summary>
    public string? StoredSecret => (Credentials as Connectors.StaticCredentialProvider)?.Keys.SecretAccessKey;

    public override string ToString() => $"{Connector.Name} ({Connector.Endpoint})";
}
