import threading

import numpy as np
import pytest

from vrshare import BankError, WeightBank, backend
from vrshare.pipeline.stage import Frame
from vrshare.weights import Age, SnapshotRing


def test_state_is_allocated_once_and_returned_every_time():
    bank = WeightBank()
    a = bank.state("pose", (7,), "float32")
    assert a.shape == (7,) and a.dtype == np.float32 and not a.any()
    a[...] = 3
    b = bank.state("pose", 7, np.float32)
    assert b is a and bank["pose"] is a
    assert bank.version("pose") == -1


@pytest.mark.parametrize("shape, dtype", [((8,), "float32"), ((7,), "float64")])
def test_redeclaring_with_another_shape_or_dtype_is_an_error(shape, dtype):
    bank = WeightBank()
    bank.state("pose", (7,), "float32")
    with pytest.raises(BankError, match=r"'pose' is already declared as state \(7,\) float32"):
        bank.state("pose", shape, dtype)


def test_state_and_param_names_do_not_mix():
    bank = WeightBank()
    bank.state("w", 3)
    with pytest.raises(BankError, match="'w' is already declared as state"):
        bank.param("w", np.zeros(3, np.float32))


def test_identical_params_are_held_once():
    bank = WeightBank()
    data = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    a = bank.param("hrtf_left", data)
    b = bank.param("hrtf_copy", data.copy())
    c = bank.param("other", data + 1)
    assert a is b and c is not a
    assert np.array_equal(a, data) and a is not data  # the bank holds its own copy
    r = bank.report()
    assert r.bytes_held == 2 * data.nbytes
    assert r.bytes_saved == data.nbytes
    assert r.shared_params == {"hrtf_copy": "hrtf_left"}
    bank.param("hrtf_again", data.copy())  # every alias adds what it did not allocate
    assert bank.report().bytes_saved == 2 * data.nbytes


def test_param_same_name_same_content_is_idempotent_other_content_is_an_error():
    bank = WeightBank()
    w = bank.param("w", [1.0, 2.0], dtype="float32")
    assert bank.param("w", np.array([1.0, 2.0], np.float32)) is w
    with pytest.raises(BankError, match="'w' is already declared as param .* other content"):
        bank.param("w", np.array([1.0, 3.0], np.float32))


def test_params_with_equal_bytes_but_other_shape_are_not_shared():
    bank = WeightBank()
    a = bank.param("a", np.zeros((2, 3), np.float32))
    b = bank.param("b", np.zeros((3, 2), np.float32))
    assert a is not b and bank.report().bytes_saved == 0


def test_param_upload_is_a_counted_transfer():
    backend.transfers.reset()
    bank = WeightBank()
    bank.param("p", np.ones(4, np.float32))
    bank.param("q", np.ones(4, np.float32))  # shared: no second upload
    assert bank.report().transfers_to_device == 1


def test_unknown_buffer_names_what_exists():
    bank = WeightBank()
    bank.state("a", 1)
    with pytest.raises(BankError, match=r"no buffer named 'b' .*declared: a\)$"):
        bank["b"]
    bank.state("c", 1)
    with pytest.raises(BankError, match=r"no buffer named 'b' .*\(declared: a, c\)$"):
        bank["b"]
    with pytest.raises(BankError, match=r"no buffer named 'x' in the bank \(declared: none\)$"):
        WeightBank()["x"]


def test_stamp_sets_versions_and_publishes_subscribed_buffers():
    bank = WeightBank()
    pose = bank.state("pose", 3)
    bank.state("other", 2)
    assert bank.subscribed == 0  # none: the loop publishes nothing
    bank.subscribe("pose")
    bank.subscribe("pose")  # asked twice: one snapshot ring
    assert bank.subscribed == 1
    bank.subscribe("other")
    assert bank.subscribed == 2
    assert bank.snapshot("pose").version == -1
    pose[...] = [1, 2, 3]
    bank.stamp(("pose",), 5)
    snap = bank.snapshot("pose")
    assert bank.version("pose") == 5 and snap.version == 5
    assert snap.data.tolist() == [1, 2, 3]
    pose[...] = 9  # not stamped yet: readers still see the last complete version
    assert bank.snapshot("pose").data.tolist() == [1, 2, 3]


