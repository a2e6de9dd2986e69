using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.State;

/// <summary>One object as listed from the source, before any decision about it.</summary>
public sealed record ListedObject(string Key, long Size, string? ETag, DateTimeOffset LastModified, string? StorageClass);

/// <summary>
/// A pending object handed to the scheduler, with what the target held when it was listed and what this module recorded
/// when it last copied the object there (<paramref name="Copied"/>). A <paramref name="TargetOnly"/> row is a key only
/// the target holds (a Verify found it); its size and ETag are the target's.
/// </summary>
public sealed record PendingObject(
    string Key, long Size, string? ETag, DateTimeOffset LastModified, string? StorageClass,
    long? TargetSize, string? TargetETag, DateTimeOffset? TargetLastModified, bool TargetListed,
    CopyRecord? Copied = null, bool TargetOnly = false);

/// <summary>
/// What this module recorded when it copied an object and verified the copy: the source version it read and the ETag
/// the target gave the result. While both sides still show those ETags, the target holds what was verified.
/// </summary>
public sealed record CopyRecord(string? SourceETag, string TargetETag);

/// <summary>The end of one object's handling, written in batches.</summary>
/// <param name="TargetETag">A copy's ETag on the target, kept as this module's record of the verified copy (<see cref="CopyRecord"/>).</param>
public sealed record ObjectResult(string Key, ObjectOutcome Outcome, long Bytes, LogType? LogType, string? Message, string? Checksum = null, string? VerifiedBy = null,
    string? TargetETag = null);

/// <summary>
/// One object of a job as a report shows it. <paramref name="TargetETag"/> is what the target held under the object's
/// target key when the job listed the target (before copying; null where the job did not list it or the key was absent).
/// </summary>
public sealed record ObjectReportRow(
    string Key, long Size, ObjectOutcome Outcome, LogType? LogType, string? Message,
    string? SourceETag, string? TargetETag, string? VerifiedBy, string? StorageClass);

/// <summary>One log line that is not tied to an object outcome (job start, pause, errors).</summary>
public sealed record LogRecord(LogType Type, string? ObjectKey, string Message);

/// <summary>A finished part of an open multipart upload, kept so a resumed job uploads only what is missing.</summary>
public sealed record UploadedPart(int PartNumber, string ETag, long Size);

public sealed record OpenUpload(string Key, string UploadId);

/// <summary>
/// A multipart upload asked for at <paramref name="RequestedAt"/> (the server's time) whose request may have opened
/// uploads the state cannot name: a kill came before the id was saved, or an answer was lost and the request sent again.
/// <paramref name="RecordedUploadId"/> is the one whose id did arrive, if any.
/// </summary>
public sealed record RequestedUpload(string Key, DateTimeOffset RequestedAt, string? RecordedUploadId);

public sealed class LogQuery
{
    public LogType[] Types { get; set; } = [];
    public string[] KeyPatterns { get; set; } = [];
    /// <summary>Only entries after this sequence number (a reader's cursor).</summary>
    public long AfterSequence { get; set; }
    public int Skip { get; set; }
    public int First { get; set; } = int.MaxValue;
}

/// <summary>Connectors: named endpoints and their sealed credentials.</summary>
public interface IConnectorStore
{
    /// <summary>
    /// Adds a connector; a hidden one belongs to a single job and is not listed or found by name. The connector's
    /// CredentialSource, ProfileName and ProfileLocation are kept; <paramref name="protectedCredential"/> is empty
    /// for sources other than Stored.
    /// </summary>
    CloudConnector AddConnector(CloudConnector connector, byte[] protectedCredential, bool hidden = false);
    IReadOnlyList<CloudConnector> GetConnectors();
    CloudConnector? FindConnector(string name);
    CloudConnector? FindConnector(long id);
    byte[] GetConnectorCredential(long id);
    /// <summary>Writes the connector's fields and credential source; a null credential keeps the stored one, an empty one erases it.</summary>
    void UpdateConnector(CloudConnector connector, byte[]? protectedCredential);
    void RemoveConnector(long id);
    IReadOnlyList<MigrationJob> GetJobsUsingConnector(long connectorId);
}

