using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Accounting;

/// <summary>How a report file is written, chosen by its extension.</summary>
public enum ReportFormat
{
    /// <summary><c>.csv</c>: RFC 4180, with cells that a spreadsheet would run as a formula neutralised.</summary>
    Csv,
    /// <summary><c>.json</c>: one JSON array of row objects, as this cmdlet has always written.</summary>
    Json,
    /// <summary><c>.jsonl</c> or <c>.ndjson</c>: one row object per line.</summary>
    JsonLines,
}

/// <summary>The report file exists and the caller did not ask to replace it.</summary>
public sealed class ReportFileExistsException(string path)
    : IOException($"The file '{path}' already exists. Pass -Force to replace it, or choose another -Path.")
{
    public string Path { get; } = path;
}

/// <summary>
/// One report file: one row per object of each job written to it, streamed from the store as it is read (memory stays
/// flat for any number of objects). Rows go to a temporary file beside the target, which replaces the target only in
/// <see cref="Complete"/>: a report appears whole or not at all, and an unfinished one is deleted on dispose.
/// </summary>
public sealed class JobReport : IDisposable
{
    /// <summary>The columns of every format, in order. Job and JobId are always there, so one job or many read alike.</summary>
    public static readonly IReadOnlyList<string> Columns =
        ["Job", "JobId", "Key", "Size", "Outcome", "LogType", "Reason", "SourceETag", "TargetETag", "VerifiedBy", "StorageClass"];

    /// <summary>How often the row callback is told how far a job has got.</summary>
    public const int ProgressInterval = 10_000;

