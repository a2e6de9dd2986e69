using System.Security.Cryptography;
using System.Text;

namespace ObjectMigration.Engine.Connectors;

/// <summary>
/// Encrypts connector credentials at rest: with DPAPI (current user) on Windows; elsewhere with AES-GCM under a
/// per-user key file that only its owner can read (created with mode 0600).
/// </summary>
public sealed class SecretProtector
{
    private const int KeySize = 32, NonceSize = 12, TagSize = 16;
    private const byte FormatVersion = 1, DpapiFormatVersion = 2;
    private static readonly byte[] DpapiEntropy = Encoding.UTF8.GetBytes("ObjectMigration connector credential");
    private readonly string _keyPath;
    private byte[]? _key;

    public SecretProtector(string homeFolder)
    {
        Directory.CreateDirectory(homeFolder);
        _keyPath = Path.Combine(homeFolder, "secret.key");
    }

    /// <summary>The key file is read (or created) on first use, so Windows users never get one.</summary>
    private byte[] Key
    {
        get
        {
            if (_key is not null) return _key;
            var key = File.Exists(_keyPath) ? File.ReadAllBytes(_keyPath) : CreateKey(_keyPath);
            if (key.Length != KeySize) throw new InvalidOperationException($"The key file '{_keyPath}' is damaged: expected {KeySize} bytes.");
            return _key = key;
        }
    }

    private static byte[] CreateKey(string path)
    {
        var key = RandomNumberGenerator.GetBytes(KeySize);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using var file = new FileStream(path, options);
            file.Write(key);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first: use theirs.
            return File.ReadAllBytes(path);
        }
        return key;
    }

    public byte[] Protect(string accessKeyId, string secret)
    {
        var plain = Encoding.UTF8.GetBytes(accessKeyId + "\n" + secret);
        if (OperatingSystem.IsWindows())
        {
            var sealedData = ProtectedData.Protect(plain, DpapiEntropy, DataProtectionScope.CurrentUser);
            CryptographicOperations.ZeroMemory(plain);
            return [DpapiFormatVersion, .. sealedData];
        }
        var output = new byte[1 + NonceSize + TagSize + plain.Length];
        output[0] = FormatVersion;
        var nonce = output.AsSpan(1, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(Key, TagSize);
        aes.Encrypt(nonce, plain, output.AsSpan(1 + NonceSize + TagSize), output.AsSpan(1 + NonceSize, TagSize));
        CryptographicOperations.ZeroMemory(plain);
        return output;
    }

    public (string AccessKeyId, string Secret) Unprotect(byte[] data)
    {
        if (data.Length > 1 && data[0] == DpapiFormatVersion && OperatingSystem.IsWindows())
        {
            return Split(ProtectedData.Unprotect(data.AsSpan(1).ToArray(), DpapiEntropy, DataProtectionScope.CurrentUser));
        }
        if (data.Length < 1 + NonceSize + TagSize || data[0] != FormatVersion)
        {
            throw new InvalidOperationException("A stored credential is in an unknown format; set it again with Set-CloudConnector -Credential.");
        }
        var plain = new byte[data.Length - 1 - NonceSize - TagSize];
        using var aes = new AesGcm(Key, TagSize);
        try
        {
            aes.Decrypt(data.AsSpan(1, NonceSize), data.AsSpan(1 + NonceSize + TagSize), data.AsSpan(1 + NonceSize, TagSize), plain);
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new InvalidOperationException("A stored credential cannot be decrypted with this user's key file; set it again with Set-CloudConnector -Credential.");
        }
        return Split(plain);
    }

    private static (string AccessKeyId, string Secret) Split(byte[] plain)
    {
        var text = Encoding.UTF8.GetString(plain);
        CryptographicOperations.ZeroMemory(plain);
        var split = text.IndexOf('\n');
        return (text[..split], text[(split + 1)..]);
    }
}
