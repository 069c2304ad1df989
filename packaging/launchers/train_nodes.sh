#!/usr/bin/env bash
# Train one project on several machines (README: "Several GPUs and machines").
# Run the same line on every machine; the project and the model must be at the same paths on all
# of them (a shared filesystem), with the same install.
#   NODES=2 GPUS=4 HOST=10.0.0.1 packaging/launchers/train_nodes.sh /shared/projects/rex --model /shared/sdxl.safetensors
# NODES: machines; GPUS: processes per machine (one per GPU); HOST: machine 0's address (the
# rendezvous, PORT 29400 unless set); IFACE: the network interface NCCL and gloo use (e.g. eth0);
# RUN_ID: one id per training, the same on every machine (default: alchemy). Trial on one computer:
#   NODES=1 GPUS=2 HOST=127.0.0.1 packaging/launchers/train_nodes.sh PROJECT --model demo --device cpu
set -euo pipefail
: "${NODES:?NODES: how many machines}" "${GPUS:?GPUS: processes (GPUs) per machine}" "${HOST:?HOST: machine 0}"
if [ -n "${IFACE:-}" ]; then
  export NCCL_SOCKET_IFNAME="$IFACE" GLOO_SOCKET_IFNAME="$IFACE"
fi
cd "$(dirname "$0")/../.."
exec "${PYTHON:-python3}" -m torch.distributed.run --nnodes "$NODES" --nproc-per-node "$GPUS" \
  --rdzv-backend c10d --rdzv-endpoint "$HOST:${PORT:-29400}" --rdzv-id "${RUN_ID:-alchemy}" \
  main.py train "$@"
