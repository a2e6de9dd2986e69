using ObjectMigration.Engine.Scheduling;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The part size of a large object from its size and the rate parts moved at, and the size a resume goes on with.</summary>
public sealed class PartSizingTests
{
    private const long MiB = 1L << 20;
    private const long GiB = 1L << 30;
    private const long S3MaxPart = 5 * GiB;

    private static long For(long size, double? rate, long jobPart = 8 * MiB, int maxParts = 10_000) =>
        PartSizing.For(size, jobPart, 5 * MiB, S3MaxPart, maxParts, rate);

    [Fact]
    public void Before_any_part_is_measured_the_job_part_size_holds()
    {
        Assert.Equal(8 * MiB, For(256 * MiB, rate: null));
        Assert.Equal(16 * MiB, For(256 * MiB, rate: null, jobPart: 16 * MiB));
        var sizing = new PartSizing();
        for (var i = 1; i < PartSizing.MeasuredParts; i++) sizing.Observe(64 * MiB, TimeSpan.FromSeconds(0.5));
        Assert.Null(sizing.BytesPerSecond);
        Assert.Equal(8 * MiB, sizing.For(GiB, 8 * MiB, 5 * MiB, S3MaxPart, 10_000));
    }

    [Fact]
    public void Behind_a_narrow_link_parts_stay_at_the_job_size()
    {
        // 200 Mbit/s shared by 16 transfers: 1.6 MB/s each; two seconds of that is less than 8 MiB.
        Assert.Equal(8 * MiB, For(256 * MiB, rate: 25e6 / 16));
    }

    [Fact]
    public void Where_one_transfer_moves_fast_parts_grow_to_two_seconds_of_it_in_whole_MiB_and_at_least_eight_per_object()
    {
        // 40 MB/s per transfer (a 4 MiB window over 100 ms): 80 MB parts for a 4 GiB object, whole MiB.
        var size = For(4 * GiB, rate: 40e6);
        Assert.Equal(76 * MiB, size);
        Assert.Equal(0, size % MiB);
        // A 256 MiB object keeps 8 parts however fast; a 1 TiB one stops at the largest chosen part.
        Assert.Equal(32 * MiB, For(256 * MiB, rate: 1e9));
        Assert.Equal(PartSizing.LargestChosen, For(1024 * GiB, rate: 1e9));
        // The job's part size is the floor, and the target's part-count limit still raises it.
        Assert.Equal(512 * MiB, For(256 * MiB, rate: 1e9, jobPart: 512 * MiB));
        Assert.Equal(2 * GiB, For(2000 * GiB, rate: 1e6, maxParts: 1000));
    }

    [Fact]
    public void The_rate_is_a_running_mean_of_the_parts_that_follows_the_recent_ones()
    {
        var sizing = new PartSizing();
        for (var i = 0; i < PartSizing.MeasuredParts; i++) sizing.Observe(8 * MiB, TimeSpan.FromSeconds(i % 2 == 0 ? 0.1 : 0.3));
        // The first parts count evenly: the mean of 80 and 28 MiB/s.
        Assert.Equal((80 + 80 / 3.0) / 2 * MiB, sizing.BytesPerSecond!.Value, 1e-6 * MiB);
        // Then a slower link: after some parts the rate is near the new one.
        for (var i = 0; i < 80; i++) sizing.Observe(8 * MiB, TimeSpan.FromSeconds(8));
        Assert.InRange(sizing.BytesPerSecond!.Value, 1.0 * MiB, 1.05 * MiB);
        Assert.Equal(8 * MiB, sizing.For(GiB, 8 * MiB, 5 * MiB, S3MaxPart, 10_000));
        // Nothing measured from an empty or instant part.
        sizing.Observe(0, TimeSpan.FromSeconds(1));
        sizing.Observe(MiB, TimeSpan.Zero);
        Assert.InRange(sizing.BytesPerSecond!.Value, 1.0 * MiB, 1.05 * MiB);
    }

    [Fact]
    public void A_resume_goes_on_at_the_size_the_kept_parts_were_cut_at()
    {
        var size = 100 * MiB + 7;
        // Whole parts before the last: their size.
        Assert.Equal(24 * MiB, PartSizing.OfKept(size, [(1, 24 * MiB), (3, 24 * MiB)], 5 * MiB, S3MaxPart, 10_000));
        // Only the last part: the size tells it (4 x 24 MiB + 4 MiB + 7 bytes).
        Assert.Equal(24 * MiB, PartSizing.OfKept(size, [(5, 4 * MiB + 7)], 5 * MiB, S3MaxPart, 10_000));
        Assert.Equal(24 * MiB, PartSizing.OfKept(size, [(2, 24 * MiB), (5, 4 * MiB + 7)], 5 * MiB, S3MaxPart, 10_000));
        // Nothing kept, or parts no one size fits (or one the target would refuse): none.
        Assert.Null(PartSizing.OfKept(size, [], 5 * MiB, S3MaxPart, 10_000));
        Assert.Null(PartSizing.OfKept(size, [(1, 24 * MiB), (2, 16 * MiB)], 5 * MiB, S3MaxPart, 10_000));
        Assert.Null(PartSizing.OfKept(size, [(1, 24 * MiB)], 5 * MiB, S3MaxPart, maxParts: 4));
        Assert.Null(PartSizing.OfKept(12 * MiB, [(1, 4 * MiB)], 5 * MiB, S3MaxPart, 10_000));
    }
}
