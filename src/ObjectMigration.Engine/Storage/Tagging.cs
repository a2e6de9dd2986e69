namespace ObjectMigration.Engine.Storage;

/// <summary>Object tags in the form x-amz-tagging carries them: URL-encoded key=value pairs joined by '&amp;'.</summary>
public static class Tagging
{
    public static Dictionary<string, string> Parse(string? tagging)
    {
        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in (tagging ?? "").Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var at = pair.IndexOf('=');
            var name = Uri.UnescapeDataString(at < 0 ? pair : pair[..at]);
            tags[name] = at < 0 ? "" : Uri.UnescapeDataString(pair[(at + 1)..]);
        }
        return tags;
    }

    /// <summary>In name order, so equal tag sets give equal strings; null for none.</summary>
    public static string? Format(IReadOnlyDictionary<string, string> tags) =>
        tags.Count == 0 ? null : string.Join("&", tags.OrderBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => Uri.EscapeDataString(t.Key) + "=" + Uri.EscapeDataString(t.Value)));

    public static bool AreEqual(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(t => b.TryGetValue(t.Key, out var value) && value == t.Value);
}
