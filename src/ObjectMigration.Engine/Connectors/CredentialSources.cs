namespace ObjectMigration.Engine.Connectors;

/// <summary>Where credentials come from when none are given: an AWS shared-credentials profile or the AWS environment variables.</summary>
public static class CredentialSources
{
    public static (string AccessKeyId, string Secret) FromProfile(string profileName, string? credentialsFile = null)
    {
        var path = credentialsFile
            ?? Environment.GetEnvironmentVariable("AWS_SHARED_CREDENTIALS_FILE")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".aws", "credentials");
        if (!File.Exists(path))
        {
            throw new ConnectorDefinitionException("ProfileName", $"There is no AWS credentials file at '{path}'; create it or pass -Credential.");
        }
        string? section = null, accessKey = null, secret = null;
        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';') continue;
            if (line[0] == '[' && line[^1] == ']')
            {
                section = line[1..^1].Trim();
                if (section.StartsWith("profile ", StringComparison.Ordinal)) section = section["profile ".Length..].Trim();
                continue;
            }
            if (section != profileName) continue;
            var equals = line.IndexOf('=');
            if (equals < 0) continue;
            var name = line[..equals].Trim().ToLowerInvariant();
            var value = line[(equals + 1)..].Trim();
            if (name == "aws_access_key_id") accessKey = value;
            else if (name == "aws_secret_access_key") secret = value;
        }
        if (string.IsNullOrEmpty(accessKey) || string.IsNullOrEmpty(secret))
        {
            throw new ConnectorDefinitionException("ProfileName", $"The profile '{profileName}' in '{path}' has no aws_access_key_id and aws_secret_access_key.");
        }
        return (accessKey, secret);
    }

    public static (string AccessKeyId, string Secret) FromEnvironment()
    {
        var accessKey = Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
        var secret = Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
        if (string.IsNullOrEmpty(accessKey) || string.IsNullOrEmpty(secret))
        {
            throw new ConnectorDefinitionException("Credential",
                "No credentials: pass -Credential (user name = access key id, password = secret), -ProfileName, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.");
        }
        return (accessKey, secret);
    }
}
