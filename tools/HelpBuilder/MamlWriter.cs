using System.Text;
using System.Xml;

namespace HelpBuilder;

/// <summary>
/// Writes the MAML that Get-Help reads for compiled cmdlets (helpItems of command:command), element for element as
/// PlatyPS writes it: details, description, syntax, parameters, inputTypes, returnValues, alertSet, examples, relatedLinks.
/// </summary>
internal static class MamlWriter
{
    private const string Maml = "http://schemas.microsoft.com/maml/2004/10";
    private const string Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private const string Dev = "http://schemas.microsoft.com/maml/dev/2004/10";
    private const string MsHelp = "http://msdn.microsoft.com/mshelp";

    public static void Write(string path, IEnumerable<CommandHelp> commands)
    {
        var settings = new XmlWriterSettings { Indent = true, IndentChars = "  ", Encoding = new UTF8Encoding(false), NewLineChars = "\n" };
        using var xml = XmlWriter.Create(path, settings);
        xml.WriteStartDocument();
        xml.WriteStartElement("helpItems");
        xml.WriteAttributeString("schema", "maml");
        foreach (var command in commands) WriteCommand(xml, command);
        xml.WriteEndElement();
        xml.WriteEndDocument();
    }

    private static void WriteCommand(XmlWriter xml, CommandHelp help)
    {
        xml.WriteStartElement("command", "command", Command);
        xml.WriteAttributeString("xmlns", "maml", null, Maml);
        xml.WriteAttributeString("xmlns", "command", null, Command);
        xml.WriteAttributeString("xmlns", "dev", null, Dev);
        xml.WriteAttributeString("xmlns", "MSHelp", null, MsHelp);

        var dash = help.Name.IndexOf('-');
        xml.WriteStartElement("command", "details", Command);
        xml.WriteElementString("command", "name", Command, help.Name);
        xml.WriteElementString("command", "verb", Command, dash > 0 ? help.Name[..dash] : help.Name);
        xml.WriteElementString("command", "noun", Command, dash > 0 ? help.Name[(dash + 1)..] : "");
        WriteParas(xml, "description", help.Synopsis);
        xml.WriteEndElement();

        WriteParas(xml, "description", help.Description);

        xml.WriteStartElement("command", "syntax", Command);
        foreach (var set in help.Syntax)
        {
            xml.WriteStartElement("command", "syntaxItem", Command);
            xml.WriteElementString("maml", "name", Maml, help.Name);
            var positionalIndex = 0;
            foreach (var used in set.Parameters)
            {
                var described = help.Parameters.FirstOrDefault(p => p.Name.Equals(used.Name, StringComparison.OrdinalIgnoreCase));
                var position = "named";
                if (used.Positional)
                {
                    position = described is not null && int.TryParse(described.Position, out _) ? described.Position : positionalIndex.ToString();
                    positionalIndex++;
                }
                WriteParameter(xml, used.Name, described, used.Required, position, used.ValueType, inSyntax: true);
            }
            xml.WriteEndElement();
        }
        xml.WriteEndElement();

        xml.WriteStartElement("command", "parameters", Command);
        foreach (var parameter in help.Parameters)
        {
            WriteParameter(xml, parameter.Name, parameter, parameter.Required, parameter.Position.ToLowerInvariant(), parameter.Type, inSyntax: false);
        }
        xml.WriteEndElement();

        WriteTypes(xml, "inputTypes", "inputType", help.Inputs);
        WriteTypes(xml, "returnValues", "returnValue", help.Outputs);

        xml.WriteStartElement("maml", "alertSet", Maml);
        WriteParas(xml, "alert", help.Notes);
        xml.WriteEndElement();

        xml.WriteStartElement("command", "examples", Command);
        for (var i = 0; i < help.Examples.Count; i++)
        {
            var example = help.Examples[i];
            xml.WriteStartElement("command", "example", Command);
            xml.WriteElementString("maml", "title", Maml, ExampleTitle(example.Title));
            xml.WriteElementString("dev", "code", Dev, example.Code);
            xml.WriteStartElement("dev", "remarks", Dev);
            foreach (var para in Paras(example.Remarks)) xml.WriteElementString("maml", "para", Maml, para);
            // Get-Help prints the next example's title right under the last remark: an empty paragraph sets them apart.
            xml.WriteElementString("maml", "para", Maml, "");
            xml.WriteEndElement();
            xml.WriteEndElement();
        }
        xml.WriteEndElement();

        xml.WriteStartElement("command", "relatedLinks", Command);
        foreach (var link in help.Links)
        {
            xml.WriteStartElement("maml", "navigationLink", Maml);
            xml.WriteElementString("maml", "linkText", Maml, link.Text);
            xml.WriteElementString("maml", "uri", Maml, link.Uri);
            xml.WriteEndElement();
        }
        xml.WriteEndElement();

        xml.WriteEndElement();
    }

