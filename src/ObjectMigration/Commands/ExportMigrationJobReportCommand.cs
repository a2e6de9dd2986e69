using System.Management.Automation;
using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;

namespace ObjectMigration.Commands;

/// <summary>
/// Writes one row per object of each job (outcome, log type and reason, ETags, how it was verified) to a .csv, .jsonl
/// or .json file, streamed from the store. The jobs of one pipeline go to one file, or one file each where -Path holds
/// {Name} or {Id}.
/// </summary>
[Cmdlet(VerbsData.Export, "MigrationJobReport", SupportsShouldProcess = true)]
[OutputType(typeof(FileInfo))]
public sealed class ExportMigrationJobReportCommand : JobTargetCmdlet, IDisposable
{
    [Parameter(Mandatory = true, Position = 1)]
    public string Path { get; set; } = "";

    /// <summary>Replaces a file that exists; without it an existing file is an error.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private string _path = "";
    private bool _filePerJob;
    /// <summary>The one file the whole pipeline writes when -Path has no placeholder; opened by the first job.</summary>
    private JobReport? _shared;
    private readonly HashSet<Guid> _reported = [];
    private readonly Dictionary<string, MigrationJob> _filesWritten =
        new(OperatingSystem.IsLinux() ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase);

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        _path = GetUnresolvedProviderPathFromPSPath(Path);
        try
        {
            JobReport.FormatOf(_path);
            _filePerJob = JobReport.HasPlaceholders(_path);
            // Refused before any job is read: nothing is written, not even under -WhatIf's name.
            if (!_filePerJob && !Force && File.Exists(_path)) throw new ReportFileExistsException(_path);
        }
        catch (Exception e) when (e is ArgumentException or ReportFileExistsException)
        {
            ThrowTerminatingError(ToErrorRecord(e, Path));
        }
    }

    protected override void ProcessRecord()
    {
        foreach (var id in Id)
        {
            MigrationJob job;
            try
            {
                job = Engine.GetJob(id);
            }
            catch (Exception e) when (e is not PipelineStoppedException)
            {
                WriteFailure(e, id);
                continue;
            }
            if (!_reported.Add(job.Id))
            {
                WriteWarning($"Migration job '{job.Name}' ({job.Id}) came twice; its rows are in the report once.");
                continue;
            }
            if (_filePerJob) ExportToOwnFile(job);
            else ExportToSharedFile(job);
        }
    }

    private void ExportToOwnFile(MigrationJob job)
    {
        var path = JobReport.ExpandPath(_path, job);
        try
        {
            if (_filesWritten.TryGetValue(path, out var earlier))
            {
                throw new ArgumentException(
                    $"Migration jobs '{earlier.Name}' ({earlier.Id}) and '{job.Name}' ({job.Id}) would both write '{path}'. " +
                    "Job names need not be unique: put {Id} in -Path (for example report-{Name}-{Id}.csv).", "Path");
            }
            if (!Force && File.Exists(path)) throw new ReportFileExistsException(path);
            if (!ShouldProcess(path, $"Write the report of migration job '{job.Name}' ({job.Id})")) return;
            _filesWritten[path] = job;
            using var report = JobReport.Create(path, Force);
            WriteRows(report, job);
            report.Complete();
            WriteObject(new FileInfo(path));
        }
        catch (Exception e) when (e is not PipelineStoppedException and not OperationCanceledException)
        {
            WriteFailure(e, job.Id);
        }
    }

    private void ExportToSharedFile(MigrationJob job)
    {
        if (!ShouldProcess(_path, $"Write the report of migration job '{job.Name}' ({job.Id})")) return;
        try
        {
            _shared ??= JobReport.Create(_path, Force);
            WriteRows(_shared, job);
        }
        catch (Exception e) when (e is not PipelineStoppedException and not OperationCanceledException)
        {
            // Some rows of this job may be in the file already: the file cannot be trusted, so none is left.
            _shared?.Dispose();
            _shared = null;
            ThrowTerminatingError(ToErrorRecord(e, job.Id));
        }
    }

    private void WriteRows(JobReport report, MigrationJob job)
    {
        var objects = Engine.GetProgress(job.Id).Objects;
        var progress = new ProgressRecord(1, "Export-MigrationJobReport", $"{job.Name}: writing {objects} rows to {report.Path}");
        var rows = report.Write(Engine.Store, job, written =>
        {
            progress.PercentComplete = objects > 0 ? (int)Math.Min(100, written * 100 / objects) : 0;
            progress.StatusDescription = $"{job.Name}: {written} of {objects} rows";
            WriteProgress(progress);
        }, Cancellation);
        if (rows >= JobReport.ProgressInterval)
        {
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }
        WriteVerbose($"Wrote {rows} rows of migration job '{job.Name}' ({job.Id}) to {report.Path}.");
    }

    protected override void EndProcessing()
    {
        if (_shared is not null)
        {
            try
            {
                _shared.Complete();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                ThrowTerminatingError(ToErrorRecord(e, _path));
            }
            WriteObject(new FileInfo(_shared.Path));
        }
        base.EndProcessing();
    }

    /// <summary>PowerShell disposes the command when the pipeline ends: a report left unfinished (Ctrl+C, an error) is removed.</summary>
    public void Dispose() => _shared?.Dispose();
}
