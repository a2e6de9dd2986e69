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
        /// <summary>Times it was read again from its start, in a row, finding nothing pending, and still did not complete.</summary>
        public int EmptyRereads { get; set; }
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

    /// <summary>Batches being read (not yet read to their end).</summary>
    public int Reading
    {
        get { lock (_gate) return _held.Count(h => !h.FullyRead && !h.Stuck); }
    }

    /// <summary>Whether this runner still holds the batch (0: work read without batches, always held).</summary>
    public bool Holds(int batchNo)
    {
        if (batchNo == 0) return true;
        lock (_gate) return _held.Any(h => h.Batch.BatchNo == batchNo);
    }

    /// <summary>The numbers of the batches held now: a renewal's answer is compared with these only.</summary>
    public IReadOnlyList<int> Numbers()
    {
        lock (_gate) return _held.Select(h => h.Batch.BatchNo).ToList();
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

    /// <summary>
    /// Of the batches that were held when the renewal was asked (<paramref name="asked"/>), drops those the store no
    /// longer says this runner holds; returns how many. A batch claimed while the renewal was on its way is kept.
    /// </summary>
    public int KeepOnly(IReadOnlyCollection<int> asked, IReadOnlyCollection<int> stillHeld)
    {
        lock (_gate) return _held.RemoveAll(h => asked.Contains(h.Batch.BatchNo) && !stillHeld.Contains(h.Batch.BatchNo));
    }
}
