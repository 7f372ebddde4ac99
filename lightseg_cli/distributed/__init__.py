"""``lightseg run`` beyond one machine: the work of a run split into units (batches of images, whole
videos) that workers label with the local pipeline and write themselves.

* ``store``: the output folder every worker can reach (a path, or a filesystem URI);
* ``work``: what one worker does with a unit (no cluster library needed, so it is testable alone);
* ``ray_engine``: ``--engine ray``, the units run by a pool of Ray Data actors (optional extra).
"""
