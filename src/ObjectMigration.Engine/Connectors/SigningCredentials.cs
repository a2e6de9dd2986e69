using Amazon.Runtime;

namespace ObjectMigration.Engine.Connectors;

/// <summary>The keys one request is signed with. The session token is present for temporary credentials (STS, SSO, roles).</summary>
public sealed record SigningKeys(string AccessKeyId, string SecretAccessKey, string? SessionToken = null)
{
    // Records print their members: never let a secret reach a log or an exception that way.
    public override string ToString() => $"{AccessKeyId} (secret not shown)";
}

/// <summary>
/// Where a connector's keys come from at the moment a request is signed. Temporary credentials are refreshed by the
/// provider before they expire, so a job that runs for days keeps signing with valid keys.
/// </summary>
public interface ICredentialProvider
{
    /// <summary>Keys valid for at least the next request; may refresh them first.</summary>
    ValueTask<SigningKeys> GetAsync(CancellationToken cancellationToken);

    /// <summary>Names the identity without a secret ("stored key AKIA...", "profile 'prod'"): equal identities can copy server-side.</summary>
    string Identity { get; }

    /// <summary>The same source as the AWS SDK's credentials type, for the few requests the SDK still makes.</summary>
    AWSCredentials ToSdkCredentials();
}

/// <summary>A fixed access key and secret (a stored -Credential).</summary>
public sealed class StaticCredentialProvider(string accessKeyId, string secretAccessKey, string? sessionToken = null) : ICredentialProvider
{
    private readonly SigningKeys _keys = new(accessKeyId, secretAccessKey, sessionToken);

    public ValueTask<SigningKeys> GetAsync(CancellationToken cancellationToken) => ValueTask.FromResult(_keys);

    // The secret's hash tells two stored credentials with the same key id apart without revealing it.
    public string Identity => $"key {accessKeyId}#{StableHash(secretAccessKey)}";

    public AWSCredentials ToSdkCredentials() =>
        _keys.SessionToken is { } token ? new SessionAWSCredentials(_keys.AccessKeyId, _keys.SecretAccessKey, token) : new BasicAWSCredentials(_keys.AccessKeyId, _keys.SecretAccessKey);

    public SigningKeys Keys => _keys;

    private static string StableHash(string value) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(value)))[..12];

    public override string ToString() => Identity;
}
