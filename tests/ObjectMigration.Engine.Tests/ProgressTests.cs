using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;
using Xunit;

namespace ObjectMigration.Engine.Tests;

public sealed class ProgressTests
{
    [Fact]
    public void A_stalled_transfer_reads_as_no_rate_and_no_estimate()
    {
        long now = 0;
        var counters = new JobCounters(() => now);
        now = 500;
        counters.Moved("big.bin", 50_000_000);
        var (moving, _) = counters.SampleRates();
        // Nothing moves for longer than the window.
        now += (long)JobCounters.RateWindow.TotalMilliseconds + 500;
        var (rate, _) = counters.SampleRates();

        Assert.Equal(100_000_000, moving);
        Assert.Equal(0, rate);
        var progress = new MigrationJobProgress { State = JobState.Running, ListingComplete = true, TotalBytes = 100_000_000, TransferredBytes = 50_000_000, BytesPerSecond = rate };
        ProgressMath.Complete(progress, skippedBytes: 0);
        Assert.Null(progress.EstimatedTimeRemaining);
    }

    [Fact]
    public void The_rate_is_what_moved_over_the_sliding_window_not_since_the_last_sample()
    {
        long now = 0;
        var counters = new JobCounters(() => now);
        // 1 MB every half second for 20 s, then a burst of 10 MB in one half second.
        for (var i = 0; i < 40; i++)
        {
            now += 500;
            counters.Moved("a", 1_000_000);
            counters.SampleRates();
        }
        now += 500;
        counters.Moved("a", 10_000_000);
        var (rate, _) = counters.SampleRates();

        // Over the last 10 s: 19 MB + 10 MB in 10 s; a rate since the last sample would say 20 MB/s.
        Assert.InRange(rate, 2_700_000, 3_100_000);
    }

    [Fact]
    public void Bytes_of_a_failed_attempt_are_taken_back_and_a_finished_object_leaves_the_moving_bytes()
    {
        var counters = new JobCounters();
        counters.Moved("big.bin", 8_000_000, measured: false);
        counters.Moved("big.bin", 3_000_000);
        counters.Moved("big.bin", -3_000_000);
        counters.Moved("other.bin", 1_000);
        Assert.Equal(8_001_000, counters.MovingBytes);

        counters.Forget("big.bin");

        Assert.Equal(1_000, counters.MovingBytes);
        Assert.Equal(3_001_000, counters.BytesMoved);
    }

    [Theory]
    [InlineData(JobState.Failed)]
    [InlineData(JobState.Cancelled)]
    public void A_job_that_did_not_run_to_its_end_with_nothing_found_shows_0_not_100_percent(JobState state)
    {
        var progress = new MigrationJobProgress { State = state, Objects = 0, TotalBytes = 0 };

        ProgressMath.Complete(progress, skippedBytes: 0);

        Assert.Equal(0, progress.PercentComplete);
    }

    [Fact]
    public void A_completed_job_shows_100_percent_even_when_it_found_nothing()
    {
        var progress = new MigrationJobProgress { State = JobState.Completed, Objects = 0, TotalBytes = 0 };

        ProgressMath.Complete(progress, skippedBytes: 0);

        Assert.Equal(100, progress.PercentComplete);
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
