using System.Management.Automation;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Commands;

/// <summary>Changes a connector. Any one of -Credential, -ProfileName, -UseEnvironmentCredentials or -UseInstanceRole replaces its credential source; without them the source is kept.</summary>
[Cmdlet(VerbsCommon.Set, "CloudConnector", SupportsShouldProcess = true, DefaultParameterSetName = KeepCredential)]
[OutputType(typeof(CloudConnector))]
public sealed class SetCloudConnectorCommand : ObjectMigrationCmdlet
{
    private const string KeepCredential = "KeepCredential";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(Completers.ConnectorNameCompleter))]
    public string Name { get; set; } = "";

    [Parameter] [ValidateNotNullOrEmpty] public string? NewName { get; set; }
    [Parameter] public string? Endpoint { get; set; }
    [Parameter] public string? Region { get; set; }
    [Parameter] public string? AccountId { get; set; }
    [Parameter] [ValidateSet("default", "eu", "fedramp")] public string? Jurisdiction { get; set; }
    /// <summary>Stored keys (user name = access key id, password = secret) replace the connector's credential source.</summary>
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Stored)] [CredentialInput] public PSCredential? Credential { get; set; }
    /// <summary>An AWS profile replaces the credential source (a stored secret is erased).</summary>
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Profile)] [ValidateNotNullOrEmpty] public string? ProfileName { get; set; }
    [Parameter(ParameterSetName = CredentialSets.Profile)] [ValidateNotNullOrEmpty] public string? ProfileLocation { get; set; }
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.Environment)] public SwitchParameter UseEnvironmentCredentials { get; set; }
    [Parameter(Mandatory = true, ParameterSetName = CredentialSets.InstanceRole)] public SwitchParameter UseInstanceRole { get; set; }
    /// <summary>An HTTP(S) proxy URL; an empty string removes the proxy.</summary>
    [Parameter] public string? Proxy { get; set; }
    /// <summary>The proxy's user name and password, stored encrypted; [pscredential]::Empty removes it, and so does removing the proxy.</summary>
    [Parameter] [Credential] public PSCredential? ProxyCredential { get; set; }
    [Parameter] public SwitchParameter PathStyle { get; set; }
    [Parameter] public SwitchParameter UseChunkEncoding { get; set; }
    [Parameter] public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        if (!ShouldProcess(Name, "Update cloud connector")) return;
        try
        {
            var bound = MyInvocation.BoundParameters;
            if (NewName is not null) ConnectorRules.CheckName(NewName, nameof(NewName));
            var credential = ParameterSetName == KeepCredential
                ? null
                : CredentialFrom(Credential, ProfileName, ProfileLocation, UseEnvironmentCredentials, UseInstanceRole);
            var before = Engine.WithAccessKey(Engine.GetConnector(Name));
            var removeProxyCredential = ProxyCredential == PSCredential.Empty;
            var proxyCredential = ProxyCredential is null || removeProxyCredential ? null : ProxyCredential.GetNetworkCredential();
            var updated = Engine.UpdateConnector(Name, c =>
            {
                if (NewName is not null) c.Name = NewName;
                if (Endpoint is not null) c.Endpoint = Endpoint;
                if (Region is not null) c.Region = Region;
                if (AccountId is not null) c.AccountId = AccountId;
                if (Jurisdiction is not null) c.Jurisdiction = Jurisdiction;
                if (Proxy is not null) c.Proxy = Proxy.Length == 0 ? null : Proxy;
                if (bound.ContainsKey(nameof(PathStyle))) c.PathStyle = PathStyle.IsPresent;
                if (bound.ContainsKey(nameof(UseChunkEncoding))) c.UseChunkEncoding = UseChunkEncoding.IsPresent;
            }, credential, proxyCredential, removeProxyCredential);
            // Warned once per connector: when a change makes it so, not at every change of a connector that already was.
            before.Name = updated.Name;
            var known = ConnectorRules.TransportWarnings(before, before.ProxyUserName is not null);
            foreach (var warning in ConnectorRules.TransportWarnings(updated, updated.ProxyUserName is not null).Except(known)) WriteWarning(warning);
            if (PassThru) WriteObject(updated);
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteFailure(e, Name);
        }
    }
}

[Cmdlet(VerbsCommon.Remove, "CloudConnector", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
public sealed class RemoveCloudConnectorCommand : ObjectMigrationCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(Completers.ConnectorNameCompleter))]
    public string[] Name { get; set; } = [];

    /// <summary>Removes the connector even while unfinished jobs use it (they fail when they next run).</summary>
    [Parameter] public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var name in Name)
        {
            if (!ShouldProcess(name, "Remove cloud connector")) continue;
            try { Engine.RemoveConnector(name, Force); }
            catch (Exception e) when (e is not PipelineStoppedException) { WriteFailure(e, name); }
        }
    }
}
