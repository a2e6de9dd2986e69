using System.Net;
using System.Net.Sockets;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Storage;
using Xunit;

namespace ObjectMigration.Engine.Tests;

public sealed class ConnectorRuleTests
{
    private static CloudConnector Complete(CloudConnector c)
    {
        c.Name = "x";
        ConnectorRules.Complete(c, pathStyleGiven: false);
        return c;
    }

    [Theory]
    [InlineData(ConnectorProvider.AWS, "eu-west-1", null, null, "https://s3.eu-west-1.amazonaws.com")]
    [InlineData(ConnectorProvider.R2, null, "acc123", null, "https://acc123.r2.cloudflarestorage.com")]
    [InlineData(ConnectorProvider.R2, null, "acc123", "eu", "https://acc123.eu.r2.cloudflarestorage.com")]
    [InlineData(ConnectorProvider.R2, null, "acc123", "fedramp", "https://acc123.fedramp.r2.cloudflarestorage.com")]
    [InlineData(ConnectorProvider.GCS, null, null, null, "https://storage.googleapis.com")]
    [InlineData(ConnectorProvider.Wasabi, "eu-central-1", null, null, "https://s3.eu-central-1.wasabisys.com")]
    [InlineData(ConnectorProvider.Wasabi, null, null, null, "https://s3.wasabisys.com")]
    public void Providers_derive_their_endpoint(ConnectorProvider provider, string? region, string? account, string? jurisdiction, string expected)
    {
        var c = Complete(new CloudConnector { Provider = provider, Region = region ?? "", AccountId = account, Jurisdiction = jurisdiction });
        Assert.Equal(expected, c.Endpoint);
    }

    [Fact]
    public void Aws_may_leave_the_region_out_then_uses_the_global_endpoint_and_discovers_regions_per_bucket()
    {
        var c = Complete(new CloudConnector { Provider = ConnectorProvider.AWS, Region = "" });
        Assert.Equal(("", "https://s3.us-east-1.amazonaws.com"), (c.Region, c.Endpoint));
        Assert.True(ConnectorRules.HasDerivedEndpoint(c));
        // A bucket found in another region is addressed at that region's endpoint.
        Assert.Equal("https://s3.eu-central-1.amazonaws.com", ConnectorRules.EndpointForRegion(c, "eu-central-1"));
        Assert.True(ProviderProfiles.For(ConnectorProvider.AWS).DiscoversBucketRegion);
    }

    [Fact]
    public void An_endpoint_the_user_gave_stays_whatever_region_a_bucket_is_in()
    {
        var c = Complete(new CloudConnector { Provider = ConnectorProvider.AWS, Region = "us-east-1", Endpoint = "https://vpce-1.s3.us-east-1.vpce.amazonaws.com" });
        Assert.False(ConnectorRules.HasDerivedEndpoint(c));
        Assert.Equal(c.Endpoint, ConnectorRules.EndpointForRegion(c, "eu-west-1"));
    }

    [Theory]
    [InlineData(ConnectorProvider.GCS, false, false)]
    [InlineData(ConnectorProvider.AWS, true, true)]
    [InlineData(ConnectorProvider.R2, true, false)]
    [InlineData(ConnectorProvider.S3, true, true)]
    public void Each_provider_profile_says_what_it_supports(ConnectorProvider provider, bool partCopy, bool tagging)
    {
        var profile = ProviderProfiles.For(provider);
        Assert.Equal((partCopy, tagging), (profile.SupportsPartCopy, profile.SupportsTagging));
    }

    [Fact]
    public void Aws_signs_in_its_region_streams_chunked_and_uses_virtual_hosted_style()
    {
        var c = Complete(new CloudConnector { Provider = ConnectorProvider.AWS, Region = "ap-south-1" });
        Assert.Equal("ap-south-1", c.Region);
        Assert.True(c.UseChunkEncoding);
        Assert.False(c.PathStyle);
    }

    [Theory]
    [InlineData(ConnectorProvider.S3, true)]
    [InlineData(ConnectorProvider.MinIO, true)]
    [InlineData(ConnectorProvider.VspOne, true)]
    [InlineData(ConnectorProvider.UpCloud, false)]
    public void Path_style_is_on_by_default_for_generic_S3_MinIO_and_VspOne(ConnectorProvider provider, bool pathStyle)
    {
        var c = Complete(new CloudConnector { Provider = provider, Endpoint = "https://objects.example.com/" });
        Assert.Equal(pathStyle, c.PathStyle);
        Assert.Equal("https://objects.example.com", c.Endpoint);
        Assert.False(c.UseChunkEncoding);
    }

