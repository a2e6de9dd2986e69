using Microsoft.Data.Sqlite;

namespace ObjectMigration.Engine.State;

/// <summary>Forward-only schema migrations; the database records the version it is at.</summary>
internal static class SchemaMigrations
{
    /// <summary>Each entry moves the schema from version i to i + 1. Append only; never edit a shipped step.</summary>
    private static readonly string[] Steps =
    [
        """
        CREATE TABLE connectors (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            provider TEXT NOT NULL, endpoint TEXT NOT NULL, region TEXT NOT NULL,
            account_id TEXT, jurisdiction TEXT, access_key_id TEXT NOT NULL, proxy TEXT,
            path_style INTEGER NOT NULL, chunk_encoding INTEGER NOT NULL,
            credential BLOB NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE TABLE jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, type TEXT NOT NULL, state TEXT NOT NULL, phase TEXT,
            control INTEGER NOT NULL DEFAULT 0, runner TEXT, heartbeat_at TEXT,
            source_connector_id INTEGER NOT NULL, source_bucket TEXT NOT NULL, source_prefix TEXT NOT NULL, keys_json TEXT NOT NULL,
            target_connector_id INTEGER NOT NULL, target_bucket TEXT NOT NULL, target_prefix TEXT NOT NULL,
            overwrite TEXT NOT NULL, filter_json TEXT NOT NULL, concurrency INTEGER NOT NULL, max_bytes_per_second INTEGER NOT NULL,
            multipart_threshold INTEGER NOT NULL, part_size INTEGER NOT NULL,
            listing_token TEXT, listing_done INTEGER NOT NULL DEFAULT 0,
            target_listing_token TEXT, target_listing_done INTEGER NOT NULL DEFAULT 0,
            objects_found INTEGER NOT NULL DEFAULT 0, bytes_found INTEGER NOT NULL DEFAULT 0,
            transferred_objects INTEGER NOT NULL DEFAULT 0, transferred_bytes INTEGER NOT NULL DEFAULT 0,
            skipped_objects INTEGER NOT NULL DEFAULT 0, skipped_bytes INTEGER NOT NULL DEFAULT 0,
            failed_objects INTEGER NOT NULL DEFAULT 0,
            bytes_per_second REAL NOT NULL DEFAULT 0, objects_per_second REAL NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, error TEXT);
        CREATE INDEX jobs_state ON jobs(state);
        CREATE TABLE objects (
            job_seq INTEGER NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT, last_modified TEXT NOT NULL,
            storage_class TEXT, outcome INTEGER NOT NULL DEFAULT 0, message TEXT, checksum TEXT,
            PRIMARY KEY (job_seq, key)) WITHOUT ROWID;
        CREATE INDEX objects_pending ON objects(job_seq, outcome, key);
        CREATE TABLE target_objects (
            job_seq INTEGER NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT, last_modified TEXT NOT NULL,
            storage_class TEXT, PRIMARY KEY (job_seq, key)) WITHOUT ROWID;
        CREATE TABLE uploads (job_seq INTEGER NOT NULL, key TEXT NOT NULL, upload_id TEXT NOT NULL, PRIMARY KEY (job_seq, key));
        CREATE TABLE parts (
            job_seq INTEGER NOT NULL, key TEXT NOT NULL, part_number INTEGER NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL,
            PRIMARY KEY (job_seq, key, part_number));
        CREATE TABLE logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, job_seq INTEGER NOT NULL, created_at TEXT NOT NULL,
            type TEXT NOT NULL, object_key TEXT, message TEXT NOT NULL);
        CREATE INDEX logs_job ON logs(job_seq, id);
        """,
        // 2: connectors given inline to one job (New-MigrationJob -SourceEndpoint) are stored but not listed.
        """
        ALTER TABLE connectors ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
        """,
        // 3: where a connector's keys come from. Existing connectors hold stored keys. For the other sources the
        // credential column holds an empty blob and access_key_id is empty: no secret is kept.
        """
        ALTER TABLE connectors ADD COLUMN credential_source TEXT NOT NULL DEFAULT 'Stored';
        ALTER TABLE connectors ADD COLUMN profile_name TEXT;
        ALTER TABLE connectors ADD COLUMN profile_location TEXT;
        """,
        // 4: how each object was verified (shown in the report); a job's no-progress timeout (0: the default) and its
        // storage-class map (JSON: source class or '*' to target class).
        """
        ALTER TABLE objects ADD COLUMN verified_by TEXT;
        ALTER TABLE jobs ADD COLUMN no_progress_timeout_seconds REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN storage_class_map TEXT;
        """,
        // 5: jobs handed to worker processes (-Detached), and the workers that run them. A worker's row lives while
        // it runs; its heartbeat says it is alive, stop_requested carries Stop-MigrationWorker to it. Bytes of
        // unfinished objects already moved (parts done or streaming), written by the runner with its rates, so
        // progress counts a large object while it moves, in every session.
        """
        ALTER TABLE jobs ADD COLUMN moving_bytes INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN detached INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE workers (
            id TEXT PRIMARY KEY, host TEXT NOT NULL, process_id INTEGER NOT NULL, runner_prefix TEXT NOT NULL,
            user_name TEXT NOT NULL, started_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL,
            max_jobs INTEGER NOT NULL, concurrency INTEGER, idle_exit_seconds REAL, log_path TEXT,
            stop_requested INTEGER NOT NULL DEFAULT 0);
        """,
        // 6: the log type of each object's outcome, for reports (until now only in the log, which has no index by key).
        // Rows settled before this step get theirs from the log, once, through an index built for that and dropped.
        """
        ALTER TABLE objects ADD COLUMN log_type TEXT;
        CREATE INDEX logs_backfill ON logs(job_seq, object_key, id);
        UPDATE objects SET log_type = (
            SELECT l.type FROM logs l WHERE l.job_seq = objects.job_seq AND l.object_key = objects.key AND l.type <> 'MigrationNotice'
            ORDER BY l.id DESC LIMIT 1)
        WHERE outcome IN (2, 3);
        DROP INDEX logs_backfill;
        """,
        // 7: Verify. Its options; its findings counted as they are recorded (progress reads them without scanning logs);
        // rows for keys only the target holds. And what this module recorded of each copy it made and verified, per
        // target object, which a later Verify of any job trusts while neither side's ETag changed.
        """
        ALTER TABLE jobs ADD COLUMN verify_deep INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN verify_metadata INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN missing_objects INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN mismatched_objects INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN extra_objects INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE objects ADD COLUMN target_only INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE copies (
            target_connector_id INTEGER NOT NULL, target_bucket TEXT NOT NULL, target_key TEXT NOT NULL,
            source_etag TEXT, target_etag TEXT NOT NULL, copied_at TEXT NOT NULL,
            PRIMARY KEY (target_connector_id, target_bucket, target_key)) WITHOUT ROWID;
        """,
        // 8: Update jobs. What they change (JSON); and, per object, the tags it had before a copy onto itself that some
        // servers (Ceph RGW) drop, written before the copy so that a crash between the copy and the tags loses none.
        """
        ALTER TABLE jobs ADD COLUMN update_json TEXT;
        CREATE TABLE update_intents (
            job_seq INTEGER NOT NULL, key TEXT NOT NULL, tags TEXT NOT NULL,
            PRIMARY KEY (job_seq, key)) WITHOUT ROWID;
        """,
        // 9: A multipart upload is recorded before it is asked for (upload_id '' with the time asked), so an upload whose
        // id a kill kept from the state is still known: the next run finds it by listing the key's uploads and aborts it.
        """
        ALTER TABLE uploads ADD COLUMN requested_at TEXT;
        """,
        // 10: Adaptive concurrency: whether a job runs at exactly its -Concurrency, and the level a run is at now.
        """
        ALTER TABLE jobs ADD COLUMN fixed_concurrency INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN concurrency_level INTEGER NOT NULL DEFAULT 0;
        """,
        // 11: The highest key any run handed to a worker, saved before each batch: a resumed run checks the target for
        // the pending objects up to it, which a killed run may have copied without recording.
        """
        ALTER TABLE jobs ADD COLUMN dispatched_through TEXT;
        """,
        // 12: Several worker processes run one job (issue 21). Its objects are cut into batches as they are listed (each
        // the keys after after_key up to last_key), leased to one runner at a time; and each runner that takes part
        // keeps a row with its heartbeat and what it did, which progress sums and lists.
        """
        CREATE TABLE batches (
            job_seq INTEGER NOT NULL, batch_no INTEGER NOT NULL, after_key TEXT NOT NULL, last_key TEXT NOT NULL,
            state INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_until TEXT, claims INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (job_seq, batch_no)) WITHOUT ROWID;
        CREATE INDEX batches_open ON batches(job_seq, state, batch_no);
        CREATE TABLE job_runners (
            job_seq INTEGER NOT NULL, runner TEXT NOT NULL, host TEXT NOT NULL, process_id INTEGER NOT NULL, role TEXT NOT NULL,
            transferred_objects INTEGER NOT NULL DEFAULT 0, transferred_bytes INTEGER NOT NULL DEFAULT 0,
            bytes_per_second REAL NOT NULL DEFAULT 0, objects_per_second REAL NOT NULL DEFAULT 0,
            moving_bytes INTEGER NOT NULL DEFAULT 0, concurrency_level INTEGER NOT NULL DEFAULT 0, held_batches INTEGER NOT NULL DEFAULT 0,
            joined_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL, left_at TEXT,
            PRIMARY KEY (job_seq, runner)) WITHOUT ROWID;
        """,
        // 13: The source listing split into key ranges that several runners list at once (issue 21): each range is the
        // keys after after_key through last_key (NULL: to the end), listed as far as listed_through, leased like a batch.
        // Batches are found by their last key when a range's page is cut.
        """
        CREATE TABLE listing_ranges (
            job_seq INTEGER NOT NULL, range_no INTEGER NOT NULL, after_key TEXT NOT NULL, last_key TEXT,
            listed_through TEXT, token TEXT, done INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT, lease_until TEXT, claims INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (job_seq, range_no)) WITHOUT ROWID;
        CREATE INDEX batches_last_key ON batches(job_seq, last_key);
        """,
    ];

    public static int LatestVersion => Steps.Length;

    public static void Apply(Func<SqliteConnection> open)
    {
        using var connection = open();
        using (var wal = connection.CreateCommand())
        {
            // WAL is a property of the file: set once, kept by every later connection.
            wal.CommandText = "PRAGMA journal_mode=WAL;";
            wal.ExecuteNonQuery();
        }
        using var tx = connection.BeginTransaction(deferred: false);
        using (var create = connection.CreateCommand())
        {
            create.CommandText = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
            create.ExecuteNonQuery();
        }
        long current;
        using (var read = connection.CreateCommand())
        {
            read.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
            current = (long)read.ExecuteScalar()!;
        }
        if (current > Steps.Length)
        {
            throw new InvalidOperationException(
                $"The state database is at schema version {current}, newer than this module understands ({Steps.Length}). Update the ObjectMigration module.");
        }
        for (var version = (int)current; version < Steps.Length; version++)
        {
            using var step = connection.CreateCommand();
            step.CommandText = Steps[version] + $"; INSERT INTO schema_version (version) VALUES ({version + 1});";
            step.ExecuteNonQuery();
        }
        tx.Commit();
    }
}
