using System.Management.Automation;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.State.Postgres;
using ObjectMigration.Engine.Storage;

using JobState = ObjectMigration.Engine.Model.JobState;

namespace ObjectMigration.Commands;

/// <summary>What every cmdlet shares: the engine, a cancellation token tied to Ctrl+C, and the one error mapping.</summary>
public abstract class ObjectMigrationCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>
    /// The state store to use instead of OBJECTMIGRATION_STATE or the SQLite database in the state folder: a PostgreSQL
    /// connection string or URI, which worker processes on many hosts share, or the path of a SQLite file.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? StateStore { get; set; }

    private MigrationEngine? _engine;

    /// <summary>A -StateStore given is opened first, so a bad one is said before anything else happens (even by a cmdlet that needs no state).</summary>
    protected override void BeginProcessing()
    {
        if (StateStore is not null) _ = Engine;
    }

    protected MigrationEngine Engine
    {
        get
        {
            if (_engine is not null) return _engine;
            try
            {
                return _engine = MigrationEngine.Open(stateStore: StateStore);
            }
            catch (ArgumentException e)
            {
                // The store's own message names -StateStore and OBJECTMIGRATION_STATE and never repeats a password.
                ThrowTerminatingError(ToErrorRecord(new ArgumentException(e.Message, nameof(StateStore)), null));
                throw;
            }
            catch (StateStoreUnavailableException e)
            {
                ThrowTerminatingError(ToErrorRecord(e, null));
                throw;
            }
        }
    }

    /// <summary>Cancelled by Ctrl+C (StopProcessing): passed down to every HTTP call.</summary>
    protected CancellationToken Cancellation => _stopping.Token;

    protected override void StopProcessing() => _stopping.Cancel();

    protected override void EndProcessing() => _stopping.Dispose();

    /// <summary>Runs engine async work on the pipeline thread without blocking a pool thread on .Result.</summary>
    protected static T Await<T>(Task<T> task) => task.GetAwaiter().GetResult();

    protected static void Await(Task task) => task.GetAwaiter().GetResult();

    /// <summary>The one place where engine failures become ErrorRecords with stable ids and categories.</summary>
    protected static ErrorRecord ToErrorRecord(Exception e, object? target)
    {
        var (id, category) = e switch
        {
            ConnectorDefinitionException a => ($"InvalidArgument,{a.ParamName}", ErrorCategory.InvalidArgument),
            ConnectorNotFoundException n => ($"ConnectorNotFound,{n.ParamName}", ErrorCategory.ObjectNotFound),
            JobCheckException c => ($"{c.Kind},{c.ParamName}", c.Kind switch
            {
                "BucketNotFound" => ErrorCategory.ObjectNotFound,
                "AccessDenied" => ErrorCategory.PermissionDenied,
                "AuthenticationError" => ErrorCategory.AuthenticationError,
                "ConnectionError" => ErrorCategory.ConnectionError,
                _ => ErrorCategory.InvalidResult,
            }),
            ArgumentException a => ($"InvalidArgument,{a.ParamName}", ErrorCategory.InvalidArgument),
            DuplicateNameException => ("NameAlreadyExists", ErrorCategory.ResourceExists),
            StateNotPrivateException => ("StateNotPrivate", ErrorCategory.SecurityError),
            StateStoreUnavailableException => ("StateStoreUnavailable", ErrorCategory.ConnectionError),
            ReportFileExistsException => ("ReportFileExists,Path", ErrorCategory.ResourceExists),
            KeyNotFoundException => ("NotFound", ErrorCategory.ObjectNotFound),
            JobStateException => ("InvalidJobState", ErrorCategory.InvalidOperation),
            StorageException s => s.ErrorClass switch
            {
                ErrorClass.Authentication => ("AuthenticationError", ErrorCategory.AuthenticationError),
                ErrorClass.AccessDenied => ("AccessDenied", ErrorCategory.PermissionDenied),
                ErrorClass.Connection => ("ConnectionError", ErrorCategory.ConnectionError),
                ErrorClass.Timeout => ("Timeout", ErrorCategory.OperationTimeout),
                ErrorClass.BucketNotFound => ("BucketNotFound", ErrorCategory.ObjectNotFound),
                _ => ("StorageError", ErrorCategory.InvalidResult),
            },
            StateFolderFullException => ("StateFolderFull", ErrorCategory.WriteError),
            OperationCanceledException => ("Cancelled", ErrorCategory.OperationStopped),
            _ => ("UnexpectedError", ErrorCategory.NotSpecified),
        };
        // Storage exceptions carry SDK exceptions inside; only our message (which never holds a secret) goes out.
        var exception = e is StorageException ? new InvalidOperationException(e.Message) : e;
        var record = new ErrorRecord(exception, id, category, target);
        // .NET ends an argument's message with " (Parameter 'Name')": the message names the parameter already, and the
        // error id carries it for scripts, so what a person reads ends with the fix.
        if (e is ArgumentException { ParamName: { } name } && e.Message.EndsWith($" (Parameter '{name}')", StringComparison.Ordinal))
        {
            record.ErrorDetails = new ErrorDetails(e.Message[..^$" (Parameter '{name}')".Length]);
        }
        return record;
    }

    protected void WriteFailure(Exception e, object? target) => WriteError(ToErrorRecord(e, target));

    /// <summary>The one message for a command given both ways of running a job.</summary>
    protected static ArgumentException DetachedWithAsJob() =>
        new("-Detached hands the job to a worker process, -AsJob runs it in this session as a PowerShell job: use one of them.", "Detached");

    /// <summary>
    /// Runs a Pending job and writes what the caller asked for: handed to a worker (<paramref name="detached"/>), or in
    /// this session as its PowerShell job (returned with <paramref name="asJob"/>); the job as it is now, or, with
    /// <paramref name="wait"/>, once it has settled. The job's detached flag already says the same (set with its state).
    /// </summary>
    protected void RunAndWrite(MigrationJob job, bool detached, bool asJob, bool wait)
    {
        WaitHandle? finished = null;
        if (detached)
        {
            HandToWorker(job);
        }
        else
        {
            var psJob = Jobs.MigrationJobSourceAdapter.Start(this, job.Id, job.Name, Engine.StateStoreSpec);
            if (asJob)
            {
                WriteObject(psJob);
                return;
            }
            finished = psJob.Finished;
        }
        WriteObject(wait ? JobWaiter.WaitFor(this, Engine, job.Id, null, showProgress: true, Cancellation, finished) : Engine.GetJob(job.Id));
    }

    /// <summary>
    /// Makes sure a worker takes a Pending job handed to workers: a running worker (it looks every half second), else a
    /// new one. A worker that was just leaving when it was chosen may not take it: then another is started. The job
    /// stays handed over even if no worker can be started; the error then says how to run one.
    /// </summary>
    private void HandToWorker(MigrationJob job)
    {
        for (var attempt = 1; ; attempt++)
        {
            MigrationWorker worker;
            bool started;
            try
            {
                worker = Workers.WorkerLauncher.EnsureWorker(Engine, ModuleManifestPath(), Cancellation, out started);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new InvalidOperationException($"Migration job '{job.Name}' waits for a worker, but none could be started: {e.Message} " +
                    "Start one with Start-MigrationWorker (it takes the job), or run the job here with Resume-MigrationJob.", e);
            }
            WriteVerbose(started
                ? $"Started migration worker {worker.ComputerName}:{worker.ProcessId} for job '{job.Name}'; its log: {worker.LogPath}"
                : $"Migration worker {worker.ComputerName}:{worker.ProcessId} takes job '{job.Name}'.");
            if (started) return;
            if (worker.Jobs.Length >= worker.MaxJobs)
            {
                WriteWarning($"The migration worker {worker.ComputerName}:{worker.ProcessId} runs {worker.Jobs.Length} job(s), its -MaxJobs: " +
                    $"job '{job.Name}' waits Pending until one of them ends.");
                return;
            }
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(3);
            while (Engine.GetJob(job.Id).State == JobState.Pending && DateTime.UtcNow < deadline && !Cancellation.WaitHandle.WaitOne(50)) { }
            if (Engine.GetJob(job.Id).State != JobState.Pending || attempt == 3) return;
            if (Engine.GetWorkers().Any(w => w.Id == worker.Id && w.State == WorkerState.Running)) return;
        }
    }

    /// <summary>The manifest of this module, which a worker process imports.</summary>
    private string ModuleManifestPath()
    {
        var folder = MyInvocation.MyCommand.Module?.ModuleBase ?? Path.GetDirectoryName(typeof(ObjectMigrationCmdlet).Assembly.Location)!;
        var manifest = Path.Combine(folder, "ObjectMigration.psd1");
        return File.Exists(manifest) ? manifest : folder;
    }

    /// <summary>
    /// The credential source chosen by -Credential, -ProfileName [-ProfileLocation], -UseEnvironmentCredentials or
    /// -UseInstanceRole (parameter sets keep it to one). None of them is an error that names all four.
    /// </summary>
    protected ConnectorCredential CredentialFrom(PSCredential? credential, string? profileName, string? profileLocation, bool useEnvironment, bool useInstanceRole)
    {
        if (credential is not null && credential != PSCredential.Empty) return ConnectorCredential.Stored(credential.UserName, credential.GetNetworkCredential().Password);
        if (!string.IsNullOrEmpty(profileName))
        {
            // Relative to PowerShell's current location, which the process's working folder need not be.
            var location = string.IsNullOrEmpty(profileLocation) ? null : SessionState.Path.GetUnresolvedProviderPathFromPSPath(profileLocation);
            return ConnectorCredential.Profile(profileName, location);
        }
        if (useEnvironment) return ConnectorCredential.Environment;
        if (useInstanceRole) return ConnectorCredential.InstanceRole;
        throw new ConnectorDefinitionException("Credential",
            "No credential source was given: pass -Credential (user name = access key id, password = secret), -ProfileName [-ProfileLocation] (an AWS profile), " +
            "-UseEnvironmentCredentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or -UseInstanceRole (container or EC2 instance role).");
    }
}
