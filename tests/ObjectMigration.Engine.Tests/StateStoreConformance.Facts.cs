using System.Collections.Concurrent;
using System.Text;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Transfer;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// The facts of docs/design/state-store-split.md section 7 that today's contracts can express: byte order of keys,
/// idempotent pages and outcomes, two handles writing at once, log filters and cursors, connector names, removal,
/// the store's own clock.
/// </summary>
public abstract partial class StateStoreConformance
{
    /// <summary>S3's order: the keys' UTF-8 bytes, compared as unsigned bytes.</summary>
    private static int ByteOrder(string a, string b) => Encoding.UTF8.GetBytes(a).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b));

    // Byte order differs from a linguistic order ('_x' after 'B', 'a b' before 'a-b') and from UTF-16 order
    // (U+FF21 'Ａ' before U+1F600, whose UTF-16 surrogates come first).
    private static readonly string[] AwkwardKeys =
    [
        "ab", "a/b", "a-b", "a b", "a", "_x", "B", "A", "é", "e\u0301", "日本/語", "\uFF21", "\U0001F600", "a+b", "a%2Fb", "a?b", "a#b",
        "a//b", "dir/", "/lead", "Z", "z", "~", "0", "9", "a\u00A0b",
    ];

    // ---- The plan ----

    [Fact]
    public void Keys_come_back_in_S3_byte_order_and_paging_after_a_key_visits_each_key_once()
    {
        var (store, job) = WithJob(CreateStore());
        store.SaveListingPage(job.Id, AwkwardKeys.Select(k => Object(k)).ToList(), null, done: true, target: false);
        var expected = AwkwardKeys.Order(Comparer<string>.Create(ByteOrder)).ToList();

        var paged = new List<string>();
        var after = "";
        for (var page = store.GetPendingObjects(job.Id, after, 4); page.Count > 0; page = store.GetPendingObjects(job.Id, after, 4))
        {
            paged.AddRange(page.Select(o => o.Key));
            after = page[^1].Key;
        }

        Assert.Equal(expected, paged);
        Assert.Equal(expected, store.StreamListedObjects(job.Id).Select(o => o.Key));
        Assert.Equal(expected, store.StreamObjectReport(job.Id).Select(r => r.Key));
    }

    [Fact]
    public void A_listing_page_saved_twice_counts_its_objects_and_bytes_once()
    {
        var (store, job) = WithJob(CreateStore());
        var page = Enumerable.Range(0, 250).Select(i => Object($"k/{i:d4}", 1000 + i)).ToList();
        Assert.Equal(250, store.SaveListingPage(job.Id, page, "t1", done: false, target: false));
        // The same page again (a flush retried after a commit whose answer was lost), and a page overlapping it.
        Assert.Equal(0, store.SaveListingPage(job.Id, page, "t1", done: false, target: false));
        Assert.Equal(10, store.SaveListingPage(job.Id, page.Skip(240).Concat(Enumerable.Range(250, 10).Select(i => Object($"k/{i:d4}", 1000 + i))).ToList(), null, done: true, target: false));

        var progress = store.GetProgress(job.Id);
        Assert.Equal(260, progress.Objects);
        Assert.Equal(Enumerable.Range(0, 260).Sum(i => 1000L + i), progress.TotalBytes);
        Assert.True(progress.ListingComplete);
        Assert.Equal((null, true), store.GetListingCheckpoint(job.Id, target: false));
        // The target's listing is kept apart and counts nothing.
        Assert.Equal(2, store.SaveListingPage(job.Id, [Object("k/0000"), Object("only-on-target")], "t", done: false, target: true));
        Assert.Equal(0, store.SaveListingPage(job.Id, [Object("k/0000")], "t", done: true, target: true));
        Assert.Equal(260, store.GetProgress(job.Id).Objects);
        Assert.Equal(("t", true), store.GetListingCheckpoint(job.Id, target: true));
        Assert.Equal(["only-on-target"], store.GetTargetOnlyObjects(job.Id, "", 10).Select(o => o.Key));
    }

    [Fact]
    public void An_object_changed_while_copied_replaces_its_row_and_the_found_bytes_follow()
    {
        var (store, job) = WithJob(CreateStore());
        store.SaveListingPage(job.Id, [Object("a", 100), Object("b", 50)], null, done: true, target: false);
        store.UpdateListedObject(job.Id, new ListedObject("a", 180, "\"ffff\"", Listed.AddHours(1), "STANDARD_IA"));
        Assert.Equal(230, store.GetProgress(job.Id).TotalBytes);
        var a = store.GetPendingObjects(job.Id, "", 1).Single();
        Assert.Equal((180L, "\"ffff\"", Listed.AddHours(1), "STANDARD_IA"), (a.Size, a.ETag, a.LastModified, a.StorageClass));
    }

    // ---- Results ----

    [Fact]
    public void An_outcome_recorded_twice_is_counted_once_with_its_bytes_and_a_copy_leaves_its_record()
    {
        var (store, job) = WithJob(CreateStore());
        store.SaveListingPage(job.Id, new[] { "a", "b", "c", "d" }.Select(k => Object(k, 100)).ToList(), null, done: true, target: false);
        List<ObjectResult> results =
        [
            new("a", ObjectOutcome.Transferred, 100, null, null, TargetETag: "\"ABC\""),
            new("b", ObjectOutcome.Skipped, 100, LogType.ImportSkippedExists, "same"),
            new("c", ObjectOutcome.Failed, 0, LogType.MigrationError, "no"),
        ];
        store.SaveResults(job.Id, results, []);
        store.SaveResults(job.Id, results, []);
        var progress = store.GetProgress(job.Id);
        Assert.Equal((1L, 1L, 1L), (progress.TransferredObjects, progress.SkippedObjects, progress.FailedObjects));
        Assert.Equal(100, progress.TransferredBytes);
        // Each result's log line is written each time it is recorded (the log tells what happened, twice here).
        Assert.Equal(4, store.GetLogs(job.Id, new LogQuery()).Count);
        // The copy left its record (ETag unquoted, lower case) for the next job onto the same target key.
        MigrationJob SameTarget(string name)
        {
            var next = new MigrationJob
            {
                Id = Guid.NewGuid(), Name = name, Type = JobType.Migrate, State = JobState.Pending, SourceConnectorId = job.SourceConnectorId,
                SourceBucket = "src", TargetConnectorId = job.TargetConnectorId, TargetBucket = job.TargetBucket, CreatedAt = Listed,
            };
            store.AddJob(next);
            store.SaveListingPage(next.Id, [Object("a", 100)], null, done: true, target: false);
            return next;
        }
        var other = SameTarget("other");
        Assert.Equal(new CopyRecord("\"0123456789abcdef0123456789abcdef\"", "abc"), store.GetPendingObjects(other.Id, "", 1).Single().Copied);
        // A later copy whose target ETag is unknown takes the record away: it would vouch for bytes it did not see.
        store.SaveResults(other.Id, [new ObjectResult("a", ObjectOutcome.Transferred, 100, null, null)], []);
        Assert.Null(store.GetPendingObjects(SameTarget("third").Id, "", 1).Single().Copied);
    }

    [Fact]
    public async Task Results_recorded_through_two_handles_at_once_add_up_exactly()
    {
        var first = CreateStore();
        var (_, job) = WithJob(first);
        var second = OpenAgain(first);
        const int count = 1200;
        var keys = Enumerable.Range(0, count).Select(i => $"obj/{i:d5}").ToList();
        for (var i = 0; i < count; i += 400) first.SaveListingPage(job.Id, keys.Skip(i).Take(400).Select(k => Object(k, 7)).ToList(), null, done: i + 400 >= count, target: false);
        ObjectResult Result(int i) => new(keys[i], (i % 3) switch { 0 => ObjectOutcome.Transferred, 1 => ObjectOutcome.Skipped, _ => ObjectOutcome.Failed },
            7, i % 3 == 2 ? LogType.MigrationError : null, i % 3 == 2 ? "no" : null);

        // Both handles record every result, in batches of 50 and in opposite orders, at the same time: each object
        // must count once whichever handle's batch lands first.
        var batches = Enumerable.Range(0, count / 50).Select(b => Enumerable.Range(b * 50, 50).Select(Result).ToList()).ToList();
        var writers = new[]
        {
            Task.Run(() => { foreach (var batch in batches) first.SaveResults(job.Id, batch, []); }),
            Task.Run(() => { foreach (var batch in Enumerable.Reverse(batches)) second.SaveResults(job.Id, batch, []); }),
        };
        await Task.WhenAll(writers);

        var progress = second.GetProgress(job.Id);
        Assert.Equal((400L, 400L, 400L, 0L), (progress.TransferredObjects, progress.SkippedObjects, progress.FailedObjects, progress.PendingObjects));
        Assert.Equal(400 * 7, progress.TransferredBytes);
        Assert.Empty(first.GetPendingObjects(job.Id, "", 10));
    }

    // ---- Runs ----

    [Fact]
    public async Task Of_two_handles_racing_to_start_a_run_exactly_one_wins()
    {
        var first = CreateStore();
        var second = OpenAgain(first);
        for (var round = 0; round < 5; round++)
        {
            var (_, job) = WithJob(first, $"race{round}");
            using var go = new ManualResetEventSlim();
            var racers = Enumerable.Range(0, 6).Select(i => Task.Run(() =>
            {
                go.Wait();
                return ((i % 2 == 0 ? first : second).TryStartRun(job.Id, $"host{i}:1#{round}", JobPhase.Listing), i);
            })).ToList();
            go.Set();
            var winners = (await Task.WhenAll(racers)).Where(r => r.Item1).ToList();
            Assert.Single(winners);
            Assert.Equal($"host{winners[0].i}:1#{round}", second.FindJob(job.Id)!.Runner);
        }
    }

    [Fact]
    public void A_pending_request_is_not_overridden_and_a_settled_run_is_not_settled_again()
    {
        var (store, job) = WithJob(CreateStore());
        Assert.True(store.TryStartRun(job.Id, "r#1", JobPhase.Listing));
        Assert.True(store.TrySetControlRequest(job.Id, ControlRequest.Pause));
        Assert.False(store.TrySetControlRequest(job.Id, ControlRequest.Interrupt));
        Assert.Equal(ControlRequest.Pause, store.GetControlRequest(job.Id));
        Assert.True(store.TrySettleRun(job.Id, "r#1", JobState.Paused));
        // Settling clears the request; the run is no longer held, so it cannot settle again.
        Assert.Equal(ControlRequest.None, store.GetControlRequest(job.Id));
        Assert.False(store.TrySettleRun(job.Id, "r#1", JobState.Completed));
        Assert.True(store.TryTransition(job.Id, [JobState.Paused], JobState.Pending, detached: true));
        Assert.Equal([(job.Id, JobState.Pending)], store.GetDetachedJobsToRun(10));
    }

    [Fact]
    public void Staleness_follows_the_store_clock_and_a_slow_runner_takes_its_job_back()
    {
        var store = CreateStore();
        var (_, stale) = WithJob(store, "stale");
        var (_, fresh) = WithJob(store, "fresh");
        var (_, spared) = WithJob(store, "spared");
        foreach (var job in new[] { stale, fresh, spared }) Assert.True(store.TryStartRun(job.Id, $"{job.Name}#1", JobPhase.Transferring));
        AgeHeartbeat(store, stale.Id, TimeSpan.FromHours(1));
        AgeHeartbeat(store, spared.Id, TimeSpan.FromHours(1));
        // Written a second ago by the store's clock: within a 10-minute staleness, whatever the client's clock says.
        AgeHeartbeat(store, fresh.Id, TimeSpan.FromSeconds(1));

        Assert.Equal(1, store.MarkStaleJobsInterrupted(TimeSpan.FromMinutes(10), [spared.Id]));

        Assert.Equal(JobState.Interrupted, store.FindJob(stale.Id)!.State);
        Assert.Equal(JobState.Running, store.FindJob(fresh.Id)!.State);
        Assert.Equal(JobState.Running, store.FindJob(spared.Id)!.State);
        Assert.Equal(0, store.MarkStaleJobsInterrupted(TimeSpan.FromMinutes(10), [spared.Id]));
        // Its runner was only slow: the next heartbeat takes the job back; another runner's is lost.
        Assert.Equal(RunnerLease.Lost, store.Heartbeat(stale.Id, "someone#9", JobPhase.Transferring));
        Assert.Equal(RunnerLease.Reclaimed, store.Heartbeat(stale.Id, "stale#1", JobPhase.Verifying));
        var back = store.FindJob(stale.Id)!;
        Assert.Equal((JobState.Running, JobPhase.Verifying), (back.State, back.Phase));
        // Once no longer spared, the other old heartbeat is stale too; the reclaimed job's heartbeat is fresh.
        Assert.Equal(1, store.MarkStaleJobsInterrupted(TimeSpan.FromMinutes(10), []));
        Assert.Equal((JobState.Interrupted, JobState.Running), (store.FindJob(spared.Id)!.State, store.FindJob(stale.Id)!.State));
    }

    [Fact]
    public void Removing_a_job_leaves_no_row_of_it_and_takes_its_inline_source_connector_along()
    {
        var store = CreateStore();
        var inline = store.AddConnector(new CloudConnector { Name = "inline-" + Guid.NewGuid().ToString("n"), Endpoint = "http://127.0.0.1:9100" }, [42], hidden: true);
        var target = store.AddConnector(new CloudConnector { Name = "kept-target", Endpoint = "http://127.0.0.1:9101" }, [43]);
        var job = new MigrationJob
        {
            Id = Guid.NewGuid(), Name = "removed", Type = JobType.Migrate, State = JobState.Pending,
            SourceConnectorId = inline.Id, SourceBucket = "src", TargetConnectorId = target.Id, TargetBucket = "dst", CreatedAt = Listed,
        };
        store.AddJob(job);
        var (_, survivor) = WithJob(store, "survivor");
        foreach (var j in new[] { job, survivor })
        {
            store.SaveListingPage(j.Id, [Object("a"), Object("b")], null, done: true, target: false);
            store.SaveListingPage(j.Id, [Object("a")], null, done: true, target: true);
            store.SaveUploadRequested(j.Id, "b", Listed);
            store.SaveUploadId(j.Id, "b", "u-1");
            store.SavePart(j.Id, "b", new UploadedPart(1, "\"p1\"", 5));
            store.SaveUpdateIntent(j.Id, "a", "k=v");
            store.SaveResults(j.Id, [new ObjectResult("a", ObjectOutcome.Failed, 0, LogType.MigrationError, "no")], [new LogRecord(LogType.MigrationStart, null, "go")]);
        }
        Assert.Equal(1 + 2 + 1 + 1 + 1 + 2 + 1, CountRowsOfJob(store, job.Seq));

        store.RemoveJob(job.Id);

        Assert.Equal(0, CountRowsOfJob(store, job.Seq));
        Assert.Null(store.FindJob(job.Id));
        Assert.Null(store.FindConnector(inline.Id));
        Assert.NotNull(store.FindConnector(target.Id));
        Assert.Equal(9, CountRowsOfJob(store, survivor.Seq));
        Assert.Throws<KeyNotFoundException>(() => store.RemoveJob(job.Id));
    }

    // ---- Connectors ----

    [Fact]
    public void Connector_names_are_unique_ignoring_ASCII_case_only_on_both_handles()
    {
        var first = CreateStore();
        var second = OpenAgain(first);
        first.AddConnector(new CloudConnector { Name = "Ceph-East", Endpoint = "http://127.0.0.1:9000" }, [1]);
        Assert.Throws<DuplicateNameException>(() => second.AddConnector(new CloudConnector { Name = "cEPH-eAST", Endpoint = "http://127.0.0.1:9000" }, [1]));
        // Only ASCII letters fold, as SQLite's NOCASE: 'Ä' and 'ä' are different names.
        var upper = first.AddConnector(new CloudConnector { Name = "Ärger", Endpoint = "http://127.0.0.1:9000" }, [1]);
        var lower = second.AddConnector(new CloudConnector { Name = "ärger", Endpoint = "http://127.0.0.1:9000" }, [1]);
        Assert.Equal(upper.Id, second.FindConnector("ÄRGER")!.Id);
        Assert.Equal(lower.Id, first.FindConnector("äRGER")!.Id);
        var renamed = first.FindConnector("ärger")!;
        renamed.Name = "CEPH-EAST";
        Assert.Throws<DuplicateNameException>(() => second.UpdateConnector(renamed, null));
        // Listed by name whatever its ASCII case.
        first.AddConnector(new CloudConnector { Name = "alpha", Endpoint = "http://127.0.0.1:9000" }, [1]);
        first.AddConnector(new CloudConnector { Name = "Beta", Endpoint = "http://127.0.0.1:9000" }, [1]);
        Assert.Equal(["alpha", "Beta", "Ceph-East"], second.GetConnectors().Select(c => c.Name).Where(n => n.All(char.IsAscii)));
    }

    [Fact]
    public void A_hidden_connector_is_neither_listed_nor_found_by_name_but_by_id()
    {
        var store = CreateStore();
        var hidden = store.AddConnector(new CloudConnector { Name = "inline-x", Endpoint = "http://127.0.0.1:9003" }, [7], hidden: true);
        Assert.Empty(store.GetConnectors());
        Assert.Null(store.FindConnector("inline-x"));
        Assert.Equal("http://127.0.0.1:9003", store.FindConnector(hidden.Id)!.Endpoint);
    }

    [Fact]
    public void A_sealed_credential_round_trips_byte_for_byte_null_keeps_it_and_empty_erases_it()
    {
        var store = CreateStore();
        var sealedBytes = Enumerable.Range(0, 512).Select(i => (byte)(i * 37 % 256)).ToArray();
        var added = store.AddConnector(new CloudConnector { Name = "bytes", Endpoint = "http://127.0.0.1:9000", AccessKeyId = "AKIAEXAMPLE1234" }, sealedBytes);
        Assert.Equal(sealedBytes, OpenAgain(store).GetConnectorCredential(added.Id));
        // Only the last four characters of the access key id are kept in the clear.
        Assert.Equal("***********1234", store.FindConnector(added.Id)!.AccessKeyId);
        added.Region = "eu-west-1";
        store.UpdateConnector(added, null);
        Assert.Equal(sealedBytes, store.GetConnectorCredential(added.Id));
        Assert.Equal("eu-west-1", store.FindConnector("BYTES")!.Region);
        store.UpdateConnector(added, []);
        Assert.Empty(store.GetConnectorCredential(added.Id));
        Assert.Throws<KeyNotFoundException>(() => store.GetConnectorCredential(added.Id + 1000));
    }

    // ---- The log ----

    private static readonly string[] LogKeys =
    [
        "a.txt", "b.txt", "c.txt", "d.txt", "A.txt", "a.log", "ab.txt", "a*b", "a?b", "a[1]", "a`b", "a]b", "dir/x.txt", "dir/sub/y.txt",
        "é.txt", "日本.txt", "a\nb", "[x", "a\\b", "a.b^c$",
    ];

    /// <summary>Patterns that GLOB, regular expressions and KeyPattern could read differently: escapes, classes, metacharacters.</summary>
    private static readonly string[] LogPatterns =
    [
        "*.txt", "?.txt", "[a-c].txt", "[^a-c].txt", "a`*b", "a`?b", "a`[1`]", "a``b", "a]b", "dir/*", "dir/*/*.txt", "a?b", "a*", "[x", "a\\b", "a.b^c$", "[\\]", "?", "A*",
    ];

    [Fact]
    public void Log_key_filters_match_exactly_as_the_wildcard_rule()
    {
        var (store, job) = WithJob(CreateStore());
        store.AddLogs(job.Id, LogKeys.Select(k => new LogRecord(LogType.MigrationError, k, "k " + k)).Append(new LogRecord(LogType.MigrationStart, null, "no key")).ToList());
        var wrong = new List<string>();
        foreach (var pattern in LogPatterns)
        {
            var rule = new KeyPattern(pattern);
            var expected = LogKeys.Where(rule.IsMatch).ToList();
            var found = store.GetLogs(job.Id, new LogQuery { KeyPatterns = [pattern] }).Select(l => l.ObjectKey).ToList();
            var typed = store.GetLogs(job.Id, new LogQuery { KeyPatterns = [pattern], Types = [LogType.MigrationError, LogType.MigrationStart] }).Select(l => l.ObjectKey).ToList();
            if (!expected.SequenceEqual(found) || !expected.SequenceEqual(typed))
            {
                wrong.Add($"'{pattern}': expected [{string.Join(", ", expected)}], found [{string.Join(", ", found)}]");
            }
            Assert.Empty(store.GetLogs(job.Id, new LogQuery { KeyPatterns = [pattern], Types = [LogType.VerifyMissing] }));
        }
        Assert.True(wrong.Count == 0, string.Join(Environment.NewLine, wrong));
    }

    [Fact]
    public void Log_filters_combine_several_patterns_and_page_with_skip_and_first()
    {
        var (store, job) = WithJob(CreateStore());
        store.AddLogs(job.Id, LogKeys.Select(k => new LogRecord(LogType.MigrationError, k, "k " + k)).ToList());
        var expected = LogKeys.Where(k => new KeyPattern("a*").IsMatch(k) || new KeyPattern("dir/*").IsMatch(k)).ToList();
        var query = new LogQuery { KeyPatterns = ["a*", "dir/*"] };
        Assert.Equal(expected, store.GetLogs(job.Id, query).Select(l => l.ObjectKey));
        Assert.Equal(expected.Skip(2).Take(3), store.GetLogs(job.Id, new LogQuery { KeyPatterns = query.KeyPatterns, Skip = 2, First = 3 }).Select(l => l.ObjectKey));
    }

    [Fact]
    public async Task A_reader_paging_by_sequence_while_two_handles_write_sees_every_entry_exactly_once()
    {
        var first = CreateStore();
        var (_, job) = WithJob(first);
        var second = OpenAgain(first);
        var reader = OpenAgain(first);
        first.SaveListingPage(job.Id, Enumerable.Range(0, 400).Select(i => Object($"o{i:d4}")).ToList(), null, done: true, target: false);
        const int batches = 40;
        var writers = new[]
        {
            // Plain log lines from one handle, results with their log lines from the other.
            Task.Run(() => { for (var b = 0; b < batches; b++) first.AddLogs(job.Id, Enumerable.Range(0, 10).Select(i => new LogRecord(LogType.MigrationNotice, null, $"first {b}/{i}")).ToList()); }),
            Task.Run(() =>
            {
                for (var b = 0; b < batches; b++)
                {
                    var results = Enumerable.Range(0, 10).Select(i => new ObjectResult($"o{b * 10 + i:d4}", ObjectOutcome.Failed, 0, LogType.MigrationError, $"second {b}/{i}")).ToList();
                    second.SaveResults(job.Id, results, []);
                }
            }),
        };
        var seen = new List<MigrationJobLogEntry>();
        long cursor = 0;
        void ReadOn()
        {
            foreach (var entry in reader.GetLogs(job.Id, new LogQuery { AfterSequence = cursor }))
            {
                Assert.True(entry.Sequence > cursor);
                seen.Add(entry);
                cursor = entry.Sequence;
            }
        }
        while (!writers.All(w => w.IsCompleted)) ReadOn();
        await Task.WhenAll(writers);
        ReadOn();

        var messages = seen.Select(e => e.Message).ToList();
        Assert.Equal(2 * batches * 10, messages.Count);
        Assert.Equal(messages.Count, messages.Distinct().Count());
        // Each writer's lines in the order it wrote them.
        var own = messages.Where(m => m.StartsWith("first ", StringComparison.Ordinal)).ToList();
        Assert.Equal(Enumerable.Range(0, batches).SelectMany(b => Enumerable.Range(0, 10).Select(i => $"first {b}/{i}")), own);
    }

    // ---- Uploads ----

    [Fact]
    public void An_upload_goes_from_requested_to_recorded_with_its_parts_and_is_forgotten_whole()
    {
        var (store, job) = WithJob(CreateStore());
        store.SaveUploadRequested(job.Id, "big", Listed);
        Assert.Equal([new RequestedUpload("big", Listed, null)], store.GetRequestedUploads(job.Id));
        Assert.Empty(store.GetOpenUploads(job.Id));
        store.SaveUploadId(job.Id, "big", "up-1");
        store.ClearUploadRequested(job.Id, "big");
        Assert.Empty(store.GetRequestedUploads(job.Id));
        store.SavePart(job.Id, "big", new UploadedPart(2, "\"p2\"", 8));
        store.SavePart(job.Id, "big", new UploadedPart(1, "\"p1-old\"", 8));
        // A part uploaded again replaces the one recorded.
        store.SavePart(job.Id, "big", new UploadedPart(1, "\"p1\"", 8));
        Assert.Equal([new UploadedPart(1, "\"p1\"", 8), new UploadedPart(2, "\"p2\"", 8)], store.GetUploadedParts(job.Id, "big"));
        Assert.Equal([new OpenUpload("big", "up-1")], store.GetOpenUploads(job.Id));

        store.ForgetUpload(job.Id, "big");

        Assert.Null(store.GetUploadId(job.Id, "big"));
        Assert.Empty(store.GetUploadedParts(job.Id, "big"));
        Assert.Empty(store.GetOpenUploads(job.Id));
        Assert.Empty(store.GetRequestedUploads(job.Id));
    }

    [Fact]
    public void Update_intents_are_kept_per_key_until_forgotten()
    {
        var (store, job) = WithJob(CreateStore());
        store.SaveUpdateIntent(job.Id, "a", "x=1");
        store.SaveUpdateIntent(job.Id, "a", "x=2");
        store.SaveUpdateIntent(job.Id, "B", "y=1");
        Assert.Equal(new Dictionary<string, string> { ["a"] = "x=2", ["B"] = "y=1" }, store.GetUpdateIntents(job.Id));
        store.ForgetUpdateIntent(job.Id, "a");
        Assert.Equal(["B"], store.GetUpdateIntents(job.Id).Keys);
    }

    // ---- Workers ----

    [Fact]
    public void A_worker_is_registered_asked_to_stop_and_shows_the_jobs_its_runs_hold()
    {
        var first = CreateStore();
        var second = OpenAgain(first);
        var (_, job) = WithJob(first);
        var worker = new MigrationWorker { Id = Guid.NewGuid(), ComputerName = "host-a", ProcessId = 4242, RunnerPrefix = "host-a:4242", UserName = "om", MaxJobs = 2 };
        first.AddWorker(worker);
        Assert.True(first.TryStartRun(job.Id, "host-a:4242#1", JobPhase.Listing));
        Assert.Equal(WorkerSignal.Run, first.WorkerHeartbeat(worker.Id));
        var listed = Assert.Single(second.GetWorkers());
        Assert.Equal((worker.Id, "host-a", 4242, WorkerState.Running), (listed.Id, listed.ComputerName, listed.ProcessId, listed.State));
        Assert.Equal(["job"], listed.Jobs);
        Assert.True(second.RequestWorkerStop(worker.Id));
        Assert.Equal(WorkerSignal.Stop, first.WorkerHeartbeat(worker.Id));
        Assert.Equal(WorkerState.Stopping, first.GetWorkers().Single().State);
        second.RemoveWorker(worker.Id);
        Assert.Equal(WorkerSignal.Gone, first.WorkerHeartbeat(worker.Id));
        Assert.False(first.RequestWorkerStop(worker.Id));
    }
}
