using System.Diagnostics;
using Amazon.S3;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// One migration per provider quirk, through the provider emulation in front of s3rver or Ceph RGW: what AWS, GCS and
/// the others do that our two test servers do not. Each test compares the bytes on the target with the source's.
/// </summary>
public sealed class ProviderQuirkTests : IAsyncLifetime
{
    private const int Part = 5 * 1024 * 1024;
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-quirks-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly List<FaultProxy> _proxies = [];
    private MigrationEngine _engine = null!;

    private static readonly RunnerOptions Quick = TestEndpoints.QuickRunner;

    public Task InitializeAsync()
    {
        _engine = MigrationEngine.Open(_home);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var proxy in _proxies) await proxy.DisposeAsync();
    }

    private async Task<FaultProxy> ProxyAsync(S3Endpoint upstream)
    {
        var proxy = await FaultProxy.StartAsync(upstream);
        _proxies.Add(proxy);
        return proxy;
    }

    private void Connector(string name, string endpoint, S3Endpoint keys, ConnectorProvider provider = ConnectorProvider.S3, string region = "") =>
        _engine.AddConnector(new CloudConnector { Name = name, Provider = provider, Endpoint = endpoint, Region = region }, keys.AccessKey, keys.SecretKey, pathStyleGiven: true);

    private static async Task<Dictionary<string, byte[]>> SeedAsync(AmazonS3Client client, string bucket, int small, int largeParts = 0)
    {
        var seeded = new Dictionary<string, byte[]>();
        for (var i = 0; i < small; i++) seeded[$"s/{i:d2}.bin"] = TestEndpoints.Bytes(3000 + 500 * i, 100 + i);
        if (largeParts > 0) seeded["l/large.bin"] = TestEndpoints.Bytes(largeParts * Part + 1234, 7);
        foreach (var (key, content) in seeded) await client.PutAsync(bucket, key, content);
        return seeded;
    }

    private static async Task AssertHoldsAsync(AmazonS3Client client, string bucket, Dictionary<string, byte[]> seeded)
    {
        Assert.Equal(seeded.Keys.Order(StringComparer.Ordinal), (await client.KeysAsync(bucket)).Order(StringComparer.Ordinal));
        foreach (var (key, expected) in seeded)
        {
            var (actual, _) = await client.GetAsync(bucket, key);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"'{key}' differs on the target");
        }
    }

    private Guid Job(string source, string sourceBucket, string target, string targetBucket, TimeSpan? noProgress = null) =>
        _engine.CreateJob(new MigrationJobRequest
        {
            SourceConnector = source, SourceBucket = sourceBucket, TargetConnector = target, TargetBucket = targetBucket,
            Concurrency = 4, MultipartThreshold = Part, PartSize = Part, NoProgressTimeout = noProgress,
        }).Id;

    /// <summary>
    /// The two servers of a fixture: s3rver (two instances) or Ceph RGW (two gateways of one cluster). A client of the
    /// source server reads and writes the source; one of the target server, the target.
    /// </summary>
    private static (S3Endpoint Source, S3Endpoint Target) Servers(string fixture) => fixture switch
    {
        "s3rver" => (TestEndpoints.S3rverSource, TestEndpoints.S3rverTarget),
        _ => (TestEndpoints.Rgw, TestEndpoints.RgwSecondGateway),
    };

    private IReadOnlyList<MigrationJobLogEntry> Logs(Guid id, params LogType[] types) => _engine.Store.GetLogs(id, new LogQuery { Types = types });

    // ---- AWS regions ----

    [Theory]
    [InlineData(RegionRefusal.AuthorizationHeaderMalformed, "ceph")]
    [InlineData(RegionRefusal.PermanentRedirect, "ceph")]
    [InlineData(RegionRefusal.AuthorizationHeaderMalformed, "s3rver")]
    [InlineData(RegionRefusal.PermanentRedirect, "s3rver")]
    [InlineData(RegionRefusal.TemporaryRedirect, "ceph")]
    [InlineData(RegionRefusal.TemporaryRedirect, "s3rver")]
    public async Task A_bucket_in_another_region_is_followed_there_and_the_job_logs_the_region_once(RegionRefusal form, string fixture)
    {
        var (sourceServer, targetServer) = Servers(fixture);
        using var client = sourceServer.Client();
        using var targetClient = targetServer.Client();
        var (source, target) = (await client.NewBucketAsync(), await targetClient.NewBucketAsync());
        var seeded = await SeedAsync(client, source, 5, largeParts: 2);
        var proxy = await ProxyAsync(sourceServer);
        proxy.Emulation.BucketRegion = "eu-west-3";
        proxy.Emulation.RegionRefusal = form;
        // An AWS connector without a region: signed for us-east-1 until the bucket's region is found.
        Connector("aws-source", proxy.Endpoint, sourceServer, ConnectorProvider.AWS);
        Connector("target", targetServer.Endpoint, targetServer);
        var id = Job("aws-source", source, "target", target);

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        await AssertHoldsAsync(targetClient, target, seeded);
        Assert.True(proxy.Emulation.RegionRefusals >= 1, "the emulation never refused a request");
        var said = Logs(id).Where(l => l.Message.Contains("is in region 'eu-west-3'")).ToList();
        Assert.Single(said);
        Assert.Contains(source, said[0].Message);
    }

    // ---- Temporary credentials ----

    private async Task<(Guid Id, AmazonS3Client Target, string TargetBucket, Dictionary<string, byte[]> Seeded, FaultProxy Proxy)> TokenJobAsync(string token, ConnectorCredential credential, string name)
    {
        var server = TestEndpoints.S3rverSource;
        using var client = server.Client();
        var targetClient = TestEndpoints.S3rverTarget.Client();
        var (source, target) = (await client.NewBucketAsync(), await targetClient.NewBucketAsync());
        var seeded = await SeedAsync(client, source, 3, largeParts: 1);
        var proxy = await ProxyAsync(server);
        // Like STS-issued keys: a request without this token (or with it unsigned) is refused.
        proxy.Emulation.RequiredSessionToken = token;
        _engine.AddConnector(new CloudConnector { Name = name, Endpoint = proxy.Endpoint }, credential, pathStyleGiven: true);
        Connector("target", TestEndpoints.S3rverTarget.Endpoint, TestEndpoints.S3rverTarget);
        return (Job(name, source, "target", target), targetClient, target, seeded, proxy);
    }

    [Fact]
    public async Task A_connector_on_a_profile_with_a_session_token_signs_every_request_with_it()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_home, "aws")).FullName;
        var file = Path.Combine(folder, "credentials");
        await File.WriteAllTextAsync(file, "[sts]\naws_access_key_id = ASIATEMPORARY\naws_secret_access_key = temporary-secret\naws_session_token = session-token-1\n");
        var (id, targetClient, target, seeded, proxy) = await TokenJobAsync("session-token-1", ConnectorCredential.Profile("sts", file), "sts-profile");
        using (targetClient)
        {
            Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
            await AssertHoldsAsync(targetClient, target, seeded);
            Assert.Equal(0, proxy.Emulation.TokenRefusals);
            Assert.True(proxy.Requests > 5);
        }
    }

    [Fact]
    public async Task A_connector_on_a_credential_process_profile_completes_with_the_keys_the_process_issues()
    {
        if (OperatingSystem.IsWindows()) return; // the script is POSIX sh
        var folder = Directory.CreateDirectory(Path.Combine(_home, "aws-process")).FullName;
        var script = Path.Combine(folder, "issue.sh");
        var expires = DateTime.UtcNow.AddHours(1).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        await File.WriteAllTextAsync(script, $$"""
            #!/bin/sh
            echo '{"Version": 1, "AccessKeyId": "ASIAISSUED", "SecretAccessKey": "issued-secret", "SessionToken": "issued-token", "Expiration": "{{expires}}"}'
            """ + "\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var file = Path.Combine(folder, "credentials");
        await File.WriteAllTextAsync(file, $"[issued]\ncredential_process = {script}\n");
        var (id, targetClient, target, seeded, proxy) = await TokenJobAsync("issued-token", ConnectorCredential.Profile("issued", file), "process-profile");
        using (targetClient)
        {
            Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
            await AssertHoldsAsync(targetClient, target, seeded);
            Assert.Equal(0, proxy.Emulation.TokenRefusals);
        }
    }

    [Fact]
    public async Task Keys_without_the_token_the_server_expects_fail_the_job_as_an_authentication_error()
    {
        var (id, targetClient, _, _, proxy) = await TokenJobAsync("expected-token", ConnectorCredential.Stored("ASIATEMPORARY", "temporary-secret"), "no-token");
        using (targetClient)
        {
            Assert.Equal(JobState.Failed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
            Assert.Contains("rejected", _engine.GetJob(id).Error);
            Assert.True(proxy.Emulation.TokenRefusals >= 1);
        }
    }

    // ---- Encryption: ETags that are not MD5s ----

    [Theory]
    [InlineData(ServerSideEncryption.SseKms, "s3rver")]
    [InlineData(ServerSideEncryption.SseC, "s3rver")]
    [InlineData(ServerSideEncryption.SseKms, "ceph")]
    [InlineData(ServerSideEncryption.SseC, "ceph")]
    public async Task Sse_kms_or_sse_c_on_both_sides_copies_and_verifies_every_object_with_no_false_mismatch_and_still_catches_a_corrupted_byte(ServerSideEncryption encryption, string fixture)
    {
        var (sourceServer, targetServer) = Servers(fixture);
        using var sourceClient = sourceServer.Client();
        using var targetClient = targetServer.Client();
        var (source, target) = (await sourceClient.NewBucketAsync(), await targetClient.NewBucketAsync());
        var seeded = await SeedAsync(sourceClient, source, 6, largeParts: 2);
        var sourceProxy = await ProxyAsync(sourceServer);
        var targetProxy = await ProxyAsync(targetServer);
        foreach (var proxy in new[] { sourceProxy, targetProxy })
        {
            proxy.Emulation.Encryption = encryption;
            // Conditions are evaluated against the opaque ETags a client sees, as the provider does.
            proxy.Emulation.EvaluateConditions = true;
            proxy.Emulation.ProvideChecksums = true;
            proxy.Emulation.VerifyUploadChecksums = true;
        }
        // One source body arrives with a byte flipped: the opaque ETag cannot tell, the stored checksum does.
        sourceProxy.Inject(Fault.CorruptBody, 1, r => FaultProxy.IsObjectGet(r) && r.Path.Value!.EndsWith("03.bin"));
        // AWS's profile: checksums asked for on GET and checked on PUT, as S3 does.
        Connector("enc-source", sourceProxy.Endpoint, sourceServer, ConnectorProvider.AWS);
        Connector("enc-target", targetProxy.Endpoint, targetServer, ConnectorProvider.AWS);
        var id = Job("enc-source", source, "enc-target", target);

        var state = await _engine.RunJobAsync(id, Quick, CancellationToken.None);
        Assert.True(state == JobState.Completed, string.Join(" | ", Logs(id).Select(l => $"{l.Type} {l.ObjectKey}: {l.Message}")));
        await AssertHoldsAsync(targetClient, target, seeded);
        Assert.Equal(1, sourceProxy.Served(Fault.CorruptBody));
        Assert.Empty(Logs(id, LogType.ImportErrorRetryExhaustion, LogType.MigrationError));
        var report = _engine.Store.StreamObjectReport(id).ToList();
        Assert.All(report, row => Assert.Equal(ObjectOutcome.Transferred, row.Outcome));
        // Small objects: the source's CRC32 recomputed while streaming and checked by the target on receipt.
        Assert.All(report.Where(r => r.Key.StartsWith("s/")), row => Assert.Contains("CRC32", row.VerifiedBy));
        Assert.Contains("not MD5s", report.Single(r => r.Key == "l/large.bin").VerifiedBy);
        Assert.True(targetProxy.Emulation.ChecksumsProvided + sourceProxy.Emulation.ChecksumsProvided >= 6);
    }

    [Fact]
    public async Task A_source_that_refuses_If_Match_for_unchanged_objects_is_read_unconditioned_and_checked_by_the_ETag_it_names()
    {
        // The emulation gives Ceph's objects opaque ETags but, told not to evaluate conditions, passes If-Match on to Ceph,
        // which compares it with its own ETag and refuses every read: a server whose If-Match cannot be trusted.
        var (sourceServer, targetServer) = Servers("ceph");
        using var client = sourceServer.Client();
        var (source, target) = (await client.NewBucketAsync(), await client.NewBucketAsync());
        var seeded = await SeedAsync(client, source, 4, largeParts: 1);
        var proxy = await ProxyAsync(sourceServer);
        proxy.Emulation.SseKms = true;
        Connector("strict", proxy.Endpoint, sourceServer);
        Connector("target", targetServer.Endpoint, targetServer);
        var id = Job("strict", source, "target", target);

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        await AssertHoldsAsync(client, target, seeded);
        Assert.Single(Logs(id), l => l.Message.Contains("refused a condition on an object that did not change"));
        Assert.Empty(Logs(id, LogType.ImportSourceChanged));
    }

    [Fact]
    public async Task A_checksum_the_target_checks_on_receipt_catches_bytes_altered_on_the_way_to_it()
    {
        var (sourceServer, targetServer) = (TestEndpoints.S3rverSource, TestEndpoints.S3rverTarget);
        using var sourceClient = sourceServer.Client();
        using var targetClient = targetServer.Client();
        var (source, target) = (await sourceClient.NewBucketAsync(), await targetClient.NewBucketAsync());
        var seeded = await SeedAsync(sourceClient, source, 3);
        var sourceProxy = await ProxyAsync(sourceServer);
        var targetProxy = await ProxyAsync(targetServer);
        sourceProxy.Emulation.SseKms = true;
        sourceProxy.Emulation.ProvideChecksums = true;
        targetProxy.Emulation.SseKms = true;
        targetProxy.Emulation.VerifyUploadChecksums = true;
        // One object's bytes change on the way to the target: its ETag is opaque, the checksum sent along is what tells.
        targetProxy.Inject(Fault.CorruptUpload, 1, FaultProxy.IsObjectPut);
        Connector("kms-source2", sourceProxy.Endpoint, sourceServer, ConnectorProvider.AWS);
        Connector("kms-target2", targetProxy.Endpoint, targetServer, ConnectorProvider.AWS);
        var id = Job("kms-source2", source, "kms-target2", target);

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        await AssertHoldsAsync(targetClient, target, seeded);
        // The altered upload was refused (BadDigest) and sent again; every PUT carried the source's checksum.
        Assert.Equal(1, targetProxy.Served(Fault.CorruptUpload));
        Assert.Equal(1, targetProxy.Emulation.ChecksumMismatches);
        Assert.All(_engine.Store.StreamObjectReport(id), row => Assert.Contains("checked by the target", row.VerifiedBy));
    }

    // ---- GCS: no UploadPartCopy ----

    [Theory]
    [InlineData("ceph")]
    [InlineData("s3rver")]
    public async Task A_server_without_UploadPartCopy_gets_large_objects_streamed_and_says_so_once(string fixture)
    {
        var rgw = Servers(fixture).Source;
        using var client = rgw.Client();
        var (source, target) = (await client.NewBucketAsync(), await client.NewBucketAsync());
        var seeded = await SeedAsync(client, source, 3, largeParts: 2);
        seeded["l/second.bin"] = TestEndpoints.Bytes(2 * Part + 10, 8);
        await client.PutAsync(source, "l/second.bin", seeded["l/second.bin"]);
        var proxy = await ProxyAsync(rgw);
        proxy.Emulation.RefusePartCopy = true;
        // One endpoint and one key on both sides: a server-side copy, as within one GCS project.
        Connector("one-a", proxy.Endpoint, rgw);
        Connector("one-b", proxy.Endpoint, rgw);
        var id = Job("one-a", source, "one-b", target);

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        await AssertHoldsAsync(client, target, seeded);
        Assert.True(proxy.Emulation.PartCopiesRefused >= 1);
        Assert.Single(Logs(id), l => l.Message.Contains("does not implement UploadPartCopy"));
        Assert.Contains(_engine.Store.StreamObjectReport(id), r => r.Key == "s/00.bin" && r.VerifiedBy!.Contains("server-side"));
    }

    [Theory]
    [InlineData("ceph")]
    [InlineData("s3rver")]
    public async Task A_GCS_connector_never_asks_for_UploadPartCopy(string fixture)
    {
        var rgw = Servers(fixture).Source;
        using var client = rgw.Client();
        var (source, target) = (await client.NewBucketAsync(), await client.NewBucketAsync());
        var seeded = await SeedAsync(client, source, 2, largeParts: 2);
        var proxy = await ProxyAsync(rgw);
        proxy.Emulation.RefusePartCopy = true;
        Connector("gcs-a", proxy.Endpoint, rgw, ConnectorProvider.GCS);
        Connector("gcs-b", proxy.Endpoint, rgw, ConnectorProvider.GCS);
        var id = Job("gcs-a", source, "gcs-b", target);

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        await AssertHoldsAsync(client, target, seeded);
        Assert.Equal(0, proxy.Emulation.PartCopiesRefused);
    }

    // ---- Clock skew ----

    [Theory]
    [InlineData("ceph")]
    [InlineData("s3rver")]
    public async Task A_server_that_insists_on_its_own_clock_is_followed_and_the_job_completes(string fixture)
    {
        var (sourceServer, targetServer) = Servers(fixture);
        using var client = sourceServer.Client();
        using var targetClient = targetServer.Client();
        var (source, target) = (await client.NewBucketAsync(), await targetClient.NewBucketAsync());
        var seeded = await SeedAsync(client, source, 4, largeParts: 1);
        var proxy = await ProxyAsync(sourceServer);
        proxy.Emulation.ClockOffset = TimeSpan.FromMinutes(47);
        Connector("skewed", proxy.Endpoint, sourceServer);
        Connector("target", targetServer.Endpoint, targetServer);
        var id = Job("skewed", source, "target", target);

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        await AssertHoldsAsync(targetClient, target, seeded);
        Assert.True(proxy.Emulation.SkewRefusals >= 1);
        Assert.Single(Logs(id), l => l.Message.Contains("differs from this machine's"));
    }

    // ---- Settling on every error ----

    [Fact]
    public async Task A_listing_refused_with_a_non_retryable_error_fails_the_job_with_the_cause_and_resumes_once_it_is_gone()
    {
        var server = TestEndpoints.S3rverSource;
        using var client = server.Client();
        using var targetClient = TestEndpoints.S3rverTarget.Client();
        var (source, target) = (await client.NewBucketAsync(), await targetClient.NewBucketAsync());
        var seeded = await SeedAsync(client, source, 4);
        var proxy = await ProxyAsync(server);
        // The bucket check (a one-key listing) passes; the listing proper is refused.
        proxy.Inject(Fault.BadRequest, int.MaxValue, r => FaultProxy.IsListing(r) && r.Query["max-keys"] != "1");
        Connector("refusing", proxy.Endpoint, server);
        Connector("target", TestEndpoints.S3rverTarget.Endpoint, TestEndpoints.S3rverTarget);
        var id = Job("refusing", source, "target", target);

        Assert.Equal(JobState.Failed, await _engine.RunJobAsync(id, Quick, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        var job = _engine.GetJob(id);
        Assert.Contains("Listing the source bucket", job.Error);
        Assert.Contains("InvalidArgument", job.Error);
        Assert.Contains("Resume-MigrationJob", job.Error);
        Assert.Contains(Logs(id, LogType.MigrationError), l => l.Message.Contains("InvalidArgument"));

        proxy.Clear();
        _engine.PrepareResume(id, retryFailed: false);
        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        await AssertHoldsAsync(targetClient, target, seeded);
    }

    // ---- Timeouts by progress ----

    [Fact]
    public async Task A_link_slowed_to_a_trickle_that_keeps_moving_finishes_though_it_outlasts_the_no_progress_timeout()
    {
        var server = TestEndpoints.S3rverSource;
        using var client = server.Client();
        using var targetClient = TestEndpoints.S3rverTarget.Client();
        var (source, target) = (await client.NewBucketAsync(), await targetClient.NewBucketAsync());
        var seeded = new Dictionary<string, byte[]> { ["slow.bin"] = TestEndpoints.Bytes(200_000, 3) };
        await client.PutAsync(source, "slow.bin", seeded["slow.bin"]);
        var proxy = await ProxyAsync(server);
        // Pieces a tenth of the no-progress timeout apart (1 s, below), over four times that timeout in all.
        proxy.TrickleDuration = TimeSpan.FromSeconds(4);
        proxy.TrickleMaxPause = TimeSpan.FromMilliseconds(100);
        proxy.Inject(Fault.Trickle, int.MaxValue, FaultProxy.IsObjectGet);
        Connector("slow", proxy.Endpoint, server);
        Connector("target", TestEndpoints.S3rverTarget.Endpoint, TestEndpoints.S3rverTarget);
        var id = Job("slow", source, "target", target, noProgress: TimeSpan.FromSeconds(1));

        var clock = Stopwatch.StartNew();
        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None));
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(3), "the body did not trickle");
        Assert.Equal(1, proxy.Served(Fault.Trickle));
        await AssertHoldsAsync(targetClient, target, seeded);
    }

    [Fact]
    public async Task An_upload_that_stalls_fails_within_the_no_progress_timeout_and_a_retry_sends_it_whole()
    {
        var server = TestEndpoints.S3rverSource;
        using var client = server.Client();
        var rgw = TestEndpoints.Rgw;
        using var targetClient = rgw.Client();
        var (source, target) = (await client.NewBucketAsync(), await targetClient.NewBucketAsync());
        var seeded = await SeedAsync(client, source, 2);
        var targetProxy = await ProxyAsync(rgw);
        // The first upload stops being read half way (a target that stalls); the client gives up and sends it again.
        targetProxy.Inject(Fault.StallUpload, 1, FaultProxy.IsObjectPut);
        Connector("source", server.Endpoint, server);
        Connector("stalling-target", targetProxy.Endpoint, rgw);
        var id = Job("source", source, "stalling-target", target, noProgress: TimeSpan.FromSeconds(1));

        Assert.Equal(JobState.Completed, await _engine.RunJobAsync(id, Quick, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(1, targetProxy.Served(Fault.StallUpload));
        await AssertHoldsAsync(targetClient, target, seeded);
    }

    [Fact]
    public async Task A_link_that_stalls_fails_the_object_within_the_no_progress_timeout_and_the_job_goes_on()
    {
        var server = TestEndpoints.S3rverSource;
        using var client = server.Client();
        // Ceph as the target: an upload cut off mid-body must leave nothing (s3rver, a fake, keeps what it received).
        using var targetClient = TestEndpoints.Rgw.Client();
        var (source, target) = (await client.NewBucketAsync(), await targetClient.NewBucketAsync());
        var seeded = await SeedAsync(client, source, 3);
        await client.PutAsync(source, "stuck.bin", TestEndpoints.Bytes(300_000, 9));
        var proxy = await ProxyAsync(server);
        proxy.Inject(Fault.Stall, int.MaxValue, r => FaultProxy.IsObjectGet(r) && r.Path.Value!.EndsWith("stuck.bin"));
        Connector("stalling", proxy.Endpoint, server);
        Connector("target", TestEndpoints.Rgw.Endpoint, TestEndpoints.Rgw);
        var id = Job("stalling", source, "target", target, noProgress: TimeSpan.FromSeconds(1));
        var options = new RunnerOptions { Retry = new RetryPolicy { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(10) }, ControlInterval = Quick.ControlInterval, FlushInterval = Quick.FlushInterval };

        Assert.Equal(JobState.CompletedWithErrors, await _engine.RunJobAsync(id, options, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        await AssertHoldsAsync(targetClient, target, seeded);
        var failure = Assert.Single(Logs(id, LogType.ImportErrorRetryExhaustion));
        Assert.Equal("stuck.bin", failure.ObjectKey);
        Assert.Contains("No byte moved for 1 s", failure.Message);
        Assert.Equal(2, proxy.Served(Fault.Stall));
    }
}
