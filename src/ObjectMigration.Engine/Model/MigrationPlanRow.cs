namespace ObjectMigration.Engine.Model;

/// <summary>What a job would do with some of the objects (New-MigrationJob -WhatIf): one row per action and reason.</summary>
public enum PlannedAction { Transfer, Check, Update, Skip, Fail, Exclude }

/// <summary>
/// One row of a dry run: how many objects (and bytes) the job would transfer, check, update, skip for one reason (the log type
/// the real run would write), or leave out by its filters.
/// </summary>
public sealed class MigrationPlanRow
{
    public PlannedAction Action { get; set; }
    /// <summary>The log type a real run writes for these objects (ImportSkippedExists, ...), "Filter" for excluded ones, "" for the work itself.</summary>
    public string Reason { get; set; } = "";
    public long Objects { get; set; }
    public long Bytes { get; set; }
    /// <summary>The action as its name, for ConvertTo-Json and Export-Csv (which write enums as numbers).</summary>
    public string ActionName => Action.ToString();

    public override string ToString() => $"{Action} {Reason}: {Objects} objects, {Bytes} bytes";
}
