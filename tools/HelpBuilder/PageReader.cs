using Markdig;
using Markdig.Extensions.Yaml;
using Markdig.Syntax;

namespace HelpBuilder;

/// <summary>Something a page does not do as the layout asks; the build warns, -Task Docs fails.</summary>
internal sealed record Problem(string File, int Line, string Message);

/// <summary>A page cut at its headings: H2 sections, each with the text before its first H3 and one part per H3.</summary>
internal sealed class Page
{
    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder().UseYamlFrontMatter().UsePipeTables().Build();

    public required string File { get; init; }
    public string? Title { get; private set; }
    public int TitleLine { get; private set; }
    public Dictionary<string, string> FrontMatter { get; } = new(StringComparer.OrdinalIgnoreCase);
    public List<Section> Sections { get; } = [];
    public List<Problem> Problems { get; } = [];

    public static Page Read(string path, string displayName)
    {
        var page = new Page { File = displayName };
        var document = Markdown.Parse(System.IO.File.ReadAllText(path), Pipeline);
        Part? part = null;
        foreach (var block in document)
        {
            switch (block)
            {
                case YamlFrontMatterBlock front:
                    foreach (var line in MarkdownText.CodeLines(front))
                    {
                        var colon = line.IndexOf(':');
                        if (colon > 0) page.FrontMatter[line[..colon].Trim()] = line[(colon + 1)..].Trim();
                    }
                    break;
                case HeadingBlock { Level: 1 } h1:
                    if (page.Title is not null) page.Problem(h1, "A second H1 heading; a page has one, its command or topic name.");
                    page.Title = MarkdownText.Inline(h1.Inline);
                    page.TitleLine = h1.Line + 1;
                    break;
                case HeadingBlock { Level: 2 } h2:
                    var section = new Section(MarkdownText.Inline(h2.Inline), h2.Line + 1);
                    page.Sections.Add(section);
                    part = section.Parts[0];
                    break;
                case HeadingBlock { Level: 3 } h3 when page.Sections.Count > 0:
                    part = new Part(MarkdownText.Inline(h3.Inline), h3.Line + 1);
                    page.Sections[^1].Parts.Add(part);
                    break;
                default:
                    if (part is null) page.Problem(block, "Text before the first H2 section.");
                    else part.Blocks.Add(block);
                    break;
            }
        }
        if (page.Title is null) page.Problems.Add(new Problem(displayName, 1, "No H1 heading with the command or topic name."));
        return page;
    }

    public void Problem(Block block, string message) => Problems.Add(new Problem(File, block.Line + 1, message));

    public void Problem(int line, string message) => Problems.Add(new Problem(File, line, message));

    /// <summary>
    /// The sections by their upper-case names, in the order given; a heading in another case is accepted with a
    /// problem, a missing one is a problem, and so is a section the layout does not have or one out of order.
    /// </summary>
    public Dictionary<string, Section> SectionsByName(string[] names, IReadOnlySet<string> optional)
    {
        var found = new Dictionary<string, Section>(StringComparer.Ordinal);
        var lastIndex = -1;
        foreach (var section in Sections)
        {
            var name = section.Title.ToUpperInvariant();
            var index = Array.IndexOf(names, name);
            if (index < 0)
            {
                Problem(section.Line, $"'## {section.Title}' is no section of the layout ({string.Join(", ", names)}).");
                continue;
            }
            if (section.Title != name) Problem(section.Line, $"Write the heading as '## {name}'.");
            if (!found.TryAdd(name, section))
            {
                Problem(section.Line, $"A second '## {name}' section.");
                continue;
            }
            if (index < lastIndex) Problem(section.Line, $"'## {name}' is out of order; the layout's order is {string.Join(", ", names)}.");
            lastIndex = Math.Max(lastIndex, index);
        }
        foreach (var name in names.Where(n => !found.ContainsKey(n) && !optional.Contains(n)))
        {
            Problem(TitleLine, $"No '## {name}' section.");
        }
        return found;
    }

    /// <summary>Sections the layout does not have, to keep their text somewhere rather than lose it.</summary>
    public IEnumerable<Section> UnknownSections(string[] names) =>
        Sections.Where(s => !names.Contains(s.Title.ToUpperInvariant()));
}

internal sealed class Section(string title, int line)
{
    public string Title { get; } = title;
    public int Line { get; } = line;

    /// <summary>Parts[0] is the text before the first H3 (title null); then one part per H3.</summary>
    public List<Part> Parts { get; } = [new Part(null, line)];

    public IEnumerable<Part> Titled => Parts.Skip(1);

    /// <summary>All of the section as text, an H3 as a subheading.</summary>
    public List<TextBlock> Text()
    {
        var text = new List<TextBlock>();
        foreach (var part in Parts)
        {
            if (part.Title is not null) text.Add(new Subheading(part.Title));
            text.AddRange(part.Blocks.SelectMany(b => MarkdownText.FromBlock(b)));
        }
        return text;
    }
}

internal sealed class Part(string? title, int line)
{
    public string? Title { get; } = title;
    public int Line { get; } = line;
    public List<Block> Blocks { get; } = [];
}
