using System.Diagnostics;
using ObjectMigration.Engine;
using ObjectMigration.Engine.Accounting;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.Transfer;

namespace ObjectMigration.Bench;

/// <summary>
/// An inventory and a verify of a synthetic bucket (issue 17): time and peak memory of each whole job (listing into the
/// store, deciding, recording) and of the inventory report, with the engine alone.
/// </summary>
internal static class KindsAtScale
{
    /// <summary>Prints markdown table rows; exit code 0 when both jobs completed over every object.</summary>
    public static async Task<int> RunAsync(int count)
    {
        var home = Path.Combine(Path.GetTempPath(), "om-bench-kinds-" + Guid.NewGuid().ToString("n")[..8]);
        var engine = MigrationEngine.Open(home);
        var source = engine.AddConnector(new CloudConnector { Name = "synthetic-source", Endpoint = "http://127.0.0.1:1" }, "a", "b", false);
        var target = engine.AddConnector(new CloudConnector { Name = "synthetic-target", Endpoint = "http://127.0.0.1:2" }, "a", "b", false);
        var ok = true;

        var inventory = engine.CreateJob(new MigrationJobRequest { Type = JobType.Inventory, SourceConnector = source.Name, SourceBucket = "src" });
        var synthetic = new SyntheticSource(count);
        ok &= await MeasureAsync("inventory", count, () => new MigrationRunner(engine.Store, engine.GetJob(inventory.Id), synthetic, synthetic).RunAsync(CancellationToken.None),
            () => engine.Store.GetProgress(inventory.Id).SkippedObjects == count);
        IReadOnlyList<InventoryRow> rows = [];
        ok &= await MeasureAsync("inventory report (depth 1)", count, () =>
        {
            rows = Inventory.Summarize(engine.Store, engine.GetJob(inventory.Id));
            return Task.FromResult(JobState.Completed);
        }, () => rows.Single(r => r.Group == InventoryGroup.Total).Objects == count);

        var verify = engine.CreateJob(new MigrationJobRequest { Type = JobType.Verify, SourceConnector = source.Name, SourceBucket = "src", TargetConnector = target.Name, TargetBucket = "dst" });
        ok &= await MeasureAsync("verify", count,
            () => new MigrationRunner(engine.Store, engine.GetJob(verify.Id), new SyntheticSource(count), new SyntheticSource(count, "synthetic-target")).RunAsync(CancellationToken.None),
            () => engine.Store.GetProgress(verify.Id).FailedObjects == 0);

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(home, recursive: true);
        return ok ? 0 : 1;
    }

    private static async Task<bool> MeasureAsync(string what, int count, Func<Task<JobState>> run, Func<bool> correct)
    {
        GC.Collect();
        var clock = Stopwatch.StartNew();
        var (state, peak) = await PeakMemory.WhileAsync(run);
        clock.Stop();
        var right = state == JobState.Completed && correct();
        Console.WriteLine($"| {what} | {count:N0} | {state}{(right ? "" : " (wrong counts)")} | {clock.Elapsed.TotalSeconds:F1} s | {count / clock.Elapsed.TotalSeconds:N0} | {peak / 1048576.0:F0} MB |");
        return right;
    }
}
