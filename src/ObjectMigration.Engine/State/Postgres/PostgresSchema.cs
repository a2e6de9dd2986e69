using Npgsql;

namespace ObjectMigration.Engine.State.Postgres;

/// <summary>
/// Forward-only schema migrations of the PostgreSQL store, a list of its own (SQLite's steps are in
/// <see cref="SchemaMigrations"/>); the database records its version in <c>schema_version</c>, as SQLite does.
/// Every key column is <c>COLLATE "C"</c>: S3 lists keys in byte order, and a server's default collation (ICU, libc
/// en_US) would sort '_x' before 'A' and page past keys.
/// </summary>
internal static class PostgresSchema
{
    /// <summary>
    /// Taken (transaction-scoped) while migrating, so workers starting together against a new database migrate it once.
    /// A bigint far above any job's seq: job seqs are the keys of the log lock in the same key space.
    /// </summary>
    internal const long MigrationLock = 0x4F626A4D69677274; // "ObjMigrt"

    /// <summary>Each entry moves the schema from version i to i + 1. Append only; never edit a shipped step.</summary>
    private static readonly string[] Steps =
    [
        // 1: what SQLite has at its step 11, in PostgreSQL's types. Connector names are unique ignoring ASCII case,
        // as SQLite's NOCASE (lower() would fold every letter, citext needs an extension the role may not create).
        // Children of a job go with it (ON DELETE CASCADE); copies outlive jobs (they describe target objects).
        """
        CREATE TABLE connectors (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text NOT NULL,
            provider text NOT NULL, endpoint text NOT NULL, region text NOT NULL,
            account_id text, jurisdiction text, access_key_id text NOT NULL, proxy text,
            path_style boolean NOT NULL, chunk_encoding boolean NOT NULL,
            credential bytea NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
            hidden boolean NOT NULL DEFAULT false,
            credential_source text NOT NULL DEFAULT 'Stored', profile_name text, profile_location text);
        CREATE UNIQUE INDEX connectors_name ON connectors ((translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') COLLATE "C"));
        CREATE TABLE jobs (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id uuid NOT NULL UNIQUE, name text NOT NULL, type text NOT NULL, state text NOT NULL, phase text,
            control integer NOT NULL DEFAULT 0, runner text, heartbeat_at timestamptz,
            source_connector_id bigint NOT NULL, source_bucket text NOT NULL, source_prefix text COLLATE "C" NOT NULL, keys_json text NOT NULL,
            target_connector_id bigint NOT NULL, target_bucket text NOT NULL, target_prefix text COLLATE "C" NOT NULL,
            overwrite text NOT NULL, filter_json text NOT NULL, concurrency integer NOT NULL, max_bytes_per_second bigint NOT NULL,
            multipart_threshold bigint NOT NULL, part_size bigint NOT NULL,
            listing_token text, listing_done boolean NOT NULL DEFAULT false,
            target_listing_token text, target_listing_done boolean NOT NULL DEFAULT false,
            objects_found bigint NOT NULL DEFAULT 0, bytes_found bigint NOT NULL DEFAULT 0,
            transferred_objects bigint NOT NULL DEFAULT 0, transferred_bytes bigint NOT NULL DEFAULT 0,
            skipped_objects bigint NOT NULL DEFAULT 0, skipped_bytes bigint NOT NULL DEFAULT 0,
            failed_objects bigint NOT NULL DEFAULT 0, missing_objects bigint NOT NULL DEFAULT 0,
            mismatched_objects bigint NOT NULL DEFAULT 0, extra_objects bigint NOT NULL DEFAULT 0,
            bytes_per_second double precision NOT NULL DEFAULT 0, objects_per_second double precision NOT NULL DEFAULT 0,
            moving_bytes bigint NOT NULL DEFAULT 0, concurrency_level integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL, started_at timestamptz, finished_at timestamptz, error text,
            no_progress_timeout_seconds double precision NOT NULL DEFAULT 0, storage_class_map text,
            detached boolean NOT NULL DEFAULT false, verify_deep boolean NOT NULL DEFAULT false,
            verify_metadata boolean NOT NULL DEFAULT false, update_json text, fixed_concurrency boolean NOT NULL DEFAULT false,
            dispatched_through text COLLATE "C");
        CREATE INDEX jobs_state ON jobs (state);
        CREATE TABLE objects (
            job_seq bigint NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
            key text COLLATE "C" NOT NULL, size bigint NOT NULL, etag text, last_modified timestamptz NOT NULL,
            storage_class text, outcome smallint NOT NULL DEFAULT 0, message text, checksum text,
            verified_by text, log_type text, target_only boolean NOT NULL DEFAULT false,
            PRIMARY KEY (job_seq, key));
        CREATE INDEX objects_pending ON objects (job_seq, outcome, key);
        CREATE TABLE target_objects (
            job_seq bigint NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
            key text COLLATE "C" NOT NULL, size bigint NOT NULL, etag text, last_modified timestamptz NOT NULL,
            storage_class text, PRIMARY KEY (job_seq, key));
        CREATE TABLE uploads (
            job_seq bigint NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
            key text COLLATE "C" NOT NULL, upload_id text NOT NULL, requested_at timestamptz,
            PRIMARY KEY (job_seq, key));
        CREATE TABLE parts (
            job_seq bigint NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
            key text COLLATE "C" NOT NULL, part_number integer NOT NULL, etag text NOT NULL, size bigint NOT NULL,
            PRIMARY KEY (job_seq, key, part_number));
        CREATE TABLE logs (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            job_seq bigint NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE, created_at timestamptz NOT NULL,
            type text NOT NULL, object_key text COLLATE "C", message text NOT NULL);
        CREATE INDEX logs_job ON logs (job_seq, id);
        CREATE TABLE copies (
            target_connector_id bigint NOT NULL, target_bucket text NOT NULL, target_key text COLLATE "C" NOT NULL,
            source_etag text, target_etag text NOT NULL, copied_at timestamptz NOT NULL,
            PRIMARY KEY (target_connector_id, target_bucket, target_key));
        CREATE TABLE update_intents (
            job_seq bigint NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
            key text COLLATE "C" NOT NULL, tags text NOT NULL,
            PRIMARY KEY (job_seq, key));
        CREATE TABLE workers (
            id uuid PRIMARY KEY, host text NOT NULL, process_id integer NOT NULL, runner_prefix text NOT NULL,
            user_name text NOT NULL, started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL,
            max_jobs integer NOT NULL, concurrency integer, idle_exit_seconds double precision, log_path text,
            stop_requested boolean NOT NULL DEFAULT false);
        """,
        // 2: SQLite's step 12. A job's objects in batches leased to runners on any host, and the runners taking part.
        """
        CREATE TABLE batches (
            job_seq bigint NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
            batch_no integer NOT NULL, after_key text COLLATE "C" NOT NULL, last_key text COLLATE "C" NOT NULL,
            state smallint NOT NULL DEFAULT 0, lease_owner text, lease_until timestamptz, claims integer NOT NULL DEFAULT 0,
            PRIMARY KEY (job_seq, batch_no));
        CREATE INDEX batches_open ON batches (job_seq, batch_no) WHERE state = 0;
        CREATE TABLE job_runners (
            job_seq bigint NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
            runner text NOT NULL, host text NOT NULL, process_id integer NOT NULL, role text NOT NULL,
            transferred_objects bigint NOT NULL DEFAULT 0, transferred_bytes bigint NOT NULL DEFAULT 0,
            bytes_per_second double precision NOT NULL DEFAULT 0, objects_per_second double precision NOT NULL DEFAULT 0,
            moving_bytes bigint NOT NULL DEFAULT 0, concurrency_level integer NOT NULL DEFAULT 0, held_batches integer NOT NULL DEFAULT 0,
            joined_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL, left_at timestamptz,
            PRIMARY KEY (job_seq, runner));
        """,
        // 3: SQLite's step 13. The source listing in key ranges that runners on any host list at once; each range counts
        // what it found (progress adds them to the job's), so listers do not all write the job's row.
        """
        CREATE TABLE listing_ranges (
            job_seq bigint NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
            range_no integer NOT NULL, after_key text COLLATE "C" NOT NULL, last_key text COLLATE "C",
            listed_through text COLLATE "C", token text, done boolean NOT NULL DEFAULT false,
            lease_owner text, lease_until timestamptz, claims integer NOT NULL DEFAULT 0,
            found_objects bigint NOT NULL DEFAULT 0, found_bytes bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (job_seq, range_no));
        CREATE INDEX batches_last_key ON batches (job_seq, last_key);
        """,
    ];

