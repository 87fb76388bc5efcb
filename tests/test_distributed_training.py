"""Training beyond one process and one run: two processes under torchrun train as one process on
the same global batch, and a run resumed from its saved state goes on as if never interrupted."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from course_lib import distributed
from course_lib.checkpoint import load_training_state, read_checkpoint_metadata, save_checkpoint
from course_lib.gpt import GPT, GPTConfig
from course_lib.train import TrainConfig, stream_batches, train

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# float64, so that the only difference between one and two processes, the order of the sums in
# the loss and the gradient average, stays far below this bound
TWO_PROCESS_TOLERANCE = 1e-12

# The same script trains alone (python script.py) and under torchrun: what differs is only whether
# the processes find each other.
SCRIPT = textwrap.dedent('''
    import sys
    import torch
    from course_lib import distributed
    from course_lib.checkpoint import save_checkpoint
    from course_lib.gpt import GPT, GPTConfig
    from course_lib.train import TrainConfig, stream_batches, train

    torch.set_num_threads(1)
    with distributed.process_group():
        torch.manual_seed(distributed.rank())  # different weights in each process: DDP copies process 0's
        model = GPT(GPTConfig(vocab_size=11, max_context=8, num_layers=2, num_heads=2, d_model=8)).double()
        stream = torch.randint(0, 11, (500,), generator=torch.Generator().manual_seed(1))
        rows = []  # the rows of each batch this process's model reads
        model.register_forward_pre_hook(lambda module, inputs: rows.append(inputs[0].shape[0]))
        config = TrainConfig(max_steps=6, batch_size=4, learning_rate=1e-2, clip_grad_norm=0.5, progress=False)
        history = train(model, stream_batches(stream, 8, config.batch_size, seed=2), config)
        if distributed.is_main_process():
            save_checkpoint(model, sys.argv[1], {"train_loss": history.train_loss,
                                                 "grad_norm": history.grad_norm, "rows": rows,
                                                 "processes": distributed.world_size()})
''')


def _environment() -> dict[str, str]:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        environment.pop(name, None)
    return environment


def _run(command: list[str]) -> None:
    finished = subprocess.run(command, cwd=PROJECT_ROOT, env=_environment(), capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]


def _torchrun(processes: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {name: f.get_tensor(name) for name in f.keys()}


def test_two_processes_train_as_one_process_on_the_same_global_batch(tmp_path):
    script = tmp_path / "train_tiny_gpt.py"
    script.write_text(SCRIPT)
    _run([sys.executable, str(script), str(tmp_path / "one.safetensors")])
    _run([*_torchrun(2), str(script), str(tmp_path / "two.safetensors")])
    one, two = _tensors(tmp_path / "one.safetensors"), _tensors(tmp_path / "two.safetensors")
    alone, together = read_checkpoint_metadata(tmp_path / "one.safetensors"), read_checkpoint_metadata(
        tmp_path / "two.safetensors")
    assert (alone["processes"], together["processes"]) == (1, 2)
    assert alone["rows"] == [4] * 6 and together["rows"] == [2] * 6  # each process reads its half of the batch
    assert one.keys() == two.keys()
    largest = max(float((one[name] - two[name]).abs().max()) for name in one)
    assert largest <= TWO_PROCESS_TOLERANCE, largest
    print(f"largest difference between the parameters of one and two processes: {largest:.1e}")
    moved = GPT(GPTConfig(vocab_size=11, max_context=8, num_layers=2, num_heads=2, d_model=8)).double()
    assert any(not torch.equal(one[name], tensor) for name, tensor in moved.state_dict().items() if name in one)
    assert alone["train_loss"] == pytest.approx(together["train_loss"], abs=1e-12)  # the global batch's mean
    assert alone["grad_norm"] == pytest.approx(together["grad_norm"], abs=1e-12)


def test_course_train_under_torchrun_writes_one_checkpoint_that_equals_a_single_process_run(tmp_path):
    recipe = ["-m", "course_lib.cli", "train", "ch03_fixed_window", "--steps", "3", "--out"]
    _run([sys.executable, *recipe, str(tmp_path / "one.safetensors")])
    _run([*_torchrun(2), *recipe, str(tmp_path / "two.safetensors")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.safetensors", "two.safetensors"]
    one, two = _tensors(tmp_path / "one.safetensors"), _tensors(tmp_path / "two.safetensors")
    assert one.keys() == two.keys()
    largest = max(float((one[name] - two[name]).abs().max()) for name in one)
    assert largest <= 1e-6, largest  # float32
    print(f"course train, one process against two: largest parameter difference {largest:.1e}")
    assert read_checkpoint_metadata(tmp_path / "two.safetensors")["processes"] == 2


def test_course_train_refuses_a_step_count_below_one(capsys):
    from course_lib.cli import main

    assert main(["train", "ch03_fixed_window", "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Sharding, and everything outside torchrun
# ---------------------------------------------------------------------------------------------
def test_a_batch_is_shared_in_equal_consecutive_rows_and_an_unequal_share_is_refused():
    inputs, targets = torch.arange(12).reshape(6, 2), torch.arange(6)
    first, second = (distributed.shard((inputs, targets), index, 2) for index in (0, 1))
    assert torch.equal(torch.cat([first[0], second[0]]), inputs) and torch.equal(second[1], torch.tensor([3, 4, 5]))
    assert distributed.shard({"ids": inputs}, 2, 3)["ids"].tolist() == [[8, 9], [10, 11]]
    with pytest.raises(ValueError, match="divisible by 4"):
        distributed.shard((inputs, targets), 0, 4)


def test_outside_torchrun_one_process_trains_alone():
    assert not distributed.active()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (0, 1, True)
    batch = (torch.zeros(3, 2), torch.zeros(3))
    assert distributed.shard(batch) is batch
    assert distributed.mean_across_processes(2.5) == 2.5
    with distributed.process_group():
        assert not distributed.active()


# ---------------------------------------------------------------------------------------------
# Resuming
# ---------------------------------------------------------------------------------------------
class Interrupted(Exception):
    pass


def _resumable_run(tmp_path: Path, **train_arguments):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=13, max_context=8, num_layers=2, num_heads=2, d_model=16, dropout=0.1))
    stream = torch.randint(0, 13, (400,), generator=torch.Generator().manual_seed(3))
    validation = [next(stream_batches(stream, 8, 4, seed=9))]
    config = TrainConfig(max_steps=10, batch_size=4, learning_rate=3e-3, eval_every=3, early_stopping_patience=50,
                         progress=False, seed=4)
    history = train(model, stream_batches(stream, 8, 4, seed=5), config, val_batches=validation, **train_arguments)
    return model, history


def test_a_resumed_run_gives_the_loss_curve_and_weights_of_the_uninterrupted_one(tmp_path):
    whole_model, whole = _resumable_run(tmp_path)

    def crash_at_step_6(step, history):
        if step == 6:
            raise Interrupted

    state = tmp_path / "state.safetensors"
    with pytest.raises(Interrupted):
        _resumable_run(tmp_path, save_state_to=state, save_state_every=4, on_step=crash_at_step_6)
    assert read_checkpoint_metadata(state)["step"] == 4
    resumed_model, resumed = _resumable_run(tmp_path, resume_from=state, save_state_to=state)
    assert resumed.steps == whole.steps == list(range(1, 11))
    assert resumed.train_loss == whole.train_loss  # dropout, batches and AdamW all go on where they were
    assert resumed.val_loss == whole.val_loss and resumed.grad_norm == whole.grad_norm
    assert all(torch.equal(a, b) for a, b in zip(resumed_model.state_dict().values(),
                                                  whole_model.state_dict().values()))
    assert read_checkpoint_metadata(state)["step"] == 10  # the resumed run saved its last step


def test_the_training_state_holds_the_optimizer_and_a_weights_only_checkpoint_cannot_resume(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=13, max_context=8, num_layers=1, num_heads=2, d_model=8))
    stream = torch.randint(0, 13, (100,), generator=torch.Generator().manual_seed(3))
    config = TrainConfig(max_steps=2, batch_size=2, progress=False)
    train(model, stream_batches(stream, 8, 2, seed=5), config, save_state_to=tmp_path / "state.safetensors")
    names = _tensors(tmp_path / "state.safetensors").keys()
    assert "optimizer.0.exp_avg_sq" in names and "extra.torch_rng" in names and "embedding.weight" in names
    fresh = GPT(GPTConfig(vocab_size=13, max_context=8, num_layers=1, num_heads=2, d_model=8))
    optimizer = torch.optim.AdamW(fresh.parameters())
    metadata, _ = load_training_state(tmp_path / "state.safetensors", fresh, optimizer)
    assert metadata["step"] == 2 and float(optimizer.state[optimizer.param_groups[0]["params"][0]]["step"]) == 2
    save_checkpoint(model, tmp_path / "weights.safetensors")
    with pytest.raises(ValueError, match="no optimizer state"):
        train(fresh, stream_batches(stream, 8, 2, seed=5), config, resume_from=tmp_path / "weights.safetensors")
