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
    public Guid[] Id { get; set; } = [];

    [Parameter(Mandatory = true, ParameterSetName = "All")] public SwitchParameter All { get; set; }

    /// <summary>Seconds to wait for each worker to exit.</summary>
    [Parameter] [ValidateRange(0, int.MaxValue)] public int Timeout { get; set; } = 60;

    /// <summary>Returns each worker as it was when asked to stop.</summary>
    [Parameter] public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var ids = All ? Engine.GetWorkers().Select(w => w.Id).ToArray() : Id;
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
                        WriteWarning($"The migration worker {worker.ComputerName}:{worker.ProcessId} has not exited within {Timeout} s: it is still pausing its jobs ({string.Join(", ", worker.Jobs)}). Get-MigrationWorker shows when it is gone.");
                        break;
                    }
                    if (Cancellation.WaitHandle.WaitOne(100)) return;
                }
                if (PassThru) WriteObject(worker);
            }
            catch (Exception e) when (e is not PipelineStoppedException)
            {
                WriteFailure(e, id);
            }
        }
    }
}
