"""What the agent keeps of one held job: a job wanted back only until it starts, a lost job
woken at once, and each output copied once however often ComfyUI lists it."""

from __future__ import annotations

from queue_manager.comfy.remote import OutputRef
from queue_manager.contract.worker_api import Assignment
from worker.held import Held, Outputs


def held() -> Held:
    return Held(Assignment(id="j1", attempt=1, user="user001", lane="normal", prompt={}))


def test_a_job_is_wanted_back_only_until_it_starts() -> None:
    waiting, running = held(), held()
    running.started = True
    waiting.want_back()
    running.want_back()
    assert (waiting.back, waiting.wake.is_set()) == (True, True)
    assert (running.back, running.wake.is_set()) == (False, False)


def test_a_lost_job_is_woken_and_holds_its_place_on_comfy_until_it_ran() -> None:
    job = held()
    job.lose()
    assert job.lost.is_set() and job.wake.is_set()
    assert job.on_comfy()
    job.ran.set()
    assert not job.on_comfy()


def test_an_output_listed_twice_is_copied_once() -> None:
    outputs = Outputs()
    ref = OutputRef("9", "images", "a_00001_.png", "", "output")
    assert outputs.first_time(ref)
    assert not outputs.first_time(ref)
    assert outputs.first_time(OutputRef("9", "images", "a_00001_.png", "", "temp"))


def test_the_history_is_needed_until_every_output_node_was_announced() -> None:
    catalogue = {
        "SaveImage": {"output_node": True},
        "PreviewAny": {"output_node": True},
        "EmptyImage": {"output_node": False},
    }
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {}},
        "2": {"class_type": "SaveImage", "inputs": {}},
        "3": {"class_type": "PreviewAny", "inputs": {}},
    }
    outputs = Outputs()
    outputs.announced.add("2")
    assert not outputs.all_announced(prompt, catalogue)  # PreviewAny said nothing yet
    outputs.announced.add("3")
    assert outputs.all_announced(prompt, catalogue)
    assert not outputs.all_announced(prompt, {})  # a catalogue that knows none of them
    assert not outputs.all_announced({"1": prompt["1"]}, catalogue)  # no output node at all
