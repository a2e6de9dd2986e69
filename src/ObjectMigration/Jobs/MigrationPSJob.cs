using System.Management.Automation;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Model;
using JobState = System.Management.Automation.JobState;
using MigrationState = ObjectMigration.Engine.Model.JobState;

namespace ObjectMigration.Jobs;

/// <summary>
/// A migration job as a PowerShell job: Get-Job lists it by the migration job's name, and Wait-, Stop-, Suspend-,
/// Resume- and Receive-Job work on it. The runner runs on the thread pool of this process; the state store is
/// how other sessions see and steer it.
/// </summary>
public sealed class MigrationPSJob : Job2
{
    public const string JobTypeName = "MigrationJob";
    private readonly MigrationEngine _engine;
    private CancellationTokenSource _cancel = new();
    private Task? _run;

    public Guid MigrationJobId { get; }

    public MigrationPSJob(MigrationEngine engine, MigrationJob job)
        : base($"New-MigrationJob -Id {job.Id}", job.Name)
    {
        _engine = engine;
        MigrationJobId = job.Id;
        PSJobTypeName = JobTypeName;
    }

    public override string Location => Environment.MachineName;
    public override string StatusMessage => _engine.Store.FindJob(MigrationJobId)?.State.ToString() ?? "";
    public override bool HasMoreData => Output.Count > 0 || Error.Count > 0;

    public override void StartJob()
    {
        SetJobState(JobState.Running);
        _run = Task.Run(RunAsync);
    }

    private async Task RunAsync()
    {
        try
        {
            var state = await _engine.RunJobAsync(MigrationJobId, null, _cancel.Token).ConfigureAwait(false);
            var job = _engine.Store.FindJob(MigrationJobId);
            if (job is not null) Output.Add(PSObject.AsPSObject(job));
            switch (state)
            {
                case MigrationState.Paused: SetJobState(JobState.Suspended); break;
                case MigrationState.Cancelled: SetJobState(JobState.Stopped); break;
                case MigrationState.Failed:
                    Error.Add(new ErrorRecord(new InvalidOperationException(job?.Error ?? "The migration job failed."), "MigrationJobFailed", ErrorCategory.OperationStopped, job));
                    SetJobState(JobState.Failed);
                    break;
                case MigrationState.CompletedWithErrors:
                    Error.Add(new ErrorRecord(new InvalidOperationException($"Migration job '{job?.Name}' completed with failed objects; see Get-MigrationJobLog."),
                        "MigrationJobCompletedWithErrors", ErrorCategory.NotSpecified, job));
                    SetJobState(JobState.Completed);
                    break;
                default: SetJobState(JobState.Completed); break;
            }
        }
        catch (Exception e)
        {
            Error.Add(new ErrorRecord(e, "MigrationJobRunnerFailed", ErrorCategory.NotSpecified, MigrationJobId));
            SetJobState(JobState.Failed);
        }
    }

    public override void StartJobAsync() => StartJob();

    public override void StopJob() => StopJob(false, "");

    public override void StopJob(bool force, string reason)
    {
        if (JobStateInfo.State is JobState.Completed or JobState.Failed or JobState.Stopped) return;
        SetJobState(JobState.Stopping);
        _engine.Store.SetControlRequest(MigrationJobId, ControlRequest.Stop);
        _cancel.Cancel();
        _run?.Wait();
    }

    public override void StopJobAsync() => StopJobAsync(false, "");
    public override void StopJobAsync(bool force, string reason) => Task.Run(() => StopJob(force, reason));

    public override void SuspendJob() => SuspendJob(false, "");

    public override void SuspendJob(bool force, string reason)
    {
        if (JobStateInfo.State != JobState.Running) return;
        SetJobState(JobState.Suspending);
        _engine.RequestPause(MigrationJobId);
        _run?.Wait();
    }

    public override void SuspendJobAsync() => SuspendJobAsync(false, "");
    public override void SuspendJobAsync(bool force, string reason) => Task.Run(() => SuspendJob(force, reason));

    public override void ResumeJob()
    {
        if (JobStateInfo.State != JobState.Suspended) return;
        _engine.PrepareResume(MigrationJobId, retryFailed: false);
        _cancel = new CancellationTokenSource();
        StartJob();
    }

    public override void ResumeJobAsync() => Task.Run(ResumeJob);
    public override void UnblockJob() => throw new NotSupportedException("A migration job never blocks for input.");
    public override void UnblockJobAsync() => UnblockJob();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _cancel.Dispose();
        base.Dispose(disposing);
    }
}
