using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The state folder is its user's alone: 0700, every file 0600, a key file that is not private refused, one key however many create it.</summary>
public sealed class StateFolderPrivacyTests : IDisposable
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateFolder = Private | UnixFileMode.UserExecute;
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-private-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { }
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void AssertMode(UnixFileMode expected, string path) =>
        Assert.True(File.GetUnixFileMode(path) == expected, $"{path} is {StateLocation.Octal(File.GetUnixFileMode(path))}, not {StateLocation.Octal(expected)}");

    [Fact]
    public void A_new_state_folder_is_0700_and_its_database_key_and_journals_0600()
    {
        if (OperatingSystem.IsWindows()) return;
        var engine = MigrationEngine.OpenWrapped(_home, s => s);
        engine.AddConnector(new CloudConnector { Name = "c", Endpoint = "http://127.0.0.1:9" }, "AKID", "a-secret", pathStyleGiven: false);

        AssertMode(PrivateFolder, _home);
        foreach (var file in new[] { "state.db", "state.db-wal", "state.db-shm", "state.db.reserve", "secret.key" })
        {
            Assert.True(File.Exists(Path.Combine(_home, file)), $"{file} was not created");
            AssertMode(Private, Path.Combine(_home, file));
        }
        // Nothing else is left in the folder: no temporary key file (the reserve is the room kept for a full disk).
        Assert.Equal(["secret.key", "state.db", "state.db-shm", "state.db-wal", "state.db.reserve"], Directory.GetFiles(_home).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void A_folder_and_files_left_readable_by_others_are_tightened_when_opened()
    {
        if (OperatingSystem.IsWindows()) return;
        MigrationEngine.OpenWrapped(_home, s => s).AddConnector(new CloudConnector { Name = "c", Endpoint = "http://127.0.0.1:9" }, "AKID", "a-secret", pathStyleGiven: false);
        const UnixFileMode open = Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(_home, PrivateFolder | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        foreach (var file in new[] { "state.db", "state.db-wal", "state.db-shm" }) File.SetUnixFileMode(Path.Combine(_home, file), open);

        var again = MigrationEngine.OpenWrapped(_home, s => s);

        AssertMode(PrivateFolder, _home);
        foreach (var file in new[] { "state.db", "state.db-wal", "state.db-shm" }) AssertMode(Private, Path.Combine(_home, file));
        Assert.Equal("AKID", again.WithAccessKey(again.GetConnector("c")).AccessKeyId);
    }

    [Fact]
    public void A_shared_folder_like_tmp_is_refused_as_the_state_folder()
    {
        if (OperatingSystem.IsWindows()) return;
        Directory.CreateDirectory(_home);
        File.SetUnixFileMode(_home, (UnixFileMode)0x3FF | UnixFileMode.StickyBit);
        var e = Assert.Throws<UnauthorizedAccessException>(() => MigrationEngine.OpenWrapped(_home, s => s));
        Assert.Contains(_home, e.Message);
        Assert.Contains(StateLocation.HomeVariable, e.Message);
    }

    [Fact]
    public void A_key_file_others_can_read_is_refused_naming_the_file_and_chmod_600()
    {
        if (OperatingSystem.IsWindows()) return;
        var sealedData = new SecretProtector(_home).Protect("AKID", "a-secret");
        var key = Path.Combine(_home, "secret.key");
        File.SetUnixFileMode(key, Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var e = Assert.Throws<StateNotPrivateException>(() => new SecretProtector(_home).Unprotect(sealedData));
        Assert.Contains($"'{key}'", e.Message);
        Assert.Contains($"chmod 600 '{key}'", e.Message);
        Assert.Contains("0644", e.Message);
        Assert.Throws<StateNotPrivateException>(() => new SecretProtector(_home).Protect("AKID", "other"));

        // As the message says: once private again, the secrets open.
        File.SetUnixFileMode(key, Private);
        Assert.Equal("a-secret", new SecretProtector(_home).Unprotect(sealedData).SecretAccessKey);
    }

    [Fact]
    public void A_key_file_owned_by_another_user_is_refused()
    {
        // chown to another user needs root, which the CI runs as.
        if (OperatingSystem.IsWindows() || StateLocation.CurrentUserId() != 0) return;
        var sealedData = new SecretProtector(_home).Protect("AKID", "a-secret");
        var key = Path.Combine(_home, "secret.key");
        Run("chown", "65534", key);

        var e = Assert.Throws<StateNotPrivateException>(() => new SecretProtector(_home).Unprotect(sealedData));
        Assert.Contains($"'{key}'", e.Message);
        Assert.Contains("65534", e.Message);
        Assert.Contains($"chown 0 '{key}'", e.Message);

        Run("chown", "0", key);
        Assert.Equal("a-secret", new SecretProtector(_home).Unprotect(sealedData).SecretAccessKey);
    }

    private static void Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    /// <summary>
    /// Sessions that create the key at the same moment (here threads, each with its own protector and file handles, as
    /// processes would be) all end up with the one key on disk: none reads a partial file, and each decrypts what
    /// the others sealed.
    /// </summary>
    [Fact]
    public void Racing_creators_of_the_key_file_agree_on_one_whole_key()
    {
        const int racers = 8, rounds = 40;
        for (var round = 0; round < rounds; round++)
        {
            var home = Path.Combine(_home, $"round-{round}");
            Directory.CreateDirectory(home);
            using var start = new Barrier(racers);
            var sealedByEach = new byte[racers][];
            var protectors = new SecretProtector[racers];
            var threads = Enumerable.Range(0, racers).Select(i => new Thread(() =>
            {
                protectors[i] = new SecretProtector(home);
                start.SignalAndWait();
                sealedByEach[i] = protectors[i].Protect($"AK{i}", $"secret-{i}");
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());

            Assert.Equal(32, new FileInfo(Path.Combine(home, "secret.key")).Length);
            Assert.Single(Directory.GetFiles(home));
            for (var reader = 0; reader < racers; reader++)
            {
                for (var writer = 0; writer < racers; writer++)
                {
                    Assert.Equal($"secret-{writer}", protectors[reader].Unprotect(sealedByEach[writer]).SecretAccessKey);
                }
            }
        }
    }

    [Fact]
    public void Credentials_sealed_by_the_earlier_format_still_open()
    {
        if (OperatingSystem.IsWindows()) return;
        var protector = new SecretProtector(_home);
        _ = protector.Protect("AKID", "warm-up");
        // Format 1: version byte, nonce, tag, then "access key id \n secret" under AES-GCM with the key file.
        var key = File.ReadAllBytes(Path.Combine(_home, "secret.key"));
        var plain = Encoding.UTF8.GetBytes("AKOLD\nold-secret");
        var sealedData = new byte[1 + 12 + 16 + plain.Length];
        sealedData[0] = 1;
        RandomNumberGenerator.Fill(sealedData.AsSpan(1, 12));
        using (var aes = new AesGcm(key, 16)) aes.Encrypt(sealedData.AsSpan(1, 12), plain, sealedData.AsSpan(29), sealedData.AsSpan(13, 16));

        Assert.Equal(new ConnectorSecrets("AKOLD", "old-secret"), protector.Unprotect(sealedData));
    }
}

/// <summary>A source given inline (-SourceEndpoint) is a hidden connector that belongs to its job: it goes with the job.</summary>
public sealed class HiddenConnectorTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-hidden-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Removing_a_job_removes_its_inline_source_connector_and_sealed_secret()
    {
        var engine = MigrationEngine.OpenWrapped(_home, s => s);
        engine.AddConnector(new CloudConnector { Name = "dst", Endpoint = "http://127.0.0.1:9" }, "AKDST", "dst-secret", pathStyleGiven: false);
        MigrationJob NewInlineJob(string name) => engine.CreateJob(
            new MigrationJobRequest { Name = name, SourceBucket = "src-bucket", TargetConnector = "dst", TargetBucket = "dst-bucket" },
            MigrationEngine.Unsaved(new CloudConnector { Name = "inline", Endpoint = "http://127.0.0.1:8" }, "AKINLINE", $"inline-secret-{name}", pathStyleGiven: true));
        var removed = NewInlineJob("one");
        var kept = NewInlineJob("two");
        Assert.NotNull(engine.Store.FindConnector(removed.SourceConnectorId));

        await engine.RequestStopAsync(removed.Id, CancellationToken.None);
        await engine.RemoveJobAsync(removed.Id, CancellationToken.None);

        Assert.Null(engine.Store.FindConnector(removed.SourceConnectorId));
        Assert.Throws<KeyNotFoundException>(() => engine.Store.GetConnectorCredential(removed.SourceConnectorId));
        // The other job's inline source and the saved target stay.
        Assert.Equal("inline-secret-two", engine.GetAccess(engine.Store.FindConnector(kept.SourceConnectorId)!).StoredSecret);
        Assert.NotNull(engine.Store.FindConnector("dst"));
    }
}

/// <summary>Passwords never ride in URLs; a proxy's credential is sealed like a key, answered to the proxy, and never shown.</summary>
public sealed class ProxyCredentialTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-proxy-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { }
    }

    [Theory]
    [InlineData("Endpoint", "https://AKID:pa55word@s3.example.com", "-Credential")]
    [InlineData("Endpoint", "https://user@s3.example.com/", "-Credential")]
    [InlineData("Endpoint", "AKID:pa55word@s3.example.com", "-Credential")]
    [InlineData("Proxy", "http://proxyuser:pa55word@proxy.example.com:3128", "-ProxyCredential")]
    public void A_user_name_or_password_in_a_url_is_refused_pointing_to_the_credential_parameter(string parameter, string url, string advice)
    {
        var connector = new CloudConnector { Name = "c", Endpoint = parameter == "Endpoint" ? url : "https://s3.example.com", Proxy = parameter == "Proxy" ? url : null };
        var e = Assert.Throws<ConnectorDefinitionException>(() => ConnectorRules.Complete(connector, pathStyleGiven: false));
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains(advice, e.Message);
        Assert.DoesNotContain("pa55word", e.Message);
    }

    [Fact]
    public void A_proxy_credential_is_sealed_shown_only_by_user_name_and_goes_with_its_proxy()
    {
        var engine = MigrationEngine.OpenWrapped(_home, s => s);
        var proxy = new NetworkCredential("proxyuser", "proxy-pa55-" + Guid.NewGuid().ToString("n"));
        var created = engine.AddConnector(new CloudConnector { Name = "p", Endpoint = "https://s3.example.com", Proxy = "http://127.0.0.1:3128" },
            ConnectorCredential.Stored("AKID", "key-secret"), pathStyleGiven: false, proxyCredential: proxy);
        Assert.Equal("proxyuser", created.ProxyUserName);
        Assert.Equal("proxyuser", engine.WithAccessKey(engine.GetConnector("p")).ProxyUserName);
        var access = engine.GetAccess(engine.GetConnector("p"));
        Assert.Equal((proxy.UserName, proxy.Password), (access.ProxyCredential!.UserName, access.ProxyCredential.Password));
        Assert.Equal("key-secret", access.StoredSecret);
        AssertNotInStateFiles(proxy.Password);

        // A change elsewhere keeps both secrets; a new key keeps the proxy's.
        engine.UpdateConnector("p", c => c.Region = "eu-west-1", null, null, removeProxyCredential: false);
        engine.UpdateConnector("p", _ => { }, ConnectorCredential.Stored("AKNEW", "new-secret"), null, removeProxyCredential: false);
        access = engine.GetAccess(engine.GetConnector("p"));
        Assert.Equal(("AKNEW", "new-secret", proxy.Password), (access.Connector.AccessKeyId, access.StoredSecret, access.ProxyCredential!.Password));

        // Keys from elsewhere: the proxy's credential is still sealed, alone.
        engine.UpdateConnector("p", _ => { }, ConnectorCredential.Environment, null, removeProxyCredential: false);
        Assert.Equal(proxy.Password, engine.GetAccess(engine.GetConnector("p")).ProxyCredential!.Password);

        // Removing the proxy removes its credential; one without a proxy is refused.
        engine.UpdateConnector("p", c => c.Proxy = null, null, null, removeProxyCredential: false);
        Assert.Null(engine.GetAccess(engine.GetConnector("p")).ProxyCredential);
        Assert.Empty(engine.Store.GetConnectorCredential(engine.GetConnector("p").Id));
        var e = Assert.Throws<ConnectorDefinitionException>(() => engine.UpdateConnector("p", _ => { }, null, proxy, removeProxyCredential: false));
        Assert.Equal("ProxyCredential", e.ParamName);
    }

    private void AssertNotInStateFiles(string secret)
    {
        foreach (var file in Directory.GetFiles(_home))
        {
            byte[] bytes;
            using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                bytes = new byte[stream.Length];
                stream.ReadExactly(bytes);
            }
            Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret)));
            Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.Unicode.GetBytes(secret)));
        }
    }

    [Fact]
    public async Task A_proxy_that_wants_credentials_carries_bucket_discovery_and_object_bytes_with_them_and_refuses_without()
    {
        var s3rver = TestEndpoints.S3rverSource;
        using var client = s3rver.Client();
        var bucket = await client.NewBucketAsync();
        var password = "proxy-pa55-" + Guid.NewGuid().ToString("n");
        await using var proxy = new AuthenticatingProxy("proxyuser", password);
        var engine = MigrationEngine.OpenWrapped(_home, s => s);
        engine.AddConnector(new CloudConnector { Name = "via-proxy", Endpoint = s3rver.Endpoint, Proxy = proxy.Endpoint },
            ConnectorCredential.Stored(s3rver.AccessKey, s3rver.SecretKey), pathStyleGiven: false, proxyCredential: new NetworkCredential("proxyuser", password));
        var access = engine.GetAccess(engine.GetConnector("via-proxy"));

        // The SDK's bucket listing answers the proxy's challenge; the data path sends the credential with each request.
        var buckets = await MigrationEngine.TestConnectorAsync(access, [], statistics: false, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Contains(buckets, b => b.Name == bucket);
        var content = TestEndpoints.Bytes(200_000, 3);
        using (var store = new S3ObjectStore(access))
        {
            var challengedBefore = proxy.Refused;
            using var body = new MemoryStream(content);
            await store.PutAsync(bucket, "through/proxy.bin", body, content.Length, new ObjectMetadata(), new PayloadChecks(Convert.ToBase64String(MD5.HashData(content))), CancellationToken.None);
            using var download = await store.GetAsync(bucket, "through/proxy.bin", null, null, null, CancellationToken.None);
            using var copy = new MemoryStream();
            await download.Body.CopyToAsync(copy);
            Assert.Equal(content, copy.ToArray());
            Assert.Equal(challengedBefore, proxy.Refused);
        }
        Assert.True(proxy.Forwarded >= 3, $"only {proxy.Forwarded} request(s) went through the proxy");
        Assert.False(proxy.LeakedUpstream, "the proxy credential reached the S3 server");

        // Without the credential the error says what to give.
        var without = MigrationEngine.Unsaved(new CloudConnector { Name = "no-proxy-credential", Endpoint = s3rver.Endpoint, Proxy = proxy.Endpoint }, s3rver.AccessKey, s3rver.SecretKey, pathStyleGiven: true);
        using var refused = new S3ObjectStore(without);
        var e = await Assert.ThrowsAsync<StorageException>(() => refused.ListAsync(bucket, "", null, null, 10, CancellationToken.None));
        Assert.Equal(ErrorClass.Authentication, e.ErrorClass);
        Assert.Contains("-ProxyCredential", e.Message);
    }
}

