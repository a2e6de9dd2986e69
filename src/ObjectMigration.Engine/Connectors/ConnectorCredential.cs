using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Connectors;

/// <summary>
/// The credential source New-, Set- and Test-CloudConnector were given: stored keys, an AWS profile, the AWS
/// environment variables or the instance role. Only a stored credential carries a secret, and it never prints.
/// </summary>
public sealed class ConnectorCredential
{
    private ConnectorCredential(CredentialSource source, string? accessKeyId = null, string? secretAccessKey = null, string? profileName = null, string? profileLocation = null)
    {
        Source = source;
        AccessKeyId = accessKeyId;
        SecretAccessKey = secretAccessKey;
        ProfileName = profileName;
        ProfileLocation = profileLocation;
    }

    public CredentialSource Source { get; }
    public string? AccessKeyId { get; }
    internal string? SecretAccessKey { get; }
    public string? ProfileName { get; }
    public string? ProfileLocation { get; }

    /// <summary>An access key and secret, stored encrypted with the connector (-Credential).</summary>
    public static ConnectorCredential Stored(string accessKeyId, string secretAccessKey) => new(CredentialSource.Stored, accessKeyId, secretAccessKey);

    /// <summary>A profile of the AWS shared config and credentials files (-ProfileName, -ProfileLocation), looked up when a request is signed.</summary>
    public static ConnectorCredential Profile(string profileName, string? profileLocation = null) =>
        new(CredentialSource.Profile, profileName: profileName, profileLocation: string.IsNullOrEmpty(profileLocation) ? null : profileLocation);

    /// <summary>AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN of the process that signs (-UseEnvironmentCredentials).</summary>
    public static ConnectorCredential Environment { get; } = new(CredentialSource.Environment);

    /// <summary>The container's credentials endpoint, else the EC2 instance profile (-UseInstanceRole).</summary>
    public static ConnectorCredential InstanceRole { get; } = new(CredentialSource.InstanceRole);

    /// <summary>The source a connector already has (its stored secret, if any, is not read here).</summary>
    internal static ConnectorCredential Of(CloudConnector connector) => connector.CredentialSource switch
    {
        CredentialSource.Profile => Profile(connector.ProfileName ?? "", connector.ProfileLocation),
        CredentialSource.Environment => Environment,
        CredentialSource.InstanceRole => InstanceRole,
        _ => throw new InvalidOperationException("A stored credential needs its secret."),
    };

    public override string ToString() => Source switch
    {
        CredentialSource.Stored => $"stored key {AccessKeyId}",
        CredentialSource.Profile => ProfileLocation is null ? $"AWS profile '{ProfileName}'" : $"AWS profile '{ProfileName}' in '{ProfileLocation}'",
        CredentialSource.Environment => "AWS environment variables",
        _ => "instance role",
    };
}
