using System.Management.Automation;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Commands;

/// <summary>
/// Creates a connector. Its keys come from exactly one source, one parameter set each: -Credential (stored,
/// encrypted), -ProfileName [-ProfileLocation], -UseEnvironmentCredentials or -UseInstanceRole.
/// </summary>
[Cmdlet(VerbsCommon.New, "CloudConnector", SupportsShouldProcess = true, DefaultParameterSetName = CredentialSets.Stored)]
[OutputType(typeof(CloudConnector))]
public sealed class NewCloudConnectorCommand : ObjectMigrationCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public ConnectorProvider Provider { get; set; } = ConnectorProvider.S3;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Endpoint { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Region { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? AccountId { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateSet("default", "eu", "fedramp")]
    public string? Jurisdiction { get; set; }

    /// <summary>User name = access key id, password = secret; stored encrypted.</summary>
    [Parameter(ParameterSetName = CredentialSets.Stored, ValueFromPipelineByPropertyName = true)]
    [CredentialInput]
    public PSCredential? Credential { get; set; }

    /// <summary>A profile of the AWS shared config and credentials files, read when requests are signed: keys, SSO, assume-role, credential_process.</summary>
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Profile)]
    [ValidateNotNullOrEmpty]
    public string? ProfileName { get; set; }

    /// <summary>The shared credentials file holding -ProfileName (a config file beside it is read too); default: the AWS default files.</summary>
    [Parameter(ParameterSetName = CredentialSets.Profile)]
    [ValidateNotNullOrEmpty]
    public string? ProfileLocation { get; set; }

    /// <summary>AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN of the process that runs the job, read when requests are signed.</summary>
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Environment)]
    public SwitchParameter UseEnvironmentCredentials { get; set; }

    /// <summary>The container's credentials (ECS, EKS) or else the EC2 instance profile, refreshed before they expire.</summary>
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.InstanceRole)]
    public SwitchParameter UseInstanceRole { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Proxy { get; set; }

    /// <summary>The proxy's user name and password; stored encrypted with the connector, never shown (Get-CloudConnector shows ProxyUserName).</summary>
    [Parameter]
    [Credential]
    public PSCredential? ProxyCredential { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public SwitchParameter PathStyle { get; set; }

    /// <summary>SDK flexible checksums on the requests still made through the SDK (bucket discovery, server-side copy); on by default for AWS only. Object bodies always stream unchunked with Content-MD5.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public SwitchParameter UseChunkEncoding { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var connector = new CloudConnector
        {
            Name = Name,
            Provider = Provider,
            Endpoint = Endpoint ?? "",
            Region = Region ?? "",
            AccountId = AccountId,
            Jurisdiction = Jurisdiction,
            Proxy = Proxy,
            PathStyle = PathStyle.IsPresent,
            UseChunkEncoding = UseChunkEncoding.IsPresent,
        };
        if (!ShouldProcess($"{Name} ({Provider})", "Create cloud connector")) return;
        // A connector is created quietly; -PassThru returns it.
        try
        {
            var credential = CredentialFrom(Credential, ProfileName, ProfileLocation, UseEnvironmentCredentials, UseInstanceRole);
            var proxyCredential = ProxyCredential is null || ProxyCredential == PSCredential.Empty ? null : ProxyCredential.GetNetworkCredential();
            var created = Engine.AddConnector(connector, credential, pathStyleGiven: MyInvocation.BoundParameters.ContainsKey(nameof(PathStyle)), proxyCredential: proxyCredential);
            foreach (var warning in ConnectorRules.TransportWarnings(created, proxyCredential is not null)) WriteWarning(warning);
            if (PassThru) WriteObject(created);
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteFailure(e, Name);
        }
    }
}
