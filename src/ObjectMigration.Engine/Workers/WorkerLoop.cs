using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;

namespace ObjectMigration.Engine.Workers;

public sealed class WorkerOptions
{
    public const int DefaultMaxJobs = 4;

    /// <summary>How many jobs run at once at most.</summary>
    public int MaxJobs { get; init; } = DefaultMaxJobs;
    /// <summary>The most transfers one job runs at once here; null: each job's own -Concurrency.</summary>
    public int? Concurrency { get; init; }
    /// <summary>Exit after this long with nothing to run; null: stay until stopped.</summary>
    public TimeSpan? IdleExit { get; init; }
    /// <summary>How often the worker looks for jobs and says it is alive.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>Where the worker's output goes, shown by Get-MigrationWorker (a worker -Detached started).</summary>
    public string? LogPath { get; init; }
}

/// <summary>Why a worker ended: nothing to do for -IdleExit, Stop-MigrationWorker, or its process is shutting down.</summary>
public enum WorkerExitReason { Idle, StopRequested, Shutdown }

/// <summary>
/// The worker process's loop: registers the worker, takes jobs handed to workers (Pending, or Interrupted by a worker
/// that died) up to MaxJobs, runs them in this process, and ends them cleanly. Stop-MigrationWorker pauses its jobs
/// (a person resumes them); a shutdown (Ctrl+C, SIGTERM of a service) leaves them Interrupted, so the next worker
/// continues them by itself.
/// </summary>
public sealed class WorkerLoop
{
    private readonly MigrationEngine _engine;
    private readonly WorkerOptions _options;
    private readonly Dictionary<Guid, Task<JobState>> _runs = [];
    /// <summary>Runs of jobs another worker leads, joined to copy batches beside it; cancelling one makes it leave.</summary>
    private readonly Dictionary<Guid, (Task<JobState> Run, CancellationTokenSource Leave)> _joined = [];

    /// <summary>What the worker does, one line each, for its log.</summary>
    public event Action<string>? Message;

    public MigrationWorker Worker { get; }

    public WorkerLoop(MigrationEngine engine, WorkerOptions options)
    {
        if (options.MaxJobs < 1) throw new ArgumentException("-MaxJobs must be at least 1.", "MaxJobs");
        if (options.Concurrency is < 1 or > Model.TransferOptions.MaxConcurrency)
        {
            throw new ArgumentException($"-Concurrency is out of range: use 1 to {Model.TransferOptions.MaxConcurrency}.", "Concurrency");
        }
        if (options.IdleExit is { } idle && idle < TimeSpan.Zero) throw new ArgumentException("-IdleExit cannot be negative: give seconds or a TimeSpan, e.g. -IdleExit 300.", "IdleExit");
        _engine = engine;
        _options = options;
        Worker = new MigrationWorker
        {
            Id = Guid.NewGuid(),
            ComputerName = Environment.MachineName,
            ProcessId = Environment.ProcessId,
            UserName = Environment.UserName,
            RunnerPrefix = RunnerOptions.DefaultRunnerId,
            MaxJobs = options.MaxJobs,
            Concurrency = options.Concurrency,
            IdleExit = options.IdleExit,
            LogPath = options.LogPath,
        };
    }

    private void Say(string message) => Message?.Invoke(message);

    /// <summary>Runs until idle for IdleExit, asked to stop, or <paramref name="shutdown"/> is cancelled; then ends its jobs cleanly.</summary>
    public async Task<WorkerExitReason> RunAsync(CancellationToken shutdown)
    {
        _engine.CheckSecretsReadable();
        Worker.StartedAt = DateTimeOffset.UtcNow;
        _engine.Store.AddWorker(Worker);
        Say($"Worker {Worker.ComputerName}:{Worker.ProcessId} started on {_engine.Store.Location}: up to {_options.MaxJobs} job(s) at once" +
            (_options.IdleExit is { } idle ? $", exits after {idle} with nothing to do." : ", stays until stopped."));
        var reason = WorkerExitReason.Shutdown;
        try
        {
            reason = await TakeAndRunJobsAsync(shutdown).ConfigureAwait(false);
        }
        finally
        {
            // Also after an unexpected error: the jobs it runs end at a checkpoint, never abandoned mid-run.
            if (reason != WorkerExitReason.Idle) _engine.Store.RequestWorkerStop(Worker.Id);
            await EndRunsAsync(reason).ConfigureAwait(false);
            _engine.Store.RemoveWorker(Worker.Id);
        }
        Say(reason switch
        {
            WorkerExitReason.Idle => $"Nothing to do for {_options.IdleExit}: the worker exits.",
            WorkerExitReason.StopRequested => "Stopped on request (Stop-MigrationWorker).",
            _ => "The worker shut down.",
        });
        return reason;
    }

