using System.Net;
using System.Net.Sockets;
using Npgsql;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.State.Postgres;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// What only the PostgreSQL store has: its schema steps run once among workers starting together, a newer schema is
/// refused, and the password in its connection string reaches no description, message or exception.
/// </summary>
public sealed class PostgresStateStoreTests : IDisposable
{
    private readonly List<string> _schemas = [];
    private readonly List<PostgresStateStore> _stores = [];

    private string NewSchema()
    {
        var schema = "t_" + Guid.NewGuid().ToString("n");
        var connectionString = PostgresTestServer.CreateSchema(schema);
        _schemas.Add(schema);
        return connectionString;
    }

    private PostgresStateStore Open(string connectionString)
    {
        var store = new PostgresStateStore(connectionString);
        lock (_stores) _stores.Add(store);
        return store;
    }

    public void Dispose()
    {
        foreach (var store in _stores) store.Dispose();
        foreach (var schema in _schemas) PostgresTestServer.DropSchema(schema);
    }

    private static NpgsqlConnectionStringBuilder Settings(string connectionString) => new(connectionString);

    private static object? Scalar(string connectionString, string sql)
    {
        using var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        using var command = new NpgsqlCommand(sql, connection);
        return command.ExecuteScalar();
    }

    [Fact]
    public async Task Workers_opening_a_new_database_together_migrate_it_once()
    {
        var connectionString = NewSchema();
        using var go = new ManualResetEventSlim();
        var opening = Enumerable.Range(0, 6).Select(_ => Task.Run(() => { go.Wait(); return Open(connectionString); })).ToList();
        go.Set();
        var stores = await Task.WhenAll(opening);

        Assert.Equal((long)PostgresSchema.LatestVersion, Scalar(connectionString, "SELECT count(*) FROM schema_version"));
        Assert.Equal(PostgresSchema.LatestVersion, Scalar(connectionString, "SELECT max(version) FROM schema_version"));
        Assert.All(stores, s => Assert.Empty(s.GetJobs()));
    }

    [Fact]
    public void A_database_at_a_newer_schema_is_refused_with_the_fix()
    {
        var connectionString = NewSchema();
        Open(connectionString).Dispose();
        Scalar(connectionString, $"INSERT INTO schema_version (version) VALUES ({PostgresSchema.LatestVersion + 5})");

        var e = Assert.Throws<InvalidOperationException>(() => Open(connectionString));

        Assert.Contains($"schema version {PostgresSchema.LatestVersion + 5}, newer than this module understands ({PostgresSchema.LatestVersion})", e.Message);
        Assert.Contains("Update the ObjectMigration module", e.Message);
        Assert.Contains(Describe(connectionString), e.Message);
    }

    private static string Describe(string connectionString)
    {
        var settings = Settings(connectionString);
        return $"PostgreSQL {settings.Host}:{settings.Port}/{settings.Database}";
    }

    [Fact]
    public void The_store_describes_itself_by_server_and_database_never_with_the_password()
    {
        var connectionString = NewSchema();
        var password = Settings(connectionString).Password!;
        var store = Open(connectionString);
        Assert.Equal(Describe(connectionString), store.Location);
        Assert.Equal(store.Location, store.ToString());
        Assert.DoesNotContain(password, store.Location);
    }

    [Fact]
    public void A_wrong_password_fails_with_a_clear_message_that_holds_neither_password()
    {
        var connectionString = NewSchema();
        var right = Settings(connectionString).Password!;
        var wrong = "Wrong-" + Guid.NewGuid().ToString("n");
        var settings = Settings(connectionString);
        settings.Password = wrong;

        var e = Assert.Throws<StateStoreUnavailableException>(() => new PostgresStateStore(settings.ConnectionString));

        Assert.Contains($"{settings.Host}:{settings.Port}/{settings.Database}", e.Message);
        Assert.Contains("password", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("-StateStore", e.Message);
        // The whole chain, as a log or an error record would show it.
        Assert.DoesNotContain(wrong, e.ToString());
        Assert.DoesNotContain(right, e.ToString());
    }

    [Fact]
    public void A_server_that_does_not_answer_is_named_with_what_to_check()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var settings = Settings(PostgresTestServer.ConnectionString);
        settings.Port = port;
        settings.Timeout = 5;

        var e = Assert.Throws<StateStoreUnavailableException>(() => new PostgresStateStore(settings.ConnectionString));

        Assert.Contains($"127.0.0.1:{port}/", e.Message);
        Assert.Contains("Check that the server runs", e.Message);
        Assert.DoesNotContain(settings.Password!, e.ToString());
    }

    [Fact]
    public void A_bad_connection_string_is_refused_without_repeating_the_password_around_the_mistake()
    {
        var settings = Settings(PostgresTestServer.ConnectionString);
        // An unquoted ';' cuts the password: "bravo-fragment-77=x" becomes a keyword.
        var spec = $"Host={settings.Host};Port={settings.Port};Username={settings.Username};Password=alpha-secret-11;bravo-fragment-77=x;Database={settings.Database}";

        var e = Assert.Throws<ArgumentException>(() => StateStores.Open(spec));

        Assert.Contains("-StateStore", e.Message);
        Assert.Contains(StateStores.Variable, e.Message);
        Assert.Contains("Password=\"...\"", e.Message);
        Assert.DoesNotContain("alpha-secret-11", e.ToString());
        Assert.DoesNotContain("bravo-fragment-77", e.ToString());
    }

    [Fact]
    public void A_connection_string_and_a_uri_both_open_the_postgres_store()
    {
        var connectionString = NewSchema();
        var settings = Settings(connectionString);

        var fromString = StateStores.Open(connectionString);
        _stores.Add((PostgresStateStore)fromString);
        var uri = $"postgresql://{Uri.EscapeDataString(settings.Username!)}:{Uri.EscapeDataString(settings.Password!)}@{settings.Host}:{settings.Port}/{settings.Database}" +
            $"?options={Uri.EscapeDataString("-c search_path=" + settings.SearchPath)}&application_name=conformance";
        var fromUri = StateStores.Open(uri);
        _stores.Add((PostgresStateStore)fromUri);

        Assert.Equal(Describe(connectionString), fromString.Location);
        Assert.Equal(fromString.Location, fromUri.Location);
        Assert.Equal(fromString.Location, StateStores.Describe(uri));
        // The same store: a connector added through one is found through the other.
        var added = fromString.AddConnector(new Model.CloudConnector { Name = "shared", Endpoint = "http://127.0.0.1:9000" }, [1, 2]);
        Assert.Equal(added.Id, fromUri.FindConnector("SHARED")!.Id);
    }
}
