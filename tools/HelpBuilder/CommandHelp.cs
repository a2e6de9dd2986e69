namespace HelpBuilder;

/// <summary>One cmdlet's help as the markdown page states it, ready to be written as MAML.</summary>
internal sealed class CommandHelp
{
    public required string Name { get; init; }
    public List<TextBlock> Synopsis { get; } = [];
    public List<SyntaxSet> Syntax { get; } = [];
    public List<TextBlock> Description { get; } = [];
    public List<ExampleHelp> Examples { get; } = [];
    public List<ParameterHelp> Parameters { get; } = [];
    public List<TypeHelp> Inputs { get; } = [];
    public List<TypeHelp> Outputs { get; } = [];
    public List<TextBlock> Notes { get; } = [];
    public List<LinkHelp> Links { get; } = [];
}

/// <summary>One parameter set as its SYNTAX line writes it.</summary>
internal sealed record SyntaxSet(string Name, bool IsDefault, IReadOnlyList<SyntaxParameter> Parameters);

/// <summary>A parameter in one syntax line: brackets tell whether it is required and whether its name may be left out.</summary>
internal sealed record SyntaxParameter(string Name, string? ValueType, bool Required, bool Positional);

internal sealed record ExampleHelp(string Title, string Code, IReadOnlyList<TextBlock> Remarks);

internal sealed record TypeHelp(string TypeName, IReadOnlyList<TextBlock> Description);

internal sealed record LinkHelp(string Text, string Uri);

/// <summary>A parameter's section: its description and the yaml block PlatyPS writes under it.</summary>
internal sealed class ParameterHelp
{
    public required string Name { get; init; }
    public List<TextBlock> Description { get; } = [];

    /// <summary>The first yaml block's fields (a parameter whose attributes differ per set may have several blocks).</summary>
    public Dictionary<string, string> Fields { get; } = new(StringComparer.OrdinalIgnoreCase);

    public string? Type => Field("Type");
    public bool Required => IsTrue(Field("Required"));
    public string Position => Field("Position") is { Length: > 0 } p ? p : "Named";
    public string DefaultValue => Field("Default value") is { Length: > 0 } d ? d : "None";
    public string PipelineInput => Field("Accept pipeline input") is { Length: > 0 } p ? p : "False";
    public bool Globbing => IsTrue(Field("Accept wildcard characters"));
    public IReadOnlyList<string> Aliases =>
        (Field("Aliases") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    public bool IsSwitch => string.Equals(Type, "SwitchParameter", StringComparison.OrdinalIgnoreCase);

    private string? Field(string name) => Fields.TryGetValue(name, out var value) ? value : null;

    private static bool IsTrue(string? value) => value is not null && value.StartsWith("True", StringComparison.OrdinalIgnoreCase);
}
