using System.Management.Automation;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Commands;

/// <summary>What every cmdlet shares: the engine, a cancellation token tied to Ctrl+C, and the one error mapping.</summary>
public abstract class ObjectMigrationCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stopping = new();

    protected MigrationEngine Engine => MigrationEngine.Open();

    /// <summary>Cancelled by Ctrl+C (StopProcessing): passed down to every HTTP call.</summary>
    protected CancellationToken Cancellation => _stopping.Token;

    protected override void StopProcessing() => _stopping.Cancel();

    protected override void EndProcessing() => _stopping.Dispose();

    /// <summary>Runs engine async work on the pipeline thread without blocking a pool thread on .Result.</summary>
    protected static T Await<T>(Task<T> task) => task.GetAwaiter().GetResult();

    protected static void Await(Task task) => task.GetAwaiter().GetResult();

    /// <summary>The one place where engine failures become ErrorRecords with stable ids and categories.</summary>
    protected static ErrorRecord ToErrorRecord(Exception e, object? target)
    {
        var (id, category) = e switch
        {
            ConnectorDefinitionException a => ($"InvalidArgument,{a.ParamName}", ErrorCategory.InvalidArgument),
            ArgumentException a => ($"InvalidArgument,{a.ParamName}", ErrorCategory.InvalidArgument),
            DuplicateNameException => ("NameAlreadyExists", ErrorCategory.ResourceExists),
            KeyNotFoundException => ("NotFound", ErrorCategory.ObjectNotFound),
            JobStateException => ("InvalidJobState", ErrorCategory.InvalidOperation),
            StorageException s => s.ErrorClass switch
            {
                ErrorClass.Authentication => ("AuthenticationError", ErrorCategory.AuthenticationError),
                ErrorClass.AccessDenied => ("AccessDenied", ErrorCategory.PermissionDenied),
                ErrorClass.Connection => ("ConnectionError", ErrorCategory.ConnectionError),
                ErrorClass.Timeout => ("Timeout", ErrorCategory.OperationTimeout),
                ErrorClass.BucketNotFound => ("BucketNotFound", ErrorCategory.ObjectNotFound),
                _ => ("StorageError", ErrorCategory.InvalidResult),
            },
            OperationCanceledException => ("Cancelled", ErrorCategory.OperationStopped),
            _ => ("UnexpectedError", ErrorCategory.NotSpecified),
        };
        // Storage exceptions carry SDK exceptions inside; only our message (which never holds a secret) goes out.
        var exception = e is StorageException ? new InvalidOperationException(e.Message) : e;
        return new ErrorRecord(exception, id, category, target);
    }

    protected void WriteFailure(Exception e, object? target) => WriteError(ToErrorRecord(e, target));

    /// <summary>-Credential, else -ProfileName, else the AWS environment variables.</summary>
    protected static (string AccessKeyId, string Secret) ResolveCredential(PSCredential? credential, string? profileName)
    {
        if (credential is not null && credential != PSCredential.Empty) return (credential.UserName, credential.GetNetworkCredential().Password);
        if (!string.IsNullOrEmpty(profileName)) return CredentialSources.FromProfile(profileName);
        return CredentialSources.FromEnvironment();
    }
}