/// <summary>Job definitions and their states.</summary>
public interface IJobStore
{
    void AddJob(MigrationJob job);
    MigrationJob? FindJob(Guid id);
    IReadOnlyList<MigrationJob> GetJobs();
    /// <summary>
    /// Moves a job to <paramref name="to"/> only if it is in one of <paramref name="from"/>; true when it moved. A
    /// <paramref name="detached"/> value hands the job to workers (or back to a session) in the same change.
    /// </summary>
    bool TryTransition(Guid id, JobState[] from, JobState to, JobPhase? phase = null, string? error = null, bool? detached = null);
    void SetPhase(Guid id, JobPhase? phase);
    /// <summary>Removes a job with its plan and log, and the hidden connector of a source given inline (with its sealed secret).</summary>
    void RemoveJob(Guid id);
    /// <summary>Hands a job to workers (or takes it back into a session).</summary>
    void SetDetached(Guid id, bool detached);
    /// <summary>Jobs handed to workers that wait for one: Pending, or Interrupted by a worker that died; oldest first.</summary>
    IReadOnlyList<(Guid Id, JobState State)> GetDetachedJobsToRun(int limit);
}

/// <summary>Runs of jobs: who holds one (lease and heartbeat), and what it is asked to do.</summary>
public interface IJobControl
{
    /// <summary>Moves a Pending job to Running and makes <paramref name="runnerId"/> the runner that holds it.</summary>
    bool TryStartRun(Guid id, string runnerId, JobPhase phase);
    /// <summary>Settles a job, only while <paramref name="runnerId"/> still holds it (Running, or Interrupted by mistake).</summary>
    bool TrySettleRun(Guid id, string runnerId, JobState to, string? error = null);
    void SetControlRequest(Guid id, ControlRequest request);
    /// <summary>Sets a request only where none is pending (a person's pause or stop wins over a worker's interrupt); true when set.</summary>
    bool TrySetControlRequest(Guid id, ControlRequest request);
    ControlRequest GetControlRequest(Guid id);
    /// <summary>
    /// Records that the runner is alive. A job marked Interrupted while its runner was only slow is taken back
    /// (Running again, in <paramref name="phase"/>); a job resumed, stopped or removed meanwhile is Lost to it.
    /// </summary>
    RunnerLease Heartbeat(Guid id, string runnerId, JobPhase? phase);
    /// <summary>
    /// Marks Running jobs whose heartbeat is older than <paramref name="staleAfter"/> as Interrupted, except
    /// <paramref name="alive"/>: jobs whose runner the caller knows is running.
    /// </summary>
    int MarkStaleJobsInterrupted(TimeSpan staleAfter, IReadOnlyCollection<Guid> alive);
    /// <summary>The Running jobs and the runner (host:pid#run) that holds each.</summary>
    IReadOnlyList<(Guid Id, string Runner)> GetRunningJobRunners();
    /// <summary>Marks a Running job Interrupted if <paramref name="runnerId"/> still holds it (its process is known to be gone).</summary>
    bool MarkInterrupted(Guid id, string runnerId);
}

/// <summary>Detached worker processes.</summary>
public interface IWorkerRegistry
{
    void AddWorker(MigrationWorker worker);
    /// <summary>Records that the worker is alive, and returns what it is asked to do.</summary>
    WorkerSignal WorkerHeartbeat(Guid id);
    /// <summary>Asks a worker to pause its jobs and exit; false when no such worker is registered.</summary>
    bool RequestWorkerStop(Guid id);
    void RemoveWorker(Guid id);
    /// <summary>Every registered worker with the jobs it runs, alive or not: the engine leaves out (and removes) dead ones.</summary>
    IReadOnlyList<MigrationWorker> GetWorkers();
}

