using HelpBuilder;

// HelpBuilder --docs <folder of *.md> --out <en-US folder> [--help-file <name>] [--commands A,B,...] [--strict]
// Cmdlet pages become one MAML file, about_*.md pages about_*.help.txt files. Pages that stray from the layout are
// still converted as far as they go; --strict lists every problem and fails.
var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
var strict = false;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--strict") strict = true;
    else if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length) options[args[i][2..]] = args[++i];
    else return Usage($"Unexpected argument '{args[i]}'.");
}
if (!options.TryGetValue("docs", out var docs) || !options.TryGetValue("out", out var output)) return Usage("--docs and --out are required.");
if (!Directory.Exists(docs)) return Usage($"No folder '{docs}'.");
var helpFile = options.GetValueOrDefault("help-file", "ObjectMigration.dll-Help.xml");
var expected = options.TryGetValue("commands", out var list)
    ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.OrdinalIgnoreCase)
    : null;

var problems = new List<Problem>();
var commands = new List<CommandHelp>();
var abouts = new List<(string Name, string Text)>();
var pagesWithProblems = 0;
foreach (var path in Directory.GetFiles(docs, "*.md").Order(StringComparer.Ordinal))
{
    var name = Path.GetFileNameWithoutExtension(path);
    var page = Page.Read(path, Path.GetRelativePath(Environment.CurrentDirectory, path));
    if (name.StartsWith("about_", StringComparison.OrdinalIgnoreCase))
    {
        abouts.Add((name, AboutTopicWriter.Convert(page, name)));
    }
    else if (expected is not null && !expected.Contains(name))
    {
        page.Problem(1, $"'{name}' is not a cmdlet the module exports; the page is left out of the help.");
    }
    else
    {
        commands.Add(CommandPageParser.Parse(page, name));
    }
    problems.AddRange(page.Problems);
    if (page.Problems.Count > 0) pagesWithProblems++;
}
foreach (var missing in (expected ?? []).Where(c => !commands.Any(h => h.Name.Equals(c, StringComparison.OrdinalIgnoreCase))).Order())
{
    problems.Add(new Problem(docs, 0, $"The cmdlet {missing} has no page ({missing}.md)."));
}

Directory.CreateDirectory(output);
// What an earlier run wrote goes first, so a page that was removed leaves no help behind.
foreach (var stale in Directory.GetFiles(output, "about_*.help.txt")) File.Delete(stale);
var mamlPath = Path.Combine(output, helpFile);
if (File.Exists(mamlPath)) File.Delete(mamlPath);
if (commands.Count > 0) MamlWriter.Write(mamlPath, commands.OrderBy(c => c.Name, StringComparer.Ordinal));
foreach (var (name, text) in abouts) File.WriteAllText(Path.Combine(output, name + ".help.txt"), text);
Console.WriteLine($"HelpBuilder: {commands.Count} cmdlet(s) into {Path.Combine(Path.GetFileName(output), helpFile)}, {abouts.Count} about topic(s).");

if (problems.Count == 0) return 0;
if (strict)
{
    foreach (var problem in problems) Console.Error.WriteLine($"{problem.File}({problem.Line}): error: {problem.Message}");
    Console.Error.WriteLine($"HelpBuilder: {problems.Count} problem(s) in the help pages.");
    return 1;
}
Console.WriteLine($"HelpBuilder: warning: {pagesWithProblems} page(s) stray from the help layout ({problems.Count} problem(s)); build.ps1 -Task Docs lists them.");
return 0;

static int Usage(string message)
{
    Console.Error.WriteLine($"HelpBuilder: {message}");
    Console.Error.WriteLine("Usage: HelpBuilder --docs <folder> --out <folder> [--help-file <name>] [--commands A,B,...] [--strict]");
    return 2;
}
