using System.Management.Automation;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Commands;

/// <summary>Lists the live migration workers of the state folder: host, process id, started, jobs, last heartbeat.</summary>
[Cmdlet(VerbsCommon.Get, "MigrationWorker")]
[OutputType(typeof(MigrationWorker))]
public sealed class GetMigrationWorkerCommand : ObjectMigrationCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNull]
    [GuidText("migration worker id", "Get-MigrationWorker")]
    public Guid[] Id { get; set; } = [];

    protected override void ProcessRecord()
    {
        if (Id.Length == 0)
        {
            foreach (var worker in Engine.GetWorkers()) WriteObject(worker);
            return;
        }
        foreach (var id in Id)
        {
            try { WriteObject(Engine.GetWorker(id)); }
            catch (KeyNotFoundException e) { WriteFailure(e, id); }
        }
    }
}