    [Theory]
    [InlineData(ConnectorProvider.R2, null, null, "AccountId")]
    [InlineData(ConnectorProvider.R2, "acc", "mars", "Jurisdiction")]
    [InlineData(ConnectorProvider.S3, null, null, "Endpoint")]
    public void Wrong_combinations_fail_naming_the_parameter(ConnectorProvider provider, string? account, string? jurisdiction, string parameter)
    {
        var e = Assert.Throws<ConnectorDefinitionException>(() => Complete(new CloudConnector { Provider = provider, AccountId = account, Jurisdiction = jurisdiction }));
        Assert.Equal(parameter, e.ParamName);
    }

    [Theory]
    [InlineData("Region", "us east 1")]
    [InlineData("Region", "us-east-1\n")]
    [InlineData("Region", "eu/west")]
    [InlineData("AccountId", "acc/evil.example.com#")]
    [InlineData("Proxy", "   ")]
    public void Values_that_would_break_the_signature_the_host_or_the_proxy_are_refused(string parameter, string value)
    {
        var c = new CloudConnector { Provider = ConnectorProvider.S3, Endpoint = "https://objects.example.com" };
        switch (parameter)
        {
            case "Region": c.Region = value; break;
            case "AccountId": c.AccountId = value; break;
            default: c.Proxy = value; break;
        }
        Assert.Equal(parameter, Assert.Throws<ConnectorDefinitionException>(() => Complete(c)).ParamName);
    }

    [Theory]
    [InlineData(" ")]
    [InlineData("tab\there")]
    [InlineData("long")]
    public void A_connector_name_is_printable_and_bounded(string name)
    {
        if (name == "long") name = new string('c', ConnectorRules.MaxNameLength + 1);
        Assert.Equal("NewName", Assert.Throws<ConnectorDefinitionException>(() => ConnectorRules.CheckName(name, "NewName")).ParamName);
    }

    [Theory]
    [InlineData("not a url")]
    [InlineData("ftp://files.example.com")]
    [InlineData("https://")]
    public void A_malformed_endpoint_is_rejected(string endpoint)
    {
        var e = Assert.Throws<ConnectorDefinitionException>(() => Complete(new CloudConnector { Provider = ConnectorProvider.S3, Endpoint = endpoint }));
        Assert.Equal("Endpoint", e.ParamName);
        Assert.Contains("http", e.Message);
    }
}

public sealed class SecretTests
{
    [Fact]
    public void Credentials_round_trip_and_the_key_file_is_readable_only_by_its_owner()
    {
        var home = Path.Combine(Path.GetTempPath(), "om-secret-" + Guid.NewGuid().ToString("n")[..8]);
        var protector = new SecretProtector(home);
        var sealedData = protector.Protect("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY");
        Assert.Equal(new ConnectorSecrets("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"), new SecretProtector(home).Unprotect(sealedData));
        Assert.DoesNotContain("wJalrXUtnFEMI", System.Text.Encoding.UTF8.GetString(sealedData));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(home, "secret.key")));
        }
        Directory.Delete(home, recursive: true);
    }
}

/// <summary>Test-CloudConnector's engine half against real listeners: each failure has its own class and names the endpoint.</summary>
public sealed class ConnectorProbeTests
{
    private static ConnectorAccess Access(string endpoint, string accessKey, string secret, string? proxy = null) =>
        MigrationEngine.Unsaved(new CloudConnector { Name = "probe", Endpoint = endpoint, Proxy = proxy }, accessKey, secret, pathStyleGiven: false);

    private static async Task<StorageException> ProbeFailsAsync(ConnectorAccess access, TimeSpan? timeout = null) =>
        await Assert.ThrowsAsync<StorageException>(() => MigrationEngine.TestConnectorAsync(access, [], true, timeout ?? TimeSpan.FromSeconds(10), CancellationToken.None));

