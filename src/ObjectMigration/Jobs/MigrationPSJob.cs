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
    public override bool HasMoreData => Output.Count > 0 || Error.Count > 0 || Warning.Count > 0;

    public override void StartJob()
    {
        SetJobState(JobState.Running);
        _engineRun = null;
        _run = Task.Run(RunAsync);
    }

    /// <summary>Started, and its engine run not begun yet: it will take the Pending migration job itself.</summary>
    internal bool IsAboutToRun => _run is { IsCompleted: false } && _engineRun is null;

    /// <summary>The engine's run of the migration job; once it is complete only this job's bookkeeping is left.</summary>
    private volatile Task<MigrationState>? _engineRun;

    /// <summary>
    /// At most this many log entries wait in memory for Receive-Job. A re-run over millions of objects logs a skip for
    /// each; those stay in the store, where Get-MigrationJobLog reads them all, so memory stays flat.
    /// </summary>
    /// <remarks>Neither is readonly: Jobs.Tests.ps1 lowers them to reach the bound, and several batches, with a dozen objects.</remarks>
    private static int s_maxUnreadLogEntries = 10_000;
    private static int s_logPumpBatch = 1000;
    private long _logCursor;
    private bool _logBufferFullReported;

    /// <summary>Receive-Job yields the job's log entries; they are pumped from the store while the job runs.</summary>
    private void PumpLogs()
    {
        while (true)
        {
            var room = s_maxUnreadLogEntries - Output.Count;
            if (room <= 0)
            {
                ReportLogBufferFull();
                return;
            }
            var wanted = Math.Min(room, s_logPumpBatch);
            var batch = _engine.Store.GetLogs(MigrationJobId, new Engine.State.LogQuery { AfterSequence = _logCursor, First = wanted });
            foreach (var entry in batch)
            {
                Output.Add(PSObject.AsPSObject(entry));
                _logCursor = entry.Sequence;
            }
            if (batch.Count < wanted) return;
        }
    }

    private void ReportLogBufferFull()
    {
        if (_logBufferFullReported) return;
        if (_engine.Store.GetLogs(MigrationJobId, new Engine.State.LogQuery { AfterSequence = _logCursor, First = 1 }).Count == 0) return;
        _logBufferFullReported = true;
        Warning.Add(new WarningRecord($"Receive-Job holds at most {s_maxUnreadLogEntries} unread log entries of migration job '{Name}'; " +
            $"the job has more. Get-MigrationJobLog -Id {MigrationJobId} reads the whole log from the job's state."));
    }

    private async Task PumpLogsWhileAsync(Task run)
    {
        while (!run.IsCompleted)
        {
            PumpLogs();
            await Task.WhenAny(run, Task.Delay(500)).ConfigureAwait(false);
        }
        PumpLogs();
    }

    private async Task RunAsync()
    {
        try
        {
            var run = _engine.RunJobAsync(MigrationJobId, null, _cancel.Token);
            _engineRun = run;
            await PumpLogsWhileAsync(run).ConfigureAwait(false);
            var state = await run.ConfigureAwait(false);
            var job = _engine.Store.FindJob(MigrationJobId);
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

    public override void StartJobAsync() => Completing(StartJob, OnStartJobCompleted);

    /// <summary>The *Async variants run the action off the caller's thread and raise the completion event that Stop-Job and friends wait for.</summary>
    private static void Completing(Action action, Action<System.ComponentModel.AsyncCompletedEventArgs> completed) => Task.Run(() =>
    {
        Exception? error = null;
        try { action(); }
        catch (Exception e) { error = e; }
        completed(new System.ComponentModel.AsyncCompletedEventArgs(error, false, null));
    });

    public override void StopJob() => StopJob(false, "");

    public override void StopJob(bool force, string reason)
    {
        if (JobStateInfo.State is JobState.Completed or JobState.Failed or JobState.Stopped) return;
        SetJobState(JobState.Stopping);
        if (_run is { IsCompleted: false } run)
        {
            // The runner settles the job as Cancelled and aborts its uploads; RunAsync then marks this job Stopped.
            _engine.Store.SetControlRequest(MigrationJobId, ControlRequest.Stop);
            _cancel.Cancel();
            run.GetAwaiter().GetResult();
            return;
        }
        try
        {
            // Suspended here: no runner, so the engine cancels the stored job itself.
            _engine.RequestStopAsync(MigrationJobId, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (JobStateException)
        {
            // Already finished elsewhere.
        }
        SetJobState(JobState.Stopped);
    }

    public override void StopJobAsync() => StopJobAsync(false, "");
    public override void StopJobAsync(bool force, string reason) => Completing(() => StopJob(force, reason), OnStopJobCompleted);

    public override void SuspendJob() => SuspendJob(false, "");

    public override void SuspendJob(bool force, string reason)
    {
        if (JobStateInfo.State != JobState.Running) return;
        SetJobState(JobState.Suspending);
        _engine.RequestPause(MigrationJobId);
        _run?.Wait();
    }

    public override void SuspendJobAsync() => SuspendJobAsync(false, "");
    public override void SuspendJobAsync(bool force, string reason) => Completing(() => SuspendJob(force, reason), OnSuspendJobCompleted);

    /// <summary>
    /// Runs the migration job again in this PowerShell job (after a suspend, a stop short of the end, or a failure),
    /// so a session keeps one Get-Job entry per migration job. False when it is still running.
    /// </summary>
    internal bool TryRestart()
    {
        if (_run is { IsCompleted: false } run)
        {
            // About to start its engine run: that run takes the Pending job; nothing to restart.
            if (_engineRun is null) return false;
            // The job is Pending again, so no run of it is going on: this one is the previous run finishing after it
            // settled (a suspend seen by another session before this job saw its end). It ends in moments.
            if (!run.Wait(TimeSpan.FromSeconds(30))) return false;
        }
        _cancel.Dispose();
        _cancel = new CancellationTokenSource();
        StartJob();
        return true;
    }

    public override void ResumeJob()
    {
        if (JobStateInfo.State != JobState.Suspended) return;
        _engine.PrepareResume(MigrationJobId, retryFailed: false);
        _cancel = new CancellationTokenSource();
        StartJob();
    }

    public override void ResumeJobAsync() => Completing(ResumeJob, OnResumeJobCompleted);
    public override void UnblockJob() => throw new NotSupportedException("A migration job never blocks for input.");
    public override void UnblockJobAsync() => Completing(UnblockJob, OnUnblockJobCompleted);

    protected override void Dispose(bool disposing)
    {
        if (disposing) _cancel.Dispose();
        base.Dispose(disposing);
    }
}
