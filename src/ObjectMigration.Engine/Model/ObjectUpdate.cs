using System.Text.Json;
using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Model;

/// <summary>
/// What an Update job changes on each object it selects, in place (New-MigrationJob -Type Update): a storage class,
/// tags, content headers and user metadata. Everything it does not name is kept as the object has it.
/// </summary>
public sealed class ObjectUpdate
{
    /// <summary>The content headers -SetMetadata may set, by the names users write them with.</summary>
    public static readonly IReadOnlyList<string> ContentHeaderNames =
        ["Content-Type", "Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"];

    public string? StorageClass { get; set; }
    /// <summary>-SetTags: the object's tags become exactly these. Null leaves its tags to <see cref="AddTags"/> and <see cref="RemoveTags"/>.</summary>
    public Dictionary<string, string>? SetTags { get; set; }
    /// <summary>-AddTags: set these tags, keep the others.</summary>
    public Dictionary<string, string> AddTags { get; set; } = new(StringComparer.Ordinal);
    /// <summary>-RemoveTags: remove the tags with these names, keep the others.</summary>
    public string[] RemoveTags { get; set; } = [];
    /// <summary>-SetMetadata's content headers (Content-Type, Cache-Control ...), by header name.</summary>
    public Dictionary<string, string> ContentHeaders { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>-SetMetadata's user metadata (x-amz-meta-*), by name without the prefix; a null value removes that name.</summary>
    public Dictionary<string, string?> UserMetadata { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    public bool ChangesTags => SetTags is not null || AddTags.Count > 0 || RemoveTags.Length > 0;

    /// <summary>A storage class, content header or metadata change: only a copy of the object onto itself makes it.</summary>
    public bool ChangesHeaders => StorageClass is not null || ContentHeaders.Count > 0 || UserMetadata.Count > 0;

    public bool IsEmpty => !ChangesTags && !ChangesHeaders;

    /// <summary>The tags an object with <paramref name="current"/> tags gets.</summary>
    public Dictionary<string, string> TagsFrom(IReadOnlyDictionary<string, string> current)
    {
        var tags = new Dictionary<string, string>(SetTags ?? current.ToDictionary(), StringComparer.Ordinal);
        foreach (var name in RemoveTags) tags.Remove(name);
        foreach (var (name, value) in AddTags) tags[name] = value;
        return tags;
    }

    /// <summary>
    /// The headers an object with <paramref name="current"/> headers gets. Its storage class is written again when not
    /// changed: a copy onto itself without one would move the object to STANDARD.
    /// </summary>
    public ObjectMetadata HeadersFrom(ObjectMetadata current, string? currentStorageClass, ObjectEncryption? encryption = null)
    {
        var headers = new ObjectMetadata
        {
            ContentType = current.ContentType,
            ContentEncoding = current.ContentEncoding,
            ContentLanguage = current.ContentLanguage,
            ContentDisposition = current.ContentDisposition,
            CacheControl = current.CacheControl,
            Expires = current.Expires,
            WebsiteRedirectLocation = current.WebsiteRedirectLocation,
            // The new version keeps the protection the object had.
            ObjectLockMode = current.ObjectLockMode,
            ObjectLockRetainUntil = current.ObjectLockRetainUntil,
            ObjectLockLegalHold = current.ObjectLockLegalHold,
            StorageClass = StorageClass ?? (currentStorageClass is null or "STANDARD" ? null : currentStorageClass),
        };
        // Encrypted as before, with the same KMS key (a copy would otherwise take the bucket's default).
        headers.ServerSideEncryption = encryption?.Algorithm;
        headers.KmsKeyId = encryption?.KmsKeyId;
        foreach (var (name, value) in current.UserMetadata) headers.UserMetadata[name] = value;
        foreach (var (name, value) in ContentHeaders)
        {
            switch (name.ToLowerInvariant())
            {
                case "content-type": headers.ContentType = value; break;
                case "cache-control": headers.CacheControl = value; break;
                case "content-disposition": headers.ContentDisposition = value; break;
                case "content-encoding": headers.ContentEncoding = value; break;
                case "content-language": headers.ContentLanguage = value; break;
                case "expires": headers.Expires = value; break;
            }
        }
        foreach (var (name, value) in UserMetadata)
        {
            if (value is null) headers.UserMetadata.Remove(name);
            else headers.UserMetadata[name] = value;
        }
        return headers;
    }

    /// <summary>What changes, as a user wrote it: "storage class STANDARD_IA; tags +team=ops -temp; Cache-Control max-age=60".</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (StorageClass is not null) parts.Add($"storage class {StorageClass}");
        if (SetTags is not null) parts.Add("tags set to " + (SetTags.Count == 0 ? "none" : string.Join(", ", SetTags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={t.Value}"))));
        if (AddTags.Count > 0 || RemoveTags.Length > 0)
        {
            parts.Add("tags " + string.Join(" ", AddTags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"+{t.Key}={t.Value}")
                .Concat(RemoveTags.Order(StringComparer.Ordinal).Select(n => "-" + n))));
        }
        parts.AddRange(ContentHeaders.OrderBy(h => h.Key, StringComparer.OrdinalIgnoreCase).Select(h => $"{h.Key} {h.Value}"));
        if (UserMetadata.Count > 0)
        {
            parts.Add("metadata " + string.Join(" ", UserMetadata.OrderBy(m => m.Key, StringComparer.OrdinalIgnoreCase).Select(m => m.Value is null ? "-" + m.Key : $"{m.Key}={m.Value}")));
        }
        return parts.Count == 0 ? "(nothing)" : string.Join("; ", parts);
    }

    public string ToJson() => JsonSerializer.Serialize(this);

    public static ObjectUpdate FromJson(string json)
    {
        var read = JsonSerializer.Deserialize<ObjectUpdate>(json) ?? new ObjectUpdate();
        // Case rules are not part of the JSON: names compare as they did when the job was created.
        return new ObjectUpdate
        {
            StorageClass = read.StorageClass,
            SetTags = read.SetTags is null ? null : new Dictionary<string, string>(read.SetTags, StringComparer.Ordinal),
            AddTags = new Dictionary<string, string>(read.AddTags, StringComparer.Ordinal),
            RemoveTags = read.RemoveTags,
            ContentHeaders = new Dictionary<string, string>(read.ContentHeaders, StringComparer.OrdinalIgnoreCase),
            UserMetadata = new Dictionary<string, string?>(read.UserMetadata, StringComparer.OrdinalIgnoreCase),
        };
    }
}