    private IEnumerable<Task> AllRuns => _runs.Values.Concat(_joined.Values.Select(j => (Task)j.Run));

    private async Task<WorkerExitReason> TakeAndRunJobsAsync(CancellationToken shutdown)
    {
        var idleSince = DateTime.UtcNow;
        string? lastProblem = null;
        while (true)
        {
            try
            {
                ReapFinishedRuns();
                if (shutdown.IsCancellationRequested) return WorkerExitReason.Shutdown;
                var signal = _engine.Store.WorkerHeartbeat(Worker.Id);
                if (signal == WorkerSignal.Stop) return WorkerExitReason.StopRequested;
                // Removed as stale while this process was frozen (a suspended VM): it is alive, so it says so again.
                if (signal == WorkerSignal.Gone) _engine.Store.AddWorker(Worker);
                TakeJobs();
                if (_runs.Count + _joined.Count > 0) idleSince = DateTime.UtcNow;
                else if (_options.IdleExit is { } idleExit && DateTime.UtcNow - idleSince >= idleExit && LeaveIfStillIdle()) return WorkerExitReason.Idle;
                lastProblem = null;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The store was locked or briefly unreachable: said once, tried again at the next poll.
                if (e.Message != lastProblem) Say($"Could not reach the state store ({e.GetType().Name}: {e.Message}); trying again.");
                lastProblem = e.Message;
            }
            await WaitAsync(_options.PollInterval, shutdown).ConfigureAwait(false);
        }
    }

    private void TakeJobs()
    {
        if (_runs.Count + _joined.Count >= _options.MaxJobs) return;
        foreach (var id in _engine.TakeDetachedJobs(_options.MaxJobs - _runs.Count - _joined.Count, _runs.Keys)) _runs[id] = RunOneAsync(id);
        if (_runs.Count + _joined.Count >= _options.MaxJobs) return;
        // Room left: help with jobs other workers lead that have batches nobody holds (one job, many processes).
        var busy = _runs.Keys.Concat(_joined.Keys).ToHashSet();
        foreach (var id in _engine.Store.GetJoinableJobs(_options.MaxJobs + busy.Count, StaleTime.Heartbeat).Where(id => !busy.Contains(id)).Take(_options.MaxJobs - _runs.Count - _joined.Count))
        {
            var leave = new CancellationTokenSource();
            _joined[id] = (JoinOneAsync(id, leave.Token), leave);
        }
    }

    private async Task<JobState> JoinOneAsync(Guid id, CancellationToken leave)
    {
        await Task.Yield();
        try
        {
            var name = _engine.GetJob(id).Name;
            var joined = false;
            var options = new RunnerOptions
            {
                Join = true,
                Started = () =>
                {
                    joined = true;
                    Say($"Joined job '{name}' ({id}): listing and copying beside the worker that leads it.");
                },
            };
            var state = await _engine.RunJobAsync(id, options, leave, _options.Concurrency).ConfigureAwait(false);
            if (joined) Say($"Left job '{name}' ({id}): nothing of it is left for this worker now (the job is {state}).");
            return state;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Say($"Could not join job {id}: {e.Message}");
            return JobState.Failed;
        }
    }

