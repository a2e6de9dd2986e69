using ObjectMigration.Engine.Model;

namespace ObjectMigration;

/// <summary>
/// What the format file's columns call (as [ObjectMigration.Display]): this assembly loads where PowerShell resolves
/// type names, the engine's private load context does not.
/// </summary>
public static class Display
{
    /// <summary>109.4 MiB; empty for no value.</summary>
    public static string Size(long? bytes) => bytes is { } b ? ByteSize.Format(b) : "";

    /// <summary>547.0 KiB/s; empty when nothing moves.</summary>
    public static string Rate(double bytesPerSecond) => bytesPerSecond > 0 ? ByteSize.Format((long)bytesPerSecond) + "/s" : "";

    /// <summary>hh:mm:ss below a day, else "3d 04h": never wider than 8 characters.</summary>
    public static string Eta(TimeSpan? remaining) => remaining switch
    {
        null => "",
        { TotalDays: >= 1 } t => $"{(int)t.TotalDays}d {t.Hours:00}h",
        { } t => t.ToString(@"hh\:mm\:ss", System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string Time(DateTimeOffset? at, string format = "yyyy-MM-dd HH:mm:ss") =>
        at is { } t ? t.LocalDateTime.ToString(format, System.Globalization.CultureInfo.InvariantCulture) : "";
}
