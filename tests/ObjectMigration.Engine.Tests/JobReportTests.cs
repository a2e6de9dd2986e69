using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.VisualBasic.FileIO;
using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>Reports straight from a temporary store: rows, columns, escaping, memory, files.</summary>
/// <summary>Tests that measure the process's heap run alone: another test allocating meanwhile would move the figures.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasurementCollection
{
    public const string Name = "Memory measurements";
}

[Collection(MemoryMeasurementCollection.Name)]
public sealed class JobReportTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly SqliteStateStore _store;

    public JobReportTests() => _store = new SqliteStateStore(Path.Combine(_folder.Path, "state.db"));

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _folder.Dispose();
    }

    private MigrationJob AddJob(string name, string targetPrefix = "")
    {
        var job = new MigrationJob
        {
            Id = Guid.NewGuid(), Name = name, Type = JobType.Migrate, State = JobState.Completed, SourceBucket = "src", TargetBucket = "dst",
            TargetPrefix = targetPrefix, CreatedAt = DateTimeOffset.UtcNow, Concurrency = 1,
        };
        _store.AddJob(job);
        return job;
    }

    private static ListedObject Listed(string key, long size = 10, string? etag = null, string? storageClass = null) =>
        new(key, size, etag ?? "etag-" + key.Length, DateTimeOffset.UnixEpoch, storageClass);

    private string File(string name) => Path.Combine(_folder.Path, name);

    [Fact]
    public void A_report_of_200000_objects_streams_in_flat_memory_with_one_row_per_object_equal_to_the_counters()
    {
        const int count = 200_000;
        var job = AddJob("big");
        // Straight into the store in the runner's own batches: a listing, then outcomes for most of it.
        for (var start = 0; start < count; start += 5_000)
        {
            var page = Enumerable.Range(start, 5_000).Select(i => Listed($"data/{i:d7}.bin", i, $"\"{i:x32}\"", i % 10 == 0 ? "GLACIER" : null)).ToList();
            _store.SaveListingPage(job.Id, page, continuationToken: start + 5_000 < count ? "more" : null, done: start + 5_000 >= count, target: false);
            var results = page.Where((_, n) => n % 50 != 49).Select(o => (int)o.Size switch
            {
                var i when i % 997 == 0 => new ObjectResult(o.Key, ObjectOutcome.Failed, 0, LogType.ImportErrorRetryExhaustion, "503 SlowDown, 6 attempts."),
                var i when i % 3 == 0 => new ObjectResult(o.Key, ObjectOutcome.Skipped, o.Size, LogType.ImportSkippedExists, "The target already has this object: same size and checksum."),
                _ => new ObjectResult(o.Key, ObjectOutcome.Transferred, o.Size, null, null, "md5", "Content-MD5"),
            }).ToList();
            _store.SaveResults(job.Id, results, []);
        }
        var progress = _store.GetProgress(job.Id);
        var path = File("big.csv");
        var heapAfter = new List<long>();
        // From before the first row: a report that read every row before writing the first would show here.
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();

        long rows;
        using (var report = JobReport.Create(path, overwrite: false))
        {
            // What stays alive while the report streams, measured every 10,000 rows: a report that kept rows would grow.
            rows = report.Write(_store, job, _ => heapAfter.Add(GC.GetTotalMemory(forceFullCollection: true)));
            report.Complete();
        }
        var allocatedPerRow = (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / count;

        Assert.Equal(count, rows);
        Assert.Equal(count / JobReport.ProgressInterval, heapAfter.Count);
        var growth = heapAfter.Max() - heapBefore;
        Assert.True(growth < 2_000_000, $"the heap grew by {growth:N0} bytes while 200,000 rows streamed: {heapBefore} before, then {string.Join(", ", heapAfter)}");
        // Each row's strings and record, nothing kept; a bound that also catches a per-row copy of something large.
        Assert.True(allocatedPerRow < 3_000, $"{allocatedPerRow} bytes allocated per row");

        var outcomes = System.IO.File.ReadLines(path).Skip(1).Select(line => line.Split(',')[4]).GroupBy(o => o).ToDictionary(g => g.Key, g => (long)g.Count());
        Assert.Equal(progress.Objects, outcomes.Values.Sum());
        Assert.Equal(progress.TransferredObjects, outcomes["Transferred"]);
        Assert.Equal(progress.SkippedObjects, outcomes["Skipped"]);
        Assert.Equal(progress.FailedObjects, outcomes["Failed"]);
        Assert.Equal(progress.PendingObjects, outcomes["Pending"]);
        Assert.True(progress.FailedObjects > 100 && progress.PendingObjects > 1_000, "every outcome is in the data");
    }

    [Fact]
    public void A_row_has_the_outcome_log_type_reason_both_etags_verification_and_storage_class()
    {
        var job = AddJob("columns", targetPrefix: "copy/");
        _store.SaveListingPage(job.Id, [Listed("t/1", 5, "\"target-old\""), Listed("x/2", 7, "\"same\"")], "t", done: true, target: true);
        _store.SaveListingPage(job.Id, [Listed("1", 5, "\"src-1\"", "STANDARD_IA"), Listed("2", 7, "\"same\""), Listed("3", 9, "\"src-3\"")], null, done: true, target: false);
        // The target listing is under the job's target prefix: only copy/… keys are this job's objects.
        _store.SaveListingPage(job.Id, [Listed("copy/1", 5, "\"target-old\""), Listed("copy/2", 7, "\"same\"")], null, done: true, target: true);
        _store.SaveResults(job.Id,
        [
            new ObjectResult("1", ObjectOutcome.Transferred, 5, null, null, "abc", "Content-MD5 (the source's MD5), checked by the target on receipt"),
            new ObjectResult("2", ObjectOutcome.Skipped, 7, LogType.ImportSkippedExists, "The target already has this object: same size and checksum."),
            new ObjectResult("3", ObjectOutcome.Failed, 0, LogType.ImportErrorRetryExhaustion, "500 InternalError after 6 attempts."),
        ], []);

        var rows = _store.StreamObjectReport(job.Id).ToDictionary(r => r.Key);

        Assert.Equal(new ObjectReportRow("1", 5, ObjectOutcome.Transferred, null, null, "\"src-1\"", "\"target-old\"",
            "Content-MD5 (the source's MD5), checked by the target on receipt", "STANDARD_IA"), rows["1"]);
        Assert.Equal(LogType.ImportTransferred, JobReport.RowLogType(rows["1"]));
        Assert.Equal((ObjectOutcome.Skipped, LogType.ImportSkippedExists, "\"same\""), (rows["2"].Outcome, rows["2"].LogType, rows["2"].TargetETag));
        Assert.Equal((ObjectOutcome.Failed, LogType.ImportErrorRetryExhaustion, (string?)null), (rows["3"].Outcome, rows["3"].LogType, rows["3"].TargetETag));

        // -RetryFailed puts the object back to pending: no outcome, no log type until it ends again.
        _store.ResetFailedObjects(job.Id);
        var retried = _store.StreamObjectReport(job.Id).Single(r => r.Key == "3");
        Assert.Equal((ObjectOutcome.Pending, (LogType?)null, (string?)null), (retried.Outcome, retried.LogType, retried.Message));
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\"")]
    [InlineData("+1+1", "'+1+1")]
    [InlineData("-2+3", "'-2+3")]
    [InlineData("@SUM(A1)", "'@SUM(A1)")]
    [InlineData("\tTAB", "'\tTAB")]
    [InlineData("\rCR", "\"'\rCR\"")]
    [InlineData("'quoted", "''quoted")]
    [InlineData("a,b", "\"a,b\"")]
    [InlineData("line\nbreak", "\"line\nbreak\"")]
    [InlineData(" padded ", "\" padded \"")]
    [InlineData("mid=dle-", "mid=dle-")]
    [InlineData("", "")]
    [InlineData(null, "")]
    public void A_csv_cell_is_quoted_per_rfc_4180_and_a_formula_gets_a_leading_apostrophe(string? value, string cell) =>
        Assert.Equal(cell, JobReport.CsvCell(value));

    [Fact]
    public void A_csv_report_reads_back_with_a_standard_parser_and_every_key_is_recovered_by_removing_one_apostrophe()
    {
        string[] keys = ["=cmd|' /C calc'!A0", "+sum", "-minus", "@at", "\ttab", "'apostrophe", "a,b", "say \"hi\"", "line\nbreak", "crlf\r\nkey", " space ", "ünïcødé/ключ", "plain"];
        var job = AddJob("csv, with \"quotes\"");
        _store.SaveListingPage(job.Id, keys.Select(k => Listed(k)).ToList(), null, done: true, target: false);
        _store.SaveResults(job.Id, keys.Select(k => new ObjectResult(k, ObjectOutcome.Failed, 0, LogType.MigrationError, "=1+1 said the server, with a, comma")).ToList(), []);
        var path = File("escaping.csv");
        using (var report = JobReport.Create(path, overwrite: false))
        {
            report.Write(_store, job);
            report.Complete();
        }

        using var parser = new TextFieldParser(path) { HasFieldsEnclosedInQuotes = true, TrimWhiteSpace = false };
        parser.SetDelimiters(",");
        Assert.Equal(JobReport.Columns, parser.ReadFields());
        var rows = new List<string[]>();
        while (!parser.EndOfData) rows.Add(parser.ReadFields()!);

        Assert.Equal(keys.Length, rows.Count);
        Assert.All(rows, r => Assert.Equal(JobReport.Columns.Count, r.Length));
        Assert.All(rows, r => Assert.Equal("csv, with \"quotes\"", r[0]));
        Assert.All(rows, r => Assert.Equal("'=1+1 said the server, with a, comma", r[6]));
        // No cell a spreadsheet would evaluate.
        Assert.All(rows.SelectMany(r => r), cell => Assert.False(cell.Length > 0 && "=+-@\t\r".Contains(cell[0]), $"'{cell}' starts a formula"));
        static string Unneutralise(string cell) => cell.StartsWith('\'') ? cell[1..] : cell;
        Assert.Equal(keys.Order(StringComparer.Ordinal), rows.Select(r => Unneutralise(r[2])).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Json_lines_carry_keys_exactly_one_document_per_line_and_json_stays_one_array()
    {
        string[] keys = ["=formula", "quote\"d", "ünïcødé+%?#", "new\nline"];
        var job = AddJob("json");
        _store.SaveListingPage(job.Id, keys.Select(k => Listed(k)).ToList(), null, done: true, target: false);
        _store.SaveResults(job.Id, keys.Select(k => new ObjectResult(k, ObjectOutcome.Transferred, 10, null, null, null, "Content-MD5")).ToList(), []);

        foreach (var name in new[] { "r.jsonl", "r.json" })
        {
            using var report = JobReport.Create(File(name), overwrite: false);
            report.Write(_store, job);
            report.Complete();
        }

        var lines = System.IO.File.ReadAllLines(File("r.jsonl"));
        Assert.Equal(keys.Length, lines.Length);
        var documents = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), documents.Select(d => d.GetProperty("Key").GetString()).Order(StringComparer.Ordinal));
        Assert.All(documents, d => Assert.Equal(JobReport.Columns, d.EnumerateObject().Select(p => p.Name)));
        Assert.All(documents, d => Assert.Equal(("json", job.Id.ToString(), 10, "Transferred", "ImportTransferred"),
            (d.GetProperty("Job").GetString(), d.GetProperty("JobId").GetString(), d.GetProperty("Size").GetInt64(), d.GetProperty("Outcome").GetString(), d.GetProperty("LogType").GetString())));
        Assert.All(documents, d => Assert.Equal(JsonValueKind.Null, d.GetProperty("TargetETag").ValueKind));
        // Characters stay themselves in the file (no \u escapes), apart from control characters.
        Assert.Contains("ünïcødé+%?#", System.IO.File.ReadAllText(File("r.jsonl")));

        using var array = JsonDocument.Parse(System.IO.File.ReadAllText(File("r.json")));
        Assert.Equal(keys.Length, array.RootElement.GetArrayLength());
    }

    [Fact]
    public void Several_jobs_go_to_one_file_each_row_naming_its_job()
    {
        var first = AddJob("first");
        var second = AddJob("second");
        _store.SaveListingPage(first.Id, [Listed("a"), Listed("b")], null, done: true, target: false);
        _store.SaveListingPage(second.Id, [Listed("a"), Listed("c"), Listed("d")], null, done: true, target: false);
        var path = File("both.csv");

        using (var report = JobReport.Create(path, overwrite: false))
        {
            Assert.Equal(2, report.Write(_store, first));
            Assert.Equal(3, report.Write(_store, second));
            Assert.Equal(5, report.Rows);
            report.Complete();
        }

        var rows = System.IO.File.ReadAllLines(path).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["first,a", "first,b", "second,a", "second,c", "second,d"], rows.Select(r => $"{r[0]},{r[2]}"));
        Assert.Equal([first.Id.ToString(), second.Id.ToString()], rows.Select(r => r[1]).Distinct());
    }

    [Fact]
    public void An_existing_file_is_refused_unless_overwrite_and_an_unfinished_report_leaves_no_file()
    {
        var job = AddJob("files");
        _store.SaveListingPage(job.Id, [Listed("a")], null, done: true, target: false);
        var path = File("exists.csv");
        System.IO.File.WriteAllText(path, "keep me");

        var refused = Assert.Throws<ReportFileExistsException>(() => JobReport.Create(path, overwrite: false));
        Assert.Contains("-Force", refused.Message);
        Assert.Contains("-Path", refused.Message);
        Assert.Equal("keep me", System.IO.File.ReadAllText(path));

        using (var unfinished = JobReport.Create(path, overwrite: true))
        {
            unfinished.Write(_store, job);
            // Disposed without Complete: Ctrl+C or an error halfway.
        }
        Assert.Equal("keep me", System.IO.File.ReadAllText(path));
        Assert.Equal(["exists.csv", "state.db"], Directory.GetFiles(_folder.Path).Select(Path.GetFileName).Where(f => !f!.StartsWith("state.db-") && f != "state.db.reserve").Order());

        using (var replacing = JobReport.Create(path, overwrite: true))
        {
            replacing.Write(_store, job);
            replacing.Complete();
        }
        Assert.Equal(2, System.IO.File.ReadAllLines(path).Length);
    }

    [Fact]
    public void A_report_stops_when_cancelled_and_leaves_no_file()
    {
        var job = AddJob("cancelled");
        _store.SaveListingPage(job.Id, Enumerable.Range(0, 25_000).Select(i => Listed($"k{i:d6}")).ToList(), null, done: true, target: false);
        using var cancel = new CancellationTokenSource();
        var path = File("cancelled.jsonl");

        using (var report = JobReport.Create(path, overwrite: false))
        {
            Assert.Throws<OperationCanceledException>(() => report.Write(_store, job, _ => cancel.Cancel(), cancel.Token));
            Assert.Equal(JobReport.ProgressInterval, report.Rows);
        }

        Assert.False(System.IO.File.Exists(path));
        Assert.Empty(Directory.GetFiles(_folder.Path, "*.partial"));
    }

    [Theory]
    [InlineData("/r/{Name}.csv", "a/b:c*d", "/r/a_b_c_d.csv")]
    [InlineData("/r/{name}-{ID}.jsonl", "nightly", "/r/nightly-00000000-0000-0000-0000-000000000001.jsonl")]
    [InlineData("/r/{Name}.csv", "..", "/r/00000000-0000-0000-0000-000000000001.csv")]
    [InlineData("/r/{Name}.csv", "con", "/r/con_.csv")]
    [InlineData("/r/{Name}.csv", "COM1", "/r/COM1_.csv")]
    [InlineData("/r/{Name}.csv", "nightly. ", "/r/nightly.csv")]
    public void Placeholders_name_one_file_per_job_and_a_name_never_leaves_the_folder(string template, string name, string expected)
    {
        var job = new MigrationJob { Id = Guid.Parse("00000000-0000-0000-0000-000000000001"), Name = name };
        Assert.True(JobReport.HasPlaceholders(template));
        Assert.Equal(expected, JobReport.ExpandPath(template, job));
    }

    [Theory]
    [InlineData("r.csv", ReportFormat.Csv)]
    [InlineData("r.CSV", ReportFormat.Csv)]
    [InlineData("r.json", ReportFormat.Json)]
    [InlineData("r.jsonl", ReportFormat.JsonLines)]
    [InlineData("r.ndjson", ReportFormat.JsonLines)]
    public void The_extension_chooses_the_format(string path, ReportFormat format) => Assert.Equal(format, JobReport.FormatOf(path));

    [Fact]
    public void Another_extension_is_an_error_that_names_path_and_the_formats()
    {
        var error = Assert.Throws<ArgumentException>(() => JobReport.FormatOf("report.txt"));
        Assert.Equal("Path", error.ParamName);
        Assert.Contains(".csv", error.Message);
        Assert.Contains(".jsonl", error.Message);
    }

    [Fact]
    public void Objects_settled_before_schema_6_get_their_log_type_from_the_log()
    {
        var job = AddJob("old");
        _store.SaveListingPage(job.Id, [Listed("a"), Listed("b"), Listed("c")], null, done: true, target: false);
        _store.SaveResults(job.Id,
        [
            new ObjectResult("a", ObjectOutcome.Skipped, 10, LogType.ImportSkippedExists, "exists"),
            new ObjectResult("b", ObjectOutcome.Failed, 0, LogType.ImportErrorRetryExhaustion, "503"),
            new ObjectResult("c", ObjectOutcome.Transferred, 10, null, null),
        ], [new LogRecord(LogType.MigrationNotice, "b", "a notice about b, not its outcome")]);
        using (var connection = _store.Open())
        using (var downgrade = connection.CreateCommand())
        {
            // Back to schema 5: step 6's column and everything later.
            downgrade.CommandText = """
                ALTER TABLE objects DROP COLUMN log_type;
                ALTER TABLE jobs DROP COLUMN verify_deep; ALTER TABLE jobs DROP COLUMN verify_metadata; ALTER TABLE jobs DROP COLUMN missing_objects;
                ALTER TABLE jobs DROP COLUMN mismatched_objects; ALTER TABLE jobs DROP COLUMN extra_objects;
                ALTER TABLE objects DROP COLUMN target_only; DROP TABLE copies; ALTER TABLE jobs DROP COLUMN update_json; DROP TABLE update_intents; ALTER TABLE uploads DROP COLUMN requested_at; ALTER TABLE jobs DROP COLUMN fixed_concurrency; ALTER TABLE jobs DROP COLUMN concurrency_level; ALTER TABLE jobs DROP COLUMN dispatched_through; DROP TABLE listing_ranges; DROP TABLE batches; DROP TABLE job_runners;
                DELETE FROM schema_version WHERE version > 5;
                """;
            downgrade.ExecuteNonQuery();
        }
        SqliteConnection.ClearAllPools();

        var upgraded = new SqliteStateStore(_store.Location).StreamObjectReport(job.Id).ToDictionary(r => r.Key, r => r.LogType);

        Assert.Equal(LogType.ImportSkippedExists, upgraded["a"]);
        Assert.Equal(LogType.ImportErrorRetryExhaustion, upgraded["b"]);
        Assert.Null(upgraded["c"]);
    }
}
