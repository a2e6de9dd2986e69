namespace ObjectMigration.Engine.Model;

public enum JobState { Pending, Running, Paused, Completed, CompletedWithErrors, Failed, Cancelled, Interrupted }

public enum JobPhase { None, Listing, Transferring, Verifying }

public enum JobType { Migrate, Verify, Inventory, Update }

public static class JobTypes
{
    /// <summary>Inventory and Update work on the source bucket alone: no target is asked for, checked or stored.</summary>
    public static bool HasTarget(JobType type) => type is not (JobType.Inventory or JobType.Update);
}

public enum OverwriteMode { IfDifferent, Always, Never, IfSourceNewer }

/// <summary>What happened to one object of a job. Stored as its integer value.</summary>
public enum ObjectOutcome { Pending = 0, Transferred = 1, Skipped = 2, Failed = 3 }

public enum ConnectorProvider { S3, AWS, GCS, R2, UpCloud, MinIO, Wasabi, VspOne }

/// <summary>
/// Where a connector's keys come from when a request is signed: keys stored (encrypted) with the connector, an AWS
/// shared config/credentials profile, the AWS environment variables, or the container or EC2 instance role. Only
/// <see cref="Stored"/> keeps a secret; the others are looked up, and temporary keys refreshed, while jobs run.
/// </summary>
public enum CredentialSource { Stored, Profile, Environment, InstanceRole }

/// <summary>
/// A request from any session or process to the runner of a job, carried by the store. Interrupt is a worker's own
/// when it shuts down: the job stops at a checkpoint as Interrupted, for the next worker to continue unasked.
/// </summary>
public enum ControlRequest { None = 0, Pause = 1, Stop = 2, Interrupt = 3 }

/// <summary>What a runner's heartbeat found: it still holds its job, took it back after a false Interrupted, or lost it.</summary>
public enum RunnerLease { Held, Reclaimed, Lost }

public enum LogType
{
    MigrationStart, MigrationComplete, MigrationAbort, MigrationError, MigrationPause, MigrationResume,
    MigrationErrorFailedContinuation, ImportErrorRetryExhaustion, ImportSkippedStorageClass,
    ImportSkippedOversized, ImportSkippedEmptyObject, ImportSkippedUnsupportedContentType,
    ImportSkippedExcludedContentType, ImportSkippedInvalidMedia, ImportSkippedRequiresRetrieval,
    ImportSkippedExists, VerifyMissing, VerifyMismatch,
    /// <summary>An object was copied; kept for reports, not a Super Slurper name.</summary>
    ImportTransferred,
    /// <summary>The source object changed while it was copied: it was copied again from its current version, or failed.</summary>
    ImportSourceChanged,
    /// <summary>Something the run found out or had to leave out, said once: a bucket's region, the server's clock, an attribute the target cannot take.</summary>
    MigrationNotice,
    /// <summary>A Verify found a key only the target holds, within the job's scope; it is never deleted.</summary>
    VerifyExtra,
    /// <summary>An Update job changed an object in place (storage class, tags, headers); its bytes were checked unchanged.</summary>
    ObjectUpdated,
    /// <summary>An Update job found an object already as it asks (a re-run, or a resume after a crash): nothing was changed.</summary>
    UpdateAlreadyApplied,
}

public static class JobStates
{
    public static bool IsTerminal(JobState state) =>
        state is JobState.Completed or JobState.CompletedWithErrors or JobState.Failed or JobState.Cancelled;

    /// <summary>Terminal, or waiting for a person to act.</summary>
    public static bool IsSettled(JobState state) =>
        IsTerminal(state) || state is JobState.Paused or JobState.Interrupted;
}
