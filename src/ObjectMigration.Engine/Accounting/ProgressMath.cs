using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Accounting;

internal static class ProgressMath
{
    private static readonly TimeSpan MaxEstimate = TimeSpan.FromDays(365);

    /// <summary>Percent by bytes (skipped bytes count as done); ETA from the measured byte rate.</summary>
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
        if (JobStates.IsTerminal(progress.State) && progress.PendingObjects == 0) progress.PercentComplete = 100;
        var remaining = progress.TotalBytes - done;
        var seconds = progress.BytesPerSecond > 0 ? Math.Ceiling(remaining / progress.BytesPerSecond) : double.PositiveInfinity;
        // A stalled transfer's rate decays toward zero: past a year the estimate means "unknown", not a date.
        progress.EstimatedTimeRemaining = progress.State == JobState.Running && remaining > 0 && progress.ListingComplete && seconds <= MaxEstimate.TotalSeconds
            ? TimeSpan.FromSeconds(seconds)
            : null;
    }
}
