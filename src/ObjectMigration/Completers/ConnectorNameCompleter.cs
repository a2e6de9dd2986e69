using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using ObjectMigration.Engine;

namespace ObjectMigration.Completers;

public sealed class ConnectorNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var pattern = new WildcardPattern((wordToComplete ?? "").Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        return MigrationEngine.Open().Store.GetConnectors()
            .Where(c => pattern.IsMatch(c.Name))
            .Select(c => new CompletionResult(c.Name.Contains(' ') ? $"'{c.Name}'" : c.Name, c.Name, CompletionResultType.ParameterValue, $"{c.Provider} {c.Endpoint}"));
    }
}

public sealed class JobIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var prefix = (wordToComplete ?? "").Trim('\'', '"');
        return MigrationEngine.Open().Store.GetJobs()
            .Where(j => j.Id.ToString().StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || j.Name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .Select(j => new CompletionResult(j.Id.ToString(), $"{j.Name} ({j.State})", CompletionResultType.ParameterValue, $"{j.Name}: {j.State}"));
    }
}

public sealed class JobNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var pattern = new WildcardPattern((wordToComplete ?? "").Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        return MigrationEngine.Open().Store.GetJobs()
            .Select(j => j.Name).Distinct(StringComparer.OrdinalIgnoreCase).Where(pattern.IsMatch).Order(StringComparer.OrdinalIgnoreCase)
            .Select(name => new CompletionResult(Quoted(name), name, CompletionResultType.ParameterValue, name));
    }

    internal static string Quoted(string value) =>
        value.IndexOfAny([' ', '\'', '"', '$', '`', '(', ')', '{', '}', ';', ',', '&', '|', '@', '#']) >= 0 ? $"'{value.Replace("'", "''")}'" : value;
}

/// <summary>
/// Bucket names of the connector named in the same command (-SourceConnector for -SourceBucket, -TargetConnector for
/// -TargetBucket, -Name for Test-CloudConnector -Bucket). A prompt must not hang on a slow endpoint: after 3 seconds,
/// or on any error, it offers nothing.
/// </summary>
public sealed class BucketNameCompleter : IArgumentCompleter
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(3);

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var connectorParameter = parameterName switch
        {
            "SourceBucket" => "SourceConnector",
            "TargetBucket" => "TargetConnector",
            _ => "Name",
        };
        if (fakeBoundParameters[connectorParameter] is not string connectorName || connectorName.Length == 0) return [];
        var pattern = new WildcardPattern((wordToComplete ?? "").Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        try
        {
            var engine = MigrationEngine.Open();
            var connector = engine.Store.FindConnector(connectorName);
            if (connector is null) return [];
            var access = engine.GetAccess(connector);
            using var budget = new CancellationTokenSource(Budget);
            var listing = Task.Run(async () =>
            {
                using var store = MigrationEngine.OpenObjectStore(access, timeout: Budget);
                return await store.ListBucketsAsync(budget.Token).ConfigureAwait(false);
            });
            if (!listing.Wait(Budget)) return [];
            return listing.Result.Select(b => b.Name).Where(pattern.IsMatch).Order(StringComparer.Ordinal)
                .Select(name => new CompletionResult(name, name, CompletionResultType.ParameterValue, $"{connector.Name}/{name}")).ToList();
        }
        catch (Exception)
        {
            // A completer that throws prints nothing useful at a prompt; offering nothing is the quiet answer.
            return [];
        }
    }
}
