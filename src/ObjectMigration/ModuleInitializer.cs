using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace ObjectMigration;

/// <summary>
/// Loads the engine and its dependencies (AWSSDK, SQLite) from the module's dependencies folder into a private
/// AssemblyLoadContext, so another module's copies of the same libraries never clash with ours.
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static readonly string DependencyFolder =
        Path.Combine(Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location)!, "dependencies");

    private static readonly DependencyLoadContext LoadContext = new(DependencyFolder);

    private static int _registered;

    /// <summary>
    /// Called by ObjectMigration.psm1 before PowerShell reflects over the cmdlets (whose parameters use engine
    /// types), and again by OnImport; registers the resolver once per process.
    /// </summary>
    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) != 0) return;
        AssemblyLoadContext.Default.Resolving += ResolveEngine;
        PreloadSdkAssembliesLoadedByName();
    }

    /// <summary>
    /// AWSSDK.Core loads STS (assume-role) and SSO by name, and takes the first assembly of that name already loaded
    /// in the process, whatever its context. Loading ours now puts them ahead of the copies an AWS module imported
    /// later brings; copies loaded before this module still win, and assume-role then fails with a clear error.
    /// </summary>
    private static void PreloadSdkAssembliesLoadedByName()
    {
        foreach (var name in (string[])["AWSSDK.SecurityToken", "AWSSDK.SSO", "AWSSDK.SSOOIDC"])
        {
            if (File.Exists(Path.Combine(DependencyFolder, name + ".dll"))) LoadContext.LoadFromAssemblyName(new AssemblyName(name));
        }
    }

    public void OnImport() => Register();

    /// <summary>Engine types stay loaded for the life of the process, so the resolver stays too.</summary>
    public void OnRemove(PSModuleInfo psModuleInfo) { }

    /// <summary>Only the engine is resolved from the default context; everything it needs resolves inside ours.</summary>
    private static Assembly? ResolveEngine(AssemblyLoadContext defaultContext, AssemblyName name) =>
        name.Name == "ObjectMigration.Engine" ? LoadContext.LoadFromAssemblyName(name) : null;
}

internal sealed class DependencyLoadContext(string folder) : AssemblyLoadContext("ObjectMigration.Dependencies", isCollectible: false)
{
    protected override Assembly? Load(AssemblyName name)
    {
        var path = Path.Combine(folder, name.Name + ".dll");
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        foreach (var candidate in NativeCandidates(unmanagedDllName))
        {
            if (File.Exists(candidate)) return LoadUnmanagedDllFromPath(candidate);
        }
        return IntPtr.Zero;
    }

    /// <summary>runtimes/&lt;rid&gt;/native/ as NuGet lays it out, for the OS and architecture we run on.</summary>
    private IEnumerable<string> NativeCandidates(string name)
    {
        var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        string[] rids;
        string file;
        if (OperatingSystem.IsWindows())
        {
            rids = [$"win-{arch}"];
            file = name.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? name : name + ".dll";
        }
        else if (OperatingSystem.IsMacOS())
        {
            rids = [$"osx-{arch}", "osx"];
            file = name.StartsWith("lib", StringComparison.Ordinal) ? name : $"lib{name}.dylib";
        }
        else
        {
            var musl = File.Exists("/etc/alpine-release");
            rids = musl ? [$"linux-musl-{arch}", $"linux-{arch}"] : [$"linux-{arch}"];
            file = name.StartsWith("lib", StringComparison.Ordinal) ? name : $"lib{name}.so";
        }
        return rids.Select(rid => Path.Combine(folder, "runtimes", rid, "native", file));
    }
}
