using Npgsql;
using NpgsqlTypes;

namespace ObjectMigration.Engine.State.Postgres;

/// <summary>
/// The state store shared by workers on many hosts (issue 21): the same contracts and behaviour as
/// <see cref="SqliteStateStore"/>, in PostgreSQL through Npgsql. One pooled <see cref="NpgsqlDataSource"/> per store,
/// so the store is safe to share between threads. Every time it writes (created, heartbeat, finished) is the server's
/// <c>now()</c>, so hosts' clocks are never compared; key columns are <c>COLLATE "C"</c> (S3's byte order).
/// Writers that change more than one row of a job take the job's row first (<c>FOR NO KEY UPDATE</c>), so they queue
/// on it in one order and never deadlock; single statements rely on READ COMMITTED rechecking the row they lock.
/// Split by contract: Connectors, Jobs (states, runs, workers), Plan (listing, results, progress), Logs, Uploads.
/// </summary>
public sealed partial class PostgresStateStore : IStateStore, IDisposable
{
    private readonly NpgsqlDataSource _dataSource;

    /// <summary>"PostgreSQL 127.0.0.1:5432/objectmigration": for messages, never with the password.</summary>
    public string Location { get; }

    /// <summary>
    /// Opens the store <paramref name="connectionString"/> names (Npgsql's form: Host=...;Database=...) and brings its
    /// schema up to date. The search path's first schema holds the tables.
    /// </summary>
    public PostgresStateStore(string connectionString)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConnectionStringBuilder.ApplicationName ??= "ObjectMigration";
        Location = Describe(builder.ConnectionStringBuilder);
        _dataSource = builder.Build();
        try
        {
            using var connection = _dataSource.OpenConnection();
            PostgresSchema.Apply(connection, Location);
        }
        catch (NpgsqlException e)
        {
            _dataSource.Dispose();
            // Npgsql's messages name the host and the role, never the password (28P01 says "password authentication failed").
            throw new StateStoreUnavailableException(
                $"The PostgreSQL state store {Describe(builder.ConnectionStringBuilder, withPrefix: false)} cannot be used: {e.Message.TrimEnd().TrimEnd('.')}." +
                (e is PostgresException { SqlState: "28P01" or "28000" } ? " Check the user name and password given in -StateStore or OBJECTMIGRATION_STATE." :
                 e is PostgresException { SqlState: "3D000" } ? " Create the database first (CREATE DATABASE ... OWNER <role>), or name another in -StateStore." :
                 e is PostgresException { SqlState: "42501" } ? " The role needs the right to create tables in the first schema of its search path (GRANT CREATE ON SCHEMA ...)." :
                 e is PostgresException ? "" : " Check that the server runs and that Host and Port in -StateStore or OBJECTMIGRATION_STATE are right."),
                e);
        }
        catch
        {
            _dataSource.Dispose();
            throw;
        }
    }

    internal static string Describe(NpgsqlConnectionStringBuilder settings, bool withPrefix = true) =>
        (withPrefix ? "PostgreSQL " : "") + $"{settings.Host}:{settings.Port}/{settings.Database ?? settings.Username ?? "postgres"}";

    public override string ToString() => Location;

    public void Dispose() => _dataSource.Dispose();

    // ---- Helpers ----

    private static readonly string[] NoStrings = [];

    /// <summary>One parameter; a null value is sent as NULL of <paramref name="type"/> (or of whatever the statement makes it).</summary>
    private static NpgsqlParameter P(string name, object? value, NpgsqlDbType? type = null)
    {
        var parameter = new NpgsqlParameter(name, value ?? DBNull.Value);
        if (type is { } t) parameter.NpgsqlDbType = t;
        return parameter;
    }

    private static NpgsqlParameter Time(string name, DateTimeOffset? value) => P(name, value?.ToUniversalTime(), NpgsqlDbType.TimestampTz);

    private static NpgsqlParameter Text(string name, string? value) => P(name, value, NpgsqlDbType.Text);

    private static NpgsqlCommand Command(NpgsqlConnection connection, NpgsqlTransaction? tx, string sql, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection, tx);
        command.Parameters.AddRange(parameters);
        return command;
    }

    private NpgsqlConnection Open()
    {
        try
        {
            return _dataSource.OpenConnection();
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DiskFull)
        {
            throw DiskFull(e);
        }
    }

    /// <summary>Runs <paramref name="work"/> on a pooled connection; a full disk on the server becomes an IOException naming the store.</summary>
    private T Use<T>(Func<NpgsqlConnection, T> work)
    {
        using var connection = Open();
        try
        {
            return work(connection);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DiskFull)
        {
            throw DiskFull(e);
        }
    }

    /// <summary>Runs <paramref name="work"/> in one READ COMMITTED transaction and commits it.</summary>
    private T InTransaction<T>(Func<NpgsqlConnection, NpgsqlTransaction, T> work) => Use(connection =>
    {
        using var tx = connection.BeginTransaction();
        var result = work(connection, tx);
        tx.Commit();
        return result;
    });

    private void InTransaction(Action<NpgsqlConnection, NpgsqlTransaction> work) =>
        InTransaction<bool>((connection, tx) => { work(connection, tx); return true; });

    /// <summary>SQLSTATE 53100 as an IOException naming the server, as SQLite's full disk names its folder.</summary>
    private IOException DiskFull(PostgresException e) =>
        new($"The PostgreSQL state store {Location} has no room left on its disk: free space on the server (or give the database more), then resume.", e);

    private int Execute(string sql, params NpgsqlParameter[] parameters) => Use(connection =>
    {
        using var command = Command(connection, null, sql, parameters);
        return command.ExecuteNonQuery();
    });

    private List<T> Query<T>(string sql, Func<NpgsqlDataReader, T> read, params NpgsqlParameter[] parameters) => Use(connection =>
    {
        using var command = Command(connection, null, sql, parameters);
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read()) rows.Add(read(reader));
        return rows;
    });

    /// <summary>
    /// The job's seq, with its row locked for the transaction: every writer that changes several rows of a job takes
    /// this lock first, so they queue in one order (job row, then its other rows) and cannot deadlock.
    /// </summary>
    private static long LockJob(NpgsqlConnection connection, NpgsqlTransaction tx, Guid id)
    {
        using var command = Command(connection, tx, "SELECT seq FROM jobs WHERE id = @id FOR NO KEY UPDATE", P("id", id));
        return command.ExecuteScalar() is long seq ? seq : throw NoJob(id);
    }

    private static long JobSeq(NpgsqlConnection connection, Guid id) => JobSeq(connection, null, id);

    private static long JobSeq(NpgsqlConnection connection, NpgsqlTransaction? tx, Guid id)
    {
        using var command = Command(connection, tx, "SELECT seq FROM jobs WHERE id = @id", P("id", id));
        return command.ExecuteScalar() is long seq ? seq : throw NoJob(id);
    }

    private static KeyNotFoundException NoJob(Guid id) => new($"No migration job has the id {id}.");

    private static string? NullableString(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static DateTimeOffset ReadTime(NpgsqlDataReader r, int i) => r.GetFieldValue<DateTimeOffset>(i);

    private static DateTimeOffset? ReadTimeOrNull(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetFieldValue<DateTimeOffset>(i);
}

/// <summary>The state store cannot be opened or reached: the message says which and what to check (never with a password).</summary>
public sealed class StateStoreUnavailableException(string message, Exception? inner = null) : InvalidOperationException(message, inner);
