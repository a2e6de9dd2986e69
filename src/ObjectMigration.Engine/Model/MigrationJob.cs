namespace ObjectMigration.Engine.Model;

/// <summary>Which objects of the source a job selects.</summary>
public sealed class ObjectFilter
{
    public string[] Include { get; set; } = [];
    public string[] Exclude { get; set; } = [];
    public DateTimeOffset? ModifiedAfter { get; set; }
    public DateTimeOffset? ModifiedBefore { get; set; }
    public long? MinSize { get; set; }
    public long? MaxSize { get; set; }
    public string[] ExcludeContentType { get; set; } = [];

    /// <summary>The rules as a user wrote them (-Include a*, -MaxSize 10 MiB ...), or "(all objects)": a table or a string shows this, not the type name.</summary>
    public override string ToString()
    {
        var rules = new List<string>();
        if (Include.Length > 0) rules.Add($"Include {string.Join(", ", Include)}");
        if (Exclude.Length > 0) rules.Add($"Exclude {string.Join(", ", Exclude)}");
        if (ModifiedAfter is { } after) rules.Add($"ModifiedAfter {after:yyyy-MM-dd HH:mm:ss}");
        if (ModifiedBefore is { } before) rules.Add($"ModifiedBefore {before:yyyy-MM-dd HH:mm:ss}");
        if (MinSize is { } min) rules.Add($"MinSize {ByteSize.Format(min)}");
        if (MaxSize is { } max) rules.Add($"MaxSize {ByteSize.Format(max)}");
        if (ExcludeContentType.Length > 0) rules.Add($"ExcludeContentType {string.Join(", ", ExcludeContentType)}");
        return rules.Count == 0 ? "(all objects)" : string.Join("; ", rules);
    }
}

