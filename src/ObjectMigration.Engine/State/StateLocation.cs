using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ObjectMigration.Engine.State;

/// <summary>
/// Where a user's state lives (OBJECTMIGRATION_HOME, else the local data folder), and keeping it private: on Unix the
/// folder is 0700 and every file in it 0600, created so and tightened when found wider (the folder holds endpoints,
/// buckets, keys, logs and the key that seals the secrets).
/// </summary>
public static class StateLocation
{
    public const string HomeVariable = "OBJECTMIGRATION_HOME";

    public const UnixFileMode PrivateFolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode GroupAndOthers = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    public static string HomeFolder()
    {
        var overridden = Environment.GetEnvironmentVariable(HomeVariable);
        if (!string.IsNullOrWhiteSpace(overridden)) return Path.GetFullPath(overridden);
        var local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create);
        if (string.IsNullOrEmpty(local))
        {
            local = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        }
        return Path.Combine(local, "ObjectMigration");
    }

    public static string DatabasePath(string? home = null) => Path.Combine(home ?? HomeFolder(), "state.db");

    /// <summary>
    /// Creates <paramref name="folder"/> for this user only (0700 on Unix; parents it creates too), or tightens an existing
    /// one to its owner's bits. A shared folder (sticky, like /tmp) is refused: others could plant files in it.
    /// </summary>
    public static string PreparePrivateFolder(string folder)
    {
        folder = Path.GetFullPath(folder);
        if (OperatingSystem.IsWindows())
        {
            // Under the user's profile, inherited ACLs already keep it theirs.
            Directory.CreateDirectory(folder);
            return folder;
        }
        if (!Directory.Exists(folder))
        {
            Directory.CreateDirectory(folder, PrivateFolderMode);
            return folder;
        }
        var mode = File.GetUnixFileMode(folder);
        if (mode.HasFlag(UnixFileMode.StickyBit))
        {
            throw new UnauthorizedAccessException(
                $"The state folder '{folder}' is a shared folder (sticky, like /tmp), where other users can create files: " +
                $"set {HomeVariable} to a folder of its own, such as {Path.Combine(folder, "ObjectMigration")}.");
        }
        if ((mode & GroupAndOthers) != 0)
        {
            try
            {
                File.SetUnixFileMode(folder, mode & ~GroupAndOthers);
            }
            catch (UnauthorizedAccessException e)
            {
                throw new UnauthorizedAccessException(
                    $"The state folder '{folder}' can be read by other users (mode {Octal(mode)}) and cannot be made private by {Environment.UserName}: " +
                    $"run chmod 700 '{folder}' as its owner, or set {HomeVariable} to a folder of your own.", e);
            }
        }
        return folder;
    }

    /// <summary>Tightens an existing file of the state folder to its owner's bits (0600); a missing one is left missing.</summary>
    public static void TightenFile(string path)
    {
        if (OperatingSystem.IsWindows()) return;
        UnixFileMode mode;
        try
        {
            mode = File.GetUnixFileMode(path);
        }
        catch (FileNotFoundException)
        {
            return;
        }
        catch (DirectoryNotFoundException)
        {
            return;
        }
        if ((mode & GroupAndOthers) != 0) File.SetUnixFileMode(path, mode & ~GroupAndOthers);
    }

    /// <summary>Creates <paramref name="path"/> empty with mode 0600 if it does not exist, else tightens it.</summary>
    public static void CreatePrivateFile(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            using (new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete)) { }
            return;
        }
        var options = new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite | FileShare.Delete, UnixCreateMode = PrivateFileMode,
        };
        using (new FileStream(path, options)) { }
        TightenFile(path);
    }

    /// <summary>Options that create a file 0600 on Unix.</summary>
    public static FileStreamOptions PrivateFileOptions(FileMode mode, FileAccess access, FileShare share = FileShare.Read)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = share };
        if (!OperatingSystem.IsWindows() && mode is FileMode.CreateNew or FileMode.Create or FileMode.OpenOrCreate or FileMode.Append) options.UnixCreateMode = PrivateFileMode;
        return options;
    }

    /// <summary>True when <paramref name="mode"/> lets anyone but the owner read, write or enter.</summary>
    public static bool OpenToOthers(UnixFileMode mode) => (mode & GroupAndOthers) != 0;

    public static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0xFFF, 8);

    // The owner of an open file. .NET has no public API for it; the runtime's own shim (System.Native, shipped with every
    // .NET on Unix) has fstat in a layout of its own whose first fields (flags, mode, uid, gid) never changed. The mode
    // read there is checked against the public API, so a different layout is noticed rather than trusted.
    [DllImport("libSystem.Native", EntryPoint = "SystemNative_FStat")]
    private static extern int NativeFStat(SafeFileHandle fd, [Out] byte[] status);

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_GetEUid")]
    private static extern uint NativeGetEUid();

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Link", SetLastError = true)]
    private static extern int NativeLink([MarshalAs(UnmanagedType.LPUTF8Str)] string source, [MarshalAs(UnmanagedType.LPUTF8Str)] string linkTarget);

    /// <summary>
    /// Gives the complete file <paramref name="file"/> the name <paramref name="path"/> only if no file has that name,
    /// atomically: false when one has. On Unix a hard link (File.Move checks and then renames, which can replace a
    /// file placed in between); where the file system has no hard links, that rename after all.
    /// </summary>
    public static bool PlaceIfAbsent(string file, string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            try
            {
                if (NativeLink(file, path) == 0) return true;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // Not this runtime's shim: the rename below.
            }
            if (File.Exists(path)) return false;
        }
        try
        {
            File.Move(file, path, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }
    }

    /// <summary>The effective user id of this process (Unix).</summary>
    public static uint CurrentUserId() => NativeGetEUid();

    /// <summary>The user id owning an open file (Unix); null when it cannot be told.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public static uint? OwnerOf(SafeFileHandle handle)
    {
        var status = new byte[512];
        try
        {
            if (NativeFStat(handle, status) != 0) return null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
        var mode = BitConverter.ToInt32(status, 4) & 0xFFF;
        if (mode != ((int)File.GetUnixFileMode(handle) & 0xFFF)) return null;
        return BitConverter.ToUInt32(status, 8);
    }
}
