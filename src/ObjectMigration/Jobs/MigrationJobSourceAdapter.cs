using System.Collections.Concurrent;
using System.Management.Automation;
using ObjectMigration.Engine;

namespace ObjectMigration.Jobs;

/// <summary>
/// Creates and tracks this session's migration PowerShell jobs for the JobManager, which is how Get-Job,
/// Stop-Job, Suspend-Job, Resume-Job, Receive-Job and Remove-Job find them.
/// </summary>
public sealed class MigrationJobSourceAdapter : JobSourceAdapter
{
    public const string MigrationJobIdParameter = "MigrationJobId";
    /// <summary>The state store the job is in (-StateStore), when not the default one.</summary>
    public const string StateStoreParameter = "StateStore";
    private readonly ConcurrentDictionary<Guid, Job2> _jobs = new();

    public MigrationJobSourceAdapter() => Name = nameof(MigrationJobSourceAdapter);

    /// <summary>This process's PowerShell jobs by session (runspace) and migration job: one each, reused on resume.</summary>
    private static readonly ConcurrentDictionary<(Guid Session, Guid MigrationJob), MigrationPSJob> s_sessionJobs = new();

    private static Guid SessionId => System.Management.Automation.Runspaces.Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty;

    /// <summary>
    /// Runs a migration job in this session as its PowerShell job: the one the session already has for it (a resume
    /// starts it again, so Get-Job keeps one entry per migration job), else a new one.
    /// </summary>
    public static MigrationPSJob Start(PSCmdlet cmdlet, Guid migrationJobId, string name, string? stateStore = null)
    {
        if (s_sessionJobs.TryGetValue((SessionId, migrationJobId), out var existing))
        {
            // Restarted, or already the one about to run it (a re-run of New-MigrationJob right after it was started).
            if (existing.TryRestart() || existing.IsAboutToRun) return existing;
        }
        var job = Create(cmdlet, migrationJobId, name, stateStore);
        s_sessionJobs[(SessionId, migrationJobId)] = job;
        job.StartJob();
        return job;
    }

    /// <summary>The session's PowerShell job for a migration job, if it has one.</summary>
    public static MigrationPSJob? Find(Guid migrationJobId) => s_sessionJobs.TryGetValue((SessionId, migrationJobId), out var job) ? job : null;

    /// <summary>Starts tracking a migration job as a PowerShell job; the caller starts it.</summary>
    private static MigrationPSJob Create(PSCmdlet cmdlet, Guid migrationJobId, string name, string? stateStore)
    {
        var definition = new JobDefinition(typeof(MigrationJobSourceAdapter), $"MigrationJob {migrationJobId}", name);
        var parameters = new Dictionary<string, object> { [MigrationJobIdParameter] = migrationJobId, [StateStoreParameter] = stateStore ?? "" };
        return (MigrationPSJob)cmdlet.JobManager.NewJob(new JobInvocationInfo(definition, parameters));
    }

    public override Job2 NewJob(JobInvocationInfo specification)
    {
        var given = specification.Parameters[0];
        var id = (Guid)given.First(p => p.Name == MigrationJobIdParameter).Value;
        var engine = MigrationEngine.Open(stateStore: given.FirstOrDefault(p => p.Name == StateStoreParameter)?.Value as string);
        var job = new MigrationPSJob(engine, engine.GetJob(id));
        _jobs[job.InstanceId] = job;
        return job;
    }

    public override IList<Job2> GetJobs() => _jobs.Values.ToList();

    public override IList<Job2> GetJobsByName(string name, bool recurse)
    {
        var pattern = new WildcardPattern(name, WildcardOptions.IgnoreCase);
        return _jobs.Values.Where(j => pattern.IsMatch(j.Name)).ToList();
    }

    public override IList<Job2> GetJobsByCommand(string command, bool recurse)
    {
        var pattern = new WildcardPattern(command, WildcardOptions.IgnoreCase);
        return _jobs.Values.Where(j => pattern.IsMatch(j.Command)).ToList();
    }

    public override Job2? GetJobByInstanceId(Guid instanceId, bool recurse) => _jobs.TryGetValue(instanceId, out var job) ? job : null;

    public override Job2? GetJobBySessionId(int id, bool recurse) => _jobs.Values.FirstOrDefault(j => j.Id == id);

    public override IList<Job2> GetJobsByState(JobState state, bool recurse) => _jobs.Values.Where(j => j.JobStateInfo.State == state).ToList();

    public override IList<Job2> GetJobsByFilter(Dictionary<string, object> filter, bool recurse) =>
        throw new PSNotSupportedException("Migration jobs are found by name, id, command or state.");

    /// <summary>Forgets the PowerShell job; Remove-Job -Force stops a running one first. The migration job stays in the store.</summary>
    public override void RemoveJob(Job2 job)
    {
        if (!_jobs.TryRemove(job.InstanceId, out var removed)) return;
        foreach (var entry in s_sessionJobs.Where(e => ReferenceEquals(e.Value, removed)).ToList()) s_sessionJobs.TryRemove(entry.Key, out _);
        if (removed.JobStateInfo.State is JobState.Running or JobState.NotStarted) removed.StopJob();
    }
}
