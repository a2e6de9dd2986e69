using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The one "same object?" rule, on what listings and copy records can show; no server needed.</summary>
public sealed class ObjectComparerTests
{
    private const string Md5A = "\"0cc175b9c0f1b6a831c399e269772661\"";
    private const string Md5B = "\"92eb5ffee6ae2fec3ad71c777531578f\"";
    private const string Multipart = "\"5f363e0e58a95f06cbe9bbc662c5dfb6-2\"";

    private static PendingObject Object(string? etag, string? targetETag, CopyRecord? copied = null, long size = 10, long targetSize = 10) =>
        new("k", size, etag, DateTimeOffset.UnixEpoch, null, targetSize, targetETag, DateTimeOffset.UnixEpoch, TargetListed: true, Copied: copied);

    [Fact]
    public void A_copy_record_counts_only_with_every_ETag_known()
    {
        // A listing without ETags once copied: two missing ETags are not two equal ones.
        var verdict = ObjectComparer.Compare(Object(null, null, new CopyRecord(null, "x")));
        Assert.Equal(Sameness.Unknown, verdict.Verdict);
        Assert.Equal(Sameness.Unknown, ObjectComparer.Compare(Object("", "", new CopyRecord("", ""))).Verdict);
    }

    [Fact]
    public void The_record_decides_before_ETags_that_only_look_like_MD5s()
    {
        // SSE-KMS ETags look like MD5s but are not: the target's differs from the source's although the bytes are the
        // same, and the record of this module's verified copy says so.
        Assert.Equal(Sameness.Same, ObjectComparer.Compare(Object(Md5A, Md5B, new CopyRecord(Md5A, Md5B))).Verdict);
        // The target written again since the copy.
        Assert.Equal(Sameness.Different, ObjectComparer.Compare(Object(Md5A, Multipart, new CopyRecord(Md5A, Md5B))).Verdict);
    }

    [Fact]
    public void A_source_that_changed_since_the_copy_while_the_target_did_not_is_different()
    {
        var verdict = ObjectComparer.Compare(Object(Multipart, Md5B, new CopyRecord("\"11111111111111111111111111111111-2\"", Md5B)));
        Assert.Equal(Sameness.Different, verdict.Verdict);
        Assert.Contains("the source changed since", verdict.How);
    }

    [Fact]
    public void Without_a_record_sizes_then_MD5s_then_equal_multipart_ETags_decide()
    {
        Assert.Equal(Sameness.Different, ObjectComparer.Compare(Object(Md5A, Md5A, targetSize: 11)).Verdict);
        Assert.Equal(Sameness.Same, ObjectComparer.Compare(Object(Md5A, Md5A)).Verdict);
        var differentMd5 = ObjectComparer.Compare(Object(Md5A, Md5B));
        Assert.Equal(Sameness.Different, differentMd5.Verdict);
        Assert.True(differentMd5.NeedsHeads);
        Assert.Equal(Sameness.Same, ObjectComparer.Compare(Object(Multipart, Multipart)).Verdict);
        Assert.Equal(Sameness.Unknown, ObjectComparer.Compare(Object(Multipart, Md5A)).Verdict);
    }
}
