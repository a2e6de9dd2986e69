using ObjectMigration.Bench;

// bench tool: listing-memory N | seed E A S BUCKET WORKLOAD | purge E A S BUCKET | limit SE SA SS SBUCKET TE TA TS TBUCKET CONCURRENCY
switch (args.FirstOrDefault())
{
    case "listing-memory":
        return await ListingMemory.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 100_000);
    case "seed":
        using (var client = S3Tools.Client(args[1], args[2], args[3], 32)) await S3Tools.SeedAsync(client, args[4], args[5], 16);
        return 0;
    case "seed-size":
        Console.WriteLine(S3Tools.Workload(args[1]).Sum(o => o.Size));
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
