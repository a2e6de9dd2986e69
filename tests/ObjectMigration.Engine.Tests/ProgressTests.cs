using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;
using Xunit;

namespace ObjectMigration.Engine.Tests;

public sealed class ProgressTests
{
    [Fact]
    public void A_stalled_transfer_reads_as_no_rate_and_no_estimate()
    {
        var counters = new JobCounters();
        counters.AddBytes(50_000_000);
        var (moving, _) = counters.SampleRates();
        var rate = moving;
        for (var i = 0; i < 64 && rate > 0; i++) (rate, _) = counters.SampleRates();

        Assert.True(moving > 0);
        Assert.Equal(0, rate);
        var progress = new MigrationJobProgress { State = JobState.Running, ListingComplete = true, TotalBytes = 100_000_000, TransferredBytes = 50_000_000, BytesPerSecond = rate };
        ProgressMath.Complete(progress, skippedBytes: 0);
        Assert.Null(progress.EstimatedTimeRemaining);
    }

    [Fact]
    public void A_rate_near_zero_gives_no_estimate_rather_than_overflowing()
    {
        var progress = new MigrationJobProgress { State = JobState.Running, ListingComplete = true, TotalBytes = long.MaxValue, BytesPerSecond = 1e-300 };

        ProgressMath.Complete(progress, skippedBytes: 0);

        Assert.Null(progress.EstimatedTimeRemaining);
    }

    [Fact]
    public void The_estimate_is_what_is_left_at_the_measured_rate()
    {
        var progress = new MigrationJobProgress { State = JobState.Running, ListingComplete = true, TotalBytes = 1_000, TransferredBytes = 400, BytesPerSecond = 100 };

        ProgressMath.Complete(progress, skippedBytes: 100);

        Assert.Equal(TimeSpan.FromSeconds(5), progress.EstimatedTimeRemaining);
        Assert.Equal(50, progress.PercentComplete);
    }
}
