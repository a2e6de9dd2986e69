using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Transfer.Kinds;

/// <summary>Counts the source's objects and bytes; reads nothing but the listing and writes nothing.</summary>
internal sealed class InventoryKind(RunContext run) : JobKind(run)
{
    public override bool UsesTarget => false;
    public override bool ListsTarget => false;
    public override JobPhase WorkPhase => JobPhase.Transferring;

    public override ObjectResult? Decide(PendingObject o) =>
        new(o.Key, ObjectOutcome.Skipped, o.Size, null, $"Inventoried: storage class {o.StorageClass ?? "STANDARD"}.");

    public override Task ActAsync(WorkItem item, CancellationToken ct) => Task.CompletedTask;

    public override string Summary(MigrationJobProgress progress) => $"{progress.SkippedObjects} objects ({progress.TotalBytes} bytes) inventoried.";
}
