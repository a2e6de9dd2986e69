using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// The multipart uploads a job opens on its upload side (the target; the source itself for Update), tracked so that none
/// is left open by a stop or a kill: each is recorded before it is asked for, then by its id once that comes, and
/// forgotten once completed or aborted. An upload asked for whose id never reached the state (a kill, or an answer lost
/// and the request sent again) is found by listing the key's open uploads and aborted.
/// </summary>
internal sealed class JobUploads(IStateStore state, MigrationJob job, IObjectStore side)
{
    // SigV4 refuses a request dated more than 15 minutes off the server's clock, so the server's Initiated time of an
    // upload asked for at T is no earlier than T minus that: older uploads on the key are someone else's.
    private static readonly TimeSpan ClockAllowance = TimeSpan.FromMinutes(15);

    private string Bucket => job.UploadSide.Bucket;
    private string ServerKey(string key) => job.UploadSide.Prefix + key;

    /// <summary>CreateMultipartUpload, recorded before and after; an attempt whose answer was lost leaves nothing open.</summary>
    public async Task<string> StartAsync(string key, ObjectMetadata metadata, RetryPolicy retry, Action<StorageException, int> onRetry, CancellationToken ct)
    {
        var requested = new RequestedUpload(key, DateTimeOffset.UtcNow);
        state.SaveUploadRequested(job.Id, key, requested.RequestedAt);
        var attempts = 0;
        var uploadId = await retry.RunAsync(c =>
        {
            attempts++;
            return side.StartMultipartAsync(Bucket, ServerKey(key), metadata, c);
        }, onRetry, ct).ConfigureAwait(false);
        try
        {
            state.SaveUploadId(job.Id, key, uploadId);
        }
        catch
        {
            // Not recorded (a full state folder): no later run would know this upload, so it is aborted now.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await AbortQuietlyAsync(key, uploadId, timeout.Token).ConfigureAwait(false);
            throw;
        }
        if (attempts > 1)
        {
            // A failed attempt may have opened an upload whose answer never came: only listing finds it.
            try { await AbortUnrecordedAsync(requested, uploadId, ct).ConfigureAwait(false); }
            catch (StorageException) { /* best effort: the object goes on with the upload it has */ }
        }
        return uploadId;
    }

    /// <summary>Aborts the key's uploads that began since <paramref name="requested"/> was asked for, except <paramref name="keep"/>; returns how many.</summary>
    private async Task<int> AbortUnrecordedAsync(RequestedUpload requested, string? keep, CancellationToken ct)
    {
        var open = await side.ListUploadsAsync(Bucket, ServerKey(requested.Key), ct).ConfigureAwait(false);
        var aborted = 0;
        foreach (var upload in open.Where(u => u.UploadId != keep && u.Initiated >= requested.RequestedAt - ClockAllowance))
        {
            await side.AbortMultipartAsync(Bucket, upload.Key, upload.UploadId, ct).ConfigureAwait(false);
            aborted++;
        }
        return aborted;
    }

    /// <summary>
    /// Finds and aborts the uploads the job asked for but never recorded, and forgets them. Where the server cannot list
    /// uploads they are forgotten with a notice (a bucket lifecycle rule is then what frees them); where it cannot be
    /// reached they stay recorded for the next run.
    /// </summary>
    public async Task ClearRequestedAsync(Action<LogRecord> log, CancellationToken ct)
    {
        foreach (var requested in state.GetRequestedUploads(job.Id))
        {
            try
            {
                var aborted = await AbortUnrecordedAsync(requested, keep: null, ct).ConfigureAwait(false);
                if (aborted > 0)
                {
                    log(new LogRecord(LogType.MigrationNotice, requested.Key,
                        $"Aborted {aborted} multipart upload(s) an earlier run had opened but not recorded (it ended between asking for the upload and saving its id)."));
                }
            }
            catch (StorageException e) when (e.ErrorClass == ErrorClass.Unsupported)
            {
                log(new LogRecord(LogType.MigrationNotice, requested.Key,
                    $"An earlier run may have left a multipart upload open on this key, and the server cannot list uploads ({e.Message}). " +
                    "A lifecycle rule with AbortIncompleteMultipartUpload on the bucket frees such uploads."));
            }
            catch (StorageException e)
            {
                log(new LogRecord(LogType.MigrationError, requested.Key, $"Could not look for a multipart upload an earlier run left open: {e.Message} The next run looks again."));
                continue;
            }
            state.ForgetUpload(job.Id, requested.Key);
        }
    }

    /// <summary>Aborts one recorded upload and forgets it; a failure is logged, not thrown (the object is done with it either way).</summary>
    public async Task AbortQuietlyAsync(string key, string uploadId, CancellationToken timeout, Action<LogRecord>? log = null)
    {
        try
        {
            await side.AbortMultipartAsync(Bucket, ServerKey(key), uploadId, timeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StorageException or OperationCanceledException)
        {
            log?.Invoke(new LogRecord(LogType.MigrationError, key, $"Could not abort the multipart upload: {e.Message}"));
        }
        state.ForgetUpload(job.Id, key);
    }

    /// <summary>A stop: every upload the job has open, recorded or only asked for, is aborted within <paramref name="timeout"/>.</summary>
    public async Task AbortAllAsync(Action<LogRecord>? log, CancellationToken timeout)
    {
        await Task.WhenAll(state.GetOpenUploads(job.Id).Select(u => AbortQuietlyAsync(u.Key, u.UploadId, timeout, log))).ConfigureAwait(false);
        try
        {
            await ClearRequestedAsync(log ?? (_ => { }), timeout).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Out of time: what is still recorded stays for whoever removes or resumes the job.
        }
    }
}
