using System.Management.Automation;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;
using ObjectMigration.Jobs;

namespace ObjectMigration.Commands;

/// <summary>
/// Checks reachability and credentials of a saved or an unsaved connector: one result object for a healthy connector
/// (an error otherwise), or one CloudBucket per bucket with -ListBuckets or -Bucket, or $true/$false with -Quiet.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "CloudConnector", DefaultParameterSetName = "Saved")]
[OutputType(typeof(CloudConnectorTestResult), typeof(CloudBucket), typeof(bool), typeof(Job))]
public sealed class TestCloudConnectorCommand : ObjectMigrationCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Saved", ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(Completers.ConnectorNameCompleter))]
    public string Name { get; set; } = "";

    // An unsaved connector is one parameter set per credential source, so two sources at once is a binding error.
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Stored)]
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Profile)]
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Environment)]
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.InstanceRole)]
    public ConnectorProvider Provider { get; set; }

    [Parameter(ParameterSetName = CredentialSets.Stored)]
    [Parameter(ParameterSetName = CredentialSets.Profile)]
    [Parameter(ParameterSetName = CredentialSets.Environment)]
    [Parameter(ParameterSetName = CredentialSets.InstanceRole)]
    public string? Endpoint { get; set; }

    [Parameter(ParameterSetName = CredentialSets.Stored)]
    [Parameter(ParameterSetName = CredentialSets.Profile)]
    [Parameter(ParameterSetName = CredentialSets.Environment)]
    [Parameter(ParameterSetName = CredentialSets.InstanceRole)]
    public string? Region { get; set; }

    [Parameter(ParameterSetName = CredentialSets.Stored)]
    [Parameter(ParameterSetName = CredentialSets.Profile)]
    [Parameter(ParameterSetName = CredentialSets.Environment)]
    [Parameter(ParameterSetName = CredentialSets.InstanceRole)]
    public string? AccountId { get; set; }

    [Parameter(ParameterSetName = CredentialSets.Stored)]
    [Parameter(ParameterSetName = CredentialSets.Profile)]
    [Parameter(ParameterSetName = CredentialSets.Environment)]
    [Parameter(ParameterSetName = CredentialSets.InstanceRole)]
    [ValidateSet("default", "eu", "fedramp")]
    public string? Jurisdiction { get; set; }

    [Parameter(ParameterSetName = CredentialSets.Stored)] [CredentialInput] public PSCredential? Credential { get; set; }
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Profile)] [ValidateNotNullOrEmpty] public string? ProfileName { get; set; }
    [Parameter(ParameterSetName = CredentialSets.Profile)] [ValidateNotNullOrEmpty] public string? ProfileLocation { get; set; }
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Environment)] public SwitchParameter UseEnvironmentCredentials { get; set; }
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.InstanceRole)] public SwitchParameter UseInstanceRole { get; set; }

    [Parameter(ParameterSetName = CredentialSets.Stored)]
    [Parameter(ParameterSetName = CredentialSets.Profile)]
    [Parameter(ParameterSetName = CredentialSets.Environment)]
    [Parameter(ParameterSetName = CredentialSets.InstanceRole)]
    public string? Proxy { get; set; }

    [Parameter(ParameterSetName = CredentialSets.Stored)]
    [Parameter(ParameterSetName = CredentialSets.Profile)]
    [Parameter(ParameterSetName = CredentialSets.Environment)]
    [Parameter(ParameterSetName = CredentialSets.InstanceRole)]
    [Credential]
    public PSCredential? ProxyCredential { get; set; }

    [Parameter(ParameterSetName = CredentialSets.Stored)]
    [Parameter(ParameterSetName = CredentialSets.Profile)]
    [Parameter(ParameterSetName = CredentialSets.Environment)]
    [Parameter(ParameterSetName = CredentialSets.InstanceRole)]
    public SwitchParameter PathStyle { get; set; }

    /// <summary>Checks these buckets and returns one CloudBucket each (a bucket that does not exist is an error).</summary>
    [Parameter] [ArgumentCompleter(typeof(Completers.BucketNameCompleter))] public string[] Bucket { get; set; } = [];
    /// <summary>Returns one CloudBucket per bucket (location, object count, bytes) instead of the connector's result.</summary>
    [Parameter] public SwitchParameter ListBuckets { get; set; }
    [Parameter] public SwitchParameter SkipStatistics { get; set; }
    /// <summary>Returns only $true (healthy) or $false, writing no error, for scripts that branch on it.</summary>
    [Parameter] public SwitchParameter Quiet { get; set; }
    [Parameter] [ValidateRange(1, 3600)] public int TimeoutSec { get; set; } = 30;
    [Parameter] public SwitchParameter AsJob { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            // A name S3 cannot have is refused here, not sent (a legacy us-east-1 name may still be tested).
            foreach (var bucket in Bucket) ObjectMigration.Engine.Transfer.JobRules.CheckBucket(bucket, nameof(Bucket), legacyAllowed: true);
            var access = ParameterSetName == "Saved"
                ? Engine.GetAccess(Engine.GetConnector(Name))
                : UnsavedAccess();
            var timeout = TimeSpan.FromSeconds(TimeoutSec);
            if (AsJob)
            {
                // Not the invocation line as the job's command: it may hold a secret typed inline.
                var what = ParameterSetName == "Saved" ? access.Connector.Name : access.Connector.Endpoint;
                var job = new TaskJob($"Test-CloudConnector {what}", $"Test-CloudConnector {what}",
                    async ct => await CheckAsync(access, timeout, ct).ConfigureAwait(false),
                    e => ToErrorRecord(e, access.Connector.Name));
                JobRepository.Add(job);
                job.Start();
                WriteObject(job);
                return;
            }
            foreach (var result in Await(CheckAsync(access, timeout, Cancellation))) WriteObject(result);
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            if (Quiet) WriteObject(false);
            else WriteFailure(e, ParameterSetName == "Saved" ? Name : Endpoint);
        }
    }

    private async Task<IReadOnlyList<object>> CheckAsync(Engine.Model.ConnectorAccess access, TimeSpan timeout, CancellationToken ct)
    {
        if (Bucket.Length > 0 || ListBuckets)
        {
            var buckets = await MigrationEngine.TestConnectorAsync(access, Bucket, !SkipStatistics, timeout, ct).ConfigureAwait(false);
            return Quiet ? [true] : buckets;
        }
        var result = await ConnectorCheck.RunAsync(access, timeout, ct).ConfigureAwait(false);
        return Quiet ? [true] : [result];
    }

    private Engine.Model.ConnectorAccess UnsavedAccess()
    {
        var credential = CredentialFrom(Credential, ProfileName, ProfileLocation, UseEnvironmentCredentials, UseInstanceRole);
        var connector = new CloudConnector
        {
            Name = "(unsaved)", Provider = Provider, Endpoint = Endpoint ?? "", Region = Region ?? "",
            AccountId = AccountId, Jurisdiction = Jurisdiction, Proxy = Proxy, PathStyle = PathStyle.IsPresent,
        };
        var proxyCredential = ProxyCredential is null || ProxyCredential == PSCredential.Empty ? null : ProxyCredential.GetNetworkCredential();
        return MigrationEngine.Unsaved(connector, credential, MyInvocation.BoundParameters.ContainsKey(nameof(PathStyle)), proxyCredential);
    }
}
