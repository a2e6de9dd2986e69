using System.Data.Common;
using Npgsql;
using ObjectMigration.Engine.State.Postgres;

namespace ObjectMigration.Engine.State;

/// <summary>
/// Opens a state store from one string, as <c>-StateStore</c> or <c>OBJECTMIGRATION_STATE</c> give it: a PostgreSQL
/// connection string (<c>Host=...;Database=...</c>) or URI (<c>postgres://</c>, <c>postgresql://</c>) opens the store
/// shared by many hosts; a path, or nothing, the SQLite store as before.
/// </summary>
public static class StateStores
{
    public const string Variable = "OBJECTMIGRATION_STATE";

    private const string Where = "-StateStore (or " + Variable + ")";

    private const string Forms =
        "Give a PostgreSQL connection string such as 'Host=db.example.net;Port=5432;Username=objectmigration;Password=...;Database=objectmigration' " +
        "(a value holding ';' in double quotes), a URI such as 'postgresql://objectmigration:...@db.example.net:5432/objectmigration', " +
        "or the path of a SQLite state file or folder.";

    /// <summary>
    /// Opens the store <paramref name="spec"/> names. Null or blank: SQLite in <paramref name="home"/> (default: the
    /// state folder, OBJECTMIGRATION_HOME or the user's local data folder). A path: SQLite there; a path to an existing
    /// folder, or one ending in a separator, means state.db in it. Errors name -StateStore and OBJECTMIGRATION_STATE and
    /// never repeat a password.
    /// </summary>
    public static IStateStore Open(string? spec, string? home = null)
    {
        if (string.IsNullOrWhiteSpace(spec)) return OpenSqlite(StateLocation.DatabasePath(home));
        var kind = Classify(spec);
        return kind switch
        {
            SpecKind.PostgresUri or SpecKind.PostgresConnectionString => new PostgresStateStore(ToNpgsqlConnectionString(spec)),
            _ => OpenSqlite(SqlitePath(spec.Trim())),
        };
    }

    /// <summary>What <paramref name="spec"/> names, for messages ("PostgreSQL host:5432/db" or "SQLite path"), without opening it.</summary>
    public static string Describe(string? spec, string? home = null)
    {
        if (string.IsNullOrWhiteSpace(spec)) return "SQLite " + StateLocation.DatabasePath(home);
        return Classify(spec) is SpecKind.Path
            ? "SQLite " + SqlitePath(spec.Trim())
            : PostgresStateStore.Describe(new NpgsqlConnectionStringBuilder(ToNpgsqlConnectionString(spec)));
    }

    internal enum SpecKind { Path, PostgresConnectionString, PostgresUri }

    internal static SpecKind Classify(string spec)
    {
        var trimmed = spec.Trim();
        var scheme = trimmed.IndexOf("://", StringComparison.Ordinal);
        if (scheme > 0 && trimmed[..scheme].All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.'))
        {
            var name = trimmed[..scheme].ToLowerInvariant();
            if (name is "postgres" or "postgresql") return SpecKind.PostgresUri;
            throw new ArgumentException(
                $"{Where} names a '{name}://' store: only PostgreSQL is supported as a shared store. {Forms}");
        }
        var explicitPath = Path.IsPathRooted(trimmed) || trimmed.StartsWith("./", StringComparison.Ordinal) || trimmed.StartsWith("../", StringComparison.Ordinal)
            || (OperatingSystem.IsWindows() && (trimmed.StartsWith(".\\", StringComparison.Ordinal) || trimmed.StartsWith("..\\", StringComparison.Ordinal)));
        // Anything with '=' that is not a path is meant as a connection string (a file name holding '=' is given as ./name):
        // taken as a file name, a mistyped one would open an empty SQLite store named after it, password and all.
        if (!explicitPath && trimmed.Contains('=')) return SpecKind.PostgresConnectionString;
        if (!explicitPath)
        {
            throw new ArgumentException(
                $"{Where} is neither a connection string, a postgresql:// URI nor a path: give a SQLite path as an absolute path or one starting with ./ ({Forms})");
        }
        return SpecKind.Path;
    }

    private static IStateStore OpenSqlite(string databasePath) => StateFolderFullGuard.Wrap(new SqliteStateStore(databasePath));

    internal static string SqlitePath(string path)
    {
        var full = Path.GetFullPath(path);
        // The store's own folder is made, not the folders above it: a mistyped path is said, not built.
        var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(full));
        if (!Directory.Exists(full) && (parent is null || !Directory.Exists(parent)))
        {
            throw new ArgumentException($"{Where} names a SQLite store under '{parent ?? full}', which does not exist: create that folder first, or correct the path.");
        }
        return Directory.Exists(full) || path.EndsWith(Path.DirectorySeparatorChar) || path.EndsWith(Path.AltDirectorySeparatorChar)
            ? StateLocation.DatabasePath(full)
            : full;
    }

    /// <summary>
    /// The spec as an Npgsql connection string, checked keyword by keyword so that a mistake is named without the text
    /// around it (which may be a password: "Password=a;b" splits it).
    /// </summary>
    internal static string ToNpgsqlConnectionString(string spec)
    {
        var settings = Classify(spec) == SpecKind.PostgresUri ? FromUri(spec.Trim()) : FromConnectionString(spec);
        if (string.IsNullOrWhiteSpace(settings.Host))
        {
            throw new ArgumentException($"{Where} names no server: add Host=<name or address> (or the host of a postgresql:// URI). {Forms}");
        }
        return settings.ConnectionString;
    }

