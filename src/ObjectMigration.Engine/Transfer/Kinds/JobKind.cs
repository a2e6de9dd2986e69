using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Scheduling;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer.Kinds;

/// <summary>
/// What one kind of job does with the shared pipeline (list both sides into the store, merge them per key, decide, act,
/// record): which sides it lists, how it decides an object from the stored listings, and what a worker does with the
/// objects that need I/O. The lease, control loop, scheduling and settling are the pipeline's (<see cref="MigrationRunner"/>).
/// </summary>
internal abstract class JobKind(RunContext run)
{
    public static JobKind For(RunContext run) => run.Job.Type switch
    {
        JobType.Verify => new VerifyKind(run),
        JobType.Inventory => new InventoryKind(run),
        JobType.Migrate => new MigrateKind(run),
        JobType.Update => new UpdateKind(run),
        // A new job type gets its own kind: never run as a copy by default.
        _ => throw new NotSupportedException($"Job type {run.Job.Type} has no kind to run it."),
    };

    protected RunContext Run { get; } = run;
    protected MigrationJob Job => Run.Job;
    protected IObjectStore Source => Run.Source;
    protected IObjectStore Target => Run.Target;
    protected IStateStore Store => Run.Store;
    protected RunnerOptions Options => Run.Options;
    protected ObjectSelector Selector => Run.Selector;
    protected JobCounters Counters => Run.Counters;
    protected WorkQueue Queue => Run.Queue;
    protected BandwidthLimiter? Limiter => Run.Limiter;

    /// <summary>Whether the job has a target bucket at all (checked before the run, listed if <see cref="ListsTarget"/>).</summary>
    public virtual bool UsesTarget => true;

    /// <summary>Whether the target is listed into the store before the source, so decisions can see what it holds.</summary>
    public abstract bool ListsTarget { get; }

    /// <summary>The phase the job shows once listing has started the work.</summary>
    public abstract JobPhase WorkPhase { get; }

    /// <summary>The outcome decided from the stored listings alone, or null: the object goes to a worker (<see cref="ActAsync"/>).</summary>
    public abstract ObjectResult? Decide(PendingObject o);

    /// <summary>Handles one queued item; every object handed over ends in Run.Finish, Run.Fail or Run.Abandon.</summary>
    public abstract Task ActAsync(WorkItem item, CancellationToken ct);

    /// <summary>Runs once the source listing is complete, as part of listing: adds rows to the plan that only now can be known.</summary>
    public virtual Task AfterSourceListedAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>
    /// For a dry run: what acting on an object <see cref="Decide"/> left open would find out before any write, read-only
    /// (a HEAD), or null when it would go on to act. Keeps the plan equal to the run where a decision waits for the act.
    /// </summary>
    public virtual Task<ObjectResult?> PlanCheckAsync(PendingObject o, CancellationToken ct) => Task.FromResult<ObjectResult?>(null);

    /// <summary>What a dry run calls the objects this kind would act on (rather than decide from the listings).</summary>
    public virtual PlannedAction PlannedAction => PlannedAction.Transfer;

    /// <summary>The sentence the job's MigrationComplete entry ends with.</summary>
    public abstract string Summary(MigrationJobProgress progress);
}
