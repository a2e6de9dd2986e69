using System.Management.Automation;

namespace ObjectMigration.Commands;

/// <summary>
/// Refuses an empty or blank wildcard pattern in a query (-Name '', -Key ''): it matches nothing, so the command would
/// quietly return nothing where a variable was probably unset. PowerShell's [ValidateNotNullOrEmpty] says "null value"
/// for it, which misleads.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class NoEmptyPatternAttribute : ValidateEnumeratedArgumentsAttribute
{
    protected override void ValidateElement(object element)
    {
        var text = (element is PSObject wrapped ? wrapped.BaseObject : element) as string;
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new ValidationMetadataException("An empty pattern matches nothing: give a name or wildcards (for example 'nightly-*'), or leave the parameter out for all.");
        }
    }
}