/// <summary>A job's plan: the listings saved page by page, and the objects still to do.</summary>
public interface IPlanStore
{
    (string? Token, bool Done) GetListingCheckpoint(Guid id, bool target);
    /// <summary>Stores one listed page and its continuation point in one transaction; returns rows that were new.</summary>
    int SaveListingPage(Guid id, IReadOnlyList<ListedObject> objects, string? continuationToken, bool done, bool target);
    /// <summary>
    /// Keys the target holds (under the target prefix) that no row of the job has, in key order after
    /// <paramref name="afterKey"/>; keys are given as the source would name them (the target prefix taken off).
    /// </summary>
    IReadOnlyList<ListedObject> GetTargetOnlyObjects(Guid id, string afterKey, int limit);
    /// <summary>Adds keys only the target holds to the job's plan, pending, marked as target-only.</summary>
    void SaveTargetOnlyObjects(Guid id, IReadOnlyList<ListedObject> objects);
    /// <summary>Replaces what was listed for one source object (it changed while it was copied); the job's found bytes follow.</summary>
    void UpdateListedObject(Guid id, ListedObject current);
    /// <param name="throughKey">The last key to return (a batch's end); null: to the end of the plan.</param>
    IReadOnlyList<PendingObject> GetPendingObjects(Guid id, string afterKey, int limit, string? throughKey = null);
    /// <summary>
    /// The runner's live measures: rates, and the bytes of unfinished objects already moved (finished parts, parts and
    /// objects streaming now), which progress adds to the finished objects' bytes.
    /// </summary>
    /// <summary>
    /// Raises the highest key handed to a worker (never lowers it); written before the batch is dispatched, so after a
    /// kill every object a run may have copied without recording is at or below it.
    /// </summary>
    void SaveDispatchedThrough(Guid id, string key);
    string? GetDispatchedThrough(Guid id);
    /// <summary>Puts failed objects back to pending for Resume -RetryFailed; returns how many.</summary>
    int ResetFailedObjects(Guid id);
    /// <summary>Every source object the job listed, in key order, read as it goes (flat memory for any listing).</summary>
    IEnumerable<ListedObject> StreamListedObjects(Guid id);
}

/// <summary>Outcomes and the counters they add to, and reading them back.</summary>
public interface IResultStore
{
    /// <param name="runner">The runner that recorded them: the objects this call counts for the job count for its share too (<see cref="IBatchLeases.SaveRunnerProgress"/>).</param>
    void SaveResults(Guid id, IReadOnlyList<ObjectResult> results, IReadOnlyList<LogRecord> logs, string? runner = null);
    /// <param name="concurrencyLevel">Transfers the run keeps in flight now (the adaptive level); 0 once it ends.</param>
    void SaveRates(Guid id, double bytesPerSecond, double objectsPerSecond, long movingBytes, int concurrencyLevel);
    MigrationJobProgress GetProgress(Guid id);
    /// <summary>
    /// One row per object in key order, read forward-only while the caller enumerates (nothing is buffered): outcome,
    /// log type and why, both ETags, how a copied object was verified. Throws KeyNotFoundException for an unknown job.
    /// </summary>
    IEnumerable<ObjectReportRow> StreamObjectReport(Guid id);
    /// <summary>This module's records of the copies it made into one target bucket (a dry run decides with them), read as it goes.</summary>
    IEnumerable<CopyRow> StreamCopies(long targetConnectorId, string targetBucket);
}

/// <summary>One copy record: what this module wrote to a target key, from which source version.</summary>
public sealed record CopyRow(string TargetKey, string? SourceETag, string TargetETag, DateTimeOffset CopiedAt);

/// <summary>A job's log.</summary>
public interface IJobLog
{
    void AddLogs(Guid id, IReadOnlyList<LogRecord> logs);
    IReadOnlyList<MigrationJobLogEntry> GetLogs(Guid id, LogQuery query);
}

