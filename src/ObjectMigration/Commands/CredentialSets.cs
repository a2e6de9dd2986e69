namespace ObjectMigration.Commands;

/// <summary>The parameter sets that choose a connector's credential source: one source per connector, so two at once is a binding error.</summary>
internal static class CredentialSets
{
    public const string Stored = "Credential";
    public const string Profile = "Profile";
    public const string Environment = "EnvironmentCredentials";
    public const string InstanceRole = "InstanceRole";
}
