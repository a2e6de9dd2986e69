using System.Management.Automation;
using ObjectMigration.Engine.Model;

using JobState = ObjectMigration.Engine.Model.JobState;

namespace ObjectMigration.Commands;

[Cmdlet(VerbsCommon.Get, "MigrationJobProgress")]
[OutputType(typeof(MigrationJobProgress))]
public sealed class GetMigrationJobProgressCommand : ObjectMigrationCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNull]
    [ArgumentCompleter(typeof(Completers.JobIdCompleter))]
    [GuidText("migration job id", "Get-MigrationJob")]
    public Guid[] Id { get; set; } = [];

    /// <summary>Streams a progress record each second until the job settles.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    protected override void ProcessRecord()
    {
        var listed = Id.Length == 0;
        var ids = listed ? Engine.GetJobs().Where(j => j.State is JobState.Running or JobState.Pending).Select(j => j.Id).ToArray() : Id;
        foreach (var id in ids)
        {
            try
            {
                // Listing the jobs has just looked for runners that died: a dashboard polling every job need not pay for
                // that look once more per job.
                var progress = listed ? Engine.Store.GetProgress(id) : Engine.GetProgress(id);
                WriteObject(progress);
                while (Wait && !JobStates.IsSettled(progress.State) && !Cancellation.WaitHandle.WaitOne(TimeSpan.FromSeconds(1)))
                {
                    progress = Engine.GetProgress(id);
                    WriteObject(progress);
                }
            }
            catch (KeyNotFoundException e)
            {
                WriteFailure(e, id);
            }
        }
    }
}
