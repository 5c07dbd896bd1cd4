"""Running a prompt on another ComfyUI: the job's own output folder, the errors a history entry
records, and outputs found on a shared mount where no replica returns the history."""

from __future__ import annotations

from typing import Any

from queue_manager.comfy.remote import (
    history_error,
    history_finished,
    outputs_from_folder,
    refusal_error,
    save_prefixes,
    with_output_folder,
    without_folder,
)

PROMPT: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t/cat"}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ComfyUI"}},
    "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
}


def test_save_nodes_write_under_the_jobs_folder_and_come_back_as_named() -> None:
    rewritten = with_output_folder(PROMPT, "cw-job-1")
    assert rewritten["2"]["inputs"]["filename_prefix"] == "cw-job-1/t/cat"
    assert rewritten["3"]["inputs"]["filename_prefix"] == "cw-job-1/ComfyUI"
    assert "filename_prefix" not in rewritten["4"]["inputs"]
    assert PROMPT["2"]["inputs"]["filename_prefix"] == "t/cat"  # the original is untouched
    assert without_folder("cw-job-1/t", "cw-job-1") == "t"
    assert without_folder("cw-job-1", "cw-job-1") == ""
    assert without_folder("elsewhere", "cw-job-1") == "elsewhere"


def test_files_left_in_the_jobs_mount_folder_go_to_the_save_node_that_named_them() -> None:
    files = ["t/cat_00001_.png", "ComfyUI_00001_.png", "ComfyUI_00002_.webm", "t/dog_00001_.png"]
    outputs = outputs_from_folder("cw-job-1", files, save_prefixes(PROMPT))
    assert outputs == {
        "2": {"images": [{"filename": "cat_00001_.png", "subfolder": "cw-job-1/t",
                          "type": "output"}]},
        "3": {
            "images": [{"filename": "ComfyUI_00001_.png", "subfolder": "cw-job-1",
                        "type": "output"}],
            "videos": [{"filename": "ComfyUI_00002_.webm", "subfolder": "cw-job-1",
                        "type": "output"}],
        },
    }  # fmt: skip


def test_a_history_entry_tells_success_error_and_interruption() -> None:
    ok = {"status": {"status_str": "success", "completed": True, "messages": []}}
    assert history_finished(ok) and history_error(ok) is None
    failed = {
        "status": {
            "status_str": "error",
            "completed": False,
            "messages": [
                ["execution_start", {"prompt_id": "p"}],
                ["execution_error", {"exception_message": "boom ", "node_id": "2",
                                     "node_type": "SaveImage", "exception_type": "ValueError"}],
            ],
        }
    }  # fmt: skip
    error = history_error(failed)
    assert history_finished(failed)
    assert error is not None
    assert (error["type"], error["message"], error["node_id"]) == ("execution_error", "boom", "2")
    messages = [["execution_interrupted", {"node_id": "3"}]]
    interrupted = {"status": {"status_str": "error", "completed": False, "messages": messages}}
    assert history_error(interrupted)["type"] == "execution_interrupted"  # type: ignore[index]
    assert not history_finished({"status": {}})


def test_a_refusal_keeps_comfyuis_node_errors() -> None:
    body = {"error": {"type": "prompt_outputs_failed_validation", "message": "bad"},
            "node_errors": {"2": {"errors": []}}}  # fmt: skip
    error = refusal_error(body)
    assert error["type"] == "prompt_outputs_failed_validation"
    assert error["details"]["node_errors"] == {"2": {"errors": []}}
    assert refusal_error({})["type"] == "prompt_refused"
