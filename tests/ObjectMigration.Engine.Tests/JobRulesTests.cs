using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The rules a job request meets before anything is written; no server needed.</summary>
public sealed class JobRulesTests
{
    [Theory]
    [InlineData("", "", true)]            // the bucket onto itself
    [InlineData("data/", "", true)]       // data/x -> data/x
    [InlineData("", "copy/", true)]       // copy/x is listed again and copied to copy/copy/x
    [InlineData("data/", "data/old/", true)]
    [InlineData("a", "", true)]
    [InlineData("aa", "a", true)]         // aa1 -> aaa1, which starts with aa
    [InlineData("data/", "backup/", false)]
    [InlineData("a/b/", "a/", false)]     // a/b/x -> a/a/b/x, outside a/b/
    [InlineData("data/", "dat", false)]   // data/x -> datdata/x
    public void A_target_prefix_overlaps_the_source_exactly_when_a_copy_lands_among_the_listed_keys(string source, string target, bool overlaps)
    {
        Assert.Equal(overlaps, JobRules.Overlaps(source, target));
        // The rule, checked by brute force over keys under the source prefix.
        var keys = new[] { "", "a", "b", "aa", "ab", "data/", "a/b/x", "dat", "/" }.Select(k => source + k);
        Assert.Equal(overlaps, keys.Any(k => (target + k).StartsWith(source, StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("photos-2024", true, true)]
    [InlineData("my.bucket.name", true, true)]
    [InlineData("ab", false, false)]
    [InlineData("Bad_Bucket!!", false, false)]
    [InlineData("Legacy_Bucket", true, false)]   // AWS us-east-1 legacy names: migrate from them, never into them
    [InlineData("-leading", false, false)]
    [InlineData("two..dots", false, false)]
    [InlineData("192.168.1.1", false, false)]
    [InlineData("dot-.dash", false, false)]
    public void Bucket_names_follow_the_S3_rules_with_legacy_names_allowed_only_as_a_source(string bucket, bool validSource, bool validTarget)
    {
        Assert.Equal(validSource, Accepts(() => JobRules.CheckBucket(bucket, "SourceBucket", legacyAllowed: true)));
        Assert.Equal(validTarget, Accepts(() => JobRules.CheckBucket(bucket, "TargetBucket", legacyAllowed: false)));
    }

    [Theory]
    [InlineData("xn--bucket")]
    [InlineData("sthree-bucket")]
    [InlineData("bucket-s3alias")]
    [InlineData("bucket--ol-s3")]
    [InlineData("bucket.mrap")]
    public void Names_S3_reserves_for_its_own_features_are_refused_for_a_target(string bucket)
    {
        var error = Assert.Throws<ArgumentException>(() => JobRules.CheckBucket(bucket, "TargetBucket", legacyAllowed: false));
        Assert.Contains("reserves", error.Message);
    }

    [Theory]
    [InlineData("Key", "")]
    [InlineData("Key", "long")]
    [InlineData("Include", "")]
    [InlineData("Exclude", "  ")]
    [InlineData("ExcludeContentType", "")]
    [InlineData("SourcePrefix", "   ")]
    [InlineData("TargetPrefix", " ")]
    public void Blank_and_oversized_values_are_refused_naming_the_parameter(string parameter, string value)
    {
        var request = new MigrationJobRequest { SourceConnector = "s", SourceBucket = "source", TargetConnector = "t", TargetBucket = "target" };
        switch (parameter)
        {
            case "Key": request.Keys = ["fine.txt", value == "long" ? new string('k', JobRules.MaxKeyBytes + 1) : value]; break;
            case "Include": request.Filter.Include = ["*.jpg", value]; break;
            case "Exclude": request.Filter.Exclude = [value]; break;
            case "ExcludeContentType": request.Filter.ExcludeContentType = [value]; break;
            case "SourcePrefix": request.SourcePrefix = value; break;
            default: request.TargetPrefix = value; break;
        }
        Assert.Equal(parameter, Assert.Throws<ArgumentException>(() => JobRules.Check(request)).ParamName);
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(257, true)]
    [InlineData(TransferOptions.MaxConcurrency, true)]
    [InlineData(TransferOptions.MaxConcurrency + 1, false)]
    [InlineData(0, false)]
    public void Concurrency_is_taken_from_one_to_the_ceiling(int concurrency, bool accepted)
    {
        var request = new MigrationJobRequest { SourceConnector = "s", SourceBucket = "source", TargetConnector = "t", TargetBucket = "target", Concurrency = concurrency };
        Assert.Equal(accepted, Accepts(() => JobRules.Check(request)));
        if (!accepted) Assert.Contains($"1 to {TransferOptions.MaxConcurrency}", Assert.Throws<ArgumentException>(() => JobRules.Check(request)).Message);
    }

    [Fact]
    public void A_copy_within_one_bucket_is_refused_only_when_it_lands_among_its_source_keys()
    {
        var connector = new CloudConnector { Id = 1, Name = "c", Endpoint = "http://127.0.0.1:9000" };
        var twin = new CloudConnector { Id = 2, Name = "twin", Endpoint = "HTTP://127.0.0.1:9000/" };
        var request = new MigrationJobRequest { SourceBucket = "b", TargetBucket = "b", SourcePrefix = "data/", TargetPrefix = "data/x/" };
        var error = Assert.Throws<ArgumentException>(() => JobRules.CheckNotOntoItself(request, connector, twin));
        Assert.Equal("TargetPrefix", error.ParamName);
        request.TargetPrefix = "backup/";
        JobRules.CheckNotOntoItself(request, connector, twin);
        request.TargetPrefix = "";
        JobRules.CheckNotOntoItself(request, connector, new CloudConnector { Id = 3, Name = "other", Endpoint = "http://127.0.0.1:9001" });
    }

    private static bool Accepts(Action check)
    {
        try { check(); return true; }
        catch (ArgumentException) { return false; }
    }
}
