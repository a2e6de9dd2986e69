using System.Reflection;
using System.Runtime.ExceptionServices;
using Microsoft.Data.Sqlite;

namespace ObjectMigration.Engine.State;

/// <summary>
/// The disk under the state folder has no room: SQLite could not write, and the transaction did not happen (the
/// database stays as it was). A run that meets it stops at its checkpoint and settles Failed with this message.
/// </summary>
public sealed class StateFolderFullException(string folder, Exception inner) : IOException(
    $"The state folder '{folder}' is full: the state database could not be written ({inner.Message.TrimEnd('.')}). " +
    "Free space there (or set OBJECTMIGRATION_HOME to a folder with room and move the state files there); " +
    "a migration job stopped by it continues from its last checkpoint with Resume-MigrationJob.", inner)
{
    public string Folder { get; } = folder;

    internal static bool IsFull(Exception e) => e is SqliteException { SqliteErrorCode: 13 };
}

/// <summary>
/// Room kept in the state folder for the moment the disk fills: a file of <see cref="Size"/> bytes, deleted on the first
/// "disk full" so that the run which met it can still record its results and settle its job with a clear error. Made
/// again when a run starts, if there is room.
/// </summary>
internal sealed class StateFolderReserve(string databasePath)
{
    public const int Size = 1024 * 1024;

    public string Path { get; } = databasePath + ".reserve";

    public void Ensure()
    {
        if (File.Exists(Path)) return;
        // Written whole under another name first: a reserve cut short by a full disk would reserve less than it says.
        var partial = $"{Path}.{Environment.ProcessId}.{Guid.NewGuid():n}";
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var file = new FileStream(partial, options))
            {
                // Random bytes: a compressing file system would keep zeros in no space at all.
                var bytes = new byte[Size];
                Random.Shared.NextBytes(bytes);
                file.Write(bytes);
                file.Flush(flushToDisk: true);
            }
            File.Move(partial, Path, overwrite: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No room (or another process made it first): the store works without a reserve.
            try { File.Delete(partial); } catch (Exception f) when (f is IOException or UnauthorizedAccessException) { }
        }
    }

    public void Release()
    {
        try { File.Delete(Path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}

/// <summary>
/// Wraps the SQLite store: a "database or disk is full" from any call becomes <see cref="StateFolderFullException"/>
/// naming the folder, and the reserve is released so the caller can still write how it stopped. One place for every
/// store method, as the store has many ways of writing.
/// </summary>
public class StateFolderFullGuard : DispatchProxy
{
    private IStateStore _inner = null!;
    private StateFolderReserve _reserve = null!;

    internal static IStateStore Wrap(SqliteStateStore inner)
    {
        var store = Create<IStateStore, StateFolderFullGuard>();
        var guard = (StateFolderFullGuard)(object)store;
        guard._inner = inner;
        guard._reserve = inner.Reserve;
        return store;
    }

    protected override object? Invoke(MethodInfo? method, object?[]? args)
    {
        try
        {
            return method!.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            if (StateFolderFullException.IsFull(e.InnerException))
            {
                _reserve.Release();
                throw new StateFolderFullException(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_inner.Location))!, e.InnerException);
            }
            ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }
}