    private static NpgsqlConnectionStringBuilder FromConnectionString(string spec)
    {
        var parsed = new DbConnectionStringBuilder();
        try
        {
            parsed.ConnectionString = spec;
        }
        catch (ArgumentException)
        {
            // The parser's message quotes the text where it stopped: it may be a password.
            throw new ArgumentException($"{Where} is a connection string that cannot be read (a stray quote, or an entry without '='). {Forms}");
        }
        var settings = new NpgsqlConnectionStringBuilder();
        foreach (string keyword in parsed.Keys)
        {
            var value = parsed[keyword];
            if (!settings.ContainsKey(keyword))
            {
                // Not echoed: "Password=a;b=c" makes "b" a keyword. The known keyword it is one or two letters from is
                // named instead, which tells nothing of the text.
                var near = NearestKeyword(keyword);
                throw new ArgumentException(
                    $"{Where} has a keyword that PostgreSQL connection strings do not know{(near is null ? "" : $" (did you mean {near}?)")} " +
                    $"(a password holding ';' must be quoted: Password=\"...\"). {Forms}");
            }
            try
            {
                settings[keyword] = value;
            }
            catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException)
            {
                var shown = IsSecret(keyword) ? "" : $" '{value}'";
                throw new ArgumentException($"{Where}: the value{shown} of {Canonical(keyword)} is not valid for it. {Forms}");
            }
        }
        return settings;
    }

    /// <summary>The keyword of the usual ones (Host, Port, ...) that <paramref name="typed"/> is at most two edits from, if any.</summary>
    private static string? NearestKeyword(string typed)
    {
        string[] usual = ["Host", "Port", "Username", "Password", "Database", "SSL Mode", "Timeout", "Search Path", "Pooling", "Application Name"];
        return usual.Select(k => (Keyword: k, Distance: Edits(typed.ToLowerInvariant(), k.ToLowerInvariant())))
            .Where(c => c.Distance <= 2).OrderBy(c => c.Distance).Select(c => c.Keyword).FirstOrDefault();

        static int Edits(string a, string b)
        {
            var row = Enumerable.Range(0, b.Length + 1).ToArray();
            for (var i = 1; i <= a.Length; i++)
            {
                var (diagonal, row0) = (row[0], i);
                row[0] = row0;
                for (var j = 1; j <= b.Length; j++)
                {
                    var above = row[j];
                    row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                    diagonal = above;
                }
            }
            return row[b.Length];
        }
    }

    /// <summary>The keyword as Npgsql documents it (the parser gives it in lower case).</summary>
    private static string Canonical(string keyword) =>
        typeof(NpgsqlConnectionStringBuilder).GetProperties()
            .Select(p => p.GetCustomAttributes(typeof(System.ComponentModel.DisplayNameAttribute), false).OfType<System.ComponentModel.DisplayNameAttribute>().FirstOrDefault()?.DisplayName)
            .FirstOrDefault(name => keyword.Equals(name, StringComparison.OrdinalIgnoreCase)) ?? keyword;

    private static bool IsSecret(string keyword) =>
        keyword.Contains("password", StringComparison.OrdinalIgnoreCase) || keyword.Equals("pwd", StringComparison.OrdinalIgnoreCase)
        || keyword.Contains("key", StringComparison.OrdinalIgnoreCase);

    /// <summary>postgres://user:password@host:port/database?keyword=value (libpq's URI form; user and password percent-encoded).</summary>
    private static NpgsqlConnectionStringBuilder FromUri(string spec)
    {
        if (!Uri.TryCreate(spec, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new ArgumentException($"{Where} is a postgresql:// URI that cannot be read (one host, an optional numeric port, percent-encoded user and password). {Forms}");
        }
        var settings = new NpgsqlConnectionStringBuilder { Host = uri.Host.Trim('[', ']') };
        if (!uri.IsDefaultPort && uri.Port > 0) settings.Port = uri.Port;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':');
            settings.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0) settings.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        }
        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length > 0) settings.Database = database;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=');
            var keyword = Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]);
            var value = equals < 0 ? "" : Uri.UnescapeDataString(pair[(equals + 1)..]);
            // libpq's names where they differ from Npgsql's.
            keyword = keyword switch
            {
                "sslmode" => "SSL Mode",
                "application_name" => "Application Name",
                "connect_timeout" => "Timeout",
                "options" => "Options",
                _ => keyword,
            };
            // verify-ca, verify-full in libpq; VerifyCA, VerifyFull in Npgsql (which ignores case).
            if (keyword == "SSL Mode") value = value.Replace("-", "", StringComparison.Ordinal);
            if (!settings.ContainsKey(keyword))
            {
                throw new ArgumentException($"{Where}: the URI's parameter '{(IsSecret(keyword) ? "(hidden)" : keyword)}' is not one PostgreSQL connections know. {Forms}");
            }
            try
            {
                settings[keyword] = value;
            }
            catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException)
            {
                var shown = IsSecret(keyword) ? "" : $" '{value}'";
                throw new ArgumentException($"{Where}: the value{shown} of the URI's parameter {keyword} is not valid for it. {Forms}");
            }
        }
        return settings;
    }
}
