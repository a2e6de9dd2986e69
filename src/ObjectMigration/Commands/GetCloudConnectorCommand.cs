using System.Management.Automation;
using System.Security;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Commands;

[Cmdlet(VerbsCommon.Get, "CloudConnector", SupportsPaging = true, DefaultParameterSetName = "ByName")]
[OutputType(typeof(CloudConnector))]
public sealed class GetCloudConnectorCommand : ObjectMigrationCmdlet
{
    [Parameter(Position = 0, ParameterSetName = "ByName", ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [NoEmptyPattern]
    public string[] Name { get; set; } = ["*"];

    [Parameter(Mandatory = true, ParameterSetName = "ById", ValueFromPipelineByPropertyName = true)]
    [ValidateRange(1, long.MaxValue)]
    public long[] Id { get; set; } = [];

    [Parameter]
    public ConnectorProvider[]? Provider { get; set; }

    /// <summary>Adds a Credential property (PSCredential: user name = access key id, password = secret); null for connectors whose keys are not stored.</summary>
    [Parameter]
    public SwitchParameter IncludeSecret { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            WriteConnectors();
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            // Nothing can be shown without the key that seals the access key ids (a key file refused as not private).
            ThrowTerminatingError(ToErrorRecord(e, null));
        }
    }

    private void WriteConnectors()
    {
        var all = Engine.Store.GetConnectors();
        IEnumerable<CloudConnector> selected;
        if (ParameterSetName == "ById")
        {
            selected = all.Where(c => Id.Contains(c.Id));
            foreach (var id in Id.Where(i => !all.Any(c => c.Id == i)))
            {
                WriteError(new ErrorRecord(new KeyNotFoundException($"No cloud connector has the id {id}. See Get-CloudConnector."), "ConnectorNotFound,Id", ErrorCategory.ObjectNotFound, id));
            }
        }
        else
        {
            var patterns = Name.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();
            selected = all.Where(c => patterns.Any(p => p.IsMatch(c.Name)));
            foreach (var name in Name.Where(n => !WildcardPattern.ContainsWildcardCharacters(n) && !all.Any(c => string.Equals(c.Name, n, StringComparison.OrdinalIgnoreCase))))
            {
                WriteError(new ErrorRecord(new KeyNotFoundException($"No cloud connector is named '{name}'. See Get-CloudConnector, or create one with New-CloudConnector."), "ConnectorNotFound,Name", ErrorCategory.ObjectNotFound, name));
            }
        }
        if (Provider is { Length: > 0 }) selected = selected.Where(c => Provider.Contains(c.Provider));
        var list = selected.ToList();
        if (PagingParameters.IncludeTotalCount) WriteObject(PagingParameters.NewTotalCount((ulong)list.Count, 1.0));
        foreach (var connector in list.Skip((int)Math.Min(int.MaxValue, PagingParameters.Skip)).Take((int)Math.Min(int.MaxValue, PagingParameters.First)))
        {
            if (!IncludeSecret)
            {
                WriteObject(Engine.WithAccessKey(connector));
                continue;
            }
            // Only stored keys have a secret to show; a profile, the environment or a role keep theirs elsewhere.
            PSCredential? credential = null;
            if (connector.CredentialSource == CredentialSource.Stored)
            {
                var access = Engine.GetAccess(connector);
                var secret = new SecureString();
                foreach (var ch in access.StoredSecret ?? "") secret.AppendChar(ch);
                secret.MakeReadOnly();
                credential = new PSCredential(connector.AccessKeyId, secret);
            }
            var output = PSObject.AsPSObject(connector);
            output.Properties.Add(new PSNoteProperty("Credential", credential));
            WriteObject(output);
        }
    }
}