    /// <summary>The title between dashes, as in PowerShell's own help, 64 columns wide where the title leaves room.</summary>
    public static string ExampleTitle(string title)
    {
        var dashes = Math.Max(4, (64 - title.Length - 2) / 2);
        var line = new string('-', dashes);
        return $"{line} {title} {line}";
    }

    private static void WriteParameter(XmlWriter xml, string name, ParameterHelp? described, bool required, string position, string? syntaxType, bool inSyntax)
    {
        var type = described?.Type is { Length: > 0 } t ? t : syntaxType ?? "SwitchParameter";
        var isSwitch = type.Equals("SwitchParameter", StringComparison.OrdinalIgnoreCase) || type.Equals("switch", StringComparison.OrdinalIgnoreCase);
        if (isSwitch) type = "SwitchParameter";

        xml.WriteStartElement("command", "parameter", Command);
        xml.WriteAttributeString("required", required ? "true" : "false");
        xml.WriteAttributeString("variableLength", "true");
        xml.WriteAttributeString("globbing", described?.Globbing == true ? "true" : "false");
        xml.WriteAttributeString("pipelineInput", described?.PipelineInput ?? "False");
        xml.WriteAttributeString("position", position);
        xml.WriteAttributeString("aliases", described is { Aliases.Count: > 0 } ? string.Join(", ", described.Aliases) : "none");
        xml.WriteElementString("maml", "name", Maml, name);
        WriteParas(xml, "Description", described?.Description ?? []);
        // As in PowerShell's own help, a switch shows no value in a syntax line.
        if (!inSyntax || !isSwitch)
        {
            xml.WriteStartElement("command", "parameterValue", Command);
            xml.WriteAttributeString("required", isSwitch ? "false" : "true");
            xml.WriteAttributeString("variableLength", "false");
            xml.WriteString(type);
            xml.WriteEndElement();
        }
        xml.WriteStartElement("dev", "type", Dev);
        xml.WriteElementString("maml", "name", Maml, type);
        xml.WriteElementString("maml", "uri", Maml, "");
        xml.WriteEndElement();
        xml.WriteElementString("dev", "defaultValue", Dev, described?.DefaultValue ?? "None");
        xml.WriteEndElement();
    }

    private static void WriteTypes(XmlWriter xml, string listElement, string itemElement, IEnumerable<TypeHelp> types)
    {
        xml.WriteStartElement("command", listElement, Command);
        foreach (var type in types)
        {
            xml.WriteStartElement("command", itemElement, Command);
            xml.WriteStartElement("dev", "type", Dev);
            xml.WriteElementString("maml", "name", Maml, type.TypeName);
            xml.WriteEndElement();
            WriteParas(xml, "description", type.Description);
            xml.WriteEndElement();
        }
        xml.WriteEndElement();
    }

    private static void WriteParas(XmlWriter xml, string element, IEnumerable<TextBlock> text)
    {
        xml.WriteStartElement("maml", element, Maml);
        foreach (var para in Paras(text)) xml.WriteElementString("maml", "para", Maml, para);
        xml.WriteEndElement();
    }

    /// <summary>One maml:para per paragraph, list item, code block or table; Get-Help wraps each to the window.</summary>
    public static IEnumerable<string> Paras(IEnumerable<TextBlock> text)
    {
        foreach (var block in text)
        {
            yield return block switch
            {
                Paragraph p => p.Text,
                ListItem l => new string(' ', 2 * l.Depth) + (l.Marker.Length > 0 ? l.Marker + " " : "  ") + l.Text,
                CodeText c => string.Join("\n", c.Lines.Select(line => "    " + line)),
                TableText t => string.Join("\n", MarkdownText.TableLines(t)),
                Subheading h => h.Text.ToUpperInvariant(),
                _ => "",
            };
        }
    }
}