/// <summary>Error, listing and result bodies are read up to a bound: a server that sends more fails the request, clearly, and is not read on.</summary>
public sealed class ResponseBodyLimitTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const long Endless = 4L * 1024 * 1024 * 1024;

    /// <summary>Waits for the server to stop sending and says how much went out before the client closed the connection.</summary>
    private async Task<long> SentAsync(TaskCompletionSource<long> sent)
    {
        var bytes = await sent.Task.WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"The server sent {bytes:N0} bytes of a {Endless:N0}-byte body before the client closed the connection.");
        return bytes;
    }

    private static S3ObjectStore StoreFor(string endpoint) =>
        new(new ConnectorAccess(new CloudConnector { Name = "huge", Endpoint = endpoint, PathStyle = true, Region = "us-east-1", AccessKeyId = "AKID" }, "secret"));

    /// <summary>A server whose every answer is <paramref name="status"/> with a body that does not end; the bytes it got out.</summary>
    private static (RawHttpServer Server, TaskCompletionSource<long> Sent) EndlessServer(int status, string prefix)
    {
        var sent = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var server = new RawHttpServer(async (_, stream, ct) => sent.TrySetResult(await RawHttpServer.WriteEndlessBodyAsync(stream, status, prefix, Endless, ct)));
        return (server, sent);
    }

    [Fact]
    public async Task An_error_with_an_endless_body_fails_by_its_status_after_64_KiB()
    {
        var (server, sent) = EndlessServer(400, "<?xml version=\"1.0\"?><Error><Code>InvalidArgument</Code><Message>");
        await using var _ = server;
        using var store = StoreFor(server.Endpoint);

        var e = await Assert.ThrowsAsync<StorageException>(() => store.ListAsync("bucket", "", null, null, 10, CancellationToken.None));

        Assert.Equal(ErrorClass.InvalidRequest, e.ErrorClass);
        Assert.Contains("HTTP 400", e.Message);
        Assert.Contains("larger than 65536 characters", e.Message);
        Assert.True(await SentAsync(sent) < 32L * 1024 * 1024, "the client read on past the bound");
    }

    [Fact]
    public async Task A_listing_that_does_not_end_fails_after_its_bound()
    {
        var (server, sent) = EndlessServer(200, "<?xml version=\"1.0\"?><ListBucketResult><Name>bucket</Name>");
        await using var _ = server;
        using var store = StoreFor(server.Endpoint);

        var e = await Assert.ThrowsAsync<StorageException>(() => store.ListAsync("bucket", "", null, null, 10, CancellationToken.None));

        Assert.Contains("larger than", e.Message);
        Assert.True(await SentAsync(sent) < S3HttpDataPath.MaxDocumentChars * 4L + 32L * 1024 * 1024, "the client read on past the bound");
    }

    [Fact]
    public async Task A_complete_upload_answer_that_does_not_end_fails_after_its_bound()
    {
        var (server, sent) = EndlessServer(200, "<?xml version=\"1.0\"?><CompleteMultipartUploadResult><ETag>\"abc-2\"</ETag>");
        await using var _ = server;
        using var store = StoreFor(server.Endpoint);

        var e = await Assert.ThrowsAsync<StorageException>(() => store.CompleteMultipartAsync("bucket", "key", "upload", [(1, "\"a\""), (2, "\"b\"")], CancellationToken.None));

        Assert.Contains($"larger than {S3HttpDataPath.MaxDocumentChars} characters", e.Message);
        Assert.Contains("POST", e.Message);
        Assert.True(await SentAsync(sent) < S3HttpDataPath.MaxDocumentChars + 32L * 1024 * 1024, "the client read on past the bound");
    }
}

