"""The collector settings of the long-running processes (races.operations.garbage_collection)."""

import gc

from races.operations.garbage_collection import collections_deferred


def count_collections(work) -> int:
    collections = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        work()
    finally:
        gc.callbacks.remove(seen)
    return len(collections)


def a_frame_of_short_lived_objects() -> None:
    for _ in range(50):
        athletes = [{"id": i, "eta_range_s": [i, i + 1]} for i in range(1000)]
        del athletes


def test_a_frames_short_lived_objects_set_off_no_collection_while_it_is_handled():
    """A web process's full collections walk all its sockets' objects (388-564 ms in the
    design load); the young collections a frame's own objects set off are what promote
    them into the old generation and bring those full collections on."""
    assert count_collections(a_frame_of_short_lived_objects) > 0  # without: collections

    def deferred() -> None:
        with collections_deferred():
            a_frame_of_short_lived_objects()

    assert count_collections(deferred) == 0
    assert gc.isenabled()


def test_only_the_block_that_stopped_the_collector_starts_it_again():
    with collections_deferred():
        with collections_deferred():
            pass
        assert not gc.isenabled()  # the inner block found it stopped: left it so
    assert gc.isenabled()
    gc.disable()
    try:
        with collections_deferred():
            pass
        assert not gc.isenabled()  # someone else's decision, kept
    finally:
        gc.enable()
