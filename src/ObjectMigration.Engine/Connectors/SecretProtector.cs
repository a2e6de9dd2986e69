using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Connectors;

/// <summary>
/// What a connector keeps sealed: its stored access key and secret (-Credential) and its proxy's user name and
/// password (-ProxyCredential). Any of them may be missing.
/// </summary>
public sealed record ConnectorSecrets(string? AccessKeyId, string? SecretAccessKey, string? ProxyUserName = null, string? ProxyPassword = null)
{
    public static ConnectorSecrets None { get; } = new(null, null);

    public bool IsEmpty => AccessKeyId is null && SecretAccessKey is null && ProxyUserName is null && ProxyPassword is null;

    /// <summary>Never the secrets themselves.</summary>
    public override string ToString() => $"ConnectorSecrets(keys: {AccessKeyId is not null}, proxy: {ProxyUserName is not null})";
}

/// <summary>A key file that others can read or that belongs to someone else: its secrets are not used.</summary>
public sealed class StateNotPrivateException(string message) : UnauthorizedAccessException(message);

/// <summary>
/// Encrypts connector credentials at rest: with DPAPI (current user) on Windows; elsewhere with AES-GCM under a
/// per-user key file that only its owner can read (mode 0600). A key file that another user owns, or that others can
/// read or write, is refused: its key may be known. The key file appears whole or not at all (written aside, then
/// linked into place), so processes that create it at once agree on one key.
/// </summary>
public sealed class SecretProtector
{
    private const int KeySize = 32, NonceSize = 12, TagSize = 16;
    // 1 and 2 (AES-GCM, DPAPI) seal "access key id \n secret"; 3 and 4 the fields of ConnectorSecrets.
    private const byte FormatVersion = 1, DpapiFormatVersion = 2, FieldsFormatVersion = 3, DpapiFieldsFormatVersion = 4;
    private static readonly byte[] DpapiEntropy = Encoding.UTF8.GetBytes("ObjectMigration connector credential");
    private readonly string _keyPath;
    private readonly object _gate = new();
    private byte[]? _key;

    /// <summary>Whether the key is one the hosts of a shared state store share (AES-GCM everywhere, Windows too).</summary>
    private readonly bool _shared;

    public SecretProtector(string homeFolder) : this(homeFolder, SharedKey.FromEnvironment())
    {
    }

    /// <param name="shared">
    /// The key the worker hosts of a shared state store (PostgreSQL) share, given by the operator: sealed secrets are
    /// then readable on every host that has it, and on none that has not. The key is never stored in the state.
    /// </param>
    public SecretProtector(string homeFolder, SharedKey? shared)
    {
        if (shared is null)
        {
            _keyPath = Path.Combine(StateLocation.PreparePrivateFolder(homeFolder), "secret.key");
            return;
        }
        _shared = true;
        _keyPath = shared.Describe;
        _key = shared.Bytes;
    }

    public string KeyPath => _keyPath;

    /// <summary>
    /// The state store is shared by hosts (PostgreSQL): secrets are sealed and opened only with the key the hosts share,
    /// never with a key file of this host's own.
    /// </summary>
    public bool SharedStore { get; init; }

    internal static string NoSharedKey =>
        $"This state store is shared by hosts (PostgreSQL): connector secrets are sealed with the key every host shares, and this host has none. " +
        $"Set {SharedKey.Variable} (32 random bytes in base64) or {SharedKey.FileVariable} (a file of those bytes, mode 0600) to the key the other hosts use (docs/scale-out.md).";

    /// <summary>The key file is read (or created) on first use, so Windows users never get one.</summary>
    private byte[] Key
    {
        get
        {
            if (_key is not null) return _key;
            // A key of this host's own would seal secrets that no other host of the shared store can open.
            if (SharedStore) throw new UnauthorizedAccessException(NoSharedKey);
            lock (_gate) return _key ??= LoadOrCreateKey(_keyPath);
        }
    }

