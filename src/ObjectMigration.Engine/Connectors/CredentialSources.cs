using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Connectors;

/// <summary>
/// Where a connector's keys come from. Every source other than stored keys is AWSSDK.Core's own: its profile store
/// chain (static keys with aws_session_token, credential_process, assume-role, SSO), its environment-variable
/// credentials, its container and EC2 instance-profile credentials. Nothing here reads an AWS file itself.
/// </summary>
public static class CredentialSources
{
    private const string SharedCredentialsFileVariable = "AWS_SHARED_CREDENTIALS_FILE";

    /// <summary>How often fixed keys from a profile are read again, so a rewritten credentials file is followed during a job.</summary>
    internal static TimeSpan ProfileReread { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Checks what can be checked when a connector is defined, without fetching keys: a stored credential has a key
    /// id; a profile exists and can give credentials. Failures name the parameter to correct.
    /// </summary>
    public static void Check(ConnectorCredential credential)
    {
        switch (credential.Source)
        {
            case CredentialSource.Stored:
                if (string.IsNullOrEmpty(credential.AccessKeyId)) throw new ConnectorDefinitionException("Credential", "The credential's user name must be the access key id.");
                // Keys never hold white space; a padded or blank one would only fail every request as a wrong key later.
                if (credential.AccessKeyId.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
                {
                    throw new ConnectorDefinitionException("Credential", "The credential's user name (the access key id) has spaces or control characters: give the key id exactly as the provider shows it.");
                }
                if (string.IsNullOrWhiteSpace(credential.SecretAccessKey)) throw new ConnectorDefinitionException("Credential", "The credential's password (the secret access key) is empty: give the secret that belongs to the access key id.");
                break;
            case CredentialSource.Profile:
                if (string.IsNullOrWhiteSpace(credential.ProfileName)) throw new ConnectorDefinitionException("ProfileName", "-ProfileName needs the name of an AWS profile.");
                if (credential.ProfileLocation is { } file && !File.Exists(file))
                {
                    throw new ConnectorDefinitionException("ProfileLocation", $"There is no AWS shared credentials file at '{file}'; correct -ProfileLocation, or omit it for the default files.");
                }
                var location = ProfileLocation(credential.ProfileLocation);
                if (!new CredentialProfileStoreChain(location).TryGetProfile(credential.ProfileName, out var profile))
                {
                    throw new ConnectorDefinitionException("ProfileName",
                        $"There is no AWS profile '{credential.ProfileName}' in {DescribeFiles(location)}; create it (aws configure --profile {credential.ProfileName}) or correct -ProfileName.");
                }
                if (!profile.CanCreateAWSCredentials)
                {
                    throw new ConnectorDefinitionException("ProfileName",
                        $"The AWS profile '{credential.ProfileName}' in {DescribeFiles(location)} gives no credentials: it needs keys, a role_arn, SSO settings or a credential_process.");
                }
                break;
        }
    }

    /// <summary>Records the source on the connector; the stored key id only for a stored credential.</summary>
    public static void Apply(CloudConnector connector, ConnectorCredential credential)
    {
        connector.CredentialSource = credential.Source;
        connector.AccessKeyId = credential.Source == CredentialSource.Stored ? credential.AccessKeyId! : "";
        connector.ProfileName = credential.Source == CredentialSource.Profile ? credential.ProfileName : null;
        connector.ProfileLocation = credential.Source == CredentialSource.Profile ? credential.ProfileLocation : null;
    }

    /// <summary>The provider for a connector whose keys are not stored (Profile, Environment, InstanceRole).</summary>
    public static ICredentialProvider For(CloudConnector connector) => connector.CredentialSource switch
    {
        CredentialSource.Profile => ForProfile(connector.ProfileName ?? "", connector.ProfileLocation),
        CredentialSource.Environment => new SdkCredentialProvider("environment", "the AWS environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)",
            () => new EnvironmentVariablesAWSCredentials()),
        CredentialSource.InstanceRole => ForInstanceRole(),
        _ => throw new InvalidOperationException($"Connector '{connector.Name}' keeps its keys in the state store; they come from there."),
    };

    private static SdkCredentialProvider ForProfile(string name, string? profileLocation)
    {
        var description = profileLocation is null ? $"AWS profile '{name}'" : $"AWS profile '{name}' in '{profileLocation}'";
        return new SdkCredentialProvider($"profile '{name}' in '{profileLocation ?? "(default)"}'", description, () =>
        {
            var location = ProfileLocation(profileLocation);
            if (!new CredentialProfileStoreChain(location).TryGetAWSCredentials(name, out var credentials))
            {
                throw new InvalidOperationException($"there is no profile '{name}' that gives credentials in {DescribeFiles(location)}.");
            }
            return credentials;
        }, ProfileReread);
    }

    /// <summary>The container's credentials endpoint when ECS or EKS announces one, else the EC2 instance profile (IMDSv2).</summary>
    private static SdkCredentialProvider ForInstanceRole()
    {
        var container = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"))
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
        return container
            ? new SdkCredentialProvider("instance role", "the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI)", () => new GenericContainerCredentials())
            : new SdkCredentialProvider("instance role", "the EC2 instance profile (instance metadata service; off EC2 set AWS_CONTAINER_CREDENTIALS_FULL_URI, or use -ProfileName or -Credential)",
                () => new InstanceProfileAWSCredentials());
    }

    /// <summary>
    /// The credentials file to read: the connector's, else AWS_SHARED_CREDENTIALS_FILE as set now (the SDK reads that
    /// variable once per process), else null for the SDK's default (~/.aws/credentials with ~/.aws/config).
    /// </summary>
    private static string? ProfileLocation(string? connectorLocation)
    {
        if (!string.IsNullOrEmpty(connectorLocation)) return connectorLocation;
        var fromEnvironment = Environment.GetEnvironmentVariable(SharedCredentialsFileVariable);
        return string.IsNullOrEmpty(fromEnvironment) ? null : fromEnvironment;
    }

    private static string DescribeFiles(string? location) =>
        location is null ? "the AWS shared credentials and config files (~/.aws/credentials, ~/.aws/config)" : $"'{location}' (and the config file beside it)";
}
