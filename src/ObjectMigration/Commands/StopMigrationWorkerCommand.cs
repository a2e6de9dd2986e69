using System.Management.Automation;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Commands;

/// <summary>
/// Ends a migration worker cleanly: its jobs pause at a checkpoint (Resume-MigrationJob continues them) and the process
/// exits. Waits until it has, up to -Timeout seconds.
/// </summary>
[Cmdlet(VerbsLifecycle.Stop, "MigrationWorker", SupportsShouldProcess = true, DefaultParameterSetName = "ById")]
[OutputType(typeof(MigrationWorker))]
public sealed class StopMigrationWorkerCommand : ObjectMigrationCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = "ById")]
    [GuidText("migration worker id", "Get-MigrationWorker")]
    public Guid[] Id { get; set; } = [];

    /// <summary>The process id of a worker on this computer, as Get-MigrationWorker's table shows it (host:pid).</summary>
    [Parameter(Mandatory = true, ParameterSetName = "ByProcessId")]
    [ValidateRange(1, int.MaxValue)]
    public int[] ProcessId { get; set; } = [];

    [Parameter(Mandatory = true, ParameterSetName = "All")] public SwitchParameter All { get; set; }

    /// <summary>Seconds to wait for each worker to exit.</summary>
    [Parameter] [ValidateRange(0, int.MaxValue)] public int Timeout { get; set; } = 60;

    /// <summary>Returns each worker as it was when asked to stop.</summary>
    [Parameter] public SwitchParameter PassThru { get; set; }

    private Guid? WorkerByProcessId(int processId)
    {
        var worker = Engine.GetWorkers().FirstOrDefault(w => w.ProcessId == processId && string.Equals(w.ComputerName, Environment.MachineName, StringComparison.OrdinalIgnoreCase));
        if (worker is null)
        {
            WriteFailure(new KeyNotFoundException($"No migration worker runs as process {processId} on {Environment.MachineName}. See Get-MigrationWorker."), processId);
        }
        return worker?.Id;
    }

    protected override void ProcessRecord()
    {
        var ids = ParameterSetName switch
        {
            "All" => Engine.GetWorkers().Select(w => w.Id).ToArray(),
            "ByProcessId" => ProcessId.Select(WorkerByProcessId).OfType<Guid>().ToArray(),
            _ => Id,
        };
        foreach (var id in ids)
        {
            try
            {
                var worker = Engine.GetWorker(id);
                if (!ShouldProcess($"{worker.ComputerName}:{worker.ProcessId}", "Stop migration worker (its jobs pause)")) continue;
                Engine.RequestWorkerStop(id);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(Timeout);
                while (Engine.GetWorkers().Any(w => w.Id == id))
                {
                    if (DateTime.UtcNow >= deadline)
                    {
                        WriteWarning($"The migration worker {worker.ComputerName}:{worker.ProcessId} has not exited within {Timeout} s" +
                            (worker.Jobs.Length > 0 ? $": it is still pausing its jobs ({string.Join(", ", worker.Jobs)})." : ".") + " Get-MigrationWorker shows when it is gone.");
                        break;
                    }
                    if (Cancellation.WaitHandle.WaitOne(100)) return;
                }
                if (PassThru)
                {
                    worker.State = WorkerState.Stopping;
                    WriteObject(worker);
                }
            }
            catch (Exception e) when (e is not PipelineStoppedException)
            {
                WriteFailure(e, id);
            }
        }
    }
}