    /// <summary>
    /// The key in <paramref name="path"/>, created if there is none. A new key is written whole to a file of its own and
    /// then linked to the name (which fails if the name exists): a reader never sees a partial key, and of several
    /// processes creating it at once one wins and all use its key, read back from the file.
    /// </summary>
    internal static byte[] LoadOrCreateKey(string path)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            if (TryReadKey(path) is { } existing) return existing;
            var temporary = $"{path}.{Guid.NewGuid():n}.tmp";
            try
            {
                using (var file = new FileStream(temporary, StateLocation.PrivateFileOptions(FileMode.CreateNew, FileAccess.Write, FileShare.None)))
                {
                    var key = RandomNumberGenerator.GetBytes(KeySize);
                    file.Write(key);
                    CryptographicOperations.ZeroMemory(key);
                    file.Flush(flushToDisk: true);
                }
                // False when another process placed its key first: that one is read on the next turn.
                StateLocation.PlaceIfAbsent(temporary, path);
            }
            finally
            {
                File.Delete(temporary);
            }
        }
        throw new IOException($"The key file '{path}' could not be created or read; check that the state folder is writable.");
    }

    private static byte[]? TryReadKey(string path)
    {
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        using (handle)
        {
            if (!OperatingSystem.IsWindows()) CheckPrivate(handle, path);
            var length = RandomAccess.GetLength(handle);
            var key = new byte[KeySize];
            if (length != KeySize || RandomAccess.Read(handle, key, 0) != KeySize)
            {
                throw new InvalidOperationException(
                    $"The key file '{path}' is damaged ({length} bytes, not {KeySize}): the connector secrets it sealed cannot be read. " +
                    "Remove it, then save each connector's credentials again (Set-CloudConnector -Credential).");
            }
            return key;
        }
    }

    /// <summary>Refuses a key file that is not this user's alone: another owner, or read or write bits for group or others.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void CheckPrivate(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path)
    {
        if (StateLocation.OwnerOf(handle) is { } owner && owner != StateLocation.CurrentUserId())
        {
            var me = StateLocation.CurrentUserId();
            throw new StateNotPrivateException(
                $"The key file '{path}' belongs to user id {owner}, not to {Environment.UserName} (user id {me}): its owner can read the connector secrets it seals, so it is not used. " +
                $"If the file is yours, run chown {me} '{path}'; otherwise remove it and save each connector's credentials again (Set-CloudConnector -Credential).");
        }
        var mode = File.GetUnixFileMode(handle);
        if (StateLocation.OpenToOthers(mode))
        {
            throw new StateNotPrivateException(
                $"The key file '{path}' can be read or written by other users (mode {StateLocation.Octal(mode)}), so it is not used. Run chmod 600 '{path}'. " +
                "Others may have read it: consider new secrets for the connectors (Set-CloudConnector -Credential).");
        }
    }

    /// <summary>Seals a stored access key and secret.</summary>
    public byte[] Protect(string accessKeyId, string secret) => Protect(new ConnectorSecrets(accessKeyId, secret));

    /// <summary>Seals what a connector keeps secret; nothing to keep is an empty array.</summary>
    public byte[] Protect(ConnectorSecrets secrets)
    {
        if (secrets.IsEmpty) return [];
        var plain = Encode(secrets);
        try
        {
            if (OperatingSystem.IsWindows() && !_shared)
            {
                return [DpapiFieldsFormatVersion, .. ProtectedData.Protect(plain, DpapiEntropy, DataProtectionScope.CurrentUser)];
            }
            var output = new byte[1 + NonceSize + TagSize + plain.Length];
            output[0] = FieldsFormatVersion;
            var nonce = output.AsSpan(1, NonceSize);
            RandomNumberGenerator.Fill(nonce);
            using var aes = new AesGcm(Key, TagSize);
            aes.Encrypt(nonce, plain, output.AsSpan(1 + NonceSize + TagSize), output.AsSpan(1 + NonceSize, TagSize));
            return output;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
        }
    }

    /// <summary>Opens what <see cref="Protect(ConnectorSecrets)"/> sealed (or an older "key id, secret" seal); an empty array holds nothing.</summary>
    public ConnectorSecrets Unprotect(byte[] data)
    {
        if (data.Length == 0) return ConnectorSecrets.None;
        byte[] plain;
        if (data.Length > 1 && data[0] is DpapiFormatVersion or DpapiFieldsFormatVersion && OperatingSystem.IsWindows())
        {
            plain = ProtectedData.Unprotect(data.AsSpan(1).ToArray(), DpapiEntropy, DataProtectionScope.CurrentUser);
        }
        else
        {
            if (data.Length < 1 + NonceSize + TagSize || data[0] is not (FormatVersion or FieldsFormatVersion))
            {
                throw new InvalidOperationException("A stored credential is in an unknown format; set it again with Set-CloudConnector -Credential.");
            }
            plain = new byte[data.Length - 1 - NonceSize - TagSize];
            using var aes = new AesGcm(Key, TagSize);
            try
            {
                aes.Decrypt(data.AsSpan(1, NonceSize), data.AsSpan(1 + NonceSize + TagSize), data.AsSpan(1 + NonceSize, TagSize), plain);
            }
            catch (AuthenticationTagMismatchException)
            {
                throw new InvalidOperationException(_shared
                    ? $"A stored credential cannot be decrypted with {_keyPath}: it was sealed with another key. Give this host the key the others use ({SharedKey.Variable} or {SharedKey.FileVariable}); saving the credential again with this key would lock the other hosts out."
                    : SharedStore
                        ? $"A stored credential cannot be decrypted: the hosts of this shared state store seal secrets with a key this host does not have. Set {SharedKey.Variable} or {SharedKey.FileVariable} to that key (docs/scale-out.md); saving the credential again from this host would lock the others out."
                        : "A stored credential cannot be decrypted with this user's key file; set it again with Set-CloudConnector -Credential.");
            }
        }
        try
        {
            return data[0] is FieldsFormatVersion or DpapiFieldsFormatVersion ? Decode(plain) : SplitKeyAndSecret(plain);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
        }
    }

    private static ConnectorSecrets SplitKeyAndSecret(byte[] plain)
    {
        var text = Encoding.UTF8.GetString(plain);
        var split = text.IndexOf('\n');
        return new ConnectorSecrets(text[..split], text[(split + 1)..]);
    }

    /// <summary>Each field as a 32-bit length (-1 for none) and its UTF-8 bytes: any character may be in a secret.</summary>
    private static byte[] Encode(ConnectorSecrets s)
    {
        string?[] fields = [s.AccessKeyId, s.SecretAccessKey, s.ProxyUserName, s.ProxyPassword];
        var output = new byte[fields.Sum(f => 4 + (f is null ? 0 : Encoding.UTF8.GetByteCount(f)))];
        var at = 0;
        foreach (var field in fields)
        {
            var length = field is null ? -1 : Encoding.UTF8.GetBytes(field, output.AsSpan(at + 4));
            BinaryPrimitives.WriteInt32LittleEndian(output.AsSpan(at), length);
            at += 4 + Math.Max(0, length);
        }
        return output;
    }

    private static ConnectorSecrets Decode(byte[] plain)
    {
        var fields = new string?[4];
        var at = 0;
        for (var i = 0; i < fields.Length && at + 4 <= plain.Length; i++)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(plain.AsSpan(at));
            at += 4;
            if (length < 0) continue;
            fields[i] = Encoding.UTF8.GetString(plain, at, length);
            at += length;
        }
        return new ConnectorSecrets(fields[0], fields[1], fields[2], fields[3]);
    }
}

