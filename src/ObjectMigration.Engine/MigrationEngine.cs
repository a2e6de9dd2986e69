using System.Collections.Concurrent;
using System.Net;
using ObjectMigration.Engine.Connectors;
using ObjectMigration.Engine.Model;
using ObjectMigration.Engine.State;
using ObjectMigration.Engine.Storage;
using ObjectMigration.Engine.Transfer;
using ObjectMigration.Engine.Workers;

namespace ObjectMigration.Engine;

/// <summary>An action the job's state does not allow (resuming a completed job), or an unknown name or id.</summary>
public sealed class JobStateException(string message) : InvalidOperationException(message);

/// <summary>
/// A check before a job is written found a bucket missing or unreachable: <see cref="Kind"/> (BucketNotFound,
/// AccessDenied, AuthenticationError, ConnectionError, StorageError) and the parameter to fix make the error id.
/// </summary>
public sealed class JobCheckException(string kind, string parameter, string message) : Exception(message)
{
    public string Kind { get; } = kind;
    public string ParamName { get; } = parameter;
}

/// <summary>No saved connector has the name given in <see cref="ParamName"/> (-Name, -SourceConnector, -TargetConnector).</summary>
public sealed class ConnectorNotFoundException(string name, string parameter)
    : KeyNotFoundException(parameter == "Name"
        ? $"No cloud connector is named '{name}'. See Get-CloudConnector, or create one with New-CloudConnector."
        : $"-{parameter}: no cloud connector is named '{name}'. Give a name Get-CloudConnector lists, or create one with New-CloudConnector.")
{
    public string ParamName { get; } = parameter;
}

public sealed class CloudBucket
{
    public string Connector { get; set; } = "";
    public string Name { get; set; } = "";
    public string? Location { get; set; }
    public DateTimeOffset? CreationDate { get; set; }
    public long? ObjectCount { get; set; }
    public long? TotalBytes { get; set; }

    public override string ToString() => Name;
}

/// <summary>
/// The engine's front door: what the cmdlets call. One instance per state folder, shared by all runspaces of a
/// process; other processes of the same user see the same state through the database.
/// </summary>
public sealed class MigrationEngine
{
    private static readonly ConcurrentDictionary<string, MigrationEngine> Instances = new(StringComparer.Ordinal);

    /// <summary>
    /// How long a Running job's heartbeat (every half second) may be silent before the job counts as Interrupted;
    /// OBJECTMIGRATION_STALE_SECONDS overrides the default of 10 s.
    /// </summary>
    public static TimeSpan StaleHeartbeat
    {
        get => StaleTime.Heartbeat;
        set => StaleTime.Heartbeat = value;
    }

    public IStateStore Store { get; }
    /// <summary>The SQLite database under <see cref="Store"/> (which tests may wrap), for what works on the file itself; null for PostgreSQL.</summary>
    private readonly SqliteStateStore? _database;
    private readonly SecretProtector _secrets;

    /// <summary>The state folder: the secret key (unless shared), worker logs, and the SQLite database unless another store is given.</summary>
    public string HomeFolder { get; }

    /// <summary>
    /// The state store as given (-StateStore or OBJECTMIGRATION_STATE), handed on to the workers this engine starts;
    /// null: SQLite in <see cref="HomeFolder"/>. May hold a password: never shown (<see cref="IStateStore.Location"/> is).
    /// </summary>
    public string? StateStoreSpec { get; }

    private MigrationEngine(string home, string? stateStore, Func<IStateStore, IStateStore>? wrapStore = null)
    {
        // The folder holds more than SQLite's file (worker logs, the worker start lock, the key file): made with any store.
        HomeFolder = StateLocation.PreparePrivateFolder(home);
        StateStoreSpec = string.IsNullOrWhiteSpace(stateStore) ? null : stateStore;
        IStateStore opened;
        if (StateStoreSpec is null || StateStores.Classify(StateStoreSpec) == StateStores.SpecKind.Path)
        {
            _database = new SqliteStateStore(StateStoreSpec is null ? StateLocation.DatabasePath(home) : StateStores.SqlitePath(StateStoreSpec.Trim()));
            opened = StateFolderFullGuard.Wrap(_database);
        }
        else
        {
            opened = StateStores.Open(StateStoreSpec, home);
        }
        Store = wrapStore is null ? opened : wrapStore(opened);
        _secrets = new SecretProtector(home) { SharedStore = _database is null };
    }

    /// <summary>An engine of its own (not shared per folder) whose store calls pass through <paramref name="wrapStore"/>: tests time races with it.</summary>
    internal static MigrationEngine OpenWrapped(string home, Func<IStateStore, IStateStore> wrapStore, string? stateStore = null) =>
        new(Path.GetFullPath(home), stateStore, wrapStore);

