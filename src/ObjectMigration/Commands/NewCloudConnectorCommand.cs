using System.Management.Automation;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Commands;

[Cmdlet(VerbsCommon.New, "CloudConnector", SupportsShouldProcess = true)]
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

    /// <summary>User name = access key id, password = secret. Without it: -ProfileName, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <summary>A profile of the AWS shared credentials file.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? ProfileName { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Proxy { get; set; }

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
            var (accessKeyId, secret) = ResolveCredential(Credential, ProfileName);
            var created = Engine.AddConnector(connector, accessKeyId, secret, pathStyleGiven: MyInvocation.BoundParameters.ContainsKey(nameof(PathStyle)));
            if (PassThru) WriteObject(created);
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteFailure(e, Name);
        }
    }
}
