using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Amazon.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Tests that set process environment variables (AWS_*) run alone: nothing else reads them meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection
{
    public const string Name = "Process environment";
}

/// <summary>Temporary AWS files and a state folder, removed afterwards.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "om-creds-" + Guid.NewGuid().ToString("n")[..8]);

    public TempFolder() => Directory.CreateDirectory(Path);

    public string Write(string name, string text)
    {
        var file = System.IO.Path.Combine(Path, name);
        File.WriteAllText(file, text.ReplaceLineEndings("\n"));
        return file;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>A throwaway HTTP server on 127.0.0.1 that answers with a handler and remembers what it was sent.</summary>
internal sealed class LocalHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    public string Url { get; }
    public ConcurrentQueue<(string Method, string Path, IHeaderDictionary Headers, string Body)> Requests { get; } = new();

    private LocalHttpServer(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public static async Task<LocalHttpServer> StartAsync(Func<HttpContext, string, Task> handle)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        LocalHttpServer? server = null;
        app.Run(async context =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            server!.Requests.Enqueue((context.Request.Method, context.Request.Path.Value ?? "", new HeaderDictionary(context.Request.Headers.ToDictionary()), body));
            await handle(context, body);
        });
        await app.StartAsync();
        server = new LocalHttpServer(app, app.Urls.First());
        return server;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>Sets AWS_* variables for one test and puts the old values back.</summary>
internal sealed class EnvironmentScope : IDisposable
{
    private readonly Dictionary<string, string?> _saved = new();

    public EnvironmentScope Set(string name, string? value)
    {
        if (!_saved.ContainsKey(name)) _saved[name] = Environment.GetEnvironmentVariable(name);
        Environment.SetEnvironmentVariable(name, value);
        return this;
    }

    public void Dispose()
    {
        foreach (var (name, value) in _saved) Environment.SetEnvironmentVariable(name, value);
    }
}

/// <summary>Credential sources other than stored keys: AWSSDK.Core's profile chain, environment, container and role credentials.</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class CredentialSourceTests
{
    private static CloudConnector Probe() => new() { Name = "probe", Endpoint = "http://127.0.0.1:9" };

    private static ICredentialProvider ProviderFor(ConnectorCredential credential) =>
        MigrationEngine.Unsaved(Probe(), credential, pathStyleGiven: false).Credentials;

    private static string Iso(DateTime utc) => utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Secrets are compared without printing them, even in a failure message.</summary>
    private static void AssertSecret(string expected, string? actual, string what) =>
        Assert.True(string.Equals(expected, actual, StringComparison.Ordinal), $"{what} is not the expected one (values not shown)");

    /// <summary>A scope that hides the machine's own AWS settings from the SDK for one test.</summary>
    private static EnvironmentScope CleanAwsEnvironment() => new EnvironmentScope()
        .Set("AWS_PROFILE", null).Set("AWS_SHARED_CREDENTIALS_FILE", null).Set("AWS_CONFIG_FILE", null)
        .Set("AWS_ACCESS_KEY_ID", null).Set("AWS_SECRET_ACCESS_KEY", null).Set("AWS_SESSION_TOKEN", null)
        .Set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", null).Set("AWS_CONTAINER_CREDENTIALS_FULL_URI", null)
        .Set("AWS_CONTAINER_AUTHORIZATION_TOKEN", null).Set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", null)
        .Set("AWS_ENDPOINT_URL", null).Set("AWS_ENDPOINT_URL_STS", null);

    [Fact]
    public async Task A_profile_with_a_session_token_yields_its_keys_and_that_token()
    {
        using var env = CleanAwsEnvironment();
        using var folder = new TempFolder();
        var file = folder.Write("credentials", """
            [default]
            aws_access_key_id = AKDEFAULT
            aws_secret_access_key = default-secret

            [temporary]
            aws_access_key_id = ASIATEMPORARY
            aws_secret_access_key = temporary-secret
            aws_session_token = temporary-session-token
            """);

        var keys = await ProviderFor(ConnectorCredential.Profile("temporary", file)).GetAsync(CancellationToken.None);

        Assert.Equal("ASIATEMPORARY", keys.AccessKeyId);
        AssertSecret("temporary-secret", keys.SecretAccessKey, "the secret key");
        AssertSecret("temporary-session-token", keys.SessionToken, "the session token");
        var plain = await ProviderFor(ConnectorCredential.Profile("default", file)).GetAsync(CancellationToken.None);
        Assert.Equal("AKDEFAULT", plain.AccessKeyId);
        Assert.Null(plain.SessionToken);
    }

    [Fact]
    public void A_missing_profile_or_file_fails_at_creation_naming_the_parameter()
    {
        using var env = CleanAwsEnvironment();
        using var folder = new TempFolder();
        var file = folder.Write("credentials", "[present]\naws_access_key_id = AK\naws_secret_access_key = s\n\n[empty]\nregion = eu-west-1\n");

        var missing = Assert.Throws<ConnectorDefinitionException>(() => ProviderFor(ConnectorCredential.Profile("absent", file)));
        Assert.Equal("ProfileName", missing.ParamName);
        Assert.Contains("'absent'", missing.Message);
        Assert.Equal("ProfileName", Assert.Throws<ConnectorDefinitionException>(() => ProviderFor(ConnectorCredential.Profile("empty", file))).ParamName);
        var noFile = Assert.Throws<ConnectorDefinitionException>(() => ProviderFor(ConnectorCredential.Profile("present", Path.Combine(folder.Path, "nope"))));
        Assert.Equal("ProfileLocation", noFile.ParamName);
    }

    [Fact]
    public async Task A_credential_process_profile_yields_the_keys_the_process_prints()
    {
        if (OperatingSystem.IsWindows()) return; // the script is POSIX sh
        using var env = CleanAwsEnvironment();
        using var folder = new TempFolder();
        var expires = Iso(DateTime.UtcNow.AddHours(1));
        var script = folder.Write("issue-keys.sh", $$"""
            #!/bin/sh
            echo "ran" >> "{{folder.Path}}/runs"
            cat <<'JSON'
            {"Version": 1, "AccessKeyId": "ASIAPROCESS", "SecretAccessKey": "process-secret", "SessionToken": "process-token", "Expiration": "{{expires}}"}
            JSON
            """);
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var file = folder.Write("credentials", $"[issued]\ncredential_process = {script}\n");

        var provider = ProviderFor(ConnectorCredential.Profile("issued", file));
        Assert.False(File.Exists(Path.Combine(folder.Path, "runs")), "the process ran before a request needed keys");
        var keys = await provider.GetAsync(CancellationToken.None);
        var again = await provider.GetAsync(CancellationToken.None);

        Assert.Equal("ASIAPROCESS", keys.AccessKeyId);
        AssertSecret("process-secret", keys.SecretAccessKey, "the secret key");
        AssertSecret("process-token", keys.SessionToken, "the session token");
        Assert.Equal(keys, again);
        Assert.Single(File.ReadAllLines(Path.Combine(folder.Path, "runs")));
    }

    [Fact]
    public async Task Container_credentials_that_expire_soon_are_refreshed_before_a_later_request()
    {
        using var env = CleanAwsEnvironment();
        var served = 0;
        await using var server = await LocalHttpServer.StartAsync(async (context, _) =>
        {
            var n = Interlocked.Increment(ref served);
            // Each set expires a minute and a few seconds from now: inside the SDK's refresh window almost at once.
            var body = $$"""{"AccessKeyId": "ASIACONTAINER{{n}}", "SecretAccessKey": "container-secret-{{n}}", "Token": "container-token-{{n}}", "Expiration": "{{Iso(DateTime.UtcNow.AddSeconds(63))}}"}""";
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(body);
        });
        env.Set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.Url + "/v2/credentials/role");
        env.Set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth");

        var provider = ProviderFor(ConnectorCredential.InstanceRole);
        Assert.Equal(0, served);
        var first = await provider.GetAsync(CancellationToken.None);
        Assert.Equal("ASIACONTAINER1", first.AccessKeyId);
        AssertSecret("container-token-1", first.SessionToken, "the session token");
        Assert.Equal("container-auth", server.Requests.First().Headers.Authorization.ToString());
        // Right away the keys are still good: the same ones sign.
        Assert.Equal("ASIACONTAINER1", (await provider.GetAsync(CancellationToken.None)).AccessKeyId);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        var later = first;
        while (later.AccessKeyId == first.AccessKeyId && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250);
            later = await provider.GetAsync(CancellationToken.None);
        }

        Assert.NotEqual(first.AccessKeyId, later.AccessKeyId);
        var n = later.AccessKeyId["ASIACONTAINER".Length..];
        AssertSecret($"container-secret-{n}", later.SecretAccessKey, "the refreshed secret key");
        AssertSecret($"container-token-{n}", later.SessionToken, "the refreshed session token");
    }

    [Fact]
    public async Task An_assume_role_profile_loads_the_STS_client_and_signs_with_the_role_keys()
    {
        using var env = CleanAwsEnvironment();
        await using var sts = await LocalHttpServer.StartAsync(async (context, body) =>
        {
            var expires = Iso(DateTime.UtcNow.AddHours(1));
            context.Response.ContentType = "text/xml";
            await context.Response.WriteAsync($"""
                <AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
                  <AssumeRoleResult>
                    <Credentials><AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>role-secret</SecretAccessKey><SessionToken>role-token</SessionToken><Expiration>{expires}</Expiration></Credentials>
                    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/migrator/om</Arn><AssumedRoleId>AROAEXAMPLE:om</AssumedRoleId></AssumedRoleUser>
                  </AssumeRoleResult>
                  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
                </AssumeRoleResponse>
                """);
        });
        env.Set("AWS_ENDPOINT_URL_STS", sts.Url);
        using var folder = new TempFolder();
        var file = folder.Write("credentials", "[base]\naws_access_key_id = AKBASE\naws_secret_access_key = base-secret\n");
        folder.Write("config", "[profile migrator]\nrole_arn = arn:aws:iam::123456789012:role/migrator\nsource_profile = base\nregion = us-east-1\n");

        var provider = ProviderFor(ConnectorCredential.Profile("migrator", file));
        Assert.Equal("AssumeRoleAWSCredentials", ((SdkCredentialProvider)provider).Resolve().GetType().Name);
        var keys = await provider.GetAsync(CancellationToken.None);

        Assert.Equal("ASIAROLE", keys.AccessKeyId);
        AssertSecret("role-token", keys.SessionToken, "the role's session token");
        var call = Assert.Single(sts.Requests);
        Assert.Contains("Action=AssumeRole", call.Body);
        Assert.Contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fmigrator", call.Body);
        Assert.Contains("Credential=AKBASE/", call.Headers.Authorization.ToString());
    }

    [Fact]
    public async Task An_SSO_profile_resolves_to_SSO_credentials_and_without_a_login_fails_as_authentication()
    {
        using var env = CleanAwsEnvironment();
        using var folder = new TempFolder();
        var file = folder.Write("credentials", "");
        folder.Write("config", """
            [profile admin]
            sso_session = corp
            sso_account_id = 123456789012
            sso_role_name = Migrator
            region = us-east-1

            [sso-session corp]
            sso_start_url = https://corp-om-test.awsapps.com/start
            sso_region = us-east-1
            sso_registration_scopes = sso:account:access
            """);

        var provider = (SdkCredentialProvider)ProviderFor(ConnectorCredential.Profile("admin", file));
        Assert.Equal("SSOAWSCredentials", provider.Resolve().GetType().Name);
        var failure = await Assert.ThrowsAsync<StorageException>(async () => await provider.GetAsync(CancellationToken.None));

        Assert.Equal(ErrorClass.Authentication, failure.ErrorClass);
        Assert.Contains("AWS profile 'admin'", failure.Message);
        Assert.DoesNotContain("could not be found or loaded", failure.Message);
    }

    [Fact]
    public async Task Environment_credentials_are_read_when_signing_with_the_session_token()
    {
        using var env = CleanAwsEnvironment();
        var provider = ProviderFor(ConnectorCredential.Environment);

        var none = await Assert.ThrowsAsync<StorageException>(async () => await provider.GetAsync(CancellationToken.None));
        Assert.Equal(ErrorClass.Authentication, none.ErrorClass);
        Assert.Contains("AWS_ACCESS_KEY_ID", none.Message);

        env.Set("AWS_ACCESS_KEY_ID", "ASIAENVIRONMENT").Set("AWS_SECRET_ACCESS_KEY", "environment-secret").Set("AWS_SESSION_TOKEN", "environment-token-1");
        var keys = await provider.GetAsync(CancellationToken.None);
        Assert.Equal("ASIAENVIRONMENT", keys.AccessKeyId);
        AssertSecret("environment-secret", keys.SecretAccessKey, "the secret key");
        AssertSecret("environment-token-1", keys.SessionToken, "the session token");

        env.Set("AWS_SESSION_TOKEN", "environment-token-2");
        AssertSecret("environment-token-2", (await provider.GetAsync(CancellationToken.None)).SessionToken, "the changed session token");

        env.Set("AWS_SECRET_ACCESS_KEY", null);
        var gone = await Assert.ThrowsAsync<StorageException>(async () => await provider.GetAsync(CancellationToken.None));
        Assert.DoesNotContain("environment-token-2", gone.ToString());
    }

    [Fact]
    public async Task A_cancelled_request_stops_waiting_for_keys()
    {
        using var env = CleanAwsEnvironment();
        var release = new TaskCompletionSource();
        await using var server = await LocalHttpServer.StartAsync(async (context, _) =>
        {
            await release.Task;
            await context.Response.WriteAsync("{}");
        });
        env.Set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.Url + "/slow");
        var provider = ProviderFor(ConnectorCredential.InstanceRole);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var started = DateTime.UtcNow;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await provider.GetAsync(cancel.Token));

        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5), "cancellation waited for the credentials endpoint");
        release.SetResult();
    }

    [Fact]
    public async Task The_session_token_reaches_the_wire_and_is_signed()
    {
        using var env = CleanAwsEnvironment();
        await using var s3 = await LocalHttpServer.StartAsync(async (context, _) =>
        {
            context.Response.StatusCode = 404;
            context.Response.ContentType = "application/xml";
            await context.Response.WriteAsync("<Error><Code>NoSuchBucket</Code><Message>none</Message></Error>");
        });
        env.Set("AWS_ACCESS_KEY_ID", "ASIAWIRE").Set("AWS_SECRET_ACCESS_KEY", "wire-secret").Set("AWS_SESSION_TOKEN", "wire-session-token");
        var access = MigrationEngine.Unsaved(new CloudConnector { Name = "wire", Endpoint = s3.Url }, ConnectorCredential.Environment, pathStyleGiven: false);
        using var store = MigrationEngine.OpenObjectStore(access);

        await Assert.ThrowsAsync<StorageException>(() => store.ListAsync("bucket", "", null, null, 10, CancellationToken.None));

        var request = Assert.Single(s3.Requests);
        Assert.True(request.Headers["x-amz-security-token"].ToString() == "wire-session-token", "the request does not carry the session token");
        var authorization = request.Headers.Authorization.ToString();
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=ASIAWIRE/", authorization);
        var signedHeaders = authorization.Split("SignedHeaders=")[1].Split(',')[0].Split(';');
        Assert.Contains("x-amz-security-token", signedHeaders);
        Assert.DoesNotContain("wire-secret", authorization);
    }
}

