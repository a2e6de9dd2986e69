using Npgsql;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State.Postgres;

public sealed partial class PostgresStateStore
{
    private const string ConnectorColumns =
        "id, name, provider, endpoint, region, account_id, jurisdiction, access_key_id, proxy, path_style, chunk_encoding, created_at, updated_at, credential_source, profile_name, profile_location";

    /// <summary>SQLite's NOCASE: ASCII letters folded, every other character as it is (the unique index is on the same expression).</summary>
    private const string FoldedName = "(translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') COLLATE \"C\")";
    private const string FoldedParameter = "(translate(@name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') COLLATE \"C\")";

    private static CloudConnector ReadConnector(NpgsqlDataReader r) => new()
    {
        Id = r.GetInt64(0),
        Name = r.GetString(1),
        Provider = Enum.Parse<ConnectorProvider>(r.GetString(2)),
        Endpoint = r.GetString(3),
        Region = r.GetString(4),
        AccountId = NullableString(r, 5),
        Jurisdiction = NullableString(r, 6),
        AccessKeyId = r.GetString(7),
        Proxy = NullableString(r, 8),
        PathStyle = r.GetBoolean(9),
        UseChunkEncoding = r.GetBoolean(10),
        CreatedAt = ReadTime(r, 11),
        UpdatedAt = ReadTime(r, 12),
        CredentialSource = Enum.Parse<CredentialSource>(r.GetString(13)),
        ProfileName = NullableString(r, 14),
        ProfileLocation = NullableString(r, 15),
    };

    private static bool IsDuplicateName(PostgresException e) => e is { SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: "connectors_name" };

    public CloudConnector AddConnector(CloudConnector connector, byte[] protectedCredential, bool hidden = false)
    {
        try
        {
            var (id, now) = Query(
                @"INSERT INTO connectors (name, provider, endpoint, region, account_id, jurisdiction, access_key_id, proxy, path_style, chunk_encoding, credential, created_at, updated_at, hidden,
                                          credential_source, profile_name, profile_location)
                  VALUES (@name, @provider, @endpoint, @region, @account, @jurisdiction, @akid, @proxy, @path, @chunk, @cred, now(), now(), @hidden, @source, @profile, @location)
                  RETURNING id, created_at",
                r => (r.GetInt64(0), ReadTime(r, 1)),
                P("name", connector.Name), P("provider", connector.Provider.ToString()), P("endpoint", connector.Endpoint),
                P("region", connector.Region), Text("account", connector.AccountId), Text("jurisdiction", connector.Jurisdiction),
                P("akid", SqliteStateStore.MaskedAccessKey(connector.AccessKeyId)), Text("proxy", connector.Proxy), P("path", connector.PathStyle),
                P("chunk", connector.UseChunkEncoding), P("cred", protectedCredential), P("hidden", hidden),
                P("source", connector.CredentialSource.ToString()), Text("profile", connector.ProfileName), Text("location", connector.ProfileLocation))[0];
            connector.Id = id;
            connector.CreatedAt = connector.UpdatedAt = now;
            return connector;
        }
        catch (PostgresException e) when (IsDuplicateName(e))
        {
            throw new DuplicateNameException($"A cloud connector named '{connector.Name}' already exists: choose another -Name, or change that one with Set-CloudConnector.");
        }
    }

    public IReadOnlyList<CloudConnector> GetConnectors() =>
        Query($"SELECT {ConnectorColumns} FROM connectors WHERE NOT hidden ORDER BY {FoldedName}, name COLLATE \"C\"", ReadConnector);

    public CloudConnector? FindConnector(string name) =>
        Query($"SELECT {ConnectorColumns} FROM connectors WHERE {FoldedName} = {FoldedParameter} AND NOT hidden", ReadConnector, Text("name", name)).FirstOrDefault();

    public CloudConnector? FindConnector(long id) =>
        Query($"SELECT {ConnectorColumns} FROM connectors WHERE id = @id", ReadConnector, P("id", id)).FirstOrDefault();

    public byte[] GetConnectorCredential(long id) =>
        Query("SELECT credential FROM connectors WHERE id = @id", r => r.GetFieldValue<byte[]>(0), P("id", id)).FirstOrDefault()
        ?? throw new KeyNotFoundException($"No cloud connector has the id {id}.");

    public void UpdateConnector(CloudConnector connector, byte[]? protectedCredential)
    {
        try
        {
            var updated = Query(
                @"UPDATE connectors SET name = @name, provider = @provider, endpoint = @endpoint, region = @region, account_id = @account,
                  jurisdiction = @jurisdiction, proxy = @proxy, path_style = @path, chunk_encoding = @chunk, updated_at = now(),
                  access_key_id = COALESCE(@akid, access_key_id), credential = COALESCE(@cred, credential),
                  credential_source = @source, profile_name = @profile, profile_location = @location WHERE id = @id
                  RETURNING updated_at",
                r => ReadTime(r, 0),
                P("id", connector.Id), P("name", connector.Name), P("provider", connector.Provider.ToString()), P("endpoint", connector.Endpoint),
                P("region", connector.Region), Text("account", connector.AccountId), Text("jurisdiction", connector.Jurisdiction),
                Text("proxy", connector.Proxy), P("path", connector.PathStyle), P("chunk", connector.UseChunkEncoding),
                Text("akid", protectedCredential is null ? null : SqliteStateStore.MaskedAccessKey(connector.AccessKeyId)),
                P("cred", protectedCredential, NpgsqlTypes.NpgsqlDbType.Bytea), P("source", connector.CredentialSource.ToString()),
                Text("profile", connector.ProfileName), Text("location", connector.ProfileLocation));
            connector.UpdatedAt = updated.Count > 0 ? updated[0] : DateTimeOffset.UtcNow;
        }
        catch (PostgresException e) when (IsDuplicateName(e))
        {
            throw new DuplicateNameException($"A cloud connector named '{connector.Name}' already exists: choose another -NewName (Get-CloudConnector lists the names in use).");
        }
    }

    public void RemoveConnector(long id) => Execute("DELETE FROM connectors WHERE id = @id", P("id", id));

    public IReadOnlyList<MigrationJob> GetJobsUsingConnector(long connectorId) =>
        Query($"{JobSelect} WHERE j.source_connector_id = @id OR j.target_connector_id = @id ORDER BY j.created_at DESC", ReadJob, P("id", connectorId));
}
