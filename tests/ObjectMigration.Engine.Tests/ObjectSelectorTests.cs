using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Skip rules that the local servers cannot produce (archive classes, 5 TiB objects), decided without I/O.</summary>
public sealed class ObjectSelectorTests
{
    private static PendingObject Pending(string key, long size, string? storageClass = null) =>
        new(key, size, "\"d41d8cd98f00b204e9800998ecf8427e\"", DateTimeOffset.UnixEpoch, storageClass, null, null, null, TargetListed: true);

    [Theory]
    [InlineData("GLACIER")]
    [InlineData("DEEP_ARCHIVE")]
    public void Archive_classes_are_skipped_as_requiring_retrieval(string storageClass)
    {
        var skip = new ObjectSelector(new MigrationJob()).SkipReason(Pending("cold.bin", 10, storageClass));
        Assert.Equal(LogType.ImportSkippedRequiresRetrieval, skip?.LogType);
        Assert.Equal(ObjectOutcome.Skipped, skip?.Outcome);
    }

    [Fact]
    public void Intelligent_tiering_objects_in_an_archive_tier_are_skipped_after_a_head()
    {
        var o = Pending("it.bin", 10, "INTELLIGENT_TIERING");
        Assert.True(ObjectSelector.NeedsArchiveCheck(o));
        Assert.Equal(LogType.ImportSkippedRequiresRetrieval, ObjectSelector.ArchiveSkip(o, "DEEP_ARCHIVE_ACCESS")?.LogType);
        Assert.Null(ObjectSelector.ArchiveSkip(o, null));
        Assert.False(ObjectSelector.NeedsArchiveCheck(Pending("s.bin", 10, "STANDARD")));
    }

    [Fact]
    public void Objects_over_the_target_limit_are_skipped_as_oversized()
    {
        var selector = new ObjectSelector(new MigrationJob(), targetMaxObjectSize: 1000);
        Assert.Equal(LogType.ImportSkippedOversized, selector.SkipReason(Pending("big", 1001))?.LogType);
        Assert.Null(selector.SkipReason(Pending("fits", 1000)));
    }

    [Theory]
    [InlineData("*.log", "a/b.log", true)]
    [InlineData("*.log", "a/b.LOG", false)]
    [InlineData("a/?.txt", "a/1.txt", true)]
    [InlineData("a/[0-4].txt", "a/7.txt", false)]
    [InlineData("literal`*star", "literal*star", true)]
    public void Key_patterns_are_PowerShell_wildcards_over_the_whole_key(string pattern, string key, bool matches) =>
        Assert.Equal(matches, new KeyPattern(pattern).IsMatch(key));

    [Fact]
    public void The_multipart_ETag_is_the_MD5_of_the_part_MD5s_and_the_part_count()
    {
        // Two parts whose MD5s are those of "a" and "b"; the value is what S3 computes for such an upload.
        var etag = Checksums.MultipartETag(["0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f"]);
        var expected = Convert.ToHexString(System.Security.Cryptography.MD5.HashData(
            Convert.FromHexString("0cc175b9c0f1b6a831c399e26977266192eb5ffee6ae2fec3ad71c777531578f"))).ToLowerInvariant() + "-2";
        Assert.Equal(expected, etag);
    }
}
