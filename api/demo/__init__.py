"""``trustwatch demo``: the main job in one command, on the lab captures bundled in ``lab/``."""