    public static int LatestVersion => Steps.Length;

    /// <summary>Brings the schema the connection's search path names to the latest version, once, whoever else starts now.</summary>
    public static void Apply(NpgsqlConnection connection, string description) => Apply(connection, description, Steps);

    internal static void Apply(NpgsqlConnection connection, string description, IReadOnlyList<string> steps)
    {
        // A schema already current (every start but the first of a version) is read without the lock: many workers
        // starting at once on a loaded host would otherwise queue, each behind the one whose process is slowest.
        if (ReadVersion(connection) is { } found && found >= steps.Count)
        {
            if (found > steps.Count) throw Newer(description, found, steps.Count);
            return;
        }
        using var tx = connection.BeginTransaction();
        Execute(connection, tx, $"SELECT pg_advisory_xact_lock({MigrationLock})");
        Execute(connection, tx, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)");
        int current;
        using (var read = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM schema_version", connection, tx))
        {
            current = (int)read.ExecuteScalar()!;
        }
        if (current > steps.Count) throw Newer(description, current, steps.Count);
        for (var version = current; version < steps.Count; version++)
        {
            // DDL is transactional in PostgreSQL: a step and its version row commit together or not at all.
            Execute(connection, tx, steps[version]);
            Execute(connection, tx, $"INSERT INTO schema_version (version) VALUES ({version + 1})");
        }
        tx.Commit();
    }

    /// <summary>The schema's version, or null when it has no version table yet.</summary>
    private static int? ReadVersion(NpgsqlConnection connection)
    {
        using (var exists = new NpgsqlCommand("SELECT to_regclass('schema_version') IS NOT NULL", connection))
        {
            if (!(bool)exists.ExecuteScalar()!) return null;
        }
        using var read = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM schema_version", connection);
        return (int)read.ExecuteScalar()!;
    }

    private static InvalidOperationException Newer(string description, int found, int understood) => new(
        $"The state database ({description}) is at schema version {found}, newer than this module understands ({understood}). Update the ObjectMigration module.");

    private static void Execute(NpgsqlConnection connection, NpgsqlTransaction tx, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection, tx);
        command.ExecuteNonQuery();
    }
}
