using ObjectMigration.Bench;

// bench tool: listing-memory N | kinds N | seed E A S BUCKET WORKLOAD | warm E A S BUCKET | purge E A S BUCKET | limit SE SA SS SBUCKET TE TA TS TBUCKET CONCURRENCY
// | relay --upstream HOST:PORT ... (LatencyRelay) | relay-cost [PINGS] | relay-probe DIRECT RELAYED A S BUCKET KEY COUNT [LARGEKEY PUTMIB] (RelayCheck)
switch (args.FirstOrDefault())
{
    case "listing-memory":
        return await ListingMemory.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 100_000);
    case "kinds":
        return await KindsAtScale.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 100_000);
    case "seed":
        using (var client = S3Tools.Client(args[1], args[2], args[3], 32)) await S3Tools.SeedAsync(client, args[4], args[5], 16);
        return 0;
    case "engine":
    {
        // The engine alone, without PowerShell: engine SRC KEY SECRET BUCKET DST KEY SECRET BUCKET CONCURRENCY [RUNS]
        // With RUNS > 1 the same copy runs again into fresh buckets (BUCKET-2, ...) in the same process, and each run's CPU
        // is printed: the first pays the runtime's warm-up (JIT, tiering), the later ones show the cost per object alone.
        var home = Path.Combine(Path.GetTempPath(), "om-bench-engine-" + Guid.NewGuid().ToString("n")[..8]);
        var engine = ObjectMigration.Engine.MigrationEngine.Open(home);
        engine.AddConnector(new ObjectMigration.Engine.Model.CloudConnector { Name = "src", Endpoint = args[1] }, args[2], args[3], false);
        engine.AddConnector(new ObjectMigration.Engine.Model.CloudConnector { Name = "dst", Endpoint = args[5] }, args[6], args[7], false);
        var runs = args.Length > 10 ? int.Parse(args[10]) : 1;
        var process = System.Diagnostics.Process.GetCurrentProcess();
        for (var run = 1; run <= runs; run++)
        {
            var targetBucket = run == 1 ? args[8] : $"{args[8]}-{run}";
            if (run > 1) using (var client = S3Tools.Client(args[5], args[6], args[7], 4)) await client.PutBucketAsync(targetBucket);
            process.Refresh();
            var cpuBefore = process.TotalProcessorTime;
            var job = engine.CreateJob(new ObjectMigration.Engine.Model.MigrationJobRequest
            {
                SourceConnector = "src", SourceBucket = args[4], TargetConnector = "dst", TargetBucket = targetBucket, Concurrency = int.Parse(args[9]),
            });
            var state = await engine.RunJobAsync(job.Id, null, CancellationToken.None);
            process.Refresh();
            var finished = engine.GetJob(job.Id);
            Console.WriteLine($"run {run} {state} job {(finished.FinishedAt - finished.StartedAt)?.TotalSeconds:F2} s cpu {(process.TotalProcessorTime - cpuBefore).TotalSeconds:F2} s");
            if (state != ObjectMigration.Engine.Model.JobState.Completed) return 1;
        }
        return 0;
    }
    case "relay":
        return await LatencyRelay.RunAsync(args);
    case "relay-cost":
        return await RelayCheck.CostAsync(args);
    case "relay-probe":
        return await RelayCheck.ProbeAsync(args);
    case "seed-size":
        Console.WriteLine(S3Tools.Workload(args[1]).Sum(o => o.Size));
        return 0;
    case "mkbucket":
        using (var client = S3Tools.Client(args[1], args[2], args[3], 4)) await client.PutBucketAsync(args[4]);
        return 0;
    case "warm":
        using (var client = S3Tools.Client(args[1], args[2], args[3], 32)) await S3Tools.WarmAsync(client, args[4], 16);
        return 0;
    case "purge":
        using (var client = S3Tools.Client(args[1], args[2], args[3], 32)) await S3Tools.PurgeAsync(client, args[4]);
        return 0;
    case "limit":
        var concurrency = int.Parse(args[9]);
        using (var source = S3Tools.Client(args[1], args[2], args[3], concurrency * 2))
        using (var target = S3Tools.Client(args[5], args[6], args[7], concurrency * 2))
        {
            await S3Tools.LimitAsync(source, args[4], target, args[8], concurrency);
        }
        return 0;
    default:
        Console.Error.WriteLine("usage: listing-memory N | seed ENDPOINT KEY SECRET BUCKET small|large|mixed | purge ENDPOINT KEY SECRET BUCKET | limit SRC KEY SECRET BUCKET DST KEY SECRET BUCKET CONCURRENCY");
        return 2;
}