    private static readonly JsonWriterOptions JsonOptions = new()
    {
        // A file, not HTML: keys keep their characters (é, +, ') instead of \u escapes; control characters are still escaped.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly string _temporary;
    private readonly bool _overwrite;
    private readonly FileStream _file;
    private readonly StreamWriter? _csv;
    private readonly Utf8JsonWriter? _json;
    private bool _completed;

    public string Path { get; }
    public ReportFormat Format { get; }
    /// <summary>Rows written so far, over all jobs.</summary>
    public long Rows { get; private set; }

    private JobReport(string path, ReportFormat format, bool overwrite)
    {
        Path = path;
        Format = format;
        _overwrite = overwrite;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        // Unique per writer, so two exports to one path at once do not write into each other's rows.
        _temporary = $"{path}.{Environment.ProcessId}-{Guid.NewGuid():N}.partial";
        _file = new FileStream(_temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        switch (format)
        {
            case ReportFormat.Csv:
                _csv = new StreamWriter(_file, new UTF8Encoding(false), 1 << 16) { NewLine = "\r\n" };
                _csv.WriteLine(string.Join(",", Columns));
                break;
            case ReportFormat.Json:
                _json = new Utf8JsonWriter(_file, JsonOptions);
                _json.WriteStartArray();
                break;
            case ReportFormat.JsonLines:
                _json = new Utf8JsonWriter(_file, JsonOptions);
                break;
        }
    }

    /// <summary>The format an extension stands for; anything else is an error that names -Path and the extensions.</summary>
    public static ReportFormat FormatOf(string path) => System.IO.Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".csv" => ReportFormat.Csv,
        ".json" => ReportFormat.Json,
        ".jsonl" or ".ndjson" => ReportFormat.JsonLines,
        _ => throw new ArgumentException(
            $"'{path}' must end in .csv, .jsonl (JSON Lines; also .ndjson) or .json (one JSON array): the extension chooses the report format.", "Path"),
    };

    /// <summary>True when <paramref name="path"/> names one file per job through {Name} or {Id}.</summary>
    public static bool HasPlaceholders(string path) =>
        path.Contains("{Name}", StringComparison.OrdinalIgnoreCase) || path.Contains("{Id}", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The file of one job: {Id} becomes its id, {Name} its name with characters that cannot be in a file name on
    /// Windows or Unix (and path separators) replaced by '_', so a name never moves the file to another folder.
    /// </summary>
    public static string ExpandPath(string path, MigrationJob job) => path
        .Replace("{Id}", job.Id.ToString(), StringComparison.OrdinalIgnoreCase)
        .Replace("{Name}", FileNamePart(job.Name, job.Id), StringComparison.OrdinalIgnoreCase);

    private static readonly char[] NotInFileNames =
        [.. System.IO.Path.GetInvalidFileNameChars(), '/', '\\', ':', '*', '?', '"', '<', '>', '|'];

    private static readonly HashSet<string> WindowsDeviceNames = new(
        ["CON", "PRN", "AUX", "NUL", .. Enumerable.Range(1, 9).SelectMany(n => new[] { $"COM{n}", $"LPT{n}" })], StringComparer.OrdinalIgnoreCase);

    private static string FileNamePart(string name, Guid id)
    {
        var chars = name.Select(c => char.IsControl(c) || Array.IndexOf(NotInFileNames, c) >= 0 ? '_' : c).ToArray();
        // Windows drops trailing dots and spaces, and keeps device names (CON, NUL, COM1 ...) for devices, extension or not.
        var part = new string(chars).Trim().TrimEnd('.');
        if (part.Length == 0) return id.ToString();
        return WindowsDeviceNames.Contains(part) ? part + "_" : part;
    }

    /// <summary>Starts a report at <paramref name="path"/> (full path); an existing file is refused unless <paramref name="overwrite"/>.</summary>
    public static JobReport Create(string path, bool overwrite)
    {
        var format = FormatOf(path);
        if (!overwrite && File.Exists(path)) throw new ReportFileExistsException(path);
        return new JobReport(path, format, overwrite);
    }

    /// <summary>
    /// Appends one row per object of <paramref name="job"/>, in key order, as the store reads them; returns how many.
    /// <paramref name="rowsWritten"/> hears the job's running count every <see cref="ProgressInterval"/> rows.
    /// </summary>
    public long Write(IStateStore store, MigrationJob job, Action<long>? rowsWritten = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        var jobId = job.Id.ToString();
        long rows = 0;
        foreach (var row in store.StreamObjectReport(job.Id))
        {
            if (_csv is not null) WriteCsvRow(_csv, job.Name, jobId, row);
            else WriteJsonRow(_json!, job.Name, jobId, row);
            rows++;
            Rows++;
            if (rows % ProgressInterval == 0)
            {
                rowsWritten?.Invoke(rows);
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        return rows;
    }

    /// <summary>Finishes the file and puts it in place of <see cref="Path"/>.</summary>
    public void Complete()
    {
        if (_completed) return;
        if (Format == ReportFormat.Json) _json!.WriteEndArray();
        _json?.Flush();
        _csv?.Flush();
        _json?.Dispose();
        _csv?.Dispose();
        _file.Dispose();
        _completed = true;
        try
        {
            File.Move(_temporary, Path, _overwrite);
        }
        catch (IOException) when (!_overwrite && File.Exists(Path))
        {
            // Created by someone else while the rows were written: still not ours to replace.
            File.Delete(_temporary);
            throw new ReportFileExistsException(Path);
        }
    }

    /// <summary>Removes an unfinished report (Ctrl+C, an error); a completed one stays.</summary>
    public void Dispose()
    {
        if (_completed) return;
        _completed = true;
        try
        {
            _json?.Dispose();
            _csv?.Dispose();
            _file.Dispose();
        }
        catch (IOException)
        {
            // The disk that failed the report may fail its last flush too; the file goes either way.
        }
        File.Delete(_temporary);
    }

    /// <summary>The log type of a row: a copied object's is ImportTransferred, which the runner does not log per object.</summary>
    public static LogType? RowLogType(ObjectReportRow row) =>
        row.LogType ?? (row.Outcome == ObjectOutcome.Transferred ? LogType.ImportTransferred : null);

    private static void WriteCsvRow(StreamWriter w, string job, string jobId, ObjectReportRow row)
    {
        WriteCsvCell(w, job); w.Write(',');
        w.Write(jobId); w.Write(',');
        WriteCsvCell(w, row.Key); w.Write(',');
        w.Write(row.Size.ToString(CultureInfo.InvariantCulture)); w.Write(',');
        w.Write(row.Outcome.ToString()); w.Write(',');
        w.Write(RowLogType(row)?.ToString()); w.Write(',');
        WriteCsvCell(w, row.Message); w.Write(',');
        WriteCsvCell(w, row.SourceETag); w.Write(',');
        WriteCsvCell(w, row.TargetETag); w.Write(',');
        WriteCsvCell(w, row.VerifiedBy); w.Write(',');
        WriteCsvCell(w, row.StorageClass);
        w.WriteLine();
    }

    private static void WriteCsvCell(StreamWriter w, string? value) => w.Write(CsvCell(value));

    /// <summary>
    /// One CSV cell. A cell that starts with = + - @ tab or CR is a formula to Excel, LibreOffice and Google Sheets
    /// (formula or CSV injection): it gets a leading apostrophe, which those show as text and hide. A cell that
    /// already starts with an apostrophe gets one more, so the rule reverses exactly: remove one leading apostrophe
    /// from any cell that has one. Cells with a comma, quote, CR or LF are quoted (RFC 4180), and so are cells with
    /// spaces at either end, which some readers trim.
    /// </summary>
    public static string CsvCell(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        if (value[0] is '=' or '+' or '-' or '@' or '\t' or '\r' or '\'') value = "'" + value;
        return value.AsSpan().IndexOfAny(",\"\r\n") >= 0 || value[^1] == ' ' || value[0] == ' '
            ? "\"" + value.Replace("\"", "\"\"") + "\""
            : value;
    }

    private void WriteJsonRow(Utf8JsonWriter w, string job, string jobId, ObjectReportRow row)
    {
        w.WriteStartObject();
        w.WriteString("Job", job);
        w.WriteString("JobId", jobId);
        w.WriteString("Key", row.Key);
        w.WriteNumber("Size", row.Size);
        w.WriteString("Outcome", row.Outcome.ToString());
        w.WriteString("LogType", RowLogType(row)?.ToString());
        w.WriteString("Reason", row.Message);
        w.WriteString("SourceETag", row.SourceETag);
        w.WriteString("TargetETag", row.TargetETag);
        w.WriteString("VerifiedBy", row.VerifiedBy);
        w.WriteString("StorageClass", row.StorageClass);
        w.WriteEndObject();
        if (Format == ReportFormat.JsonLines)
        {
            // Each line is a JSON document of its own: the writer starts afresh after the newline.
            w.Flush();
            _file.WriteByte((byte)'\n');
            w.Reset();
        }
        else if (w.BytesPending > 1 << 15)
        {
            w.Flush();
        }
    }
}
