using System.Management.Automation;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Model;

using JobState = ObjectMigration.Engine.Model.JobState;

namespace ObjectMigration.Commands;

/// <summary>Waits for a job to settle, drawing a progress bar from the store, for -Wait and Wait-MigrationJob.</summary>
internal static class JobWaiter
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <param name="finished">Signalled when a job running in this process ends, so the wait returns then rather than
    /// at the next poll; jobs running elsewhere are seen through the store only.</param>
    public static MigrationJob WaitFor(ObjectMigrationCmdlet cmdlet, MigrationEngine engine, Guid id, TimeSpan? timeout, bool showProgress, CancellationToken cancellation,
        WaitHandle? finished = null)
    {
        WaitHandle[] wakeUps = finished is null ? [cancellation.WaitHandle] : [cancellation.WaitHandle, finished];
        var deadline = timeout is { } t ? DateTime.UtcNow + t : DateTime.MaxValue;
        var activityId = Math.Abs(id.GetHashCode() % 100000);
        MigrationJob job;
        while (true)
        {
            job = engine.GetJob(id);
            if (JobStates.IsSettled(job.State) || DateTime.UtcNow >= deadline || cancellation.IsCancellationRequested) break;
            if (showProgress)
            {
                var progress = engine.Store.GetProgress(id);
                cmdlet.WriteProgress(ToProgressRecord(activityId, job, progress));
            }
            // Once the in-process job has ended, the store settles at once; poll from then on rather than spin.
            if (WaitHandle.WaitAny(wakeUps, PollInterval) == 1) wakeUps = [cancellation.WaitHandle];
        }
        if (cancellation.IsCancellationRequested && !JobStates.IsSettled(job.State))
        {
            // Ctrl+C stops the wait, not the job: say so. The pipeline is stopping, so this goes to the host directly.
            cmdlet.Host.UI.WriteWarningLine($"Stopped waiting. Migration job '{job.Name}' goes on ({job.State}" +
                (job.Detached ? ", in a worker process" : ", in this session: closing the session interrupts it") +
                $"). Follow it with Get-MigrationJobProgress -Id {job.Id}; stop it with Stop-MigrationJob -Id {job.Id}.");
            return job;
        }
        if (showProgress)
        {
            cmdlet.WriteProgress(new ProgressRecord(activityId, $"Migration job {job.Name}", job.State.ToString()) { RecordType = ProgressRecordType.Completed });
        }
        if (job.State == JobState.Interrupted)
        {
            // A runbook waiting on the job must see that it did not finish, not a quiet return.
            cmdlet.WriteError(new ErrorRecord(new InvalidOperationException(
                $"Migration job '{job.Name}' was interrupted: the {(job.Detached ? "worker" : "session")} running it ended. " +
                $"Resume-MigrationJob -Id {job.Id}{(job.Detached ? " -Detached" : "")} continues it from its checkpoint{(job.Detached ? " (the next worker that starts also does)" : "")}."),
                "MigrationJobInterrupted", ErrorCategory.OperationStopped, job));
        }
        else if (job.State == JobState.Paused)
        {
            cmdlet.WriteWarning($"Migration job '{job.Name}' was suspended before it ended; Resume-MigrationJob -Id {job.Id} continues it.");
        }
        if (job.State is JobState.CompletedWithErrors or JobState.Failed)
        {
            var message = job.State == JobState.Failed
                ? $"Migration job '{job.Name}' failed: {job.Error}"
                : job.Type == JobType.Verify
                    ? $"Verify job '{job.Name}' found objects missing or different on the target, or only on the target. See Get-MigrationJobLog -Id {job.Id} -Type VerifyMissing, VerifyMismatch, VerifyExtra; " +
                      $"New-MigrationJob -FromVerify {job.Id} copies the missing and mismatched ones again (objects only on the target are never deleted)."
                    : $"Migration job '{job.Name}' completed with failed objects. See Get-MigrationJobLog -Id {job.Id} -Type MigrationError, ImportErrorRetryExhaustion for why; once the cause is fixed, Resume-MigrationJob -RetryFailed tries them again.";
            cmdlet.WriteError(new ErrorRecord(new InvalidOperationException(message),
                job.State == JobState.Failed ? "MigrationJobFailed" : "MigrationJobCompletedWithErrors", ErrorCategory.OperationStopped, job));
        }
        return job;
    }

    internal static ProgressRecord ToProgressRecord(int activityId, MigrationJob job, MigrationJobProgress p)
    {
        var status = job.Type == JobType.Verify
            ? $"{job.State} {p.Phase}: {p.CheckedObjects}/{p.Objects} checked, {p.MatchingObjects} matching, {p.MissingObjects} missing, {p.MismatchedObjects} mismatched, {p.ExtraObjects} extra"
            : $"{job.State} {p.Phase}: {p.TransferredObjects + p.SkippedObjects + p.FailedObjects}/{p.Objects} objects, " +
              $"{Format.Bytes(p.TransferredBytes)} of {Format.Bytes(p.TotalBytes)}, {Format.Bytes((long)p.BytesPerSecond)}/s";
        var record = new ProgressRecord(activityId, $"Migration job {job.Name}", status)
        {
            PercentComplete = (int)Math.Clamp(p.PercentComplete, 0, 100),
        };
        if (p.EstimatedTimeRemaining is { } eta) record.SecondsRemaining = (int)Math.Min(int.MaxValue, eta.TotalSeconds);
        if (p.FailedObjects > 0) record.CurrentOperation = $"{p.FailedObjects} failed";
        return record;
    }
}

internal static class Format
{
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1) { value /= 1024; unit++; }
        return unit == 0 ? $"{bytes} B" : $"{value:0.0} {units[unit]}";
    }
}
