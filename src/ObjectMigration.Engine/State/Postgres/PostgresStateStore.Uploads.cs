namespace ObjectMigration.Engine.State.Postgres;

public sealed partial class PostgresStateStore
{
    // ---- Multipart ----

    public string? GetUploadId(Guid id, string key) =>
        Query("SELECT u.upload_id FROM uploads u JOIN jobs j ON j.seq = u.job_seq WHERE j.id = @id AND u.key = @key AND u.upload_id <> ''",
            r => r.GetString(0), P("id", id), Text("key", key)).FirstOrDefault();

    public void SaveUploadRequested(Guid id, string key, DateTimeOffset requestedAt) =>
        // The requester's time, not the server's: it is compared with S3's Initiated. A mark already there keeps the earlier time.
        Execute(@"INSERT INTO uploads (job_seq, key, upload_id, requested_at) SELECT seq, @key, '', @at FROM jobs WHERE id = @id
                  ON CONFLICT (job_seq, key) DO UPDATE SET upload_id = '', requested_at = LEAST(uploads.requested_at, EXCLUDED.requested_at)",
            P("id", id), Text("key", key), Time("at", requestedAt));

    public void ClearUploadRequested(Guid id, string key) =>
        Execute(@"WITH j AS (SELECT seq FROM jobs WHERE id = @id),
                       unrecorded AS (DELETE FROM uploads u USING j WHERE u.job_seq = j.seq AND u.key = @key AND u.upload_id = '')
                  UPDATE uploads u SET requested_at = NULL FROM j WHERE u.job_seq = j.seq AND u.key = @key AND u.upload_id <> ''",
            P("id", id), Text("key", key));

    public IReadOnlyList<RequestedUpload> GetRequestedUploads(Guid id) =>
        Query("SELECT u.key, u.requested_at, u.upload_id FROM uploads u JOIN jobs j ON j.seq = u.job_seq WHERE j.id = @id AND u.requested_at IS NOT NULL ORDER BY u.key",
            r => new RequestedUpload(r.GetString(0), ReadTime(r, 1), r.GetString(2) is { Length: > 0 } recorded ? recorded : null), P("id", id));

    public void SaveUploadId(Guid id, string key, string uploadId) =>
        Execute(@"INSERT INTO uploads (job_seq, key, upload_id) SELECT seq, @key, @upload FROM jobs WHERE id = @id
                  ON CONFLICT (job_seq, key) DO UPDATE SET upload_id = EXCLUDED.upload_id",
            P("id", id), Text("key", key), Text("upload", uploadId));

    public IReadOnlyList<UploadedPart> GetUploadedParts(Guid id, string key) =>
        Query("SELECT p.part_number, p.etag, p.size FROM parts p JOIN jobs j ON j.seq = p.job_seq WHERE j.id = @id AND p.key = @key ORDER BY p.part_number",
            r => new UploadedPart(r.GetInt32(0), r.GetString(1), r.GetInt64(2)), P("id", id), Text("key", key));

    public void SavePart(Guid id, string key, UploadedPart part) =>
        Execute(@"INSERT INTO parts (job_seq, key, part_number, etag, size) SELECT seq, @key, @n, @etag, @size FROM jobs WHERE id = @id
                  ON CONFLICT (job_seq, key, part_number) DO UPDATE SET etag = EXCLUDED.etag, size = EXCLUDED.size",
            P("id", id), Text("key", key), P("n", part.PartNumber), Text("etag", part.ETag), P("size", part.Size));

    /// <summary>The id and parts go; a request mark stays (its row with an empty id) until cleared.</summary>
    public void ForgetUpload(Guid id, string key) =>
        Execute(@"WITH j AS (SELECT seq FROM jobs WHERE id = @id),
                       parts_gone AS (DELETE FROM parts p USING j WHERE p.job_seq = j.seq AND p.key = @key),
                       unmarked AS (DELETE FROM uploads u USING j WHERE u.job_seq = j.seq AND u.key = @key AND u.requested_at IS NULL)
                  UPDATE uploads u SET upload_id = '' FROM j WHERE u.job_seq = j.seq AND u.key = @key AND u.requested_at IS NOT NULL",
            P("id", id), Text("key", key));

    public IReadOnlyList<OpenUpload> GetOpenUploads(Guid id) =>
        Query("SELECT u.key, u.upload_id FROM uploads u JOIN jobs j ON j.seq = u.job_seq WHERE j.id = @id AND u.upload_id <> '' ORDER BY u.key",
            r => new OpenUpload(r.GetString(0), r.GetString(1)), P("id", id));

    // ---- Update intents ----

    public void SaveUpdateIntent(Guid id, string key, string tags) =>
        Execute(@"INSERT INTO update_intents (job_seq, key, tags) SELECT seq, @key, @tags FROM jobs WHERE id = @id
                  ON CONFLICT (job_seq, key) DO UPDATE SET tags = EXCLUDED.tags",
            P("id", id), Text("key", key), Text("tags", tags));

    public IReadOnlyDictionary<string, string> GetUpdateIntents(Guid id) =>
        Query("SELECT u.key, u.tags FROM update_intents u JOIN jobs j ON j.seq = u.job_seq WHERE j.id = @id",
            r => (Key: r.GetString(0), Tags: r.GetString(1)), P("id", id)).ToDictionary(i => i.Key, i => i.Tags, StringComparer.Ordinal);

    public void ForgetUpdateIntent(Guid id, string key) =>
        Execute("DELETE FROM update_intents WHERE key = @key AND job_seq = (SELECT seq FROM jobs WHERE id = @id)", P("id", id), Text("key", key));
}
