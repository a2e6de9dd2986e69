using System.Security.Cryptography;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// The full-object checksums S3 stores (x-amz-checksum-*), computed incrementally while a body streams. CRCs are the
/// reflected forms S3 uses, written big-endian and base64-encoded as S3 writes them.
/// </summary>
internal abstract class ContentChecksum : IDisposable
{
    public static ContentChecksum? Create(string? algorithm) => algorithm?.ToUpperInvariant() switch
    {
        "CRC32" => new Crc(32, 0xEDB88320UL),
        "CRC32C" => new Crc(32, 0x82F63B78UL),
        "CRC64NVME" => new Crc(64, 0x9A6C9329AC4BC9B5UL),
        "SHA1" => new Hash(HashAlgorithmName.SHA1),
        "SHA256" => new Hash(HashAlgorithmName.SHA256),
        _ => null,
    };

    public abstract void Append(ReadOnlySpan<byte> data);

    /// <summary>The value as S3 carries it in a header.</summary>
    public abstract string ToBase64();

    public virtual void Dispose() { }

    private sealed class Hash(HashAlgorithmName name) : ContentChecksum
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(name);
        public override void Append(ReadOnlySpan<byte> data) => _hash.AppendData(data);
        public override string ToBase64() => Convert.ToBase64String(_hash.GetHashAndReset());
        public override void Dispose() => _hash.Dispose();
    }

    /// <summary>A table-driven reflected CRC, initial value and final XOR all ones.</summary>
    private sealed class Crc : ContentChecksum
    {
        private static readonly Dictionary<ulong, ulong[]> Tables = new();
        private readonly ulong[] _table;
        private readonly int _width;
        private readonly ulong _mask;
        private ulong _crc;

        public Crc(int width, ulong reflectedPolynomial)
        {
            _width = width;
            _mask = width == 64 ? ulong.MaxValue : (1UL << width) - 1;
            _crc = _mask;
            lock (Tables)
            {
                if (!Tables.TryGetValue(reflectedPolynomial, out var table))
                {
                    table = new ulong[256];
                    for (ulong i = 0; i < 256; i++)
                    {
                        var value = i;
                        for (var bit = 0; bit < 8; bit++) value = (value & 1) != 0 ? (value >> 1) ^ reflectedPolynomial : value >> 1;
                        table[i] = value;
                    }
                    Tables[reflectedPolynomial] = table;
                }
                _table = table;
            }
        }

        public override void Append(ReadOnlySpan<byte> data)
        {
            var crc = _crc;
            foreach (var b in data) crc = _table[(crc ^ b) & 0xFF] ^ (crc >> 8);
            _crc = crc;
        }

        public override string ToBase64()
        {
            var value = (_crc ^ _mask) & _mask;
            var bytes = new byte[_width / 8];
            for (var i = 0; i < bytes.Length; i++) bytes[i] = (byte)(value >> (8 * (bytes.Length - 1 - i)));
            return Convert.ToBase64String(bytes);
        }
    }
}
