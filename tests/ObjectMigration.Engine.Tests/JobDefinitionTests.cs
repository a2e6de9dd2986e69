using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>What a re-run of New-MigrationJob must match (the definition) and what it may change without effect (run settings).</summary>
public sealed class JobDefinitionTests
{
    private static MigrationJob Job() => new()
    {
        Name = "nightly", Type = JobType.Verify, SourceConnector = "src", SourceBucket = "a", TargetConnector = "dst", TargetBucket = "b",
        Concurrency = 8, MaxBytesPerSecond = 100, PartSize = TransferOptions.DefaultPartSize, MultipartThreshold = TransferOptions.DefaultMultipartThreshold,
        Filter = new ObjectFilter { Include = ["*.jpg"] },
    };

    private static MigrationJobRequest Request() => new()
    {
        Name = "nightly", Type = JobType.Verify, SourceConnector = "src", SourceBucket = "a", TargetConnector = "dst", TargetBucket = "b",
        Concurrency = 8, MaxBytesPerSecond = 100, Filter = new ObjectFilter { Include = ["*.jpg"] },
    };

    [Fact]
    public void The_same_definition_has_no_differences_and_keeps_no_settings()
    {
        Assert.Empty(JobDefinition.Differences(Job(), Request()));
        Assert.Empty(JobDefinition.SettingsKept(Job(), Request()));
    }

    [Fact]
    public void A_verify_that_decides_otherwise_or_another_filter_is_another_definition_named_by_parameter()
    {
        var request = Request();
        request.Deep = true;
        request.Filter = new ObjectFilter { Include = ["*.png"] };
        Assert.Equal(["-Deep was (none), now 'present'", "-Include was '*.jpg', now '*.png'"], JobDefinition.Differences(Job(), request));
    }

    [Fact]
    public void Run_settings_are_not_the_definition_and_are_said_to_be_kept()
    {
        var request = Request();
        request.MaxBytesPerSecond = 500;
        Assert.Empty(JobDefinition.Differences(Job(), request));
        Assert.Equal(["-MaxBytesPerSecond stays 100 (given 500)"], JobDefinition.SettingsKept(Job(), request));
    }
}
