using Amazon.S3;
using Amazon.S3.Model;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Verify and its repair (-FromVerify), on every pair of endpoints.</summary>
public abstract partial class ConformanceSuite
{
    private const int FivemiB = 5 * 1024 * 1024;

    private async Task<(MigrationJob Job, MigrationJobProgress Progress, ILookup<LogType, string?> Findings)> VerifyAsync(string sourceBucket, string targetBucket)
    {
        var (job, progress) = await MigrateAsync(sourceBucket, targetBucket, r => r.Type = JobType.Verify);
        var findings = _engine.Store.GetLogs(job.Id, new LogQuery { Types = [LogType.VerifyMissing, LogType.VerifyMismatch, LogType.VerifyExtra] })
            .ToLookup(entry => entry.Type, entry => entry.ObjectKey);
        return (job, progress, findings);
    }

    /// <summary>Other bytes of the same size as a multipart upload in 5 MiB parts: the layout this module's copy has.</summary>
    private static async Task PutMultipartAsync(AmazonS3Client client, string bucket, string key, byte[] content)
    {
        var upload = await client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = bucket, Key = key });
        var parts = new List<PartETag>();
        for (int offset = 0, number = 1; offset < content.Length; offset += FivemiB, number++)
        {
            var length = Math.Min(FivemiB, content.Length - offset);
            var part = await client.UploadPartAsync(new UploadPartRequest
            {
                BucketName = bucket, Key = key, UploadId = upload.UploadId, PartNumber = number, PartSize = length,
                InputStream = new MemoryStream(content, offset, length), UseChunkEncoding = false,
            });
            parts.Add(new PartETag(number, part.ETag));
        }
        await client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest { BucketName = bucket, Key = key, UploadId = upload.UploadId, PartETags = parts });
    }

    [Fact]
    public async Task Verify_finds_exactly_what_changed_on_the_target_and_FromVerify_repairs_it()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        for (var i = 0; i < 8; i++) await _sourceClient.PutAsync(source, $"small/{i}.bin", TestEndpoints.Bytes(1000 + i, i));
        var bigSize = 2 * FivemiB + 12345;
        await PutMultipartAsync(_sourceClient, source, "big/multipart.bin", TestEndpoints.Bytes(bigSize, 100));
        var (migrated, _) = await MigrateAsync(source, target, r => { r.MultipartThreshold = FivemiB; r.PartSize = FivemiB; });
        Assert.Equal(JobState.Completed, migrated.State);

        var (clean, cleanProgress, cleanFindings) = await VerifyAsync(source, target);
        Assert.Equal(JobState.Completed, clean.State);
        Assert.Empty(cleanFindings);
        Assert.Equal((9L, 9L, 0L, 0L, 0L), (cleanProgress.CheckedObjects, cleanProgress.MatchingObjects, cleanProgress.MissingObjects, cleanProgress.MismatchedObjects, cleanProgress.ExtraObjects));

        foreach (var key in new[] { "small/0.bin", "small/1.bin", "small/2.bin" }) await _targetClient.DeleteObjectAsync(target, key);
        await _targetClient.PutAsync(target, "small/3.bin", TestEndpoints.Bytes(1003, 999));
        // Same size, same part layout, other bytes: only the checksum recorded when this module copied it tells.
        await PutMultipartAsync(_targetClient, target, "big/multipart.bin", TestEndpoints.Bytes(bigSize, 101));
        await _targetClient.PutAsync(target, "small/extra.bin", TestEndpoints.Bytes(10, 7));

        var (found, progress, findings) = await VerifyAsync(source, target);
        Assert.Equal(JobState.CompletedWithErrors, found.State);
        Assert.Equal(["small/0.bin", "small/1.bin", "small/2.bin"], findings[LogType.VerifyMissing].Order(StringComparer.Ordinal));
        Assert.Equal(["big/multipart.bin", "small/3.bin"], findings[LogType.VerifyMismatch].Order(StringComparer.Ordinal));
        Assert.Equal(["small/extra.bin"], findings[LogType.VerifyExtra]);
        Assert.Equal((10L, 4L, 3L, 2L, 1L), (progress.CheckedObjects, progress.MatchingObjects, progress.MissingObjects, progress.MismatchedObjects, progress.ExtraObjects));
        Assert.Contains(await _targetClient.KeysAsync(target), key => key == "small/extra.bin");
        // Retrying its findings would check them against the target as listed then: a new verify is the way.
        Assert.Contains("Run a new verify", Assert.Throws<JobStateException>(() => _engine.PrepareResume(found.Id, retryFailed: true)).Message);
        Assert.Equal(JobState.CompletedWithErrors, _engine.GetJob(found.Id).State);

        var repair = new MigrationJobRequest { Concurrency = 4, MultipartThreshold = FivemiB, PartSize = FivemiB };
        _engine.MakeRepairOf(found.Id, repair);
        var repairJob = _engine.CreateJob(repair);
        await _engine.RunJobAsync(repairJob.Id, FastRetries, CancellationToken.None);
        Assert.Equal(JobState.Completed, _engine.GetJob(repairJob.Id).State);
        Assert.Equal(OverwriteMode.Always, repairJob.Overwrite);
        Assert.Equal(5, _engine.Store.GetProgress(repairJob.Id).TransferredObjects);
        foreach (var key in new[] { "small/0.bin", "small/1.bin", "small/2.bin", "small/3.bin", "big/multipart.bin" })
        {
            await AssertSameObjectAsync(source, key, target, key);
        }

        // The extra object is never deleted: the next verify reports it alone; once removed by hand, a verify is clean.
        var (again, _, againFindings) = await VerifyAsync(source, target);
        Assert.Equal(["small/extra.bin"], againFindings.SelectMany(g => g));
        Assert.Equal(JobState.CompletedWithErrors, again.State);
        await _targetClient.DeleteObjectAsync(target, "small/extra.bin");
        var (last, lastProgress, lastFindings) = await VerifyAsync(source, target);
        Assert.Equal(JobState.Completed, last.State);
        Assert.Empty(lastFindings);
        Assert.Equal(9, lastProgress.MatchingObjects);
    }

    [Fact]
    public async Task Deep_verify_reads_both_sides_and_catches_same_size_bytes_no_record_or_ETag_tells()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        var size = FivemiB + 777;
        await PutMultipartAsync(_sourceClient, source, "same.bin", TestEndpoints.Bytes(size, 1));
        await PutMultipartAsync(_sourceClient, source, "other.bin", TestEndpoints.Bytes(size, 2));
        // Put there by another tool, in another part layout: ETags cannot be compared and no copy record exists.
        await _targetClient.PutAsync(target, "same.bin", TestEndpoints.Bytes(size, 1));
        await _targetClient.PutAsync(target, "other.bin", TestEndpoints.Bytes(size, 3));

        var (deep, progress) = await MigrateAsync(source, target, r => { r.Type = JobType.Verify; r.Deep = true; });
        Assert.Equal(JobState.CompletedWithErrors, deep.State);
        var mismatch = Assert.Single(_engine.Store.GetLogs(deep.Id, new LogQuery { Types = [LogType.VerifyMismatch] }));
        Assert.Equal("other.bin", mismatch.ObjectKey);
        Assert.Contains("content: both read", mismatch.Message);
        Assert.Equal((1L, 1L), (progress.MatchingObjects, progress.MismatchedObjects));
    }

    [Fact]
    public async Task Deep_verify_reads_the_bytes_where_a_copy_record_says_the_target_was_written_again()
    {
        var source = await _sourceClient.NewBucketAsync();
        var target = await _targetClient.NewBucketAsync();
        var content = TestEndpoints.Bytes(4000, 21);
        await _sourceClient.PutAsync(source, "rewritten.bin", content);
        var (migrated, _) = await MigrateAsync(source, target);
        Assert.Equal(JobState.Completed, migrated.State);
        var copiedETag = (await _targetClient.GetObjectMetadataAsync(target, "rewritten.bin")).ETag;
        // Written again with the same bytes, as a one-part multipart upload: a new ETag (s3rver keeps the MD5), the same content.
        await PutMultipartAsync(_targetClient, target, "rewritten.bin", content);
        var rewrittenETag = (await _targetClient.GetObjectMetadataAsync(target, "rewritten.bin")).ETag;

        var (_, _, recordFindings) = await VerifyAsync(source, target);
        // The record of the copy sees a new ETag as a rewrite; an unchanged ETag still vouches for the copy.
        Assert.Equal(rewrittenETag == copiedETag ? [] : ["rewritten.bin"], recordFindings[LogType.VerifyMismatch].ToArray());
        var (deep, deepProgress) = await MigrateAsync(source, target, r => { r.Type = JobType.Verify; r.Deep = true; });
        Assert.Equal(JobState.Completed, deep.State);
        Assert.Equal(1, deepProgress.MatchingObjects);
    }
}
