using System.Management.Automation;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Jobs;

using JobState = ObjectMigration.Engine.Model.JobState;

namespace ObjectMigration.Commands;

/// <summary>The shape every job-control cmdlet shares: -Id from the pipeline by property name.</summary>
public abstract class JobTargetCmdlet : ObjectMigrationCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = "ById")]
    [ArgumentCompleter(typeof(Completers.JobIdCompleter))]
    [GuidText("migration job id", "Get-MigrationJob")]
    public Guid[] Id { get; set; } = [];

    protected void ForEachJob(Action<MigrationJob> action)
    {
        foreach (var id in Id)
        {
            try { action(Engine.GetJob(id)); }
            catch (Exception e) when (e is not PipelineStoppedException) { WriteFailure(e, id); }
        }
    }

    /// <summary>Waits for a job's runner (here or in another process) to act on a request.</summary>
    protected MigrationJob WaitForState(Guid id, Func<JobState, bool> reached, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var job = Engine.GetJob(id);
        while (!reached(job.State) && DateTime.UtcNow < deadline && !Cancellation.WaitHandle.WaitOne(100)) job = Engine.GetJob(id);
        return job;
    }
}

[Cmdlet(VerbsLifecycle.Suspend, "MigrationJob", SupportsShouldProcess = true)]
[OutputType(typeof(MigrationJob))]
public sealed class SuspendMigrationJobCommand : JobTargetCmdlet
{
    [Parameter] public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord() => ForEachJob(job =>
    {
        if (!ShouldProcess(job.Name, "Suspend migration job")) return;
        Engine.RequestPause(job.Id);
        var settled = WaitForState(job.Id, s => s != JobState.Running, TimeSpan.FromSeconds(30));
        if (PassThru) WriteObject(settled);
    });
}

[Cmdlet(VerbsLifecycle.Resume, "MigrationJob", SupportsShouldProcess = true)]
[OutputType(typeof(MigrationJob), typeof(Job))]
public sealed class ResumeMigrationJobCommand : JobTargetCmdlet
{
    /// <summary>Retries only the objects that failed, for a job that ended CompletedWithErrors.</summary>
    [Parameter] public SwitchParameter RetryFailed { get; set; }
    [Parameter] public SwitchParameter Wait { get; set; }
    [Parameter] public SwitchParameter AsJob { get; set; }

    /// <summary>Hands the job to a worker process that outlives this session (started if none runs), as New-MigrationJob -Detached does.</summary>
    [Parameter] public SwitchParameter Detached { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if (Detached && AsJob)
        {
            ThrowTerminatingError(ToErrorRecord(DetachedWithAsJob(), null));
        }
    }

    protected override void ProcessRecord() => ForEachJob(job =>
    {
        if (!ShouldProcess(job.Name, RetryFailed ? "Retry failed objects of migration job" : "Resume migration job")) return;
        RunAndWrite(Engine.PrepareResume(job.Id, RetryFailed, detached: Detached), Detached, AsJob, Wait);
    });
}

[Cmdlet(VerbsLifecycle.Stop, "MigrationJob", SupportsShouldProcess = true, DefaultParameterSetName = "ById")]
[OutputType(typeof(MigrationJob))]
public sealed class StopMigrationJobCommand : JobTargetCmdlet
{
    [Parameter(Mandatory = true, ParameterSetName = "All")] public SwitchParameter All { get; set; }
    [Parameter] public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        if (All) Id = Engine.GetJobs().Where(j => !JobStates.IsTerminal(j.State)).Select(j => j.Id).ToArray();
        ForEachJob(job =>
        {
            // Get-MigrationJob | Stop-MigrationJob passes finished jobs too: they are said to be skipped, not errors.
            if (JobStates.IsTerminal(job.State))
            {
                WriteWarning($"Skipped '{job.Name}' ({job.Id}): it is already {job.State}.");
                return;
            }
            if (!ShouldProcess(job.Name, "Stop migration job")) return;
            Await(Engine.RequestStopAsync(job.Id, Cancellation));
            var settled = WaitForState(job.Id, JobStates.IsTerminal, TimeSpan.FromSeconds(60));
            if (PassThru) WriteObject(settled);
        });
    }
}

[Cmdlet(VerbsLifecycle.Wait, "MigrationJob")]
[OutputType(typeof(MigrationJob))]
public sealed class WaitMigrationJobCommand : JobTargetCmdlet
{
    /// <summary>Seconds to wait at most; the job is returned as it is then.</summary>
    [Parameter] [ValidateRange(0, int.MaxValue)] public int? Timeout { get; set; }

    protected override void ProcessRecord() => ForEachJob(job =>
        WriteObject(JobWaiter.WaitFor(this, Engine, job.Id, Timeout is { } t ? TimeSpan.FromSeconds(t) : null, showProgress: true, Cancellation)));
}

[Cmdlet(VerbsCommon.Remove, "MigrationJob", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
public sealed class RemoveMigrationJobCommand : JobTargetCmdlet
{
    /// <summary>Stops a running job first.</summary>
    [Parameter] public SwitchParameter Force { get; set; }

    protected override void ProcessRecord() => ForEachJob(job =>
    {
        if (!ShouldProcess(job.Name, "Remove migration job, its object records and its log, aborting the multipart uploads it keeps open")) return;
        if (Force && !JobStates.IsTerminal(job.State) && job.State != JobState.Interrupted)
        {
            Await(Engine.RequestStopAsync(job.Id, Cancellation));
            WaitForState(job.Id, JobStates.IsTerminal, TimeSpan.FromSeconds(60));
        }
        foreach (var warning in Await(Engine.RemoveJobAsync(job.Id, Cancellation))) WriteWarning(warning);
        // The session's PowerShell job for it goes with it.
        if (MigrationJobSourceAdapter.Find(job.Id) is { } psJob)
        {
            InvokeCommand.InvokeScript(true, ScriptBlock.Create("param($psJob) Remove-Job -Job $psJob -Force"), null, psJob);
        }
    });
}

[Cmdlet(VerbsCommon.Get, "MigrationJobLog", SupportsPaging = true)]
[OutputType(typeof(MigrationJobLogEntry))]
public sealed class GetMigrationJobLogCommand : JobTargetCmdlet
{
    [Parameter] public LogType[] Type { get; set; } = [];
    [Parameter] [SupportsWildcards] [NoEmptyPattern] public string[] Key { get; set; } = [];

    protected override void ProcessRecord() => ForEachJob(job =>
    {
        var query = new LogQuery
        {
            Types = Type,
            KeyPatterns = Key,
            Skip = (int)Math.Min(int.MaxValue, PagingParameters.Skip),
            First = (int)Math.Min(int.MaxValue, PagingParameters.First),
        };
        foreach (var entry in Engine.Store.GetLogs(job.Id, query)) WriteObject(entry);
    });
}
