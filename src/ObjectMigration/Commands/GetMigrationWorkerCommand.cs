using System.Management.Automation;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Commands;

/// <summary>Lists the live migration workers of the state folder: host, process id, started, jobs, last heartbeat.</summary>
[Cmdlet(VerbsCommon.Get, "MigrationWorker")]
[OutputType(typeof(MigrationWorker))]
public sealed class GetMigrationWorkerCommand : ObjectMigrationCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public Guid[] Id { get; set; } = [];

    protected override void ProcessRecord()
    {
        var workers = Engine.GetWorkers();
        foreach (var id in Id.Where(id => workers.All(w => w.Id != id)))
        {
            WriteFailure(new KeyNotFoundException($"No running migration worker has the id {id}. See Get-MigrationWorker."), id);
        }
        foreach (var worker in workers.Where(w => Id.Length == 0 || Id.Contains(w.Id))) WriteObject(worker);
    }
}
