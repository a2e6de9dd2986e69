using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Accounting;

/// <summary>
/// Sums up what a job listed, per prefix to a depth and per storage class, streaming over the listing in the store:
/// memory grows with the number of groups, never with the number of objects.
/// </summary>
public static class Inventory
{
    public const int DefaultDepth = 1;

    public static IReadOnlyList<InventoryRow> Summarize(IStateStore store, MigrationJob job, int depth = DefaultDepth)
    {
        if (depth < 0) throw new ArgumentException("-Depth cannot be negative: 0 gives the totals and the storage classes, 1 (the default) adds the top-level prefixes.", "Depth");
        var total = new InventoryRow { Group = InventoryGroup.Total, Name = "(all)" };
        var prefixes = new SortedDictionary<string, InventoryRow>(StringComparer.Ordinal);
        var classes = new SortedDictionary<string, InventoryRow>(StringComparer.Ordinal);
        foreach (var o in store.StreamListedObjects(job.Id))
        {
            Add(total, o);
            // Keys given with -Key may lie outside the source prefix: only a key under it is cut to its relative part.
            var relative = o.Key.StartsWith(job.SourcePrefix, StringComparison.Ordinal) ? o.Key[job.SourcePrefix.Length..] : o.Key;
            if (depth > 0) Add(Group(prefixes, InventoryGroup.Prefix, PrefixOf(relative, depth)), o);
            // Class names are upper case in S3; a server that answers otherwise still sums into one row per class.
            Add(Group(classes, InventoryGroup.StorageClass, string.IsNullOrEmpty(o.StorageClass) ? "STANDARD" : o.StorageClass.ToUpperInvariant()), o);
        }
        return [total, .. prefixes.Values, .. classes.Values];
    }

    /// <summary>The key's first <paramref name="depth"/> folder-like segments, with their slashes; "" for an object above that depth's folders.</summary>
    internal static string PrefixOf(string relativeKey, int depth)
    {
        var end = 0;
        for (var level = 0; level < depth; level++)
        {
            var slash = relativeKey.IndexOf('/', end);
            if (slash < 0) break;
            end = slash + 1;
        }
        return relativeKey[..end];
    }

    private static InventoryRow Group(SortedDictionary<string, InventoryRow> groups, InventoryGroup kind, string name)
    {
        if (!groups.TryGetValue(name, out var row)) groups[name] = row = new InventoryRow { Group = kind, Name = name };
        return row;
    }

    private static void Add(InventoryRow row, ListedObject o)
    {
        row.Objects++;
        row.Bytes += o.Size;
        if (row.Oldest is null || o.LastModified < row.Oldest) row.Oldest = o.LastModified;
        if (row.Newest is null || o.LastModified > row.Newest) row.Newest = o.LastModified;
        if (row.LargestKey is null || o.Size > row.LargestSize) (row.LargestKey, row.LargestSize) = (o.Key, o.Size);
    }
}
