using System.Text;
using Markdig.Extensions.Tables;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace HelpBuilder;

/// <summary>Help text as a console shows it: markdown blocks reduced to paragraphs, list items, code and tables.</summary>
internal abstract record TextBlock;

internal sealed record Paragraph(string Text) : TextBlock;

internal sealed record ListItem(string Marker, int Depth, string Text) : TextBlock;

internal sealed record CodeText(IReadOnlyList<string> Lines) : TextBlock;

internal sealed record TableText(IReadOnlyList<IReadOnlyList<string>> Rows) : TextBlock;

internal sealed record Subheading(string Text) : TextBlock;

internal static class MarkdownText
{
    /// <summary>The text of one block and what it contains, in reading order.</summary>
    public static IEnumerable<TextBlock> FromBlock(Block block, int listDepth = 0)
    {
        switch (block)
        {
            case HeadingBlock heading:
                yield return new Subheading(Inline(heading.Inline));
                break;
            case ParagraphBlock paragraph:
                yield return new Paragraph(Inline(paragraph.Inline));
                break;
            case CodeBlock code:
                yield return new CodeText(CodeLines(code));
                break;
            case ListBlock list:
                var number = int.TryParse(list.OrderedStart, out var start) ? start : 1;
                foreach (var item in list.OfType<ListItemBlock>())
                {
                    var marker = list.IsOrdered ? $"{number++}{list.OrderedDelimiter}" : "-";
                    var first = true;
                    foreach (var child in item)
                    {
                        if (first && child is ParagraphBlock p)
                        {
                            yield return new ListItem(marker, listDepth, Inline(p.Inline));
                        }
                        else
                        {
                            if (first) yield return new ListItem(marker, listDepth, "");
                            foreach (var inner in FromBlock(child, listDepth + 1))
                            {
                                // A list item's further paragraphs stay with it, indented as a continuation.
                                yield return inner is Paragraph continued ? new ListItem("", listDepth + 1, continued.Text) : inner;
                            }
                        }
                        first = false;
                    }
                }
                break;
            case Table table:
                var rows = new List<IReadOnlyList<string>>();
                foreach (var row in table.OfType<TableRow>())
                {
                    rows.Add(row.OfType<TableCell>().Select(cell => string.Join(" ", cell.SelectMany(b => FromBlock(b)).Select(Plain))).ToList());
                }
                yield return new TableText(rows);
                break;
            case ContainerBlock container:
                foreach (var child in container)
                {
                    foreach (var inner in FromBlock(child, listDepth)) yield return inner;
                }
                break;
            case ThematicBreakBlock:
                break;
            case LeafBlock leaf:
                // Anything else (an HTML block, say) as its source text.
                var text = string.Join(" ", CodeLines(leaf)).Trim();
                if (text.Length > 0) yield return new Paragraph(text);
                break;
        }
    }

    public static List<string> CodeLines(LeafBlock block)
    {
        var lines = new List<string>();
        for (var i = 0; i < block.Lines.Count; i++) lines.Add(block.Lines.Lines[i].Slice.ToString());
        return lines;
    }

    /// <summary>Inline markdown as plain text: emphasis dropped, code spans kept in backticks, a link as its text.</summary>
    public static string Inline(ContainerInline? inline)
    {
        if (inline is null) return "";
        var text = new StringBuilder();
        Append(text, inline);
        return text.ToString().Trim();
    }

    private static void Append(StringBuilder text, Inline inline)
    {
        switch (inline)
        {
            case LiteralInline literal:
                text.Append(literal.Content.ToString());
                break;
            case CodeInline code:
                text.Append('`').Append(code.Content).Append('`');
                break;
            case LineBreakInline lineBreak:
                text.Append(lineBreak.IsHard ? "\n" : " ");
                break;
            case AutolinkInline autolink:
                text.Append(autolink.Url);
                break;
            case HtmlEntityInline entity:
                text.Append(entity.Transcoded.ToString());
                break;
            case HtmlInline html:
                // Text such as <CommonParameters> reads as an HTML tag to a markdown parser: keep it as written.
                text.Append(html.Tag);
                break;
            case LinkInline { IsImage: true }:
                break;
            case LinkInline link:
                var start = text.Length;
                foreach (var child in link) Append(text, child);
                var label = text.ToString(start, text.Length - start);
                if (IsAbsolute(link.Url) && label != link.Url) text.Append(" (").Append(link.Url).Append(')');
                break;
            case ContainerInline container:
                foreach (var child in container) Append(text, child);
                break;
        }
    }

    public static bool IsAbsolute(string? url) =>
        url is not null && Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https";

    /// <summary>One block's text on one line, for table cells and messages.</summary>
    public static string Plain(TextBlock block) => block switch
    {
        Paragraph p => p.Text,
        ListItem l => $"{l.Marker} {l.Text}".Trim(),
        CodeText c => string.Join(" ", c.Lines),
        TableText t => string.Join(" ", t.Rows.Select(r => string.Join(" ", r))),
        Subheading h => h.Text,
        _ => "",
    };

    /// <summary>A table as aligned columns, the header row underlined.</summary>
    public static List<string> TableLines(TableText table)
    {
        if (table.Rows.Count == 0) return [];
        var columns = table.Rows.Max(r => r.Count);
        var widths = Enumerable.Range(0, columns).Select(c => table.Rows.Max(r => c < r.Count ? r[c].Length : 0)).ToArray();
        string Line(IReadOnlyList<string> row) =>
            string.Join("  ", Enumerable.Range(0, columns).Select(c => (c < row.Count ? row[c] : "").PadRight(widths[c]))).TrimEnd();
        var lines = new List<string> { Line(table.Rows[0]), string.Join("  ", widths.Select(w => new string('-', Math.Max(w, 1)))) };
        lines.AddRange(table.Rows.Skip(1).Select(Line));
        return lines;
    }
}
