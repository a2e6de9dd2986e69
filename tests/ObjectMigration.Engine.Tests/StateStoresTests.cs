using Microsoft.Data.Sqlite;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// StateStores.Open: which store one string (-StateStore, OBJECTMIGRATION_STATE) names, and how a bad one is refused.
/// These need no PostgreSQL server (the ones that open it are in <see cref="PostgresStateStoreTests"/>).
/// </summary>
public sealed class StateStoresTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "om-stores-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
    }

    [Theory]
    [InlineData(null)]
    [InlineData("  ")]
    public void Nothing_given_opens_SQLite_in_the_state_folder(string? spec)
    {
        var store = StateStores.Open(spec, _folder);
        Assert.Equal(Path.Combine(_folder, "state.db"), store.Location);
        Assert.True(File.Exists(store.Location));
        Assert.Equal("SQLite " + store.Location, StateStores.Describe(spec, _folder));
    }

    [Fact]
    public void A_path_opens_SQLite_there_and_a_folder_means_its_state_file()
    {
        Directory.CreateDirectory(_folder);
        var file = Path.Combine(_folder, "jobs=2026.db");
        // A file name holding '=' is given as a relative or full path: no keyword comes before a separator.
        Assert.Equal(file, StateStores.Open(file).Location);
        var sub = Path.Combine(_folder, "sub");
        Directory.CreateDirectory(sub);
        Assert.Equal(Path.Combine(sub, "state.db"), StateStores.Open(sub).Location);
        Assert.Equal(Path.Combine(_folder, "new", "state.db"), StateStores.Open(Path.Combine(_folder, "new") + Path.DirectorySeparatorChar).Location);
        // The same contracts behind it: what one handle writes, another reads.
        var connector = StateStores.Open(file).AddConnector(new Model.CloudConnector { Name = "c", Endpoint = "http://127.0.0.1:9000" }, [1]);
        Assert.Equal(connector.Id, StateStores.Open(file).FindConnector("C")!.Id);
    }

    [Theory]
    [InlineData("Host=db;Database=x", "PostgresConnectionString")]
    [InlineData(" Server = db ; Port=5433", "PostgresConnectionString")]
    [InlineData("postgres://u:p@db/x", "PostgresUri")]
    [InlineData("PostgreSQL://db:5433/x", "PostgresUri")]
    [InlineData("/var/lib/om/state.db", "Path")]
    [InlineData("./a=b.db", "Path")]
    [InlineData("../state.db", "Path")]
    [InlineData("Host 127.0.0.1 Password=x", "PostgresConnectionString")]
    public void A_spec_is_told_apart_by_its_form(string spec, string kind) => Assert.Equal(kind, StateStores.Classify(spec).ToString());

    [Theory]
    [InlineData("state.db", "neither a connection string")]
    [InlineData("garbage", "neither a connection string")]
    [InlineData("Host 127.0.0.1 Password=hunter2-secret", "keyword that PostgreSQL connection strings do not know")]
    [InlineData("/om-no-such-folder/sub/state.db", "which does not exist")]
    public void A_mistyped_spec_is_refused_rather_than_opening_an_empty_SQLite_file_named_after_it(string spec, string problem)
    {
        var before = Directory.GetFileSystemEntries(Environment.CurrentDirectory).Length;
        var e = Assert.ThrowsAny<ArgumentException>(() => StateStores.Open(spec, _folder));
        Assert.True(e.Message.Contains(problem, StringComparison.Ordinal), e.Message);
        Assert.Contains("-StateStore (or OBJECTMIGRATION_STATE)", e.Message);
        Assert.DoesNotContain("hunter2", e.ToString());
        Assert.Equal(before, Directory.GetFileSystemEntries(Environment.CurrentDirectory).Length);
        Assert.False(Directory.Exists("/om-no-such-folder"));
    }

    [Theory]
    [InlineData("mysql://u:hunter2-secret@db/x", "'mysql://'")]
    [InlineData("Host=;Database=x;Password=hunter2-secret", "names no server")]
    [InlineData("Database=x;Password=hunter2-secret", "names no server")]
    [InlineData("Host=db;Pasword=hunter2-secret", "keyword that PostgreSQL connection strings do not know (did you mean Password?)")]
    [InlineData("Hots=db;Password=hunter2-secret", "(did you mean Host?)")]
    [InlineData("Host=db;Password=hunter2;secret=1", "keyword that PostgreSQL connection strings do not know (a password holding ';' must be quoted")]
    [InlineData("Host=db;Port=eighty;Password=hunter2-secret", "the value 'eighty' of Port")]
    [InlineData("Host=db;Password='hunter2-secret", "cannot be read")]
    [InlineData("postgresql://u:hunter2-secret@db:port/x", "cannot be read")]
    [InlineData("postgresql://u:hunter2-secret@db/x?sslmode=sometimes", "the value 'sometimes' of the URI's parameter SSL Mode")]
    [InlineData("postgresql://u:hunter2-secret@db/x?bogus=1", "parameter 'bogus' is not one")]
    public void A_bad_spec_names_the_parameter_and_the_fix_and_never_the_password(string spec, string problem)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => StateStores.Open(spec, _folder));
        Assert.True(e.Message.Contains(problem, StringComparison.Ordinal), e.Message);
        Assert.Contains("-StateStore (or OBJECTMIGRATION_STATE)", e.Message);
        Assert.Contains("Host=", e.Message);
        Assert.DoesNotContain("hunter2", e.ToString());
    }

    [Fact]
    public void A_uri_becomes_the_same_settings_as_its_connection_string()
    {
        var settings = new Npgsql.NpgsqlConnectionStringBuilder(StateStores.ToNpgsqlConnectionString(
            "postgresql://worker%40corp:p%3Ba%3Dss@db.example.net:6432/object%20migration?sslmode=verify-full&application_name=om"));
        Assert.Equal(("db.example.net", 6432, "worker@corp", "p;a=ss", "object migration", Npgsql.SslMode.VerifyFull, "om"),
            (settings.Host, settings.Port, settings.Username, settings.Password, settings.Database, settings.SslMode, settings.ApplicationName));
        Assert.Equal("PostgreSQL db.example.net:6432/object migration", StateStores.Describe("postgresql://worker:secret@db.example.net:6432/object%20migration"));
    }
}
