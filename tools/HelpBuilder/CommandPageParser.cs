using System.Text.RegularExpressions;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace HelpBuilder;

/// <summary>Reads a cmdlet page in the PlatyPS layout (schema 2.0.0) into <see cref="CommandHelp"/>.</summary>
internal static partial class CommandPageParser
{
    public static readonly string[] SectionNames =
        ["SYNOPSIS", "SYNTAX", "DESCRIPTION", "EXAMPLES", "PARAMETERS", "INPUTS", "OUTPUTS", "NOTES", "RELATED LINKS"];

    private static readonly HashSet<string> Optional = [];

    private const int MinimumExamples = 2;

    public static CommandHelp Parse(Page page, string expectedName)
    {
        var help = new CommandHelp { Name = page.Title ?? expectedName };
        if (page.Title is not null && page.Title != expectedName)
        {
            page.Problem(page.TitleLine, $"The H1 heading '{page.Title}' is not the page's file name '{expectedName}'.");
        }
        if (page.FrontMatter.Count == 0) page.Problem(1, "No front matter (external help file, Module Name, online version, schema: 2.0.0).");
        else if (!page.FrontMatter.TryGetValue("schema", out var schema) || schema != "2.0.0") page.Problem(1, "The front matter says no 'schema: 2.0.0'.");

        var sections = page.SectionsByName(SectionNames, Optional);
        if (sections.TryGetValue("SYNOPSIS", out var synopsis))
        {
            help.Synopsis.AddRange(synopsis.Text());
            if (help.Synopsis.Count == 0) page.Problem(synopsis.Line, "SYNOPSIS is empty.");
        }
        if (sections.TryGetValue("SYNTAX", out var syntax)) ReadSyntax(page, help, syntax);
        if (sections.TryGetValue("DESCRIPTION", out var description))
        {
            help.Description.AddRange(description.Text());
            if (help.Description.Count == 0) page.Problem(description.Line, "DESCRIPTION is empty.");
        }
        if (sections.TryGetValue("EXAMPLES", out var examples)) ReadExamples(page, help, examples);
        if (sections.TryGetValue("PARAMETERS", out var parameters)) ReadParameters(page, help, parameters);
        if (sections.TryGetValue("INPUTS", out var inputs)) help.Inputs.AddRange(ReadTypes(page, inputs));
        if (sections.TryGetValue("OUTPUTS", out var outputs)) help.Outputs.AddRange(ReadTypes(page, outputs));
        if (sections.TryGetValue("NOTES", out var notes)) help.Notes.AddRange(notes.Text());
        if (sections.TryGetValue("RELATED LINKS", out var links)) help.Links.AddRange(ReadLinks(links));

        // Text under a heading the layout does not have is kept, at the end of the notes, so no fact is lost.
        foreach (var unknown in page.UnknownSections(SectionNames))
        {
            help.Notes.Add(new Subheading(unknown.Title));
            help.Notes.AddRange(unknown.Text());
        }
        CheckSyntaxAgainstParameters(page, help, syntax);
        return help;
    }

    private static void ReadSyntax(Page page, CommandHelp help, Section section)
    {
        var untitled = section.Parts[0].Blocks.OfType<CodeBlock>().ToList();
        if (untitled.Count > 0)
        {
            page.Problem(untitled[0], "Syntax without a '### <ParameterSetName>' heading; the layout has one per parameter set.");
            foreach (var line in untitled.SelectMany(MarkdownText.CodeLines).Where(l => l.Trim().Length > 0))
            {
                help.Syntax.Add(ParseSyntaxLine(page, untitled[0], help.Name, line, $"Set{help.Syntax.Count + 1}", false));
            }
        }
        foreach (var part in section.Titled)
        {
            var isDefault = part.Title!.EndsWith("(Default)", StringComparison.Ordinal);
            var name = isDefault ? part.Title[..^"(Default)".Length].Trim() : part.Title;
            var lines = part.Blocks.OfType<CodeBlock>().SelectMany(MarkdownText.CodeLines).Where(l => l.Trim().Length > 0).ToList();
            if (lines.Count != 1)
            {
                page.Problem(part.Line, $"Parameter set '{name}' needs exactly one syntax line in a code block (it has {lines.Count}).");
                if (lines.Count == 0) continue;
            }
            help.Syntax.Add(ParseSyntaxLine(page, part.Blocks.OfType<CodeBlock>().First(), help.Name, string.Join(" ", lines), name, isDefault));
        }
        if (help.Syntax.Count == 0) page.Problem(section.Line, "SYNTAX has no syntax line.");
    }

