import os

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

# `make test` runs two xdist workers on two cores: with torch's default (a thread per core) in
# each, four busy threads share two cores and OpenMP's spinning threads slow both workers.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # also for the processes tests start
    import torch

    torch.set_num_threads(1)