/// <summary>Connectors keep which source to use, never a copy of its keys.</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class StoredCredentialSourceTests
{
    [Fact]
    public async Task A_profile_connector_stores_no_keys_and_reads_the_file_again_for_each_run()
    {
        using var folder = new TempFolder();
        var file = folder.Write("credentials", "[migration]\naws_access_key_id = AKFIRST\naws_secret_access_key = first-secret\n");
        var engine = MigrationEngine.Open(Path.Combine(folder.Path, "state"));

        var saved = engine.AddConnector(new CloudConnector { Name = "from-profile", Endpoint = "http://127.0.0.1:9" }, ConnectorCredential.Profile("migration", file), pathStyleGiven: false);

        Assert.Empty(engine.Store.GetConnectorCredential(saved.Id));
        var found = engine.GetConnector("from-profile");
        Assert.Equal(CredentialSource.Profile, found.CredentialSource);
        Assert.Equal(("migration", file), (found.ProfileName, found.ProfileLocation));
        Assert.Equal("", engine.WithAccessKey(found).AccessKeyId);
        Assert.Equal("AKFIRST", (await engine.GetAccess(found).Credentials.GetAsync(CancellationToken.None)).AccessKeyId);
        var database = Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(folder.Path, "state", "state.db")));
        Assert.DoesNotContain("first-secret", database);
        Assert.DoesNotContain("AKFIRST", database);

        File.WriteAllText(file, "[migration]\naws_access_key_id = AKSECOND\naws_secret_access_key = second-secret\n");
        var access = engine.GetAccess(engine.GetConnector("from-profile"));
        Assert.Equal("AKSECOND", (await access.Credentials.GetAsync(CancellationToken.None)).AccessKeyId);
        Assert.Null(access.StoredSecret);
    }

    [Fact]
    public async Task A_run_already_going_follows_keys_rewritten_in_the_profile()
    {
        using var folder = new TempFolder();
        var file = folder.Write("credentials", "[rotating]\naws_access_key_id = ASIAONE\naws_secret_access_key = one\naws_session_token = token-one\n");
        var reread = CredentialSources.ProfileReread;
        CredentialSources.ProfileReread = TimeSpan.Zero;
        try
        {
            var running = MigrationEngine.Unsaved(new CloudConnector { Name = "r", Endpoint = "http://127.0.0.1:9" }, ConnectorCredential.Profile("rotating", file), false).Credentials;
            Assert.Equal("ASIAONE", (await running.GetAsync(CancellationToken.None)).AccessKeyId);
            // A SAML or SSO helper rewrites the temporary keys in the file while a job runs.
            File.WriteAllText(file, "[rotating]\naws_access_key_id = ASIATWO\naws_secret_access_key = two\naws_session_token = token-two\n");
            var keys = await running.GetAsync(CancellationToken.None);
            Assert.Equal("ASIATWO", keys.AccessKeyId);
            AssertSecret("token-two", keys.SessionToken);
        }
        finally
        {
            CredentialSources.ProfileReread = reread;
        }
    }

    [Fact]
    public void Switching_sources_with_Set_erases_the_stored_secret_and_back()
    {
        using var folder = new TempFolder();
        var engine = MigrationEngine.Open(Path.Combine(folder.Path, "state"));
        var saved = engine.AddConnector(new CloudConnector { Name = "switch", Endpoint = "http://127.0.0.1:9" }, "AKSTORED", "stored-secret", pathStyleGiven: false);
        Assert.NotEmpty(engine.Store.GetConnectorCredential(saved.Id));

        engine.UpdateConnector("switch", _ => { }, ConnectorCredential.Environment);
        Assert.Empty(engine.Store.GetConnectorCredential(saved.Id));
        Assert.Equal(CredentialSource.Environment, engine.GetConnector("switch").CredentialSource);
        Assert.Null(engine.GetAccess(engine.GetConnector("switch")).StoredSecret);

        engine.UpdateConnector("switch", c => c.Region = "eu-west-1", (ConnectorCredential?)null);
        Assert.Equal(CredentialSource.Environment, engine.GetConnector("switch").CredentialSource);

        engine.UpdateConnector("switch", _ => { }, ConnectorCredential.Stored("AKAGAIN", "again-secret"));
        var back = engine.GetAccess(engine.GetConnector("switch"));
        Assert.Equal((CredentialSource.Stored, "AKAGAIN"), (back.Connector.CredentialSource, back.Connector.AccessKeyId));
        AssertSecret("again-secret", back.StoredSecret);
    }

    [Fact]
    public void Connectors_from_before_the_migration_keep_their_stored_keys()
    {
        using var folder = new TempFolder();
        var path = Path.Combine(folder.Path, "state.db");
        var protector = new SecretProtector(folder.Path);
        var store = new SqliteStateStore(path);
        // Back to schema 2 (before credential sources), with a connector written as that version wrote it.
        using (var connection = store.Open())
        using (var downgrade = connection.CreateCommand())
        {
            downgrade.CommandText = """
                ALTER TABLE connectors DROP COLUMN credential_source; ALTER TABLE connectors DROP COLUMN profile_name;
                ALTER TABLE connectors DROP COLUMN profile_location;
                ALTER TABLE objects DROP COLUMN verified_by; ALTER TABLE jobs DROP COLUMN no_progress_timeout_seconds;
                ALTER TABLE jobs DROP COLUMN storage_class_map; ALTER TABLE jobs DROP COLUMN moving_bytes;
                ALTER TABLE jobs DROP COLUMN detached; DROP TABLE workers; ALTER TABLE objects DROP COLUMN log_type;
                ALTER TABLE jobs DROP COLUMN verify_deep; ALTER TABLE jobs DROP COLUMN verify_metadata; ALTER TABLE jobs DROP COLUMN missing_objects;
                ALTER TABLE jobs DROP COLUMN mismatched_objects; ALTER TABLE jobs DROP COLUMN extra_objects;
                ALTER TABLE objects DROP COLUMN target_only; DROP TABLE copies; ALTER TABLE jobs DROP COLUMN update_json; DROP TABLE update_intents; ALTER TABLE uploads DROP COLUMN requested_at; ALTER TABLE jobs DROP COLUMN fixed_concurrency; ALTER TABLE jobs DROP COLUMN concurrency_level; ALTER TABLE jobs DROP COLUMN dispatched_through; DROP TABLE listing_ranges; DROP TABLE batches; DROP TABLE job_runners;
                DELETE FROM schema_version WHERE version > 2;
                INSERT INTO connectors (name, provider, endpoint, region, access_key_id, path_style, chunk_encoding, credential, created_at, updated_at)
                VALUES ('old', 'S3', 'http://127.0.0.1:9', 'us-east-1', '****DOLD', 1, 0, $cred, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
                """;
            downgrade.Parameters.AddWithValue("$cred", protector.Protect("AKOLDOLD", "old-secret"));
            downgrade.ExecuteNonQuery();
        }
        SqliteConnection.ClearAllPools();

        var migrated = new SqliteStateStore(path).FindConnector("old")!;

        Assert.Equal(CredentialSource.Stored, migrated.CredentialSource);
        Assert.Null(migrated.ProfileName);
        var (accessKeyId, secret, _, _) = protector.Unprotect(new SqliteStateStore(path).GetConnectorCredential(migrated.Id));
        Assert.Equal("AKOLDOLD", accessKeyId);
        AssertSecret("old-secret", secret);
    }

    private static void AssertSecret(string expected, string? actual) =>
        Assert.True(string.Equals(expected, actual, StringComparison.Ordinal), "the stored secret is not the expected one (values not shown)");
}
