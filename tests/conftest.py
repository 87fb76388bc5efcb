"""Shared test configuration.

`make test` runs pytest with --nbval over book/ and solutions/; notebooks that live under tests/
(small submissions for the grader's tests) are data, not notebooks to re-execute.
"""
from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.suffix == ".ipynb" and PROJECT_ROOT / "tests" in collection_path.parents:
        return True
    return None


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine the threads of
    PyTorch's pool wait on each other; one thread keeps the tests fast and steady (and is what
    ``seed_everything`` gives the notebooks)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT
