using ObjectMigration.Engine.Model;

namespace ObjectMigration.Engine.Transfer;

/// <summary>What an Update request (-SetStorageClass, -SetTags, -AddTags, -RemoveTags, -SetMetadata) must satisfy; S3's tag limits.</summary>
internal static class UpdateRules
{
    public const int MaxTags = 10;
    public const int MaxTagKeyLength = 128;
    public const int MaxTagValueLength = 256;

    private const string Changes = "-SetStorageClass, -SetTags, -AddTags, -RemoveTags or -SetMetadata";

    public static void Check(MigrationJobRequest r)
    {
        var update = r.Update;
        if (r.Type != JobType.Update)
        {
            if (update is { IsEmpty: false }) throw new ArgumentException($"{FirstGiven(update)} applies to Update jobs only: add -Type Update, or leave it out.", FirstGiven(update).TrimStart('-'));
            return;
        }
        if (update is null || update.IsEmpty) throw new ArgumentException($"-Type Update needs something to change: give {Changes}.", "Type");
        if (update.StorageClass is { } storageClass && (storageClass.Length == 0 || !storageClass.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c == '_')))
        {
            throw new ArgumentException($"-SetStorageClass '{storageClass}' is not a storage class name: give it in upper case, e.g. STANDARD_IA or GLACIER_IR.", "SetStorageClass");
        }
        if (update.SetTags is { } set)
        {
            if (update.AddTags.Count > 0 || update.RemoveTags.Length > 0)
            {
                throw new ArgumentException("-SetTags replaces all of an object's tags, so -AddTags and -RemoveTags cannot go with it: use -SetTags alone, or -AddTags/-RemoveTags.", "SetTags");
            }
            CheckTags(set, "SetTags");
        }
        CheckTags(update.AddTags, "AddTags");
        foreach (var name in update.RemoveTags)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("-RemoveTags has an empty name: give the names of the tags to remove.", "RemoveTags");
            if (update.AddTags.ContainsKey(name)) throw new ArgumentException($"-AddTags sets the tag '{name}' that -RemoveTags removes: give it to one of them.", "RemoveTags");
        }
        foreach (var (name, value) in update.ContentHeaders)
        {
            if (!ObjectUpdate.ContentHeaderNames.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"-SetMetadata cannot set '{name}': give {string.Join(", ", ObjectUpdate.ContentHeaderNames)} or user metadata names.", "SetMetadata");
            }
            if (string.IsNullOrEmpty(value) || value.Any(char.IsControl) || !value.All(char.IsAscii)) throw new ArgumentException($"-SetMetadata gives {name} an empty value, control characters or characters outside ASCII: give a value such as 'text/html' (a content header cannot be removed).", "SetMetadata");
        }
        foreach (var (name, value) in update.UserMetadata)
        {
            if (name.Length == 0 || !name.All(IsTokenChar)) throw new ArgumentException($"-SetMetadata name '{name}' is not a header name: use letters, digits and '-' (e.g. owner or build-id).", "SetMetadata");
            if (value is not null && value.Any(char.IsControl)) throw new ArgumentException($"-SetMetadata value of '{name}' has control characters (a line break?): metadata values are one line.", "SetMetadata");
            // S3 sends metadata as HTTP headers: other characters come back encoded (RFC 2047) or are refused by clients.
            if (value is not null && !value.All(char.IsAscii)) throw new ArgumentException($"-SetMetadata value of '{name}' has characters outside ASCII: S3 metadata travels in HTTP headers; use ASCII (or encode it, e.g. as URL-encoded text).", "SetMetadata");
        }
    }

    /// <summary>What the source's provider cannot take: a storage class it does not offer, tags where it keeps none.</summary>
    public static void CheckProvider(MigrationJobRequest r, Connectors.ProviderProfile profile)
    {
        if (r.Type != JobType.Update || r.Update is not { } update) return;
        if (update.StorageClass is { } storageClass && profile.StorageClasses is { } offered && !offered.Contains(storageClass))
        {
            throw new ArgumentException($"-SetStorageClass {storageClass} is not a storage class {profile.Provider} offers: use one of {string.Join(", ", offered.Order(StringComparer.Ordinal))}.", "SetStorageClass");
        }
        if (update.ChangesTags && !profile.SupportsTagging)
        {
            var given = update.SetTags is not null ? "SetTags" : update.AddTags.Count > 0 ? "AddTags" : "RemoveTags";
            throw new ArgumentException($"-{given}: {profile.Provider} keeps no object tags, so there are none to change. Leave the tag parameters out.", given);
        }
    }

    private static void CheckTags(IReadOnlyDictionary<string, string> tags, string parameter)
    {
        if (tags.Count > MaxTags) throw new ArgumentException($"-{parameter} gives {tags.Count} tags: S3 keeps at most {MaxTags} per object.", parameter);
        foreach (var (name, value) in tags)
        {
            if (name.Length is 0 or > MaxTagKeyLength) throw new ArgumentException($"-{parameter} tag name '{name}' must be 1 to {MaxTagKeyLength} characters.", parameter);
            if (value.Length > MaxTagValueLength) throw new ArgumentException($"-{parameter} tag '{name}' has a value longer than {MaxTagValueLength} characters.", parameter);
            if (name.Any(char.IsControl) || value.Any(char.IsControl)) throw new ArgumentException($"-{parameter} tag '{name}' has control characters: tags are one line.", parameter);
        }
    }

    private static string FirstGiven(ObjectUpdate update) =>
        update.StorageClass is not null ? "-SetStorageClass"
        : update.SetTags is not null ? "-SetTags"
        : update.AddTags.Count > 0 ? "-AddTags"
        : update.RemoveTags.Length > 0 ? "-RemoveTags"
        : "-SetMetadata";

    /// <summary>RFC 9110 token characters: what a header name may hold.</summary>
    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c);
}
