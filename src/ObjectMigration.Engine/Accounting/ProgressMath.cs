using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Accounting;

internal static class ProgressMath
{
    private static readonly TimeSpan MaxEstimate = TimeSpan.FromDays(365);

    /// <summary>
    /// Percent by bytes when the sizes are known (skipped bytes count as done, and so do the bytes of objects still
    /// moving), else by objects; ETA from the measured byte rate. Only a job that ran to its end reads 100 %: a Failed
    /// or Cancelled one shows how far it got, 0 % when it found nothing.
    /// </summary>
    public static void Complete(MigrationJobProgress progress, long skippedBytes)
    {
        var done = progress.TransferredBytes + skippedBytes;
        if (progress.TotalBytes > 0)
        {
            progress.PercentComplete = Math.Round(Math.Min(100.0, 100.0 * done / progress.TotalBytes), 1);
        }
        else if (progress.Objects > 0)
        {
            progress.PercentComplete = Math.Round(100.0 * (progress.Objects - progress.PendingObjects) / progress.Objects, 1);
        }
        // Rounding must not claim the end early: 99.96 % of a running job is 99.9, not 100.
        if (progress.PercentComplete >= 100 && progress.State is not (JobState.Completed or JobState.CompletedWithErrors)) progress.PercentComplete = 99.9;
        if (progress.State is JobState.Completed or JobState.CompletedWithErrors && progress.PendingObjects == 0) progress.PercentComplete = 100;
        var remaining = progress.TotalBytes - done;
        var seconds = progress.BytesPerSecond > 0 ? Math.Ceiling(remaining / progress.BytesPerSecond) : double.PositiveInfinity;
        // A stalled transfer's rate decays toward zero: past a year the estimate means "unknown", not a date.
        progress.EstimatedTimeRemaining = progress.State == JobState.Running && remaining > 0 && progress.ListingComplete && seconds <= MaxEstimate.TotalSeconds
            ? TimeSpan.FromSeconds(seconds)
            : null;
    }
}
