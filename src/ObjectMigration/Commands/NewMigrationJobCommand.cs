using System.Management.Automation;
using ObjectMigration.Engine.Model;
using ObjectMigration.Jobs;
using JobState = ObjectMigration.Engine.Model.JobState;

namespace ObjectMigration.Commands;

[Cmdlet(VerbsCommon.New, "MigrationJob", SupportsShouldProcess = true, DefaultParameterSetName = "SavedSource")]
[OutputType(typeof(MigrationJob), typeof(Job), typeof(MigrationPlanRow))]
public sealed class NewMigrationJobCommand : ObjectMigrationCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public string? Name { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = "SavedSource", ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(Completers.ConnectorNameCompleter))]
    public string SourceConnector { get; set; } = "";

    /// <summary>An unsaved source, the UpCloud way: endpoint URL, signing region and credential.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "UnsavedSource")]
    public string SourceEndpoint { get; set; } = "";

    [Parameter(ParameterSetName = "UnsavedSource")]
    public string SourceRegion { get; set; } = "us-east-1";

    [Parameter(Mandatory = true, ParameterSetName = "UnsavedSource")]
    [CredentialInput]
    public PSCredential SourceCredential { get; set; } = PSCredential.Empty;

    [Parameter(Mandatory = true, ParameterSetName = "SavedSource", ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, ParameterSetName = "UnsavedSource", ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(Completers.BucketNameCompleter))]
    public string SourceBucket { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string SourcePrefix { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string[] Key { get; set; } = [];

    /// <summary>Where to copy to; required for every type but Inventory, which reads the source only.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(Completers.ConnectorNameCompleter))]
    public string TargetConnector { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(Completers.BucketNameCompleter))]
    public string TargetBucket { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string TargetPrefix { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public JobType Type { get; set; } = JobType.Migrate;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public OverwriteMode Overwrite { get; set; } = OverwriteMode.IfDifferent;

    [Parameter] [SupportsWildcards] public string[] Include { get; set; } = [];
    [Parameter] [SupportsWildcards] public string[] Exclude { get; set; } = [];
    [Parameter] public DateTime? ModifiedAfter { get; set; }
    [Parameter] public DateTime? ModifiedBefore { get; set; }
    [Parameter] [ValidateRange(0, long.MaxValue)] public long? MinSize { get; set; }
    [Parameter] [ValidateRange(0, long.MaxValue)] public long? MaxSize { get; set; }
    [Parameter] [SupportsWildcards] public string[] ExcludeContentType { get; set; } = [];

    [Parameter] [ValidateRange(1, TransferOptions.MaxConcurrency)] public int Concurrency { get; set; } = TransferOptions.DefaultConcurrency;

    /// <summary>Runs exactly -Concurrency transfers at once, instead of raising the level from 16 while throughput rises.</summary>
    [Parameter] public SwitchParameter FixedConcurrency { get; set; }
    [Parameter] [ValidateRange(0, long.MaxValue)] public long MaxBytesPerSecond { get; set; }
    [Parameter] [ValidateRange(5L * 1024 * 1024, long.MaxValue)] public long MultipartThreshold { get; set; } = TransferOptions.DefaultMultipartThreshold;
    [Parameter] [ValidateRange(5L * 1024 * 1024, int.MaxValue)] public long PartSize { get; set; } = TransferOptions.DefaultPartSize;

    /// <summary>A request fails when no byte moved for this long: seconds or a TimeSpan, 1 s to 24 h (default 60 seconds); a slow link that keeps moving never times out.</summary>
    [Parameter] [Seconds] public TimeSpan? NoProgressTimeout { get; set; }

    /// <summary>
    /// The storage class objects get on the target: one name for all (-StorageClass STANDARD_IA), or a map from the
    /// source's class names to the target's (@{ GLACIER = 'COLDLINE'; '*' = 'STANDARD' }). Without it the source's class is kept where the target has it.
    /// </summary>
    [Parameter] public object? StorageClass { get; set; }

    /// <summary>Shows a progress bar and returns the finished job. Ctrl+C stops waiting, not the job.</summary>
    [Parameter] public SwitchParameter Wait { get; set; }

    [Parameter] public SwitchParameter AsJob { get; set; }

    /// <summary>
    /// Hands the job to a worker process that outlives this session (started if none runs): the job is returned at once,
    /// and Get-, Wait-, Suspend-, Resume- and Stop-MigrationJob reach it from any session.
    /// </summary>
    [Parameter] public SwitchParameter Detached { get; set; }

    /// <summary>
    /// Skips the checks that need the network (both buckets exist and answer), not the rules: for a runbook that
    /// creates its buckets later. Such a job fails when it runs and resumes once the cause is fixed.
    /// </summary>
    [Parameter] public SwitchParameter Force { get; set; }

    /// <summary>Verify: reads both sides whole and compares their MD5s (bandwidth-capped like any job), whatever ETags and records say.</summary>
    [Parameter] public SwitchParameter Deep { get; set; }

    /// <summary>Verify: a different content type, user metadata or tags is a mismatch too.</summary>
    [Parameter] public SwitchParameter CompareMetadata { get; set; }

    /// <summary>Update: the storage class every selected object is moved to (STANDARD_IA, GLACIER_IR ...), in place.</summary>
    [Parameter] public string? SetStorageClass { get; set; }

    /// <summary>Update: the tags every selected object gets, replacing all it has (@{} removes them all).</summary>
    [Parameter] public System.Collections.Hashtable? SetTags { get; set; }

    /// <summary>Update: tags to set on every selected object, keeping its others.</summary>
    [Parameter] public System.Collections.Hashtable? AddTags { get; set; }

    /// <summary>Update: names of tags to remove from every selected object, keeping its others.</summary>
    [Parameter] public string[] RemoveTags { get; set; } = [];

    /// <summary>
    /// Update: content headers (Content-Type, Cache-Control, Content-Disposition, Content-Encoding, Content-Language,
    /// Expires) and user metadata to set on every selected object; a user metadata name with $null is removed.
    /// Everything not named is kept.
    /// </summary>
    [Parameter] public System.Collections.Hashtable? SetMetadata { get; set; }

    /// <summary>
    /// The id of a finished Verify job: creates a Migrate job with its source and target for exactly the keys it found
    /// missing or mismatched (Overwrite Always). A second verify is then clean.
    /// </summary>
    [Parameter(Mandatory = true, ParameterSetName = "FromVerify")]
    [GuidText("migration job id", "Get-MigrationJob -Type Verify")]
    public Guid FromVerify { get; set; }

    /// <summary>What a repair takes from its Verify job, so giving it as well is a mistake.</summary>
    private static readonly string[] DefinedByVerify =
        ["Type", "Overwrite", "SourcePrefix", "TargetPrefix", "Key", "Include", "Exclude", "ModifiedAfter", "ModifiedBefore", "MinSize", "MaxSize", "ExcludeContentType", "Deep", "CompareMetadata",
         "SetStorageClass", "SetTags", "AddTags", "RemoveTags", "SetMetadata"];

    private MigrationJobRequest BuildRequest() => new()
    {
        Name = Name,
        Type = Type,
        SourceConnector = SourceConnector,
        SourceBucket = SourceBucket,
        SourcePrefix = SourcePrefix,
        Keys = Key,
        TargetConnector = TargetConnector,
        TargetBucket = TargetBucket,
        TargetPrefix = TargetPrefix,
        Overwrite = Overwrite,
        Filter = new ObjectFilter
        {
            Include = Include,
            Exclude = Exclude,
            ModifiedAfter = ModifiedAfter is { } after ? new DateTimeOffset(after.ToUniversalTime()) : null,
            ModifiedBefore = ModifiedBefore is { } before ? new DateTimeOffset(before.ToUniversalTime()) : null,
            MinSize = MinSize,
            MaxSize = MaxSize,
            ExcludeContentType = ExcludeContentType,
        },
        Concurrency = Concurrency,
        FixedConcurrency = FixedConcurrency,
        MaxBytesPerSecond = MaxBytesPerSecond,
        MultipartThreshold = MultipartThreshold,
        PartSize = PartSize,
        NoProgressTimeout = NoProgressTimeout,
        StorageClassMap = StorageClassMap(),
        Deep = Deep,
        CompareMetadata = CompareMetadata,
        Update = BuildUpdate(),
    };

    private ObjectUpdate BuildUpdate()
    {
        var update = new ObjectUpdate
        {
            StorageClass = SetStorageClass,
            SetTags = SetTags is null ? null : Pairs(SetTags, "SetTags"),
            AddTags = AddTags is null ? new(StringComparer.Ordinal) : Pairs(AddTags, "AddTags"),
            RemoveTags = RemoveTags ?? [],
        };
        foreach (System.Collections.DictionaryEntry entry in SetMetadata ?? [])
        {
            var name = entry.Key?.ToString() ?? "";
            var value = (entry.Value is PSObject wrapped ? wrapped.BaseObject : entry.Value)?.ToString();
            // Written with or without the hyphen (ContentType or Content-Type).
            var header = ObjectUpdate.ContentHeaderNames.FirstOrDefault(h => string.Equals(h, name, StringComparison.OrdinalIgnoreCase)
                || string.Equals(h.Replace("-", ""), name, StringComparison.OrdinalIgnoreCase));
            if (header is not null) update.ContentHeaders[header] = value ?? "";
            // A header of the object that is not to be set (Content-Length, ETag, x-amz-...) is refused by the rules, not taken as user metadata.
            else if (IsReservedHeader(name)) update.ContentHeaders[name] = value ?? "";
            else
            {
                var userName = name.StartsWith("x-amz-meta-", StringComparison.OrdinalIgnoreCase) ? name["x-amz-meta-".Length..] : name;
                if (!update.UserMetadata.TryAdd(userName, value))
                {
                    throw new ArgumentException($"-SetMetadata names '{userName}' twice (with and without x-amz-meta-, or in another case): give it once.", nameof(SetMetadata));
                }
            }
        }
        return update;
    }

    private static bool IsReservedHeader(string name) =>
        name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)
        || (name.StartsWith("x-amz-", StringComparison.OrdinalIgnoreCase) && !name.StartsWith("x-amz-meta-", StringComparison.OrdinalIgnoreCase))
        || name.Equals("ETag", StringComparison.OrdinalIgnoreCase) || name.Equals("Last-Modified", StringComparison.OrdinalIgnoreCase);

    private static Dictionary<string, string> Pairs(System.Collections.Hashtable table, string parameter)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in table)
        {
            var value = entry.Value is PSObject wrapped ? wrapped.BaseObject : entry.Value;
            if (value is null) throw new ArgumentException($"-{parameter} gives the tag '{entry.Key}' no value: give a value ('' for an empty one).", parameter);
            pairs[entry.Key?.ToString() ?? ""] = value.ToString() ?? "";
        }
        return pairs;
    }

    private Dictionary<string, string> StorageClassMap()
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        switch (StorageClass is PSObject wrapped ? wrapped.BaseObject : StorageClass)
        {
            case null:
                break;
            case string all:
                map["*"] = all;
                break;
            case System.Collections.IDictionary pairs:
                foreach (System.Collections.DictionaryEntry pair in pairs) map[pair.Key?.ToString() ?? ""] = pair.Value?.ToString() ?? "";
                break;
            default:
                throw new ArgumentException("-StorageClass takes a class name (STANDARD_IA) or a hashtable from source to target classes (@{ GLACIER = 'COLDLINE'; '*' = 'STANDARD' }).", nameof(StorageClass));
        }
        return map;
    }

    /// <summary>
    /// The unfinished job an earlier run of the same command made, instead of a duplicate: continued when it stopped short
    /// (Paused, Interrupted, or Pending with no runner), returned as it is while it runs.
    /// </summary>
    private void WriteSameJob(MigrationJob existing, MigrationJobRequest request)
    {
        var continues = existing.State is JobState.Paused or JobState.Interrupted or JobState.Pending;
        // A job handed to workers stays with them (a re-run must not tie it to a session that may end), unless -AsJob asks for this session.
        var detached = Detached || (existing.Detached && !AsJob);
        var kept = ObjectMigration.Engine.Transfer.JobDefinition.SettingsKept(existing, request);
        WriteWarning($"The migration job '{existing.Name}' with this definition is unfinished ({existing.State}): " + (continues
            ? $"it is continued from its checkpoint {(detached ? "in a worker process" : "in this session")} instead of creating another."
            : "it is returned instead of creating another.") +
            (kept.Count > 0 ? $" Its settings are kept: {string.Join("; ", kept)}." : ""));
        if (!continues)
        {
            WriteObject(Wait ? JobWaiter.WaitFor(this, Engine, existing.Id, null, showProgress: true, Cancellation) : Engine.GetJob(existing.Id));
            return;
        }
        // Handed to workers or taken back into this session in the same change that makes it Pending.
        if (existing.State == JobState.Pending && existing.Detached != detached) Engine.SetDetached(existing.Id, detached);
        RunAndWrite(existing.State == JobState.Pending ? existing : Engine.PrepareResume(existing.Id, retryFailed: false, detached: detached), detached, AsJob, Wait);
    }

    /// <summary>
    /// The source given inline, checked as a connector would be; its errors name this command's parameters
    /// (-SourceEndpoint, not the connector's -Endpoint), so the error id points at what to change.
    /// </summary>
    private ObjectMigration.Engine.Model.ConnectorAccess UnsavedSource()
    {
        try
        {
            // Named by its endpoint in messages; a blank endpoint is the error to report, not a blank name.
            var name = string.IsNullOrWhiteSpace(SourceEndpoint) ? "(inline source)" : SourceEndpoint;
            return ObjectMigration.Engine.MigrationEngine.Unsaved(new CloudConnector { Name = name, Provider = ConnectorProvider.S3, Endpoint = SourceEndpoint, Region = SourceRegion },
                SourceCredential.UserName, SourceCredential.GetNetworkCredential().Password, pathStyleGiven: false);
        }
        catch (ObjectMigration.Engine.Connectors.ConnectorDefinitionException e) when (e.ParamName is "Endpoint" or "Region" or "Credential")
        {
            var message = e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal).Replace($"-{e.ParamName}", $"-Source{e.ParamName}", StringComparison.Ordinal);
            throw new ObjectMigration.Engine.Connectors.ConnectorDefinitionException($"Source{e.ParamName}", message);
        }
    }

    protected override void ProcessRecord()
    {
        var source = ParameterSetName == "UnsavedSource" ? SourceEndpoint : SourceConnector;
        var description = $"{source}/{SourceBucket}/{SourcePrefix}";
        try
        {
            description = Type switch
            {
                JobType.Inventory => $"{description} (inventory)",
                JobType.Update => $"{description} (in place: {BuildUpdate()})",
                _ => $"{description} -> {TargetConnector}/{TargetBucket}/{TargetPrefix}",
            };
            if (Detached && AsJob)
            {
                throw DetachedWithAsJob();
            }
            if (FixedConcurrency && !MyInvocation.BoundParameters.ContainsKey(nameof(Concurrency)))
            {
                // Fixed at the default ceiling (256) is rarely what is meant: the number is asked for.
                throw new ArgumentException("-FixedConcurrency runs exactly -Concurrency transfers at once: give -Concurrency too (for example -Concurrency 16 -FixedConcurrency).", nameof(FixedConcurrency));
            }
            if (Type == JobType.Update)
            {
                // What a copy decides means nothing for a change in place: say which parameter was meant instead.
                if (MyInvocation.BoundParameters.ContainsKey(nameof(StorageClass)))
                {
                    throw new ArgumentException("-StorageClass sets the class of copies on a target; an Update changes objects in place: use -SetStorageClass.", nameof(StorageClass));
                }
                if (MyInvocation.BoundParameters.ContainsKey(nameof(Overwrite)))
                {
                    throw new ArgumentException("-Overwrite decides whether a copy replaces what a target holds; an Update has no target and changes each object once: leave -Overwrite out.", nameof(Overwrite));
                }
            }
            var request = BuildRequest();
            if (ParameterSetName == "FromVerify")
            {
                if (DefinedByVerify.FirstOrDefault(MyInvocation.BoundParameters.ContainsKey) is { } given)
                {
                    throw new ArgumentException($"-{given} cannot be given with -FromVerify: the repair takes its source, target and keys from the Verify job.", given);
                }
                Engine.MakeRepairOf(FromVerify, request);
                description = $"repair of Verify job {FromVerify}: {request.Keys.Length} keys {request.SourceConnector}/{request.SourceBucket}/{request.SourcePrefix} -> {request.TargetConnector}/{request.TargetBucket}/{request.TargetPrefix}";
            }
            var unsavedSource = ParameterSetName == "UnsavedSource" ? UnsavedSource() : null;
            // Everything that can be checked is, before anything is written.
            Engine.CheckRules(request, unsavedSource);
            if (!ShouldProcess(description, $"Create and start {Type} job"))
            {
                if (MyInvocation.BoundParameters.ContainsKey("WhatIf"))
                {
                    // What the real command would do with an unfinished job of this name comes first: the plan is for a fresh job.
                    if (Engine.FindSameNamedJob(request, unsavedSource?.Connector.Endpoint) is { } existing)
                    {
                        WriteWarning(existing.Differences.Count == 0
                            ? $"Without -WhatIf this command would continue the unfinished job '{existing.Job.Name}' ({existing.Job.State}) instead of creating one; the plan below is for a fresh job."
                            : $"Without -WhatIf this command would be refused: an unfinished job '{existing.Job.Name}' has another definition ({string.Join("; ", existing.Differences)}).");
                    }
                    // The plan per action and reason, from live listings of both sides and the real rules.
                    // A wrong bucket or endpoint is the same error as without -WhatIf.
                    Await(Engine.CheckReachableAsync(request, unsavedSource, Cancellation));
                    foreach (var row in Await(Engine.PlanAsync(request, Cancellation, unsavedSource))) WriteObject(row);
                }
                return;
            }
            // A runbook restarted from the top runs the same New-MigrationJob again: it gets the job it made before.
            if (Engine.FindSameNamedJob(request, unsavedSource is null ? null : unsavedSource.Connector.Endpoint) is { } same)
            {
                if (same.Differences.Count > 0)
                {
                    throw new ArgumentException($"A migration job named '{same.Job.Name}' already exists ({same.Job.State}) with another definition: " +
                        $"{string.Join("; ", same.Differences)}. Give a new -Name, or remove that job (Remove-MigrationJob) first.", nameof(Name));
                }
                WriteSameJob(same.Job, request);
                return;
            }
            if (!Force) Await(Engine.CheckReachableAsync(request, unsavedSource, Cancellation));
            RunAndWrite(Engine.CreateJob(request, unsavedSource, Detached), Detached, AsJob, Wait);
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteFailure(e, description);
        }
    }
}
