using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Accounting;

internal static class ProgressMath
{
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
        progress.EstimatedTimeRemaining = progress.State == JobState.Running && progress.BytesPerSecond > 0 && remaining > 0 && progress.ListingComplete
            ? TimeSpan.FromSeconds(Math.Ceiling(remaining / progress.BytesPerSecond))
            : null;
    }
}
