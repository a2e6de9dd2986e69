using System.Management.Automation;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Model;
using ObjectMigration.Jobs;

namespace ObjectMigration.Commands;

/// <summary>Checks reachability and credentials of a saved or an unsaved connector; one CloudBucket per bucket.</summary>
[Cmdlet(VerbsDiagnostic.Test, "CloudConnector", DefaultParameterSetName = "Saved")]
[OutputType(typeof(CloudBucket), typeof(Job))]
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

    [Parameter(ParameterSetName = CredentialSets.Stored)] [Credential] public PSCredential? Credential { get; set; }
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
    public SwitchParameter PathStyle { get; set; }

    /// <summary>Only these buckets (and a bucket that does not exist is reported as an error).</summary>
    [Parameter] public string[] Bucket { get; set; } = [];
    [Parameter] public SwitchParameter SkipStatistics { get; set; }
    [Parameter] [ValidateRange(1, 3600)] public int TimeoutSec { get; set; } = 30;
    [Parameter] public SwitchParameter AsJob { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var access = ParameterSetName == "Saved"
                ? Engine.GetAccess(Engine.GetConnector(Name))
                : UnsavedAccess();
            var timeout = TimeSpan.FromSeconds(TimeoutSec);
            if (AsJob)
            {
                var job = new TaskJob(MyInvocation.Line, $"Test-CloudConnector {access.Connector.Name}",
                    async ct => await MigrationEngine.TestConnectorAsync(access, Bucket, !SkipStatistics, timeout, ct).ConfigureAwait(false),
                    e => ToErrorRecord(e, access.Connector.Name));
                JobRepository.Add(job);
                job.Start();
                WriteObject(job);
                return;
            }
            foreach (var bucket in Await(MigrationEngine.TestConnectorAsync(access, Bucket, !SkipStatistics, timeout, Cancellation))) WriteObject(bucket);
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteFailure(e, ParameterSetName == "Saved" ? Name : Endpoint);
        }
    }

    private Engine.Model.ConnectorAccess UnsavedAccess()
    {
        var credential = CredentialFrom(Credential, ProfileName, ProfileLocation, UseEnvironmentCredentials, UseInstanceRole);
        var connector = new CloudConnector
        {
            Name = "(unsaved)", Provider = Provider, Endpoint = Endpoint ?? "", Region = Region ?? "",
            AccountId = AccountId, Jurisdiction = Jurisdiction, Proxy = Proxy, PathStyle = PathStyle.IsPresent,
        };
        return MigrationEngine.Unsaved(connector, credential, MyInvocation.BoundParameters.ContainsKey(nameof(PathStyle)));
    }
}
