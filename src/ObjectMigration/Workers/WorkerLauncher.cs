using System.Diagnostics;
using System.Management.Automation;
using System.Management.Automation.Language;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Workers;

/// <summary>
/// Finds a live worker for jobs handed to workers (-Detached), or starts one: a new PowerShell process with the same
/// module and state folder, no console, detached from this session's terminal, its output appended to a log file in
/// the state folder. It exits after <see cref="IdleExit"/> with nothing to do.
/// </summary>
internal static class WorkerLauncher
{
    public static readonly TimeSpan IdleExit = TimeSpan.FromMinutes(5);
    /// <summary>How long a new worker may take to start (PowerShell, the module) and register.</summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    /// <summary>Worker logs older than this are removed when a new worker starts.</summary>
    private static readonly TimeSpan LogRetention = TimeSpan.FromDays(30);

    /// <summary>Tells a worker where its output goes, and that it was started detached (it then leaves the terminal's session).</summary>
    public const string LogVariable = "OBJECTMIGRATION_WORKER_LOG";

    /// <summary>
    /// A worker that will run the job: a running one (reused), else a new one. Sessions that ask at once take turns
    /// on a lock file, so only one worker starts. <paramref name="started"/> tells whether this call started it.
    /// </summary>
    public static MigrationWorker EnsureWorker(MigrationEngine engine, string moduleManifest, CancellationToken ct, out bool started)
    {
        started = false;
        using var launchLock = AcquireLock(Path.Combine(engine.HomeFolder, "worker-start.lock"), ct);
        if (engine.GetWorkers().FirstOrDefault(w => w.State == WorkerState.Running) is { } running) return running;
        var logPath = NewLogFile(engine.HomeFolder);
        using var process = StartWithStore(StartInfo(engine.HomeFolder, moduleManifest, logPath), engine.StateStoreSpec)
            ?? throw new InvalidOperationException("PowerShell could not be started for a migration worker.");
        started = true;
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (engine.GetWorkers().FirstOrDefault(w => w.State == WorkerState.Running) is { } worker) return worker;
            if (process.WaitForExit(200))
            {
                throw new InvalidOperationException(
                    $"The migration worker exited at start (exit code {process.ExitCode}): {LastLines(logPath)} Its log: {logPath}");
            }
            ct.ThrowIfCancellationRequested();
        }
        throw new TimeoutException($"The migration worker (process {process.Id}) did not start within {StartTimeout.TotalSeconds:0} s. Its log: {logPath}");
    }

    private static FileStream AcquireLock(string path, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            try
            {
                var file = new FileStream(path, StateLocation.PrivateFileOptions(FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
                StateLocation.TightenFile(path);
                return file;
            }
            catch (IOException)
            {
                if (DateTime.UtcNow >= deadline)
                {
                    throw new TimeoutException($"Another session has been starting a migration worker for over {StartTimeout.TotalSeconds:0} s (it holds '{path}'). See Get-MigrationWorker, then try again.");
                }
                // Another session is starting a worker: it will be running when the lock is free.
                ct.WaitHandle.WaitOne(100);
                ct.ThrowIfCancellationRequested();
            }
        }
    }

    /// <summary>A new log file in the state folder's workers/, readable by its owner only; logs past retention go.</summary>
    private static string NewLogFile(string home)
    {
        var folder = StateLocation.PreparePrivateFolder(Path.Combine(home, "workers"));
        foreach (var log in new DirectoryInfo(folder).EnumerateFiles("worker-*.log"))
        {
            try
            {
                if (log.LastWriteTimeUtc < DateTime.UtcNow - LogRetention) log.Delete();
                // Logs an older version wrote readable by others are made private.
                else StateLocation.TightenFile(log.FullName);
            }
            catch (IOException) { /* still open elsewhere: next time */ }
        }
        var path = Path.Combine(folder, $"worker-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("n")[..6]}.log");
        using (new FileStream(path, StateLocation.PrivateFileOptions(FileMode.CreateNew, FileAccess.Write))) { }
        return path;
    }

    private static string Quoted(string text) => "'" + CodeGeneration.EscapeSingleQuotedStringContent(text) + "'";

    /// <summary>
    /// Starts the worker with the session's state store (-StateStore) in its environment, never on its command line,
    /// where other users could read a password. Windows starts it through the shell, which takes this process's
    /// environment: the variable is set for the start and put back.
    /// </summary>
    private static Process? StartWithStore(ProcessStartInfo info, string? stateStore)
    {
        if (stateStore is null) return Process.Start(info);
        if (!info.UseShellExecute)
        {
            info.Environment[StateStores.Variable] = stateStore;
            return Process.Start(info);
        }
        var before = Environment.GetEnvironmentVariable(StateStores.Variable);
        Environment.SetEnvironmentVariable(StateStores.Variable, stateStore);
        try
        {
            return Process.Start(info);
        }
        finally
        {
            Environment.SetEnvironmentVariable(StateStores.Variable, before);
        }
    }

    private static ProcessStartInfo StartInfo(string home, string moduleManifest, string logPath)
    {
        var (pwsh, pwshArguments) = CurrentPowerShell();
        // The state folder and log travel in the command itself, so they hold however the process is started.
        var command = $"$env:{StateLocation.HomeVariable} = {Quoted(home)}; $env:{LogVariable} = {Quoted(logPath)}; " +
                      $"Import-Module -Name {Quoted(moduleManifest)} -ErrorAction Stop; " +
                      $"Start-MigrationWorker -IdleExit {IdleExit.TotalSeconds:0} -ErrorAction Stop";
        string[] options = [.. pwshArguments, "-NoProfile", "-NonInteractive", "-NoLogo"];
        ProcessStartInfo info;
        if (OperatingSystem.IsWindows())
        {
            // Through the shell, hidden: the worker inherits none of this session's handles, so a caller reading this
            // session's output through a pipe is not held open by it. Its output goes to its log from inside PowerShell.
            info = new ProcessStartInfo(pwsh) { UseShellExecute = true, WindowStyle = ProcessWindowStyle.Hidden };
            foreach (var option in options) info.ArgumentList.Add(option);
            info.ArgumentList.Add("-WindowStyle");
            info.ArgumentList.Add("Hidden");
            info.ArgumentList.Add("-Command");
            info.ArgumentList.Add($"& {{ {command} }} *>> {Quoted(logPath)}");
        }
        else
        {
            // A session of its own (setsid; the worker also calls setsid() itself where the tool is missing), so a
            // closed terminal, a dropped SSH session or a Ctrl+C there does not reach it; no terminal for input;
            // everything it prints, PowerShell's own start-up errors included, in its log.
            var setsid = File.Exists("/usr/bin/setsid") ? "/usr/bin/setsid" : File.Exists("/bin/setsid") ? "/bin/setsid" : "";
            info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add($"exec {setsid} \"$@\" </dev/null >>\"${LogVariable}\" 2>&1");
            info.ArgumentList.Add("sh");
            info.ArgumentList.Add(pwsh);
            foreach (var option in options) info.ArgumentList.Add(option);
            info.ArgumentList.Add("-Command");
            info.ArgumentList.Add(command);
            info.Environment[LogVariable] = logPath;
        }
        info.WorkingDirectory = home;
        return info;
    }

    /// <summary>
    /// The PowerShell to start: the one running this session (pwsh, or dotnet with pwsh.dll for PowerShell as a
    /// dotnet tool), else pwsh in $PSHOME when this session is another program hosting PowerShell.
    /// </summary>
    private static (string Executable, string[] Arguments) CurrentPowerShell()
    {
        var executable = Environment.ProcessPath ?? "";
        var name = Path.GetFileNameWithoutExtension(executable);
        if (name.Equals("pwsh", StringComparison.OrdinalIgnoreCase)) return (executable, []);
        var entry = Environment.GetCommandLineArgs().FirstOrDefault() ?? "";
        if (name.Equals("dotnet", StringComparison.OrdinalIgnoreCase) && Path.GetFileName(entry).Equals("pwsh.dll", StringComparison.OrdinalIgnoreCase)) return (executable, [entry]);
        var psHome = Path.GetDirectoryName(typeof(PSObject).Assembly.Location) ?? "";
        var candidate = Path.Combine(psHome, OperatingSystem.IsWindows() ? "pwsh.exe" : "pwsh");
        if (File.Exists(candidate)) return (candidate, []);
        throw new InvalidOperationException(
            $"This program ({Path.GetFileName(executable)}) hosts PowerShell, and no pwsh was found to start a worker with. Run Start-MigrationWorker in pwsh instead.");
    }

    private static string LastLines(string logPath)
    {
        try
        {
            return string.Join(" ", File.ReadLines(logPath).Where(l => !string.IsNullOrWhiteSpace(l)).TakeLast(5).Select(l => l.Trim()));
        }
        catch (IOException)
        {
            return "(no output)";
        }
    }
}
