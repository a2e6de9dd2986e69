using System.Management.Automation;
using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;

using JobState = ObjectMigration.Engine.Model.JobState;

namespace ObjectMigration.Commands;

/// <summary>
/// Sums up what a job listed (an Inventory, or any other job's source): objects and bytes in all, per prefix to -Depth
/// and per storage class, with the oldest and newest object and the largest one. Rows are objects, ready for
/// Format-Table, Export-Csv and ConvertTo-Json.
/// </summary>
[Cmdlet(VerbsCommon.Get, "MigrationJobReport")]
[OutputType(typeof(InventoryRow))]
public sealed class GetMigrationJobReportCommand : JobTargetCmdlet
{
    /// <summary>How many folder-like levels of the keys (below the job's source prefix) make a prefix row; 0: totals and storage classes only.</summary>
    [Parameter] [ValidateRange(0, 64)] public int Depth { get; set; } = Inventory.DefaultDepth;

    protected override void ProcessRecord() => ForEachJob(job =>
    {
        if (job.State is JobState.Pending or JobState.Running)
        {
            WriteWarning($"Job '{job.Name}' is {job.State}: the report sums up what it has listed so far.");
        }
        foreach (var row in Inventory.Summarize(Engine.Store, job, Depth)) WriteObject(row);
    });
}
