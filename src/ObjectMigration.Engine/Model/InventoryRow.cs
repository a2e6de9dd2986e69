namespace ObjectMigration.Engine.Model;

/// <summary>What an inventory row sums up: all objects, the objects under one prefix, or those of one storage class.</summary>
public enum InventoryGroup { Total, Prefix, StorageClass }

/// <summary>
/// One row of a job's inventory (Get-MigrationJobReport): objects and bytes of a group of listed objects, their oldest
/// and newest last-modified, and the largest object.
/// </summary>
public sealed class InventoryRow
{
    public InventoryGroup Group { get; set; }
    /// <summary>The prefix (relative to the job's source prefix; "" for objects at its top), the storage class, or "(all)".</summary>
    public string Name { get; set; } = "";
    public long Objects { get; set; }
    public long Bytes { get; set; }
    public DateTimeOffset? Oldest { get; set; }
    public DateTimeOffset? Newest { get; set; }
    public string? LargestKey { get; set; }
    public long LargestSize { get; set; }
    /// <summary>The group as its name, for ConvertTo-Json and Export-Csv (which write enums as numbers).</summary>
    public string GroupName => Group.ToString();

    public override string ToString() => $"{Group} {Name}: {Objects} objects, {Bytes} bytes";
}