/// <summary>What a new job is asked to do; validated before anything is stored.</summary>
public sealed class MigrationJobRequest
{
    public string? Name { get; set; }
    public JobType Type { get; set; } = JobType.Migrate;
    public string SourceConnector { get; set; } = "";
    public string SourceBucket { get; set; } = "";
    public string SourcePrefix { get; set; } = "";
    public string[] Keys { get; set; } = [];
    public string TargetConnector { get; set; } = "";
    public string TargetBucket { get; set; } = "";
    public string TargetPrefix { get; set; } = "";
    public OverwriteMode Overwrite { get; set; } = OverwriteMode.IfDifferent;
    public ObjectFilter Filter { get; set; } = new();
    /// <summary>The most transfers in flight at once: the ceiling of the adaptive level, or the level itself with <see cref="FixedConcurrency"/>.</summary>
    public int Concurrency { get; set; } = TransferOptions.DefaultConcurrency;
    /// <summary>Run exactly <see cref="Concurrency"/> transfers at once instead of finding the level that pays.</summary>
    public bool FixedConcurrency { get; set; }
    public long MaxBytesPerSecond { get; set; }
    public long MultipartThreshold { get; set; } = TransferOptions.DefaultMultipartThreshold;
    public long PartSize { get; set; } = TransferOptions.DefaultPartSize;
    /// <summary>A request fails when no byte moved for this long (default 60 s); a slow link that keeps moving never times out.</summary>
    public TimeSpan? NoProgressTimeout { get; set; }
    /// <summary>Storage classes to write on the target: source class (or "*" for any) to the target's name for it.</summary>
    public Dictionary<string, string> StorageClassMap { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>Verify: read both sides and compare their MD5s, whatever the ETags and records say.</summary>
    public bool Deep { get; set; }
    /// <summary>Verify: a different content type, user metadata or tags is a mismatch too.</summary>
    public bool CompareMetadata { get; set; }
    /// <summary>Update: what changes on each selected object.</summary>
    public ObjectUpdate? Update { get; set; }
}

public static class TransferOptions
{
    /// <summary>
    /// The default ceiling of the adaptive level: high, since across a WAN small objects need hundreds in flight; the
    /// level itself starts at 16 and rises only while throughput does.
    /// </summary>
    public const int DefaultConcurrency = 256;
    public const int MaxConcurrency = 1024;
    public const long DefaultMultipartThreshold = 64L * 1024 * 1024;
    public const long DefaultPartSize = 8L * 1024 * 1024;
    public const long MinPartSize = 5L * 1024 * 1024;
    public const int MaxParts = 10_000;
    /// <summary>S3's largest object.</summary>
    public const long DefaultTargetMaxObjectSize = 5L * 1024 * 1024 * 1024 * 1024;
}

public sealed class MigrationJob
{
    public Guid Id { get; set; }
    public string Name { get; set; } = "";
    public JobType Type { get; set; }
    public JobState State { get; set; }
    public JobPhase? Phase { get; set; }
    /// <summary>Where the job reads: connector/bucket/prefix (the prefix left out when empty).</summary>
    public string Source => Location.Of(SourceConnector, SourceBucket, SourcePrefix);
    /// <summary>Where the job writes: connector/bucket/prefix; "(in place)" for an Update; empty for an Inventory, which writes nothing.</summary>
    public string Target => Type == JobType.Update ? "(in place)" : string.IsNullOrEmpty(TargetBucket) ? "" : Location.Of(TargetConnector, TargetBucket, TargetPrefix);
    // PowerShell's ConvertTo-Json writes an enum as its number (unless -EnumsAsStrings): these carry the names.
    public string TypeName => Type.ToString();
    public string StateName => State.ToString();
    public string? PhaseName => Phase?.ToString();
    public string OverwriteName => Overwrite.ToString();
    public string SourceConnector { get; set; } = "";
    public string SourceBucket { get; set; } = "";
    public string SourcePrefix { get; set; } = "";
    public string[] Keys { get; set; } = [];
    public string TargetConnector { get; set; } = "";
    public string TargetBucket { get; set; } = "";
    public string TargetPrefix { get; set; } = "";
    public OverwriteMode Overwrite { get; set; }
    public ObjectFilter Filter { get; set; } = new();
    /// <summary>The most transfers in flight at once (the adaptive level's ceiling, or the level with <see cref="FixedConcurrency"/>).</summary>
    public int Concurrency { get; set; }
    public bool FixedConcurrency { get; set; }
    public long MaxBytesPerSecond { get; set; }
    public long MultipartThreshold { get; set; }
    public long PartSize { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    /// <summary>A request fails when no byte moved for this long; null: the default (60 s).</summary>
    public TimeSpan? NoProgressTimeout { get; set; }
    /// <summary>Storage classes to write on the target: source class (or "*") to target class; empty keeps the source's.</summary>
    public Dictionary<string, string> StorageClassMap { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>What -StorageClass maps <paramref name="sourceClass"/> (null: STANDARD) to, or null when it does not name it.</summary>
    public string? MappedStorageClass(string? sourceClass) =>
        StorageClassMap.TryGetValue(sourceClass ?? "STANDARD", out var mapped) || StorageClassMap.TryGetValue("*", out mapped) ? mapped : null;
    /// <summary>Verify: read both sides and compare their MD5s, whatever the ETags and records say.</summary>
    public bool Deep { get; set; }
    /// <summary>Verify: a different content type, user metadata or tags is a mismatch too.</summary>
    public bool CompareMetadata { get; set; }
    /// <summary>Update: what changes on each selected object, in place; null for the other types.</summary>
    public ObjectUpdate? Update { get; set; }
    /// <summary>Why the job failed, when it did; says what to fix.</summary>
    public string? Error { get; set; }
    /// <summary>Handed to worker processes (-Detached): a worker runs it, and the next worker continues it after a crash.</summary>
    public bool Detached { get; set; }
    /// <summary>The process that runs it or ran it last, as host:pid#run.</summary>
    public string? Runner { get; set; }

    internal long Seq { get; set; }
    internal long SourceConnectorId { get; set; }
    internal long TargetConnectorId { get; set; }

    /// <summary>Where the job's multipart uploads are open: the target, or the source for a job that changes it in place (Update).</summary>
    internal (long ConnectorId, string Bucket, string Prefix) UploadSide =>
        JobTypes.HasTarget(Type) ? (TargetConnectorId, TargetBucket, TargetPrefix) : (SourceConnectorId, SourceBucket, "");

    public override string ToString() => $"{Name} ({Id})";
}

public sealed class MigrationJobProgress
{
    public Guid Id { get; set; }
    public string Name { get; set; } = "";
    public JobState State { get; set; }
    public JobPhase? Phase { get; set; }
    /// <summary>The names of <see cref="State"/> and <see cref="Phase"/>, for ConvertTo-Json (which writes enums as numbers).</summary>
    public string StateName => State.ToString();
    public string? PhaseName => Phase?.ToString();
    public long Objects { get; set; }
    public long TransferredObjects { get; set; }
    public long SkippedObjects { get; set; }
    public long FailedObjects { get; set; }
    public long PendingObjects { get; set; }
    public long TotalBytes { get; set; }
    public long TransferredBytes { get; set; }
    public double BytesPerSecond { get; set; }
    public double ObjectsPerSecond { get; set; }
    /// <summary>Transfers the run keeps in flight now: the level the adaptive scheme found (at most the job's -Concurrency); 0 when no run holds the job.</summary>
    public int ActiveConcurrency { get; set; }
    public double PercentComplete { get; set; }
    public TimeSpan? EstimatedTimeRemaining { get; set; }
    public bool ListingComplete { get; set; }
    // A Verify's findings (zero for other kinds): every checked key is matching, missing, mismatched or extra.
    /// <summary>Verify: keys decided so far (matching, missing, mismatched, extra, or failed to check).</summary>
    public long CheckedObjects { get; set; }
    public long MatchingObjects { get; set; }
    public long MissingObjects { get; set; }
    public long MismatchedObjects { get; set; }
    /// <summary>Verify: keys only the target holds, within the job's scope.</summary>
    public long ExtraObjects { get; set; }
    /// <summary>The runners of the job, one per worker process that takes part (the lead and those that joined it), newest heartbeat first.</summary>
    public JobWorkerProgress[] Workers { get; set; } = [];

    public override string ToString() =>
        $"{Name}: {State}, {PercentComplete:0.#} % ({ByteSize.Format(TransferredBytes)} of {ByteSize.Format(TotalBytes)})";
}

public sealed class MigrationJobLogEntry
{
    /// <summary>Position in the job's log: increasing, so a reader can continue where it stopped.</summary>
    public long Sequence { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public Guid JobId { get; set; }
    public LogType Type { get; set; }
    /// <summary>The name of <see cref="Type"/>, for ConvertTo-Json (which writes enums as numbers).</summary>
    public string TypeName => Type.ToString();
    public string? ObjectKey { get; set; }
    public string Message { get; set; } = "";

    public override string ToString() => ObjectKey is null ? $"{Type}: {Message}" : $"{Type} {ObjectKey}: {Message}";
}

/// <summary>How a job names a place: connector/bucket/prefix, as typed at the prompt.</summary>
public static class Location
{
    public static string Of(string connector, string bucket, string? prefix) =>
        string.IsNullOrEmpty(prefix) ? $"{connector}/{bucket}" : $"{connector}/{bucket}/{prefix}";
}

/// <summary>Sizes as people read them: 1024-based units with one decimal (109.4 MiB), whole bytes below 1 KiB.</summary>
public static class ByteSize
{
    private static readonly string[] Units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

    public static string Format(long bytes)
    {
        if (Math.Abs(bytes) < 1024) return $"{bytes} B";
        double value = bytes;
        var unit = -1;
        while (Math.Abs(value) >= 1024 && unit < Units.Length - 1) { value /= 1024; unit++; }
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{value:0.0} {Units[unit]}");
    }
}
