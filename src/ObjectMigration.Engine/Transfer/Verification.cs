namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// How a copied object was verified, in the words the report's VerifiedBy column shows: one place, strongest first.
/// "size only" marks the weakest, where neither side offered a checksum of the content.
/// </summary>
internal static class Verification
{
    public const string ContentMd5 = "Content-MD5 (the source's MD5), checked by the target on receipt";

    public static string SourceChecksum(string algorithm, bool checkedByTarget) =>
        $"{algorithm} stored by the source, recomputed here" + (checkedByTarget ? " and checked by the target on receipt" : "");

    public const string Md5EqualsTargetETag = "MD5 computed here = the target's ETag";

    public const string SizeOnly = "size only: neither ETag is an MD5 (SSE-KMS, SSE-C or multipart) and the source stored no checksum";

    public const string AndTargetETag = "; the target's ETag = that MD5";

    public const string ServerSide = "server-side copy of the listed version";

    public const string ServerSideSameETag = "server-side copy of the listed version; the target's ETag = the source's";

    public const string ServerSideOpaque = "server-side copy of the listed version; the source unchanged after it (its ETag is no MD5)";

    public const string PartsMatchETags = "each part's MD5 = its ETag, and the multipart ETag; size";

    public const string PartsSizeOnly = "size only: the target's part ETags are not MD5s (parts hashed here while streaming)";

    public const string FoundCopied = "found on the target after a resume: the target's ETag = the listed source MD5; size";

    public const string ServerSideParts = "server-side part copies of the listed version, the source unchanged at completion; size";
}
