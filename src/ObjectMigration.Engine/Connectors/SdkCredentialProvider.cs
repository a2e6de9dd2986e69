using System.Reflection;
using Amazon.Runtime;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Connectors;

/// <summary>
/// Keys from one of AWSSDK.Core's own credential sources (a profile, the environment, a container or instance role).
/// The SDK's credentials are resolved on first use, not when the connector is created; temporary ones refresh
/// themselves before they expire. A source that cannot give keys fails as an authentication error that names the
/// source and never a secret.
/// </summary>
public sealed class SdkCredentialProvider : ICredentialProvider
{
    private readonly Func<AWSCredentials> _resolve;
    private readonly TimeSpan _reresolveFixedAfter;
    private readonly object _gate = new();
    private AWSCredentials? _credentials;
    private DateTime _resolvedAt;

    /// <param name="identity">Names the source without a secret; equal identities may copy server-side.</param>
    /// <param name="description">Names the source in error messages ("AWS profile 'prod'").</param>
    /// <param name="resolve">Builds the SDK's credentials for the source; may throw when the source is missing.</param>
    /// <param name="reresolveFixedAfter">
    /// How long fixed (non-refreshing) keys are kept before the source is read again: a profile whose keys a tool
    /// rewrites in the file (aws_session_token from a SAML or SSO helper) is followed during a long job. Null: never.
    /// </param>
    public SdkCredentialProvider(string identity, string description, Func<AWSCredentials> resolve, TimeSpan? reresolveFixedAfter = null)
    {
        Identity = identity;
        Description = description;
        _resolve = resolve;
        _reresolveFixedAfter = reresolveFixedAfter ?? TimeSpan.MaxValue;
    }

    public string Identity { get; }

    public string Description { get; }

    /// <summary>The SDK's credentials for the source, resolved now if they were not yet (or fixed keys are due to be read again).</summary>
    public AWSCredentials Resolve()
    {
        lock (_gate)
        {
            var now = DateTime.UtcNow;
            if (_credentials is not null && (_credentials is RefreshingAWSCredentials || now - _resolvedAt < _reresolveFixedAfter)) return _credentials;
            try
            {
                _credentials = _resolve();
                _resolvedAt = now;
                return _credentials;
            }
            catch (Exception e) when (e is not StorageException)
            {
                // A failed resolution is not kept: the next request tries again (the variable may be set by then).
                throw Failure(e);
            }
        }
    }

    public async ValueTask<SigningKeys> GetAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var credentials = Resolve();
        ImmutableCredentials? keys;
        try
        {
            // The SDK's refresh takes no token: stop waiting for it on cancel (it finishes, or fails, on its own).
            keys = await credentials.GetCredentialsAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is not StorageException)
        {
            throw Failure(e);
        }
        if (keys is null || string.IsNullOrEmpty(keys.AccessKey) || string.IsNullOrEmpty(keys.SecretKey))
        {
            throw Failure(null);
        }
        return new SigningKeys(keys.AccessKey, keys.SecretKey, string.IsNullOrEmpty(keys.Token) ? null : keys.Token);
    }

    /// <summary>For the SDK client: the same keys, and the same classified failures, as <see cref="GetAsync"/>.</summary>
    public AWSCredentials ToSdkCredentials() => new SdkView(this);

    public override string ToString() => Identity;

    /// <summary>
    /// The SDK's own message says what is missing (no variable, an expired SSO token, the process's exit code) and
    /// holds no secret; a wrapper's message says nothing, so the wrapped one is used.
    /// </summary>
    private StorageException Failure(Exception? e)
    {
        while (e is TargetInvocationException or AggregateException && e.InnerException is not null) e = e.InnerException;
        var detail = e is null ? "the source gave no access key and secret." : e.Message;
        return new StorageException(ErrorClass.Authentication, $"No credentials from {Description}: {detail}", e);
    }

    private sealed class SdkView(SdkCredentialProvider owner) : AWSCredentials
    {
        // The SDK's synchronous API, which AWSCredentials must offer; only the SDK's own synchronous calls use it, never the engine.
        public override ImmutableCredentials GetCredentials() => GetCredentialsAsync().GetAwaiter().GetResult();

        public override async Task<ImmutableCredentials> GetCredentialsAsync()
        {
            var keys = await owner.GetAsync(CancellationToken.None).ConfigureAwait(false);
            return new ImmutableCredentials(keys.AccessKeyId, keys.SecretAccessKey, keys.SessionToken);
        }
    }
}
