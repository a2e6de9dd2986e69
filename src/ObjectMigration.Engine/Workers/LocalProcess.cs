using System.Diagnostics;

namespace ObjectMigration.Engine.Workers;

/// <summary>
/// Tells from a runner id (host:pid, optionally #run) whether the process behind it is gone. Only a process on this
/// host can be looked at; for any other the answer is "not known to be gone", and the heartbeat decides.
/// </summary>
internal static class LocalProcess
{
    public static bool IsGone(string runnerId)
    {
        var hash = runnerId.IndexOf('#');
        var identity = hash < 0 ? runnerId : runnerId[..hash];
        var colon = identity.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(identity.AsSpan(colon + 1), out var pid)) return false;
        if (!string.Equals(identity[..colon], Environment.MachineName, StringComparison.OrdinalIgnoreCase)) return false;
        if (pid == Environment.ProcessId) return false;
        if (OperatingSystem.IsLinux())
        {
            // A killed process nobody reaped yet is a zombie: still listed, but it runs nothing.
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
                return state is 'Z' or 'X';
            }
            catch (IOException)
            {
                return true;
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        }
        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited;
        }
        catch (ArgumentException)
        {
            return true;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }
}
