"""Cadence: the checks of each key with their exact messages, the derived properties and
the default latency (unit tests; the run-file path is in test_core_async.py)."""

import re

import pytest

from vrshare.pipeline.cadence import Cadence, cadence_of


@pytest.mark.parametrize(("keys", "message"), [
    ({"mode": "fast"}, "'mode': expected 'sync' or 'async' or 'process', got 'fast'"),
    ({"on_overrun": "drop"}, "'on_overrun': expected 'wait' or 'skip' or 'async', got 'drop'"),
    ({"device": "tpu"}, "'device': expected 'auto' or 'host' or 'gpu', got 'tpu'"),
    ({"mode": "process", "device": "gpu"},
     "'device': a stage in mode \"process\" runs on the host"),
    ({"rate_hz": 0.0}, "'rate_hz': must be a finite number > 0 Hz, got 0.0"),
    ({"rate_hz": -5.0}, "'rate_hz': must be a finite number > 0 Hz, got -5.0"),
    ({"rate_hz": float("inf")}, "'rate_hz': must be a finite number > 0 Hz, got inf"),
    ({"mode": "async", "latency_frames": 0}, "'latency_frames': must be >= 1, got 0"),
    ({"latency_frames": 2}, "'latency_frames' applies to mode = \"async\" or \"process\" only"),
    ({"mode": "process", "on_overrun": "skip"},
     "'on_overrun' applies to mode = \"sync\" only (a stage in mode 'process' never holds "
     "up the frame)"),
])
def test_each_bad_key_is_refused_with_a_message_naming_it(keys, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Cadence(**keys)


@pytest.mark.parametrize("keys", [
    {"mode": "process", "device": "host"},
    {"mode": "async", "latency_frames": 1, "rate_hz": 1e-3},
    {"mode": "process", "latency_frames": 5},
    {"on_overrun": "async", "device": "gpu"},
])
def test_good_combinations_are_accepted(keys):
    assert Cadence(**keys).mode == keys.get("mode", "sync")


@pytest.mark.parametrize(("keys", "plain", "private"), [
    ({}, True, False),
    ({"rate_hz": 30.0}, False, False),
    ({"on_overrun": "skip"}, False, False),
    ({"on_overrun": "async"}, False, True),
    ({"mode": "async"}, False, True),
    ({"mode": "process"}, False, True),
])
def test_plain_is_only_the_default_and_private_is_every_off_loop_way(keys, plain, private):
    c = Cadence(**keys)
    assert (c.plain, c.private) == (plain, private)


@pytest.mark.parametrize(("rate_hz", "frame_hz", "frames"), [
    (45.0, 90.0, 2),  # an exact ratio is not rounded up by float error
    (30.0, 90.0, 3),
    (40.0, 90.0, 3),
    (1000.0, 90.0, 1),
])
def test_the_default_latency_is_one_period_of_the_rate_in_whole_frames(rate_hz, frame_hz, frames):
    assert Cadence("async", rate_hz=rate_hz).latency(frame_hz) == frames


def test_cadence_of_takes_class_defaults_the_instances_own_then_overrides():
    class Slow:
        mode = "async"
        rate_hz = 10.0

    stage = Slow()
    stage.latency_frames = 4
    c = cadence_of(stage)
    assert (c.mode, c.rate_hz, c.latency_frames, c.on_overrun, c.device) == (
        "async", 10.0, 4, "wait", "auto")
    c = cadence_of(stage, mode="process", device="host")
    assert (c.mode, c.rate_hz, c.latency_frames, c.device) == ("process", 10.0, 4, "host")
    assert cadence_of(object()) == Cadence()
