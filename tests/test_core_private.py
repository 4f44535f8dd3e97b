"""PrivateBank: the bank as a stage off the loop's thread sees it (own input copies,
back copies of its outputs, published between stages), on the device and on the host."""

import numpy as np
import pytest

from vrshare import WeightBank, backend
from vrshare.pipeline.private import PrivateBank
from vrshare.pipeline.worker import Worker


@pytest.fixture
def bank():
    b = WeightBank()
    b.state("pose", 3)[...] = [1, 2, 3]
    b.state("out", 2)
    b.param("weights", np.arange(4, dtype=np.float32))
    b.stamp(("pose",), 4)
    return b


@pytest.mark.parametrize("host", [False, True], ids=["device", "host"])
def test_inputs_are_copies_taken_when_a_run_starts(bank, host):
    view = PrivateBank(bank, ("pose", "pose"), ("out",), host=host)
    assert view.reads == ("pose",)
    view.ready()
    pose = view["pose"]
    assert pose is not bank["pose"] and pose.tolist() == [1, 2, 3] and view["pose"] is pose
    assert view.version("pose") == 4
    bank["pose"][...] = 9
    bank.stamp(("pose",), 5)
    assert pose.tolist() == [1, 2, 3] and view.version("pose") == 4  # until the next take
    buf = view.buffer("pose")
    assert (buf.name, buf.kind, buf.version, buf.array is pose) == ("pose", "state", 4, True)
    view.take_inputs()
    assert pose.tolist() == [9, 9, 9] and view.version("pose") == 5
    assert view.input_versions == {"pose": 5}


@pytest.mark.parametrize("host", [False, True], ids=["device", "host"])
def test_outputs_are_back_copies_published_on_request(bank, host):
    view = PrivateBank(bank, ("pose",), ("out",), host=host)
    out = view.state("out", 2)
    assert out is not bank["out"] and view["out"] is out and view.buffer("out").array is out
    out[...] = [7, 8]
    assert bank["out"].tolist() == [0, 0]  # not visible before the publish
    view.publish()
    assert bank["out"].tolist() == [7, 8]
    assert view.version("out") == bank.version("out") == -1  # the loop stamps, not the view


@pytest.mark.parametrize("host", [False, True], ids=["device", "host"])
def test_an_output_is_declared_in_the_bank_with_its_shape_and_dtype(host):
    bank = WeightBank()
    view = PrivateBank(bank, (), ("counts", "mask"), host=host)
    counts = view.state("counts", (2, 3), "int64")
    mask = view.state("mask", 4, "bool")
    for name, back in (("counts", counts), ("mask", mask)):
        assert (bank[name].shape, bank[name].dtype) == (back.shape, back.dtype)
    assert (counts.shape, counts.dtype, mask.dtype) == ((2, 3), np.int64, np.bool_)


def test_ready_publishes_the_outputs_setup_set(bank):
    view = PrivateBank(bank, (), ("out",))
    view.state("out", 2)[...] = [0.5, 1.5]  # say, an identity pose set in setup
    view.ready()
    assert bank["out"].tolist() == [0.5, 1.5]


def test_ready_copies_the_inputs_before_any_run(bank):
    """The worker never makes a copy: ready() makes every input's, even unasked."""
    view = PrivateBank(bank, ("pose", "missing"), ())
    view.ready()
    assert set(view._inputs) == {"pose"} and view._inputs["pose"].tolist() == [1, 2, 3]


def test_on_the_device_the_copies_stay_there_uncounted(bank):
    backend.transfers.reset()
    view = PrivateBank(bank, ("pose",), ("out",))
    view.state("out", 2)
    view.ready()
    view.take_inputs()
    view.publish()
    assert backend.transfers.by_label == {}


def test_an_input_copy_carries_the_version_it_was_taken_at_and_outputs_have_none(bank):
    view = PrivateBank(bank, ("pose",), ("out",))
    view.state("out", 2)
    assert view["pose"].tolist() == [1, 2, 3]  # the first read takes the copy
    assert view.input_versions == {"pose": 4} and view.version("pose") == 4


def test_a_buffer_read_and_written_is_the_stages_own_state(bank):
    view = PrivateBank(bank, ("out",), ("out",))
    assert view.reads == () and view.writes == ("out",)
    out = view.state("out", 2)
    out[...] = 3
    view.take_inputs()  # not an input: the stage's values stay from run to run
    assert out.tolist() == [3, 3] and view["out"] is out


def test_on_the_device_everything_else_is_the_banks_own(bank):
    view = PrivateBank(bank, ("pose",), ("out",))
    assert view.param("weights", np.arange(4, dtype=np.float32)) is bank["weights"]
    assert view["weights"] is bank["weights"] and view.buffer("weights") is bank.buffer("weights")
    extra = view.state("extra", 5)
    assert extra is bank["extra"] and view.version("weights") == bank.version("weights")
    fresh = view.param("fresh", [1.0, 2.0], dtype="float32")  # registered in the bank
    assert fresh is bank["fresh"] and fresh.dtype == np.float32  # as asked, not float64


def test_on_the_host_everything_else_is_a_copy_taken_once_and_counted(bank):
    backend.transfers.reset()
    view = PrivateBank(bank, ("pose",), ("out",), host=True)
    w = view.param("weights", np.arange(4, dtype=np.float32))
    assert w is not bank["weights"] and w.tolist() == [0, 1, 2, 3]
    assert view["weights"] is w and view.state("extra", 5) is view["extra"]
    assert view["extra"] is not bank["extra"]
    assert backend.transfers.by_label == {"to_host:weights": 1, "to_host:extra": 1}


def test_the_host_copies_come_and_go_through_counted_transfers(bank):
    backend.transfers.reset()
    view = PrivateBank(bank, ("pose",), ("out",), host=True)
    view.state("out", 2)  # the back copy, taken down once
    view.ready()  # the input's copy, taken down once, then filled and the output published
    assert backend.transfers.by_label == {"to_host:out": 1, "to_host:pose": 2,
                                          "to_device:out": 1}
    backend.transfers.reset()
    view.take_inputs()
    view.publish()
    assert backend.transfers.by_label == {"to_host:pose": 1, "to_device:out": 1}


def test_the_rest_of_the_bank_passes_through(bank):
    view = PrivateBank(bank, ("pose",), ("out",))
    assert "pose" in view and "nothing" not in view and view.names() == bank.names()
    view.subscribe("out")
    bank.stamp(("out",), 2)
    assert view.snapshot("out").version == 2
    into = np.empty(2, np.float32)
    assert view.snapshot("out", into).data is into
    worker = view.make_worker("echo", lambda frame: None)
    assert isinstance(worker, Worker) and worker.name == "echo"
