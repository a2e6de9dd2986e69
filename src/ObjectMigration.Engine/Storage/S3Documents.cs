using System.Globalization;
using System.Net;
using System.Xml;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Storage;

/// <summary>The XML documents S3 answers with (errors, results, listings, tag sets), read the one way.</summary>
internal static class S3Documents
{
    // Servers write control characters in keys as character references (&#x1;), which XML 1.0 forbids; Ceph does so
    // in the continuation token even when keys come URL-encoded. They are read as the characters they stand for.
    private static readonly XmlReaderSettings XmlSettings = new() { DtdProcessing = DtdProcessing.Prohibit, CheckCharacters = false };

    /// <summary>The root element's name and the text of its children (S3 error and result documents are one level deep).</summary>
    public static (string Root, Dictionary<string, string> Elements) Read(string xml)
    {
        var elements = new Dictionary<string, string>(StringComparer.Ordinal);
        var root = "";
        if (xml.Length == 0) return (root, elements);
        try
        {
            using var reader = XmlReader.Create(new StringReader(xml), XmlSettings);
            reader.MoveToContent();
            root = reader.LocalName;
            reader.Read();
            while (!reader.EOF)
            {
                // Reading an element's content moves onto the next node, which may itself be the next element.
                if (reader.NodeType == XmlNodeType.Element && reader.Depth == 1) elements[reader.LocalName] = reader.ReadElementContentAsString();
                else reader.Read();
            }
        }
        catch (XmlException)
        {
            // Not XML (a proxy's HTML page, say): what was read so far stands.
        }
        return (root, elements);
    }

    /// <summary>Calls <paramref name="element"/> for each child of the root, the reader on it; it must read or skip the element.</summary>
    private static void ReadRootChildren(XmlReader reader, Action<string> element)
    {
        reader.Read();
        while (!reader.EOF)
        {
            if (reader.NodeType == XmlNodeType.Element && reader.Depth == 1) element(reader.LocalName);
            else reader.Read();
        }
    }

    public static ObjectListing ReadListing(Stream xml)
    {
        var objects = new List<ListedObject>();
        string? next = null;
        var truncated = false;
        var urlEncoded = false;
        using var reader = XmlReader.Create(xml, XmlSettings);
        reader.MoveToContent();
        if (reader.LocalName != "ListBucketResult") throw new S3ErrorResponse("", 200, $"ListObjectsV2 answered with <{reader.LocalName}>, not a listing.");
        ReadRootChildren(reader, name =>
        {
            switch (name)
            {
                case "Contents": objects.Add(ReadListedObject(reader)); break;
                case "IsTruncated": truncated = reader.ReadElementContentAsString() == "true"; break;
                case "NextContinuationToken": next = reader.ReadElementContentAsString(); break;
                case "EncodingType": urlEncoded = reader.ReadElementContentAsString() == "url"; break;
                default: reader.Skip(); break;
            }
        });
        if (urlEncoded) objects = objects.ConvertAll(o => o with { Key = WebUtility.UrlDecode(o.Key) });
        if (truncated && string.IsNullOrEmpty(next))
        {
            // Stopping here would silently leave the rest of the bucket out of the migration.
            throw new S3ErrorResponse("", 200, "ListObjectsV2 said the listing goes on but gave no continuation token.");
        }
        return new ObjectListing(objects, truncated ? next : null);
    }

