using System.Text.Json;
using Npgsql;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.State.Postgres;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// The PostgreSQL server the harness started (build.ps1 -Task Test; tests/Fixtures/PostgresFixture.psm1), read from
/// the "Postgres" entry of the fixtures file. Without one the tests fail, naming what is missing and how to start it.
/// </summary>
public static class PostgresTestServer
{
    private static readonly Lazy<(string? ConnectionString, string Missing)> Entry = new(() =>
    {
        var path = Environment.GetEnvironmentVariable("OBJECTMIGRATION_TEST_FIXTURES");
        if (string.IsNullOrEmpty(path) || !File.Exists(path))
        {
            return (null, "OBJECTMIGRATION_TEST_FIXTURES names no fixtures file");
        }
        var root = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        return root.TryGetProperty("Postgres", out var postgres) && postgres.TryGetProperty("ConnectionString", out var connection)
            ? (connection.GetString(), "")
            : (null, $"the fixtures file {path} has no Postgres entry");
    });

    /// <summary>The store role's connection string (database objectmigration, no superuser).</summary>
    public static string ConnectionString
    {
        get
        {
            if (Entry.Value.ConnectionString is { } connectionString) return connectionString;
            var why = $"No PostgreSQL server for the state store tests: {Entry.Value.Missing}. 'dotnet pwsh ./build.ps1 -Task Test' starts one " +
                "(Start-PostgresFixture in tests/Fixtures/PostgresFixture.psm1, written under Postgres in the fixtures file).";
            // They fail, in CI and elsewhere, as the Ceph tests do without their gateway: xunit 2 has no skip decided at run
            // time (its "$XunitDynamicSkip$" token is honoured from xunit 3 on; measured: the v2 runner reports a failure).
            throw new InvalidOperationException(why);
        }
    }

    /// <summary>A new empty schema, and the connection string whose search path is that schema alone.</summary>
    public static string CreateSchema(string schema)
    {
        using (var connection = new NpgsqlConnection(ConnectionString))
        {
            connection.Open();
            using var create = new NpgsqlCommand($"CREATE SCHEMA {schema}", connection);
            create.ExecuteNonQuery();
        }
        return new NpgsqlConnectionStringBuilder(ConnectionString) { SearchPath = schema }.ConnectionString;
    }

    public static void DropSchema(string schema)
    {
        using var connection = new NpgsqlConnection(ConnectionString);
        connection.Open();
        using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", connection);
        drop.ExecuteNonQuery();
    }
}

/// <summary>
/// The conformance suite against the PostgreSQL store: each store a schema of its own (CREATE SCHEMA t_&lt;guid&gt;, a
/// few ms; a database each would cost ~0.3 s), dropped after the test.
/// </summary>
public sealed class PostgresStateStoreConformance : StateStoreConformance, IDisposable
{
    private readonly Dictionary<IStateStore, string> _connectionStrings = [];
    private readonly List<string> _schemas = [];

    protected override IStateStore CreateStore()
    {
        var schema = "t_" + Guid.NewGuid().ToString("n");
        var connectionString = PostgresTestServer.CreateSchema(schema);
        _schemas.Add(schema);
        return Open(connectionString);
    }

    protected override IStateStore OpenAgain(IStateStore store) => Open(_connectionStrings[store]);

    private PostgresStateStore Open(string connectionString)
    {
        var store = new PostgresStateStore(connectionString);
        _connectionStrings[store] = connectionString;
        return store;
    }

    private NpgsqlConnection Connect(IStateStore store)
    {
        var connection = new NpgsqlConnection(_connectionStrings[store]);
        connection.Open();
        return connection;
    }

    protected override void AgeHeartbeat(IStateStore store, Guid jobId, TimeSpan age)
    {
        // The server's clock, as the store's own writes use it.
        using var connection = Connect(store);
        using var command = new NpgsqlCommand("UPDATE jobs SET heartbeat_at = now() - make_interval(secs => @age) WHERE id = @id", connection);
        command.Parameters.AddWithValue("age", age.TotalSeconds);
        command.Parameters.AddWithValue("id", jobId);
        Assert.Equal(1, command.ExecuteNonQuery());
    }

    protected override long CountRowsOfJob(IStateStore store, long jobSeq)
    {
        using var connection = Connect(store);
        using var command = new NpgsqlCommand(string.Join(" + ", new[] { "objects", "target_objects", "uploads", "parts", "logs", "update_intents" }
            .Select(t => $"(SELECT count(*) FROM {t} WHERE job_seq = @seq)").Prepend("SELECT (SELECT count(*) FROM jobs WHERE seq = @seq)")), connection);
        command.Parameters.AddWithValue("seq", jobSeq);
        return (long)command.ExecuteScalar()!;
    }

    public void Dispose()
    {
        foreach (var store in _connectionStrings.Keys) ((PostgresStateStore)store).Dispose();
        foreach (var schema in _schemas) PostgresTestServer.DropSchema(schema);
    }
}