/// <summary>Plain http:// off this machine is said once: a warning when the connector is made so, a notice in the log of each job that uses it.</summary>
public sealed class PlainHttpWarningTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "om-plain-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { }
    }

    [Theory]
    [InlineData("http://s3.example.com", true)]
    [InlineData("http://10.1.2.3:9000", true)]
    [InlineData("http://[2001:db8::1]:9000", true)]
    [InlineData("https://s3.example.com", false)]
    [InlineData("http://127.0.0.1:9000", false)]
    [InlineData("http://127.8.9.10", false)]
    [InlineData("http://localhost:9000", false)]
    [InlineData("http://minio.localhost", false)]
    [InlineData("http://[::1]:9000", false)]
    public void Plain_http_is_warned_of_unless_loopback(string endpoint, bool warned)
    {
        var warnings = ConnectorRules.TransportWarnings(new CloudConnector { Name = "c", Endpoint = endpoint }, proxyCredential: false);
        Assert.Equal(warned ? 1 : 0, warnings.Count);
        if (warned) Assert.Contains("altered in transit", warnings[0]);
    }

    [Fact]
    public void A_job_that_uses_a_plain_http_connector_gets_one_notice_in_its_log()
    {
        var engine = MigrationEngine.OpenWrapped(_home, s => s);
        engine.AddConnector(new CloudConnector { Name = "local", Endpoint = "http://127.0.0.1:9" }, "AK1", "s1", pathStyleGiven: false);
        engine.AddConnector(new CloudConnector { Name = "remote", Endpoint = "http://s3.example.com:9000" }, "AK2", "s2", pathStyleGiven: false);

        var job = engine.CreateJob(new MigrationJobRequest { SourceConnector = "local", SourceBucket = "bucket-a", TargetConnector = "remote", TargetBucket = "bucket-b" });
        var quiet = engine.CreateJob(new MigrationJobRequest { SourceConnector = "local", SourceBucket = "bucket-a", TargetConnector = "local", TargetBucket = "bucket-c" });

        var notices = engine.Store.GetLogs(job.Id, new LogQuery()).Where(l => l.Type == LogType.MigrationNotice).ToList();
        Assert.Single(notices);
        Assert.Contains("'remote'", notices[0].Message);
        Assert.Contains("plain http://", notices[0].Message);
        Assert.Empty(engine.Store.GetLogs(quiet.Id, new LogQuery()));
    }
}
