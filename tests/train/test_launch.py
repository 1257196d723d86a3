"""The launcher environment (torchrun, SLURM, by hand) against --num-nodes x --devices."""

import pytest

from rexforge.errors import ConfigError
from rexforge.train.datamodule import rank_rows
from rexforge.train.launch import Launch, check_launch, detect_launch
from rexforge.train.settings import TrainConfig

TORCHRUN = {  # torchrun --nnodes 2 --nproc-per-node 2, the process of global rank 3
    "TORCHELASTIC_RUN_ID": "job",
    "WORLD_SIZE": "4",
    "RANK": "3",
    "LOCAL_RANK": "1",
    "LOCAL_WORLD_SIZE": "2",
    "GROUP_RANK": "1",
    "MASTER_ADDR": "node0",
    "MASTER_PORT": "29500",
}
SLURM = {  # sbatch --nodes 2 --ntasks-per-node 2; srun rexforge ...
    "SLURM_NTASKS": "4",
    "SLURM_NNODES": "2",
    "SLURM_NTASKS_PER_NODE": "2",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
    "SLURM_JOB_NAME": "train",
}


def test_detects_each_launcher():
    assert detect_launch({}) is None
    assert detect_launch(TORCHRUN) == Launch("torchrun", 4, per_node=2)
    assert detect_launch(SLURM) == Launch("SLURM", 4, nodes=2, per_node=2)
    # An interactive SLURM shell is not a launch (Lightning's opt-out), nor is plain SLURM
    # without srun's task count.
    assert detect_launch({**SLURM, "SLURM_JOB_NAME": "interactive"}) is None
    by_hand = {"LOCAL_RANK": "0", "NODE_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "a"}
    assert detect_launch(by_hand) == Launch("the launch environment", 2)


@pytest.mark.parametrize("env", [TORCHRUN, SLURM])
def test_matching_topology_passes(env):
    assert check_launch(2, 2, env) is not None
    assert check_launch(1, "auto", env) is not None  # left to Lightning


@pytest.mark.parametrize(
    ("env", "nodes", "devices", "message"),
    [
        (
            TORCHRUN,
            2,
            1,
            "torchrun started 2 processes per node, but --devices is 1: set --devices 2",
        ),
        (
            TORCHRUN,
            1,
            2,
            r"started 4 processes in all \(WORLD_SIZE\), but --num-nodes 1 x --devices 2 = 2",
        ),
        (SLURM, 1, 2, "SLURM runs on 2 nodes, but --num-nodes is 1: set --num-nodes 2"),
        ({"LOCAL_RANK": "0", "WORLD_SIZE": "2"}, 1, 1, "the launch environment started 2"),
        ({"TORCHELASTIC_RUN_ID": "j", "WORLD_SIZE": "two"}, 1, 1, "WORLD_SIZE='two'"),
    ],
)
def test_mismatch_is_one_line_error(env, nodes, devices, message):
    with pytest.raises(ConfigError, match=message) as info:
        check_launch(nodes, devices, env)
    assert "\n" not in str(info.value)


def test_num_nodes_is_a_validated_training_option():
    assert TrainConfig().num_nodes == 1
    assert TrainConfig(num_nodes=4).validate().num_nodes == 4
    with pytest.raises(ConfigError, match="--num-nodes must be an integer >= 1"):
        TrainConfig(num_nodes=0).validate()


def test_rank_rows_split_the_global_batch():
    assert [rank_rows(8, r, 2) for r in (0, 1)] == [slice(0, 4), slice(4, 8)]
    assert rank_rows(8, 0, 1) == slice(0, 8)
    with pytest.raises(ValueError, match="does not split"):
        rank_rows(9, 0, 2)


def test_cli_num_nodes_checked_against_torchrun(tmp_path, monkeypatch, capsys):
    # `--num-nodes` comes from the TrainConfig field; a launch it does not match ends in one
    # error line before any training.
    from rexforge.cli import main

    for name, value in {**TORCHRUN, "LOCAL_WORLD_SIZE": "1", "WORLD_SIZE": "4"}.items():
        monkeypatch.setenv(name, value)
    argv = ["pretrain", "--preset", "tirex-test", "--synthetic", "2", "--max-steps", "1"]
    argv += ["--num-nodes", "2", "--output-dir", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: torchrun started 4 processes in all (WORLD_SIZE), but --num-nodes 2 x "
        "--devices 1 = 2: set --num-nodes to the number of machines and --devices to the "
        "processes on each"
    )
    assert not (tmp_path / "run" / "checkpoints").exists()
