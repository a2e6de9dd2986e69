using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// The multipart uploads a job opens on its upload side (the target; the source itself for Update), tracked so that none
/// is left open by a stop or a kill. A request is marked before it is sent and its id recorded when it comes. One answered
/// request opens one upload, so the mark goes at once; after a retry (an answer may have been lost) or a kill, uploads may
/// be open that the state cannot name: they are found by listing the key's uploads begun while the request was live, and
/// aborted, before the mark goes.
/// </summary>
internal sealed class JobUploads(IStateStore state, MigrationJob job, IObjectStore side, RetryPolicy retry)
{
    // Requests are dated by the server's clock as the store learned it; one it has not corrected is within SigV4's 15
    // minutes of it. An upload of the key begun outside [asked - that, asked + that + the retries' span] is someone else's.
    private static readonly TimeSpan ClockAllowance = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan RetrySpan = TimeSpan.FromMinutes(10);

    private string Bucket => job.UploadSide.Bucket;
    private string ServerKey(string key) => job.UploadSide.Prefix + key;

    /// <summary>CreateMultipartUpload, marked before and recorded after; an attempt whose answer was lost leaves nothing open.</summary>
    public async Task<string> StartAsync(string key, ObjectMetadata metadata, Action<StorageException, int> onRetry, CancellationToken ct)
    {
        var requestedAt = side.ServerNow;
        state.SaveUploadRequested(job.Id, key, requestedAt);
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
        if (attempts == 1)
        {
            state.ClearUploadRequested(job.Id, key);
            return uploadId;
        }
        // A failed attempt may have opened an upload whose answer never came: only listing finds it. Where that fails
        // the mark stays, and the next sweep (run start, completion, stop, removal) looks again.
        try
        {
            await AbortUnrecordedAsync(new RequestedUpload(key, requestedAt, uploadId), ct).ConfigureAwait(false);
            state.ClearUploadRequested(job.Id, key);
        }
        catch (StorageException)
        {
            // Left marked, as said.
        }
        return uploadId;
    }

    /// <summary>Aborts the key's uploads begun while <paramref name="requested"/> was live, except the recorded one; returns how many.</summary>
    private async Task<int> AbortUnrecordedAsync(RequestedUpload requested, CancellationToken ct)
    {
        var open = await retry.RunAsync(c => side.ListUploadsAsync(Bucket, ServerKey(requested.Key), c), null, ct).ConfigureAwait(false);
        var (from, to) = (requested.RequestedAt - ClockAllowance, requested.RequestedAt + ClockAllowance + RetrySpan);
        var aborted = 0;
        foreach (var upload in open.Where(u => u.UploadId != requested.RecordedUploadId && u.Initiated >= from && u.Initiated <= to))
        {
            await retry.RunAsync(async c =>
            {
                await side.AbortMultipartAsync(Bucket, upload.Key, upload.UploadId, c).ConfigureAwait(false);
                return true;
            }, null, ct).ConfigureAwait(false);
            aborted++;
        }
        return aborted;
    }

    /// <summary>
    /// Sweeps every key whose upload request is still marked: aborts the uploads it may have opened unrecorded, then
    /// clears the mark. Where the server cannot list uploads the mark goes with a notice (a bucket lifecycle rule is then
    /// what frees them); where it cannot be reached the mark stays for the next sweep.
    /// </summary>
    public async Task ClearRequestedAsync(Action<LogRecord> log, CancellationToken ct)
    {
        foreach (var requested in state.GetRequestedUploads(job.Id))
        {
            try
            {
                var aborted = await AbortUnrecordedAsync(requested, ct).ConfigureAwait(false);
                if (aborted > 0)
                {
                    log(new LogRecord(LogType.MigrationNotice, requested.Key,
                        $"Aborted {aborted} multipart upload(s) opened for this key but never recorded (a run ended, or an answer was lost, between asking for the upload and saving its id)."));
                }
            }
            catch (StorageException e) when (e.ErrorClass == ErrorClass.Unsupported)
            {
                log(new LogRecord(LogType.MigrationNotice, requested.Key,
                    $"A multipart upload may have been left open on this key, and the server cannot list uploads ({e.Message}). " +
                    "A lifecycle rule with AbortIncompleteMultipartUpload on the bucket frees such uploads."));
            }
            catch (StorageException e)
            {
                log(new LogRecord(LogType.MigrationError, requested.Key, $"Could not look for a multipart upload left open on this key: {e.Message} It is looked for again when the job runs, stops or is removed."));
                continue;
            }
            state.ClearUploadRequested(job.Id, requested.Key);
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

    /// <summary>A stop or a removal: every upload the job has open, recorded or only asked for, is aborted within <paramref name="timeout"/>.</summary>
    public async Task AbortAllAsync(Action<LogRecord>? log, CancellationToken timeout)
    {
        await Task.WhenAll(state.GetOpenUploads(job.Id).Select(u => AbortQuietlyAsync(u.Key, u.UploadId, timeout, log))).ConfigureAwait(false);
        try
        {
            await ClearRequestedAsync(log ?? (_ => { }), timeout).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Out of time: what is still marked stays for whoever resumes or removes the job.
        }
    }
}