    [Fact]
    public async Task Counts_and_sizes_match_what_was_seeded()
    {
        var rgw = TestEndpoints.Rgw;
        using var client = rgw.Client();
        var bucket = await client.NewBucketAsync();
        for (var i = 0; i < 25; i++) await client.PutAsync(bucket, $"c/{i}", TestEndpoints.Bytes(i * 10, i));

        var result = await MigrationEngine.TestConnectorAsync(Access(rgw.Endpoint, rgw.AccessKey, rgw.SecretKey), [bucket], true, TimeSpan.FromSeconds(30), CancellationToken.None);

        var info = Assert.Single(result);
        Assert.Equal(bucket, info.Name);
        Assert.Equal(25, info.ObjectCount);
        Assert.Equal(Enumerable.Range(0, 25).Sum(i => i * 10L), info.TotalBytes);
        Assert.NotNull(info.Location);
        var listed = await MigrationEngine.TestConnectorAsync(Access(rgw.Endpoint, rgw.AccessKey, rgw.SecretKey), [], false, TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Contains(listed, b => b.Name == bucket && b.ObjectCount is null && b.CreationDate is not null);
    }

    [Fact]
    public async Task A_wrong_secret_is_an_authentication_error()
    {
        var e = await ProbeFailsAsync(Access(TestEndpoints.Rgw.Endpoint, TestEndpoints.Rgw.AccessKey, "wrong-secret-value"));
        Assert.Equal(ErrorClass.Authentication, e.ErrorClass);
        Assert.Contains(TestEndpoints.Rgw.Endpoint, e.Message);
        Assert.DoesNotContain("wrong-secret-value", e.ToString());
    }

    [Fact]
    public async Task A_closed_port_is_a_connection_error()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var e = await ProbeFailsAsync(Access($"http://127.0.0.1:{port}", "a", "b"));
        Assert.Equal(ErrorClass.Connection, e.ErrorClass);
        Assert.Contains($"127.0.0.1:{port}", e.Message);
    }

    [Fact]
    public async Task A_server_that_never_answers_is_a_timeout()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var e = await ProbeFailsAsync(Access($"http://127.0.0.1:{port}", "a", "b"), TimeSpan.FromSeconds(1));
            Assert.True(e.ErrorClass == ErrorClass.Timeout, e.ToString());
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task A_server_answering_403_is_access_denied()
    {
        await using var proxy = await FaultProxy.StartAsync(TestEndpoints.S3rverSource.Endpoint);
        proxy.Inject(Fault.AccessDenied, int.MaxValue, _ => true);
        var e = await ProbeFailsAsync(Access(proxy.Endpoint, "S3RVER", "S3RVER"));
        Assert.Equal(ErrorClass.AccessDenied, e.ErrorClass);
        Assert.Contains(proxy.Endpoint.TrimEnd('/'), e.Message);
    }

    [Fact]
    public async Task A_connector_proxy_carries_its_traffic()
    {
        await using var proxy = await FaultProxy.StartAsync("http://unused.invalid");
        var s3rver = TestEndpoints.S3rverSource;
        var result = await MigrationEngine.TestConnectorAsync(Access(s3rver.Endpoint, s3rver.AccessKey, s3rver.SecretKey, proxy.Endpoint), [], false, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.NotNull(result);
        Assert.True(proxy.Requests > 0, "no request went through the proxy");
    }
}

/// <summary>The full-object checksums S3 stores, computed as S3 does: the standard check values and base64 big-endian form.</summary>
public sealed class ContentChecksumTests
{
    [Theory]
    [InlineData("CRC32", "CBF43926")]
    [InlineData("CRC32C", "E3069283")]
    [InlineData("CRC64NVME", "AE8B14860A799888")]
    [InlineData("SHA1", "F7C3BC1D808E04732ADF679965CCC34CA7AE3441")]
    public void Checksums_match_the_standard_check_values(string algorithm, string expectedHex)
    {
        using var checksum = ObjectMigration.Engine.Transfer.ContentChecksum.Create(algorithm)!;
        // Fed in two pieces: the value must not depend on how the stream was chunked.
        checksum.Append("1234"u8);
        checksum.Append("56789"u8);
        Assert.Equal(Convert.ToBase64String(Convert.FromHexString(expectedHex)), checksum.ToBase64());
    }

    [Fact]
    public void An_unknown_algorithm_gives_no_checksum() => Assert.Null(ObjectMigration.Engine.Transfer.ContentChecksum.Create("MD4"));
}

/// <summary>Set-CloudConnector -Region moves an endpoint the provider derived, and only such an endpoint.</summary>
public sealed class ConnectorRegionChangeTests
{
    private readonly MigrationEngine _engine = MigrationEngine.Open(Path.Combine(Path.GetTempPath(), "om-region-" + Guid.NewGuid().ToString("n")[..8]));

