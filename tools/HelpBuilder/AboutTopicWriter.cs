using System.Text;

namespace HelpBuilder;

/// <summary>
/// Turns an about_ page (H1 topic name; ## SHORT DESCRIPTION, ## LONG DESCRIPTION with ### subheadings, ## SEE ALSO)
/// into the plain text Get-Help prints: headings at the margin, text indented and wrapped to 80 columns.
/// </summary>
internal static class AboutTopicWriter
{
    public static readonly string[] SectionNames = ["SHORT DESCRIPTION", "LONG DESCRIPTION", "SEE ALSO"];

    private const int Width = 80;
    private const int Indent = 4;

    public static string Convert(Page page, string expectedName)
    {
        if (page.Title is not null && page.Title != expectedName)
        {
            page.Problem(page.TitleLine, $"The H1 heading '{page.Title}' is not the page's file name '{expectedName}'.");
        }
        var sections = page.SectionsByName(SectionNames, new HashSet<string>());
        if (sections.TryGetValue("SHORT DESCRIPTION", out var shortDescription) && shortDescription.Text().Count == 0)
        {
            page.Problem(shortDescription.Line, "SHORT DESCRIPTION is empty.");
        }

        var lines = new List<string> { "TOPIC", Margin + (page.Title ?? expectedName) };
        foreach (var section in page.Sections)
        {
            lines.Add("");
            lines.Add(section.Title.ToUpperInvariant());
            TextBlock? previous = null;
            foreach (var block in section.Text())
            {
                // Blocks are set apart by a blank line, but the items of one list and the text right under a heading are not.
                if (previous is not null && !(previous is ListItem && block is ListItem) && previous is not Subheading) lines.Add("");
                AppendBlock(lines, block);
                previous = block;
            }
        }
        return string.Join("\n", lines) + "\n";
    }

    private static readonly string Margin = new(' ', Indent);

    private static void AppendBlock(List<string> lines, TextBlock block)
    {
        switch (block)
        {
            case Subheading heading:
                lines.Add("  " + heading.Text.ToUpperInvariant());
                break;
            case Paragraph paragraph:
                foreach (var line in paragraph.Text.Split('\n')) Wrap(lines, line, Margin, Margin);
                break;
            case ListItem item:
                var itemMargin = Margin + new string(' ', 2 * item.Depth);
                var first = item.Marker.Length > 0 ? itemMargin + item.Marker + " " : itemMargin + "  ";
                Wrap(lines, item.Text, first, new string(' ', first.Length));
                break;
            case CodeText code:
                lines.AddRange(code.Lines.Select(line => (Margin + "    " + line).TrimEnd()));
                break;
            case TableText table:
                lines.AddRange(MarkdownText.TableLines(table).Select(line => Margin + line));
                break;
        }
    }

    /// <summary>Words to lines of at most 80 columns; a word longer than a line stands alone.</summary>
    private static void Wrap(List<string> lines, string paragraph, string firstMargin, string margin)
    {
        var line = new StringBuilder(firstMargin);
        var empty = true;
        foreach (var word in paragraph.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!empty && line.Length + 1 + word.Length > Width)
            {
                lines.Add(line.ToString());
                line.Clear().Append(margin);
                empty = true;
            }
            if (!empty) line.Append(' ');
            line.Append(word);
            empty = false;
        }
        lines.Add(line.ToString().TrimEnd());
    }
}
