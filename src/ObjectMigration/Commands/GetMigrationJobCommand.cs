using System.Management.Automation;
using ObjectMigration.Engine.Model;

using JobState = ObjectMigration.Engine.Model.JobState;

namespace ObjectMigration.Commands;

[Cmdlet(VerbsCommon.Get, "MigrationJob", SupportsPaging = true, DefaultParameterSetName = "ByName")]
[OutputType(typeof(MigrationJob))]
public sealed class GetMigrationJobCommand : ObjectMigrationCmdlet
{
    [Parameter(Position = 0, Mandatory = true, ParameterSetName = "ById", ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(Completers.JobIdCompleter))]
    [GuidText("migration job id", "Get-MigrationJob")]
    public Guid[] Id { get; set; } = [];

    [Parameter(ParameterSetName = "ByName")]
    [SupportsWildcards]
    [NoEmptyPattern]
    [ArgumentCompleter(typeof(Completers.JobNameCompleter))]
    public string[] Name { get; set; } = ["*"];

    [Parameter(ParameterSetName = "ByName")]
    public JobState[]? State { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == "ById")
        {
            foreach (var id in Id)
            {
                try { WriteObject(Engine.GetJob(id)); }
                catch (KeyNotFoundException e) { WriteFailure(e, id); }
            }
            return;
        }
        var patterns = Name.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();
        var jobs = Engine.GetJobs().Where(j => patterns.Any(p => p.IsMatch(j.Name)) && (State is not { Length: > 0 } || State.Contains(j.State))).ToList();
        if (PagingParameters.IncludeTotalCount) WriteObject(PagingParameters.NewTotalCount((ulong)jobs.Count, 1.0));
        foreach (var job in jobs.Skip((int)Math.Min(int.MaxValue, PagingParameters.Skip)).Take((int)Math.Min(int.MaxValue, PagingParameters.First)))
        {
            WriteObject(job);
        }
    }
}