    [Fact]
    public void A_new_region_recomputes_a_derived_endpoint()
    {
        _engine.AddConnector(new CloudConnector { Name = "aws", Provider = ConnectorProvider.AWS, Region = "us-west-2" }, "AKIDEXAMPLE", "secret", pathStyleGiven: false);
        var moved = _engine.UpdateConnector("aws", c => c.Region = "eu-west-1", ((string, string)?)null);
        Assert.Equal(("eu-west-1", "https://s3.eu-west-1.amazonaws.com"), (moved.Region, moved.Endpoint));
        Assert.Equal("https://s3.eu-west-1.amazonaws.com", _engine.GetConnector("aws").Endpoint);
    }

    [Fact]
    public void A_new_region_keeps_an_endpoint_the_user_gave()
    {
        _engine.AddConnector(new CloudConnector { Name = "vpce", Provider = ConnectorProvider.AWS, Region = "us-east-1", Endpoint = "https://bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com" },
            "AKIDEXAMPLE", "secret", pathStyleGiven: false);
        var kept = _engine.UpdateConnector("vpce", c => c.Region = "us-east-2", ((string, string)?)null);
        Assert.Equal(("us-east-2", "https://bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com"), (kept.Region, kept.Endpoint));
    }

    [Fact]
    public void A_new_region_and_a_new_endpoint_together_keep_the_new_endpoint()
    {
        _engine.AddConnector(new CloudConnector { Name = "both", Provider = ConnectorProvider.Wasabi, Region = "us-east-1" }, "AKIDEXAMPLE", "secret", pathStyleGiven: false);
        var changed = _engine.UpdateConnector("both", c => { c.Region = "eu-central-1"; c.Endpoint = "https://s3.example.test"; }, ((string, string)?)null);
        Assert.Equal("https://s3.example.test", changed.Endpoint);
    }
}

/// <summary>A Failed job can be resumed, so it still holds its connectors; one whose connector was forced away fails at once.</summary>
public sealed class ConnectorOfFailedJobTests
{
    private readonly MigrationEngine _engine = MigrationEngine.Open(Path.Combine(Path.GetTempPath(), "om-removed-" + Guid.NewGuid().ToString("n")[..8]));

    [Fact]
    public async Task A_connector_of_a_Failed_job_is_kept_unless_forced_and_then_a_resume_fails_instead_of_waiting()
    {
        var server = TestEndpoints.S3rverSource;
        _engine.AddConnector(new CloudConnector { Name = "src", Endpoint = server.Endpoint }, server.AccessKey, server.SecretKey, pathStyleGiven: false);
        _engine.AddConnector(new CloudConnector { Name = "dst", Endpoint = TestEndpoints.S3rverTarget.Endpoint }, server.AccessKey, server.SecretKey, pathStyleGiven: false);
        var id = _engine.CreateJob(new MigrationJobRequest { SourceConnector = "src", SourceBucket = "no-such-bucket-" + Guid.NewGuid().ToString("n")[..8], TargetConnector = "dst", TargetBucket = "whatever" }).Id;
        Assert.Equal(JobState.Failed, await _engine.RunJobAsync(id, TestEndpoints.QuickRunner, CancellationToken.None));

        Assert.Throws<JobStateException>(() => _engine.RemoveConnector("src", force: false));
        // A job left Pending when its connector goes (no run took it yet) also fails at once when a runner starts it.
        var pending = _engine.CreateJob(new MigrationJobRequest { SourceConnector = "src", SourceBucket = "still-pending", TargetConnector = "dst", TargetBucket = "whatever" }).Id;
        _engine.RemoveConnector("src", force: true);

        // Resuming says why at once and changes nothing.
        var refused = Assert.Throws<JobStateException>(() => _engine.PrepareResume(id, retryFailed: false));
        Assert.Contains("source connector", refused.Message);
        Assert.Contains("was removed", refused.Message);
        Assert.Equal(JobState.Failed, _engine.GetJob(id).State);

        var e = await Assert.ThrowsAsync<JobStateException>(() => _engine.RunJobAsync(pending, TestEndpoints.QuickRunner, CancellationToken.None));
        Assert.Contains("source connector", e.Message);
        var job = _engine.GetJob(pending);
        Assert.Equal(JobState.Failed, job.State);
        Assert.Contains("was removed", job.Error);
    }
}
