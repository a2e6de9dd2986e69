using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace ObjectMigration.Engine.Workers;

/// <summary>
/// Names this process for the store (host:pid@scope) and tells from such a name whether the process behind it is gone.
/// Only a process of this host and scope can be looked at: the scope is the boot and, on Linux, the pid namespace, so
/// containers that share a host name and a state volume never judge each other's pids. For any other process, or
/// when the answer is unclear, it is "not known to be gone", and the heartbeat decides.
/// </summary>
internal static class LocalProcess
{
    /// <summary>A short mark of this boot and pid namespace; empty where neither can be read.</summary>
    public static string Scope { get; } = ReadScope();

    /// <summary>This process as a runner id prefix: host:pid, with the scope where there is one.</summary>
    public static string Identity { get; } = Scope.Length == 0
        ? $"{Environment.MachineName}:{Environment.ProcessId}"
        : $"{Environment.MachineName}:{Environment.ProcessId}@{Scope}";

    private static string ReadScope()
    {
        if (!OperatingSystem.IsLinux()) return "";
        try
        {
            var boot = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            var namespaceId = new FileInfo("/proc/self/ns/pid").LinkTarget ?? "";
            return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(boot + "|" + namespaceId)))[..8].ToLowerInvariant();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    public static bool IsGone(string runnerId)
    {
        var hash = runnerId.IndexOf('#');
        var identity = hash < 0 ? runnerId : runnerId[..hash];
        var at = identity.IndexOf('@');
        var scope = at < 0 ? "" : identity[(at + 1)..];
        var hostAndPid = at < 0 ? identity : identity[..at];
        var colon = hostAndPid.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(hostAndPid.AsSpan(colon + 1), out var pid)) return false;
        if (!string.Equals(hostAndPid[..colon], Environment.MachineName, StringComparison.OrdinalIgnoreCase) || scope != Scope) return false;
        if (pid == Environment.ProcessId) return false;
        try
        {
            if (OperatingSystem.IsLinux())
            {
                // A killed process nobody reaped yet is a zombie: still listed, but it runs nothing.
                if (!File.Exists($"/proc/{pid}/stat")) return true;
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                return stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault() is 'Z' or 'X';
            }
            using var process = Process.GetProcessById(pid);
            return process.HasExited;
        }
        catch (ArgumentException)
        {
            // No process has that id.
            return true;
        }
        catch (Exception)
        {
            // Exited between two looks, or another user's process that may not be inspected (its pid was reused):
            // not known to be gone; the heartbeat decides.
            return false;
        }
    }
}
