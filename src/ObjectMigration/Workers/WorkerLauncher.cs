using System.Diagnostics;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Model;

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

    /// <summary>The environment variable that tells a worker where its output goes (and that it was started detached).</summary>
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
        var logFolder = Directory.CreateDirectory(Path.Combine(engine.HomeFolder, "workers")).FullName;
        var logPath = Path.Combine(logFolder, $"worker-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("n")[..6]}.log");
        using var process = Process.Start(StartInfo(engine.HomeFolder, moduleManifest, logPath))
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
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                // Another session is starting a worker: it will be running when the lock is free.
                ct.WaitHandle.WaitOne(100);
                ct.ThrowIfCancellationRequested();
            }
        }
    }

    private static ProcessStartInfo StartInfo(string home, string moduleManifest, string logPath)
    {
        var (pwsh, pwshArguments) = CurrentPowerShell();
        var command = $"Import-Module -Name '{moduleManifest.Replace("'", "''")}' -ErrorAction Stop; " +
                      $"Start-MigrationWorker -IdleExit {IdleExit.TotalSeconds:0} -ErrorAction Stop";
        string[] arguments = [.. pwshArguments, "-NoProfile", "-NonInteractive", "-NoLogo", "-Command", command];
        ProcessStartInfo info;
        if (OperatingSystem.IsWindows())
        {
            // No console window; the worker's output goes to its log from inside PowerShell.
            info = new ProcessStartInfo(pwsh) { CreateNoWindow = true };
            foreach (var argument in arguments[..^1]) info.ArgumentList.Add(argument);
            info.ArgumentList.Add($"& {{ {command} }} *>> '{logPath.Replace("'", "''")}'");
        }
        else
        {
            // A session of its own (setsid), so a closed terminal or dropped SSH session does not hang it up; no
            // terminal for input; everything it prints, PowerShell's own start-up errors included, in its log.
            var setsid = File.Exists("/usr/bin/setsid") ? "/usr/bin/setsid" : File.Exists("/bin/setsid") ? "/bin/setsid" : "";
            info = new ProcessStartInfo("/bin/sh");
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add($"exec {setsid} \"$@\" </dev/null >>\"${LogVariable}\" 2>&1");
            info.ArgumentList.Add("sh");
            info.ArgumentList.Add(pwsh);
            foreach (var argument in arguments) info.ArgumentList.Add(argument);
        }
        info.UseShellExecute = false;
        info.WorkingDirectory = home;
        info.Environment["OBJECTMIGRATION_HOME"] = home;
        info.Environment[LogVariable] = logPath;
        return info;
    }

    /// <summary>The PowerShell this session runs on: pwsh itself, or dotnet with pwsh.dll (PowerShell as a dotnet tool).</summary>
    private static (string Executable, string[] Arguments) CurrentPowerShell()
    {
        var executable = Environment.ProcessPath ?? throw new InvalidOperationException("The path of this PowerShell is unknown: start a worker with Start-MigrationWorker.");
        return Path.GetFileNameWithoutExtension(executable).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? (executable, [Environment.GetCommandLineArgs()[0]])
            : (executable, []);
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
