using System.Management.Automation;

namespace ObjectMigration.Commands;

/// <summary>
/// PowerShell's [Credential] (a user name given as text prompts for the password), plus a clear error for a value
/// that is neither: [Credential] alone fails on one with the bare word "userName".
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class CredentialInputAttribute : ArgumentTransformationAttribute
{
    private static readonly CredentialAttribute Prompting = new();

    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
        if (value is null or string or PSCredential) return Prompting.Transform(engineIntrinsics, inputData);
        throw new ArgumentTransformationMetadataException(
            $"A {value.GetType().Name} is not a credential: give a PSCredential whose user name is the access key id and whose password is the secret, " +
            "e.g. (Get-Credential) or [pscredential]::new('AKIA...', (Read-Host -AsSecureString)).");
    }
}
