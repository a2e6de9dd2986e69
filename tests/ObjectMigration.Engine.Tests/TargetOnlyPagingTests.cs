using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The keys only the target holds (Verify's extras), read page by page from the store: each once, in order, none outside the prefix.</summary>
public sealed class TargetOnlyPagingTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "om-extras-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { /* temp folder */ }
    }

    [Fact]
    public void Pages_of_target_only_keys_cover_each_once_across_many_pages()
    {
        var store = new SqliteStateStore(Path.Combine(_folder, "state.db"));
        var job = new MigrationJob
        {
            Id = Guid.NewGuid(), Name = "extras", Type = JobType.Verify, State = JobState.Running, SourceBucket = "s", TargetBucket = "t",
            TargetPrefix = "copy/", CreatedAt = DateTimeOffset.UtcNow, Concurrency = 1,
            PartSize = TransferOptions.DefaultPartSize, MultipartThreshold = TransferOptions.DefaultMultipartThreshold,
        };
        store.AddJob(job);
        ListedObject Listed(string key) => new(key, 1, "\"e\"", DateTimeOffset.UnixEpoch, null);
        const int count = 2_500;
        // Every other key also at the source; keys around the prefix that must never show ("cop", "copz/...").
        var targetKeys = Enumerable.Range(0, count).Select(i => $"copy/k{i:d5} é").Append("cop").Append("copz/x").Append("copy").ToList();
        store.SaveListingPage(job.Id, targetKeys.Select(Listed).ToList(), null, done: true, target: true);
        store.SaveListingPage(job.Id, Enumerable.Range(0, count).Where(i => i % 2 == 0).Select(i => Listed($"k{i:d5} é")).ToList(), null, done: true, target: false);

        var seen = new List<string>();
        var after = "";
        while (store.GetTargetOnlyObjects(job.Id, after, 300) is { Count: > 0 } page)
        {
            seen.AddRange(page.Select(o => o.Key));
            after = page[^1].Key;
        }

        var expected = Enumerable.Range(0, count).Where(i => i % 2 == 1).Select(i => $"k{i:d5} é").ToList();
        Assert.Equal(expected, seen);
    }
}