    private static ListedObject ReadListedObject(XmlReader reader)
    {
        string key = "", etag = "", storageClass = "";
        long size = 0;
        var lastModified = DateTimeOffset.UnixEpoch;
        var depth = reader.Depth;
        if (reader.IsEmptyElement) throw new S3ErrorResponse("", 200, "ListObjectsV2 listed an object without a key.");
        reader.Read();
        while (!(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
        {
            if (reader.NodeType != XmlNodeType.Element)
            {
                reader.Read();
                continue;
            }
            switch (reader.LocalName)
            {
                case "Key": key = reader.ReadElementContentAsString(); break;
                case "Size": size = long.Parse(reader.ReadElementContentAsString(), NumberStyles.None, CultureInfo.InvariantCulture); break;
                case "ETag": etag = reader.ReadElementContentAsString(); break;
                case "StorageClass": storageClass = reader.ReadElementContentAsString(); break;
                case "LastModified":
                    lastModified = DateTimeOffset.Parse(reader.ReadElementContentAsString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
                    break;
                default: reader.Skip(); break;
            }
        }
        reader.Read();
        return new ListedObject(key, size, etag.Length == 0 ? null : etag, lastModified, storageClass.Length == 0 ? null : storageClass);
    }

    /// <summary>
    /// One page of ListMultipartUploads, and where the next starts (null when this is the last). A server without it
    /// (s3rver answers the bucket's object listing) is Unsupported.
    /// </summary>
    public static (List<OpenMultipartUpload> Uploads, (string Key, string UploadId)? Next) ReadUploadListing(string xml)
    {
        var uploads = new List<OpenMultipartUpload>();
        var truncated = false;
        string nextKey = "", nextUploadId = "";
        using var reader = XmlReader.Create(new StringReader(xml), XmlSettings);
        reader.MoveToContent();
        if (reader.LocalName != "ListMultipartUploadsResult")
        {
            throw new StorageException(ErrorClass.Unsupported, $"ListMultipartUploads answered with <{reader.LocalName}>: the server cannot list open uploads.");
        }
        // Asked without encoding-type (see S3HttpDataPath.ListUploadsAsync): keys come as they are.
        ReadRootChildren(reader, name =>
        {
            switch (name)
            {
                case "Upload": uploads.Add(ReadUpload(reader)); break;
                case "IsTruncated": truncated = reader.ReadElementContentAsString() == "true"; break;
                case "NextKeyMarker": nextKey = reader.ReadElementContentAsString(); break;
                case "NextUploadIdMarker": nextUploadId = reader.ReadElementContentAsString(); break;
                default: reader.Skip(); break;
            }
        });
        if (truncated && nextKey.Length == 0 && nextUploadId.Length == 0)
        {
            throw new S3ErrorResponse("", 200, "ListMultipartUploads said the listing goes on but gave no marker.");
        }
        return (uploads, truncated ? (nextKey, nextUploadId) : null);
    }

    private static OpenMultipartUpload ReadUpload(XmlReader reader)
    {
        string key = "", uploadId = "";
        var initiated = DateTimeOffset.UnixEpoch;
        var depth = reader.Depth;
        if (reader.IsEmptyElement)
        {
            reader.Read();
            return new OpenMultipartUpload(key, uploadId, initiated);
        }
        reader.Read();
        while (!(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
        {
            if (reader.NodeType != XmlNodeType.Element)
            {
                reader.Read();
                continue;
            }
            switch (reader.LocalName)
            {
                case "Key": key = reader.ReadElementContentAsString(); break;
                case "UploadId": uploadId = reader.ReadElementContentAsString(); break;
                case "Initiated":
                    initiated = DateTimeOffset.Parse(reader.ReadElementContentAsString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
                    break;
                default: reader.Skip(); break;
            }
        }
        reader.Read();
        return new OpenMultipartUpload(key, uploadId, initiated);
    }

    /// <summary>GetObjectTagging's document in x-amz-tagging form (URL-encoded pairs), or null when there are no tags.</summary>
    public static string? ReadTagging(string xml)
    {
        var pairs = new List<string>();
        using var reader = XmlReader.Create(new StringReader(xml), XmlSettings);
        string? tagKey = null, tagValue = null;
        reader.Read();
        while (!reader.EOF)
        {
            // Reading an element's content moves onto the next node, which may itself be the next element.
            if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "Key") { tagKey = reader.ReadElementContentAsString(); continue; }
            if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "Value") { tagValue = reader.ReadElementContentAsString(); continue; }
            if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "Tag") (tagKey, tagValue) = (null, null);
            if (reader.NodeType == XmlNodeType.EndElement && reader.LocalName == "Tag" && tagKey is not null)
            {
                pairs.Add(SigV4Signer.UriEncode(tagKey, keepSlash: false) + "=" + SigV4Signer.UriEncode(tagValue ?? "", keepSlash: false));
            }
            reader.Read();
        }
        return pairs.Count == 0 ? null : string.Join("&", pairs);
    }
}
