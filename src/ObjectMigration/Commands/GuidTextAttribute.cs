using System.Collections;
using System.Management.Automation;

namespace ObjectMigration.Commands;

/// <summary>
/// Turns text that is not a GUID into an error that says what to give: PowerShell's own ("Unrecognized Guid format")
/// names neither the kind of id nor where to find one. GUIDs, GUID text and pipeline input pass unchanged.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class GuidTextAttribute(string what, string where) : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
        return value switch
        {
            string text => Parse(text),
            IEnumerable items and not Guid[] => items.Cast<object?>().Select(i => (i is PSObject p ? p.BaseObject : i) is string t ? Parse(t) : i).ToArray(),
            _ => inputData,
        };
    }

    private object Parse(string text)
    {
        if (Guid.TryParse(text.Trim(), out var id)) return id;
        var shown = text.Length <= 40 ? text : text[..40] + "...";
        throw new ArgumentTransformationMetadataException($"'{shown}' is not a {what}: give the GUID {where} shows in its Id column (for example 3f2b8a61-0c4e-4d4f-9a51-2f0d8c7e6b10).");
    }
}
