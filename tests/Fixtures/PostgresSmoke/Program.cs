using System.Diagnostics;
using System.Text.Json;
using Npgsql;

// Checks through Npgsql what the PostgreSQL store's tests will rely on, against the fixture the harness wrote
// (OBJECTMIGRATION_TEST_FIXTURES, key Postgres). Exit code: the number of failed checks (2 without a fixture).
var path = Environment.GetEnvironmentVariable("OBJECTMIGRATION_TEST_FIXTURES");
if (string.IsNullOrEmpty(path) || !File.Exists(path))
{
    Console.Error.WriteLine("OBJECTMIGRATION_TEST_FIXTURES names no fixture file: run tests/Fixtures/Test-PostgresFixture.ps1, which starts PostgreSQL and writes one.");
    return 2;
}
using var document = JsonDocument.Parse(File.ReadAllText(path));
if (!document.RootElement.TryGetProperty("Postgres", out var fixture))
{
    Console.Error.WriteLine($"The fixture file {path} has no 'Postgres' entry: start the fixture with Start-PostgresFixture (build.ps1 adds it to the Test task's file).");
    return 2;
}
var connectionString = fixture.GetProperty("ConnectionString").GetString()!;

var failed = 0;
var passed = 0;
void Check(string what, bool ok, object? seen = null)
{
    if (ok) passed++; else failed++;
    Console.WriteLine(ok ? $"ok    {what}" : $"FAIL  {what} (seen: {seen})");
}

var clock = Stopwatch.StartNew();
await using var dataSource = NpgsqlDataSource.Create(connectionString);
await using var a = await dataSource.OpenConnectionAsync();
Check($"Npgsql takes the fixture's connection string (first open with scram-sha-256: {clock.ElapsedMilliseconds} ms)", true);

async Task<T> Scalar<T>(NpgsqlConnection connection, string sql, params (string Name, object Value)[] parameters)
{
    await using var command = new NpgsqlCommand(sql, connection);
    foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
    return (T)(await command.ExecuteScalarAsync())!;
}

async Task<List<int>> Claim(NpgsqlConnection connection, NpgsqlTransaction? transaction, Guid job, string worker, int count)
{
    // The batch claim of docs/design/state-store-split.md: rows another transaction holds are skipped, not waited for;
    // lease times come from the server's clock.
    await using var command = new NpgsqlCommand(
        """
        UPDATE smoke_batches b SET lease_owner = @worker, lease_until = now() + interval '30 seconds'
        WHERE b.job_id = @job AND b.batch_no IN (
            SELECT batch_no FROM smoke_batches
            WHERE job_id = @job AND state = 0 AND (lease_until IS NULL OR lease_until < now())
            ORDER BY batch_no LIMIT @n FOR UPDATE SKIP LOCKED)
        RETURNING b.batch_no
        """, connection, transaction);
    command.Parameters.AddWithValue("job", job);
    command.Parameters.AddWithValue("worker", worker);
    command.Parameters.AddWithValue("n", count);
    var claimed = new List<int>();
    await using var reader = await command.ExecuteReaderAsync();
    while (await reader.ReadAsync()) claimed.Add(reader.GetInt32(0));
    claimed.Sort();
    return claimed;
}

var version = await Scalar<string>(a, "SHOW server_version_num");
Check("the server is PostgreSQL 15", version.StartsWith("15", StringComparison.Ordinal), version);
var who = await Scalar<string>(a, "SELECT current_user || '@' || current_database()");
Check("logged in as objectmigration to database objectmigration", who == "objectmigration@objectmigration", who);
var role = await Scalar<string>(a, "SELECT rolsuper::text || '/' || rolcreatedb::text FROM pg_roles WHERE rolname = current_user");
Check("the role is no superuser and may create databases", role == "false/true", role);
var listen = await Scalar<string>(a, "SHOW listen_addresses");
Check("the server listens on 127.0.0.1 only", listen == "127.0.0.1", listen);
var fsync = await Scalar<string>(a, "SHOW fsync");
Check("fsync is off", fsync == "off", fsync);
// S3 lists keys in UTF-8 byte order; ICU en-US (the database's default) puts '_x' before 'A', COLLATE "C" after.
var order = await Scalar<string>(a, """SELECT ('_x' < 'A')::text || '/' || ('_x' < 'A' COLLATE "C")::text""");
Check("the default collation sorts keys unlike S3, COLLATE \"C\" like S3", order == "true/false", order);

var job = Guid.NewGuid();
await using (var create = new NpgsqlCommand(
    """
    CREATE TABLE smoke_batches (
        job_id uuid NOT NULL, batch_no int NOT NULL, first_key text COLLATE "C" NOT NULL, state smallint NOT NULL DEFAULT 0,
        lease_owner text, lease_until timestamptz, PRIMARY KEY (job_id, batch_no));
    INSERT INTO smoke_batches (job_id, batch_no, first_key) SELECT @job, n, 'k' || n FROM generate_series(0, 9) n;
    """, a))
{
    create.Parameters.AddWithValue("job", job);
    await create.ExecuteNonQueryAsync();
}
try
{
    await using var b = await dataSource.OpenConnectionAsync();
    // A claim that waited for the other transaction's locks instead of skipping them would end here, not hang.
    await using (var timeout = new NpgsqlCommand("SET statement_timeout = '3s'", b)) await timeout.ExecuteNonQueryAsync();
    await using var ta = await a.BeginTransactionAsync();
    var first = await Claim(a, ta, job, "worker-a", 3);
    await using var tb = await b.BeginTransactionAsync();
    var second = await Claim(b, tb, job, "worker-b", 3);
    Check("two open transactions claim different batches (FOR UPDATE SKIP LOCKED)",
        first.SequenceEqual([0, 1, 2]) && second.SequenceEqual([3, 4, 5]), $"{string.Join(",", first)} / {string.Join(",", second)}");
    await ta.CommitAsync();
    await tb.CommitAsync();
    var third = await Claim(a, null, job, "worker-a", 3);
    Check("leased batches are not claimed again", third.SequenceEqual([6, 7, 8]), string.Join(",", third));
    // worker-b dies: its lease runs out (moved into the past here) and another worker takes its batches.
    await using (var expire = new NpgsqlCommand("UPDATE smoke_batches SET lease_until = now() - interval '1 second' WHERE lease_owner = 'worker-b'", a))
    {
        await expire.ExecuteNonQueryAsync();
    }
    var takenOver = await Claim(a, null, job, "worker-c", 4);
    Check("an expired lease is taken over", takenOver.SequenceEqual([3, 4, 5, 9]), string.Join(",", takenOver));
}
finally
{
    await using var drop = new NpgsqlCommand("DROP TABLE smoke_batches", a);
    await drop.ExecuteNonQueryAsync();
}

var wrong = new NpgsqlConnectionStringBuilder(connectionString) { Password = "not-the-password", Pooling = false };
try
{
    await using var refused = new NpgsqlConnection(wrong.ConnectionString);
    await refused.OpenAsync();
    Check("a wrong password is refused", false, "logged in");
}
catch (PostgresException e)
{
    Check("a wrong password is refused", e.SqlState == PostgresErrorCodes.InvalidPassword, e.SqlState);
}

Console.WriteLine($"{passed} passed, {failed} failed");
return failed;
