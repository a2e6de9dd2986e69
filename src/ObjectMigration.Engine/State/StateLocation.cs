namespace ObjectMigration.Engine.State;

/// <summary>Where a user's state lives: OBJECTMIGRATION_HOME, else the local data folder.</summary>
public static class StateLocation
{
    public const string HomeVariable = "OBJECTMIGRATION_HOME";

    public static string HomeFolder()
    {
        var overridden = Environment.GetEnvironmentVariable(HomeVariable);
        if (!string.IsNullOrWhiteSpace(overridden)) return Path.GetFullPath(overridden);
        var local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create);
        if (string.IsNullOrEmpty(local))
        {
            local = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        }
        return Path.Combine(local, "ObjectMigration");
    }

    public static string DatabasePath(string? home = null) => Path.Combine(home ?? HomeFolder(), "state.db");
}
