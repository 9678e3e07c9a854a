"""The thread benchmark's engine share: time inside the compiled calls, and nothing else, over the workload's time."""

import time

import pytest
import torch

from sr3d_core.sparse import native
from training.benchmark_threads import engine_share

pytestmark = pytest.mark.skipif(not native.available(), reason="the compiled sparse engine is not built")


def test_engine_share_is_zero_without_compiled_calls():
    assert engine_share(lambda: time.sleep(0.005), reps=3) == 0.0


def test_engine_share_of_a_compiled_convolution_and_of_half_sleep():
    g = torch.Generator().manual_seed(0)
    n, kvol, c = 20000, 27, 64
    cols = torch.randint(0, n + 1, (kvol, n), generator=g)  # n marks an empty site
    x, w = torch.randn(n, c, generator=g), torch.randn(kvol, c, c, generator=g)
    pairs = native.pair_list(cols, n)

    def conv() -> None:
        native.conv_forward(x, pairs, n, w)

    assert engine_share(conv, reps=3) > 0.9  # all but the Python wrapper's few microseconds

    def half() -> None:  # a compiled call, then as long again outside the engine
        t = time.perf_counter()
        conv()
        time.sleep(time.perf_counter() - t)

    assert engine_share(half, reps=3) == pytest.approx(0.5, abs=0.1)
    assert type(native.LIBRARY._lib).__name__ == "CDLL"  # the library is put back
