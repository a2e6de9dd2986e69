using Npgsql;
using NpgsqlTypes;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State.Postgres;

public sealed partial class PostgresStateStore
{
    /// <summary>
    /// The job's seq, holding the job's log lock for the transaction (and, with <paramref name="lockRow"/>, its row
    /// first). Log ids come from one sequence: with writers of a job's log taking turns, its ids commit in increasing
    /// order, so a reader continuing after the last id it saw (<see cref="LogQuery.AfterSequence"/>) misses none.
    /// </summary>
    private static long LockJobForLog(NpgsqlConnection connection, NpgsqlTransaction tx, Guid id, bool lockRow)
    {
        using var batch = new NpgsqlBatch(connection, tx);
        if (lockRow) batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT seq FROM jobs WHERE id = @id FOR NO KEY UPDATE") { Parameters = { P("id", id) } });
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT seq, pg_advisory_xact_lock(seq) FROM jobs WHERE id = @id") { Parameters = { P("id", id) } });
        using var reader = batch.ExecuteReader();
        if (lockRow) reader.NextResult();
        return reader.Read() ? reader.GetInt64(0) : throw NoJob(id);
    }

    public void AddLogs(Guid id, IReadOnlyList<LogRecord> logs) => InTransaction((connection, tx) =>
    {
        var seq = LockJobForLog(connection, tx, id, lockRow: false);
        InsertLogs(connection, tx, seq, logs);
    });

    private static void InsertLogs(NpgsqlConnection connection, NpgsqlTransaction tx, long seq, IReadOnlyList<LogRecord> logs)
    {
        if (logs.Count == 0) return;
        using var insert = Command(connection, tx,
            @"INSERT INTO logs (job_seq, created_at, type, object_key, message)
              SELECT @seq, now(), l.type, l.key, l.message FROM unnest(@types, @keys, @messages) WITH ORDINALITY AS l(type, key, message, n) ORDER BY l.n",
            P("seq", seq),
            P("types", logs.Select(l => l.Type.ToString()).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
            P("keys", logs.Select(l => l.ObjectKey).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text),
            P("messages", logs.Select(l => l.Message).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
        insert.ExecuteNonQuery();
    }

    public IReadOnlyList<MigrationJobLogEntry> GetLogs(Guid id, LogQuery query)
    {
        var where = "j.id = @id AND l.id > @after";
        var parameters = new List<NpgsqlParameter> { P("id", id), P("after", query.AfterSequence) };
        if (query.Types.Length > 0)
        {
            where += " AND l.type = ANY(@types)";
            parameters.Add(P("types", query.Types.Select(t => t.ToString()).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
        }
        if (query.KeyPatterns.Length > 0)
        {
            // PowerShell wildcards as anchored regular expressions, matched byte for byte (case-sensitive, like S3 keys).
            where += " AND l.object_key ~ ANY(@patterns)";
            parameters.Add(P("patterns", query.KeyPatterns.Select(WildcardSql.ToPostgresRegex).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
        }
        parameters.Add(P("skip", query.Skip));
        parameters.Add(P("first", query.First == int.MaxValue ? null : query.First, NpgsqlDbType.Integer));
        return Query(
            $"SELECT l.created_at, j.id, l.type, l.object_key, l.message, l.id FROM logs l JOIN jobs j ON j.seq = l.job_seq WHERE {where} ORDER BY l.id LIMIT @first OFFSET @skip",
            r => new MigrationJobLogEntry
            {
                Sequence = r.GetInt64(5),
                CreatedAt = ReadTime(r, 0),
                JobId = r.GetGuid(1),
                Type = Enum.TryParse<LogType>(r.GetString(2), out var type) ? type : LogType.MigrationError,
                ObjectKey = NullableString(r, 3),
                Message = r.GetString(4),
            },
            parameters.ToArray());
    }
}
