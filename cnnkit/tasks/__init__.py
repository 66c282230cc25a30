"""Tasks by name: `get("image-cls")`, `names()`. Each module only wires the parts together."""
from cnnkit.tasks.base import TASKS, Prepared, Task
from cnnkit.tasks import image_cls, speech_cls, text_cls  # noqa: F401  (register the tasks)


def get(name: str) -> Task:
    """The task object registered as `name` (an unknown name lists the known ones)."""
    return TASKS.get(name).builder()


def names() -> list[str]:
    return TASKS.names()


__all__ = ["get", "names", "Task", "Prepared"]
