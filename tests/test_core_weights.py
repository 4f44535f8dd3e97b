import threading

import numpy as np
import pytest

from vrshare import BankError, WeightBank, backend


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
    with pytest.raises(BankError, match=r"no buffer named 'b' .*declared: a"):
        bank["b"]


def test_stamp_sets_versions_and_publishes_subscribed_buffers():
    bank = WeightBank()
    pose = bank.state("pose", 3)
    bank.subscribe("pose")
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
