using System.Management.Automation;
using ObjectMigration.Engine.Accounting;

namespace ObjectMigration.Commands;

/// <summary>Writes one row per object with its outcome (transferred; skipped and why; failed and why) to a .csv or .json file.</summary>
[Cmdlet(VerbsData.Export, "MigrationJobReport", SupportsShouldProcess = true)]
[OutputType(typeof(FileInfo))]
public sealed class ExportMigrationJobReportCommand : JobTargetCmdlet
{
    [Parameter(Mandatory = true, Position = 1)]
    public string Path { get; set; } = "";

    protected override void ProcessRecord() => ForEachJob(job =>
    {
        var path = GetUnresolvedProviderPathFromPSPath(Path);
        if (!ShouldProcess(path, $"Export the report of migration job '{job.Name}'")) return;
        var rows = JobReport.Write(Engine.Store, job.Id, path);
        WriteVerbose($"Wrote {rows} rows to {path}.");
        WriteObject(new FileInfo(path));
    });
}
