"""Where this process sits in a run of several (torchrun and accelerate launch describe it in the environment).

Read without importing torch, so that the command line can ask before anything heavy loads.
"""

import os


def world_size() -> int:
    """How many processes run together (torchrun and accelerate launch set WORLD_SIZE); 1 when launched alone."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """False in all but the first process of a run launched by torchrun or accelerate launch (they set RANK)."""
    return os.environ.get("RANK", "0") == "0"
