namespace ObjectMigration.Engine.Model;

/// <summary>A worker is taking jobs, or finishing the ones it holds before it exits (Stop-MigrationWorker, shutdown).</summary>
public enum WorkerState { Running, Stopping }

/// <summary>
/// A process that runs jobs handed to workers (New-MigrationJob -Detached), as Get-MigrationWorker shows it. Its row
/// in the store lives while the process does; a worker that died is left out (and its row removed) once its process
/// is gone or its heartbeat is stale.
/// </summary>
public sealed class MigrationWorker
{
    public Guid Id { get; set; }
    public string ComputerName { get; set; } = "";
    public int ProcessId { get; set; }
    public string UserName { get; set; } = "";
    public WorkerState State { get; set; }
    /// <summary>The state as its name, for ConvertTo-Json and Export-Csv (which write enums as numbers).</summary>
    public string StateName => State.ToString();
    public DateTimeOffset StartedAt { get; set; }
    public DateTimeOffset LastHeartbeat { get; set; }
    /// <summary>The names of the jobs it runs now.</summary>
    public string[] Jobs { get; set; } = [];
    /// <summary>How many jobs it runs at once at most.</summary>
    public int MaxJobs { get; set; }
    /// <summary>The most transfers one job runs at once on this worker; null: each job's own -Concurrency.</summary>
    public int? Concurrency { get; set; }
    /// <summary>It exits after this long with nothing to do; null: it stays.</summary>
    public TimeSpan? IdleExit { get; set; }
    /// <summary>Where its output goes, for a worker New-MigrationJob -Detached started.</summary>
    public string? LogPath { get; set; }

    /// <summary>The runner id its job runs carry (host:pid), so the store can tell its jobs.</summary>
    internal string RunnerPrefix { get; set; } = "";

    public override string ToString() => $"{ComputerName}:{ProcessId} ({Id})";
}

/// <summary>What a worker's heartbeat found: go on, stop (Stop-MigrationWorker), or its row was removed as stale.</summary>
public enum WorkerSignal { Run, Stop, Gone }

/// <summary>
/// One runner's share of a job that several worker processes run at once (issue 21): the runner that started the job
/// lists it and settles it; the others joined and copy batches of it. Counts are what this runner recorded.
/// </summary>
public sealed class JobWorkerProgress
{
    /// <summary>The runner id: host:pid#run.</summary>
    public string Runner { get; set; } = "";
    public string ComputerName { get; set; } = "";
    public int ProcessId { get; set; }
    /// <summary>Lead: started the run, lists and settles it. Joined: copies batches beside it.</summary>
    public string Role { get; set; } = "";
    public long TransferredObjects { get; set; }
    public long TransferredBytes { get; set; }
    public double BytesPerSecond { get; set; }
    public double ObjectsPerSecond { get; set; }
    public int ActiveConcurrency { get; set; }
    public int HeldBatches { get; set; }
    public DateTimeOffset JoinedAt { get; set; }
    public DateTimeOffset LastHeartbeat { get; set; }
    /// <summary>It left the run (work done, paused, stopped) or its heartbeat is older than the stale time.</summary>
    public bool Active { get; set; }

    public override string ToString() => $"{ComputerName}:{ProcessId} ({Role})";
}

/// <summary>The roles of <see cref="JobWorkerProgress.Role"/>.</summary>
public static class RunnerRoles
{
    public const string Lead = "Lead";
    public const string Joined = "Joined";
}