def test_snapshot_needs_subscription():
    bank = WeightBank()
    bank.state("x", 2)
    with pytest.raises(BankError, match=r"bank.subscribe\('x'\)"):
        bank.snapshot("x")


def test_snapshot_into_out_does_not_allocate():
    bank = WeightBank()
    bank.state("x", 4)
    bank.subscribe("x")
    out = np.empty(4, np.float32)
    assert bank.snapshot("x", out=out).data is out


def test_concurrent_reader_never_sees_a_torn_buffer():
    """A writer stamps frames whose buffer holds its frame index in every element;
    a reader on another thread checks every snapshot is whole and versions rise."""
    bank = WeightBank()
    n = 1 << 18  # big enough that copies release the GIL mid-way
    buf = bank.state("big", n, "float64")
    bank.subscribe("big")
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader():
        out = np.empty(n)
        last = -1
        while not stop.is_set():
            snap = bank.snapshot("big", out=out)
            lo, hi = out.min(), out.max()
            if lo != hi or (snap.version >= 0 and lo != snap.version):
                problems.append(f"torn snapshot: min {lo} max {hi} version {snap.version}")
            if snap.version < last:
                problems.append(f"version went back from {last} to {snap.version}")
            last = snap.version
            reads[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for frame in range(300):
            buf.fill(frame)
            bank.stamp(("big",), frame)
    finally:
        stop.set()
        t.join()
    assert not problems, problems[:3]
    assert reads[0] > 10
    assert bank.snapshot("big").version == 299


# -- the snapshot ring: failed publishes and slow readers ------------------------------------
#
# The interleavings below are injected, not left to timing: a reader's copy runs a hook half-way
# through (that is where a real reader would be preempted), and the hook runs the writer. Thread
# joins and event waits have generous timeouts that only fail on a real hang.

HANG_S = 10.0


def _in_thread(fn):
    """Run ``fn`` in a daemon thread; return its result, failing (not hanging) if it hangs."""
    result: list = []
    errors: list[BaseException] = []

    def target():
        try:
            result.append(fn())
        except BaseException as exc:  # handed back to the test
            errors.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(HANG_S)
    assert not t.is_alive(), "the reader never returned"
    if errors:
        raise errors[0]
    return result[0]


class _Hooked(np.ndarray):
    """A slot whose ``copy()`` (the reader's copy when no ``out`` is given) runs a hook half-way."""

    hook = None

    def copy(self, *args, **kwargs):
        dst = np.empty(self.shape, self.dtype)
        h = len(self) // 2
        dst[:h] = self[:h]
        if _Hooked.hook is not None:
            _Hooked.hook()
        dst[h:] = self[h:]
        return dst


def _hook_reader_copies(monkeypatch, ring, out, hook):
    """Make every reader copy out of ``ring`` run ``hook`` half-way through."""
    if out is None:
        ring.slots = [s.view(_Hooked) for s in ring.slots]
        monkeypatch.setattr(_Hooked, "hook", staticmethod(hook))
        return
    real_copyto = np.copyto

    def copyto(dst, src, *args, **kwargs):
        if dst is not out:  # the writer's copies into the slots pass straight through
            return real_copyto(dst, src, *args, **kwargs)
        h = len(dst) // 2
        real_copyto(dst[:h], src[:h])
        hook()
        real_copyto(dst[h:], src[h:])

    monkeypatch.setattr(np, "copyto", copyto)


def _fail_publishes(monkeypatch, labels, *, scribble=-7.0):
    """Make copies to the host for ``labels`` write part of the slot, then raise."""
    real_to_host = backend.to_host

    def to_host(array, out=None, *, label=""):
        if label in labels:
            out[: len(out) // 2] = scribble  # part-way, like a device error mid-copy
            raise RuntimeError(f"device lost while copying {label}")
        return real_to_host(array, out=out, label=label)

    monkeypatch.setattr(backend, "to_host", to_host)


def _assert_whole(snap, what=""):
    data = np.asarray(snap.data)
    assert data.min() == data.max() == snap.version, (
        f"{what}torn or mislabelled snapshot: min {data.min()} max {data.max()} "
        f"version {snap.version}"
    )


def test_failed_publish_leaves_the_previous_version_and_the_next_publish_works(monkeypatch):
    bank = WeightBank()
    pose = bank.state("pose", 6, "float64")
    bank.subscribe("pose")
    ring = bank.buffer("pose").ring
    pose.fill(1)
    bank.stamp(("pose",), 1)
    with monkeypatch.context() as m:
        _fail_publishes(m, {"pose"})
        pose.fill(2)
        with pytest.raises(RuntimeError, match="device lost while copying pose"):
            bank.stamp(("pose",), 2)
        assert all(s % 2 == 0 for s in ring.seq), "a failed publish left a slot marked busy"

        def slow_path(out):
            raise AssertionError("a reader needed the slow path after a failed publish")

        m.setattr(ring, "_read_held", slow_path)  # the first lock-free try must succeed
        for _ in range(3):
            snap = _in_thread(lambda: bank.snapshot("pose"))
            assert snap.version == 1 and snap.data.tolist() == [1.0] * 6
        assert bank.version("pose") == 2  # the stage did write it; only the snapshot lags
    # the next publishes work, through every slot (the failed one included)
    for frame in range(3, 3 + 2 * SnapshotRing.SLOTS):
        pose.fill(frame)
        bank.stamp(("pose",), frame)
        snap = bank.snapshot("pose")
        assert snap.version == frame
        _assert_whole(snap)


def test_every_publish_failing_keeps_readers_on_the_last_good_version(monkeypatch):
    ring = SnapshotRing((4,), np.dtype(np.float64))
    ring.publish(np.full(4, 5.0), 5, "x")
    _fail_publishes(monkeypatch, {"x"})
    for _ in range(2 * SnapshotRing.SLOTS):
        with pytest.raises(RuntimeError):
            ring.publish(np.full(4, 6.0), 6, "x")
    snap = _in_thread(lambda: ring.read(None))
    assert snap.version == 5
    _assert_whole(snap)


def test_a_failed_publish_of_one_buffer_still_stamps_and_publishes_the_others(monkeypatch):
    bank = WeightBank()
    a, b = bank.state("a", 4, "float64"), bank.state("b", 4, "float64")
    bank.subscribe("a")
    bank.subscribe("b")
    _fail_publishes(monkeypatch, {"a"})
    a.fill(3)
    b.fill(3)
    with pytest.raises(RuntimeError, match="copying a"):
        bank.stamp(("a", "b"), 3)
    assert bank.version("a") == bank.version("b") == 3
    assert bank.snapshot("a").version == -1 and bank.snapshot("b").version == 3
    _assert_whole(bank.snapshot("b"))


def test_when_several_publishes_fail_the_first_error_is_raised_noting_the_others(monkeypatch):
    bank = WeightBank()
    for name in "abc":
        bank.state(name, 4, "float64")
        bank.subscribe(name)
    _fail_publishes(monkeypatch, {"a", "c"})
    with pytest.raises(RuntimeError, match="copying a") as err:
        bank.stamp(("a", "b", "c"), 2)
    assert err.value.__notes__ == [
        "publishing 'c' also failed: RuntimeError('device lost while copying c')"]
    assert [bank.version(n) for n in "abc"] == [2, 2, 2]


class _SeqWithHook(list):
    """A ring's sequence counters; the first read of one (the reader's) runs a hook first."""

    hook = None

    def __getitem__(self, i):
        run, self.hook = self.hook, None
        if run is not None:
            run()
        return super().__getitem__(i)


@pytest.mark.parametrize("give_out", [True, False], ids=["out", "alloc"])
@pytest.mark.parametrize("preempted", ["mid-copy", "before-counter"])
def test_a_failed_publish_into_the_slot_a_reader_is_copying_is_never_returned(
    monkeypatch, give_out, preempted
):
    """The reader is preempted after picking the newest slot (half-way through copying it, or
    before it even read the slot's counter); meanwhile the writer publishes twice and then
    fails part-way writing into that very slot."""
    n = 8
    ring = SnapshotRing((n,), np.dtype(np.float64))
    ring.publish(np.full(n, 1.0), 1, "x")
    out = np.empty(n) if give_out else None
    _fail_publishes(monkeypatch, {"bad"}, scribble=99.0)
    fired = []

    def writer_runs():
        if fired:
            return
        fired.append(True)
        ring.publish(np.full(n, 2.0), 2, "x")
        ring.publish(np.full(n, 3.0), 3, "x")
        with pytest.raises(RuntimeError):
            ring.publish(np.full(n, 4.0), 4, "bad")  # comes round to the reader's slot

    if preempted == "mid-copy":
        _hook_reader_copies(monkeypatch, ring, out, writer_runs)
    else:
        ring.seq = _SeqWithHook(ring.seq)
        ring.seq.hook = writer_runs
    snap = _in_thread(lambda: ring.read(out))
    assert fired
    assert snap.version == 3
    _assert_whole(snap)


@pytest.mark.parametrize("give_out", [True, False], ids=["out", "alloc"])
def test_a_reader_slower_than_the_writer_gets_a_whole_copy_in_bounded_tries(
    monkeypatch, give_out
):
    """Every copy the reader makes lasts three complete publishes, so no lock-free try can
    succeed (the old ring retried forever); the reader must fall back and still get a whole,
    correctly labelled copy after at most FAST_TRIES + 1 copies."""
    n = 8
    ring = SnapshotRing((n,), np.dtype(np.float64))
    frame = [0]

    def publish():
        frame[0] += 1
        ring.publish(np.full(n, float(frame[0])), frame[0], "x")

    publish()
    out = np.empty(n) if give_out else None
    copies = [0]

    def three_publishes():
        copies[0] += 1
        for _ in range(3):
            publish()

    _hook_reader_copies(monkeypatch, ring, out, three_publishes)
    last = -1
    for _ in range(5):
        snap = _in_thread(lambda: ring.read(out))
        _assert_whole(snap)
        assert snap.version > last
        last = snap.version
    assert copies[0] == 5 * (SnapshotRing.FAST_TRIES + 1)
    _hook_reader_copies(monkeypatch, ring, out, lambda: None)
    assert ring.read(out).version == frame[0]  # and the ring is still whole afterwards


def test_the_writer_never_waits_for_a_slow_reader(monkeypatch):
    """A writer thread publishes in a tight loop; each copy the reader makes waits until the
    writer has published five more times. The reader ends up copying under a slot lock, so if
    the writer ever waited for the reader, this would deadlock (caught by the hang guard)."""
    n = 1 << 12
    bank = WeightBank()
    buf = bank.state("big", n, "float64")
    bank.subscribe("big")
    out = np.empty(n)
    published = [0]
    stop = threading.Event()
    problems: list[str] = []

    def writer():
        frame = 0
        while not stop.is_set():
            frame += 1
            buf.fill(frame)
            bank.stamp(("big",), frame)
            published[0] += 1

    def five_more_publishes():
        target = published[0] + 5
        deadline = threading.Event()
        for _ in range(int(HANG_S / 0.001)):
            if published[0] >= target:
                return
            deadline.wait(0.001)
        problems.append("the writer stopped publishing while a reader was copying")

    _hook_reader_copies(monkeypatch, bank.buffer("big").ring, out, five_more_publishes)
    w = threading.Thread(target=writer, daemon=True)
    w.start()

    def reads():
        last, snaps = -1, 0
        for _ in range(20):
            snap = bank.snapshot("big", out=out)
            lo, hi = out.min(), out.max()
            if lo != hi or lo != snap.version:
                problems.append(f"torn snapshot: min {lo} max {hi} version {snap.version}")
            if snap.version < last:
                problems.append(f"version went back from {last} to {snap.version}")
            last = snap.version
            snaps += 1
        return snaps

    try:
        assert _in_thread(reads) == 20
    finally:
        stop.set()
        w.join(HANG_S)
    assert not w.is_alive()
    assert not problems, problems[:3]


class _LockThatLetsTheWriterIn:
    """Stands in for one slot's lock: the first time a reader waits on it, the writer first
    moves on twice and then gets stuck mid-copy into this very slot."""

    def __init__(self, real, before_reader_waits):
        self.real, self.before_reader_waits = real, before_reader_waits

    def acquire(self, blocking=True, timeout=-1):
        if timeout != -1 and self.before_reader_waits is not None:  # the reader's wait
            run, self.before_reader_waits = self.before_reader_waits, None
            run()
        return self.real.acquire(blocking, timeout)

    def release(self):
        self.real.release()


def test_a_reader_does_not_wait_on_a_writer_stuck_mid_copy(monkeypatch):
    n = 4
    ring = SnapshotRing((n,), np.dtype(np.float64))
    ring.publish(np.full(n, 1.0), 1, "x")  # into slot 1, now the newest
    stuck, unstick = threading.Event(), threading.Event()
    real_to_host = backend.to_host

    def to_host(array, out=None, *, label=""):
        if label == "stuck":
            stuck.set()
            unstick.wait(HANG_S)
        return real_to_host(array, out=out, label=label)

    monkeypatch.setattr(backend, "to_host", to_host)

    def writer():
        ring.publish(np.full(n, 2.0), 2, "x")
        ring.publish(np.full(n, 3.0), 3, "x")
        ring.publish(np.full(n, 4.0), 4, "stuck")  # back into slot 1, and hangs there

    w = threading.Thread(target=writer, daemon=True)

    def writer_moves_on_and_sticks():
        w.start()
        assert stuck.wait(HANG_S)

    slot = ring.latest
    ring._locks[slot] = _LockThatLetsTheWriterIn(ring._locks[slot], writer_moves_on_and_sticks)
    monkeypatch.setattr(ring, "FAST_TRIES", 0)  # straight to the slow path
    try:
        snap = _in_thread(lambda: ring.read(None))
        assert snap.version == 3  # the newest complete copy while the writer is stuck
        _assert_whole(snap)
        monkeypatch.setattr(ring, "FAST_TRIES", SnapshotRing.FAST_TRIES)
        snap = _in_thread(lambda: ring.read(None))  # the lock-free path is not held up either
        assert snap.version == 3
    finally:
        unstick.set()
        w.join(HANG_S)
    assert not w.is_alive()
    snap = ring.read(None)
    assert snap.version == 4
    _assert_whole(snap)


def test_parameter_sharing_keeps_dtypes_and_shapes_apart():
    """Same bytes are not the same parameter: int32 zeros and float32 zeros, or one
    array in two shapes, stay two buffers, each with its own dtype and shape."""
    bank = WeightBank()
    a = bank.param("a", np.zeros(4, np.float32))
    b = bank.param("b", np.zeros(4, np.int32))  # the same 16 bytes
    c = bank.param("c", np.zeros((2, 2), np.float32))  # the same bytes, another shape
    d = bank.param("d", np.zeros(4, np.float32))  # truly the same: shared
    assert (a.dtype, b.dtype, c.shape) == (np.float32, np.int32, (2, 2))
    assert b is not a and c is not a and d is a
    assert bank.report().shared_params == {"d": "a"}


@pytest.mark.parametrize("dtype", ["float32", "int32", "uint8"])
def test_snapshots_keep_the_buffers_dtype(dtype):
    """A reader gets the buffer's own dtype (an int32 count stays int32, not float64)."""
    bank = WeightBank()
    bank.state("x", (2, 3), dtype)[...] = 7
    bank.subscribe("x")
    bank.stamp(("x",), 0)
    snap = bank.snapshot("x")
    assert snap.data.dtype == np.dtype(dtype) and snap.data.shape == (2, 3)
    assert snap.data.tolist() == [[7] * 3] * 2


def test_a_ring_read_before_any_publish_is_zeros_never_written():
    """A SnapshotRing used directly can be read at once: zeros, version -1 (never written)."""
    ring = SnapshotRing((3,), np.dtype(np.int16))
    snap = ring.read(None)
    assert snap.version == -1 and snap.data.dtype == np.int16 and snap.data.tolist() == [0] * 3


def test_the_first_publish_of_a_subscription_is_counted_under_the_buffers_name():
    """subscribe() copies the current contents to the host at once, and that transfer is
    accounted to the buffer (``to_host:NAME``) like every later publish."""
    backend.transfers.reset()
    bank = WeightBank()
    bank.state("pose", 7)
    bank.subscribe("pose")
    assert backend.transfers.by_label == {"to_host:pose": 1}


def test_the_report_counts_buffers_and_transfers_both_ways():
    """One state, two params sharing data (one buffer held, an alias) and one publish:
    3 names, one upload of 16 bytes, two host copies of 12 bytes (subscribe + stamp)."""
    backend.transfers.reset()
    bank = WeightBank()
    bank.state("s", 3)
    bank.param("p", np.ones(4, np.float32))
    bank.param("q", np.ones(4, np.float32))
    bank.subscribe("s")
    bank.stamp(("s",), 0)
    r = bank.report()
    assert (r.buffers, r.transfers_to_device, r.bytes_to_device) == (3, 1, 16)
    assert (r.transfers_to_host, r.bytes_to_host) == (2, 24)
    assert backend.transfers.by_label["to_device:p"] == 1  # the upload is the first name's
    assert r.as_dict()["bytes_to_host"] == 24


def test_a_reader_that_meets_a_publish_in_progress_retries_without_the_slow_path():
    """The newest slot's counter is odd at the reader's first look (a publish into it
    had begun): the reader looks again lock-free and gets the whole copy; the locked
    slow path is only for readers slower than FAST_TRIES such looks."""
    ring = SnapshotRing((2,), np.dtype(np.float32))
    ring.publish(np.array([4.0, 5.0], np.float32), 3, "x")

    class OddOnce(list):
        looks = 0

        def __getitem__(self, i):
            OddOnce.looks += 1
            value = list.__getitem__(self, i)
            return value + 1 if OddOnce.looks == 1 else value

    ring.seq = OddOnce(ring.seq)
    ring._read_held = lambda out: pytest.fail("took the slow path")
    snap = ring.read(None)
    assert snap.version == 3 and snap.data.tolist() == [4.0, 5.0]
    assert OddOnce.looks == 3  # odd, then even before and after the copy


def test_a_second_writer_is_refused_with_a_ring_error_naming_the_rule():
    """Both non-newest slots locked (two writers, or a writer inside a publish) leaves
    no slot: publish raises, naming the ring and its one-writer rule, and the newest
    version is unchanged."""
    ring = SnapshotRing((1,), np.dtype(np.float32))
    ring.publish(np.ones(1, np.float32), 0, "x")
    held = [lock for i, lock in enumerate(ring._locks) if i != ring.latest]
    for lock in held:
        lock.acquire()
    with pytest.raises(RuntimeError, match="^SnapshotRing: no free slot to publish into; "
                                           "a ring has one writer thread$"):
        ring.publish(np.zeros(1, np.float32), 1, "x")
    for lock in held:
        lock.release()
    assert ring.read(None).version == 0


def test_age_counts_frames_and_seconds_since_the_write_and_flags_never_written():
    """Age is (frame.index - version, frame.t_now - t_version); a buffer never
    written is (-1 frames, NaN seconds), whatever the frame."""
    bank = WeightBank()
    bank.state("x", 1)
    frame = Frame(index=10, t_now=2.5, t_display=2.52, budget_s=0.011)
    never = bank.age("x", frame)
    assert never.frames == -1 and np.isnan(never.seconds)
    bank.stamp(("x",), 7, t=2.0)
    assert bank.age("x", frame) == Age(3, 0.5)
    bank.stamp(("x",), 0, t=0.5)  # frame 0 is a write like any other
    assert bank.age("x", frame) == Age(10, 2.0)