    /// <summary>
    /// The engine for a state folder (default: OBJECTMIGRATION_HOME, else the user's local data folder) and a state store
    /// (default: OBJECTMIGRATION_STATE, else SQLite in the folder); one per pair in a process.
    /// </summary>
    public static MigrationEngine Open(string? home = null, string? stateStore = null)
    {
        var folder = Path.GetFullPath(home ?? StateLocation.HomeFolder());
        var spec = string.IsNullOrWhiteSpace(stateStore) ? Environment.GetEnvironmentVariable(StateStores.Variable) : stateStore;
        spec = string.IsNullOrWhiteSpace(spec) ? null : spec;
        // A session that changes the shared key it is given gets an engine with that key (the key seals secrets).
        var key = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            $"{Environment.GetEnvironmentVariable(SharedKey.Variable)}\n{Environment.GetEnvironmentVariable(SharedKey.FileVariable)}")));
        return Instances.GetOrAdd(folder + "\n" + spec + "\n" + key, _ => new MigrationEngine(folder, spec));
    }

    // ---- Connectors ----

    /// <summary>Stores a connector with stored keys (-Credential).</summary>
    public CloudConnector AddConnector(CloudConnector connector, string accessKeyId, string secret, bool pathStyleGiven, bool hidden = false) =>
        AddConnector(connector, ConnectorCredential.Stored(accessKeyId, secret), pathStyleGiven, hidden);

    /// <summary>
    /// Validates and stores a connector; only a stored credential and a proxy credential (<paramref name="proxyCredential"/>,
    /// -ProxyCredential) leave secrets in the store, sealed together.
    /// </summary>
    public CloudConnector AddConnector(CloudConnector connector, ConnectorCredential credential, bool pathStyleGiven, bool hidden = false, NetworkCredential? proxyCredential = null)
    {
        // A hidden connector (a source given inline) is named by the engine.
        if (!hidden) ConnectorRules.CheckName(connector.Name, "Name");
        CredentialSources.Check(credential);
        CredentialSources.Apply(connector, credential);
        ConnectorRules.Complete(connector, pathStyleGiven);
        ConnectorRules.CheckProxyCredential(connector, proxyCredential);
        var added = Store.AddConnector(connector, Seal(Secrets(credential, proxyCredential)), hidden);
        added.ProxyUserName = proxyCredential?.UserName;
        return added;
    }

    /// <summary>Checks a connector definition as New-CloudConnector would, without storing it (unsaved connectors).</summary>
    public static ConnectorAccess Unsaved(CloudConnector connector, string accessKeyId, string secret, bool pathStyleGiven) =>
        Unsaved(connector, ConnectorCredential.Stored(accessKeyId, secret), pathStyleGiven);

    /// <summary>Checks a connector definition as New-CloudConnector would, without storing it; its keys come from <paramref name="credential"/>.</summary>
    public static ConnectorAccess Unsaved(CloudConnector connector, ConnectorCredential credential, bool pathStyleGiven, NetworkCredential? proxyCredential = null)
    {
        CredentialSources.Check(credential);
        CredentialSources.Apply(connector, credential);
        ConnectorRules.Complete(connector, pathStyleGiven);
        ConnectorRules.CheckProxyCredential(connector, proxyCredential);
        connector.ProxyUserName = proxyCredential?.UserName;
        var access = credential.Source == CredentialSource.Stored
            ? new ConnectorAccess(connector, credential.SecretAccessKey!)
            : new ConnectorAccess(connector, CredentialSources.For(connector));
        return access with { ProxyCredential = proxyCredential };
    }

    /// <summary>Applies changes to a saved connector, validated like a new one; a new stored credential replaces the old.</summary>
    public CloudConnector UpdateConnector(string name, Action<CloudConnector> change, (string AccessKeyId, string Secret)? credential) =>
        UpdateConnector(name, change, credential is { } c ? ConnectorCredential.Stored(c.AccessKeyId, c.Secret) : null);

    /// <summary>
    /// Applies changes to a saved connector, validated like a new one. A new credential source replaces the old one;
    /// moving away from stored keys erases the stored secret.
    /// </summary>
    public CloudConnector UpdateConnector(string name, Action<CloudConnector> change, ConnectorCredential? credential) =>
        UpdateConnector(name, change, credential, proxyCredential: null, removeProxyCredential: false);

    /// <summary>
    /// As above; <paramref name="proxyCredential"/> replaces the proxy's credential, <paramref name="removeProxyCredential"/>
    /// drops it, and so does removing the proxy.
    /// </summary>
    public CloudConnector UpdateConnector(string name, Action<CloudConnector> change, ConnectorCredential? credential, NetworkCredential? proxyCredential, bool removeProxyCredential)
    {
        var connector = GetConnector(name);
        var before = _secrets.Unprotect(Store.GetConnectorCredential(connector.Id));
        if (connector.CredentialSource == CredentialSource.Stored) connector.AccessKeyId = before.AccessKeyId ?? "";
        var (endpoint, derived) = (connector.Endpoint, ConnectorRules.HasDerivedEndpoint(connector));
        change(connector);
        // A new region (or account) moves an endpoint the provider derived, unless a new endpoint was given too.
        if (derived && connector.Endpoint == endpoint) connector.Endpoint = "";
        if (credential is not null)
        {
            CredentialSources.Check(credential);
            CredentialSources.Apply(connector, credential);
        }
        ConnectorRules.Complete(connector, pathStyleGiven: true);
        ConnectorRules.CheckProxyCredential(connector, proxyCredential);
        // The proxy's credential belongs to the proxy: it goes when the proxy goes.
        (string? User, string? Password) proxy = proxyCredential is not null ? (proxyCredential.UserName, proxyCredential.Password)
            : removeProxyCredential || string.IsNullOrEmpty(connector.Proxy) ? (null, null)
            : (before.ProxyUserName, before.ProxyPassword);
        var after = (credential is null ? before : Secrets(credential, null)) with { ProxyUserName = proxy.User, ProxyPassword = proxy.Password };
        // Sealed again only when something changed: an unchanged connector keeps its blob (and a Windows one its DPAPI seal).
        Store.UpdateConnector(connector, after == before ? null : Seal(after));
        connector.ProxyUserName = after.ProxyUserName;
        return connector;
    }

    /// <summary>What a connector keeps sealed: the stored key and secret (other sources keep theirs elsewhere) and the proxy's credential.</summary>
    private static ConnectorSecrets Secrets(ConnectorCredential credential, NetworkCredential? proxyCredential) =>
        new(credential.Source == CredentialSource.Stored ? credential.AccessKeyId : null,
            credential.Source == CredentialSource.Stored ? credential.SecretAccessKey : null,
            proxyCredential?.UserName, proxyCredential?.Password);

    /// <summary>Removes a connector; refuses while a job that is not finished uses it, unless forced.</summary>
    public void RemoveConnector(string name, bool force)
    {
        var connector = GetConnector(name);
        // A Failed job resumes once its cause is fixed, a CompletedWithErrors one with -RetryFailed: both still need their connectors.
        var busy = Store.GetJobsUsingConnector(connector.Id)
            .Where(j => !JobStates.IsTerminal(j.State) || j.State is JobState.Failed or JobState.CompletedWithErrors).ToList();
        if (busy.Count > 0 && !force)
        {
            throw new JobStateException($"Cloud connector '{connector.Name}' is used by {busy.Count} unfinished job(s) ({string.Join(", ", busy.Take(3).Select(j => j.Name))}); finish or stop them, or use -Force.");
        }
        Store.RemoveConnector(connector.Id);
    }

    /// <summary>The saved connector of that name; <paramref name="parameter"/> is the one that named it, for the error.</summary>
    public CloudConnector GetConnector(string name, string parameter = "Name") =>
        Store.FindConnector(name) ?? throw new ConnectorNotFoundException(name, parameter);

    /// <summary>
    /// The connector with where its keys come from, for the storage layer: its stored key and secret, or a provider
    /// that looks them up (and refreshes temporary ones) when requests are signed.
    /// </summary>
    public ConnectorAccess GetAccess(CloudConnector connector)
    {
        var secrets = _secrets.Unprotect(Store.GetConnectorCredential(connector.Id));
        connector.ProxyUserName = secrets.ProxyUserName;
        var proxyCredential = secrets.ProxyUserName is null ? null : new NetworkCredential(secrets.ProxyUserName, secrets.ProxyPassword);
        if (connector.CredentialSource != CredentialSource.Stored) return new ConnectorAccess(connector, CredentialSources.For(connector)) { ProxyCredential = proxyCredential };
        connector.AccessKeyId = secrets.AccessKeyId ?? "";
        return new ConnectorAccess(connector, secrets.SecretAccessKey ?? "") { ProxyCredential = proxyCredential };
    }

    /// <summary>
    /// Reveals the access key id in place of the masked one the table holds (stored keys only; other sources have none)
    /// and the proxy credential's user name; never a secret.
    /// </summary>
    public CloudConnector WithAccessKey(CloudConnector connector)
    {
        var secrets = _secrets.Unprotect(Store.GetConnectorCredential(connector.Id));
        if (connector.CredentialSource == CredentialSource.Stored) connector.AccessKeyId = secrets.AccessKeyId ?? "";
        connector.ProxyUserName = secrets.ProxyUserName;
        return connector;
    }

    public static IObjectStore OpenObjectStore(ConnectorAccess access, int concurrency = 16, TimeSpan? timeout = null, PacerSettings? pacing = null) =>
        new S3ObjectStore(access, maxConnections: Math.Max(16, concurrency * 2), timeout, pacing);

    /// <summary>Lists the connector's buckets (or the named ones), with object counts and sizes unless told not to; streams the listing.</summary>
    public static async Task<IReadOnlyList<CloudBucket>> TestConnectorAsync(ConnectorAccess access, string[] buckets, bool statistics, TimeSpan timeout, CancellationToken ct)
    {
        using var store = OpenObjectStore(access, timeout: timeout);
        // Named buckets are checked directly: a user may be allowed into a bucket without ListBuckets.
        var chosen = buckets.Length == 0 ? await store.ListBucketsAsync(ct).ConfigureAwait(false) : buckets.Select(name => new BucketInfo(name, null)).ToList();
        var result = new List<CloudBucket>();
        foreach (var bucket in chosen)
        {
            var info = new CloudBucket { Connector = access.Connector.Name, Name = bucket.Name, CreationDate = bucket.CreationDate };
            info.Location = await store.GetBucketLocationAsync(bucket.Name, ct).ConfigureAwait(false);
            if (statistics)
            {
                long count = 0, bytes = 0;
                string? token = null;
                do
                {
                    var page = await store.ListAsync(bucket.Name, "", token, null, 1000, ct).ConfigureAwait(false);
                    count += page.Objects.Count;
                    bytes += page.Objects.Sum(o => o.Size);
                    token = page.NextContinuationToken;
                }
                while (token is not null);
                (info.ObjectCount, info.TotalBytes) = (count, bytes);
            }
            result.Add(info);
        }
        return result;
    }

    // ---- Jobs ----

    /// <summary>The name a job of <paramref name="request"/> gets: the one given, else source-to-target.</summary>
    public static string NameFor(MigrationJobRequest request) =>
        !string.IsNullOrWhiteSpace(request.Name) ? request.Name
        : request.Type is JobType.Inventory or JobType.Update ? $"{request.SourceBucket}-{request.Type.ToString().ToLowerInvariant()}"
        : $"{request.SourceBucket}-to-{request.TargetBucket}";

    /// <summary>
    /// The job a re-run of the same New-MigrationJob (a runbook restarted from the top) should get instead of a duplicate:
    /// the unfinished job of that name (Pending, Running, Paused, Interrupted), with what differs from
    /// <paramref name="request"/> (empty when the definition is the same). Null when there is none: a job that ended does
    /// not stop a new run (a second run of a finished migration copies what is new). <paramref name="unsavedSourceEndpoint"/>
    /// stands for the source connector of a source given inline.
    /// </summary>
    public (MigrationJob Job, IReadOnlyList<string> Differences)? FindSameNamedJob(MigrationJobRequest request, string? unsavedSourceEndpoint = null)
    {
        var name = NameFor(request);
        var job = GetJobs().Where(j => string.Equals(j.Name, name, StringComparison.OrdinalIgnoreCase) && !JobStates.IsTerminal(j.State))
            .OrderByDescending(j => j.CreatedAt).FirstOrDefault();
        if (job is null) return null;
        return (job, JobDefinition.Differences(job, request, unsavedSourceEndpoint));
    }

    /// <summary>
    /// Validates a request and stores the job as Pending, for this session to run or, <paramref name="detached"/>, for a
    /// worker process. Nothing is written when validation fails.
    /// </summary>
    public MigrationJob CreateJob(MigrationJobRequest request, ConnectorAccess? unsavedSource = null, bool detached = false)
    {
        var source = unsavedSource is null ? GetConnector(request.SourceConnector, "SourceConnector") : null;
        JobRules.Check(request);
        UpdateRules.CheckProvider(request, ProviderProfiles.For((source ?? unsavedSource!.Connector).Provider));
        // An inventory or update works on the source only: it has no target connector (id 0).
        var target = JobTypes.HasTarget(request.Type) ? GetConnector(request.TargetConnector, "TargetConnector") : null;
        if (target is not null) JobRules.CheckNotOntoItself(request, source ?? unsavedSource!.Connector, target);
        if (unsavedSource is not null)
        {
            // Given inline, the UpCloud way: kept (encrypted) for this job only, not listed with the saved connectors.
            unsavedSource.Connector.Name = $"job-{Guid.NewGuid():n}-source";
            var credential = unsavedSource.StoredSecret is { } secret
                ? ConnectorCredential.Stored(unsavedSource.Connector.AccessKeyId, secret)
                : ConnectorCredential.Of(unsavedSource.Connector);
            source = AddConnector(unsavedSource.Connector, credential, pathStyleGiven: true, hidden: true);
        }
        var job = NewJob(request, source!, target, detached);
        try
        {
            Store.AddJob(job);
        }
        catch when (unsavedSource is not null)
        {
            // Its hidden connector belongs to the job that was not stored: its secret must not stay behind alone.
            Store.RemoveConnector(source!.Id);
            throw;
        }
        // Said once per job, in its log: a connector without TLS off this machine (New-CloudConnector also warns).
        var notices = ConnectorRules.TransportWarnings(source!, proxyCredential: false, unsavedSource is null ? null : "The source endpoint given inline")
            .Concat(target is null || target.Id == source!.Id ? [] : ConnectorRules.TransportWarnings(target, proxyCredential: false))
            .Select(message => new LogRecord(LogType.MigrationNotice, null, message)).ToList();
        if (notices.Count > 0) Store.AddLogs(job.Id, notices);
        return job;
    }

    /// <summary>The job a request describes, in state Pending, not yet stored.</summary>
    private static MigrationJob NewJob(MigrationJobRequest request, CloudConnector source, CloudConnector? target, bool detached) =>
        new()
        {
            Id = Guid.NewGuid(),
            Name = NameFor(request),
            Type = request.Type,
            State = JobState.Pending,
            SourceConnectorId = source.Id,
            SourceConnector = source.Name,
            SourceBucket = request.SourceBucket,
            SourcePrefix = request.SourcePrefix ?? "",
            Keys = request.Keys,
            TargetConnectorId = target?.Id ?? 0,
            TargetConnector = target?.Name ?? "",
            TargetBucket = request.TargetBucket,
            TargetPrefix = request.TargetPrefix ?? "",
            Overwrite = request.Overwrite,
            Filter = request.Filter,
            Concurrency = request.Concurrency,
            FixedConcurrency = request.FixedConcurrency,
            MaxBytesPerSecond = request.MaxBytesPerSecond,
            MultipartThreshold = request.MultipartThreshold,
            PartSize = request.PartSize,
            NoProgressTimeout = request.NoProgressTimeout ?? S3ObjectStore.DefaultNoProgressTimeout,
            StorageClassMap = new Dictionary<string, string>(request.StorageClassMap, StringComparer.OrdinalIgnoreCase),
            Deep = request.Deep,
            CompareMetadata = request.CompareMetadata,
            Update = request.Type == JobType.Update ? request.Update : null,
            CreatedAt = DateTimeOffset.UtcNow,
            Detached = detached,
        };

    /// <summary>
    /// Checks a request against every rule that needs no network (JobRules), with the connectors it names: nothing is
    /// written. A source given inline (<paramref name="unsavedSource"/>) stands for the source connector.
    /// </summary>
    public void CheckRules(MigrationJobRequest request, ConnectorAccess? unsavedSource = null)
    {
        var source = unsavedSource?.Connector ?? GetConnector(request.SourceConnector, "SourceConnector");
        JobRules.Check(request);
        UpdateRules.CheckProvider(request, ProviderProfiles.For(source.Provider));
        if (JobTypes.HasTarget(request.Type)) JobRules.CheckNotOntoItself(request, source, GetConnector(request.TargetConnector, "TargetConnector"));
    }

    /// <summary>
    /// Checks before a job is written that its buckets exist and its connectors reach them (New-MigrationJob without
    /// -Force): a wrong bucket or endpoint is an error now, not a Failed job later.
    /// </summary>
    public async Task CheckReachableAsync(MigrationJobRequest request, ConnectorAccess? unsavedSource, CancellationToken ct)
    {
        var sides = new List<(ConnectorAccess Access, string Bucket, string Side)>
        {
            (unsavedSource ?? GetAccess(GetConnector(request.SourceConnector, "SourceConnector")), request.SourceBucket, "Source"),
        };
        if (JobTypes.HasTarget(request.Type)) sides.Add((GetAccess(GetConnector(request.TargetConnector, "TargetConnector")), request.TargetBucket, "Target"));
        foreach (var (access, bucket, side) in sides)
        {
            using var store = OpenObjectStore(access, timeout: request.NoProgressTimeout);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(ReachabilityTimeout);
            bool exists;
            try
            {
                exists = await store.BucketExistsAsync(bucket, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new JobCheckException("ConnectionError", $"{side}Connector",
                    $"The {side.ToLowerInvariant()} '{access.Connector.Name}' did not answer within {ReachabilityTimeout.TotalSeconds:0} s. {ForceAdvice}");
            }
            catch (StorageException e)
            {
                var (kind, parameter) = e.ErrorClass switch
                {
                    ErrorClass.AccessDenied => ("AccessDenied", $"{side}Bucket"),
                    ErrorClass.Authentication => ("AuthenticationError", $"{side}Connector"),
                    ErrorClass.Connection or ErrorClass.Timeout => ("ConnectionError", $"{side}Connector"),
                    _ => ("StorageError", $"{side}Bucket"),
                };
                throw new JobCheckException(kind, parameter,
                    $"The {side.ToLowerInvariant()} bucket '{bucket}' on '{access.Connector.Name}' could not be checked: {e.Message} Test-CloudConnector -Name {access.Connector.Name} shows more. {ForceAdvice}");
            }
            if (!exists)
            {
                throw new JobCheckException("BucketNotFound", $"{side}Bucket",
                    $"The {side.ToLowerInvariant()} bucket '{bucket}' does not exist on '{access.Connector.Name}'. Correct -{side}Bucket or create the bucket. {ForceAdvice}");
            }
        }
    }

    private static readonly TimeSpan ReachabilityTimeout = TimeSpan.FromSeconds(30);
    private const string ForceAdvice = "New-MigrationJob -Force creates the job anyway (a runbook that creates its buckets later): it then fails when it runs, and Resume-MigrationJob continues it once the cause is fixed.";

    /// <summary>Jobs whose runner runs in this process: alive by definition, however late a heartbeat is.</summary>
    private readonly ConcurrentDictionary<Guid, byte> _runningHere = new();

    /// <summary>
    /// A Running job whose runner is gone counts as Interrupted: at once when its process on this host has ended (a
    /// killed session or worker), else once its heartbeat is stale.
    /// </summary>
    private void MarkStaleJobsInterrupted()
    {
        try
        {
            foreach (var (id, runner) in Store.GetRunningJobRunners())
            {
                if (!_runningHere.ContainsKey(id) && LocalProcess.IsGone(runner)) Store.MarkInterrupted(id, runner);
            }
            Store.MarkStaleJobsInterrupted(StaleHeartbeat, _runningHere.Keys.ToArray());
        }
        catch (StateFolderFullException)
        {
            // A full disk must not stop reading: the job shows its last stored state until there is room to mark it.
        }
    }

    /// <summary>
    /// Makes <paramref name="request"/> the repair of a finished Verify job (New-MigrationJob -FromVerify): a Migrate job
    /// with the verify's source and target, for exactly the keys it found missing or mismatched, overwriting them. What
    /// the request says of how to run (name, concurrency, bandwidth, part sizes) is kept.
    /// </summary>
    public void MakeRepairOf(Guid verifyJobId, MigrationJobRequest request)
    {
        var verify = Store.FindJob(verifyJobId)
            ?? throw new ArgumentException($"-FromVerify {verifyJobId}: no migration job has that id. See Get-MigrationJob -State Completed, CompletedWithErrors.", "FromVerify");
        if (verify.Type != JobType.Verify)
        {
            throw new ArgumentException($"-FromVerify names '{verify.Name}', a {verify.Type} job: give the id of a Verify job.", "FromVerify");
        }
        if (verify.State is not (JobState.Completed or JobState.CompletedWithErrors))
        {
            throw new ArgumentException($"-FromVerify: the Verify job '{verify.Name}' is {verify.State}; repair from it once it has completed (Wait-MigrationJob -Id {verify.Id}).", "FromVerify");
        }
        if (Store.FindConnector(verify.SourceConnector) is null)
        {
            throw new ArgumentException($"-FromVerify: the Verify job '{verify.Name}' read a source given inline (-SourceEndpoint) or a connector since removed; " +
                "create the Migrate job with -SourceConnector and -Key instead.", "FromVerify");
        }
        // Each object's last outcome, not the log (which keeps what earlier runs of the verify found, too).
        var keys = Store.StreamObjectReport(verify.Id)
            .Where(row => row.Outcome == ObjectOutcome.Failed && row.LogType is LogType.VerifyMissing or LogType.VerifyMismatch)
            .Select(row => row.Key).ToArray();
        if (keys.Length == 0)
        {
            throw new ArgumentException($"-FromVerify: the Verify job '{verify.Name}' found nothing missing or mismatched; there is nothing to repair.", "FromVerify");
        }
        request.Type = JobType.Migrate;
        request.Name ??= $"{verify.Name}-repair";
        request.SourceConnector = verify.SourceConnector;
        request.SourceBucket = verify.SourceBucket;
        request.SourcePrefix = verify.SourcePrefix;
        request.TargetConnector = verify.TargetConnector;
        request.TargetBucket = verify.TargetBucket;
        request.TargetPrefix = verify.TargetPrefix;
        request.Keys = keys;
        request.Overwrite = OverwriteMode.Always;
        request.Filter = new ObjectFilter();
        request.Deep = false;
        request.CompareMetadata = false;
    }

    public MigrationJob GetJob(Guid id)
    {
        MarkStaleJobsInterrupted();
        return Store.FindJob(id) ?? throw new KeyNotFoundException($"No migration job has the id {id}. See Get-MigrationJob.");
    }

    public IReadOnlyList<MigrationJob> GetJobs()
    {
        MarkStaleJobsInterrupted();
        return Store.GetJobs();
    }

    public MigrationJobProgress GetProgress(Guid id)
    {
        MarkStaleJobsInterrupted();
        return Store.GetProgress(id);
    }

    /// <summary>
    /// Runs a job in this process until it settles. A resume is the same call. <paramref name="concurrencyCap"/> bounds
    /// the job's transfers on this run (a worker's -Concurrency) without changing the job.
    /// </summary>
    public async Task<JobState> RunJobAsync(Guid id, RunnerOptions? options, CancellationToken ct, int? concurrencyCap = null)
    {
        var job = GetJob(id);
        var jobCeiling = job.Concurrency;
        if (concurrencyCap is { } cap && cap < job.Concurrency) job.Concurrency = Math.Max(1, cap);
        IObjectStore source, target;
        try
        {
            var sourceConnector = Store.FindConnector(job.SourceConnectorId)
                ?? throw new JobStateException($"The source connector of job '{job.Name}' was removed: the job cannot run. Create a new job with an existing connector.");
            source = OpenObjectStore(GetAccess(sourceConnector), job.Concurrency, job.NoProgressTimeout, options?.Pacing);
            if (!JobTypes.HasTarget(job.Type))
            {
                // No target bucket: the source stands in for the target the runner never touches.
                target = source;
            }
            else
            {
                var targetConnector = Store.FindConnector(job.TargetConnectorId)
                    ?? throw new JobStateException($"The target connector of job '{job.Name}' was removed: the job cannot run. Create a new job with an existing connector.");
                target = OpenObjectStore(GetAccess(targetConnector), job.Concurrency, job.NoProgressTimeout, options?.Pacing);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Settled here, or a resumed job would wait Pending for a runner that never starts.
            if (Store.TryTransition(id, [JobState.Pending], JobState.Failed, error: e.Message)) Store.AddLogs(id, [new LogRecord(LogType.MigrationError, null, e.Message)]);
            throw;
        }
        using var sourceStore = source;
        using var targetStore = ReferenceEquals(target, source) ? null : target;
        var runner = new MigrationRunner(Store, job, source, target, options) { JobCeiling = jobCeiling };
        // A second run of the same job in this process does not start (the job is no longer Pending); it must not
        // unregister the first.
        // A joined run does not hold the job: the lead's heartbeat alone says whether the job is alive.
        var registered = options?.Join != true && _runningHere.TryAdd(id, 0);
        try
        {
            return await runner.RunAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            if (registered) _runningHere.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// What a job of <paramref name="request"/> would do, per action and reason, from live listings of both sides
    /// (-WhatIf): the same kind decides every object with the same rules and comparer as the real run, in a scratch store
    /// that holds this module's copy records for the target. Nothing is written to the state or to either bucket.
    /// </summary>
    public async Task<IReadOnlyList<MigrationPlanRow>> PlanAsync(MigrationJobRequest request, CancellationToken ct, ConnectorAccess? unsavedSource = null)
    {
        CheckRules(request, unsavedSource);
        var sourceAccess = unsavedSource ?? GetAccess(GetConnector(request.SourceConnector, "SourceConnector"));
        var target = JobTypes.HasTarget(request.Type) ? GetConnector(request.TargetConnector, "TargetConnector") : null;
        var job = NewJob(request, sourceAccess.Connector, target, detached: false);
        var folder = Path.Combine(Path.GetTempPath(), "om-plan-" + Guid.NewGuid().ToString("n"));
        try
        {
            var scratch = SqliteStateStore.ForPlan(Path.Combine(folder, "plan.db"), _database ?? (IStateStore)Store, job.TargetConnectorId, job.TargetBucket);
            scratch.AddJob(job);
            using var source = OpenObjectStore(sourceAccess, job.Concurrency, job.NoProgressTimeout);
            using var targetStore = target is null ? null : OpenObjectStore(GetAccess(target), job.Concurrency, job.NoProgressTimeout);
            return await new MigrationRunner(scratch, job, source, targetStore ?? source).PlanAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            try { Directory.Delete(folder, recursive: true); }
            catch (IOException) { /* a handle not yet released: the temp folder is cleaned by the system */ }
        }
    }

    public void RequestPause(Guid id)
    {
        while (true)
        {
            var job = GetJob(id);
            switch (job.State)
            {
                case JobState.Paused:
                    return;
                case JobState.Pending:
                    // A runner may start it between the look and the change: then it is Running, and the next turn asks
                    // that runner (starting a run clears requests, so asking first would be lost).
                    if (Store.TryTransition(id, [JobState.Pending], JobState.Paused)) return;
                    continue;
                case JobState.Running:
                    Store.SetControlRequest(id, ControlRequest.Pause);
                    return;
                default:
                    throw new JobStateException($"Job '{job.Name}' is {job.State}; only a Running or Pending job can be suspended.");
            }
        }
    }

    /// <summary>
    /// A worker that shuts down lets go of a job it holds: a Running one stops at a checkpoint as Interrupted (unless a
    /// person asked for a pause or stop first, which wins); one it had not started yet is Interrupted at once. Either
    /// way the next worker continues it unasked.
    /// </summary>
    internal void RequestInterrupt(Guid id)
    {
        while (Store.FindJob(id) is { } job)
        {
            if (job.State == JobState.Running)
            {
                Store.TrySetControlRequest(id, ControlRequest.Interrupt);
                return;
            }
            if (job.State != JobState.Pending || Store.TryTransition(id, [JobState.Pending], JobState.Interrupted)) return;
        }
    }

    /// <summary>Asks the runner to stop; a job with no live runner is cancelled here, aborting its open uploads.</summary>
    public async Task RequestStopAsync(Guid id, CancellationToken ct)
    {
        var job = GetJob(id);
        if (JobStates.IsTerminal(job.State)) throw new JobStateException($"Job '{job.Name}' is already {job.State}.");
        // A runner may start the job between the look and the change: then the change finds it Running, and the stop
        // goes to that runner instead of being lost.
        while (!await TryStopAsync(job, ct).ConfigureAwait(false))
        {
            job = GetJob(id);
            if (JobStates.IsTerminal(job.State)) return;
        }
    }

    /// <summary>Asks the runner of a Running job to stop, or cancels a job no runner holds; false when its state changed meanwhile.</summary>
    private async Task<bool> TryStopAsync(MigrationJob job, CancellationToken ct)
    {
        var id = job.Id;
        if (job.State == JobState.Running)
        {
            Store.SetControlRequest(id, ControlRequest.Stop);
            return true;
        }
        await AbortUploadsAsync(job, ct).ConfigureAwait(false);
        if (!Store.TryTransition(id, [JobState.Pending, JobState.Paused, JobState.Interrupted], JobState.Cancelled)) return false;
        Store.AddLogs(id, [new LogRecord(LogType.MigrationAbort, null, "Stopped on request.")]);
        return true;
    }

    /// <summary>
    /// Aborts the multipart uploads a job without a runner has open (recorded, or asked for and never recorded); returns
    /// what could not be done (also in the job's log).
    /// </summary>
    private async Task<IReadOnlyList<LogRecord>> AbortUploadsAsync(MigrationJob job, CancellationToken ct)
    {
        if (Store.GetOpenUploads(job.Id).Count == 0 && Store.GetRequestedUploads(job.Id).Count == 0) return [];
        var logs = new List<LogRecord>();
        try
        {
            if (Store.FindConnector(job.UploadSide.ConnectorId) is not { } connector) return [];
            using var store = OpenObjectStore(GetAccess(connector));
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            await new JobUploads(Store, job, store, RetryPolicy.Default).AbortAllAsync(logs.Add, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StorageException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            // The connector cannot be used here (its secret, its endpoint): the uploads stay, and the caller says so.
            logs.Add(new LogRecord(LogType.MigrationError, null, $"Could not abort the job's open multipart uploads: {e.Message}"));
        }
        ct.ThrowIfCancellationRequested();
        if (logs.Count > 0) Store.AddLogs(job.Id, logs);
        return logs.Where(l => l.Type == LogType.MigrationError).ToList();
    }

    /// <summary>
    /// Checks that a job may be resumed and makes it Pending for a runner; <paramref name="detached"/> says in the same
    /// change who runs it (a worker, or the caller's session); null leaves that as it was.
    /// </summary>
    public MigrationJob PrepareResume(Guid id, bool retryFailed, bool? detached = null)
    {
        var job = GetJob(id);
        // A Failed job (listing refused, bucket missing, credentials rejected) continues from its checkpoint once the
        // cause is fixed; -RetryFailed also puts its failed objects back.
        var allowed = job.State is JobState.Paused or JobState.Interrupted or JobState.Pending or JobState.Failed
            || (retryFailed && job.State is JobState.CompletedWithErrors);
        if (!allowed)
        {
            throw new JobStateException(job.State == JobState.CompletedWithErrors
                ? $"Job '{job.Name}' is CompletedWithErrors: use Resume-MigrationJob -RetryFailed to retry its failed objects."
                : $"Job '{job.Name}' is {job.State} and cannot be resumed: create a new job (New-MigrationJob) to copy again.");
        }
        foreach (var (connectorId, side) in new[] { (job.SourceConnectorId, "source"), (job.TargetConnectorId, "target") })
        {
            if (side == "target" && !JobTypes.HasTarget(job.Type)) continue;
            if (Store.FindConnector(connectorId) is null)
            {
                throw new JobStateException($"The {side} connector of job '{job.Name}' was removed: the job cannot run. Create a new job with an existing connector.");
            }
        }
        if (retryFailed && job.Type == JobType.Verify)
        {
            // Its target listing is of the run that found the differences: checked again against it, repaired objects
            // would still read as missing. A new verify lists the target afresh.
            throw new JobStateException($"Job '{job.Name}' is a Verify: -RetryFailed would check against the target as it was listed then. " +
                "Run a new verify (New-MigrationJob -Type Verify with the same source and target) to see the target as it is now.");
        }
        if (retryFailed && job.State is JobState.CompletedWithErrors or JobState.Failed) Store.ResetFailedObjects(id);
        if (!Store.TryTransition(id, [JobState.Paused, JobState.Interrupted, JobState.CompletedWithErrors, JobState.Failed, JobState.Pending], JobState.Pending, detached: detached))
        {
            throw new JobStateException($"Job '{job.Name}' changed state while it was being resumed; try again.");
        }
        return Store.FindJob(id)!;
    }

    /// <summary>Hands a job to worker processes (New-/Resume-MigrationJob -Detached), or takes it back to run in a session.</summary>
    public void SetDetached(Guid id, bool detached) => Store.SetDetached(id, detached);

    // ---- Workers ----

    /// <summary>
    /// The workers that are alive. A worker whose process on this host has ended, or whose heartbeat is stale, died
    /// (kill -9, reboot): its row is removed here, and its jobs are Interrupted for the next worker.
    /// </summary>
    public IReadOnlyList<MigrationWorker> GetWorkers()
    {
        MarkStaleJobsInterrupted();
        var cutoff = DateTimeOffset.UtcNow - StaleHeartbeat;
        var alive = new List<MigrationWorker>();
        foreach (var worker in Store.GetWorkers())
        {
            if (worker.LastHeartbeat < cutoff || LocalProcess.IsGone(worker.RunnerPrefix)) Store.RemoveWorker(worker.Id);
            else alive.Add(worker);
        }
        return alive;
    }

    public MigrationWorker GetWorker(Guid id) =>
        GetWorkers().FirstOrDefault(w => w.Id == id) ?? throw new KeyNotFoundException($"No running migration worker has the id {id}. See Get-MigrationWorker.");

    /// <summary>Asks a worker to pause its jobs and exit (Stop-MigrationWorker); the jobs are Paused, not failed.</summary>
    public void RequestWorkerStop(Guid id)
    {
        GetWorker(id);
        if (!Store.RequestWorkerStop(id)) throw new KeyNotFoundException($"The migration worker {id} has just exited.");
    }

    /// <summary>
    /// Jobs handed to workers that wait for one, made ready to run: Pending ones as they are, Interrupted ones (their
    /// worker died) made Pending again, to continue from their checkpoints. <paramref name="except"/>: jobs the caller runs.
    /// </summary>
    internal IReadOnlyList<Guid> TakeDetachedJobs(int limit, IReadOnlyCollection<Guid> except)
    {
        MarkStaleJobsInterrupted();
        var ready = new List<Guid>();
        foreach (var (id, state) in Store.GetDetachedJobsToRun(limit + except.Count))
        {
            if (ready.Count == limit) break;
            if (except.Contains(id)) continue;
            if (state == JobState.Interrupted)
            {
                // Another worker may take it first: then the transition fails, or its run wins the start.
                if (!Store.TryTransition(id, [JobState.Interrupted], JobState.Pending)) continue;
            }
            ready.Add(id);
        }
        return ready;
    }

    /// <summary>
    /// Fails with a clear message when this user cannot decrypt the stored connector secrets (a worker started by
    /// another user, or with another user's key file): better said once at start than as a failed job later.
    /// </summary>
    internal void CheckSecretsReadable()
    {
        // Every one on a shared store (a host whose key opens some and not others would fail the jobs of those);
        // the first of a state folder, whose secrets are one user's.
        var stored = Store.GetConnectors().Where(c => c.CredentialSource == CredentialSource.Stored);
        foreach (var connector in _database is null ? stored : stored.Take(1))
        {
            try
            {
                _ = _secrets.Unprotect(Store.GetConnectorCredential(connector.Id));
            }
            catch (Exception e) when (e is InvalidOperationException or UnauthorizedAccessException or IOException or System.Security.Cryptography.CryptographicException
                                      && e is not StateNotPrivateException)
            {
                throw new UnauthorizedAccessException(StateStoreSpec is null || _database is not null
                    ? $"The connector secrets in '{HomeFolder}' cannot be read by {Environment.UserName}: they are encrypted for the user who saved them ({e.Message}). " +
                      "Run the worker as that user (same account, same state folder), or save the connectors again as this user."
                    : $"The secret of connector '{connector.Name}' in the shared state store {Store.Location} cannot be read on this host: {e.Message}", e);
            }
        }
    }

    /// <summary>
    /// Seals a connector's secrets. On a shared store only with the key that opens the secrets already there: sealed with
    /// another, they would open on this host and on no other.
    /// </summary>
    private byte[] Seal(ConnectorSecrets secrets)
    {
        if (_database is null && !secrets.IsEmpty) CheckSecretsReadable();
        return _secrets.Protect(secrets);
    }

    /// <summary>
    /// Removes a job that no runner holds, with its records. The multipart uploads a paused or interrupted job keeps for
    /// its resume are aborted first; it is Cancelled before that, so no worker takes it meanwhile. Returns what could not
    /// be cleaned up (uploads that stay open), for the caller to warn of.
    /// </summary>
    public async Task<IReadOnlyList<string>> RemoveJobAsync(Guid id, CancellationToken ct)
    {
        var job = GetJob(id);
        if (!JobStates.IsTerminal(job.State) && job.State != JobState.Interrupted && job.State != JobState.Paused)
        {
            throw new JobStateException($"Job '{job.Name}' is {job.State}; stop it first or use -Force.");
        }
        if (!JobStates.IsTerminal(job.State) && !Store.TryTransition(id, [JobState.Paused, JobState.Interrupted], JobState.Cancelled))
        {
            job = GetJob(id);
            throw new JobStateException($"Job '{job.Name}' became {job.State} meanwhile; stop it first or use -Force.");
        }
        var problems = await AbortUploadsAsync(job, ct).ConfigureAwait(false);
        Store.RemoveJob(id);
        return problems.Select(p => $"Job '{job.Name}': {p.Message} They stay on the target until its lifecycle rules remove them.").ToList();
    }
}
