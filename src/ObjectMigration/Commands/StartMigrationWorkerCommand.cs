using System.Collections.Concurrent;
using System.Management.Automation;
using System.Runtime.InteropServices;
using ObjectMigration.Engine.Workers;
using ObjectMigration.Workers;

namespace ObjectMigration.Commands;

/// <summary>
/// Runs a migration worker in the foreground: it takes the jobs handed to workers (New-MigrationJob -Detached, or
/// Interrupted when their worker died), runs up to -MaxJobs at once, and exits after -IdleExit with nothing to do (by
/// default it stays). What a systemd unit, a scheduled task or a container runs. Ctrl+C or SIGTERM ends it cleanly:
/// its jobs stop at a checkpoint and the next worker continues them.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "MigrationWorker")]
public sealed class StartMigrationWorkerCommand : ObjectMigrationCmdlet
{
    /// <summary>The most transfers one job runs at once on this worker (default: each job's own -Concurrency).</summary>
    [Parameter] [ValidateRange(1, ObjectMigration.Engine.Model.TransferOptions.MaxConcurrency)] public int? Concurrency { get; set; }

    /// <summary>How many jobs run at once at most.</summary>
    [Parameter] [ValidateRange(1, 64)] public int MaxJobs { get; set; } = WorkerOptions.DefaultMaxJobs;

    /// <summary>Exit after this long with nothing to run: seconds or a TimeSpan. Without it the worker stays until stopped.</summary>
    [Parameter] [Seconds] public TimeSpan? IdleExit { get; set; }

    /// <summary>setsid(2): fails harmlessly (EPERM) when the process already leads a session.</summary>
    [DllImport("libc", EntryPoint = "setsid", SetLastError = true)]
    private static extern int LeaveTerminalSession();

    protected override void ProcessRecord()
    {
        var logPath = Environment.GetEnvironmentVariable(WorkerLauncher.LogVariable);
        WorkerLoop loop;
        try
        {
            loop = new WorkerLoop(Engine, new WorkerOptions { MaxJobs = MaxJobs, Concurrency = Concurrency, IdleExit = IdleExit, LogPath = logPath });
        }
        catch (ArgumentException e)
        {
            ThrowTerminatingError(ToErrorRecord(e, null));
            return;
        }
        using var messages = new BlockingCollection<string>();
        loop.Message += message =>
        {
            try { messages.Add($"{DateTime.Now:yyyy-MM-dd HH:mm:ss} {message}"); }
            catch (InvalidOperationException) { /* the loop has ended */ }
        };
        using var shutdown = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);
        using var terminate = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            // A service manager's stop: end cleanly instead of dying mid-write.
            context.Cancel = true;
            shutdown.Cancel();
        });
        // Started by -Detached: a session of its own (where the setsid tool was missing it had none yet), and a
        // hang-up meant for the terminal that started it is not for it.
        var detached = !OperatingSystem.IsWindows() && logPath is not null;
        if (detached) _ = LeaveTerminalSession();
        using var hangUp = detached ? PosixSignalRegistration.Create(PosixSignal.SIGHUP, context => context.Cancel = true) : null;
        var run = Task.Run(() => loop.RunAsync(shutdown.Token));
        _ = run.ContinueWith(_ => messages.CompleteAdding(), TaskScheduler.Default);
        var canWrite = true;
        foreach (var message in messages.GetConsumingEnumerable())
        {
            if (!canWrite) continue;
            try
            {
                WriteInformation(new HostInformationMessage { Message = message }, ["PSHOST"]);
            }
            catch (PipelineStoppedException)
            {
                // Ctrl+C: the worker is ending its jobs; nothing more can be written, but it must finish that first.
                canWrite = false;
            }
        }
        try
        {
            Await(run);
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            ThrowTerminatingError(ToErrorRecord(e, null));
        }
    }
}
