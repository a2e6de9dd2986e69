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
