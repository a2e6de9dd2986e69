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
    private readonly ConcurrentDictionary<Guid, Job2> _jobs = new();

    public MigrationJobSourceAdapter() => Name = nameof(MigrationJobSourceAdapter);

    /// <summary>Starts tracking a migration job as a PowerShell job; the caller starts it.</summary>
    public static MigrationPSJob Create(PSCmdlet cmdlet, Guid migrationJobId, string name)
    {
        var definition = new JobDefinition(typeof(MigrationJobSourceAdapter), $"MigrationJob {migrationJobId}", name);
        var parameters = new Dictionary<string, object> { [MigrationJobIdParameter] = migrationJobId };
        return (MigrationPSJob)cmdlet.JobManager.NewJob(new JobInvocationInfo(definition, parameters));
    }

    public override Job2 NewJob(JobInvocationInfo specification)
    {
        var id = (Guid)specification.Parameters[0][0].Value;
        var engine = MigrationEngine.Open();
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
        if (removed.JobStateInfo.State is JobState.Running or JobState.NotStarted) removed.StopJob();
    }
}
