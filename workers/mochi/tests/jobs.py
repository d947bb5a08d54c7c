"""The job the worker's tests send."""

from typing import Any

from receiver import Receiver


def job_input(receiver: Receiver, **changes: Any) -> dict[str, Any]:
    """The smallest job the shared bounds allow (7 frames of 384x384, 10 steps)."""
    return {
        "positive_prompt": "a red cat dances",
        "negative_prompt": "",
        "width": 384,
        "height": 384,
        "num_frames": 7,
        "seed": 7,
        "steps": 10,
        "cfg": 4.5,
        "output_put_url": f"{receiver.url}/bucket/staging/v1.mp4?X-Amz-Signature=s3cr3t",
        "output_key": "videos/v1.mp4",
        **changes,
    }