/// <summary>Open multipart uploads, their parts, and Update's saved tags: what a kill must not lose.</summary>
public interface IUploadStore
{
    /// <summary>The recorded id of the key's open upload; null when there is none, or when one was asked for and its id never came.</summary>
    string? GetUploadId(Guid id, string key);
    /// <summary>
    /// Written before CreateMultipartUpload is sent: until <see cref="ClearUploadRequested"/>, an upload may be open that
    /// the state cannot name. A request still marked keeps its earlier time.
    /// </summary>
    void SaveUploadRequested(Guid id, string key, DateTimeOffset requestedAt);
    /// <summary>Records the upload's id; a request mark stays until cleared.</summary>
    void SaveUploadId(Guid id, string key, string uploadId);
    /// <summary>No upload of the key is open but the recorded one: the request mark goes.</summary>
    void ClearUploadRequested(Guid id, string key);
    /// <summary>Keys whose upload requests are still marked (see <see cref="SaveUploadRequested"/>).</summary>
    IReadOnlyList<RequestedUpload> GetRequestedUploads(Guid id);
    IReadOnlyList<UploadedPart> GetUploadedParts(Guid id, string key);
    void SavePart(Guid id, string key, UploadedPart part);
    /// <summary>The recorded upload is completed or aborted: its id and parts go (a request mark stays until cleared).</summary>
    void ForgetUpload(Guid id, string key);
    /// <summary>
    /// Update: the tags (x-amz-tagging form) an object had before its copy onto itself, kept until they are written
    /// back, so that a crash between the copy (which some servers make without tags) and the tags loses none.
    /// </summary>
    void SaveUpdateIntent(Guid id, string key, string tags);
    /// <summary>All of a job's saved tags by key: read once per run (only objects a crash caught mid-update have one).</summary>
    IReadOnlyDictionary<string, string> GetUpdateIntents(Guid id);
    void ForgetUpdateIntent(Guid id, string key);
    IReadOnlyList<OpenUpload> GetOpenUploads(Guid id);
}

/// <summary>
/// A slice of a job's plan that one runner copies at a time: the keys after <paramref name="AfterKey"/> up to and
/// including <paramref name="LastKey"/>. <paramref name="Claims"/> counts every claim including this one: above 1, an
/// earlier holder (killed, or gone from a paused run) may have copied some of its objects without recording them.
/// </summary>
public sealed record ObjectBatch(int BatchNo, string AfterKey, string LastKey, int Claims);

/// <summary>
/// Batches of a job's objects leased to runners, so that several worker processes (on any hosts) run one job: each
/// claims open batches with a lease, renews it with its heartbeat, and completes a batch once none of its objects is
/// pending. A runner that dies only delays its batches until their leases expire. Lease times are the store's clock.
/// </summary>
public interface IBatchLeases
{
    /// <summary>
    /// Called by the runner that starts a job: every batch that holds pending objects is open again (a -RetryFailed,
    /// rows listed before batches existed get batches), and the leases (of batches and listing ranges) of runners that
    /// are no longer in the job (no heartbeat within <paramref name="aliveWithin"/>, or left) are let go. The rows of earlier runs' runners stay
    /// (inactive): the runners' shares keep adding up to the job's totals.
    /// </summary>
    void PrepareBatches(Guid id, TimeSpan aliveWithin);
    /// <summary>Leases up to <paramref name="count"/> open batches nobody holds (or whose lease expired), lowest first.</summary>
    IReadOnlyList<ObjectBatch> ClaimBatches(Guid id, string runner, int count, TimeSpan lease);
    /// <summary>Extends the runner's leases; returns the batches it still holds (one missing was taken over).</summary>
    IReadOnlyList<int> RenewBatches(Guid id, string runner, TimeSpan lease);
    /// <summary>Marks the batch done if the runner holds it and none of its objects is pending; false otherwise.</summary>
    bool CompleteBatch(Guid id, int batchNo, string runner);
    /// <summary>Batches not done yet, held or not.</summary>
    int CountOpenBatches(Guid id);
    /// <summary>
    /// The runner's heartbeat in the job, with its rates and level (its counts are added by SaveResults); the first
    /// call joins the runner to the job. A runner that left stays out (a late heartbeat does not bring it back). Times
    /// are the store's.
    /// </summary>
    void SaveRunnerProgress(Guid id, JobWorkerProgress progress);
    /// <summary>The runner is out of the job: its batches and listing ranges are let go, its row stays for progress, no longer active.</summary>
    void LeaveJob(Guid id, string runner);
    /// <summary>Every runner that took part in the job's current run; <see cref="JobWorkerProgress.Active"/> by the store's clock.</summary>
    IReadOnlyList<JobWorkerProgress> GetJobRunners(Guid id, TimeSpan staleAfter);
    /// <summary>
    /// Running jobs handed to workers that have batches open and not held (or held past their lease), or whose source is
    /// still listed (in ranges), which a worker with room can join, once their lead is past its start (buckets checked,
    /// uploads swept, target listed); oldest first.
    /// </summary>
    IReadOnlyList<Guid> GetJoinableJobs(int limit, TimeSpan staleAfter);
}