/// <summary>
/// The key that seals connector secrets when worker hosts share one state store: OBJECTMIGRATION_SECRET_KEY (32 bytes,
/// base64) or OBJECTMIGRATION_SECRET_KEY_FILE (a file of 32 bytes, this user's alone, created when missing), provided by
/// the operator to every host (a Kubernetes secret, a systemd credential). Without either, each user keeps a key of
/// their own in the state folder.
/// </summary>
public sealed class SharedKey
{
    public const string Variable = "OBJECTMIGRATION_SECRET_KEY";
    public const string FileVariable = "OBJECTMIGRATION_SECRET_KEY_FILE";

    private SharedKey(byte[] bytes, string describe) => (Bytes, Describe) = (bytes, describe);

    internal byte[] Bytes { get; }
    /// <summary>Where the key came from, for messages (never the key).</summary>
    public string Describe { get; }

    public static SharedKey? FromEnvironment() =>
        From(Environment.GetEnvironmentVariable(Variable), Environment.GetEnvironmentVariable(FileVariable));

    /// <summary>The key from the values of <see cref="Variable"/> and <see cref="FileVariable"/> (the first wins); null when neither is set.</summary>
    public static SharedKey? From(string? key, string? file)
    {
        if (key is { Length: > 0 } encoded)
        {
            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(encoded.Trim());
            }
            catch (FormatException)
            {
                throw new InvalidOperationException($"{Variable} is not base64. Give 32 random bytes in base64, e.g. from: openssl rand -base64 32");
            }
            if (bytes.Length != 32) throw new InvalidOperationException($"{Variable} holds {bytes.Length} bytes, not 32. Give 32 random bytes in base64, e.g. from: openssl rand -base64 32");
            return new SharedKey(bytes, $"the key in {Variable}");
        }
        if (file is { Length: > 0 } path)
        {
            // Never created here: a mistyped path would silently seal with a new key that no other host has.
            var full = Path.GetFullPath(path);
            if (!File.Exists(full))
            {
                throw new InvalidOperationException(
                    $"{FileVariable} names '{full}', which does not exist. Create the key once (e.g. openssl rand 32 > '{full}'; chmod 600 '{full}') and copy it to every host, or correct the path.");
            }
            if (new FileInfo(full).Length != 32)
            {
                // Not the per-user key file's advice (remove it, save the secrets again): that would lock the other hosts out.
                throw new InvalidOperationException(LooksLikeBase64(full)
                    ? $"{FileVariable} names '{full}', which holds the key as base64 text; the file must hold the 32 bytes themselves. Write them with: openssl rand 32 > '{full}' (a new key: copy it to every host), or give the text in {Variable} instead."
                    : $"{FileVariable} names '{full}', which holds {new FileInfo(full).Length} bytes, not 32. A key file holds 32 random bytes: openssl rand 32 > '{full}'; chmod 600 '{full}', copied to every host.");
            }
            return new SharedKey(SecretProtector.LoadOrCreateKey(full), full);
        }
        return null;
    }

    private static bool LooksLikeBase64(string path)
    {
        try
        {
            return Convert.FromBase64String(File.ReadAllText(path).Trim()).Length == 32;
        }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
