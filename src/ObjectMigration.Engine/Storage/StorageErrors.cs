namespace ObjectMigration.Engine.Storage;

/// <summary>How the engine reacts to a failure: the one place where errors are classified.</summary>
public enum ErrorClass
{
    /// <summary>5xx, SlowDown, throttling, resets, timeouts, truncated bodies: try again after a pause.</summary>
    Retryable,
    /// <summary>Wrong key or secret, signature mismatch.</summary>
    Authentication,
    /// <summary>Credentials accepted, action refused.</summary>
    AccessDenied,
    /// <summary>Unknown host, connection refused, TLS failure.</summary>
    Connection,
    Timeout,
    BucketNotFound,
    ObjectNotFound,
    /// <summary>The request itself is wrong (invalid argument, entity too large): retrying will not help.</summary>
    InvalidRequest,
    Integrity,
    /// <summary>412: the object is no longer the version the request was pinned to (If-Match); it changed at the source.</summary>
    SourceChanged,
    /// <summary>501 NotImplemented: the server lacks this request (GCS has no UploadPartCopy); another way must be taken.</summary>
    Unsupported,
}

/// <summary>A storage failure, classified once, with a message that names the endpoint and never a secret.</summary>
public sealed class StorageException(ErrorClass errorClass, string message, Exception? inner = null) : Exception(message, inner)
{
    public ErrorClass ErrorClass { get; } = errorClass;
    /// <summary>A SourceChanged that is the server's answer to a condition (412), not a change the client saw itself.</summary>
    public bool ConditionRefused { get; init; }
    /// <summary>The server asked for fewer requests (503 SlowDown, 429, a throttling code): the adaptive level backs off on these.</summary>
    public bool IsThrottle { get; internal set; }
    public bool IsRetryable => ErrorClass is ErrorClass.Retryable or ErrorClass.Timeout or ErrorClass.Integrity;
    /// <summary>True when the whole job cannot go on (the failure is not about one object).</summary>
    public bool IsJobFatal => ErrorClass is ErrorClass.Authentication or ErrorClass.AccessDenied or ErrorClass.BucketNotFound or ErrorClass.Connection;
}