/// <summary>
/// A key range of a job's source listing that one runner lists at a time: the keys after <paramref name="AfterKey"/>
/// through <paramref name="LastKey"/> (null: to the end of the prefix). <paramref name="ListedThrough"/> is where its
/// listing stands (null: nothing listed yet) and <paramref name="Token"/> the listing's continuation token there, if a
/// runner saved one. <paramref name="HeldBy"/> is the runner whose lease on it is alive, if any.
/// </summary>
public sealed record ListingRange(int RangeNo, string AfterKey, string? LastKey, string? ListedThrough, string? Token, string? HeldBy, int Claims)
{
    /// <summary>Where the next listing request of the range starts: after this key ("" = at the start).</summary>
    public string ListFrom => ListedThrough ?? AfterKey;
}

/// <summary>What saving a page of a range did: objects new to the plan, whether the range is listed to its end, whether the runner still held it.</summary>
public sealed record RangePageSaved(int Added, bool RangeDone, bool Held);

/// <summary>
/// A job's source listing split into key ranges that several runners list at once (each holds a lease on the range it
/// lists, renewed with its heartbeat). A runner with nothing to list cuts the far part of another runner's range off for
/// itself; the owner's listing stops where its range now ends. The source is listed when every range is.
/// </summary>
public interface IListingRanges
{
    /// <summary>
    /// Leases an open range nobody holds (or whose lease ran out, or the runner's own), lowest first; null when none is
    /// free or the source is listed. A job listed by an earlier version without ranges gets its first range from its
    /// listing checkpoint.
    /// </summary>
    ListingRange? ClaimRange(Guid id, string runner, TimeSpan lease);
    /// <summary>The ranges not listed to their end yet, held or not.</summary>
    IReadOnlyList<ListingRange> GetOpenRanges(Guid id);
    /// <summary>
    /// Cuts range <paramref name="rangeNo"/> after <paramref name="splitAfter"/>: the keys past it become a new range
    /// leased to <paramref name="runner"/>, and the range ends there. Only while the range is open, its listing has not
    /// reached <paramref name="splitAfter"/>, and <paramref name="splitAfter"/> lies before its end; null otherwise.
    /// </summary>
    ListingRange? SplitRange(Guid id, int rangeNo, string splitAfter, string runner, TimeSpan lease);
    /// <summary>
    /// Saves one listing page of a range the runner holds, in one transaction: the selected objects within the range
    /// (keys past its end, which another runner lists now, are dropped), their batches, the range's checkpoint and the
    /// job's found counters. The range is done when the listing ended (<paramref name="listingEnded"/>) or the page
    /// reached the range's end (<paramref name="pageLastKey"/>, the page's last key before any filter); when it was
    /// the last open range, the source is listed. Nothing is saved for a runner that no longer holds the range.
    /// </summary>
    RangePageSaved SaveRangePage(Guid id, int rangeNo, string runner, IReadOnlyList<ListedObject> selected, string? pageLastKey, string? token, bool listingEnded, TimeSpan lease);
    /// <summary>Extends the runner's range leases; returns the ranges it still holds.</summary>
    IReadOnlyList<int> RenewRanges(Guid id, string runner, TimeSpan lease);
}

/// <summary>
/// The store is the plan and the control plane: one row per object, batched writes, and the requests
/// (pause, stop) that any session or process sends to a job's runner. All SQL lives behind this. It is the sum of the
/// contracts above, one per concern, so that a second store (PostgreSQL, for many hosts) is written and tested one
/// contract at a time; see docs/design/state-store-split.md.
/// </summary>
public interface IStateStore : IConnectorStore, IJobStore, IJobControl, IWorkerRegistry, IPlanStore, IResultStore, IJobLog, IUploadStore, IBatchLeases, IListingRanges
{
    string Location { get; }
}