    /// <summary>
    /// Leaves the worker list first and then looks for jobs once more: a session that saw this worker alive handed its
    /// job over before it looked, so the job is seen here; one that looks later finds no worker and starts one.
    /// </summary>
    private bool LeaveIfStillIdle()
    {
        _engine.Store.RemoveWorker(Worker.Id);
        TakeJobs();
        if (_runs.Count + _joined.Count == 0) return true;
        _engine.Store.AddWorker(Worker);
        return false;
    }

    /// <summary>Sleeps one poll interval, waking early when a run ends (its slot is free) or the process shuts down.</summary>
    private async Task WaitAsync(TimeSpan interval, CancellationToken shutdown)
    {
        var tick = Task.Delay(interval, shutdown);
        await Task.WhenAny(AllRuns.Append(tick)).ConfigureAwait(false);
    }

    private async Task<JobState> RunOneAsync(Guid id)
    {
        // Off the loop's thread: the run's synchronous start (opening stores, the first store calls) must not hold up
        // the heartbeat of the worker.
        await Task.Yield();
        var name = id.ToString();
        try
        {
            name = _engine.GetJob(id).Name;
            var options = new RunnerOptions { Started = () => Say($"Running job '{name}' ({id}).") };
            // No token: cancelling a run means Stop to the runner. A worker that ends asks its runs to pause, through the store.
            return await _engine.RunJobAsync(id, options, CancellationToken.None, _options.Concurrency).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Say($"Job '{name}' ({id}) could not run: {e.Message}");
            return JobState.Failed;
        }
    }

    private void ReapFinishedRuns()
    {
        foreach (var (id, joined) in _joined.Where(r => r.Value.Run.IsCompleted).ToList())
        {
            _joined.Remove(id);
            joined.Leave.Dispose();
        }
        foreach (var (id, run) in _runs.Where(r => r.Value.IsCompleted).ToList())
        {
            _runs.Remove(id);
            var job = _engine.Store.FindJob(id);
            // A run that found the job taken by another worker (a race for the same Pending job) has nothing to say.
            if (job is null || job.Runner?.StartsWith(Worker.RunnerPrefix + "#", StringComparison.Ordinal) != true) continue;
            if (job.State == JobState.Running) continue;
            Say($"Job '{job.Name}' ({id}) is {job.State}" + (job.Error is { } error ? $": {error}" : "."));
        }
    }

    /// <summary>
    /// Ends the jobs this worker runs and waits for them to settle, keeping its heartbeat: after Stop-MigrationWorker
    /// they pause (a person resumes them); after a shutdown they stop at a checkpoint as Interrupted, so the next
    /// worker continues them. A pause or stop someone asked for first wins.
    /// </summary>
    private async Task EndRunsAsync(WorkerExitReason reason)
    {
        // Joined runs leave: the job goes on with its lead and the other workers.
        foreach (var joined in _joined.Values) joined.Leave.Cancel();
        if (_runs.Count == 0)
        {
            await Task.WhenAll(_joined.Values.Select(j => j.Run)).ConfigureAwait(false);
            ReapFinishedRuns();
            return;
        }
        var shutdown = reason == WorkerExitReason.Shutdown;
        Say(shutdown
            ? $"Interrupting {_runs.Count} job(s) at a checkpoint before the worker exits; the next worker continues them."
            : $"Pausing {_runs.Count} job(s) before the worker exits.");
        foreach (var id in _runs.Keys)
        {
            try
            {
                if (shutdown) _engine.RequestInterrupt(id);
                else _engine.RequestPause(id);
            }
            catch (JobStateException) { /* it settled meanwhile */ }
            catch (KeyNotFoundException) { /* removed meanwhile */ }
        }
        var all = Task.WhenAll(AllRuns);
        while (!all.IsCompleted)
        {
            try { _engine.Store.WorkerHeartbeat(Worker.Id); }
            catch (Exception e) when (e is not OperationCanceledException) { /* the runs settle regardless; the row goes at the end */ }
            await Task.WhenAny(all, Task.Delay(_options.PollInterval)).ConfigureAwait(false);
        }
        ReapFinishedRuns();
    }
}
