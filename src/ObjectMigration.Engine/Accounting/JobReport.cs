using System.Text;
using System.Text.Json;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Accounting;

/// <summary>One row per object with its outcome and why, streamed from the store to CSV or JSON.</summary>
public static class JobReport
{
    public static long Write(IStateStore store, Guid jobId, string path)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is not ".csv" and not ".json")
        {
            throw new ArgumentException($"'{path}' must end in .csv or .json: the extension chooses the report format.", "Path");
        }
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temporary = full + ".partial";
        long rows;
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            rows = extension == ".csv" ? WriteCsv(store, jobId, file) : WriteJson(store, jobId, file);
        }
        // The report appears whole or not at all.
        File.Move(temporary, full, overwrite: true);
        return rows;
    }

    private static long WriteCsv(IStateStore store, Guid jobId, Stream stream)
    {
        using var writer = new StreamWriter(stream, new UTF8Encoding(false));
        writer.WriteLine("Key,Size,Outcome,Reason,VerifiedBy");
        long rows = 0;
        foreach (var (key, size, outcome, message, verifiedBy) in store.StreamObjectReport(jobId))
        {
            writer.Write(Csv(key)); writer.Write(',');
            writer.Write(size); writer.Write(',');
            writer.Write(outcome); writer.Write(',');
            writer.Write(Csv(message ?? "")); writer.Write(',');
            writer.WriteLine(Csv(verifiedBy ?? ""));
            rows++;
        }
        return rows;
    }

    private static string Csv(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) >= 0 || value.StartsWith(' ') || value.EndsWith(' ')
            ? "\"" + value.Replace("\"", "\"\"") + "\""
            : value;

    private static long WriteJson(IStateStore store, Guid jobId, Stream stream)
    {
        using var writer = new Utf8JsonWriter(stream);
        writer.WriteStartArray();
        long rows = 0;
        foreach (var (key, size, outcome, message, verifiedBy) in store.StreamObjectReport(jobId))
        {
            writer.WriteStartObject();
            writer.WriteString("Key", key);
            writer.WriteNumber("Size", size);
            writer.WriteString("Outcome", outcome.ToString());
            writer.WriteString("Reason", message ?? "");
            writer.WriteString("VerifiedBy", verifiedBy ?? "");
            writer.WriteEndObject();
            if (++rows % 1000 == 0) writer.Flush();
        }
        writer.WriteEndArray();
        return rows;
    }
}