    [GeneratedRegex(@"\[|\]|\||<[^>]+>|-[A-Za-z][A-Za-z0-9_]*|[^\s\[\]|<>]+")]
    private static partial Regex SyntaxToken();

    /// <summary>
    /// The brackets of a syntax line say it all: [-Name] &lt;T&gt; is a required parameter whose name may be left
    /// out, [[-Name] &lt;T&gt;] an optional one, [-Name &lt;T&gt;] optional and named, -Name &lt;T&gt; required and named.
    /// </summary>
    public static SyntaxSet ParseSyntaxLine(Page page, Block block, string command, string line, string setName, bool isDefault)
    {
        var tokens = SyntaxToken().Matches(line).Select(m => m.Value).ToList();
        if (tokens.Count == 0 || tokens[0] != command) page.Problem(block, $"The syntax line of '{setName}' does not start with '{command}'.");
        static bool IsType(string token) => token.StartsWith('<') && token != "<CommonParameters>";
        var parameters = new List<SyntaxParameter>();
        var depth = 0;
        for (var i = 1; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token == "[") { depth++; continue; }
            if (token == "]") { depth--; continue; }
            if (!token.StartsWith('-')) continue;
            var positional = tokens[i - 1] == "[" && i + 2 < tokens.Count && tokens[i + 1] == "]" && IsType(tokens[i + 2]);
            var type = positional ? tokens[i + 2] : i + 1 < tokens.Count && IsType(tokens[i + 1]) ? tokens[i + 1] : null;
            var required = depth - (positional ? 1 : 0) == 0;
            parameters.Add(new SyntaxParameter(token[1..], type?[1..^1], required, positional));
        }
        if (depth != 0) page.Problem(block, $"The syntax line of '{setName}' has unbalanced brackets.");
        return new SyntaxSet(setName, isDefault, parameters);
    }

    private static void ReadExamples(Page page, CommandHelp help, Section section)
    {
        if (section.Parts[0].Blocks.Count > 0) page.Problem(section.Parts[0].Blocks[0], "Text in EXAMPLES before the first '### Example' heading.");
        foreach (var part in section.Titled)
        {
            var code = part.Blocks.OfType<CodeBlock>().FirstOrDefault();
            if (code is null)
            {
                page.Problem(part.Line, $"Example '{part.Title}' has no code block.");
                continue;
            }
            var lines = MarkdownText.CodeLines(code);
            if (lines.Count == 0 || !lines[0].StartsWith("PS> ", StringComparison.Ordinal))
            {
                page.Problem(code, $"The code of example '{part.Title}' does not start with the prompt 'PS> '.");
            }
            var remarks = part.Blocks.Where(b => b != code).SelectMany(b => MarkdownText.FromBlock(b)).ToList();
            if (remarks.Count == 0) page.Problem(part.Line, $"Example '{part.Title}' says nothing about what it does.");
            help.Examples.Add(new ExampleHelp(part.Title!, string.Join("\n", lines), remarks));
        }
        if (help.Examples.Count < MinimumExamples)
        {
            page.Problem(section.Line, $"{help.Examples.Count} example(s); the layout asks for at least {MinimumExamples} (at a prompt, and unattended).");
        }
    }

    private static readonly string[] ParameterFields =
        ["Type", "Parameter Sets", "Aliases", "Required", "Position", "Default value", "Accept pipeline input", "Accept wildcard characters"];

    private static void ReadParameters(Page page, CommandHelp help, Section section)
    {
        foreach (var part in section.Titled)
        {
            if (part.Title == "CommonParameters") continue;
            if (!part.Title!.StartsWith('-') || part.Title.Length < 2 || part.Title.Contains(' '))
            {
                page.Problem(part.Line, $"'### {part.Title}' is neither '### -<ParameterName>' nor '### CommonParameters'.");
                continue;
            }
            var parameter = new ParameterHelp { Name = part.Title[1..] };
            var yaml = part.Blocks.OfType<FencedCodeBlock>().Where(b => b.Info == "yaml").ToList();
            if (yaml.Count == 0) page.Problem(part.Line, $"-{parameter.Name} has no yaml block (Type, Parameter Sets, Aliases, Required, Position, Default value, Accept pipeline input, Accept wildcard characters).");
            else
            {
                foreach (var line in MarkdownText.CodeLines(yaml[0]))
                {
                    var colon = line.IndexOf(':');
                    if (colon > 0) parameter.Fields[line[..colon].Trim()] = line[(colon + 1)..].Trim();
                }
                var missing = ParameterFields.Where(f => !parameter.Fields.ContainsKey(f)).ToList();
                if (missing.Count > 0) page.Problem(yaml[0], $"-{parameter.Name}'s yaml block has no {string.Join(", ", missing)}.");
                if (string.IsNullOrEmpty(parameter.Type)) page.Problem(yaml[0], $"-{parameter.Name} has no Type.");
            }
            parameter.Description.AddRange(part.Blocks.Where(b => !yaml.Contains(b)).SelectMany(b => MarkdownText.FromBlock(b)));
            if (parameter.Description.Count == 0) page.Problem(part.Line, $"-{parameter.Name} has no description.");
            if (help.Parameters.Any(p => p.Name.Equals(parameter.Name, StringComparison.OrdinalIgnoreCase)))
            {
                page.Problem(part.Line, $"A second section for -{parameter.Name}.");
                continue;
            }
            help.Parameters.Add(parameter);
        }
    }

    private static IEnumerable<TypeHelp> ReadTypes(Page page, Section section)
    {
        if (section.Parts[0].Blocks.Count > 0) page.Problem(section.Parts[0].Blocks[0], $"Text in {section.Title} before the first '### <TypeName>' heading.");
        if (!section.Titled.Any()) page.Problem(section.Line, $"{section.Title} has no '### <TypeName>' (or '### None').");
        return section.Titled.Select(part => new TypeHelp(part.Title!, part.Blocks.SelectMany(b => MarkdownText.FromBlock(b)).ToList()));
    }

    private static IEnumerable<LinkHelp> ReadLinks(Section section)
    {
        foreach (var block in section.Parts.SelectMany(p => p.Blocks).SelectMany(Leaves))
        {
            if (block is not LeafBlock { Inline: { } inline }) continue;
            var links = inline.Descendants<LinkInline>().Where(l => !l.IsImage).ToList();
            if (links.Count == 0)
            {
                var text = MarkdownText.Inline(inline);
                if (text.Length > 0) yield return new LinkHelp(text, "");
                continue;
            }
            foreach (var link in links)
            {
                var text = MarkdownText.Inline(link);
                yield return new LinkHelp(text.Length > 0 ? text : link.Url ?? "", MarkdownText.IsAbsolute(link.Url) ? link.Url! : "");
            }
        }
    }

    private static IEnumerable<Block> Leaves(Block block) =>
        block is ContainerBlock container ? container.SelectMany(Leaves) : [block];

    /// <summary>The page against itself: every parameter of a syntax line has its section, and every section's parameter a syntax line.</summary>
    private static void CheckSyntaxAgainstParameters(Page page, CommandHelp help, Section? syntax)
    {
        if (syntax is null) return;
        var inSyntax = help.Syntax.SelectMany(s => s.Parameters).Select(p => p.Name).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        foreach (var name in inSyntax.Where(n => !help.Parameters.Any(p => p.Name.Equals(n, StringComparison.OrdinalIgnoreCase))))
        {
            page.Problem(syntax.Line, $"-{name} is in SYNTAX but has no '### -{name}' section under PARAMETERS.");
        }
        foreach (var parameter in help.Parameters.Where(p => !inSyntax.Contains(p.Name, StringComparer.OrdinalIgnoreCase)))
        {
            page.Problem(syntax.Line, $"-{parameter.Name} has a section under PARAMETERS but is in no syntax line.");
        }
    }
}
