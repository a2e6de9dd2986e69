using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Scheduling;

/// <summary>
/// The batches of a job one runner holds a lease on: where the scheduler is in reading each, and which it may no
/// longer work on (another runner took one over after this runner's lease lapsed). The scheduler reads and completes;
/// the control loop renews the leases and drops what was lost.
/// </summary>
internal sealed class HeldBatches
{
    internal sealed class Held(ObjectBatch batch)
    {
        public ObjectBatch Batch { get; } = batch;
        /// <summary>The last key read from the batch: the next read continues after it.</summary>
        public string Cursor { get; set; } = batch.AfterKey;
        /// <summary>Every pending row of the batch was read once; it completes when none is in flight.</summary>
        public bool FullyRead { get; set; }
        /// <summary>Rows read since the batch was (re)started.</summary>
        public int RowsRead { get; set; }
        /// <summary>Read again from its start because it did not complete.</summary>
        public bool Reread { get; set; }
        /// <summary>
        /// Read again, nothing pending was found, and still it does not complete: the store and this runner disagree.
        /// Held but no longer read; the run ends with its objects pending and says so.
        /// </summary>
        public bool Stuck { get; set; }

        public void ReadAgain()
        {
            (Cursor, FullyRead, RowsRead, Reread) = (Batch.AfterKey, false, 0, true);
        }
    }

    private readonly object _gate = new();
    private readonly List<Held> _held = [];

    public int Count
    {
        get { lock (_gate) return _held.Count; }
    }

    public void Add(IEnumerable<ObjectBatch> batches)
    {
        lock (_gate) _held.AddRange(batches.Select(b => new Held(b)));
    }

    /// <summary>The lowest batch with rows still to read, if any.</summary>
    public Held? NextToRead()
    {
        lock (_gate) return _held.FirstOrDefault(h => !h.FullyRead && !h.Stuck);
    }

    /// <summary>Batches read to their end: they complete once their objects are recorded.</summary>
    public IReadOnlyList<Held> FullyRead()
    {
        lock (_gate) return _held.Where(h => h.FullyRead && !h.Stuck).ToList();
    }

    public int StuckCount
    {
        get { lock (_gate) return _held.Count(h => h.Stuck); }
    }

    public void Remove(Held held)
    {
        lock (_gate) _held.Remove(held);
    }

    /// <summary>Keeps only the batches the store says this runner still holds; returns how many were lost.</summary>
    public int KeepOnly(IReadOnlyCollection<int> stillHeld)
    {
        lock (_gate) return _held.RemoveAll(h => !stillHeld.Contains(h.Batch.BatchNo));
    }
}
